package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestAuthSection: the auth: list with its defaults, and every error, each
// naming the entry and key and never the secret.
func TestAuthSection(t *testing.T) {
	const ds = "writer:\n  datasource_url: http://localhost:8480/\n"
	dir := t.TempDir()
	tokenFile, emptyFile := filepath.Join(dir, "token"), filepath.Join(dir, "empty")
	os.WriteFile(tokenFile, []byte("tok-from-file\n"), 0o600)
	os.WriteFile(emptyFile, nil, 0o600)

	cfg, _ := mustParse(t, ds+"auth:\n  - bearer_token: s3cret\n    tenants: [\"5:0\"]\n"+
		"  - bearer_token_file: "+tokenFile+"\n    name: team7\n    tenants: [\"7:*\", \"8\"]\n"+
		"  - username: alice\n    password: pw\n    tenants: [\"*\"]\n")
	want := []Credential{
		{Name: "auth[0]", BearerToken: "s3cret", Tenants: []string{"5:0"}},
		{Name: "team7", BearerToken: "tok-from-file", BearerTokenFile: tokenFile, Tenants: []string{"7:*", "8"}},
		{Name: "alice", Username: "alice", Password: "pw", Tenants: []string{"*"}},
	}
	if len(cfg.Auth) != len(want) {
		t.Fatalf("auth: got %+v", cfg.Auth)
	}
	for i := range want {
		if g, w := cfg.Auth[i], want[i]; g.Name != w.Name || g.BearerToken != w.BearerToken || g.BearerTokenFile != w.BearerTokenFile ||
			g.Username != w.Username || g.Password != w.Password || strings.Join(g.Tenants, ",") != strings.Join(w.Tenants, ",") {
			t.Errorf("auth[%d]: got %+v, want %+v", i, g, w)
		}
	}

	errors := []struct{ yaml, want string }{
		{"auth: s3cret\n", "auth: must be a list of credentials, got a single value (!!str)"},
		{"auth:\n  - tenants: [\"5\"]\n", "auth[0]: has no credential; set one of bearer_token, bearer_token_file, or username and password"},
		{"auth:\n  - bearer_token: s3cret\n", `auth[0].tenants: is required: the tenants this credential may write to`},
		{"auth:\n  - bearer_token: s3cret\n    tenants: []\n", `auth[0].tenants: must be a non-empty list of tenant patterns`},
		{"auth:\n  - bearer_token: s3cret\n    tenants: [\"5:x\"]\n", `auth[0].tenants[0]: "5:x" is not a tenant pattern`},
		{"auth:\n  - bearer_token: s3cret\n    tenants: [\"*:0\"]\n", `auth[0].tenants[0]: "*:0" is not a tenant pattern`},
		{"auth:\n  - bearer_token: s3cret\n    username: u\n    password: s3cret\n    tenants: [\"*\"]\n",
			"auth[0]: sets more than one of bearer_token, bearer_token_file and username/password"},
		{"auth:\n  - username: u\n    tenants: [\"*\"]\n", "auth[0]: basic auth needs both username and password"},
		{"auth:\n  - bearer_tokn: s3cret\n    tenants: [\"*\"]\n", `auth[0]: unknown key "bearer_tokn" (line 4); valid keys are: name, bearer_token, bearer_token_file, username, password, tenants; did you mean "bearer_token"?`},
		{"auth:\n  - bearer_token_file: " + emptyFile + "\n    tenants: [\"*\"]\n", "auth[0].bearer_token_file: " + emptyFile + " is empty"},
		{"auth:\n  - bearer_token_file: /nonexistent/tok\n    tenants: [\"*\"]\n", `auth[0].bearer_token_file: cannot use "/nonexistent/tok"`},
		{"auth:\n  - bearer_token: s3cret\n    tenants: [\"1\"]\n  - bearer_token: s3cret\n    tenants: [\"2\"]\n",
			"auth: auth[1] has the same bearer token as auth[0]"},
		{"auth:\n  - bearer_token: [s3cret]\n    tenants: [\"1\"]\n", "auth[0].bearer_token: must be a single value, got a list"},
	}
	for _, tt := range errors {
		_, _, err := Parse([]byte(ds + tt.yaml))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: error %v, want it to contain %q", tt.yaml, err, tt.want)
			continue
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%q: the error shows the secret: %v", tt.yaml, err)
		}
	}
}

