package remotewrite

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
)

// TestRW2Transcode shows, per feature, the RW1 request an RW2 request becomes.
func TestRW2Transcode(t *testing.T) {
	syms := []string{"", "__name__", "http_requests_total", "job", "api", "instance", "a:9100",
		"trace_id", "abc", "Requests served.", "requests", "latency_seconds", "zzz"}
	cases := []struct {
		name string
		in   writev2.Request
		want prompb.WriteRequest
	}{{
		name: "labels resolved and sorted; start timestamp dropped",
		in: writev2.Request{Symbols: syms, Timeseries: []writev2.TimeSeries{{
			LabelsRefs: []uint32{5, 6, 3, 4, 1, 2}, // instance, job, __name__: unsorted
			Samples:    []writev2.Sample{{Value: 1.5, Timestamp: 1000, StartTimestamp: 10}, {Value: 0, Timestamp: 2000}},
		}}},
		want: prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
			Labels:  []prompb.Label{{Name: "__name__", Value: "http_requests_total"}, {Name: "instance", Value: "a:9100"}, {Name: "job", Value: "api"}},
			Samples: []prompb.Sample{{Value: 1.5, Timestamp: 1000}, {Value: 0, Timestamp: 2000}},
		}}},
	}, {
		name: "exemplars keep their labels in order",
		in: writev2.Request{Symbols: syms, Timeseries: []writev2.TimeSeries{{
			LabelsRefs: []uint32{1, 2},
			Samples:    []writev2.Sample{{Value: 1, Timestamp: 1000}},
			Exemplars:  []writev2.Exemplar{{LabelsRefs: []uint32{7, 8, 3, 4}, Value: 0.25, Timestamp: 999}, {Value: 3}},
		}}},
		want: prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
			Labels:    []prompb.Label{{Name: "__name__", Value: "http_requests_total"}},
			Samples:   []prompb.Sample{{Value: 1, Timestamp: 1000}},
			Exemplars: []prompb.Exemplar{{Labels: []prompb.Label{{Name: "trace_id", Value: "abc"}, {Name: "job", Value: "api"}}, Value: 0.25, Timestamp: 999}, {Value: 3}},
		}}},
	}, {
		name: "native histograms, int, float and custom buckets",
		in: writev2.Request{Symbols: syms, Timeseries: []writev2.TimeSeries{{
			LabelsRefs: []uint32{1, 11},
			Histograms: []writev2.Histogram{
				{Count: &writev2.Histogram_CountInt{CountInt: 7}, Sum: 3.5, Schema: 2, ZeroThreshold: 1e-128,
					ZeroCount: &writev2.Histogram_ZeroCountInt{ZeroCountInt: 1}, ResetHint: writev2.Histogram_RESET_HINT_NO,
					NegativeSpans: []writev2.BucketSpan{{Offset: -2, Length: 1}}, NegativeDeltas: []int64{1},
					PositiveSpans: []writev2.BucketSpan{{Offset: 0, Length: 2}, {Offset: 3, Length: 1}}, PositiveDeltas: []int64{2, -1, 3},
					Timestamp: 1000, StartTimestamp: 1},
				{Count: &writev2.Histogram_CountFloat{CountFloat: 2.5}, ZeroCount: &writev2.Histogram_ZeroCountFloat{ZeroCountFloat: 0.5},
					PositiveSpans: []writev2.BucketSpan{{Length: 1}}, PositiveCounts: []float64{2}, Timestamp: 2000},
				{Count: &writev2.Histogram_CountInt{CountInt: 3}, Schema: -53, CustomValues: []float64{0.1, 1, 10},
					PositiveSpans: []writev2.BucketSpan{{Length: 3}}, PositiveDeltas: []int64{1, 0, 0}, Timestamp: 3000},
			},
		}}},
		want: prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
			Labels: []prompb.Label{{Name: "__name__", Value: "latency_seconds"}},
			Histograms: []prompb.Histogram{
				{Count: &prompb.Histogram_CountInt{CountInt: 7}, Sum: 3.5, Schema: 2, ZeroThreshold: 1e-128,
					ZeroCount: &prompb.Histogram_ZeroCountInt{ZeroCountInt: 1}, ResetHint: prompb.Histogram_NO,
					NegativeSpans: []prompb.BucketSpan{{Offset: -2, Length: 1}}, NegativeDeltas: []int64{1},
					PositiveSpans: []prompb.BucketSpan{{Offset: 0, Length: 2}, {Offset: 3, Length: 1}}, PositiveDeltas: []int64{2, -1, 3},
					Timestamp: 1000},
				{Count: &prompb.Histogram_CountFloat{CountFloat: 2.5}, ZeroCount: &prompb.Histogram_ZeroCountFloat{ZeroCountFloat: 0.5},
					PositiveSpans: []prompb.BucketSpan{{Length: 1}}, PositiveCounts: []float64{2}, Timestamp: 2000},
				{Count: &prompb.Histogram_CountInt{CountInt: 3}, Schema: -53, CustomValues: []float64{0.1, 1, 10},
					PositiveSpans: []prompb.BucketSpan{{Length: 3}}, PositiveDeltas: []int64{1, 0, 0}, Timestamp: 3000},
			},
		}}},
	}, {
		name: "metadata named after the series, written once per run, empty metadata skipped",
		in: writev2.Request{Symbols: syms, Timeseries: []writev2.TimeSeries{
			{LabelsRefs: []uint32{1, 2, 3, 4}, Samples: []writev2.Sample{{Value: 1}},
				Metadata: writev2.Metadata{Type: writev2.Metadata_METRIC_TYPE_COUNTER, HelpRef: 9, UnitRef: 10}},
			{LabelsRefs: []uint32{1, 2, 5, 6}, Samples: []writev2.Sample{{Value: 2}},
				Metadata: writev2.Metadata{Type: writev2.Metadata_METRIC_TYPE_COUNTER, HelpRef: 9, UnitRef: 10}},
			{LabelsRefs: []uint32{1, 12}, Samples: []writev2.Sample{{Value: 3}}},
		}},
		want: prompb.WriteRequest{
			Timeseries: []prompb.TimeSeries{
				{Labels: []prompb.Label{{Name: "__name__", Value: "http_requests_total"}, {Name: "job", Value: "api"}}, Samples: []prompb.Sample{{Value: 1}}},
				{Labels: []prompb.Label{{Name: "__name__", Value: "http_requests_total"}, {Name: "instance", Value: "a:9100"}}, Samples: []prompb.Sample{{Value: 2}}},
				{Labels: []prompb.Label{{Name: "__name__", Value: "zzz"}}, Samples: []prompb.Sample{{Value: 3}}},
			},
			Metadata: []prompb.MetricMetadata{{Type: prompb.MetricMetadata_COUNTER, MetricFamilyName: "http_requests_total", Help: "Requests served.", Unit: "requests"}},
		},
	}, {
		name: "stale marker bits kept",
		in: writev2.Request{Symbols: syms, Timeseries: []writev2.TimeSeries{{
			LabelsRefs: []uint32{1, 2}, Samples: []writev2.Sample{{Value: math.Float64frombits(0x7ff0000000000002), Timestamp: 5}}}}},
		want: prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
			Labels: []prompb.Label{{Name: "__name__", Value: "http_requests_total"}}, Samples: []prompb.Sample{{Value: math.Float64frombits(0x7ff0000000000002), Timestamp: 5}}}}},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var tr RW2Transcoder
			out, err := tr.Transcode(nil, marshalRW2(t, &tc.in), 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			requireSame(t, "transcoded", out, &tc.want)
		})
	}
}

