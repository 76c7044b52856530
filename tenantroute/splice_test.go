package tenantroute

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/prompb"
)

// spliceWorkload holds what the splice takes and what it declines: model
// outputs with tenant labels, series without the query key label (which
// metric_format does not select), an empty value, labels out of order, a
// label too long to copy, and tenant labels that are empty or unparsable.
func spliceWorkload() *prompb.WriteRequest {
	wr := anomalyRequest(50, 3)
	long := strings.Repeat("x", 140)
	for _, s := range []prompb.TimeSeries{
		ts("__name__", "up", "instance", "a:9100", "job", "node"),
		ts("__name__", "y", "for", "q1", "job", ""),
		ts("job", "node", "__name__", "yhat", "for", "q2"),
		ts("__name__", "y", "for", "q3", "note", long),
		ts("__name__", "y", "for", "q4", "vm_account_id", ""),
		ts("__name__", "y", "for", "q5", "vm_account_id", "x", "vm_project_id", "1"),
		ts("__name__", "y", "for", "q6", "vm_project_id", "2"),
	} {
		s.Samples = []prompb.Sample{{Value: 1, Timestamp: 1000}}
		wr.Timeseries = append(wr.Timeseries, s)
	}
	return wr
}

// TestSpliceMatchesTheLabelPath: with the pipeline straight to the
// encoding (splice), every mode sends what the Label path sends, byte for
// byte, and raises the same warnings, whether the series miss the cache or
// hit it, and whether the decoder consulted the cache.
func TestSpliceMatchesTheLabelPath(t *testing.T) {
	split := Options{BaseURL: base, TenantID: Multitenant, SplitTenants: true}
	modes := []struct {
		name   string
		opts   Options
		format map[string]string
	}{
		{"single node", Options{BaseURL: base}, seedFormat},
		{"fixed", Options{BaseURL: base, TenantID: "3:4"}, seedFormat},
		{"multitenant", Options{BaseURL: base, TenantID: Multitenant}, seedFormat},
		{"split", split, seedFormat},
		{"split without metric_format", split, nil},
	}
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			var sent [2]*recorder
			var logs [2]bytes.Buffer
			for i, splices := range []bool{true, false} {
				o := m.opts
				o.Logger = slog.New(slog.NewTextHandler(&logs[i], &slog.HandlerOptions{ReplaceAttr: dropTime}))
				sent[i] = newRecorder()
				r := newTestRouter(t, o, m.format, sent[i])
				if !r.splices {
					t.Fatal("the router does not splice")
				}
				r.splices = splices
				for range 2 {
					processKnown(t, r, spliceWorkload())
					if err := r.Process(context.Background(), decoded(t, spliceWorkload()), ""); err != nil {
						t.Fatal(err)
					}
				}
			}
			if got, want := recorded(sent[0]), recorded(sent[1]); got != want {
				t.Errorf("spliced:\n%s\nLabel path:\n%s", got, want)
			}
			if logs[1].Len() == 0 {
				t.Error("no warnings raised: the workload does not exercise them")
			}
			if logs[0].String() != logs[1].String() {
				t.Errorf("spliced warnings:\n%s\nLabel path warnings:\n%s", &logs[0], &logs[1])
			}
		})
	}
}

// recorded lists what a recorder received, by URL.
func recorded(r *recorder) string {
	var b strings.Builder
	for _, url := range slices.Sorted(maps.Keys(r.byURL)) {
		for _, s := range r.byURL[url] {
			fmt.Fprintf(&b, "%s %v %v\n", url, s.Labels, s.Samples)
		}
	}
	return b.String()
}

// dropTime leaves the time out of log lines, so two routers' logs compare.
func dropTime(_ []string, a slog.Attr) slog.Attr {
	if a.Key == slog.TimeKey {
		return slog.Attr{}
	}
	return a
}

// A format that sets a tenant label and relabeling keep the Label path:
// the tenant checks read the output labels there.
func TestSpliceOnlyWhereTheTenantLabelsAreTheInputs(t *testing.T) {
	withAccount := map[string]string{"__name__": "x_$VAR", "vm_account_id": "7"}
	rules := rulesOf(t, "- source_labels: [job]\n  regex: x\n  action: drop\n")
	cases := []struct {
		name   string
		opts   Options
		format map[string]string
		want   bool
	}{
		{"seed format", Options{BaseURL: base, TenantID: Multitenant}, seedFormat, true},
		{"no format", Options{BaseURL: base, TenantID: Multitenant}, nil, true},
		{"split", Options{BaseURL: base, TenantID: Multitenant, SplitTenants: true}, seedFormat, true},
		{"format sets vm_account_id", Options{BaseURL: base, TenantID: Multitenant}, withAccount, false},
		{"relabel_configs", Options{BaseURL: base, TenantID: Multitenant, Relabel: rules}, seedFormat, false},
	}
	for _, tc := range cases {
		if r := newTestRouter(t, tc.opts, tc.format, newRecorder()); r.splices != tc.want {
			t.Errorf("%s: splices %v, want %v", tc.name, r.splices, tc.want)
		}
	}
}
