package remotewrite

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
)

func debugBody(t testing.TB, wr *prompb.WriteRequest) []byte {
	t.Helper()
	raw, err := wr.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return snappy.Encode(nil, raw)
}

func lbls(kv ...string) []prompb.Label {
	var out []prompb.Label
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, prompb.Label{Name: kv[i], Value: kv[i+1]})
	}
	return out
}

// The debug writer's output, golden: what a user sees for each kind of data.
func TestDebugWriterFormat(t *testing.T) {
	const url = "http://user:secret@vminsert:8480/insert/5:0/prometheus/api/v1/write"
	score := lbls("__name__", "vmanomaly_anomaly_score", "for", "cpu", "instance", "a:9100")
	tests := []struct {
		name string
		wr   prompb.WriteRequest
		want string
	}{
		{"samples, one line each", prompb.WriteRequest{Timeseries: []prompb.TimeSeries{
			{Labels: score, Samples: []prompb.Sample{{Value: 0.25, Timestamp: 1700000000000}, {Value: 1.5, Timestamp: 1700000060000}}},
			{Labels: lbls("__name__", "vmanomaly_yhat", "for", "cpu", "note", `say "hi"`+"\n"), Samples: []prompb.Sample{{Value: 41, Timestamp: 1}}},
		}}, `# POST http://vminsert:8480/insert/5:0/prometheus/api/v1/write (2 series, 3 samples)
vmanomaly_anomaly_score{for="cpu",instance="a:9100"} 0.25 1700000000000
vmanomaly_anomaly_score{for="cpu",instance="a:9100"} 1.5 1700000060000
vmanomaly_yhat{for="cpu",note="say \"hi\"\n"} 41 1

`},
		{"special values and negative timestamps", prompb.WriteRequest{Timeseries: []prompb.TimeSeries{
			{Labels: lbls("__name__", "up"), Samples: []prompb.Sample{
				{Value: math.NaN(), Timestamp: 0}, {Value: math.Inf(1), Timestamp: -5}, {Value: math.Inf(-1)}, {Value: 1e-300}}},
		}}, `# POST http://vminsert:8480/insert/5:0/prometheus/api/v1/write (1 series, 4 samples)
up{} NaN 0
up{} +Inf -5
up{} -Inf 0
up{} 1e-300 0

`},
		{"exemplar after the samples", prompb.WriteRequest{Timeseries: []prompb.TimeSeries{
			{Labels: score, Samples: []prompb.Sample{{Value: 0.5, Timestamp: 10}},
				Exemplars: []prompb.Exemplar{{Labels: lbls("trace_id", "abc"), Value: 0.5, Timestamp: 9}}},
		}}, `# POST http://vminsert:8480/insert/5:0/prometheus/api/v1/write (1 series, 1 sample, 1 exemplar)
vmanomaly_anomaly_score{for="cpu",instance="a:9100"} 0.5 10
vmanomaly_anomaly_score{for="cpu",instance="a:9100"} # exemplar {trace_id="abc"} 0.5 9

`},
		{"integer and float native histograms", prompb.WriteRequest{Timeseries: []prompb.TimeSeries{
			{Labels: lbls("__name__", "latency"), Histograms: []prompb.Histogram{
				{Count: &prompb.Histogram_CountInt{CountInt: 6}, Sum: 9.5, Schema: -1, ZeroThreshold: 0.001,
					ZeroCount:     &prompb.Histogram_ZeroCountInt{ZeroCountInt: 1},
					PositiveSpans: []prompb.BucketSpan{{Offset: -2, Length: 2}, {Offset: 3, Length: 1}}, PositiveDeltas: []int64{2, -1, 0},
					NegativeSpans: []prompb.BucketSpan{{Offset: 0, Length: 1}}, NegativeDeltas: []int64{1},
					ResetHint: prompb.Histogram_GAUGE, Timestamp: 1700000000000},
				{Count: &prompb.Histogram_CountFloat{CountFloat: 2.5}, Sum: 3, Schema: 2,
					PositiveSpans: []prompb.BucketSpan{{Offset: 0, Length: 2}}, PositiveCounts: []float64{1, 1.5}, Timestamp: 7},
				{Count: &prompb.Histogram_CountInt{CountInt: 3}, Sum: 4, Schema: -53, CustomValues: []float64{0.5, 1},
					PositiveSpans: []prompb.BucketSpan{{Offset: 0, Length: 2}}, PositiveDeltas: []int64{1, 1}, Timestamp: 8},
			}},
		}}, `# POST http://vminsert:8480/insert/5:0/prometheus/api/v1/write (1 series, 3 histograms)
latency{} histogram{count=6 sum=9.5 schema=-1 zero_threshold=0.001 zero_count=1 negative_spans=[0:1] negative_deltas=[1] positive_spans=[-2:2 3:1] positive_deltas=[2 -1 0] reset_hint=gauge} 1700000000000
latency{} histogram{count=2.5 sum=3 schema=2 positive_spans=[0:2] positive_counts=[1 1.5]} 7
latency{} histogram{count=3 sum=4 schema=-53 positive_spans=[0:2] positive_deltas=[1 1] custom_values=[0.5 1]} 8

`},
		{"metadata after the series", prompb.WriteRequest{
			Timeseries: []prompb.TimeSeries{{Labels: lbls("__name__", "http_requests_total"), Samples: []prompb.Sample{{Value: 3, Timestamp: 1}}}},
			Metadata: []prompb.MetricMetadata{
				{Type: prompb.MetricMetadata_COUNTER, MetricFamilyName: "http_requests_total", Help: "Requests \"served\".", Unit: "requests"},
				{MetricFamilyName: "no_type", Help: "only help"},
			}}, `# POST http://vminsert:8480/insert/5:0/prometheus/api/v1/write (1 series, 1 sample, 2 metadata)
http_requests_total{} 3 1
# TYPE http_requests_total counter
# HELP http_requests_total "Requests \"served\"."
# UNIT http_requests_total requests
# HELP no_type "only help"

`},
		{"empty request", prompb.WriteRequest{}, `# POST http://vminsert:8480/insert/5:0/prometheus/api/v1/write (0 series)

`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			res := NewDebugWriter(&out).Send(context.Background(), url, debugBody(t, &tc.wr), BatchStats{})
			if !res.OK() || res.StatusCode != 204 || strings.Contains(res.URL, "secret") {
				t.Errorf("result %+v, want 204 and a URL without credentials", res)
			}
			if got := out.String(); got != tc.want {
				t.Errorf("output:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}
}

// The printed path is the tenant's path, for each write path the router builds.
func TestDebugWriterPrintsTheUpstreamPath(t *testing.T) {
	body := debugBody(t, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{
		{Labels: lbls("__name__", "x"), Samples: []prompb.Sample{{Value: 1, Timestamp: 2}}}}})
	for _, url := range []string{
		"http://vm:8428/api/v1/write",
		"http://vminsert:8480/insert/7:3/prometheus/api/v1/write",
		"http://vminsert:8480/insert/multitenant/prometheus/api/v1/write",
	} {
		var out bytes.Buffer
		NewDebugWriter(&out).Send(context.Background(), url, body, BatchStats{})
		if want := "# POST " + url + " (1 series, 1 sample)\nx{} 1 2\n\n"; out.String() != want {
			t.Errorf("got %q, want %q", out.String(), want)
		}
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("broken pipe") }

func TestDebugWriterErrors(t *testing.T) {
	const url = "http://vm:8428/api/v1/write"
	var out bytes.Buffer
	res := NewDebugWriter(&out).Send(context.Background(), url, []byte("not snappy"), BatchStats{})
	if res.StatusCode != 400 || !strings.Contains(res.Message, "snappy") ||
		!strings.HasPrefix(out.String(), "# POST "+url+": cannot decode the body: snappy") {
		t.Errorf("bad body: result %+v, output %q; want 400 and a printed reason", res, out.String())
	}
	out.Reset()
	res = NewDebugWriter(&out).Send(context.Background(), url, snappy.Encode(nil, []byte{0x0a, 0x05, 0x0a}), BatchStats{})
	if res.StatusCode != 400 || !strings.Contains(res.Message, "invalid protobuf") {
		t.Errorf("bad protobuf: result %+v, want 400 invalid protobuf", res)
	}
	body := debugBody(t, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{Labels: lbls("__name__", "x")}}})
	res = NewDebugWriter(failingWriter{}).Send(context.Background(), url, body, BatchStats{})
	if res.StatusCode != 0 || !strings.Contains(res.Message, "broken pipe") {
		t.Errorf("failing output: result %+v, want status 0 (retry) naming the error", res)
	}
}

// Concurrent requests print whole blocks, never interleaved lines.
func TestDebugWriterDoesNotInterleave(t *testing.T) {
	var out bytes.Buffer
	d := NewDebugWriter(&out)
	var wg sync.WaitGroup
	for g := range 8 {
		var ts []prompb.TimeSeries
		for i := range 50 {
			ts = append(ts, prompb.TimeSeries{Labels: lbls("__name__", fmt.Sprintf("g%d", g), "i", fmt.Sprint(i)),
				Samples: []prompb.Sample{{Value: float64(i), Timestamp: 1}}})
		}
		body := debugBody(t, &prompb.WriteRequest{Timeseries: ts})
		wg.Go(func() { d.Send(context.Background(), fmt.Sprintf("http://vm/%d", g), body, BatchStats{}) })
	}
	wg.Wait()
	blocks := strings.Split(strings.TrimSuffix(out.String(), "\n\n"), "\n\n")
	if len(blocks) != 8 {
		t.Fatalf("%d blocks, want 8", len(blocks))
	}
	for _, b := range blocks {
		lines := strings.Split(b, "\n")
		var g int
		fmt.Sscanf(lines[0], "# POST http://vm/%d", &g)
		for i, l := range lines[1:] {
			if want := fmt.Sprintf("g%d{i=\"%d\"} %d 1", g, i, i); l != want {
				t.Fatalf("block %d line %d: %q, want %q", g, i+1, l, want)
			}
		}
	}
}

// FuzzDebugText: whatever the decoder accepts, the debug writer prints
// without panicking (malformed parts become <malformed ...> text).
func FuzzDebugText(f *testing.F) {
	raw, _ := (&prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{Labels: lbls("__name__", "x"),
		Samples: []prompb.Sample{{Value: 1, Timestamp: 2}}, Exemplars: []prompb.Exemplar{{Labels: lbls("a", "b")}},
		Histograms: []prompb.Histogram{{Count: &prompb.Histogram_CountInt{CountInt: 1}, Schema: -53, PositiveSpans: []prompb.BucketSpan{{Length: 1}},
			PositiveDeltas: []int64{1}, CustomValues: []float64{1}}}}},
		Metadata: []prompb.MetricMetadata{{Type: 1, MetricFamilyName: "x", Help: "h"}}}).Marshal()
	f.Add(raw)
	f.Fuzz(func(t *testing.T, body []byte) {
		var req Request
		if DecodeWriteRequest(body, &req) == nil {
			AppendDebugText(nil, &req)
		}
	})
}
