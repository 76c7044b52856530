package remotewrite

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/prompb"
)

// sampleRequest is a WriteRequest using every field remote write 1.0 carries.
func sampleRequest() *prompb.WriteRequest {
	return &prompb.WriteRequest{
		Timeseries: []prompb.TimeSeries{
			{
				Labels:  []prompb.Label{{Name: "__name__", Value: "anomaly_score"}, {Name: "for", Value: "cpu"}, {Name: "instance", Value: "a:9100"}},
				Samples: []prompb.Sample{{Value: 0.5, Timestamp: 1000}, {Value: 1.5, Timestamp: 2000}},
				Exemplars: []prompb.Exemplar{{
					Labels: []prompb.Label{{Name: "trace_id", Value: "abc"}}, Value: 0.5, Timestamp: 1000,
				}},
			},
			{
				Labels: []prompb.Label{{Name: "__name__", Value: "latency"}, {Name: "job", Value: "api"}},
				Histograms: []prompb.Histogram{{
					Count: &prompb.Histogram_CountInt{CountInt: 5}, Sum: 12.5, Schema: 3,
					ZeroCount:     &prompb.Histogram_ZeroCountInt{ZeroCountInt: 1},
					PositiveSpans: []prompb.BucketSpan{{Offset: 0, Length: 2}}, PositiveDeltas: []int64{2, 1},
					Timestamp: 3000,
				}},
			},
		},
		Metadata: []prompb.MetricMetadata{{Type: prompb.MetricMetadata_GAUGE, MetricFamilyName: "anomaly_score", Help: "score", Unit: "ratio"}},
	}
}

