package app

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
)

// vmanomalyLines is what vmanomaly's writer POSTs for two queries over two
// tenants: one JSON line per series, its labels in the writer's order.
const vmanomalyLines = `{"metric":{"__name__":"anomaly_score","for":"cpu","vm_account_id":"1","vm_project_id":"0"},"values":[0.5,1.5],"timestamps":[1700000000000,1700000060000]}
{"metric":{"__name__":"yhat","for":"cpu","vm_account_id":"1","vm_project_id":"0"},"values":[10],"timestamps":[1700000000000]}
{"metric":{"vm_account_id":"2","__name__":"anomaly_score","for":"mem"},"values":[0.25],"timestamps":[1700000000000]}
`

// TestJSONImportThroughThePipeline: the JSON lines vmanomaly's writer sends
// reach the upstream as remote write, renamed by metric_format and routed
// by the tenant mode, on /api/v1/import and on vminsert's tenant paths.
func TestJSONImportThroughThePipeline(t *testing.T) {
	tests := []struct {
		name, writer, routing, path string
		want                        []string // path + series, sorted
	}{
		{"single node", ``, ``, "/api/v1/import", []string{
			`/api/v1/write {__name__=vmanomaly_anomaly_score,for=q_cpu,vm_account_id=1,vm_project_id=0} 2`,
			`/api/v1/write {__name__=vmanomaly_anomaly_score,for=q_mem,vm_account_id=2} 1`,
			`/api/v1/write {__name__=vmanomaly_yhat,for=q_cpu,vm_account_id=1,vm_project_id=0} 1`}},
		{"fixed tenant on a tenant path", `tenant_id: "3:4"`, ``, "/insert/3:4/prometheus/api/v1/import", []string{
			`/insert/3:4/prometheus/api/v1/write {__name__=vmanomaly_anomaly_score,for=q_cpu,vm_account_id=1,vm_project_id=0} 2`,
			`/insert/3:4/prometheus/api/v1/write {__name__=vmanomaly_anomaly_score,for=q_mem,vm_account_id=2} 1`,
			`/insert/3:4/prometheus/api/v1/write {__name__=vmanomaly_yhat,for=q_cpu,vm_account_id=1,vm_project_id=0} 1`}},
		{"multitenant", `tenant_id: multitenant`, ``, "/insert/multitenant/prometheus/api/v1/import", []string{
			`/insert/multitenant/prometheus/api/v1/write {__name__=vmanomaly_anomaly_score,for=q_cpu,vm_account_id=1,vm_project_id=0} 2`,
			`/insert/multitenant/prometheus/api/v1/write {__name__=vmanomaly_anomaly_score,for=q_mem,vm_account_id=2} 1`,
			`/insert/multitenant/prometheus/api/v1/write {__name__=vmanomaly_yhat,for=q_cpu,vm_account_id=1,vm_project_id=0} 1`}},
		{"split", `tenant_id: multitenant`, "routing:\n  split_tenants: true\n", "/api/v1/import", []string{
			`/insert/1:0/prometheus/api/v1/write {__name__=vmanomaly_anomaly_score,for=q_cpu} 2`,
			`/insert/1:0/prometheus/api/v1/write {__name__=vmanomaly_yhat,for=q_cpu} 1`,
			`/insert/2:0/prometheus/api/v1/write {__name__=vmanomaly_anomaly_score,for=q_mem} 1`}},
		{"split, path tenant", `tenant_id: multitenant`, "routing:\n  split_tenants: true\n", "/insert/7:1/prometheus/api/v1/import", []string{
			`/insert/7:1/prometheus/api/v1/write {__name__=vmanomaly_anomaly_score,for=q_cpu} 2`,
			`/insert/7:1/prometheus/api/v1/write {__name__=vmanomaly_anomaly_score,for=q_mem} 1`,
			`/insert/7:1/prometheus/api/v1/write {__name__=vmanomaly_yhat,for=q_cpu} 1`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up, upSrv := newFullUpstream(t)
			proxy := startProxy(t, writeConfig(t, fmt.Sprintf("writer:\n  datasource_url: %s\n  %s\n  metric_format: {__name__: vmanomaly_$VAR, for: q_$QUERY_KEY}\n%s",
				upSrv.URL, tt.writer, tt.routing)))
			for _, gz := range []bool{false, true} {
				if code, msg := postImport(t, proxy.URL+tt.path, vmanomalyLines, gz); code != http.StatusNoContent {
					t.Fatalf("gzip %v: status %d: %s", gz, code, msg)
				}
			}
			got := upstreamLines(up)
			want := append(append([]string{}, tt.want...), tt.want...) // sent twice
			sort.Strings(want)
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("upstream got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		})
	}
}

// TestJSONImportBadInput: a request with one bad line, a gzip bomb or an
// unsupported encoding is refused whole, saying why, and nothing of it
// reaches the upstream.
func TestJSONImportBadInput(t *testing.T) {
	up, upSrv := newFullUpstream(t)
	proxy := startProxy(t, writeConfig(t, fmt.Sprintf("writer:\n  datasource_url: %s\nlimits:\n  max_request_bytes: 1MiB\n  max_decoded_bytes: 1MiB\n", upSrv.URL)))
	bomb := strings.Repeat(" ", 64<<20) // 64 MiB of blanks: a few KB gzipped
	tests := []struct {
		name, body string
		gzip       bool
		code       int
		msg        string
	}{
		{"bad second line", vmanomalyLines + `{"metric":{"__name__":"m"},"values":[1,2],"timestamps":[1]}` + "\n", false, 400,
			`JSON import line 4: "values" has 2 items but "timestamps" has 1`},
		{"gzip bomb", bomb, true, 413, "decompressed JSON import exceeds limits.max_decoded_bytes (1048576 bytes)"},
		{"corrupt gzip", "not gzip", false, 400, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.name == "corrupt gzip" {
				req, _ := http.NewRequest(http.MethodPost, proxy.URL+"/api/v1/import", strings.NewReader(tt.body))
				req.Header.Set("Content-Encoding", "gzip")
				code, msg := do(t, req)
				if code != 400 || !strings.Contains(msg, "corrupt gzip body") {
					t.Fatalf("status %d: %s", code, msg)
				}
				return
			}
			code, msg := postImport(t, proxy.URL+"/api/v1/import", tt.body, tt.gzip)
			if code != tt.code || !strings.Contains(msg, tt.msg) {
				t.Errorf("status %d %q, want %d containing %q", code, msg, tt.code, tt.msg)
			}
		})
	}
	req, _ := http.NewRequest(http.MethodPost, proxy.URL+"/api/v1/import", strings.NewReader(vmanomalyLines))
	req.Header.Set("Content-Encoding", "br")
	if code, msg := do(t, req); code != http.StatusUnsupportedMediaType || !strings.Contains(msg, "send it uncompressed, gzip or zstd") {
		t.Errorf("br: status %d %q", code, msg)
	}
	if got := upstreamLines(up); len(got) != 0 {
		t.Errorf("upstream got %q from refused requests", got)
	}
}

func postImport(t *testing.T, url, lines string, gz bool) (int, string) {
	t.Helper()
	body := []byte(lines)
	if gz {
		var b bytes.Buffer
		w := gzip.NewWriter(&b)
		_, _ = w.Write(body)
		_ = w.Close()
		body = b.Bytes()
	}
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if gz {
		req.Header.Set("Content-Encoding", "gzip")
	}
	return do(t, req)
}

func do(t *testing.T, req *http.Request) (int, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(msg))
}

// upstreamLines is every series the upstream got: "path name{labels} samples", sorted.
func upstreamLines(up *fullUpstream) []string {
	up.mu.Lock()
	defer up.mu.Unlock()
	var lines []string
	for p, reqs := range up.reqs {
		for _, wr := range reqs {
			for _, ts := range wr.Timeseries {
				lines = append(lines, fmt.Sprintf("%s %s %d", p, seriesText(ts.Labels), len(ts.Samples)))
			}
		}
	}
	sort.Strings(lines)
	return lines
}

// TestJSONImportAuthBoundToTenants: a credential bound to a tenant may
// import that tenant's series and no other's, from the series' labels or
// the request path, as for remote write; a refused import forwards nothing.
func TestJSONImportAuthBoundToTenants(t *testing.T) {
	line := func(account string) string {
		return `{"metric":{"__name__":"anomaly_score","for":"q","vm_account_id":"` + account + `"},"values":[1],"timestamps":[1700000000000]}` + "\n"
	}
	tests := []struct {
		name, path, body string
		token            string
		code             int
		msg              string
		sent             int
	}{
		{"no credential", "/api/v1/import", line("5"), "", 401, "authentication required", 0},
		{"own tenant", "/api/v1/import", line("5") + line("5"), "secret-five", 204, "", 2},
		{"one line elsewhere", "/api/v1/import", line("5") + line("6"), "secret-five", 403, `is not allowed for credential "team5"`, 0},
		{"other path tenant", "/insert/6:0/prometheus/api/v1/import", line("5"), "secret-five", 403, "tenant 6:0 (from the request path /insert/6:0/)", 0},
		{"own path tenant", "/insert/5:0/prometheus/api/v1/import", line("6"), "secret-five", 204, "", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up, upSrv := newFullUpstream(t)
			proxy := startProxy(t, writeConfig(t, "writer:\n  datasource_url: "+upSrv.URL+"\n  tenant_id: multitenant\n"+authConfig))
			req, _ := http.NewRequest(http.MethodPost, proxy.URL+tt.path, strings.NewReader(tt.body))
			if tt.token != "" {
				req.Header.Set("Authorization", "Bearer "+tt.token)
			}
			code, msg := do(t, req)
			if code != tt.code || !strings.Contains(msg, tt.msg) {
				t.Fatalf("status %d %q, want %d containing %q", code, msg, tt.code, tt.msg)
			}
			if got := len(upstreamLines(up)); got != tt.sent {
				t.Errorf("upstream got %d series, want %d", got, tt.sent)
			}
		})
	}
}

