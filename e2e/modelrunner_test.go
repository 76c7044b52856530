package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"

	"github.com/scoreproxy/scoreproxy/internal/testenv"
)

// modelOutputs are the five outputs every vmanomaly model produces.
var modelOutputs = []string{"anomaly_score", "y", "yhat", "yhat_lower", "yhat_upper"}

// seedWriterConfig is the writer example of the vmanomaly writer docs
// (shared/seeds/vmanomaly-writer.md), pointed at the test's VictoriaMetrics
// single node: tenant_id is left out (a single node has no tenants), and
// import_json_path, which remote-write forwarding does not use, is kept.
const seedWriterConfig = `listen: {{LISTEN}}
writer:
  class: "vm"
  datasource_url: "%s/"
  metric_format:
    __name__: "vmanomaly_$VAR"
    for: "$QUERY_KEY"
    run: "test_metric_format"
    config: "io_vm_single.yaml"
  import_json_path: "/api/v1/import"
  health_path: "health"
server:
  health_check_interval: 1s
`

// modelRun is what one model-runner pass produces: for every query key and
// every input series, the five outputs over n points.
type modelRun struct {
	queryKeys []string
	inputs    []map[string]string // labels of the input series (without for)
	start     int64               // first timestamp, ms
	step      int64               // ms
	points    int
}

// requests returns one remote-write request per query key, as a model runner
// that writes after each query would; every series carries `for`.
func (r modelRun) requests() []*prompb.WriteRequest {
	var out []*prompb.WriteRequest
	for qi, qk := range r.queryKeys {
		req := &prompb.WriteRequest{}
		for si, in := range r.inputs {
			for oi, output := range modelOutputs {
				labels := map[string]string{"__name__": output, "for": qk}
				for k, v := range in {
					labels[k] = v
				}
				ts := prompb.TimeSeries{Labels: testenv.LabelsFromMap(labels)}
				for p := 0; p < r.points; p++ {
					ts.Samples = append(ts.Samples, prompb.Sample{
						Timestamp: r.start + int64(p)*r.step,
						Value:     modelValue(qi, si, oi, p),
					})
				}
				req.Timeseries = append(req.Timeseries, ts)
			}
		}
		out = append(out, req)
	}
	return out
}

// modelValue is a deterministic value with few significant digits, so that
// VictoriaMetrics (which keeps about 12 decimal digits) stores it exactly;
// it covers zero, negatives, fractions and large numbers.
func modelValue(query, series, output, point int) float64 {
	base := float64(query*1000+series*100+point) / 8 // exact binary fractions
	switch modelOutputs[output] {
	case "anomaly_score":
		return float64((query+series+point)%9) / 4 // 0 .. 2, 0 included
	case "y":
		return base * 1024
	case "yhat":
		return base*1024 + 0.5
	case "yhat_lower":
		return -base // negative
	default: // yhat_upper
		return base*1024 + 1e6
	}
}

// expected applies the seed's metric_format by hand: __name__ becomes
// vmanomaly_<output>, for keeps the query key, run and config are added, and
// every input label is inherited.
func (r modelRun) expected(format map[string]string) []testenv.Series {
	var written []prompb.TimeSeries
	for _, req := range r.requests() {
		written = append(written, req.Timeseries...)
	}
	out := fromPrompb(written)
	for i := range out {
		l := out[i].Labels
		vars := map[string]string{"$VAR": l["__name__"], "$QUERY_KEY": l["for"]}
		for k, v := range format {
			for ph, val := range vars {
				v = strings.ReplaceAll(v, ph, val)
			}
			if v == "" {
				delete(l, k)
			} else {
				l[k] = v
			}
		}
	}
	return mergeSeries(out)
}

