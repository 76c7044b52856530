package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"

	"github.com/scoreproxy/scoreproxy/internal/testenv"
)

// tlsScoreproxyConfig serves HTTPS with mTLS and accepts writes only with
// one bearer token, allowed to write to the single node (tenants ["*"]).
const tlsScoreproxyConfig = `listen: {{LISTEN}}
writer:
  datasource_url: %s
server:
  health_check_interval: 1s
  tls_cert_file: %s
  tls_key_file: %s
  tls_client_ca_file: %s
auth:
  - name: prometheus
    bearer_token: %q
    tenants: ["*"]
`

// tlsPromConfig scrapes Prometheus itself and scoreproxy's /metrics over
// HTTPS (with the bearer token, which /metrics needs since auth: is set),
// and remote-writes to scoreproxy over HTTPS with the bearer token and a
// client certificate.
const tlsPromConfig = `global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: prometheus
    static_configs:
      - targets: ['{{PROMETHEUS_ADDR}}']
  - job_name: scoreproxy
    scheme: https
    authorization:
      credentials: %[5]q
    tls_config: &tls
      ca_file: %[1]s
      cert_file: %[2]s
      key_file: %[3]s
    static_configs:
      - targets: ['%[4]s']
remote_write:
  - url: https://%[4]s/api/v1/write
    authorization:
      credentials: %[5]q
    tls_config: *tls
    queue_config:
      batch_send_deadline: 200ms
      min_backoff: 100ms
      max_backoff: 1s
`

// writeTemp writes data to dir/name and returns the path.
func writeTemp(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// authPush sends one remote-write request with client and the Authorization
// header auth (none when empty). An error means no HTTP answer came.
func authPush(client *http.Client, url, auth string, req *prompb.WriteRequest) (int, string, error) {
	raw, err := req.Marshal()
	if err != nil {
		return 0, "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(snappy.Encode(nil, raw)))
	if err != nil {
		return 0, "", err
	}
	hr.Header.Set("Content-Type", "application/x-protobuf")
	hr.Header.Set("Content-Encoding", "snappy")
	hr.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	if auth != "" {
		hr.Header.Set("Authorization", auth)
	}
	resp, err := client.Do(hr)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	return resp.StatusCode, string(body), nil
}

// tlsClient is an HTTPS client with tc (a fresh transport: no connection is
// shared between the cases).
func tlsClient(tc *tls.Config) *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: tc}}
}

// oneSample is a write request of one sample of name{case=c}.
func oneSample(name, c string) *prompb.WriteRequest {
	return &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
		Labels:  testenv.Labels("__name__", name, "case", c),
		Samples: []prompb.Sample{{Value: 1, Timestamp: time.Now().UnixMilli()}},
	}}}
}