func marshal(t testing.TB, wr *prompb.WriteRequest) []byte {
	t.Helper()
	b, err := wr.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// reencode builds a WriteRequest from a decoded one, through the encoder,
// either re-encoding the labels or copying the series verbatim.
func reencode(req *Request, verbatim bool) []byte {
	var out []byte
	for i := range req.Series {
		if verbatim {
			out = AppendSeriesVerbatim(out, &req.Series[i])
		} else {
			out = AppendSeries(out, req.Series[i].Labels, &req.Series[i])
		}
	}
	for _, md := range req.Metadata {
		out = AppendMetadata(out, md)
	}
	return out
}

func TestCodecRoundTripMatchesPrompb(t *testing.T) {
	in := sampleRequest()
	body := marshal(t, in)
	var req Request
	if err := DecodeWriteRequest(body, &req); err != nil {
		t.Fatal(err)
	}
	series, samples, exemplars, histograms := req.Totals()
	if series != 2 || samples != 2 || exemplars != 1 || histograms != 1 || len(req.Metadata) != 1 {
		t.Fatalf("counts: series %d samples %d exemplars %d histograms %d metadata %d", series, samples, exemplars, histograms, len(req.Metadata))
	}
	for _, verbatim := range []bool{false, true} {
		out := reencode(&req, verbatim)
		if string(out) != string(body) {
			t.Errorf("verbatim=%v: re-encoded bytes differ from gogo's", verbatim)
		}
		var got prompb.WriteRequest
		if err := got.Unmarshal(out); err != nil {
			t.Fatalf("verbatim=%v: prompb cannot read our output: %v", verbatim, err)
		}
		if got.String() != in.String() {
			t.Errorf("verbatim=%v:\n got %s\nwant %s", verbatim, got.String(), in.String())
		}
	}
}

func TestEncodeRewrittenLabels(t *testing.T) {
	body := marshal(t, sampleRequest())
	var req Request
	if err := DecodeWriteRequest(body, &req); err != nil {
		t.Fatal(err)
	}
	labels := []Label{{Name: []byte("__name__"), Value: []byte("vmanomaly_anomaly_score")}, {Name: []byte("empty")}, {Name: []byte("for"), Value: []byte("cpu")}}
	out := AppendSeries(nil, labels, &req.Series[0])
	var got prompb.WriteRequest
	if err := got.Unmarshal(out); err != nil {
		t.Fatal(err)
	}
	want := sampleRequest().Timeseries[0]
	want.Labels = []prompb.Label{{Name: "__name__", Value: "vmanomaly_anomaly_score"}, {Name: "empty"}, {Name: "for", Value: "cpu"}}
	if got.Timeseries[0].String() != want.String() {
		t.Errorf("got %s\nwant %s", got.Timeseries[0].String(), want.String())
	}
}

// TestDecodeInterleavedFields covers a producer that writes label fields
// after sample fields: legal protobuf, and the encoder must keep the samples.
func TestDecodeInterleavedFields(t *testing.T) {
	label := func(n, v string) []byte {
		return appendBytesField(appendBytesField(nil, tagLabelName, []byte(n)), tagLabelValue, []byte(v))
	}
	sample := marshalSample(t, prompb.Sample{Value: 2, Timestamp: 7})
	var ts []byte
	ts = appendBytesField(ts, tagSeriesLabels, label("__name__", "up"))
	ts = appendBytesField(ts, fieldSeriesSamples<<3|wireBytes, sample)
	ts = appendBytesField(ts, tagSeriesLabels, label("job", "x"))
	body := appendBytesField(nil, tagWriteTimeseries, ts)
	var req Request
	if err := DecodeWriteRequest(body, &req); err != nil {
		t.Fatal(err)
	}
	if req.Series[0].RestOffset != -1 {
		t.Fatalf("RestOffset = %d, want -1 for interleaved fields", req.Series[0].RestOffset)
	}
	var got prompb.WriteRequest
	if err := got.Unmarshal(AppendSeries(nil, req.Series[0].Labels, &req.Series[0])); err != nil {
		t.Fatal(err)
	}
	want := `labels:<name:"__name__" value:"up" > labels:<name:"job" value:"x" > samples:<value:2 timestamp:7 > `
	if got.Timeseries[0].String() != want {
		t.Errorf("got %s\nwant %s", got.Timeseries[0].String(), want)
	}
}

func marshalSample(t *testing.T, s prompb.Sample) []byte {
	b, err := s.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func series(labels ...string) prompb.TimeSeries {
	ts := prompb.TimeSeries{Samples: []prompb.Sample{{Value: 1, Timestamp: 1}}}
	for i := 0; i+1 < len(labels); i += 2 {
		ts.Labels = append(ts.Labels, prompb.Label{Name: labels[i], Value: labels[i+1]})
	}
	return ts
}

func TestDecodeRejects(t *testing.T) {
	valid := marshal(t, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{series("__name__", "up")}})
	cases := []struct {
		name       string
		body       []byte
		wantReason string
		wantMsg    string
	}{
		{"truncated", valid[:len(valid)-3], ReasonBadProtobuf, "truncated"},
		{"garbage", []byte{0xff, 0xff, 0xff}, ReasonBadProtobuf, "invalid protobuf"},
		{"group wire type", []byte{0x0b}, ReasonBadProtobuf, "wire type"},
		{"timeseries as varint", []byte{0x08, 0x01}, ReasonBadProtobuf, "field 1 has wire type 0"},
		{"unsorted", marshal(t, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{series("__name__", "up", "job", "a", "instance", "b")}}), ReasonInvalidSeries, "not sorted"},
		{"duplicate", marshal(t, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{series("__name__", "up", "job", "a", "job", "b")}}), ReasonInvalidSeries, `duplicate label name "job"`},
		{"empty name", marshal(t, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{series("", "x", "__name__", "up")}}), ReasonInvalidSeries, "empty name"},
		{"no metric name", marshal(t, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{series("job", "a")}}), ReasonInvalidSeries, "no metric name"},
		{"empty metric name", marshal(t, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{series("__name__", "", "job", "a")}}), ReasonInvalidSeries, "no metric name"},
		{"second series bad", marshal(t, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{series("__name__", "up"), series("job", "a")}}), ReasonInvalidSeries, "invalid series #1"},
		{"sample timestamp as bytes", appendBytesField(nil, tagWriteTimeseries,
			appendBytesField(appendBytesField(nil, tagSeriesLabels, appendBytesField(appendBytesField(nil, tagLabelName, []byte("__name__")), tagLabelValue, []byte("up"))),
				fieldSeriesSamples<<3|wireBytes, []byte{0x12, 0x01, 0x00})), ReasonBadProtobuf, "sample field 2"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var req Request
			err := DecodeWriteRequest(tc.body, &req)
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("got %v, want a DecodeError", err)
			}
			if de.Reason != tc.wantReason || !contains(de.Msg, tc.wantMsg) {
				t.Errorf("got %s: %q, want %s containing %q", de.Reason, de.Msg, tc.wantReason, tc.wantMsg)
			}
			var ref prompb.WriteRequest
			if tc.wantReason == ReasonBadProtobuf && ref.Unmarshal(tc.body) == nil && tc.name != "sample timestamp as bytes" {
				t.Errorf("prompb accepts what we reject as bad protobuf")
			}
		})
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

