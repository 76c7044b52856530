package app

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/golang/snappy"

	"github.com/scoreproxy/scoreproxy/internal/testenv"
)

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// startTLSProxy runs Serve with server.tls_* (and the client CA when
// clientCA is set) and returns its address and the cert/key paths.
func startTLSProxy(t *testing.T, ca *testenv.CA, clientCA bool) (addr, certFile, keyFile string, up *upstream) {
	t.Helper()
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key")
	c, k := ca.Issue(t, 100, false)
	writeFile(t, certFile, c)
	writeFile(t, keyFile, k)
	up, upSrv := newUpstream(t)
	addr = freeAddr(t)
	yaml := fmt.Sprintf("listen: %s\nwriter:\n  datasource_url: %s\nserver:\n  tls_cert_file: %s\n  tls_key_file: %s\n", addr, upSrv.URL, certFile, keyFile)
	if clientCA {
		caFile := filepath.Join(dir, "clients-ca.crt")
		writeFile(t, caFile, ca.PEM)
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
	ca := testenv.NewCA(t, "test CA")
	addr, certFile, keyFile, up := startTLSProxy(t, ca, false)
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)

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

	c, k := ca.Issue(t, 200, false) // renewal: both files replaced
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
	ca, other := testenv.NewCA(t, "test CA"), testenv.NewCA(t, "other CA")
	addr, _, _, up := startTLSProxy(t, ca, true)
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	pair := func(ca *testenv.CA) []tls.Certificate {
		c, k := ca.Issue(t, 300, true)
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
