package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// The "Config example" of the vmanomaly writer docs, verbatim, must load.
func TestParseWriterDocsExample(t *testing.T) {
	const doc = `
writer:
  class: "vm"  # or "writer.vm.VmWriter" until v1.13.0
  datasource_url: "http://localhost:8428/"
  tenant_id: "0:0"
  metric_format:
    __name__: "vmanomaly_$VAR"
    for: "$QUERY_KEY"
    run: "test_metric_format"
    config: "io_vm_single.yaml"
  import_json_path: "/api/v1/import"
  health_path: "health"
  user: "foo"
  password: "bar"
`
	cfg, warnings := mustParse(t, doc)
	want := Writer{
		Class:         "vm",
		DatasourceURL: "http://localhost:8428/",
		TenantID:      "0:0",
		MetricFormat: map[string]string{
			"__name__": "vmanomaly_$VAR",
			"for":      "$QUERY_KEY",
			"run":      "test_metric_format",
			"config":   "io_vm_single.yaml",
		},
		ImportJSONPath: "/api/v1/import",
		HealthPath:     "health",
		User:           "foo",
		Password:       "bar",
		Timeout:        5 * time.Second,
		VerifyTLS:      true,
		Output:         OutputRemoteWrite,
		Compression:    CompressionSnappy,
	}
	if !reflect.DeepEqual(cfg.Writer, want) {
		t.Errorf("writer:\n got %+v\nwant %+v", cfg.Writer, want)
	}
	if got := cfg.Writer.HealthURL(); got != "http://localhost:8428/health" {
		t.Errorf("HealthURL() = %q", got)
	}
	// import_json_path is set explicitly but has no use here: one warning.
	if len(warnings) != 1 || !strings.Contains(warnings[0], "writer.import_json_path") {
		t.Errorf("warnings = %q; want one about writer.import_json_path", warnings)
	}
	if _, err := cfg.CompileFormat(); err != nil {
		t.Errorf("CompileFormat: %v", err)
	}
}

func TestParseDefaults(t *testing.T) {
	cfg, warnings := mustParse(t, "writer:\n  datasource_url: http://localhost:8428\n")
	want := &Config{
		Listen: "127.0.0.1:8490",
		Writer: Writer{
			DatasourceURL:  "http://localhost:8428",
			ImportJSONPath: "/api/v1/import",
			HealthPath:     "/health",
			Timeout:        5 * time.Second,
			VerifyTLS:      true,
			Output:         OutputRemoteWrite,
			Compression:    CompressionSnappy,
		},
		Routing: Routing{QueryKeyLabel: "for"},
		Limits: Limits{MaxRequestBytes: 32 << 20, MaxDecodedBytes: 128 << 20, MaxInflightBytes: 256 << 20, RequestLimits: RequestLimits{
			MaxSeriesPerRequest: DefaultMaxSeriesPerRequest, MaxLabelsPerSeries: DefaultMaxLabelsPerSeries,
			MaxLabelNameLength: DefaultMaxLabelNameLength, MaxLabelValueLength: DefaultMaxLabelValueLength,
			MaxConcurrentRequests: DefaultMaxConcurrentRequests, MinBodyRate: 4096, BodyRateGrace: 5 * time.Second}},
		Server: Server{
			ReadHeaderTimeout:   10 * time.Second,
			ReadTimeout:         time.Minute,
			IdleTimeout:         2 * time.Minute,
			ShutdownTimeout:     30 * time.Second,
			HealthCheckInterval: 10 * time.Second,
		},
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("defaults:\n got %+v\nwant %+v", cfg, want)
	}
	if len(warnings) != 0 {
		t.Errorf("warnings = %q; want none", warnings)
	}
	if f, err := cfg.CompileFormat(); err != nil || !f.Identity() {
		t.Errorf("CompileFormat() = %v, %v; want the identity", f, err)
	}
}

// Keys set to null or "" take their default, as if left out.
func TestParseEmptyValuesMeanDefault(t *testing.T) {
	cfg, _ := mustParse(t, `
listen: ""
writer:
  datasource_url: http://localhost:8428
  health_path:
  timeout: ~
  verify_tls:
routing:
  query_key_label: ""
`)
	if cfg.Listen != DefaultListen || cfg.Writer.HealthPath != DefaultHealthPath ||
		cfg.Writer.Timeout != DefaultTimeout || !cfg.Writer.VerifyTLS || cfg.Routing.QueryKeyLabel != "for" {
		t.Errorf("got %+v; want defaults", cfg)
	}
}

func TestURLs(t *testing.T) {
	tests := []struct {
		datasource, healthPath string
		base, health           string
	}{
		{"http://vm:8428", "/health", "http://vm:8428", "http://vm:8428/health"},
		{"http://vm:8428/", "/health", "http://vm:8428", "http://vm:8428/health"},
		{"http://vm:8428/", "health", "http://vm:8428", "http://vm:8428/health"},
		{"http://vm:8428", "health", "http://vm:8428", "http://vm:8428/health"},
		{"http://vmauth:8427/vm/", "/health", "http://vmauth:8427/vm", "http://vmauth:8427/vm/health"},
		{"http://vm:8428//", "//health", "http://vm:8428", "http://vm:8428/health"},
		{"http://vminsert:8480/", "http://vminsert:8480/health", "http://vminsert:8480", "http://vminsert:8480/health"},
		{"https://vm:8428/", "https://other:9000/ready?x=1", "https://vm:8428", "https://other:9000/ready?x=1"},
		{"http://vm:8428/", "", "http://vm:8428", "http://vm:8428/health"},
	}
	for _, tt := range tests {
		w := Writer{DatasourceURL: tt.datasource, HealthPath: tt.healthPath}
		if got := w.BaseURL(); got != tt.base {
			t.Errorf("BaseURL(%q) = %q; want %q", tt.datasource, got, tt.base)
		}
		if got := w.HealthURL(); got != tt.health {
			t.Errorf("HealthURL(%q, %q) = %q; want %q", tt.datasource, tt.healthPath, got, tt.health)
		}
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	bad := filepath.Join(dir, "bad.yaml")
	writeFile(t, good, "writer:\n  datasource_url: http://localhost:8428\n")
	writeFile(t, bad, "writer:\n  tenant_id: abc\n")

	if _, _, err := Load(good); err != nil {
		t.Errorf("Load(good): %v", err)
	}
	_, _, err := Load(bad)
	// Every problem is reported, each prefixed with the file name.
	for _, want := range []string{bad + ": writer.datasource_url: missing", bad + `: writer.tenant_id: "abc" is not a tenant`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Load(bad) error %v\nwant it to contain %q", err, want)
		}
	}
	if _, _, err := Load(filepath.Join(dir, "missing.yaml")); !os.IsNotExist(err) {
		t.Errorf("Load(missing) error = %v; want not-exist", err)
	}
}

// mustParse parses a config the test expects to be valid.
func mustParse(t *testing.T, doc string) (*Config, []string) {
	t.Helper()
	cfg, warnings, err := Parse([]byte(doc))
	if err != nil {
		t.Fatalf("Parse:\n%s\nerror: %v", doc, err)
	}
	return cfg, warnings
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
