package remotewrite

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/scoreproxy/scoreproxy/internal/testenv"
)

// testPKI is a throw-away CA (testenv.CA) and a directory for the
// certificate files it issues.
type testPKI struct {
	*testenv.CA
	dir string
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	return &testPKI{CA: testenv.NewCA(t, "scoreproxy test CA"), dir: t.TempDir()}
}

// writePEM writes content into the PKI's directory and returns the path.
func (p *testPKI) writePEM(t *testing.T, name string, content []byte, mtime time.Time) string {
	t.Helper()
	path := filepath.Join(p.dir, name)
	writeFile(t, path, string(content), mtime)
	return path
}

// mtlsServer starts an HTTPS upstream that requires a client certificate
// signed by the PKI and records the client certificate's common name.
func (p *testPKI) mtlsServer(t *testing.T) (*httptest.Server, func() string) {
	t.Helper()
	certPEM, keyPEM := p.Issue(t, 2, false)
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(p.Cert)
	var mu sync.Mutex
	var lastCN string
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		lastCN = r.TLS.PeerCertificates[0].Subject.CommonName
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	srv.TLS = &tls.Config{
		Certificates: []tls.Certificate{pair},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool,
	}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv, func() string { mu.Lock(); defer mu.Unlock(); return lastCN }
}

func TestTLSServerVerification(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	dir := t.TempDir()
	serverCA := filepath.Join(dir, "server.pem")
	writeFile(t, serverCA, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})), time.Now())
	otherCA := filepath.Join(dir, "other.pem")
	writeFile(t, otherCA, string(newTestPKI(t).PEM), time.Now())

	tests := []struct {
		name    string
		cfg     ClientConfig
		wantErr string // "" means the send must succeed
	}{
		{"verify_tls false accepts an unknown CA", ClientConfig{VerifyTLS: false}, ""},
		{"verify_tls true rejects an unknown CA", ClientConfig{VerifyTLS: true}, "certificate"},
		{"CA file of the server", ClientConfig{VerifyTLS: true, CAFile: serverCA}, ""},
		{"CA file alone turns verification on", ClientConfig{CAFile: serverCA}, ""},
		{"CA file of another CA", ClientConfig{VerifyTLS: true, CAFile: otherCA}, "certificate"},
		{"CA file of another CA, verify_tls false", ClientConfig{CAFile: otherCA}, "certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestClient(t, tt.cfg, defaultRecheck)
			res := c.Send(context.Background(), srv.URL+"/api/v1/write", []byte("x"), BatchStats{})
			if tt.wantErr == "" {
				if !res.OK() {
					t.Fatalf("result %+v, want 204", res)
				}
				return
			}
			if res.StatusCode != 0 || !strings.Contains(res.Message, tt.wantErr) {
				t.Fatalf("result %+v, want StatusCode 0 and a %s error", res, tt.wantErr)
			}
		})
	}
}

func TestTLSClientCertificate(t *testing.T) {
	pki := newTestPKI(t)
	srv, _ := pki.mtlsServer(t)
	ca := pki.writePEM(t, "ca.pem", pki.PEM, time.Now())
	certPEM, keyPEM := pki.Issue(t, 3, true)
	cert := pki.writePEM(t, "client.pem", certPEM, time.Now())
	key := pki.writePEM(t, "client.key", keyPEM, time.Now())

	tests := []struct {
		name string
		cfg  ClientConfig
		ok   bool
	}{
		{"with client certificate", ClientConfig{CAFile: ca, CertFile: cert, KeyFile: key}, true},
		{"without client certificate", ClientConfig{CAFile: ca}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestClient(t, tt.cfg, defaultRecheck)
			res := c.Send(context.Background(), srv.URL, []byte("x"), BatchStats{})
			if res.OK() != tt.ok || (!tt.ok && res.StatusCode != 0) {
				t.Fatalf("result %+v, want ok=%v", res, tt.ok)
			}
		})
	}
}

func TestTLSClientCertificateRotation(t *testing.T) {
	pki := newTestPKI(t)
	srv, lastCN := pki.mtlsServer(t)
	ca := pki.writePEM(t, "ca.pem", pki.PEM, time.Now())
	t0 := time.Now().Add(-time.Hour)
	certPEM, keyPEM := pki.Issue(t, 3, true)
	cert := pki.writePEM(t, "client.pem", certPEM, t0)
	key := pki.writePEM(t, "client.key", keyPEM, t0)
	c := newTestClient(t, ClientConfig{CAFile: ca, CertFile: cert, KeyFile: key}, 0)
	send := func() string {
		t.Helper()
		// Only new connections handshake, so drop the idle one first.
		c.Close()
		if res := c.Send(context.Background(), srv.URL, []byte("x"), BatchStats{}); !res.OK() {
			t.Fatalf("result %+v", res)
		}
		return lastCN()
	}

	if cn := send(); cn != testenv.LeafCN(3) {
		t.Fatalf("before rotation: client %q", cn)
	}
	certPEM, keyPEM = pki.Issue(t, 4, true)
	pki.writePEM(t, "client.pem", certPEM, t0.Add(time.Minute))
	// Until the key follows, the pair does not match: keep the old pair.
	if cn := send(); cn != testenv.LeafCN(3) {
		t.Fatalf("half-rotated: client %q, want the last good one", cn)
	}
	if c.CredentialsError() == nil {
		t.Fatal("no CredentialsError while the pair does not match")
	}
	pki.writePEM(t, "client.key", keyPEM, t0.Add(time.Minute))
	if cn := send(); cn != testenv.LeafCN(4) {
		t.Fatalf("after rotation: client %q", cn)
	}
	if err := c.CredentialsError(); err != nil {
		t.Fatalf("CredentialsError after rotation: %v", err)
	}
}