func TestDecodeDoesNotAllocateOnceWarm(t *testing.T) {
	body := marshal(t, sampleRequest())
	var req Request
	var out []byte
	allocs := testing.AllocsPerRun(100, func() {
		if err := DecodeWriteRequest(body, &req); err != nil {
			t.Fatal(err)
		}
		out = reencode2(out[:0], &req)
	})
	if allocs != 0 {
		t.Errorf("decode+encode allocates %.1f times per request, want 0", allocs)
	}
}

func reencode2(out []byte, req *Request) []byte {
	for i := range req.Series {
		out = AppendSeries(out, req.Series[i].Labels, &req.Series[i])
	}
	return out
}

// anomalyWorkload is the guide's standard request: 1,000 series x 2 samples,
// 9 labels each (anomaly outputs with tenant labels).
func anomalyWorkload() *prompb.WriteRequest {
	outputs := []string{"anomaly_score", "y", "yhat", "yhat_lower", "yhat_upper"}
	wr := &prompb.WriteRequest{}
	for i := 0; i < 1000; i++ {
		wr.Timeseries = append(wr.Timeseries, prompb.TimeSeries{
			Labels: []prompb.Label{
				{Name: "__name__", Value: outputs[i%5]}, {Name: "for", Value: fmt.Sprint("query_", i%7)},
				{Name: "instance", Value: fmt.Sprintf("host-%d:9100", i/5)}, {Name: "job", Value: "node"},
				{Name: "model", Value: "prophet"}, {Name: "preset", Value: "default"}, {Name: "scheduler", Value: "s1"},
				{Name: "vm_account_id", Value: fmt.Sprint(i % 10)}, {Name: "vm_project_id", Value: "0"},
			},
			Samples: []prompb.Sample{{Value: float64(i), Timestamp: 1_700_000_000_000}, {Value: 1, Timestamp: 1_700_000_060_000}},
		})
	}
	return wr
}

// BenchmarkDecode measures the streaming decoder against gogo's prompb on
// the same bytes: the reason the hot path does not use prompb.
func BenchmarkDecode(b *testing.B) {
	body := marshal(b, anomalyWorkload())
	b.Run("streaming", func(b *testing.B) {
		var req Request
		b.ReportAllocs()
		b.SetBytes(int64(len(body)))
		for i := 0; i < b.N; i++ {
			if err := DecodeWriteRequest(body, &req); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/2000, "ns/sample")
	})
	b.Run("prompb", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(body)))
		for i := 0; i < b.N; i++ {
			var wr prompb.WriteRequest
			if err := wr.Unmarshal(body); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/2000, "ns/sample")
	})
}

func BenchmarkEncode(b *testing.B) {
	var req Request
	if err := DecodeWriteRequest(marshal(b, anomalyWorkload()), &req); err != nil {
		b.Fatal(err)
	}
	for _, verbatim := range []bool{false, true} {
		b.Run(fmt.Sprintf("verbatim=%v", verbatim), func(b *testing.B) {
			var out []byte
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				out = out[:0]
				for j := range req.Series {
					if verbatim {
						out = AppendSeriesVerbatim(out, &req.Series[j])
					} else {
						out = AppendSeries(out, req.Series[j].Labels, &req.Series[j])
					}
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/2000, "ns/sample")
		})
	}
}
