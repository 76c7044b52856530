package remotewrite

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
)

// prometheusVerdict is what Prometheus' receiver (v0.316.0,
// storage/remote/write_handler.go) makes of h: the histogram as prompb
// converts it (IsFloatHistogram decides which), reduced to schema 8 when its
// schema is 9 to 52, then validated. h stays as it is: the conversion
// shares its bucket slices, which the reduction changes, so a reduced
// histogram is converted from a copy.
func prometheusVerdict(h *prompb.Histogram) error {
	const maxSchema = histogram.ExponentialSchemaMax
	reduce := histogram.IsExponentialSchemaReserved(h.Schema) && h.Schema > maxSchema
	if reduce {
		c := *h
		c.NegativeDeltas, c.PositiveDeltas = slices.Clone(h.NegativeDeltas), slices.Clone(h.PositiveDeltas)
		c.NegativeCounts, c.PositiveCounts = slices.Clone(h.NegativeCounts), slices.Clone(h.PositiveCounts)
		h = &c
	}
	if h.IsFloatHistogram() {
		fh := h.ToFloatHistogram()
		if reduce {
			if err := fh.ReduceResolution(maxSchema); err != nil {
				return err
			}
		}
		return fh.Validate()
	}
	ih := h.ToIntHistogram()
	if reduce {
		if err := ih.ReduceResolution(maxSchema); err != nil {
			return err
		}
	}
	return ih.Validate()
}

// histogramCase is a histogram, as a prompb value or as raw bytes (for
// encodings prompb never writes), and part of Prometheus' error for it ("":
// valid).
type histogramCase struct {
	name string
	h    prompb.Histogram
	raw  []byte
	want string
}

