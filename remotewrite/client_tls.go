package remotewrite

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// newTLSConfig builds the TLS settings of the upstream transport from the
// writer options: verify_tls, a CA bundle, and an optional client certificate
// for mTLS (VictoriaMetrics Enterprise with -mtls).
func newTLSConfig(cfg ClientConfig, recheck time.Duration) (*tls.Config, *certFiles, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	// A CA bundle only makes sense with verification, so it turns it on: this
	// is how vmanomaly reads `verify_tls: path/to/ca.crt`.
	tc.InsecureSkipVerify = !cfg.VerifyTLS && cfg.CAFile == ""
	if cfg.CAFile != "" {
		pool, err := loadCAPool(cfg.CAFile)
		if err != nil {
			return nil, nil, err
		}
		tc.RootCAs = pool
	}
	if (cfg.CertFile == "") != (cfg.KeyFile == "") {
		return nil, nil, errors.New("tls_cert_file and tls_key_file must be set together")
	}
	if cfg.CertFile == "" {
		return tc, nil, nil
	}
	cf, err := newCertFiles(cfg.CertFile, cfg.KeyFile, recheck)
	if err != nil {
		return nil, nil, err
	}
	tc.GetClientCertificate = cf.get
	return tc, cf, nil
}

// loadCAPool reads a PEM bundle; the server is then verified against these
// CAs only, not the system store.
func loadCAPool(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("CA file %s contains no PEM certificates", path)
	}
	return pool, nil
}

// certFiles is a client certificate and key that may be rotated on disk
// (cert-manager, vault). The pair is re-read at most once per check interval
// when either file changed; a failed re-read (for example the certificate
// already replaced but not yet the key) keeps the last good pair and is tried
// again at the next interval. Only new connections see a new certificate.
type certFiles struct {
	certPath, keyPath string
	check             throttle
	cert              atomic.Pointer[tls.Certificate]

	mu              sync.Mutex // serializes re-reads; guards the versions
	certVer, keyVer fileVersion
	err             atomic.Pointer[error] // last re-read failure, nil after a success
}

// newCertFiles loads the pair once; failing here is a configuration error.
func newCertFiles(certPath, keyPath string, recheck time.Duration) (*certFiles, error) {
	c := &certFiles{certPath: certPath, keyPath: keyPath, check: throttle{interval: recheck}}
	c.check.last.Store(time.Now().UnixNano())
	if err := c.reload(); err != nil {
		return nil, err
	}
	return c, nil
}

// get is tls.Config.GetClientCertificate: it is called once per handshake.
func (c *certFiles) get(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	if c.check.due(time.Now()) {
		if err := c.reload(); err != nil {
			c.err.Store(&err)
		} else {
			c.err.Store(nil)
		}
	}
	return c.cert.Load(), nil
}

// reload re-reads the pair when either file's version changed.
func (c *certFiles) reload() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	certVer, err := statVersion(c.certPath)
	if err != nil {
		return fmt.Errorf("client certificate: %w", err)
	}
	keyVer, err := statVersion(c.keyPath)
	if err != nil {
		return fmt.Errorf("client key: %w", err)
	}
	if c.cert.Load() != nil && certVer == c.certVer && keyVer == c.keyVer {
		return nil
	}
	pair, err := tls.LoadX509KeyPair(c.certPath, c.keyPath)
	if err != nil {
		return fmt.Errorf("client certificate %s / key %s: %w", c.certPath, c.keyPath, err)
	}
	c.cert.Store(&pair)
	c.certVer, c.keyVer = certVer, keyVer
	return nil
}

// lastErr returns the last re-read failure, or nil.
func (c *certFiles) lastErr() error {
	if p := c.err.Load(); p != nil {
		return *p
	}
	return nil
}
