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
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"
)

// authConfig is the auth: section of the auth tests: a token bound to
// tenant 5:0, a basic-auth user bound to every project of account 7, and an
// admin token for any tenant.
const authConfig = `auth:
  - name: team5
    bearer_token: secret-five
    tenants: ["5:0"]
  - username: seven
    password: pw-seven
    tenants: ["7:*"]
  - name: admin
    bearer_token: admin-token
    tenants: ["*"]
`

// Secrets that must never appear in answers, logs or /metrics.
var authSecrets = []string{"secret-five", "pw-seven", "admin-token", "wrong-token"}

// tenantSeries is a request with one series per tenant given: "A:B" sets
// vm_account_id and vm_project_id, "A" only vm_account_id, "" neither.
func tenantSeries(tenants ...string) *prompb.WriteRequest {
	wr := &prompb.WriteRequest{}
	for i, t := range tenants {
		labels := []prompb.Label{{Name: "__name__", Value: "anomaly_score"}, {Name: "for", Value: fmt.Sprint("q", i)}}
		if a, p, ok := strings.Cut(t, ":"); ok {
			labels = append(labels, prompb.Label{Name: "vm_account_id", Value: a}, prompb.Label{Name: "vm_project_id", Value: p})
		} else if t != "" {
			labels = append(labels, prompb.Label{Name: "vm_account_id", Value: t})
		}
		wr.Timeseries = append(wr.Timeseries, prompb.TimeSeries{Labels: labels,
			Samples: []prompb.Sample{{Value: float64(i), Timestamp: 1_700_000_000_000}}})
	}
	return wr
}

// postWith posts wr to url with the Authorization set by auth and returns
// the status, the WWW-Authenticate header and the body.
func postWith(t *testing.T, url string, wr *prompb.WriteRequest, auth func(*http.Request)) (int, string, string) {
	t.Helper()
	req := newWriteRequest(t, url, wr)
	if auth != nil {
		auth(req)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.Join(resp.Header.Values("WWW-Authenticate"), "; "), string(body)
}

func bearer(token string) func(*http.Request) {
	return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+token) }
}

func basic(user, pass string) func(*http.Request) {
	return func(r *http.Request) { r.SetBasicAuth(user, pass) }
}

// forwarded is the number of samples the upstream received, by path.
func (u *upstream) forwarded() map[string]int {
	u.mu.Lock()
	defer u.mu.Unlock()
	out := map[string]int{}
	for path, samples := range u.samples {
		for _, n := range samples {
			out[path] += n
		}
	}
	return out
}