func (c *histogramCase) bytes(t testing.TB) []byte {
	if c.raw != nil {
		return c.raw
	}
	b, err := c.h.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Valid histograms the cases derive from. Integer: zero bucket 1, negative
// 2, positive 2, 1, 3: count 9.
func intHistogram() prompb.Histogram {
	return prompb.Histogram{Count: &prompb.Histogram_CountInt{CountInt: 9}, Sum: 12.5, Schema: 3, ZeroThreshold: 1e-3,
		ZeroCount:     &prompb.Histogram_ZeroCountInt{ZeroCountInt: 1},
		NegativeSpans: []prompb.BucketSpan{{Offset: -2, Length: 1}}, NegativeDeltas: []int64{2},
		PositiveSpans: []prompb.BucketSpan{{Offset: 0, Length: 2}, {Offset: 3, Length: 1}}, PositiveDeltas: []int64{2, -1, 2},
		Timestamp: 1000}
}

// floatHistogram: zero bucket 0.5, negative 1, 2, 3, positive 1.5: count 8.
func floatHistogram() prompb.Histogram {
	return prompb.Histogram{Count: &prompb.Histogram_CountFloat{CountFloat: 8}, Sum: -3, Schema: -2, ZeroThreshold: 1e-9,
		ZeroCount:     &prompb.Histogram_ZeroCountFloat{ZeroCountFloat: 0.5},
		NegativeSpans: []prompb.BucketSpan{{Offset: -3, Length: 1}, {Offset: 2, Length: 2}}, NegativeCounts: []float64{1, 2, 3},
		PositiveSpans: []prompb.BucketSpan{{Offset: 1, Length: 1}}, PositiveCounts: []float64{1.5},
		Timestamp: 1000}
}

// customHistogram: buckets 1, 2, 2 under bounds 0.5, 1, 5 (and +Inf).
func customHistogram() prompb.Histogram {
	return prompb.Histogram{Count: &prompb.Histogram_CountInt{CountInt: 5}, Sum: 7, Schema: histogram.CustomBucketsSchema,
		PositiveSpans: []prompb.BucketSpan{{Offset: 0, Length: 3}}, PositiveDeltas: []int64{1, 1, 0},
		CustomValues: []float64{0.5, 1, 5}, Timestamp: 1000}
}

func customFloatHistogram() prompb.Histogram {
	return prompb.Histogram{Count: &prompb.Histogram_CountFloat{CountFloat: 5}, Sum: 7, Schema: histogram.CustomBucketsSchema,
		PositiveSpans: []prompb.BucketSpan{{Offset: 1, Length: 2}}, PositiveCounts: []float64{2, 3},
		CustomValues: []float64{0.5, 1, 5}, Timestamp: 1000}
}

// with returns base() changed by change.
func with(base func() prompb.Histogram, change func(h *prompb.Histogram)) prompb.Histogram {
	h := base()
	change(&h)
	return h
}

func histogramCases() []histogramCase {
	spans := func(s ...int64) []prompb.BucketSpan { // offset, length pairs
		var out []prompb.BucketSpan
		for i := 0; i+1 < len(s); i += 2 {
			out = append(out, prompb.BucketSpan{Offset: int32(s[i]), Length: uint32(s[i+1])})
		}
		return out
	}
	ts := pbuf(nil).varint(fieldHistTimestamp, 1000)
	return []histogramCase{
		{name: "valid integer", h: intHistogram()},
		{name: "valid float", h: floatHistogram()},
		{name: "valid custom buckets", h: customHistogram()},
		{name: "valid custom buckets, float", h: customFloatHistogram()},
		{name: "valid empty integer histogram", h: prompb.Histogram{Count: &prompb.Histogram_CountInt{}, Timestamp: 1000}},
		{name: "valid: no count field is an integer count of 0", h: prompb.Histogram{Sum: 0, Timestamp: 1000}},
		{name: "valid: NaN sum, count above the buckets", h: with(intHistogram, func(h *prompb.Histogram) {
			h.Sum, h.Count = math.NaN(), &prompb.Histogram_CountInt{CountInt: 20}
		})},
		{name: "valid: NaN sum, count equal to the buckets", h: with(intHistogram, func(h *prompb.Histogram) { h.Sum = math.NaN() })},
		{name: "valid: a float count is not checked against the buckets", h: with(floatHistogram, func(h *prompb.Histogram) {
			h.Count = &prompb.Histogram_CountFloat{CountFloat: 99}
		})},
		{name: "valid: float NaN bucket, count and zero count", h: with(floatHistogram, func(h *prompb.Histogram) {
			h.PositiveCounts = []float64{math.NaN()}
			h.Count, h.ZeroCount = &prompb.Histogram_CountFloat{CountFloat: math.NaN()}, &prompb.Histogram_ZeroCountFloat{ZeroCountFloat: math.NaN()}
		})},
		{name: "valid: spans of length 0", h: with(intHistogram, func(h *prompb.Histogram) { h.PositiveSpans = spans(-5, 0, 5, 2, 0, 0, 3, 1) })},
		{name: "valid: an integer histogram ignores float bucket counts", h: with(intHistogram, func(h *prompb.Histogram) {
			h.PositiveCounts = []float64{-1, -2}
		})},
		{name: "valid: a float histogram ignores integer deltas and zero count", h: with(floatHistogram, func(h *prompb.Histogram) {
			h.PositiveDeltas, h.ZeroCount = []int64{-5}, &prompb.Histogram_ZeroCountInt{ZeroCountInt: 3}
		})},
		{name: "valid: schema 12 is reduced to 8", h: with(intHistogram, func(h *prompb.Histogram) { h.Schema = 12 })},
		{name: "valid: schema 52, float", h: with(floatHistogram, func(h *prompb.Histogram) { h.Schema = 52 })},

		{name: "count above the buckets", h: with(intHistogram, func(h *prompb.Histogram) { h.Count = &prompb.Histogram_CountInt{CountInt: 99} }),
			want: "9 observations found in buckets, but the Count field is 99: histogram's observation count should equal the number of observations found in the buckets (in absence of NaN)"},
		{name: "count below the buckets", h: with(intHistogram, func(h *prompb.Histogram) { h.Count = &prompb.Histogram_CountInt{CountInt: 8} }),
			want: "9 observations found in buckets, but the Count field is 8"},
		{name: "zero count is counted", h: with(intHistogram, func(h *prompb.Histogram) { h.ZeroCount = &prompb.Histogram_ZeroCountInt{ZeroCountInt: 2} }),
			want: "10 observations found in buckets, but the Count field is 9"},
		{name: "NaN sum, count below the buckets", h: with(intHistogram, func(h *prompb.Histogram) {
			h.Sum, h.Count = math.NaN(), &prompb.Histogram_CountInt{CountInt: 8}
		}), want: "9 observations found in buckets, but the Count field is 8: histogram's observation count should be at least the number of observations found in the buckets"},
		{name: "count of a custom-buckets histogram", h: with(customHistogram, func(h *prompb.Histogram) { h.Count = &prompb.Histogram_CountInt{CountInt: 4} }),
			want: "5 observations found in buckets, but the Count field is 4"},
		{name: "valid: bucket counts whose sum wraps past 2^64, as Prometheus adds them", h: with(intHistogram, func(h *prompb.Histogram) {
			h.NegativeDeltas = []int64{math.MaxInt64}
			h.PositiveDeltas = []int64{math.MaxInt64, 0, 0}
			h.Count = &prompb.Histogram_CountInt{CountInt: math.MaxUint64 - 2} // 4 (2^63 - 1) + 1
		})},
		{name: "negative bucket after the deltas", h: with(intHistogram, func(h *prompb.Histogram) { h.PositiveDeltas = []int64{2, -3, 2} }),
			want: "positive side: bucket number 2 has observation count of -1: histogram has a bucket whose observation count is negative"},
		{name: "negative bucket on the negative side", h: with(intHistogram, func(h *prompb.Histogram) { h.NegativeDeltas = []int64{-2} }),
			want: "negative side: bucket number 1 has observation count of -2"},
		{name: "delta overflow makes a negative bucket", h: with(intHistogram, func(h *prompb.Histogram) { h.PositiveDeltas = []int64{math.MaxInt64, 1, 0} }),
			want: "positive side: bucket number 2 has observation count of -9223372036854775808"},
		{name: "float negative bucket", h: with(floatHistogram, func(h *prompb.Histogram) { h.PositiveCounts = []float64{-1.5} }),
			want: "positive side: bucket number 1 has observation count of -1.5"},
		{name: "float negative zero count", h: with(floatHistogram, func(h *prompb.Histogram) {
			h.ZeroCount = &prompb.Histogram_ZeroCountFloat{ZeroCountFloat: -0.5}
		}), want: "zero bucket has observation count of -0.5: histogram has a bucket whose observation count is negative"},
		{name: "float negative count", h: with(floatHistogram, func(h *prompb.Histogram) { h.Count = &prompb.Histogram_CountFloat{CountFloat: -1} }),
			want: "observation count is  -1: histogram's observation count is negative"},
		{name: "schema -5", h: with(intHistogram, func(h *prompb.Histogram) { h.Schema = -5 }),
			want: "histogram has an invalid schema, which must be between -4 and 8 for exponential buckets, or -53 for custom buckets, got schema -5"},
		{name: "schema 53", h: with(floatHistogram, func(h *prompb.Histogram) { h.Schema = 53 }), want: "got schema 53"},
		{name: "schema -52", h: with(customHistogram, func(h *prompb.Histogram) { h.Schema = -52 }), want: "got schema -52"},
		{name: "spans need more buckets", h: with(intHistogram, func(h *prompb.Histogram) { h.PositiveSpans = spans(0, 2, 3, 2) }),
			want: "positive side: spans need 4 buckets, have 3 buckets: histogram spans specify different number of buckets than provided"},
		{name: "spans need fewer buckets", h: with(intHistogram, func(h *prompb.Histogram) { h.PositiveSpans = spans(0, 2) }),
			want: "positive side: spans need 2 buckets, have 3 buckets"},
		{name: "negative side without spans", h: with(floatHistogram, func(h *prompb.Histogram) { h.NegativeSpans = nil }),
			want: "negative side: spans need 0 buckets, have 3 buckets"},
		{name: "negative offset after the first span", h: with(intHistogram, func(h *prompb.Histogram) { h.PositiveSpans = spans(0, 2, -1, 1) }),
			want: "positive side: span number 2 with offset -1: histogram has a span whose offset is negative"},
		{name: "first span at the lowest int32 index", h: with(intHistogram, func(h *prompb.Histogram) { h.NegativeSpans = spans(math.MinInt32, 1) }),
			want: "negative side: span number 1 starts at bucket index -2147483648: histogram has a span whose bucket index is out of range"},
		{name: "spans past the highest int32 index", h: with(intHistogram, func(h *prompb.Histogram) { h.PositiveSpans = spans(math.MaxInt32, 2, 0, 1) }),
			want: "positive side: span number 1 ends at bucket index 2147483648: histogram has a span whose bucket index is out of range"},
		{name: "exponential schema with custom bounds", h: with(intHistogram, func(h *prompb.Histogram) { h.CustomValues = []float64{1} }),
			want: "histogram with exponential schema must not have custom bounds"},
		{name: "custom bounds not increasing", h: with(customHistogram, func(h *prompb.Histogram) { h.CustomValues = []float64{0.5, 0.5, 5} }),
			want: "custom buckets: previous bound is 0.500000 and current is 0.500000: histogram custom bounds must be in strictly increasing order"},
		{name: "custom bound NaN", h: with(customHistogram, func(h *prompb.Histogram) { h.CustomValues = []float64{0.5, math.NaN(), 5} }),
			want: "custom buckets: histogram custom bounds must not be NaN"},
		{name: "custom bound +Inf", h: with(customHistogram, func(h *prompb.Histogram) { h.CustomValues = []float64{0.5, 1, math.Inf(1)} }),
			want: "custom buckets: last +Inf bound must not be explicitly defined: histogram custom bounds must be finite"},
		{name: "too few custom bounds", h: with(customHistogram, func(h *prompb.Histogram) { h.CustomValues = []float64{0.5} }),
			want: "custom buckets: only 1 custom bounds defined which is insufficient to cover total span length of 3: histogram custom bounds are too few"},
		{name: "custom buckets, negative first offset", h: with(customHistogram, func(h *prompb.Histogram) { h.PositiveSpans = spans(-1, 3) }),
			want: "custom buckets: span number 1 with offset -1: histogram has a span whose offset is negative"},
		{name: "custom buckets, spans vs buckets", h: with(customFloatHistogram, func(h *prompb.Histogram) { h.PositiveSpans = spans(1, 3) }),
			want: "custom buckets: spans need 3 buckets, have 2 buckets"},
		{name: "custom buckets with a zero count", h: with(customHistogram, func(h *prompb.Histogram) {
			h.ZeroCount = &prompb.Histogram_ZeroCountInt{ZeroCountInt: 1}
		}), want: "custom buckets: must have zero count of 0"},
		{name: "custom buckets with a NaN zero count", h: with(customFloatHistogram, func(h *prompb.Histogram) {
			h.ZeroCount = &prompb.Histogram_ZeroCountFloat{ZeroCountFloat: math.NaN()}
		}), want: "custom buckets: must have zero count of 0"},
		{name: "custom buckets with a zero threshold", h: with(customHistogram, func(h *prompb.Histogram) { h.ZeroThreshold = 1e-9 }),
			want: "custom buckets: must have zero threshold of 0"},
		{name: "custom buckets with negative spans", h: with(customHistogram, func(h *prompb.Histogram) { h.NegativeSpans = spans(0, 0) }),
			want: "custom buckets: must not have negative spans"},
		{name: "custom buckets with negative buckets", h: with(customFloatHistogram, func(h *prompb.Histogram) { h.NegativeCounts = []float64{1} }),
			want: "custom buckets: must not have negative buckets"},
		{name: "schema 12: count checked after the reduction", h: with(intHistogram, func(h *prompb.Histogram) {
			h.Schema, h.Count = 12, &prompb.Histogram_CountInt{CountInt: 8}
		}), want: "9 observations found in buckets, but the Count field is 8"},
		{name: "schema 12: spans need more buckets", h: with(intHistogram, func(h *prompb.Histogram) {
			h.Schema, h.PositiveSpans = 12, spans(0, 2, 3, 2)
		}), want: "have 3 buckets but spans need more: histogram spans specify different number of buckets than provided"},
		{name: "valid: schema 12, a negative bucket merged into a positive one", h: with(intHistogram, func(h *prompb.Histogram) {
			h.Schema, h.PositiveSpans, h.PositiveDeltas = 12, spans(1, 3), []int64{5, -6, 2} // 5, -1, 1 in one schema-8 bucket
			h.Count = &prompb.Histogram_CountInt{CountInt: 8}
		})},

		// Raw encodings: mixed oneof members (the last one decides), packed and
		// unpacked elements of one field.
		{name: "count_int then count_float: a float histogram", raw: pbuf(nil).varint(fieldHistCountInt, 3).fixed64(fieldHistCountFloat, 0).append(ts)},
		{name: "count_float then count_int: an integer histogram", raw: pbuf(nil).fixed64(fieldHistCountFloat, 0).varint(fieldHistCountInt, 3).append(ts),
			want: "0 observations found in buckets, but the Count field is 3"},
		{name: "zero_count_int then zero_count_float: an integer zero count of 0", raw: pbuf(nil).varint(fieldHistCountInt, 0).
			varint(fieldHistZeroCountInt, 3).fixed64(fieldHistZeroCountFloat, math.Float64bits(1)).append(ts)},
		{name: "deltas packed and unpacked", raw: pbuf(nil).varint(fieldHistCountInt, 6).bytes(fieldHistPositiveSpans, pbuf(nil).varint(fieldSpanLength, 3)).
			varint(fieldHistPositiveDeltas, 2).bytes(fieldHistPositiveDeltas, []byte{0, 3}).append(ts), want: "bucket number 3 has observation count of -1"},
		{name: "last span offset and length win", raw: pbuf(nil).varint(fieldHistCountInt, 1).
			bytes(fieldHistPositiveSpans, pbuf(nil).varint(fieldSpanLength, 5).varint(fieldSpanOffset, 1).varint(fieldSpanLength, 1)).
			varint(fieldHistPositiveDeltas, 2).append(ts)},
		{name: "span length keeps 32 bits", raw: pbuf(nil).varint(fieldHistCountInt, 1).
			bytes(fieldHistPositiveSpans, pbuf(nil).varint(fieldSpanLength, 1<<32|1)).varint(fieldHistPositiveDeltas, 2).append(ts)},
		{name: "schema keeps 32 bits", raw: pbuf(nil).varint(fieldHistSchema, 1<<33|9).append(ts), want: "got schema -5"},
	}
}

func (b pbuf) append(x []byte) pbuf { return append(b, x...) }

// TestHistogramValidation checks each case against Prometheus' own verdict
// first, so that the table cannot drift from Prometheus, and then requires
// the decoder to reject exactly the invalid ones, naming the series and
// giving Prometheus' message.
func TestHistogramValidation(t *testing.T) {
	for _, tc := range histogramCases() {
		t.Run(tc.name, func(t *testing.T) {
			raw := tc.bytes(t)
			var h prompb.Histogram
			if err := h.Unmarshal(raw); err != nil {
				t.Fatal(err)
			}
			verdict := prometheusVerdict(&h)
			if (verdict == nil) != (tc.want == "") || verdict != nil && !strings.Contains(verdict.Error(), tc.want) {
				t.Fatalf("Prometheus says %v; the table says %q", verdict, tc.want)
			}
			body := pbuf(nil).bytes(fieldWriteTimeseries, pbuf(nil).bytes(fieldSeriesLabels, pbLabel("__name__", "latency")).
				bytes(fieldSeriesLabels, pbLabel("job", "api")).bytes(fieldSeriesHistograms, raw))
			var req Request
			err := DecodeWriteRequest(body, &req)
			if verdict == nil {
				if err != nil {
					t.Fatalf("valid histogram rejected: %v", err)
				}
				return
			}
			want := `invalid series #0 latency{job="api"}: histogram #0 at timestamp 1000: ` + verdict.Error()
			var de *DecodeError
			if !errors.As(err, &de) || de.Reason != ReasonInvalidSeries || de.Msg != want {
				t.Fatalf("got %v, want invalid_series %q", err, want)
			}
		})
	}
}

// TestHistogramErrorNamesTheSeries: the labels named are all of them, also
// when they come after the histogram or the decoder knows them already,
// and the histogram is numbered within its series. Invalid labels are
// reported before an invalid histogram.
func TestHistogramErrorNamesTheSeries(t *testing.T) {
	bad := pbuf(nil).bytes(fieldSeriesHistograms, pbuf(nil).varint(fieldHistCountInt, 3))
	good := pbuf(nil).bytes(fieldSeriesHistograms, pbuf(nil).varint(fieldHistCountInt, 0))
	labels := pbuf(nil).bytes(fieldSeriesLabels, pbLabel("__name__", "up")).bytes(fieldSeriesLabels, pbLabel("job", "a"))
	first := pbuf(nil).bytes(fieldWriteTimeseries, slices.Concat(labels, good))
	k := learn(t, first)
	// then is a request of first and a second series of the given fields.
	then := func(fields ...[]byte) []byte {
		return slices.Concat(first, pbuf(nil).bytes(fieldWriteTimeseries, slices.Concat(fields...)))
	}
	for _, tc := range []struct {
		name  string
		body  []byte
		known KnownLabelSets
		want  string
	}{
		{"labels first", then(labels, good, bad), nil, `invalid series #1 up{job="a"}: histogram #1 at timestamp 0: 0 observations`},
		{"labels known", then(labels, good, bad), k, `invalid series #1 up{job="a"}: histogram #1 at timestamp 0: 0 observations`},
		{"labels last", then(bad, labels), nil, `invalid series #1 up{job="a"}: histogram #0`},
		{"invalid labels first", then(bad, pbuf(nil).bytes(fieldSeriesLabels, pbLabel("job", "a"))), nil, `invalid series #1 {job="a"}: no metric name`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var req Request
			err := DecodeWriteRequestKnown(tc.body, &req, tc.known)
			if decodeReason(t, err) != ReasonInvalidSeries || !strings.HasPrefix(err.Error(), tc.want) {
				t.Fatalf("got %v, want %s...", err, tc.want)
			}
		})
	}
}

