package tenantroute

import (
	"context"
	"testing"

	"github.com/prometheus/common/model"
	promrelabel "github.com/prometheus/prometheus/model/relabel"
	"github.com/prometheus/prometheus/prompb"
	"gopkg.in/yaml.v3"

	"github.com/scoreproxy/scoreproxy/relabel"
	"github.com/scoreproxy/scoreproxy/remotewrite"
)

// rulesOf decodes and validates relabel configs written in YAML.
func rulesOf(t testing.TB, text string) *relabel.Rules {
	t.Helper()
	if text == "" {
		return nil
	}
	var cfgs []*promrelabel.Config
	if err := yaml.Unmarshal([]byte(text), &cfgs); err != nil {
		t.Fatal(err)
	}
	for _, c := range cfgs {
		if err := c.Validate(model.LegacyValidation); err != nil {
			t.Fatal(err)
		}
	}
	return relabel.NewRules(cfgs)
}

func dropCounts() [numDropStages]uint64 {
	var out [numDropStages]uint64
	for stage := dropRelabel; stage < numDropStages; stage++ {
		out[stage] = seriesDropped[stage].Get()
	}
	return out
}

// TestPipelineMixedTraffic sends model outputs and ordinary scrape series in
// one request through relabel_configs, metric_format (with format_match) and
// write_relabel_configs, and reads back what each endpoint received. Every
// case runs three times: computed, from the rewrite cache, and from the cache
// with labels left unparsed by the decoder; output and drop counts must not
// change.
func TestPipelineMixedTraffic(t *testing.T) {
	format := map[string]string{"__name__": "vmanomaly_$VAR", "for": "$QUERY_KEY"}
	const multiURL = base + "/insert/multitenant/prometheus/api/v1/write"
	mixed := []prompb.TimeSeries{
		ts("__name__", "anomaly_score", "for", "cpu", "job", "vmanomaly", "vm_account_id", "1"),
		ts("__name__", "yhat", "for", "cpu", "job", "vmanomaly", "vm_account_id", "1"),
		ts("__name__", "up", "instance", "h:9100", "job", "node", "vm_account_id", "1"),
		ts("__name__", "node_load1", "instance", "h:9100", "job", "node", "team", "db", "vm_account_id", "2"),
	}
	cases := []struct {
		name                       string
		split                      bool
		formatMatch                string
		relabel, writeRelabel      string
		pathTenant                 string
		want                       map[string][]string
		wantDropped, wantWriteDrop uint64
	}{
		{
			name: "default format_match: only series with the query key are renamed",
			want: map[string][]string{multiURL: {
				"{__name__=node_load1,instance=h:9100,job=node,team=db,vm_account_id=2}",
				"{__name__=up,instance=h:9100,job=node,vm_account_id=1}",
				"{__name__=vmanomaly_anomaly_score,for=cpu,job=vmanomaly,vm_account_id=1}",
				"{__name__=vmanomaly_yhat,for=cpu,job=vmanomaly,vm_account_id=1}",
			}},
		},
		{
			name:        "format_match selects by another label",
			formatMatch: `{job="node", __name__!="up"}`,
			want: map[string][]string{multiURL: {
				"{__name__=anomaly_score,for=cpu,job=vmanomaly,vm_account_id=1}",
				"{__name__=up,instance=h:9100,job=node,vm_account_id=1}",
				"{__name__=vmanomaly_node_load1,instance=h:9100,job=node,team=db,vm_account_id=2}",
				"{__name__=yhat,for=cpu,job=vmanomaly,vm_account_id=1}",
			}},
		},
		{
			name:    "relabel_configs run before format_match and metric_format",
			relabel: `[{action: drop, source_labels: [__name__], regex: up}, {source_labels: [job], regex: node, target_label: for, replacement: scrape}]`,
			want: map[string][]string{multiURL: {
				"{__name__=vmanomaly_anomaly_score,for=cpu,job=vmanomaly,vm_account_id=1}",
				"{__name__=vmanomaly_node_load1,for=scrape,instance=h:9100,job=node,team=db,vm_account_id=2}",
				"{__name__=vmanomaly_yhat,for=cpu,job=vmanomaly,vm_account_id=1}",
			}},
			wantDropped: 1,
		},
		{
			name:         "write_relabel_configs see the formatted names",
			writeRelabel: `[{action: drop, source_labels: [__name__], regex: "vmanomaly_yhat.*"}, {action: labeldrop, regex: instance}]`,
			want: map[string][]string{multiURL: {
				"{__name__=node_load1,job=node,team=db,vm_account_id=2}",
				"{__name__=up,job=node,vm_account_id=1}",
				"{__name__=vmanomaly_anomaly_score,for=cpu,job=vmanomaly,vm_account_id=1}",
			}},
			wantWriteDrop: 1,
		},
		{
			name:    "split: relabel_configs choose the tenant, labels stripped after",
			split:   true,
			relabel: `[{source_labels: [team], regex: db, target_label: vm_account_id, replacement: "42"}]`,
			want: map[string][]string{
				base + "/insert/1:0/prometheus/api/v1/write": {
					"{__name__=up,instance=h:9100,job=node}",
					"{__name__=vmanomaly_anomaly_score,for=cpu,job=vmanomaly}",
					"{__name__=vmanomaly_yhat,for=cpu,job=vmanomaly}",
				},
				base + "/insert/42:0/prometheus/api/v1/write": {"{__name__=node_load1,instance=h:9100,job=node,team=db}"},
			},
		},
		{
			name:         "split: write_relabel_configs see and may set the tenant labels",
			split:        true,
			writeRelabel: `[{source_labels: [__name__], regex: "vmanomaly_.*", target_label: vm_project_id, replacement: "5"}]`,
			want: map[string][]string{
				base + "/insert/1:0/prometheus/api/v1/write": {"{__name__=up,instance=h:9100,job=node}"},
				base + "/insert/1:5/prometheus/api/v1/write": {
					"{__name__=vmanomaly_anomaly_score,for=cpu,job=vmanomaly}",
					"{__name__=vmanomaly_yhat,for=cpu,job=vmanomaly}",
				},
				base + "/insert/2:0/prometheus/api/v1/write": {"{__name__=node_load1,instance=h:9100,job=node,team=db}"},
			},
		},
		{
			name:       "path tenant applies to unselected series too",
			pathTenant: "7",
			relabel:    `[{action: keep, source_labels: [__name__], regex: "up|anomaly_score"}]`,
			want: map[string][]string{multiURL: {
				"{__name__=up,instance=h:9100,job=node,vm_account_id=7,vm_project_id=0}",
				"{__name__=vmanomaly_anomaly_score,for=cpu,job=vmanomaly,vm_account_id=7,vm_project_id=0}",
			}},
			wantDropped: 2,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			opts := Options{BaseURL: base, TenantID: "multitenant", SplitTenants: tc.split,
				Relabel: rulesOf(t, tc.relabel), WriteRelabel: rulesOf(t, tc.writeRelabel)}
			if tc.formatMatch != "" {
				sel, err := relabel.ParseSelector(tc.formatMatch)
				if err != nil {
					t.Fatal(err)
				}
				opts.FormatMatch = sel
			}
			r := newTestRouter(t, opts, format, nil)
			body, err := (&prompb.WriteRequest{Timeseries: mixed}).Marshal()
			if err != nil {
				t.Fatal(err)
			}
			for pass := 1; pass <= 3; pass++ {
				var req remotewrite.Request
				known := remotewrite.KnownLabelSets(nil)
				if pass == 3 {
					known = r // labels of cached series are not parsed
				}
				if err := remotewrite.DecodeWriteRequestKnown(body, &req, known); err != nil {
					t.Fatal(err)
				}
				rec := newRecorder()
				r.sender = rec
				before := dropCounts()
				if err := r.Process(context.Background(), &req, tc.pathTenant); err != nil {
					t.Fatal(err)
				}
				assertSeriesByURL(t, rec.seriesByURL(), tc.want)
				after := dropCounts()
				if got := after[dropRelabel] - before[dropRelabel]; got != tc.wantDropped {
					t.Errorf("pass %d: relabel drops %d, want %d", pass, got, tc.wantDropped)
				}
				if got := after[dropWriteRelabel] - before[dropWriteRelabel]; got != tc.wantWriteDrop {
					t.Errorf("pass %d: write_relabel drops %d, want %d", pass, got, tc.wantWriteDrop)
				}
			}
		})
	}
}

