package config

// ServerTLS is the inbound TLS of the receiver: server.tls_cert_file and
// server.tls_key_file turn HTTPS on (the files are re-read when they
// change, so a renewed certificate needs no restart), and
// server.tls_client_ca_file additionally requires every client to present a
// certificate signed by that CA (mTLS).
type ServerTLS struct {
	TLSCertFile     string `yaml:"tls_cert_file"`
	TLSKeyFile      string `yaml:"tls_key_file"`
	TLSClientCAFile string `yaml:"tls_client_ca_file"`
}

// Enabled reports whether the receiver serves HTTPS.
func (t ServerTLS) Enabled() bool { return t.TLSCertFile != "" }

type rawServerTLS struct {
	TLSCertFile     value `yaml:"tls_cert_file"`
	TLSKeyFile      value `yaml:"tls_key_file"`
	TLSClientCAFile value `yaml:"tls_client_ca_file"`
}

// serverTLS checks the inbound TLS keys: the files must exist; cert and key
// come together; a client CA needs them.
func (c *checker) serverTLS(raw rawServerTLS) ServerTLS {
	t := ServerTLS{
		TLSCertFile:     c.file("server.tls_cert_file", raw.TLSCertFile),
		TLSKeyFile:      c.file("server.tls_key_file", raw.TLSKeyFile),
		TLSClientCAFile: c.file("server.tls_client_ca_file", raw.TLSClientCAFile),
	}
	switch {
	case t.TLSCertFile != "" && t.TLSKeyFile == "":
		c.errorf("server.tls_key_file", "is required with server.tls_cert_file: set the path of the certificate's private key (PEM)")
	case t.TLSCertFile == "" && t.TLSKeyFile != "":
		c.errorf("server.tls_cert_file", "is required with server.tls_key_file: set the path of the certificate (PEM)")
	case t.TLSClientCAFile != "" && t.TLSCertFile == "":
		c.errorf("server.tls_client_ca_file", "verifies client certificates over TLS, so it needs server.tls_cert_file and server.tls_key_file")
	}
	return t
}