// TestHistogramVerdictsMatchPrometheus holds the decoder to Prometheus on
// random histograms, valid and broken in every way mutateHistogram knows.
func TestHistogramVerdictsMatchPrometheus(t *testing.T) {
	rng := rand.New(rand.NewPCG(17, 3))
	counts := map[bool]int{}
	for range 3000 {
		h := randomHistogram(rng)
		mutateHistogram(rng, &h)
		counts[prometheusVerdict(&h) == nil]++
		checkDifferential(t, inSeries(pbuf(nil).bytes(fieldSeriesHistograms, marshalHistogram(t, &h))))
	}
	t.Logf("valid/invalid: %d/%d", counts[true], counts[false])
	if counts[true] < 750 || counts[false] < 750 {
		t.Errorf("valid/invalid: %d/%d; the mutations are too weak or too strong", counts[true], counts[false])
	}
}

func marshalHistogram(t testing.TB, h *prompb.Histogram) []byte {
	b, err := h.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// FuzzHistogram feeds arbitrary bytes as a histogram of a valid series:
// whenever prompb can decode them, the decoder's verdict (and message) is
// Prometheus' (see checkDifferential).
//
//	go test -fuzz=FuzzHistogram -fuzztime 3m ./remotewrite/
func FuzzHistogram(f *testing.F) {
	f.Add(marshalHistogram(f, &prompb.Histogram{Count: &prompb.Histogram_CountInt{CountInt: 1},
		PositiveSpans: []prompb.BucketSpan{{Length: 1}}, PositiveDeltas: []int64{1}}))
	f.Fuzz(func(t *testing.T, h []byte) {
		checkDifferential(t, inSeries(pbuf(nil).bytes(fieldSeriesHistograms, h)))
	})
}

// histogramSeeds are FuzzHistogram's seed corpus: the table's cases and
// random mutated histograms.
func histogramSeeds(t testing.TB) []fuzzSeed {
	var seeds []fuzzSeed
	for _, tc := range histogramCases() {
		name := strings.Map(func(r rune) rune {
			if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
				return r
			}
			return '_'
		}, tc.name)
		seeds = append(seeds, fuzzSeed{name: "case_" + name, body: tc.bytes(t)})
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 16 {
		h := randomHistogram(rng)
		mutateHistogram(rng, &h)
		seeds = append(seeds, fuzzSeed{name: fmt.Sprint("random_", i), body: marshalHistogram(t, &h)})
	}
	return seeds
}

// randomHistogram returns a native histogram that Prometheus accepts:
// integer or float; exponential (schema -4 to 8, or 9 to 52, which the
// receiver reduces) or custom buckets; with extreme values where they are
// valid (huge integer counts whose sum wraps, NaN and infinite float
// counts, a NaN sum with a count above the buckets).
func randomHistogram(rng *rand.Rand) prompb.Histogram {
	h := prompb.Histogram{Sum: randomFloat(rng), ResetHint: prompb.Histogram_ResetHint(rng.IntN(4)), Timestamp: randomInt64(rng)}
	float := rng.IntN(2) == 0
	small := false // counts that merging buckets cannot overflow
	kind := rng.IntN(5)
	switch kind {
	case 0:
		h.Schema = histogram.CustomBucketsSchema
	case 1:
		h.Schema, small = int32(9+rng.IntN(44)), true
	default:
		h.Schema = int32(rng.IntN(13)) - 4
	}
	custom := h.Schema == histogram.CustomBucketsSchema
	if custom {
		h.PositiveSpans = randomSpans(rng, 0)
		h.CustomValues = randomBounds(rng, totalSpanLength(h.PositiveSpans)-1+rng.IntN(3))
	} else {
		h.ZeroThreshold = math.Abs(randomFloat(rng))
		h.NegativeSpans = randomSpans(rng, randomFirstOffset(rng, small))
		h.PositiveSpans = randomSpans(rng, randomFirstOffset(rng, small))
	}
	if float {
		h.NegativeCounts = randomCounts(rng, spanBuckets(h.NegativeSpans))
		h.PositiveCounts = randomCounts(rng, spanBuckets(h.PositiveSpans))
		h.Count = &prompb.Histogram_CountFloat{CountFloat: math.Abs(randomFloat(rng))}
		if !custom {
			h.ZeroCount = &prompb.Histogram_ZeroCountFloat{ZeroCountFloat: math.Abs(randomFloat(rng))}
		}
		return h
	}
	var total uint64
	h.NegativeDeltas = randomDeltas(rng, spanBuckets(h.NegativeSpans), small, &total)
	h.PositiveDeltas = randomDeltas(rng, spanBuckets(h.PositiveSpans), small, &total)
	if !custom {
		zero := randomCount(rng, small)
		total += zero
		h.ZeroCount = &prompb.Histogram_ZeroCountInt{ZeroCountInt: zero}
	}
	if math.IsNaN(h.Sum) && total < math.MaxUint64-100 {
		total += uint64(rng.IntN(100))
	}
	h.Count = &prompb.Histogram_CountInt{CountInt: total}
	return h
}

// randomSpans returns up to 3 spans of up to 4 buckets, the first at
// offset first, the others at offsets of 0 to 5.
func randomSpans(rng *rand.Rand, first int32) []prompb.BucketSpan {
	spans := make([]prompb.BucketSpan, rng.IntN(4))
	for i := range spans {
		spans[i] = prompb.BucketSpan{Offset: int32(rng.IntN(6)), Length: uint32(rng.IntN(5))}
	}
	if len(spans) > 0 {
		spans[0].Offset = first
	}
	return spans
}

// randomFirstOffset is a small offset or, unless the histogram is to be
// reduced (whose bucket indexes must not wrap), one near either end of the
// int32 range, from which randomSpans' spans do not leave it.
func randomFirstOffset(rng *rand.Rand, reduced bool) int32 {
	switch n := rng.IntN(8); {
	case reduced || n > 1:
		return int32(rng.IntN(41)) - 20
	case n == 0:
		return math.MinInt32 + 1 + int32(rng.IntN(10))
	default:
		return math.MaxInt32 - 40
	}
}

func spanBuckets(spans []prompb.BucketSpan) (n int) {
	for _, s := range spans {
		n += int(s.Length)
	}
	return n
}

func totalSpanLength(spans []prompb.BucketSpan) (n int) {
	for _, s := range spans {
		n += int(s.Offset) + int(s.Length)
	}
	return n
}

// randomBounds returns n strictly increasing finite custom bounds.
func randomBounds(rng *rand.Rand, n int) []float64 {
	var out []float64
	v := rng.NormFloat64() * 100
	for range max(n, 0) {
		out = append(out, v)
		v += math.Abs(rng.NormFloat64())*10 + 1e-3
	}
	return out
}

// randomCounts returns n float bucket counts that are not negative (NaN
// and +Inf included).
func randomCounts(rng *rand.Rand, n int) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = math.Abs(randomFloat(rng))
	}
	return out
}