// TestServerTLSAndLimitKeys: the inbound TLS keys and the new limits.
func TestServerTLSAndLimitKeys(t *testing.T) {
	const ds = "writer:\n  datasource_url: http://localhost:8480/\n"
	dir := t.TempDir()
	crt := filepath.Join(dir, "c.crt")
	os.WriteFile(crt, []byte("x"), 0o600)
	cfg, _ := mustParse(t, ds+"server:\n  tls_cert_file: "+crt+"\n  tls_key_file: "+crt+"\n  tls_client_ca_file: "+crt+"\n"+
		"limits:\n  max_series_per_request: 10\n  max_concurrent_requests: 3\n  max_samples_per_second_per_tenant: 1000\n"+
		"  min_body_rate: 1KiB\n  body_rate_grace: 2s\n")
	if cfg.Limits.MinBodyRate != 1024 || cfg.Limits.BodyRateGrace != 2*time.Second {
		t.Errorf("body rate: got %d bytes/s after %s, want 1024 after 2s", cfg.Limits.MinBodyRate, cfg.Limits.BodyRateGrace)
	}
	if off, _ := mustParse(t, ds+"limits:\n  min_body_rate: 0\n"); off.Limits.MinBodyRate != 0 {
		t.Errorf("min_body_rate: 0 gave %d, want 0 (off)", off.Limits.MinBodyRate)
	}
	for _, tt := range []struct {
		limits string
		want   int64
	}{
		{"max_inflight_bytes: 300MiB", 300 << 20},
		{"max_inflight_bytes: 160MiB", 160 << 20}, // exactly the default request limits
		{"max_decoded_bytes: 512MiB", 544 << 20},  // left out: grows to fit the largest request
		{"max_request_bytes: 1MiB", DefaultMaxInflightBytes},
	} {
		if c, _ := mustParse(t, ds+"limits:\n  "+tt.limits+"\n"); c.Limits.MaxInflightBytes != tt.want {
			t.Errorf("%s: max_inflight_bytes = %d, want %d", tt.limits, c.Limits.MaxInflightBytes, tt.want)
		}
	}
	if !cfg.Server.ServerTLS.Enabled() || cfg.Server.TLSClientCAFile != crt || cfg.Limits.MaxSeriesPerRequest != 10 ||
		cfg.Limits.MaxConcurrentRequests != 3 || cfg.Limits.MaxSamplesPerSecondPerTenant != 1000 || cfg.Limits.MaxLabelsPerSeries != DefaultMaxLabelsPerSeries {
		t.Errorf("got server %+v limits %+v", cfg.Server, cfg.Limits)
	}
	errors := []struct{ yaml, want string }{
		{"server:\n  tls_cert_file: " + crt + "\n", "server.tls_key_file: is required with server.tls_cert_file"},
		{"server:\n  tls_key_file: " + crt + "\n", "server.tls_cert_file: is required with server.tls_key_file"},
		{"server:\n  tls_client_ca_file: " + crt + "\n", "server.tls_client_ca_file: verifies client certificates over TLS"},
		{"server:\n  tls_cert_file: /nonexistent.crt\n  tls_key_file: " + crt + "\n", `server.tls_cert_file: cannot use "/nonexistent.crt"`},
		{"limits:\n  max_labels_per_series: 0\n", `limits.max_labels_per_series: "0" is not a whole number from 1 to 65536; write e.g. 64`},
		{"limits:\n  max_concurrent_requests: lots\n", `limits.max_concurrent_requests: "lots" is not a whole number`},
	}
	for _, tt := range errors {
		_, _, err := Parse([]byte(ds + tt.yaml))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: error %v, want it to contain %q", tt.yaml, err, tt.want)
		}
	}
}
