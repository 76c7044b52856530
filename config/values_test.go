package config

import (
	"path/filepath"
	"testing"
	"time"
)

const datasource = "writer:\n  datasource_url: http://localhost:8428\n"

func TestVerifyTLS(t *testing.T) {
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.crt")
	writeFile(t, ca, "-----BEGIN CERTIFICATE-----\n")
	tests := []struct {
		value  string // "" leaves the key out
		verify bool
		caFile string
	}{
		{"", true, ""},
		{"true", true, ""},
		{"false", false, ""},
		{"True", true, ""},   // Python style, a YAML bool
		{"FALSE", false, ""}, // a YAML bool too
		{`"true"`, true, ""}, // quoted: a string, any case
		{`"False"`, false, ""},
		{`"fAlSe"`, false, ""},
		{ca, true, ca}, // a CA bundle: verify with it
	}
	for _, tt := range tests {
		doc := datasource
		if tt.value != "" {
			doc += "  verify_tls: " + tt.value + "\n"
		}
		cfg, _ := mustParse(t, doc)
		if cfg.Writer.VerifyTLS != tt.verify || cfg.Writer.CAFile != tt.caFile {
			t.Errorf("verify_tls: %s gives VerifyTLS=%v CAFile=%q; want %v %q",
				tt.value, cfg.Writer.VerifyTLS, cfg.Writer.CAFile, tt.verify, tt.caFile)
		}
	}
}

func TestByteSizes(t *testing.T) {
	tests := []struct {
		value string
		want  int64
	}{
		{"1048576", 1 << 20},
		{`"1048576"`, 1 << 20},
		{"64MiB", 64 << 20},
		{`"64 MiB"`, 64 << 20},
		{"64mib", 64 << 20},
		{"64MB", 64_000_000},
		{"1KB", 1000},
		{"1KiB", 1024},
		{"2GB", 2_000_000_000},
		{"1GiB", 1 << 30},
		{"4096B", 4096},
	}
	for _, tt := range tests {
		cfg, _ := mustParse(t, datasource+"limits:\n  max_request_bytes: 1\n  max_decoded_bytes: "+tt.value+"\n")
		if got := cfg.Limits.MaxDecodedBytes; got != tt.want {
			t.Errorf("max_decoded_bytes: %s = %d; want %d", tt.value, got, tt.want)
		}
	}
}

func TestTimeouts(t *testing.T) {
	tests := []struct {
		value string
		want  time.Duration
	}{
		{"5s", 5 * time.Second},
		{`"5s"`, 5 * time.Second}, // how vmanomaly passes it
		{"1m30s", 90 * time.Second},
		{"500ms", 500 * time.Millisecond},
		{"5", 5 * time.Second}, // a bare number is seconds
		{`"5"`, 5 * time.Second},
		{"2.5", 2500 * time.Millisecond},
		{"0.5", 500 * time.Millisecond},
	}
	for _, tt := range tests {
		cfg, _ := mustParse(t, datasource+"  timeout: "+tt.value+"\nserver:\n  idle_timeout: "+tt.value+"\n")
		if cfg.Writer.Timeout != tt.want || cfg.Server.IdleTimeout != tt.want {
			t.Errorf("timeout: %s = %v (server: %v); want %v", tt.value, cfg.Writer.Timeout, cfg.Server.IdleTimeout, tt.want)
		}
	}
}

// metric_format values that YAML reads as numbers or bools are kept as
// written; anchors and aliases work.
func TestMetricFormatScalars(t *testing.T) {
	cfg, _ := mustParse(t, datasource+`  metric_format:
    __name__: &name vmanomaly_$VAR
    for: $QUERY_KEY
    version: 1.50
    replica: 2
    canary: true
    copy: *name
    empty: ""
`)
	want := map[string]string{"__name__": "vmanomaly_$VAR", "for": "$QUERY_KEY", "version": "1.50",
		"replica": "2", "canary": "true", "copy": "vmanomaly_$VAR", "empty": ""}
	for k, v := range want {
		if got, ok := cfg.Writer.MetricFormat[k]; !ok || got != v {
			t.Errorf("metric_format.%s = %q; want %q", k, got, v)
		}
	}
	if len(cfg.Writer.MetricFormat) != len(want) {
		t.Errorf("metric_format = %v; want %v", cfg.Writer.MetricFormat, want)
	}
}

// String keys take any scalar as written, so an unquoted number works.
func TestStringKeysTakeScalars(t *testing.T) {
	cfg, _ := mustParse(t, datasource+"  tenant_id: 5\n  user: 1234\n  password: 0042\n")
	if cfg.Writer.TenantID != "5" || cfg.Writer.User != "1234" || cfg.Writer.Password != "0042" {
		t.Errorf("got tenant_id=%q user=%q password=%q", cfg.Writer.TenantID, cfg.Writer.User, cfg.Writer.Password)
	}
	// YAML 1.2 has no base-60 numbers: an unquoted 0:0 is the string "0:0".
	cfg, _ = mustParse(t, datasource+"  tenant_id: 0:0\n")
	if cfg.Writer.TenantID != "0:0" {
		t.Errorf("unquoted tenant_id: 0:0 = %q; want \"0:0\"", cfg.Writer.TenantID)
	}
}