// randomDeltas returns the delta encoding of n bucket counts that are not
// negative, adding them to *total (wrapping, as Prometheus adds them).
func randomDeltas(rng *rand.Rand, n int, small bool, total *uint64) []int64 {
	out := make([]int64, n)
	var last int64
	for i := range out {
		c := int64(randomCount(rng, small))
		out[i], last = c-last, c
		*total += uint64(c)
	}
	return out
}

// randomCount is a count of at most 2^63-1 (a bucket's int64), or of at
// most 2^20 when small.
func randomCount(rng *rand.Rand, small bool) uint64 {
	if small {
		return rng.Uint64N(1 << 20)
	}
	return rng.Uint64() >> (1 + rng.IntN(63))
}

// mutateHistogram breaks (or, now and then, keeps) a valid histogram in one
// of the ways Prometheus checks, or changes it in one that it does not.
func mutateHistogram(rng *rand.Rand, h *prompb.Histogram) {
	pick := func(n int) int { return rng.IntN(max(n, 1)) }
	switch rng.IntN(20) {
	case 0:
		if c, ok := h.Count.(*prompb.Histogram_CountInt); ok {
			c.CountInt += uint64(rng.IntN(3)) - 1
		} else {
			h.Count = &prompb.Histogram_CountFloat{CountFloat: -math.Abs(randomFloat(rng))}
		}
	case 1:
		if len(h.PositiveDeltas) > 0 {
			h.PositiveDeltas[pick(len(h.PositiveDeltas))] = -randomInt64(rng)
		}
		if len(h.NegativeCounts) > 0 {
			h.NegativeCounts[pick(len(h.NegativeCounts))] = -randomFloat(rng)
		}
	case 2:
		h.Schema = int32(rng.IntN(121)) - 60
	case 3:
		h.Schema = int32(rng.Uint32())
	case 4:
		h.PositiveDeltas = append(h.PositiveDeltas, randomInt64(rng))
		h.PositiveCounts = append(h.PositiveCounts, randomFloat(rng))
	case 5:
		if len(h.NegativeSpans) > 0 {
			h.NegativeSpans[pick(len(h.NegativeSpans))].Length += uint32(rng.IntN(3)) - 1
		}
	case 6:
		h.PositiveSpans = append(h.PositiveSpans, prompb.BucketSpan{Offset: int32(rng.IntN(5)) - 2})
	case 7:
		h.NegativeSpans = append([]prompb.BucketSpan{{Offset: []int32{math.MinInt32, math.MaxInt32, math.MinInt32 + 1}[rng.IntN(3)]}}, h.NegativeSpans...)
	case 8:
		h.PositiveSpans = append(h.PositiveSpans, prompb.BucketSpan{Offset: math.MaxInt32, Length: uint32(rng.IntN(3))})
	case 9:
		h.Sum = math.NaN()
	case 10:
		switch z := h.ZeroCount.(type) {
		case *prompb.Histogram_ZeroCountInt:
			z.ZeroCountInt += uint64(rng.IntN(3))
		default:
			h.ZeroCount = &prompb.Histogram_ZeroCountFloat{ZeroCountFloat: randomFloat(rng)}
		}
	case 11:
		h.ZeroThreshold = randomFloat(rng)
	case 12:
		h.CustomValues = randomFloats(rng)
	case 13:
		if len(h.CustomValues) > 0 {
			h.CustomValues[pick(len(h.CustomValues))] = specialFloats[rng.IntN(len(specialFloats))]
		}
	case 14:
		if len(h.CustomValues) > 0 {
			h.CustomValues = h.CustomValues[:pick(len(h.CustomValues))]
		}
	case 15: // the other kind's fields, or the other kind's count
		h.NegativeDeltas = append(h.NegativeDeltas, randomInt64(rng))
		h.NegativeCounts = append(h.NegativeCounts, randomFloat(rng))
		if rng.IntN(2) == 0 {
			h.Count = &prompb.Histogram_CountFloat{CountFloat: randomFloat(rng)}
		}
	case 16:
		h.Count = nil
	case 17:
		h.PositiveSpans = slices.Concat(h.PositiveSpans, []prompb.BucketSpan{{Offset: -int32(rng.IntN(3))}})
	case 18:
		h.Schema = []int32{9, 12, 40, 52, 53, -5, -9, -10, -53, -54}[rng.IntN(10)]
	}
	// case 19: unchanged
}

