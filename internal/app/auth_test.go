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
				metricsText := get(t, srv.URL+"/metrics")
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
// credential bound elsewhere, and read-only endpoints need no credential.
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
	for _, path := range []string{"/health", "/metrics"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("%s without credentials: %d, want 200", path, resp.StatusCode)
		}
	}
	if m := get(t, srv.URL+"/metrics"); !strings.Contains(m, `scoreproxy_auth_failures_total{reason="forbidden_tenant"}`) {
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