// TestPrometheusOverTLSWithAuth: a real Prometheus remote-writes over HTTPS
// (mTLS, with a bearer token) through a real scoreproxy into a real
// VictoriaMetrics, and scrapes scoreproxy's /metrics over HTTPS; every
// series Prometheus stored arrives with the same samples. Pushes over plain
// HTTP, without a client certificate, from a client not trusting the CA, or
// with a missing or wrong token are refused and nothing of them arrives.
func TestPrometheusOverTLSWithAuth(t *testing.T) {
	t.Parallel()
	bin := scoreproxy(t)
	dir := t.TempDir()
	ca := testenv.NewCA(t, "scoreproxy e2e CA")
	srvCert, srvKey := ca.Issue(t, 2, false)
	cliCert, cliKey := ca.Issue(t, 3, true)
	caFile := writeTemp(t, dir, "ca.crt", ca.PEM)
	srvCertFile, srvKeyFile := writeTemp(t, dir, "server.crt", srvCert), writeTemp(t, dir, "server.key", srvKey)
	cliCertFile, cliKeyFile := writeTemp(t, dir, "client.crt", cliCert), writeTemp(t, dir, "client.key", cliKey)
	secret := make([]byte, 16)
	rand.Read(secret)
	token := "e2e-" + hex.EncodeToString(secret)

	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	pair, err := tls.X509KeyPair(cliCert, cliKey)
	if err != nil {
		t.Fatal(err)
	}
	good := &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{pair}}

	vm := testenv.StartVictoriaMetrics(t)
	proxy := testenv.StartScoreproxyTLS(t, bin,
		fmt.Sprintf(tlsScoreproxyConfig, vm.URL, srvCertFile, srvKeyFile, caFile, token), good)
	proxy.WaitReady(t, 15*time.Second)
	writeURL := "https://" + proxy.Addr + "/api/v1/write"

	checkRefusals(t, proxy.Addr, good, roots, token)
	// A correct push right after them: its arrival shows the refused ones
	// would have arrived by now had they been forwarded.
	if status, body, err := authPush(tlsClient(good), writeURL, "Bearer "+token, oneSample("tls_e2e_accepted", "good")); err != nil || status != 204 {
		t.Fatalf("push with certificate and token: %d %s %v; want 204", status, body, err)
	}
	vm.WaitExport(t, `tls_e2e_accepted`, 30*time.Second, func(got []testenv.Series) error {
		if len(got) != 1 || len(got[0].Values) != 1 {
			return fmt.Errorf("got %d series, want tls_e2e_accepted with one sample", len(got))
		}
		return nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := vm.ForceFlush(ctx); err != nil {
		t.Fatal(err)
	}
	if got, err := vm.Export(ctx, `{__name__="tls_e2e_refused"}`); err != nil || len(got) != 0 {
		t.Fatalf("VictoriaMetrics has %d series of refused pushes (%v), want none: %v", len(got), err, got)
	}
	m := scrapeTLS(t, good, proxy.URL+"/metrics", token)
	wantMetric(t, m, "scoreproxy_auth_failures_total", map[string]string{"reason": "missing"}, 1)
	wantMetric(t, m, "scoreproxy_auth_failures_total", map[string]string{"reason": "invalid"}, 1)

	prom := testenv.StartPrometheus(t, fmt.Sprintf(tlsPromConfig, caFile, cliCertFile, cliKeyFile, proxy.Addr, token))
	comparePromToVM(ctx, t, prom, vm)

	p := promSent(t, prom)
	if p.sent == 0 || p.failed != 0 || p.retried != 0 || p.dropped != 0 {
		t.Errorf("Prometheus remote write: %v sent, %v failed, %v retried, %v dropped; want some sent and none failed",
			p.sent, p.failed, p.retried, p.dropped)
	}
	m = scrapeTLS(t, good, proxy.URL+"/metrics", token)
	for _, reason := range []string{"missing", "invalid", "unsupported", "forbidden_tenant"} {
		want := map[string]float64{"missing": 1, "invalid": 1}[reason]
		wantMetric(t, m, "scoreproxy_auth_failures_total", map[string]string{"reason": reason}, want)
	}
}

// checkRefusals pushes tls_e2e_refused in every way that must be refused:
// each gets 401 or no HTTP answer at all.
func checkRefusals(t *testing.T, addr string, good *tls.Config, roots *x509.CertPool, token string) {
	t.Helper()
	https := "https://" + addr + "/api/v1/write"
	cases := []struct {
		name   string
		client *http.Client
		url    string
		auth   string
		want   int // 0: no HTTP answer (TLS handshake refused)
	}{
		{"wrong token", tlsClient(good), https, "Bearer not-" + token, 401},
		{"no token", tlsClient(good), https, "", 401},
		{"no client certificate", tlsClient(&tls.Config{RootCAs: roots}), https, "Bearer " + token, 0},
		{"CA not trusted", tlsClient(&tls.Config{Certificates: good.Certificates}), https, "Bearer " + token, 0},
		// Go's server answers plain HTTP on a TLS port with a bare 400.
		{"plain HTTP", &http.Client{Timeout: 10 * time.Second}, "http://" + addr + "/api/v1/write", "Bearer " + token, 400},
	}
	for _, c := range cases {
		status, body, err := authPush(c.client, c.url, c.auth, oneSample("tls_e2e_refused", c.name))
		switch {
		case c.want == 0 && err == nil:
			t.Errorf("%s: got HTTP %d %q, want the TLS handshake refused", c.name, status, body)
		case c.want != 0 && (err != nil || status != c.want):
			t.Errorf("%s: got %d %q (error %v), want %d", c.name, status, body, err, c.want)
		default:
			t.Logf("%s: refused (status %d, error %v)", c.name, status, err)
		}
	}
}

// scrapeTLS reads a /metrics page over HTTPS with tc and the bearer token.
func scrapeTLS(t *testing.T, tc *tls.Config, url, token string) testenv.Metrics {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := tlsClient(tc).Do(req)
	if err != nil {
		t.Fatalf("scrape %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("scrape %s: %s %v", url, resp.Status, err)
	}
	m, err := testenv.ParseMetrics(string(body))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// comparePromToVM waits until Prometheus has scraped itself and scoreproxy
// (over HTTPS) a few times, then until VictoriaMetrics holds every series
// Prometheus stored, unchanged, with at least the samples up to then.
func comparePromToVM(ctx context.Context, t *testing.T, prom *testenv.Prometheus, vm *testenv.VictoriaMetrics) {
	t.Helper()
	const sel = `{job=~"prometheus|scoreproxy"}`
	// scoreproxy_requests_received_total only exists when the HTTPS scrape worked.
	snapshot := waitForScrapes(ctx, t, prom, sel,
		map[string]int{"up": 3, "scoreproxy_requests_received_total": 3})
	want := make([]testenv.Series, 0, len(snapshot))
	wantBy := map[string]testenv.Series{}
	for _, s := range snapshot {
		if x := withoutNaN(s.Labels, s); len(x.Timestamps) > 0 {
			want = append(want, x)
			wantBy[x.Key()] = x
		}
	}
	vm.WaitExport(t, sel, 60*time.Second, func(got []testenv.Series) error {
		return diffSeries(want, cutToSnapshot(got, wantBy), 1e-11)
	})
	t.Logf("all %d series Prometheus stored (itself and scoreproxy scraped over HTTPS) arrived over HTTPS with auth", len(want))
}
