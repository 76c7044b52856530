package app

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

func keyedConfig(upstreamURL, prefix, reloadKey string) string {
	return reloadConfig(upstreamURL, prefix, "server:\n  reload_auth_key: "+reloadKey+"\n  metrics_auth_key: m-key\n")
}

func call(t *testing.T, method, url string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// TestAuthKeys: with server.reload_auth_key and server.metrics_auth_key,
// /-/reload and /metrics answer 401 without the authKey query argument or
// with a wrong one, and work with the right one; a refused reload changes
// nothing, and a reload that changes the key makes the new key the one
// that works. The write paths do not take the keys.
func TestAuthKeys(t *testing.T) {
	up, upSrv := newUpstream(t)
	_, srv, path := startReloader(t, keyedConfig(upSrv.URL, "a", "r-key"))
	writeFileT(t, path, keyedConfig(upSrv.URL, "b", "r-key2"))
	for _, tt := range []struct {
		name, method, path string
		want               int
		body               string
	}{
		{"metrics without key", http.MethodGet, "/metrics", 401, "/metrics needs the authKey query argument set to server.metrics_auth_key"},
		{"metrics with a wrong key", http.MethodGet, "/metrics?authKey=r-key", 401, "does not match server.metrics_auth_key"},
		{"metrics with its key", http.MethodGet, "/metrics?authKey=m-key", 200, "scoreproxy_config_last_reload_successful"},
		{"reload without key", http.MethodPost, "/-/reload", 401, "/-/reload needs the authKey query argument set to server.reload_auth_key"},
		{"reload with a wrong key", http.MethodPost, "/-/reload?authKey=m-key", 401, "does not match server.reload_auth_key"},
		{"GET reload with a wrong key", http.MethodGet, "/-/reload?authKey=x", 401, "does not match"},
	} {
		code, body := call(t, tt.method, srv.URL+tt.path)
		if code != tt.want || !strings.Contains(body, tt.body) {
			t.Errorf("%s: %d %q, want %d containing %q", tt.name, code, body, tt.want, tt.body)
		}
	}
	if code, err := postStatus(srv.URL+"/api/v1/write", modelOutputs(1, 1)); err != nil || code != http.StatusNoContent {
		t.Fatalf("write without a key: %d %v", code, err)
	}
	if got := up.names(); got["a_anomaly_score"] != 2 || len(got) != 1 {
		t.Fatalf("after refused reloads the upstream received %v, want the old a_$VAR names only", got)
	}
	if code, body := call(t, http.MethodPost, srv.URL+"/-/reload?authKey=r-key"); code != 200 {
		t.Fatalf("reload with its key: %d %q", code, body)
	}
	if code, _ := call(t, http.MethodPost, srv.URL+"/-/reload?authKey=r-key"); code != 401 {
		t.Errorf("reload with the key the reload replaced: %d, want 401", code)
	}
	if code, body := call(t, http.MethodPost, srv.URL+"/-/reload?authKey=r-key2"); code != 200 {
		t.Errorf("reload with the new key: %d %q", code, body)
	}
	if code, err := postStatus(srv.URL+"/api/v1/write", modelOutputs(1, 1)); err != nil || code != http.StatusNoContent {
		t.Fatalf("write after the reload: %d %v", code, err)
	}
	if got := up.names(); got["b_anomaly_score"] != 2 {
		t.Errorf("after the reload the upstream received %v, want b_$VAR names too", got)
	}
}