// TestAuthTenantBinding is the table of issue #8, item 1: 401 for missing
// or wrong credentials, 403 naming the tenant for a credential bound
// elsewhere (series labels, path tenant, fixed tenant, single node), and
// nothing of a refused request forwarded, in every routing mode.
func TestAuthTenantBinding(t *testing.T) {
	const mt = "/insert/multitenant/prometheus/api/v1/write"
	tests := []struct {
		name, writer string // writer: keys beyond datasource_url
		path         string
		auth         func(*http.Request)
		tenants      []string
		wantStatus   int
		wantBody     string         // in the answer
		wantSent     map[string]int // samples per upstream path
	}{
		{"no credential", "tenant_id: multitenant", "/api/v1/write", nil, []string{"5:0"}, 401, "authentication required", nil},
		{"wrong token", "tenant_id: multitenant", "/api/v1/write", bearer("wrong-token"), []string{"5:0"}, 401, "invalid credentials", nil},
		{"wrong password", "tenant_id: multitenant", "/api/v1/write", basic("seven", "secret-five"), []string{"7:0"}, 401, "invalid credentials", nil},
		{"token as password", "tenant_id: multitenant", "/api/v1/write", basic("team5", "secret-five"), []string{"5:0"}, 401, "invalid credentials", nil},
		{"unknown scheme", "tenant_id: multitenant", "/api/v1/write", func(r *http.Request) { r.Header.Set("Authorization", "Digest x") },
			[]string{"5:0"}, 401, "unsupported Authorization scheme", nil},
		{"own tenant", "tenant_id: multitenant", "/api/v1/write", bearer("secret-five"), []string{"5:0", "5:0"}, 204, "", map[string]int{mt: 2}},
		{"scheme case-insensitive", "tenant_id: multitenant", "/api/v1/write", func(r *http.Request) { r.Header.Set("Authorization", "bearer secret-five") },
			[]string{"5:0"}, 204, "", map[string]int{mt: 1}},
		{"one series elsewhere", "tenant_id: multitenant", "/api/v1/write", bearer("secret-five"), []string{"5:0", "6:0"}, 403,
			`anomaly_score{for="q1",vm_account_id="6",vm_project_id="0"}) is not allowed for credential "team5", which may write to tenants [5:0]`, nil},
		{"other project", "tenant_id: multitenant", "/api/v1/write", bearer("secret-five"), []string{"5:1"}, 403, "tenant 5:1", nil},
		{"no tenant labels is 0:0", "tenant_id: multitenant", "/api/v1/write", bearer("secret-five"), []string{""}, 403, "tenant 0:0", nil},
		{"other path tenant", "tenant_id: multitenant", "/insert/6:0/prometheus/api/v1/write", bearer("secret-five"), []string{"5:0"}, 403,
			"tenant 6:0 (from the request path /insert/6:0/)", nil},
		{"own path tenant overrides labels", "tenant_id: multitenant", "/insert/5/prometheus/api/v1/write", bearer("secret-five"), []string{"6:0"}, 204, "",
			map[string]int{mt: 1}},
		{"account wildcard", "tenant_id: multitenant", "/api/v1/write", basic("seven", "pw-seven"), []string{"7:0", "7:9"}, 204, "", map[string]int{mt: 2}},
		{"account wildcard other account", "tenant_id: multitenant", "/api/v1/write", basic("seven", "pw-seven"), []string{"7:0", "8:0"}, 403, "tenant 8:0", nil},
		{"admin anywhere", "tenant_id: multitenant", "/api/v1/write", bearer("admin-token"), []string{"1:0", "", "6:6"}, 204, "", map[string]int{mt: 3}},
		{"split: one series elsewhere", "tenant_id: multitenant\nrouting:\n  split_tenants: true", "/api/v1/write", bearer("secret-five"),
			[]string{"5:0", "6:0", "5:0"}, 403, "tenant 6:0 (from a series' vm_account_id / vm_project_id labels)", nil},
		{"split: own tenant", "tenant_id: multitenant\nrouting:\n  split_tenants: true", "/api/v1/write", bearer("secret-five"),
			[]string{"5:0", "5"}, 204, "", map[string]int{"/insert/5:0/prometheus/api/v1/write": 2}},
		{"fixed: other tenant", "tenant_id: \"6:0\"", "/api/v1/write", bearer("secret-five"), []string{"5:0"}, 403, "tenant 6:0 (from writer.tenant_id)", nil},
		{"fixed: own tenant", "tenant_id: \"5\"", "/api/v1/write", bearer("secret-five"), []string{""}, 204, "",
			map[string]int{"/insert/5:0/prometheus/api/v1/write": 1}},
		{"single node: restricted", "", "/api/v1/write", bearer("secret-five"), []string{"5:0"}, 403, "single-node", nil},
		{"single node: any tenant", "", "/api/v1/write", bearer("admin-token"), []string{"5:0"}, 204, "", map[string]int{"/api/v1/write": 1}},
	}
	for _, tt := range tests {
		for _, format := range []string{"", "  metric_format:\n    __name__: \"vmanomaly_$VAR\"\n    for: \"$QUERY_KEY\"\n"} {
			t.Run(fmt.Sprintf("%s/format=%v", tt.name, format != ""), func(t *testing.T) {
				up, upSrv := newUpstream(t)
				writer := "writer:\n  datasource_url: " + upSrv.URL + "\n" + format
				keys, rest := tt.writer, ""
				if w, r, ok := strings.Cut(keys, "\nrouting:"); ok {
					keys, rest = w, "routing:"+r+"\n"
				}
				if keys != "" {
					writer += "  " + keys + "\n"
				}
				var logs bytes.Buffer
				cfg := writeConfig(t, writer+rest+authConfig)
				p, err := New(cfg, slog.New(slog.NewTextHandler(&logs, nil)))
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(p.client.Close)
				srv := httptest.NewServer(p.handler)
				t.Cleanup(srv.Close)

				status, challenge, body := postWith(t, srv.URL+tt.path, tenantSeries(tt.tenants...), tt.auth)
				if status != tt.wantStatus || !strings.Contains(body, tt.wantBody) {
					t.Fatalf("got %d %q, want %d containing %q", status, body, tt.wantStatus, tt.wantBody)
				}
				if status == 401 && !strings.Contains(challenge, `Bearer realm="scoreproxy"`) {
					t.Errorf("401 without a Bearer challenge: WWW-Authenticate %q", challenge)
				}
				if got := up.forwarded(); fmt.Sprint(got) != fmt.Sprint(orEmpty(tt.wantSent)) {
					t.Errorf("upstream received %v, want %v", got, orEmpty(tt.wantSent))
				}
				_, metricsText := getWith(t, srv.URL+"/metrics", bearer("admin-token"))
				for _, s := range authSecrets {
					if strings.Contains(body, s) || strings.Contains(logs.String(), s) || strings.Contains(metricsText, s) {
						t.Errorf("secret %q leaked (answer %q, logs %q)", s, body, logs.String())
					}
				}
			})
		}
	}
}

