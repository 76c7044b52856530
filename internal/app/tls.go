package app

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/scoreproxy/scoreproxy/config"
)

// certCheckEvery is how often, at most, the certificate files are looked
// at for a change (one stat of each per period, during a handshake).
var certCheckEvery = time.Second

// certReloader serves the certificate of server.tls_cert_file and
// server.tls_key_file, re-reading both when either file's modification
// time or size changes, so that a renewed certificate (cert-manager,
// certbot) is used by the next connection without a restart. A pair that
// fails to load (say, the key was written but not yet the certificate)
// keeps the previous certificate in use and is retried at the next check.
type certReloader struct {
	certFile, keyFile string
	log               *slog.Logger

	mu      sync.Mutex
	cert    *tls.Certificate // guarded by mu
	stamp   [2]fileStamp     // guarded by mu: of certFile, keyFile when cert was loaded
	checked time.Time        // guarded by mu: last look at the files
}

// fileStamp is what tells that a file changed.
type fileStamp struct {
	mod  time.Time
	size int64
}

func stampOf(path string) (fileStamp, error) {
	st, err := os.Stat(path)
	if err != nil {
		return fileStamp{}, err
	}
	return fileStamp{st.ModTime(), st.Size()}, nil
}

// newCertReloader loads the pair once; a pair that does not load is a
// start-up error.
func newCertReloader(certFile, keyFile string, logger *slog.Logger) (*certReloader, error) {
	c := &certReloader{certFile: certFile, keyFile: keyFile, log: logger}
	if err := c.load(); err != nil {
		return nil, fmt.Errorf("server.tls_cert_file / server.tls_key_file: %w", err)
	}
	return c, nil
}

// load reads the pair and its stamps; the caller holds mu (or owns c).
func (c *certReloader) load() error {
	var stamps [2]fileStamp
	for i, f := range []string{c.certFile, c.keyFile} {
		s, err := stampOf(f)
		if err != nil {
			return err
		}
		stamps[i] = s
	}
	cert, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		return err
	}
	c.cert, c.stamp, c.checked = &cert, stamps, time.Now()
	return nil
}

// GetCertificate implements tls.Config.GetCertificate.
func (c *certReloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if time.Since(c.checked) < certCheckEvery {
		return c.cert, nil
	}
	c.checked = time.Now()
	cs, errC := stampOf(c.certFile)
	ks, errK := stampOf(c.keyFile)
	if err := errors.Join(errC, errK); err != nil {
		c.log.Warn("cannot check the TLS certificate files; serving the loaded certificate", "error", err)
		return c.cert, nil
	}
	if cs == c.stamp[0] && ks == c.stamp[1] {
		return c.cert, nil
	}
	if err := c.load(); err != nil {
		c.log.Warn("cannot reload the changed TLS certificate; serving the previous one until it loads", "cert", c.certFile, "error", err)
		return c.cert, nil
	}
	c.log.Info("reloaded the TLS certificate", "cert", c.certFile, "not_after", c.cert.Leaf.NotAfter)
	return c.cert, nil
}

// serverTLSConfig is the inbound TLS of server.tls_*: TLS 1.2 or newer,
// the reloading certificate, and with tls_client_ca_file every client must
// present a certificate that CA signed (mTLS). The CA bundle is read at
// start-up.
func serverTLSConfig(t config.ServerTLS, logger *slog.Logger) (*tls.Config, error) {
	r, err := newCertReloader(t.TLSCertFile, t.TLSKeyFile, logger)
	if err != nil {
		return nil, err
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: r.GetCertificate, NextProtos: []string{"http/1.1"}}
	if t.TLSClientCAFile != "" {
		pem, err := os.ReadFile(t.TLSClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("server.tls_client_ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("server.tls_client_ca_file: %s holds no PEM certificate; write the CA that signs the client certificates", t.TLSClientCAFile)
		}
		tc.ClientCAs, tc.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return tc, nil
}