// TestJSONImportInImportOut: with writer.output: import_json, JSON lines in
// come out as JSON lines at the tenant's import path, renamed by
// metric_format, values and timestamps as sent.
func TestJSONImportInImportOut(t *testing.T) {
	var mu sync.Mutex
	got := map[string]string{}
	upSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health" {
			return
		}
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got[r.URL.Path] += string(b)
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(upSrv.Close)
	proxy := startProxy(t, writeConfig(t, "writer:\n  datasource_url: "+upSrv.URL+"\n  tenant_id: multitenant\n  output: import_json\n"+
		"  metric_format: {__name__: vmanomaly_$VAR, for: $QUERY_KEY}\nrouting:\n  split_tenants: true\n"))
	if code, msg := postImport(t, proxy.URL+"/api/v1/import", vmanomalyLines, false); code != http.StatusNoContent {
		t.Fatalf("status %d: %s", code, msg)
	}
	mu.Lock()
	defer mu.Unlock()
	want := map[string]string{
		"/insert/1:0/prometheus/api/v1/import": `{"metric":{"__name__":"vmanomaly_anomaly_score","for":"cpu"},"values":[0.5,1.5],"timestamps":[1700000000000,1700000060000]}` + "\n" +
			`{"metric":{"__name__":"vmanomaly_yhat","for":"cpu"},"values":[10],"timestamps":[1700000000000]}` + "\n",
		"/insert/2:0/prometheus/api/v1/import": `{"metric":{"__name__":"vmanomaly_anomaly_score","for":"mem"},"values":[0.25],"timestamps":[1700000000000]}` + "\n",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("upstream got\n%v\nwant\n%v", got, want)
	}
}