// TestHandlerRejectsInvalidHistograms: a histogram Prometheus rejects is a
// 400 naming the series, over remote write 1.0 and 2.0 (whose transcoded
// body goes through the same decoder); a valid one is delivered.
func TestHandlerRejectsInvalidHistograms(t *testing.T) {
	valid, invalid := intHistogram(), with(intHistogram, func(h *prompb.Histogram) { h.Count = &prompb.Histogram_CountInt{CountInt: 99} })
	rw1 := func(h prompb.Histogram) []byte {
		return marshal(t, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{
			{Labels: []prompb.Label{{Name: "__name__", Value: "latency"}, {Name: "job", Value: "api"}}, Histograms: []prompb.Histogram{h}}}})
	}
	rw2 := func(h prompb.Histogram) []byte {
		return marshalRW2(t, &writev2.Request{Symbols: []string{"", "__name__", "latency", "job", "api"},
			Timeseries: []writev2.TimeSeries{{LabelsRefs: []uint32{1, 2, 3, 4}, Histograms: []writev2.Histogram{histogramToRW2(h, 1)}}}})
	}
	const msg = `invalid series #0 latency{job="api"}: histogram #0 at timestamp 1000: 9 observations found in buckets, but the Count field is 99`
	for _, tc := range []struct {
		name, contentType string
		body              []byte
		wantCode          int
		wantMsg           string
	}{
		{"rw1 valid", ContentTypeRW1, rw1(valid), 204, ""},
		{"rw1 invalid", ContentTypeRW1, rw1(invalid), 400, msg},
		{"rw2 valid", ContentTypeRW2, rw2(valid), 204, ""},
		{"rw2 invalid", ContentTypeRW2, rw2(invalid), 400, msg},
	} {
		t.Run(tc.name, func(t *testing.T) {
			processed := 0
			h := NewHandler(HandlerConfig{MaxRequestBytes: 1 << 20, MaxDecodedBytes: 1 << 20, Logger: quiet}, processorFunc(
				func(context.Context, *Request, string) error { processed++; return nil }))
			r := httptest.NewRequest(http.MethodPost, "/api/v1/write", bytes.NewReader(snappy.Encode(nil, tc.body)))
			r.Header.Set("Content-Type", tc.contentType)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tc.wantCode || !strings.Contains(w.Body.String(), tc.wantMsg) || processed != map[int]int{204: 1, 400: 0}[tc.wantCode] {
				t.Errorf("got %d %q (processed %d times), want %d containing %q", w.Code, w.Body.String(), processed, tc.wantCode, tc.wantMsg)
			}
		})
	}
}