// TestRelabelingDisablesVerbatimForwarding: relabel rules change series, so
// a body can no longer go upstream as received.
func TestRelabelingDisablesVerbatimForwarding(t *testing.T) {
	req := decoded(t, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{ts("__name__", "up", "job", "node")}})
	for _, opts := range []Options{
		{BaseURL: base, Relabel: rulesOf(t, `[{action: labeldrop, regex: job}]`)},
		{BaseURL: base, WriteRelabel: rulesOf(t, `[{action: labeldrop, regex: job}]`)},
	} {
		rec := newRecorder()
		r := newTestRouter(t, opts, nil, rec)
		if err := r.Process(context.Background(), req, ""); err != nil {
			t.Fatal(err)
		}
		assertSeriesByURL(t, rec.seriesByURL(), map[string][]string{base + "/api/v1/write": {"{__name__=up}"}})
	}
}

// TestAllDroppedSendsNothing: a request whose every series is dropped sends
// no upstream request and succeeds.
func TestAllDroppedSendsNothing(t *testing.T) {
	rec := newRecorder()
	r := newTestRouter(t, Options{BaseURL: base, Relabel: rulesOf(t, `[{action: drop, source_labels: [job], regex: node}]`)}, nil, rec)
	for range 2 {
		req := decoded(t, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{ts("__name__", "up", "job", "node")}})
		if err := r.Process(context.Background(), req, ""); err != nil {
			t.Fatal(err)
		}
	}
	if len(rec.byURL) != 0 {
		t.Errorf("sent %v, want nothing", rec.seriesByURL())
	}
}

