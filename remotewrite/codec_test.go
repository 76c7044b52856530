package remotewrite

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
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
					Count: &prompb.Histogram_CountInt{CountInt: 6}, Sum: 12.5, Schema: 3,
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
		{"group wire type", []byte{0x0b, 0x0c}, ReasonBadProtobuf, "field 1 has wire type 3"},
		{"unterminated group", []byte{0x13}, ReasonBadProtobuf, "truncated"},
		{"timeseries as varint", []byte{0x08, 0x01}, ReasonBadProtobuf, "field 1 has wire type 0"},
		{"duplicate once sorted", marshal(t, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{series("job", "a", "__name__", "up", "job", "b")}}), ReasonInvalidSeries, `duplicate label name "job"`},
		{"empty name unsorted", marshal(t, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{series("job", "a", "__name__", "up", "", "x")}}), ReasonInvalidSeries, "empty name"},
		{"name not UTF-8", marshal(t, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{series("__name__", "up", "\xff\xfe", "a")}}), ReasonInvalidSeries, `label name "\xff\xfe" is not valid UTF-8`},
		{"value not UTF-8", marshal(t, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{series("__name__", "up", "job", "a\xc0")}}), ReasonInvalidSeries, `up{job="a\xc0"}: label job has a value that is not valid UTF-8: "a\xc0"`},
		{"metric name not UTF-8", marshal(t, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{series("__name__", "up\xed\xa0\x80")}}), ReasonInvalidSeries, `label __name__ has a value that is not valid UTF-8`},
		{"duplicate", marshal(t, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{series("__name__", "up", "job", "a", "job", "b")}}), ReasonInvalidSeries, `duplicate label name "job"`},
		{"empty name", marshal(t, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{series("", "x", "__name__", "up")}}), ReasonInvalidSeries, "empty name"},
		{"duplicate metric name", marshal(t, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{series("__name__", "up", "__name__", "down")}}), ReasonInvalidSeries, `duplicate label name "__name__"`},
		{"value not UTF-8 past 32 bytes", marshal(t, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{series("__name__", "up", "instance", "node-exporter.example:9100", "job", "node\xff")}}), ReasonInvalidSeries, "not valid UTF-8"},
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
			if got, want := prompbOutcome(tc.body), map[string]string{ReasonBadProtobuf: "bad", ReasonInvalidSeries: "invalid"}[tc.wantReason]; got != want {
				t.Errorf("prompb: %s, want %s", got, want)
			}
		})
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

