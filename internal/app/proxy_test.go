package app

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"

	"github.com/scoreproxy/scoreproxy/config"
)

// upstream is a fake VictoriaMetrics that decodes every request with prompb
// and records each sample under the request path.
type upstream struct {
	mu      sync.Mutex
	samples map[string]map[string]int // path -> "series@timestamp" -> times received
	status  int
}

func newUpstream(t *testing.T) (*upstream, *httptest.Server) {
	u := &upstream{samples: map[string]map[string]int{}, status: http.StatusNoContent}
	srv := httptest.NewServer(http.HandlerFunc(u.serve))
	t.Cleanup(srv.Close)
	return u, srv
}

func (u *upstream) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/health" {
		return
	}
	compressed, _ := io.ReadAll(r.Body)
	raw, err := snappy.Decode(nil, compressed)
	var wr prompb.WriteRequest
	if err == nil {
		err = wr.Unmarshal(raw)
	}
	if err != nil || r.Header.Get("Content-Encoding") != "snappy" {
		http.Error(w, fmt.Sprintf("bad request: %v", err), http.StatusBadRequest)
		return
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.samples[r.URL.Path] == nil {
		u.samples[r.URL.Path] = map[string]int{}
	}
	for _, ts := range wr.Timeseries {
		for _, s := range ts.Samples {
			u.samples[r.URL.Path][fmt.Sprintf("%s@%d=%g", seriesText(ts.Labels), s.Timestamp, s.Value)]++
		}
	}
	w.WriteHeader(u.status)
}

func seriesText(labels []prompb.Label) string {
	var parts []string
	for _, l := range labels {
		parts = append(parts, l.Name+"="+l.Value)
	}
	return "{" + strings.Join(parts, ",") + "}"
}

// modelOutputs is a request of n series spread over `tenants` tenants, the
// five standard model outputs for several query keys, 2 samples each.
func modelOutputs(n, tenants int) *prompb.WriteRequest {
	outputs := []string{"anomaly_score", "y", "yhat", "yhat_lower", "yhat_upper"}
	wr := &prompb.WriteRequest{}
	for i := 0; i < n; i++ {
		labels := []prompb.Label{
			{Name: "__name__", Value: outputs[i%5]},
			{Name: "for", Value: fmt.Sprintf("query_%d", i/5%4)},
			{Name: "instance", Value: fmt.Sprintf("node-%d:9100", i/20)},
			{Name: "vm_account_id", Value: fmt.Sprint(i % tenants)},
			{Name: "vm_project_id", Value: "0"},
		}
		wr.Timeseries = append(wr.Timeseries, prompb.TimeSeries{Labels: labels, Samples: []prompb.Sample{
			{Value: float64(i), Timestamp: 1_700_000_000_000}, {Value: float64(i) + 0.5, Timestamp: 1_700_000_060_000}}})
	}
	return wr
}

// expected renders where each sample of wr must arrive for a mode.
func expected(wr *prompb.WriteRequest, pathFor func(account string) string, keepTenant bool) map[string]map[string]int {
	out := map[string]map[string]int{}
	for _, ts := range wr.Timeseries {
		var labels []prompb.Label
		var account string
		for _, l := range ts.Labels {
			switch {
			case l.Name == "__name__":
				l.Value = "vmanomaly_" + l.Value
			case l.Name == "for":
				l.Value = "q_" + l.Value
			case l.Name == "vm_account_id":
				account = l.Value
			}
			if keepTenant || !strings.HasPrefix(l.Name, "vm_") {
				labels = append(labels, l)
			}
		}
		labels = append(labels, prompb.Label{Name: "run", Value: "test_metric_format"})
		sort.Slice(labels, func(i, j int) bool { return labels[i].Name < labels[j].Name })
		path := pathFor(account)
		if out[path] == nil {
			out[path] = map[string]int{}
		}
		for _, s := range ts.Samples {
			out[path][fmt.Sprintf("%s@%d=%g", seriesText(labels), s.Timestamp, s.Value)]++
		}
	}
	return out
}

func writeConfig(t *testing.T, yaml string) *config.Config { return writeConfigB(t, yaml) }

func writeConfigB(t testing.TB, yaml string) *config.Config {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, _, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func startProxy(t *testing.T, cfg *config.Config) *httptest.Server { return startProxyB(t, cfg) }

func startProxyB(t testing.TB, cfg *config.Config) *httptest.Server {
	t.Helper()
	p, err := New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.client.Close)
	srv := httptest.NewServer(p.handler)
	t.Cleanup(srv.Close)
	return srv
}

// newWriteRequest builds a snappy RW1 POST of wr to url, as Prometheus sends it.
func newWriteRequest(t *testing.T, url string, wr *prompb.WriteRequest) *http.Request {
	t.Helper()
	raw, err := wr.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(snappy.Encode(nil, raw)))
	req.Header.Set("Content-Encoding", "snappy")
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	return req
}