// TestModelRunnerOutputsReachVictoriaMetrics is end-to-end test B: a model
// runner writes the five standard outputs for several query keys and series
// through scoreproxy (the seed's writer config) into a real VictoriaMetrics,
// and every series, timestamp and value is read back exactly as named by
// metric_format.
func TestModelRunnerOutputsReachVictoriaMetrics(t *testing.T) {
	t.Parallel()
	vm, proxy := scoreproxyBeforeVM(t, seedWriterConfig)

	run := modelRun{
		queryKeys: []string{"ingestion_rate", "cpu_seconds_total", "disk_write_bytes"},
		inputs: []map[string]string{
			// The seed's own example of inherited labels.
			{"cpu": "1", "device": "eth0", "instance": "node-exporter:9100"},
			{"cpu": "2", "device": "eth1", "instance": "node-exporter:9100"},
			{"instance": "host-b:9100", "job": "node", "env": "prod"},
		},
		start:  recentMinute(30 * time.Minute),
		step:   15_000,
		points: 20,
	}
	reqs := run.requests()
	// A model runner may use either remote-write path.
	paths := []string{"/api/v1/write", "/prometheus/api/v1/write", "/api/v1/write"}
	var samples, series int
	for i, req := range reqs {
		push(t, proxy.URL+paths[i%len(paths)], req)
		series += len(req.Timeseries)
		for _, ts := range req.Timeseries {
			samples += len(ts.Samples)
		}
	}

	want := run.expected(map[string]string{
		"__name__": "vmanomaly_$VAR", "for": "$QUERY_KEY",
		"run": "test_metric_format", "config": "io_vm_single.yaml",
	})
	if len(want) != len(run.queryKeys)*len(run.inputs)*len(modelOutputs) {
		t.Fatalf("test bug: %d expected series", len(want))
	}
	// Read back everything scoreproxy wrote to this VictoriaMetrics, not only
	// the names expected: an extra or misnamed series is a failure too.
	vm.WaitExport(t, `{__name__!=""}`, 30*time.Second, func(got []testenv.Series) error {
		return diffSeries(want, got, 0)
	})

	m := scrape(t, proxy.URL+"/metrics")
	wantMetric(t, m, "scoreproxy_requests_received_total", nil, float64(len(reqs)))
	wantMetric(t, m, "scoreproxy_series_received_total", nil, float64(series))
	wantMetric(t, m, "scoreproxy_samples_received_total", nil, float64(samples))
	wantMetric(t, m, "scoreproxy_samples_forwarded_total", map[string]string{"url": vm.WriteURL()}, float64(samples))
	wantMetric(t, m, "scoreproxy_series_forwarded_total", map[string]string{"url": vm.WriteURL()}, float64(series))
	wantMetric(t, m, "vmanomaly_writer_responses_total", map[string]string{"url": vm.WriteURL(), "code": "204"}, float64(len(reqs)))
	wantMetric(t, m, "vmanomaly_writer_datapoints_sent_total", map[string]string{"url": vm.WriteURL()}, float64(samples))
	wantMetric(t, m, "vmanomaly_writer_timeseries_sent_total", map[string]string{"url": vm.WriteURL()}, float64(series))
	wantMetric(t, m, "scoreproxy_upstream_ready", nil, 1)
	if v, _ := m.Sum("scoreproxy_requests_rejected_total", nil); v != 0 {
		t.Errorf("scoreproxy_requests_rejected_total = %v, want 0", v)
	}
}

// TestSeedMetricsFormattingExample writes the input of the writer docs'
// "Metrics formatting" section through scoreproxy into VictoriaMetrics and
// expects exactly the series the docs list.
func TestSeedMetricsFormattingExample(t *testing.T) {
	t.Parallel()
	bin := scoreproxy(t)
	vm := testenv.StartVictoriaMetrics(t)
	proxy := testenv.StartScoreproxy(t, bin, `listen: {{LISTEN}}
writer:
  datasource_url: "`+vm.URL+`"
  metric_format:
    __name__: "PREFIX1_$VAR"
    for: "PREFIX2_$QUERY_KEY"
    custom_label_1: label_name_1
    custom_label_2: label_name_2
`)
	ts := recentMinute(10 * time.Minute)
	in := func(name, query string) prompb.TimeSeries {
		return prompb.TimeSeries{
			Labels:  testenv.Labels("__name__", name, "for", query, "cpu", "1", "device", "eth0", "instance", "node-exporter:9100"),
			Samples: []prompb.Sample{{Timestamp: ts, Value: 0.5}},
		}
	}
	push(t, proxy.URL+"/api/v1/write", &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{
		in("anomaly_score", "query_name_1"), in("yhat_lower", "query_name_1"),
		in("anomaly_score", "query_name_2"), in("yhat_lower", "query_name_2"),
	}})
	// The four lines of the docs, verbatim but for cpu's quotes.
	docs := []string{
		`{__name__="PREFIX1_anomaly_score", for="PREFIX2_query_name_1", custom_label_1="label_name_1", custom_label_2="label_name_2", cpu="1", device="eth0", instance="node-exporter:9100"}`,
		`{__name__="PREFIX1_yhat_lower", for="PREFIX2_query_name_1", custom_label_1="label_name_1", custom_label_2="label_name_2", cpu="1", device="eth0", instance="node-exporter:9100"}`,
		`{__name__="PREFIX1_anomaly_score", for="PREFIX2_query_name_2", custom_label_1="label_name_1", custom_label_2="label_name_2", cpu="1", device="eth0", instance="node-exporter:9100"}`,
		`{__name__="PREFIX1_yhat_lower", for="PREFIX2_query_name_2", custom_label_1="label_name_1", custom_label_2="label_name_2", cpu="1", device="eth0", instance="node-exporter:9100"}`,
	}
	var want []testenv.Series
	for _, d := range docs {
		want = append(want, testenv.Series{Labels: parseBraces(t, d), Timestamps: []int64{ts}, Values: []float64{0.5}})
	}
	vm.WaitExport(t, `{__name__!=""}`, 30*time.Second, func(got []testenv.Series) error {
		return diffSeries(want, got, 0)
	})
}

// parseBraces parses `{a="1", b="2"}` into a label map.
func parseBraces(t *testing.T, s string) map[string]string {
	t.Helper()
	m, err := testenv.ParseMetrics("x" + s + " 0")
	if err != nil || len(m) != 1 {
		t.Fatalf("parse %s: %v", s, err)
	}
	return m[0].Labels
}