// isASCII must find a byte of 0x80 or above at any position of any length,
// in the 32-byte, the 8-byte and the byte-wise loop.
func TestIsASCII(t *testing.T) {
	for n := range 80 {
		b := bytes.Repeat([]byte{'a'}, n)
		if !isASCII(b) {
			t.Fatalf("isASCII(%d ASCII bytes) = false", n)
		}
		for i := range n {
			b[i] = 0x80
			if isASCII(b) {
				t.Fatalf("isASCII(%d bytes, 0x80 at %d) = true", n, i)
			}
			b[i] = 'a'
		}
	}
}

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
	unsorted := anomalyWorkload()
	for i := range unsorted.Timeseries {
		slices.Reverse(unsorted.Timeseries[i].Labels) // as vmagent may send them
	}
	unsortedBody := marshal(b, unsorted)
	b.Run("streaming-unsorted", func(b *testing.B) {
		var req Request
		b.ReportAllocs()
		b.SetBytes(int64(len(unsortedBody)))
		for i := 0; i < b.N; i++ {
			if err := DecodeWriteRequest(unsortedBody, &req); err != nil {
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

// fullRequest is a WriteRequest with every field of remote write 1.0 set:
// exemplars, integer and float native histograms with every field (spans,
// deltas, counts, reset hints, custom values), metadata of every type.
func fullRequest() *prompb.WriteRequest {
	wr := sampleRequest()
	wr.Timeseries[1].Histograms = append(wr.Timeseries[1].Histograms, prompb.Histogram{
		Count: &prompb.Histogram_CountFloat{CountFloat: 7.5}, Sum: -3, Schema: -2, ZeroThreshold: 1e-9,
		ZeroCount:     &prompb.Histogram_ZeroCountFloat{ZeroCountFloat: 0.5},
		NegativeSpans: []prompb.BucketSpan{{Offset: -3, Length: 1}, {Offset: 2, Length: 2}}, NegativeCounts: []float64{1, 2, 3},
		PositiveSpans: []prompb.BucketSpan{{Offset: 1, Length: 1}}, PositiveCounts: []float64{1.5},
		ResetHint: prompb.Histogram_GAUGE, Timestamp: -1,
	}, prompb.Histogram{
		Count: &prompb.Histogram_CountInt{CountInt: 1}, Schema: -53, ZeroCount: &prompb.Histogram_ZeroCountInt{},
		PositiveSpans: []prompb.BucketSpan{{Offset: 0, Length: 2}}, PositiveDeltas: []int64{1, -1},
		ResetHint: prompb.Histogram_YES, Timestamp: 5000, CustomValues: []float64{0.1, 0.5, 1},
	}, prompb.Histogram{
		// A NaN sum: the count may exceed the buckets' 2+3+1.
		Count: &prompb.Histogram_CountInt{CountInt: 9}, Sum: math.NaN(), Schema: 8, ZeroThreshold: 1e-128,
		NegativeSpans: []prompb.BucketSpan{{Offset: -5, Length: 1}, {Offset: 0, Length: 1}}, NegativeDeltas: []int64{2, 1},
		PositiveSpans: []prompb.BucketSpan{{Offset: 7, Length: 1}}, PositiveDeltas: []int64{1},
		Timestamp: 6000,
	})
	wr.Metadata = nil
	for typ := range prompb.MetricMetadata_MetricType_name {
		wr.Metadata = append(wr.Metadata, prompb.MetricMetadata{Type: prompb.MetricMetadata_MetricType(typ),
			MetricFamilyName: fmt.Sprint("family_", typ), Help: "help", Unit: "seconds"})
	}
	sort.Slice(wr.Metadata, func(i, j int) bool { return wr.Metadata[i].Type < wr.Metadata[j].Type })
	return wr
}

// pbuf builds protobuf bytes by hand, including encodings gogo never writes.
type pbuf []byte

func (b pbuf) tag(num uint64, wt int) pbuf { return appendVarint(b, num<<3|uint64(wt)) }
func (b pbuf) varint(num, v uint64) pbuf   { return appendVarint(b.tag(num, wireVarint), v) }
func (b pbuf) fixed64(num, v uint64) pbuf {
	return binary.LittleEndian.AppendUint64(b.tag(num, wireFixed64), v)
}
func (b pbuf) fixed32(num uint64, v uint32) pbuf {
	return binary.LittleEndian.AppendUint32(b.tag(num, wireFixed32), v)
}
func (b pbuf) group(num uint64, body []byte) pbuf {
	return append(b.tag(num, wireStartGroup), body...).tag(num, wireEndGroup)
}
func (b pbuf) bytes(num uint64, payload []byte) pbuf {
	return append(appendVarint(b.tag(num, wireBytes), uint64(len(payload))), payload...)
}

// long10 is v as a 10-byte varint whose last byte carries bits past 64,
// which gogo drops.
func long10(v uint64) []byte {
	b := make([]byte, 10)
	for i := range 9 {
		b[i] = byte(v>>(7*i)) | 0x80
	}
	b[9] = byte(v>>63) | 0x7e
	return b
}

// pbLabel is an encoded prompb.Label.
func pbLabel(name, value string) pbuf {
	return pbuf(nil).bytes(1, []byte(name)).bytes(2, []byte(value))
}

// seedLevel places extra fields at the end of one message type nested in an
// otherwise valid request.
type seedLevel struct {
	name   string
	schema *msgSchema
	wrap   func(extra []byte) []byte
}

var (
	upLabel    = pbuf(nil).bytes(1, pbLabel("__name__", "up"))
	sampleBody = pbuf(nil).fixed64(1, math.Float64bits(1)).varint(2, 1000)
	messageKey = fieldRule{kind: kindMessage}
)

func inSeries(rest []byte) []byte { return pbuf(nil).bytes(1, append(slices.Clip(upLabel), rest...)) }

var seedLevels = []seedLevel{
	{"request", &msgSchema{fields: []fieldRule{1: messageKey, 3: messageKey}}, func(x []byte) []byte {
		return append(inSeries(pbuf(nil).bytes(2, sampleBody)), x...)
	}},
	{"series", &msgSchema{fields: []fieldRule{1: messageKey, 2: messageKey, 3: messageKey, 4: messageKey}}, func(x []byte) []byte {
		return inSeries(append(pbuf(nil).bytes(2, sampleBody), x...))
	}},
	{"label", &labelSchema, func(x []byte) []byte {
		return inSeries(pbuf(nil).bytes(1, append(pbLabel("zz", "a"), x...)))
	}},
	{"sample", &sampleSchema, func(x []byte) []byte { return inSeries(pbuf(nil).bytes(2, append(slices.Clip(sampleBody), x...))) }},
	{"exemplar", &exemplarSchema, func(x []byte) []byte {
		return inSeries(pbuf(nil).bytes(3, append(pbuf(nil).bytes(1, pbLabel("trace_id", "t")).fixed64(2, 0).varint(3, 1), x...)))
	}},
	{"exemplar_label", &labelSchema, func(x []byte) []byte {
		return inSeries(pbuf(nil).bytes(3, pbuf(nil).bytes(1, append(pbLabel("trace_id", "t"), x...))))
	}},
	// An empty histogram (count 0) and one of a single bucket: valid, so
	// that what the extra fields do decides.
	{"histogram", &histogramSchema, func(x []byte) []byte {
		return inSeries(pbuf(nil).bytes(4, append(pbuf(nil).varint(1, 0).varint(15, 1000), x...)))
	}},
	{"span", &spanSchema, func(x []byte) []byte {
		return inSeries(pbuf(nil).bytes(4, pbuf(nil).varint(1, 1).bytes(11, append(pbuf(nil).varint(1, 2).varint(2, 1), x...)).varint(12, 2)))
	}},
	{"metadata", &metadataSchema, func(x []byte) []byte {
		return pbuf(inSeries(nil)).bytes(3, append(pbuf(nil).varint(1, 2).bytes(2, []byte("up")), x...))
	}},
}

// fuzzSeed is one input of FuzzDecodeDifferential's seed corpus, with what
// prompb makes of it ("ok", "bad" or "invalid" series), to show the seed
// exercises what its name says.
type fuzzSeed struct {
	name, want string
	body       []byte
}

// differentialSeeds returns the seed corpus: whole requests, truncations,
// invalid series, and per nesting level wrong wire types, unknown fields and
// groups, field numbers 0 and past 2^29, overlong varints and huge lengths.
func differentialSeeds(t testing.TB) []fuzzSeed {
	full := marshal(t, fullRequest())
	seeds := []fuzzSeed{
		{"valid_full", "ok", full},
		{"valid_sample_request", "ok", marshal(t, sampleRequest())},
		{"empty", "ok", nil},
		{"unsorted", "ok", marshalSeries(t, series("__name__", "up", "b", "", "a", ""))},
		{"invalid_duplicate_unsorted", "invalid", marshalSeries(t, series("b", "1", "__name__", "up", "b", "2"))},
		{"invalid_name_utf8", "invalid", marshalSeries(t, series("__name__", "up", "\xff\xfe", "a"))},
		{"invalid_value_utf8", "invalid", marshalSeries(t, series("__name__", "up", "a", "\xc0"))},
		{"invalid_duplicate", "invalid", marshalSeries(t, series("__name__", "up", "a", "1", "a", "2"))},
		{"invalid_empty_name", "invalid", marshalSeries(t, series("", "x", "__name__", "up"))},
		{"invalid_no_name", "invalid", marshalSeries(t, series("a", "x"))},
		{"invalid_empty_metric_name", "invalid", marshalSeries(t, series("__name__", ""))},
		{"invalid_second_series", "invalid", marshalSeries(t, series("__name__", "up"), series("__name__", "up", "a", "", "a", ""))},
		{"invalid_then_malformed", "bad", append(marshal(t, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{series("job", "a")}}), 0x0a, 0x05)},
		{"interleaved_labels", "ok", inSeries(pbuf(nil).bytes(2, sampleBody).bytes(1, pbLabel("zz", "yy")))},
		{"packed_double_straddles", "ok", seedLevels[6].wrap([]byte{13<<3 | wireBytes, 4, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f})},
		// A packed delta of length 1 whose varint (128: a count of 64) runs
		// one byte past it, in a histogram of one bucket.
		{"packed_varint_straddles", "ok", seedLevels[6].wrap(append(pbuf(nil).varint(1, 64).bytes(11, pbuf(nil).varint(2, 1)),
			12<<3|wireBytes, 1, 0x80, 0x01))},
		// A count of 3 and no buckets, before or after the labels.
		{"invalid_histogram", "invalid", inSeries(pbuf(nil).bytes(4, pbuf(nil).varint(1, 3)))},
		{"invalid_histogram_labels_last", "invalid", pbuf(nil).bytes(1, append(pbuf(nil).bytes(4, pbuf(nil).varint(1, 3)), upLabel...))},
		{"packed_double_straddles_past_end", "bad", seedLevels[6].wrap([]byte{13<<3 | wireBytes, 4, 0, 0, 0, 0, 0})},
	}
	for _, n := range []int{1, 2, 3, 10, 50, len(full) / 2, len(full) - 1} {
		seeds = append(seeds, fuzzSeed{fmt.Sprint("truncated_at_", n), "bad", full[:n]})
	}
	for _, lv := range seedLevels {
		seeds = append(seeds, levelSeeds(lv)...)
	}
	return seeds
}

func marshalSeries(t testing.TB, ts ...prompb.TimeSeries) []byte {
	return marshal(t, &prompb.WriteRequest{Timeseries: ts})
}

// levelSeeds returns the seeds of one nesting level.
func levelSeeds(lv seedLevel) []fuzzSeed {
	const unknown = 100
	seeds := []fuzzSeed{
		{"field0", "bad", []byte{0x00, 0x01}},
		{"field0_in_group", "ok", pbuf(nil).group(unknown, []byte{0x00, 0x01})},
		{"unknown_varint", "ok", pbuf(nil).varint(unknown, 1)},
		{"unknown_fixed64", "ok", pbuf(nil).fixed64(unknown, 1)},
		{"unknown_fixed32", "ok", pbuf(nil).fixed32(unknown, 1)},
		{"unknown_bytes", "ok", pbuf(nil).bytes(unknown, []byte("xyz"))},
		{"unknown_group", "ok", pbuf(nil).group(unknown, nil)},
		{"unknown_group_nested", "ok", pbuf(nil).group(unknown, pbuf(nil).varint(1, 1).group(2, pbuf(nil).bytes(1, []byte("a"))).fixed32(3, 0))},
		{"unknown_group_end_mismatch", "ok", pbuf(nil).tag(unknown, wireStartGroup).tag(unknown+1, wireEndGroup)},
		{"unknown_group_unterminated", "bad", pbuf(nil).tag(unknown, wireStartGroup).varint(1, 1)},
		{"end_group_alone", "bad", pbuf(nil).tag(unknown, wireEndGroup)},
		{"wire_type_6", "bad", pbuf(nil).tag(unknown, 6)},
		{"wire_type_7", "bad", pbuf(nil).tag(unknown, 7)},
		{"field_max", "ok", pbuf(nil).varint(1<<29-1, 1)},
		{"field_2p29", "ok", pbuf(nil).varint(1<<29, 1)},
		{"field_2p31m1", "ok", pbuf(nil).varint(1<<31-1, 1)},
		{"field_2p31", "bad", pbuf(nil).varint(1<<31, 1)},
		{"field_2p32", "bad", pbuf(nil).varint(1<<32, 1)},
		{"varint_11_bytes", "bad", append(pbuf(nil).tag(unknown, wireVarint), bytes.Repeat([]byte{0x80}, 10)...)},
		{"varint_10_bytes_high_bits", "ok", append(pbuf(nil).tag(unknown, wireVarint), long10(1)...)},
		{"tag_10_bytes", "ok", append(long10(unknown<<3|wireVarint), 1)},
		{"length_10_bytes", "ok", append(append(pbuf(nil).tag(unknown, wireBytes), long10(1)...), 'x')},
		{"length_2p63", "bad", append(pbuf(nil).tag(unknown, wireBytes), appendVarint(nil, 1<<63)...)},
		{"length_2p64m1", "bad", append(pbuf(nil).tag(unknown, wireBytes), appendVarint(nil, math.MaxUint64)...)},
		{"length_past_end", "bad", pbuf(nil).tag(unknown, wireBytes).tag(0, 5)},
		{"fixed64_truncated", "bad", pbuf(nil).tag(unknown, wireFixed64).tag(0, 3)},
	}
	for i := range seeds {
		seeds[i].name = lv.name + "_" + seeds[i].name
		seeds[i].body = lv.wrap(seeds[i].body)
	}
	for num, r := range lv.schema.fields {
		if r.kind != kindUnknown {
			seeds = append(seeds, knownFieldSeeds(lv, uint64(num), r)...)
		}
	}
	return seeds
}

// knownFieldSeeds returns, for known field num of level lv, each wire type
// gogo rejects; and for each one it accepts, an empty value, the same
// truncated, with a huge or overrunning length, and under a 10-byte tag or a
// field number that gogo's int32 conversion wraps to num (both of which gogo
// reads as the plain field).
func knownFieldSeeds(lv seedLevel, num uint64, r fieldRule) []fuzzSeed {
	values := map[int]pbuf{
		wireVarint: pbuf(nil).varint(num, 0), wireFixed64: pbuf(nil).fixed64(num, 0), wireFixed32: pbuf(nil).fixed32(num, 0),
		wireBytes: pbuf(nil).bytes(num, nil), wireStartGroup: pbuf(nil).group(num, nil),
	}
	var seeds []fuzzSeed
	add := func(name, want string, extra []byte) {
		seeds = append(seeds, fuzzSeed{fmt.Sprintf("%s_f%d_%s", lv.name, num, name), want, lv.wrap(extra)})
	}
	for _, wt := range []int{wireVarint, wireFixed64, wireBytes, wireStartGroup, wireFixed32} {
		v := values[wt]
		name := fmt.Sprint("wire", wt)
		if _, err := r.check(v, field{num: uint32(num), wire: uint8(wt)}, len(v)); err != nil {
			add(name, "bad", v)
			continue
		}
		tag := num<<3 | uint64(wt)
		value := v[varintLen(tag):]
		plain := prompbOutcome(lv.wrap(v))
		add(name, "", v)
		add(name+"_truncated", "bad", appendVarint(nil, tag))
		add(name+"_tag_10_bytes", plain, append(long10(tag), value...))
		add(name+"_field_wraps", plain, append(appendVarint(nil, (1<<32|num)<<3|uint64(wt)), value...))
		if wt == wireBytes {
			add(name+"_length_2p63", "bad", appendVarint(appendVarint(nil, tag), 1<<63))
			add(name+"_length_past_end", "bad", appendVarint(appendVarint(nil, tag), 5))
		}
	}
	return seeds
}

// prompbOutcome is "bad" when prompb rejects body, "invalid" when it has an
// invalid series, "ok" otherwise.
func prompbOutcome(body []byte) string {
	var wr prompb.WriteRequest
	switch {
	case wr.Unmarshal(body) != nil:
		return "bad"
	case referenceFirstInvalid(&wr) >= 0:
		return "invalid"
	}
	return "ok"
}

// referenceFirstInvalid is referenceInvalidSeries without the reason.
func referenceFirstInvalid(wr *prompb.WriteRequest) int {
	bad, _ := referenceInvalidSeries(wr)
	return bad
}

// TestDecodeSortsLabels: labels out of order are accepted and sorted by
// name, as vminsert and Prometheus do; the series and the request say so,
// and the verbatim encoding writes the sorted labels.
func TestDecodeSortsLabels(t *testing.T) {
	tests := []struct {
		name      string
		in        []string // label pairs as sent
		reordered bool
	}{
		{"sorted", []string{"__name__", "up", "instance", "a", "job", "n"}, false},
		{"name last (vmagent)", []string{"job", "n", "instance", "a", "__name__", "up"}, true},
		{"one pair swapped", []string{"__name__", "up", "job", "n", "instance", "a"}, true},
		{"tenant labels first", []string{"vm_project_id", "0", "vm_account_id", "1", "__name__", "up", "a", "b"}, true},
		{"name only", []string{"__name__", "up"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := series(tt.in...)
			body := marshal(t, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{ts}})
			var req Request
			if err := DecodeWriteRequest(body, &req); err != nil {
				t.Fatal(err)
			}
			s := &req.Series[0]
			if s.Reordered != tt.reordered || req.Reordered != tt.reordered {
				t.Errorf("Reordered: series %v, request %v, want %v", s.Reordered, req.Reordered, tt.reordered)
			}
			sort.Slice(ts.Labels, func(i, j int) bool { return ts.Labels[i].Name < ts.Labels[j].Name })
			if !LabelsEqual(s.Labels, fromPrompbLabels(ts.Labels)) {
				t.Errorf("labels %s, want sorted %v", FormatLabels(s.Labels), ts.Labels)
			}
			requireSame(t, "verbatim", AppendSeriesVerbatim(nil, s), &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{ts}})
		})
	}
}

// AppendSeries writes labels of every length as gogo's marshaller does:
// one-byte and multi-byte lengths of names, values and whole label fields,
// and empty values left out.
func TestAppendSeriesLabelLengths(t *testing.T) {
	lengths := []int{0, 1, 59, 60, 61, 62, 127, 128, 300}
	for _, n := range lengths[1:] {
		for _, v := range lengths {
			name, value := strings.Repeat("n", n), strings.Repeat("v", v)
			want := prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
				Labels:  []prompb.Label{{Name: "__name__", Value: "m"}, {Name: name, Value: value}},
				Samples: []prompb.Sample{{Value: 1, Timestamp: 2}},
			}}}
			var req Request
			if err := DecodeWriteRequest(marshal(t, &want), &req); err != nil {
				t.Fatal(err)
			}
			got := AppendSeries(nil, req.Series[0].Labels, &req.Series[0])
			if wantBody := marshal(t, &want); !bytes.Equal(got, wantBody) {
				t.Fatalf("name %d, value %d bytes: encoded %x, gogo %x", n, v, got, wantBody)
			}
			fields := AppendLabelFields(nil, req.Series[0].Labels)
			if len(fields) != LabelFieldsLen(req.Series[0].Labels) || !bytes.Contains(got, fields) {
				t.Fatalf("name %d, value %d bytes: label fields %x not in %x", n, v, fields, got)
			}
		}
	}
}

