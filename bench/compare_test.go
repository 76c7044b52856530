package main

import (
	"strings"
	"testing"
	"time"
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
			c := parseCompare(t, tc.args, tc.wantErr)
			if c == nil {
				return
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

// -sweep runs the four scenarios at 1K, 32K, 256K and 1M distinct series
// and at churn 1, 10 s per run unless told; its lists are validated and
// the flags it sets per point are refused beside it.
func TestSweepFlags(t *testing.T) {
	for _, tc := range []struct {
		name      string
		args      []string
		wantErr   string
		points    string // labels, comma-separated
		scenarios int
		duration  time.Duration
	}{
		{"defaults", []string{"-sweep"}, "", "1K distinct,32K distinct,256K distinct,1M distinct,churn 100%", 4, 10 * time.Second},
		{"one point each", []string{"-sweep", "-sweep-distinct", "32000", "-sweep-churn", "0.5", "-scenarios", "passthrough", "-duration", "3s"},
			"", "32K distinct,churn 50%", 1, 3 * time.Second},
		{"no churn points", []string{"-sweep", "-sweep-churn", ""}, "", "1K distinct,32K distinct,256K distinct,1M distinct", 4, 10 * time.Second},
		{"not a sweep", []string{"-distinct", "5000", "-churn", "0.2"}, "", "", 6, 20 * time.Second},
		{"distinct below series", []string{"-sweep", "-sweep-distinct", "500,1000"}, "-sweep-distinct 500: want counts from -series (1000)", "", 0, 0},
		{"distinct not a number", []string{"-sweep", "-sweep-distinct", "1k"}, `"1k" is not a whole number`, "", 0, 0},
		{"churn 0", []string{"-sweep", "-sweep-churn", "0"}, `"0" is not a share above 0 up to 1`, "", 0, 0},
		{"churn above 1", []string{"-sweep", "-sweep-churn", "2"}, `-sweep-churn "2"`, "", 0, 0},
		{"no points", []string{"-sweep", "-sweep-distinct", "", "-sweep-churn", ""}, "give at least one point", "", 0, 0},
		{"-distinct beside -sweep", []string{"-sweep", "-distinct", "5000"}, "-sweep sets -distinct and -churn at each point", "", 0, 0},
		{"list without -sweep", []string{"-sweep-distinct", "5000"}, "add -sweep", "", 0, 0},
		{"bad -distinct", []string{"-distinct", "10"}, "-distinct 10: want -series (1000)", "", 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := parseCompare(t, tc.args, tc.wantErr)
			if c == nil {
				return
			}
			var labels []string
			for _, p := range c.points {
				labels = append(labels, c.pointLabel(p))
			}
			if got := strings.Join(labels, ","); got != tc.points || len(c.scenarios) != tc.scenarios || c.duration != tc.duration {
				t.Fatalf("points %q, %d scenarios, duration %s; want %q, %d, %s", got, len(c.scenarios), c.duration, tc.points, tc.scenarios, tc.duration)
			}
		})
	}
}

// A full sweep of 3 rounds is planned to take at most about 40 minutes,
// and the plan says how many runs it has.
func TestSweepEstimate(t *testing.T) {
	c, err := parseCompareFlags([]string{"-scoreproxy", "/bin/true", "-vmagent", "/bin/true", "-sweep"})
	if err != nil {
		t.Fatal(err)
	}
	runs, total := c.estimate()
	if runs != 5*4*2*3 || total > 40*time.Minute || total < 20*time.Minute {
		t.Fatalf("%d runs in %s, want 120 in 20..40 minutes", runs, total)
	}
	if d := c.describeEstimate(); !strings.Contains(d, "5 points x 4 scenarios x 2 proxies x 3 rounds = 120 runs") {
		t.Fatalf("plan %q", d)
	}
}

// parseCompare parses compare flags (scoreproxy only) and returns the
// config, or nil when it failed with the error wantErr wanted.
func parseCompare(t *testing.T, args []string, wantErr string) *compareConfig {
	t.Helper()
	c, err := parseCompareFlags(append([]string{"-scoreproxy", "/bin/true", "-vmagent", ""}, args...))
	switch {
	case wantErr != "" && (err == nil || !strings.Contains(err.Error(), wantErr)):
		t.Fatalf("err = %v, want one containing %q", err, wantErr)
	case wantErr != "":
		return nil
	case err != nil:
		t.Fatal(err)
	}
	return c
}
