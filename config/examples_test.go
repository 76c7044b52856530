package config

import (
	"maps"
	"path/filepath"
	"testing"
)

// Every file in examples/ must load without errors or warnings; the files
// of the four writer modes must also say what their name promises. A new
// example is covered by the glob; add its promises to the table.
func TestExamples(t *testing.T) {
	defaults, _ := mustParse(t, "writer:\n  datasource_url: http://localhost:8428\n")
	seedFormat := map[string]string{"__name__": "vmanomaly_$VAR", "for": "$QUERY_KEY"}
	modes := map[string]struct {
		datasource, tenant string
		split              bool
	}{
		"single-node.yaml":   {"http://127.0.0.1:8428", "", false},
		"fixed-tenant.yaml":  {"http://127.0.0.1:8480", "5:0", false},
		"multitenant.yaml":   {"http://127.0.0.1:8480", Multitenant, false},
		"split-tenants.yaml": {"http://127.0.0.1:8480", Multitenant, true},
	}
	files, err := filepath.Glob(filepath.Join("..", "examples", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples found: %v", err)
	}
	seen := 0
	for _, file := range files {
		cfg, warnings, err := Load(file)
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		if len(warnings) > 0 {
			t.Errorf("%s: warnings %q; an example should load cleanly", file, warnings)
		}
		if _, err := cfg.CompileFormat(); err != nil {
			t.Errorf("%s: %v", file, err)
		}
		mode, ok := modes[filepath.Base(file)]
		if !ok {
			continue
		}
		seen++
		w := cfg.Writer
		if w.BaseURL() != mode.datasource || w.TenantID != mode.tenant || cfg.Routing.SplitTenants != mode.split {
			t.Errorf("%s: datasource_url=%q tenant_id=%q split_tenants=%v; want %q %q %v",
				file, w.BaseURL(), w.TenantID, cfg.Routing.SplitTenants, mode.datasource, mode.tenant, mode.split)
		}
		if !maps.Equal(w.MetricFormat, seedFormat) {
			t.Errorf("%s: metric_format = %v; want the seed's %v", file, w.MetricFormat, seedFormat)
		}
		// The comments say the values shown for these sections are the defaults.
		if cfg.Listen != defaults.Listen || cfg.Limits != defaults.Limits || cfg.Server != defaults.Server {
			t.Errorf("%s: listen/limits/server differ from the defaults", file)
		}
	}
	if seen != len(modes) {
		t.Errorf("found %d of the %d mode examples in ../examples", seen, len(modes))
	}
}