// TestRelabeledRoutingAllocationsDoNotGrowWithSeries: relabel_configs
// allocate only on a cache miss, so repeated requests cost what they cost
// without rules.
func TestRelabeledRoutingAllocationsDoNotGrowWithSeries(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector")
	}
	opts := Options{BaseURL: base, TenantID: "multitenant",
		Relabel:      rulesOf(t, `[{action: drop, source_labels: [instance], regex: "host-1:.*"}, {target_label: env, replacement: prod}]`),
		WriteRelabel: rulesOf(t, `[{action: labeldrop, regex: preset}]`)}
	r := newTestRouter(t, opts, seedFormat, discard{})
	small, large := decoded(t, anomalyRequest(100, 1)), decoded(t, anomalyRequest(1000, 1))
	if a, b := steadyAllocs(t, r, small), steadyAllocs(t, r, large); b > a || b != 0 {
		t.Errorf("allocations per request: %.0f for 100 series, %.0f for 1000; want 0 for both", a, b)
	}
}

// BenchmarkProcessRelabel is BenchmarkProcess's metric_format case with
// relabel rules on both sides: after the first request every series is a
// cache hit, so the rules should cost (almost) nothing per sample.
func BenchmarkProcessRelabel(b *testing.B) {
	opts := Options{BaseURL: base, TenantID: "multitenant",
		Relabel:      rulesOf(b, `[{action: drop, source_labels: [instance], regex: "host-1:.*"}, {target_label: env, replacement: prod}]`),
		WriteRelabel: rulesOf(b, `[{action: labeldrop, regex: preset}]`)}
	r := newTestRouter(b, opts, seedFormat, discard{})
	req := decoded(b, anomalyRequest(1000, 10))
	_, samples, _, _ := req.Totals()
	if err := r.Process(context.Background(), req, ""); err != nil { // fill the cache
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := r.Process(context.Background(), req, ""); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/(float64(b.N)*float64(samples)), "ns/sample")
}