// TestRW2TranscodeRejects: each spec rule, with the reason and message the
// producer gets.
func TestRW2TranscodeRejects(t *testing.T) {
	syms := []string{"", "__name__", "up", "job", "a", "b"}
	one := writev2.Sample{Value: 1, Timestamp: 1}
	cases := []struct {
		name       string
		in         writev2.Request
		raw        []byte
		wantReason string
		wantMsg    string
	}{
		{name: "malformed protobuf", raw: []byte{0x22, 0x05, 'a'}, wantReason: ReasonBadProtobuf, wantMsg: "io.prometheus.write.v2.Request"},
		{name: "symbols[0] not empty", in: writev2.Request{Symbols: []string{"x"}}, wantReason: ReasonInvalidSymbols, wantMsg: `symbols[0] must be the empty string, got "x"`},
		{name: "odd labels_refs", in: writev2.Request{Symbols: syms, Timeseries: []writev2.TimeSeries{{LabelsRefs: []uint32{1, 2, 3}, Samples: []writev2.Sample{one}}}},
			wantReason: ReasonInvalidSeries, wantMsg: "invalid series #0 {}: labels_refs has an odd length (3)"},
		{name: "label ref out of range", in: writev2.Request{Symbols: syms, Timeseries: []writev2.TimeSeries{
			{LabelsRefs: []uint32{1, 2}, Samples: []writev2.Sample{one}}, {LabelsRefs: []uint32{1, 2, 3, 6}, Samples: []writev2.Sample{one}}}},
			wantReason: ReasonInvalidSeries, wantMsg: "invalid series #1 up{}: labels_refs 3 (name) = 6 (value) outside of the symbols table (6 symbols)"},
		{name: "no __name__", in: writev2.Request{Symbols: syms, Timeseries: []writev2.TimeSeries{{LabelsRefs: []uint32{3, 4}, Samples: []writev2.Sample{one}}}},
			wantReason: ReasonInvalidSeries, wantMsg: "every series needs a non-empty __name__"},
		{name: "duplicate label", in: writev2.Request{Symbols: syms, Timeseries: []writev2.TimeSeries{{LabelsRefs: []uint32{1, 2, 3, 4, 3, 5}, Samples: []writev2.Sample{one}}}},
			wantReason: ReasonInvalidSeries, wantMsg: `duplicate label name "job"`},
		{name: "no samples or histograms", in: writev2.Request{Symbols: syms, Timeseries: []writev2.TimeSeries{{LabelsRefs: []uint32{1, 2}, Exemplars: []writev2.Exemplar{{Value: 1}}}}},
			wantReason: ReasonInvalidSeries, wantMsg: "no samples and no histograms"},
		{name: "exemplar ref out of range", in: writev2.Request{Symbols: syms, Timeseries: []writev2.TimeSeries{{LabelsRefs: []uint32{1, 2}, Samples: []writev2.Sample{one},
			Exemplars: []writev2.Exemplar{{LabelsRefs: []uint32{3, 60}}}}}},
			wantReason: ReasonInvalidSeries, wantMsg: "exemplar labels_refs 3 (name) = 60 (value) outside"},
		{name: "metadata ref out of range", in: writev2.Request{Symbols: syms, Timeseries: []writev2.TimeSeries{{LabelsRefs: []uint32{1, 2}, Samples: []writev2.Sample{one},
			Metadata: writev2.Metadata{HelpRef: 6}}}},
			wantReason: ReasonInvalidSeries, wantMsg: "metadata help_ref 6 or unit_ref 0 outside"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			body := tc.raw
			if body == nil {
				body = marshalRW2(t, &tc.in)
			}
			var tr RW2Transcoder
			_, err := tr.Transcode(nil, body, 1<<20)
			var de *DecodeError
			if !errors.As(err, &de) || de.Reason != tc.wantReason || !strings.Contains(de.Msg, tc.wantMsg) {
				t.Fatalf("got %v, want %s containing %q", err, tc.wantReason, tc.wantMsg)
			}
		})
	}
}

