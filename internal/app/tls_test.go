package app

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/golang/snappy"
)

// testCA issues certificates for the TLS tests.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue returns the PEM certificate and key of a leaf with the given serial,
// for 127.0.0.1 (server) or as a client certificate.
func (ca *testCA) issue(t *testing.T, serial int64, client bool) (certPEM, keyPEM []byte) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: fmt.Sprint("leaf-", serial)},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
	if client {
		tmpl.ExtKeyUsage, tmpl.IPAddresses = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, nil
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(key)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// startTLSProxy runs Serve with server.tls_* (and the client CA when
// clientCA is set) and returns its address and the cert/key paths.
func startTLSProxy(t *testing.T, ca *testCA, clientCA bool) (addr, certFile, keyFile string, up *upstream) {
	t.Helper()
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key")
	c, k := ca.issue(t, 100, false)
	writeFile(t, certFile, c)
	writeFile(t, keyFile, k)
	up, upSrv := newUpstream(t)
	addr = freeAddr(t)
	yaml := fmt.Sprintf("listen: %s\nwriter:\n  datasource_url: %s\nserver:\n  tls_cert_file: %s\n  tls_key_file: %s\n", addr, upSrv.URL, certFile, keyFile)
	if clientCA {
		caFile := filepath.Join(dir, "clients-ca.crt")
		writeFile(t, caFile, ca.pem)
		yaml += "  tls_client_ca_file: " + caFile + "\n"
	}
	cfg := writeConfig(t, yaml)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- Serve(ctx, cfg, slog.New(slog.DiscardHandler)) }()
	t.Cleanup(func() { cancel(); <-served })
	waitFor(t, "the listener", func() bool { return accepting(addr) })
	return addr, certFile, keyFile, up
}

// tlsPost writes one series over HTTPS and returns the status and the
// serial number of the server's certificate.
func tlsPost(addr string, roots *x509.CertPool, clientCert []tls.Certificate) (int, int64, error) {
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, Certificates: clientCert}}
	defer tr.CloseIdleConnections()
	raw, _ := shapeRequest(1).Marshal()
	req, _ := http.NewRequest(http.MethodPost, "https://"+addr+"/api/v1/write", bytes.NewReader(snappy.Encode(nil, raw)))
	req.Header.Set("Content-Encoding", "snappy")
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return 0, 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, resp.TLS.PeerCertificates[0].SerialNumber.Int64(), nil
}

// TestInboundTLS: HTTPS with the configured certificate, which is re-read
// when its files change (a new connection sees the new one).
func TestInboundTLS(t *testing.T) {
	saved := certCheckEvery
	t.Cleanup(func() { certCheckEvery = saved }) // after the server stops (cleanups run last first)
	certCheckEvery = 0
	ca := newTestCA(t, "test CA")
	addr, certFile, keyFile, up := startTLSProxy(t, ca, false)
	roots := x509.NewCertPool()
	roots.AddCert(ca.cert)

	status, serial, err := tlsPost(addr, roots, nil)
	if err != nil || status != 204 || serial != 100 {
		t.Fatalf("HTTPS write: %d, cert serial %d, %v; want 204 from cert 100", status, serial, err)
	}
	if got := up.forwarded()["/api/v1/write"]; got != 1 {
		t.Errorf("upstream has %d samples, want 1", got)
	}
	if _, _, err := tlsPost(addr, x509.NewCertPool(), nil); err == nil {
		t.Error("a client that does not trust the CA connected")
	}

	c, k := ca.issue(t, 200, false) // renewal: both files replaced
	writeFile(t, certFile, c)
	writeFile(t, keyFile, k)
	later := time.Now().Add(time.Minute) // a new mtime even on a coarse clock
	os.Chtimes(certFile, later, later)
	os.Chtimes(keyFile, later, later)
	if status, serial, err := tlsPost(addr, roots, nil); err != nil || status != 204 || serial != 200 {
		t.Fatalf("after renewal: %d, cert serial %d, %v; want 204 from cert 200", status, serial, err)
	}

	writeFile(t, certFile, []byte("not a certificate")) // a broken renewal keeps the last good pair
	os.Chtimes(certFile, later.Add(time.Minute), later.Add(time.Minute))
	if status, serial, err := tlsPost(addr, roots, nil); err != nil || status != 204 || serial != 200 {
		t.Fatalf("after a broken renewal: %d, cert serial %d, %v; want 204 from cert 200", status, serial, err)
	}
}

// TestInboundMTLS: with tls_client_ca_file a client without a certificate,
// or with one from another CA, cannot write; one signed by the CA can.
func TestInboundMTLS(t *testing.T) {
	ca, other := newTestCA(t, "test CA"), newTestCA(t, "other CA")
	addr, _, _, up := startTLSProxy(t, ca, true)
	roots := x509.NewCertPool()
	roots.AddCert(ca.cert)
	pair := func(ca *testCA) []tls.Certificate {
		c, k := ca.issue(t, 300, true)
		cert, err := tls.X509KeyPair(c, k)
		if err != nil {
			t.Fatal(err)
		}
		return []tls.Certificate{cert}
	}
	if status, _, err := tlsPost(addr, roots, nil); err == nil {
		t.Errorf("no client certificate: got %d, want the handshake refused", status)
	}
	if status, _, err := tlsPost(addr, roots, pair(other)); err == nil {
		t.Errorf("client certificate of another CA: got %d, want the handshake refused", status)
	}
	if got := len(up.forwarded()); got != 0 {
		t.Fatalf("upstream received %v from refused clients", up.forwarded())
	}
	if status, _, err := tlsPost(addr, roots, pair(ca)); err != nil || status != 204 {
		t.Fatalf("client certificate of the CA: %d, %v; want 204", status, err)
	}
	if got := up.forwarded()["/api/v1/write"]; got != 1 {
		t.Errorf("upstream has %d samples, want 1", got)
	}
}