// ShortLabelFieldEnd finds the end of what AppendLabelFields writes
// exactly when the label is short enough to be copied as it is, and of
// nothing else that decodes to the same label; AppendLabelFieldStart and
// the value are what AppendLabelFields writes.
func TestShortLabelFieldEndAndStart(t *testing.T) {
	for _, n := range []int{1, 8, 59, 60, 61, 122, 123, 127, 128, 300} {
		for _, v := range []int{0, 1, 59, 60, 61, 122, 123, 127, 128, 300} {
			l := Label{Name: bytes.Repeat([]byte{'n'}, n), Value: bytes.Repeat([]byte{'v'}, v)}
			want := AppendLabelFields(nil, []Label{l})
			wantShort := v > 0 && 4+n+v <= 127
			if end := ShortLabelFieldEnd(append([]byte("x"), want...), 1, &l); (end != 0) != wantShort || (wantShort && end != 1+len(want)) {
				t.Fatalf("name %d, value %d bytes: end %d of %d bytes, want short %v", n, v, end, 1+len(want), wantShort)
			}
			if v == 0 {
				continue
			}
			if got := append(AppendLabelFieldStart(nil, l.Name, v), l.Value...); !bytes.Equal(got, want) {
				t.Fatalf("name %d, value %d bytes: AppendLabelFieldStart wrote %x, want %x", n, v, got, want)
			}
		}
	}
	// Other encodings of job="node" (the label message starts at inner):
	// each decodes to the label, none is short; nor is a field cut short.
	job := Label{Name: []byte("job"), Value: []byte("node")}
	for _, tc := range []struct {
		field string
		inner int
	}{
		{"\x0a\x0b\x12\x04node\x0a\x03job", 2},          // value first
		{"\x0a\x0c\x0a\x03job\x12\x84\x00node", 2},      // a value length of two bytes
		{"\x0a\x0e\x0a\x01x\x0a\x03job\x12\x04node", 2}, // the name twice, the last wins
		{"\x8a\x00\x0b\x0a\x03job\x12\x04node", 3},      // a tag of two bytes
		{"\x0a\x0b\x0a\x03job\x12\x04nod", -1},          // cut short
	} {
		if tc.inner > 0 {
			if l, err := decodeLabel([]byte(tc.field[tc.inner:])); err != nil || !LabelsEqual([]Label{l}, []Label{job}) {
				t.Fatalf("field %x decodes to %q=%q (%v), want job=node", tc.field, l.Name, l.Value, err)
			}
		}
		if end := ShortLabelFieldEnd([]byte(tc.field), 0, &job); end != 0 {
			t.Errorf("field %x: end %d, want 0", tc.field, end)
		}
	}
}