// TestRW2TranscodeLimit: a small RW2 body that references one large symbol
// from many labels cannot make the proxy build a huge RW1 body.
func TestRW2TranscodeLimit(t *testing.T) {
	big := strings.Repeat("x", 64<<10)
	req := writev2.Request{Symbols: []string{"", "__name__", big}}
	ts := writev2.TimeSeries{LabelsRefs: []uint32{1, 2}, Samples: []writev2.Sample{{Value: 1}}}
	for i := range 100 {
		req.Symbols = append(req.Symbols, fmt.Sprintf("l%03d", i))
		ts.LabelsRefs = append(ts.LabelsRefs, uint32(len(req.Symbols)-1), 2)
	}
	req.Timeseries = []writev2.TimeSeries{ts}
	body := marshalRW2(t, &req) // about 65 KB; 6.5 MB as RW1
	var tr RW2Transcoder
	_, err := tr.Transcode(nil, body, 1<<20)
	var se *StatusError
	if !errors.As(err, &se) || se.Code != http.StatusRequestEntityTooLarge || !strings.Contains(se.Msg, "max_decoded_bytes") {
		t.Fatalf("got %v, want 413 naming limits.max_decoded_bytes", err)
	}
	if _, err := tr.Transcode(nil, body, 8<<20); err != nil {
		t.Fatalf("within the limit: %v", err)
	}
}

// modelOutputsRW2 is n anomaly-detection series as a Prometheus 3 sender
// writes them: one sample each, a symbols table, metadata on every series.
func modelOutputsRW2(n int) *writev2.Request {
	st := writev2.NewSymbolTable()
	req := &writev2.Request{}
	outputs := []string{"anomaly_score", "y", "yhat", "yhat_lower", "yhat_upper"}
	for i := range n {
		ts := writev2.TimeSeries{LabelsRefs: []uint32{
			st.Symbolize("__name__"), st.Symbolize(outputs[i%5]),
			st.Symbolize("for"), st.Symbolize(fmt.Sprintf("query_%d", i/5%4)),
			st.Symbolize("instance"), st.Symbolize(fmt.Sprintf("node-%d:9100", i/20)),
			st.Symbolize("vm_account_id"), st.Symbolize(fmt.Sprint(i % 10)),
		}, Samples: []writev2.Sample{{Value: float64(i), Timestamp: 1_700_000_000_000}},
			Metadata: writev2.Metadata{Type: writev2.Metadata_METRIC_TYPE_GAUGE, HelpRef: st.Symbolize("model output")}}
		req.Timeseries = append(req.Timeseries, ts)
	}
	req.Symbols = st.Symbols()
	return req
}

// TestRW2TranscodeAllocs: a warm transcoder does not allocate, whatever the
// number of series and samples.
func TestRW2TranscodeAllocs(t *testing.T) {
	body := marshalRW2(t, modelOutputsRW2(1000))
	var tr RW2Transcoder
	out, err := tr.Transcode(nil, body, 64<<20)
	if err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(20, func() {
		if out, err = tr.Transcode(out[:0], body, 64<<20); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per 1,000-series request, want 0", allocs)
	}
}

func BenchmarkRW2Transcode(b *testing.B) {
	body := marshalRW2(b, modelOutputsRW2(1000))
	var tr RW2Transcoder
	var out []byte
	var req Request
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if out, err = tr.Transcode(out[:0], body, 64<<20); err != nil {
			b.Fatal(err)
		}
		if err := DecodeWriteRequest(out, &req); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*1000), "ns/sample")
}