func post(t *testing.T, url string, wr *prompb.WriteRequest) *http.Response {
	t.Helper()
	resp, err := http.DefaultClient.Do(newWriteRequest(t, url, wr))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

// TestThousandSeriesOverTenTenants is the core acceptance check: a 1,000
// series request spread over 10 tenants, sent to /api/v1/write, reaches the
// upstream exactly once per sample, at the right path for each mode, named
// by the metric_format.
func TestThousandSeriesOverTenTenants(t *testing.T) {
	wr := modelOutputs(1000, 10)
	cases := []struct {
		name       string
		tenant     string
		split      bool
		pathFor    func(account string) string
		keepTenant bool
	}{
		{"single node", ``, false, func(string) string { return "/api/v1/write" }, true},
		{"fixed tenant", `tenant_id: "3:4"`, false, func(string) string { return "/insert/3:4/prometheus/api/v1/write" }, true},
		{"multitenant", `tenant_id: multitenant`, false, func(string) string { return "/insert/multitenant/prometheus/api/v1/write" }, true},
		{"split", `tenant_id: multitenant`, true, func(a string) string { return "/insert/" + a + ":0/prometheus/api/v1/write" }, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			up, upSrv := newUpstream(t)
			cfg := writeConfig(t, fmt.Sprintf(`
writer:
  datasource_url: %s/
  %s
  metric_format:
    __name__: vmanomaly_$VAR
    for: q_$QUERY_KEY
    run: test_metric_format
routing:
  split_tenants: %v
`, upSrv.URL, tc.tenant, tc.split))
			proxy := startProxy(t, cfg)
			// Twice: the second request is decoded and routed from the
			// rewrite cache, and must reach the upstream the same way.
			for range 2 {
				if resp := post(t, proxy.URL+"/api/v1/write", wr); resp.StatusCode != http.StatusNoContent {
					t.Fatalf("status %d", resp.StatusCode)
				}
			}
			want := expected(wr, tc.pathFor, tc.keepTenant)
			for _, samples := range want {
				for key := range samples {
					samples[key] *= 2
				}
			}
			if len(up.samples) != len(want) {
				t.Errorf("upstream got %d paths, want %d", len(up.samples), len(want))
			}
			total := 0
			for path, samples := range want {
				for key, n := range samples {
					if got := up.samples[path][key]; got != n {
						t.Fatalf("%s %s: received %d times, want %d", path, key, got, n)
					}
				}
				if len(up.samples[path]) != len(samples) {
					t.Errorf("%s: %d distinct samples, want %d", path, len(up.samples[path]), len(samples))
				}
				total += len(samples)
			}
			if total != 2000 {
				t.Errorf("expected 2000 samples in total, counted %d", total)
			}
		})
	}
}

func TestUpstreamStatusReachesProducer(t *testing.T) {
	cases := []struct{ upstream, want int }{
		{http.StatusNoContent, http.StatusNoContent},
		{http.StatusOK, http.StatusNoContent},
		{http.StatusBadRequest, http.StatusBadRequest},
		{http.StatusTooManyRequests, http.StatusTooManyRequests},
		{http.StatusInternalServerError, http.StatusServiceUnavailable},
		{http.StatusBadGateway, http.StatusServiceUnavailable},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprint(tc.upstream), func(t *testing.T) {
			up, upSrv := newUpstream(t)
			up.status = tc.upstream
			proxy := startProxy(t, writeConfig(t, "writer:\n  datasource_url: "+upSrv.URL+"\n"))
			if resp := post(t, proxy.URL+"/api/v1/write", modelOutputs(10, 1)); resp.StatusCode != tc.want {
				t.Errorf("upstream %d: producer got %d, want %d", tc.upstream, resp.StatusCode, tc.want)
			}
		})
	}
}

func TestOperationalEndpoints(t *testing.T) {
	_, upSrv := newUpstream(t)
	proxy := startProxy(t, writeConfig(t, "writer:\n  datasource_url: "+upSrv.URL+"\n"))
	post(t, proxy.URL+"/api/v1/write", modelOutputs(10, 1))
	for path, want := range map[string]string{
		"/health":  "OK",
		"/metrics": "scoreproxy_samples_received_total",
		"/nope":    "no handler for /nope",
	} {
		resp, err := http.Get(proxy.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(body), want) {
			t.Errorf("%s: %q does not contain %q", path, body, want)
		}
	}
}

// TestPathTenantAfterCachedSeries: a series first written to /api/v1/write
// (so its labels are cached and the decoder skips them next time), then
// written to /insert/<tenant>/..., must arrive with all its labels.
func TestPathTenantAfterCachedSeries(t *testing.T) {
	up, upSrv := newUpstream(t)
	proxy := startProxy(t, writeConfig(t, "writer:\n  datasource_url: "+upSrv.URL+
		"\n  tenant_id: multitenant\n  metric_format: {__name__: vmanomaly_$VAR, for: $QUERY_KEY}\nrouting:\n  split_tenants: true\n"))
	wr := modelOutputs(5, 1)
	for _, path := range []string{"/api/v1/write", "/insert/7:2/prometheus/api/v1/write"} {
		if resp := post(t, proxy.URL+path, wr); resp.StatusCode != http.StatusNoContent {
			t.Fatalf("%s: status %d", path, resp.StatusCode)
		}
	}
	got := up.samples["/insert/7:2/prometheus/api/v1/write"]
	want := expected(wr, func(string) string { return "" }, false)[""]
	for key := range want {
		key = strings.ReplaceAll(key, ",run=test_metric_format", "")
		key = strings.ReplaceAll(key, "q_query", "query")
		if got[key] != 1 {
			t.Errorf("missing at the path tenant: %s (got %v)", key, got)
			break
		}
	}
}