func orEmpty(m map[string]int) map[string]int {
	if m == nil {
		return map[string]int{}
	}
	return m
}

// getWith sends GET url with the Authorization set by auth (none when nil)
// and returns the status and the body.
func getWith(t *testing.T, url string, auth func(*http.Request)) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if auth != nil {
		auth(req)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// TestAuthCachedRewriteStillChecked: a series whose rewrite the router has
// cached (sent before by a credential allowed to) is still refused to a
// credential bound elsewhere; /health needs no credential, /metrics the
// admin's.
func TestAuthCachedRewriteStillChecked(t *testing.T) {
	up, upSrv := newUpstream(t)
	cfg := writeConfig(t, "writer:\n  datasource_url: "+upSrv.URL+"\n  tenant_id: multitenant\n  metric_format:\n    __name__: \"vmanomaly_$VAR\"\n"+authConfig)
	srv := startProxy(t, cfg)
	wr := tenantSeries("6:0", "5:0")
	for range 2 {
		if status, _, body := postWith(t, srv.URL+"/api/v1/write", wr, bearer("admin-token")); status != 204 {
			t.Fatalf("admin: %d %s", status, body)
		}
	}
	if status, _, body := postWith(t, srv.URL+"/api/v1/write", wr, bearer("secret-five")); status != 403 || !strings.Contains(body, "tenant 6:0") {
		t.Fatalf("team5 after caching: %d %s, want 403 naming 6:0", status, body)
	}
	if got := up.forwarded()["/insert/multitenant/prometheus/api/v1/write"]; got != 4 {
		t.Errorf("upstream received %d samples, want the admin's 4 only", got)
	}
	if code, _ := getWith(t, srv.URL+"/health", nil); code != 200 {
		t.Errorf("/health without credentials: %d, want 200", code)
	}
	if code, _ := getWith(t, srv.URL+"/metrics", nil); code != 401 {
		t.Errorf("/metrics without credentials: %d, want 401", code)
	}
	if _, m := getWith(t, srv.URL+"/metrics", bearer("admin-token")); !strings.Contains(m, `scoreproxy_auth_failures_total{reason="forbidden_tenant"}`) {
		t.Errorf("/metrics lacks scoreproxy_auth_failures_total{reason=\"forbidden_tenant\"}")
	}
}

// TestAuthTokenFileRotation: an auth: entry's bearer_token_file is re-read
// when it changes, so a rotated secret replaces the old token without a
// reload; a file that disappears keeps its last token working.
func TestAuthTokenFileRotation(t *testing.T) {
	old := tokenRecheck
	tokenRecheck = 10 * time.Millisecond
	t.Cleanup(func() { tokenRecheck = old })
	_, upSrv := newUpstream(t)
	file := filepath.Join(t.TempDir(), "team.token")
	writeFileT(t, file, "old-token\n")
	_, srv, _ := startReloader(t, reloadConfig(upSrv.URL, "a", "auth:\n  - bearer_token_file: "+file+"\n    tenants: [\"*\"]\n"))
	url := srv.URL + "/api/v1/write"
	expect := func(step, token string, want int) {
		t.Helper()
		if code, _, body := postWith(t, url, tenantSeries("5:0"), bearer(token)); code != want {
			t.Errorf("%s: token %q answered %d %q, want %d", step, token, code, body, want)
		}
	}
	expect("before the rotation", "old-token", 204)
	expect("before the rotation", "new-token-2", 401)
	writeFileT(t, file, "new-token-2\n")
	time.Sleep(30 * time.Millisecond)
	expect("after the rotation", "old-token", 401)
	expect("after the rotation", "new-token-2", 204)
	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	time.Sleep(30 * time.Millisecond)
	expect("file gone", "new-token-2", 204)
}

// twoHeaders sets a valid Authorization header and then a wrong one.
func twoHeaders(r *http.Request) {
	r.Header.Add("Authorization", "Bearer admin-token")
	r.Header.Add("Authorization", "Bearer wrong-token")
}

// TestAuthSeveralHeaders: a request with two Authorization headers, valid
// first and wrong second (or the reverse), gets 400 saying so and writes
// nothing, on the write paths and on /metrics.
func TestAuthSeveralHeaders(t *testing.T) {
	up, upSrv := newUpstream(t)
	srv := startProxy(t, writeConfig(t, "writer:\n  datasource_url: "+upSrv.URL+"\n  tenant_id: multitenant\n"+authConfig))
	reversed := func(r *http.Request) {
		r.Header.Add("Authorization", "Bearer wrong-token")
		r.Header.Add("Authorization", "Bearer admin-token")
	}
	for name, auth := range map[string]func(*http.Request){"valid first": twoHeaders, "valid second": reversed} {
		status, challenge, body := postWith(t, srv.URL+"/api/v1/write", tenantSeries("5:0"), auth)
		if status != 400 || !strings.Contains(body, "several Authorization headers: send exactly one credential") || challenge != "" {
			t.Errorf("write, %s: %d %q (WWW-Authenticate %q), want 400 saying several headers, no challenge", name, status, body, challenge)
		}
		if code, body := getWith(t, srv.URL+"/metrics", auth); code != 400 || !strings.Contains(body, "several Authorization headers") {
			t.Errorf("/metrics, %s: %d %q, want 400", name, code, body)
		}
	}
	if got := up.forwarded(); len(got) != 0 {
		t.Errorf("upstream received %v, want nothing", got)
	}
	if _, m := getWith(t, srv.URL+"/metrics", bearer("admin-token")); !strings.Contains(m, `scoreproxy_auth_failures_total{reason="several"} 4`) {
		t.Errorf("/metrics does not count 4 refusals with reason=\"several\"")
	}
}

// TestOperationalEndpointsWithAuth: with auth:, GET /metrics and POST
// /-/reload need a credential with tenants ["*"] or their key: 401 with the
// challenge without one, 403 for a credential bound to some tenants, 200
// for the admin credential or the key; server.metrics_open and
// server.reload_open leave them open on purpose.
func TestOperationalEndpointsWithAuth(t *testing.T) {
	_, upSrv := newUpstream(t)
	type call struct {
		method, path string
		auth         func(*http.Request)
		want         int
		body         string
	}
	none := (func(*http.Request))(nil)
	cases := []struct {
		name   string
		server string
		calls  []call
	}{
		{"credential only", "", []call{
			{"GET", "/metrics", none, 401, `authentication required: send one of the credentials of the proxy's auth: section; /metrics needs one with tenants ["*"]`},
			{"GET", "/metrics", bearer("wrong-token"), 401, "invalid credentials"},
			{"GET", "/metrics", bearer("secret-five"), 403, `credential "team5" may write to tenants [5:0] only; /metrics needs one with tenants ["*"]`},
			{"GET", "/metrics", basic("seven", "pw-seven"), 403, `credential "seven" may write to tenants [7:*] only`},
			{"GET", "/metrics", bearer("admin-token"), 200, "scoreproxy_requests_received_total"},
			{"POST", "/-/reload", none, 401, `/-/reload needs one with tenants ["*"]`},
			{"POST", "/-/reload", bearer("secret-five"), 403, `credential "team5" may write to tenants [5:0] only`},
			{"POST", "/-/reload", bearer("admin-token"), 200, "config reloaded"},
		}},
		{"credential or key", "server:\n  metrics_auth_key: m-key\n  reload_auth_key: r-key\n", []call{
			{"GET", "/metrics", none, 401, `/metrics needs one with tenants ["*"], or the authKey query argument set to server.metrics_auth_key`},
			{"GET", "/metrics?authKey=m-key", none, 200, "scoreproxy_requests_received_total"},
			{"GET", "/metrics?authKey=r-key", bearer("admin-token"), 401, "the authKey query argument does not match server.metrics_auth_key"},
			{"GET", "/metrics", bearer("admin-token"), 200, "scoreproxy_requests_received_total"},
			{"POST", "/-/reload?authKey=r-key", none, 200, "config reloaded"},
			{"POST", "/-/reload", bearer("secret-five"), 403, "or the authKey query argument set to server.reload_auth_key"},
		}},
		{"open on purpose", "server:\n  metrics_open: true\n  reload_open: true\n", []call{
			{"GET", "/metrics", none, 200, "scoreproxy_requests_received_total"},
			{"POST", "/-/reload", none, 200, "config reloaded"},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, srv, _ := startReloader(t, reloadConfig(upSrv.URL, "a", tc.server+authConfig))
			for _, c := range tc.calls {
				req, _ := http.NewRequest(c.method, srv.URL+c.path, nil)
				if c.auth != nil {
					c.auth(req)
				}
				code, challenge, body := send(t, req)
				if code != c.want || !strings.Contains(body, c.body) {
					t.Errorf("%s %s: %d %q, want %d containing %q", c.method, c.path, code, body, c.want, c.body)
				}
				wrongKey := strings.Contains(c.body, "does not match")
				if code == 401 && !wrongKey && !strings.Contains(challenge, `Bearer realm="scoreproxy"`) {
					t.Errorf("%s %s: 401 without a Bearer challenge (WWW-Authenticate %q)", c.method, c.path, challenge)
				}
				for _, s := range authSecrets {
					if code != 200 && strings.Contains(body, s) {
						t.Errorf("%s %s: the answer shows the secret %q", c.method, c.path, s)
					}
				}
			}
		})
	}
}

// send does req and returns the status, the WWW-Authenticate header and
// the body.
func send(t *testing.T, req *http.Request) (int, string, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.Join(resp.Header.Values("WWW-Authenticate"), "; "), string(body)
}
