package e2e

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"

	"github.com/scoreproxy/scoreproxy/internal/testenv"
)

const importJSONConfig = `listen: {{LISTEN}}
writer:
  datasource_url: %s
  output: import_json
  import_json_path: /api/v1/import
  metric_format:
    __name__: "vmanomaly_$VAR"
    for: "$QUERY_KEY"
server:
  health_check_interval: 1s
%s`

// staleMarker is the Prometheus staleness marker.
var staleMarker = math.Float64frombits(0x7ff0000000000002)

// importJSONRequest has awkward label values, infinities, a staleness
// marker and a native histogram, marked with mode.
func importJSONRequest(mode string, ts int64) *prompb.WriteRequest {
	lbl := func(out, series string, kv ...string) []prompb.Label {
		return testenv.Labels(append([]string{"__name__", out, "for", "q", "series", series, "mode", mode}, kv...)...)
	}
	return &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{
		{Labels: lbl("anomaly_score", "plain", "instance", "host-1:9100"),
			Samples: []prompb.Sample{{Timestamp: ts, Value: 0.25}, {Timestamp: ts + 60_000, Value: 1.5}}},
		{Labels: lbl("yhat", "escaping", "path", `C:\dir "quoted"`+"\nline2\ttab", "unicode", "é€😀"),
			Samples: []prompb.Sample{{Timestamp: ts, Value: -3}, {Timestamp: ts + 60_000, Value: 1234567.125}}},
		{Labels: lbl("yhat_upper", "infinite"),
			Samples: []prompb.Sample{{Timestamp: ts, Value: math.Inf(1)}, {Timestamp: ts + 60_000, Value: math.Inf(-1)}}},
		{Labels: lbl("y", "stale"),
			Samples: []prompb.Sample{{Timestamp: ts, Value: 7}, {Timestamp: ts + 60_000, Value: staleMarker}}},
		{Labels: lbl("latency", "histogram"),
			Histograms: []prompb.Histogram{{Count: &prompb.Histogram_CountInt{CountInt: 1}, Sum: 1, Timestamp: ts,
				PositiveSpans: []prompb.BucketSpan{{Length: 1}}, PositiveDeltas: []int64{1}}}},
	}}
}

// importJSONStored is what VictoriaMetrics holds after the JSON import:
// metric_format applied, the staleness marker and the histogram left out.
func importJSONStored(req *prompb.WriteRequest) []testenv.Series {
	var want []testenv.Series
	for _, s := range fromPrompb(req.Timeseries) {
		if s.Labels["series"] == "histogram" {
			continue
		}
		if s.Labels["series"] == "stale" {
			s.Timestamps, s.Values = s.Timestamps[:1], s.Values[:1]
		}
		s.Labels["__name__"] = "vmanomaly_" + s.Labels["__name__"]
		want = append(want, s)
	}
	return want
}

// TestImportJSONIntoVictoriaMetrics runs writer.output: import_json into a
// real single-node VictoriaMetrics (its /api/v1/import), directly and
// through the durable queue, and reads values, timestamps and labels back.
func TestImportJSONIntoVictoriaMetrics(t *testing.T) {
	t.Parallel()
	bin := scoreproxy(t)
	vm := testenv.StartVictoriaMetrics(t)
	ts := recentMinute(20 * time.Minute)
	for _, tt := range []struct{ mode, extra string }{
		{"direct", ""},
		{"queued", "queue:\n  path: " + t.TempDir() + "\n"},
	} {
		t.Run(tt.mode, func(t *testing.T) {
			p := testenv.StartScoreproxy(t, bin, fmt.Sprintf(importJSONConfig, vm.URL, tt.extra))
			p.WaitReady(t, 15*time.Second)
			req := importJSONRequest(tt.mode, ts)
			push(t, p.URL+"/api/v1/write", req)
			vm.WaitExport(t, fmt.Sprintf(`{mode=%q}`, tt.mode), 30*time.Second, func(got []testenv.Series) error {
				return diffSeries(importJSONStored(req), got, 0)
			})
			m := scrape(t, p.URL+"/metrics")
			url := map[string]string{"url": vm.URL + "/api/v1/import"}
			wantMetric(t, m, "vmanomaly_writer_datapoints_sent_total", url, 7)
			wantMetric(t, m, "vmanomaly_writer_timeseries_sent_total", url, 4)
			wantMetric(t, m, "scoreproxy_import_json_dropped_total", map[string]string{"kind": "stale_marker"}, 1)
			wantMetric(t, m, "scoreproxy_import_json_dropped_total", map[string]string{"kind": "histogram"}, 1)
		})
	}
}

const zstdConfig = `listen: {{LISTEN}}
writer:
  datasource_url: %s
  compression: %s
server:
  health_check_interval: 1s
`

// TestZstdNegotiationWithRealUpstreams sends remote write with
// writer.compression auto and zstd to real upstreams: vmagent v1.128.0,
// which speaks the VictoriaMetrics protocol (and answers the handshake),
// and VictoriaMetrics 1.79, which predates it (v1.88) and answers a zstd
// body with 400. The data must arrive either way, read back from
// VictoriaMetrics.
func TestZstdNegotiationWithRealUpstreams(t *testing.T) {
	t.Parallel()
	bin := scoreproxy(t)
	vm := testenv.StartVictoriaMetrics(t)
	agent := testenv.StartVMAgent(t, vm.WriteURL())
	ts := recentMinute(20 * time.Minute)
	tests := []struct {
		mode, upstream, compression string
		// wantZstd is scoreproxy_upstream_zstd after the writes; fallbacks
		// counts zstd requests re-sent as snappy.
		wantZstd, fallbacks float64
	}{
		{"auto-vmagent", agent.URL, "auto", 1, 0},
		{"zstd-vmagent", agent.URL, "zstd", 1, 0},
		{"auto-vm179", vm.URL, "auto", 0, 0},
		{"zstd-vm179", vm.URL, "zstd", 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			p := testenv.StartScoreproxy(t, bin, fmt.Sprintf(zstdConfig, tt.upstream, tt.compression))
			p.WaitReady(t, 15*time.Second)
			var sent []prompb.TimeSeries
			for i := int64(0); i < 2; i++ { // the second request goes out as negotiated
				req := tenantRequest(tt.mode, ts+i*120_000)
				push(t, p.URL+"/api/v1/write", req)
				sent = append(sent, req.Timeseries...)
			}
			vm.WaitExport(t, fmt.Sprintf(`{mode=%q}`, tt.mode), 30*time.Second, func(got []testenv.Series) error {
				return diffSeries(mergeSeries(fromPrompb(sent)), got, 0)
			})
			m := scrape(t, p.URL+"/metrics")
			url := map[string]string{"url": tt.upstream + "/api/v1/write"}
			wantMetric(t, m, "scoreproxy_upstream_zstd", url, tt.wantZstd)
			wantMetric(t, m, "scoreproxy_upstream_zstd_fallbacks_total", url, tt.fallbacks)
			wantMetric(t, m, "vmanomaly_writer_datapoints_sent_total", url, float64(2*len(tenantRequest("", 0).Timeseries)*2))
		})
	}
}
