package main

import (
	"strings"
	"testing"
)

// TestCompareFlags: compare takes load's workload flags (the anomaly preset
// by default), names the split scenario after the tenant count, and refuses
// a split of series without tenant labels with a message saying what to do.
func TestCompareFlags(t *testing.T) {
	for _, tc := range []struct {
		name      string
		args      []string
		wantErr   string
		preset    string
		scenarios int
		split     string // the split scenarios' title start, "" if none
	}{
		{"defaults", nil, "", "anomaly", 6, "split across 10 tenants"},
		{"both splits", []string{"-scenarios", "split_multitenant,split"}, "", "anomaly", 2, "split across 10 tenants"},
		{"all scenarios, 4 tenants", []string{"-tenants", "4"}, "", "anomaly", 6, "split across 4 tenants"},
		{"defaults again (titles are not kept between parses)", nil, "", "anomaly", 6, "split across 10 tenants"},
		{"unknown scenario", []string{"-scenarios", "split,nope"}, `unknown scenario "nope": want all or some of passthrough, metric_format, split, split_multitenant, import, import_metric_format`, "", 0, ""},
		{"scrape preset, all scenarios", []string{"-preset", "scrape"}, "add -query-keys N", "", 0, ""},
		{"scrape preset, split without tenants", []string{"-preset", "scrape", "-query-keys", "3"}, "add -tenants N", "", 0, ""},
		{"scrape preset without split", []string{"-preset", "scrape", "-scenarios", "passthrough"}, "", "scrape", 1, ""},
		{"scrape preset, metric_format without for", []string{"-preset", "scrape", "-scenarios", "metric_format"}, "add -query-keys N", "", 0, ""},
		{"import scenarios", []string{"-scenarios", "import,import_metric_format", "-import-gzip"}, "", "anomaly", 2, ""},
		{"scrape preset, import_metric_format without for", []string{"-preset", "scrape", "-scenarios", "import_metric_format"}, "add -query-keys N", "", 0, ""},
		{"scrape preset, metric_format with for", []string{"-preset", "scrape", "-query-keys", "10", "-scenarios", "passthrough,metric_format"}, "", "scrape", 2, ""},
		{"scrape preset with tenants", []string{"-preset", "scrape", "-tenants", "4", "-scenarios", "split,split_multitenant"}, "", "scrape", 2, "split across 4 tenants"},
		{"unknown preset", []string{"-preset", "nope"}, `unknown preset "nope"`, "", 0, ""},
		{"bad workload", []string{"-series", "0", "-scenarios", "passthrough"}, "-series 0: want 1..100000", "", 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parseCompareFlags(append([]string{"-scoreproxy", "/bin/true", "-vmagent", ""}, tc.args...))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.workload.Preset != tc.preset || len(c.scenarios) != tc.scenarios {
				t.Errorf("preset %q with %d scenarios, want %q with %d", c.workload.Preset, len(c.scenarios), tc.preset, tc.scenarios)
			}
			for _, s := range c.scenarios {
				if s.Split && !strings.HasPrefix(s.Title, tc.split) {
					t.Errorf("split title %q, want %q", s.Title, tc.split)
				}
			}
		})
	}
}