// TestDecodeHistogramsDoesNotAllocate: validating valid histograms of
// every kind but schemas 9 to 52 costs no allocation.
func TestDecodeHistogramsDoesNotAllocate(t *testing.T) {
	body := marshal(t, histogramWorkload(100))
	var req Request
	if allocs := testing.AllocsPerRun(50, func() {
		if err := DecodeWriteRequest(body, &req); err != nil {
			t.Fatal(err)
		}
	}); allocs != 0 {
		t.Errorf("decoding %d histograms allocates %.1f times, want 0", 300, allocs)
	}
}

// histogramWorkload is n series with an integer, a float and a
// custom-buckets histogram each.
func histogramWorkload(n int) *prompb.WriteRequest {
	wr := &prompb.WriteRequest{}
	for i := range n {
		wr.Timeseries = append(wr.Timeseries, prompb.TimeSeries{
			Labels:     []prompb.Label{{Name: "__name__", Value: "latency_seconds"}, {Name: "instance", Value: fmt.Sprintf("host-%d:9100", i)}, {Name: "job", Value: "api"}},
			Histograms: []prompb.Histogram{intHistogram(), floatHistogram(), customHistogram()},
		})
	}
	return wr
}

// BenchmarkDecodeHistograms is BenchmarkDecode's streaming decoder on a
// request of 1,000 series of 3 histograms each: what validation costs.
func BenchmarkDecodeHistograms(b *testing.B) {
	body := marshal(b, histogramWorkload(1000))
	var req Request
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if err := DecodeWriteRequest(body, &req); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/3000, "ns/histogram")
}
