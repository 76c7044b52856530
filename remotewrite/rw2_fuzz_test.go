package remotewrite

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
)

// The RW2 transcoder is held to gogo's writev2 types the way the RW1 decoder
// is held to prompb (fuzz_test.go):
//
//	go test -fuzz=FuzzRW2Transcode -fuzztime 3m ./remotewrite/
//	go test -fuzz=FuzzRW2Valid -fuzztime 3m ./remotewrite/
//
// Without -fuzz, `go test` runs both on their seeds in testdata/fuzz
// (TestRW2FuzzSeedCorpus writes and checks them).

// rw2FuzzLimit bounds the RW1 output in the fuzz targets: far above what a
// fuzz input can expand to, so that the limit never decides.
const rw2FuzzLimit = 1 << 30

// FuzzRW2Transcode feeds arbitrary bytes to writev2's Unmarshal plus the
// spec's rules (rw2Reference) and to RW2Transcoder, and requires the same
// decision and, on success, RW1 output that prompb reads as the reference
// conversion of the writev2 structs.
func FuzzRW2Transcode(f *testing.F) {
	f.Add(marshalRW2(f, sampleRW2()))
	f.Fuzz(func(t *testing.T, body []byte) {
		checkRW2(t, body)
	})
}

// FuzzRW2Valid builds a valid random writev2.Request from the fuzz input (a
// seed for math/rand), with every field RW2 carries, and requires the
// transcoder to accept it and to agree with the reference.
func FuzzRW2Valid(f *testing.F) {
	f.Add([]byte("scoreproxy"))
	f.Fuzz(func(t *testing.T, seed []byte) {
		req := randomRW2Request(rngFromBytes(seed))
		body := marshalRW2(t, req)
		if want, outcome, _ := rw2Reference(body); outcome != "ok" || want == nil {
			t.Fatalf("generator made a request the reference rejects (%s)", outcome)
		} else if bad, why := referenceInvalidSeries(want); bad >= 0 {
			t.Fatalf("generator made invalid series #%d: %v", bad, why)
		}
		if !checkRW2(t, body) {
			t.Fatal("valid request rejected")
		}
	})
}

// checkRW2 is the differential property; it reports whether the
// transcoder and then the RW1 decoder accepted body.
func checkRW2(t *testing.T, body []byte) bool {
	t.Helper()
	want, outcome, bad := rw2Reference(body)
	var tr RW2Transcoder
	out, err := tr.Transcode(nil, body, rw2FuzzLimit)
	reason := decodeReason(t, err)
	wantReason := map[string]string{"bad": ReasonBadProtobuf, "symbols": ReasonInvalidSymbols,
		"invalid": ReasonInvalidSeries, "ok": ""}[outcome]
	if reason != wantReason {
		t.Fatalf("reference: %s (series %d); transcoder: %q (%v)", outcome, bad, reason, err)
	}
	if outcome == "invalid" {
		if w := fmt.Sprintf("invalid series #%d ", bad); !strings.Contains(err.Error(), w) {
			t.Fatalf("error %q does not name series #%d", err, bad)
		}
	}
	if err != nil {
		return false
	}
	requireSame(t, "transcoded", out, want)
	again, err := tr.Transcode(nil, body, rw2FuzzLimit)
	if err != nil || !bytes.Equal(again, out) {
		t.Fatalf("a reused transcoder gives a different result: %v", err)
	}
	// The transcoder leaves histograms to the RW1 decoder: an invalid one
	// is rejected there, as Prometheus rejects it.
	var req Request
	err = DecodeWriteRequest(out, &req)
	if bad, why := referenceInvalidSeries(want); bad >= 0 || err != nil {
		requireInvalidSeries(t, err, bad, why)
		return false
	}
	return true
}

// rw2Reference decodes body with writev2 and converts it to RW1 as
// RW2Transcoder's doc says. outcome is "bad" (writev2 rejects it),
// "symbols" (symbols[0] is not ""), "invalid" (series #bad breaks a rule)
// or "ok".
func rw2Reference(body []byte) (wr *prompb.WriteRequest, outcome string, bad int) {
	var req writev2.Request
	if err := req.Unmarshal(body); err != nil {
		return nil, "bad", -1
	}
	if len(req.Symbols) > 0 && req.Symbols[0] != "" {
		return nil, "symbols", -1
	}
	wr = &prompb.WriteRequest{}
	var last *prompb.MetricMetadata
	for i := range req.Timeseries {
		ts, md, ok := rw2ReferenceSeries(req.Symbols, &req.Timeseries[i])
		if !ok {
			return nil, "invalid", i
		}
		wr.Timeseries = append(wr.Timeseries, ts)
		if md != nil && (last == nil || md.String() != last.String()) {
			wr.Metadata = append(wr.Metadata, *md)
			last = md
		}
	}
	return wr, "ok", -1
}

// rw2ReferenceSeries converts one series; ok is false when it breaks a rule.
func rw2ReferenceSeries(symbols []string, s *writev2.TimeSeries) (ts prompb.TimeSeries, md *prompb.MetricMetadata, ok bool) {
	labels, ok := referenceLabels(symbols, s.LabelsRefs)
	if !ok || len(s.Samples)+len(s.Histograms) == 0 {
		return ts, nil, false
	}
	sort.SliceStable(labels, func(i, j int) bool { return labels[i].Name < labels[j].Name })
	if !referenceValidLabels(labels) {
		return ts, nil, false
	}
	ts.Labels = labels
	for _, s := range s.Samples {
		ts.Samples = append(ts.Samples, prompb.Sample{Value: s.Value, Timestamp: s.Timestamp})
	}
	for _, e := range s.Exemplars {
		el, ok := referenceLabels(symbols, e.LabelsRefs)
		if !ok {
			return ts, nil, false
		}
		ts.Exemplars = append(ts.Exemplars, prompb.Exemplar{Labels: el, Value: e.Value, Timestamp: e.Timestamp})
	}
	for _, h := range s.Histograms {
		ts.Histograms = append(ts.Histograms, histogramToRW1(h))
	}
	m := s.Metadata
	if int(m.HelpRef) >= len(symbols) || int(m.UnitRef) >= len(symbols) {
		return ts, nil, false
	}
	if m.Type != 0 || symbols[m.HelpRef] != "" || symbols[m.UnitRef] != "" {
		md = &prompb.MetricMetadata{Type: prompb.MetricMetadata_MetricType(m.Type), Help: symbols[m.HelpRef], Unit: symbols[m.UnitRef]}
		for _, l := range labels {
			if l.Name == MetricNameLabel {
				md.MetricFamilyName = l.Value
			}
		}
	}
	return ts, md, true
}

// referenceLabels resolves name/value references, in the order given.
func referenceLabels(symbols []string, refs []uint32) ([]prompb.Label, bool) {
	if len(refs)%2 != 0 {
		return nil, false
	}
	var out []prompb.Label
	for i := 0; i < len(refs); i += 2 {
		if int(refs[i]) >= len(symbols) || int(refs[i+1]) >= len(symbols) {
			return nil, false
		}
		out = append(out, prompb.Label{Name: symbols[refs[i]], Value: symbols[refs[i+1]]})
	}
	return out, true
}

func histogramToRW1(h writev2.Histogram) prompb.Histogram {
	out := prompb.Histogram{Sum: h.Sum, Schema: h.Schema, ZeroThreshold: h.ZeroThreshold,
		NegativeSpans: spansToRW1(h.NegativeSpans), NegativeDeltas: h.NegativeDeltas, NegativeCounts: h.NegativeCounts,
		PositiveSpans: spansToRW1(h.PositiveSpans), PositiveDeltas: h.PositiveDeltas, PositiveCounts: h.PositiveCounts,
		ResetHint: prompb.Histogram_ResetHint(h.ResetHint), Timestamp: h.Timestamp, CustomValues: h.CustomValues}
	switch c := h.Count.(type) {
	case *writev2.Histogram_CountInt:
		out.Count = &prompb.Histogram_CountInt{CountInt: c.CountInt}
	case *writev2.Histogram_CountFloat:
		out.Count = &prompb.Histogram_CountFloat{CountFloat: c.CountFloat}
	}
	switch c := h.ZeroCount.(type) {
	case *writev2.Histogram_ZeroCountInt:
		out.ZeroCount = &prompb.Histogram_ZeroCountInt{ZeroCountInt: c.ZeroCountInt}
	case *writev2.Histogram_ZeroCountFloat:
		out.ZeroCount = &prompb.Histogram_ZeroCountFloat{ZeroCountFloat: c.ZeroCountFloat}
	}
	return out
}

func histogramToRW2(h prompb.Histogram, start int64) writev2.Histogram {
	out := writev2.Histogram{Sum: h.Sum, Schema: h.Schema, ZeroThreshold: h.ZeroThreshold,
		NegativeSpans: spansToRW2(h.NegativeSpans), NegativeDeltas: h.NegativeDeltas, NegativeCounts: h.NegativeCounts,
		PositiveSpans: spansToRW2(h.PositiveSpans), PositiveDeltas: h.PositiveDeltas, PositiveCounts: h.PositiveCounts,
		ResetHint: writev2.Histogram_ResetHint(h.ResetHint), Timestamp: h.Timestamp, CustomValues: h.CustomValues,
		StartTimestamp: start}
	switch c := h.Count.(type) {
	case *prompb.Histogram_CountInt:
		out.Count = &writev2.Histogram_CountInt{CountInt: c.CountInt}
	case *prompb.Histogram_CountFloat:
		out.Count = &writev2.Histogram_CountFloat{CountFloat: c.CountFloat}
	}
	switch c := h.ZeroCount.(type) {
	case *prompb.Histogram_ZeroCountInt:
		out.ZeroCount = &writev2.Histogram_ZeroCountInt{ZeroCountInt: c.ZeroCountInt}
	case *prompb.Histogram_ZeroCountFloat:
		out.ZeroCount = &writev2.Histogram_ZeroCountFloat{ZeroCountFloat: c.ZeroCountFloat}
	}
	return out
}

func spansToRW1(s []writev2.BucketSpan) []prompb.BucketSpan {
	var out []prompb.BucketSpan
	for _, x := range s {
		out = append(out, prompb.BucketSpan{Offset: x.Offset, Length: x.Length})
	}
	return out
}

func spansToRW2(s []prompb.BucketSpan) []writev2.BucketSpan {
	var out []writev2.BucketSpan
	for _, x := range s {
		out = append(out, writev2.BucketSpan{Offset: x.Offset, Length: x.Length})
	}
	return out
}

func marshalRW2(t testing.TB, req *writev2.Request) []byte {
	t.Helper()
	b, err := req.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// randomRW2Request builds a valid request: series with random labels
// (sometimes unsorted, which the transcoder sorts), samples or histograms
// with start timestamps, exemplars and metadata; the symbols table has
// unused and repeated entries, which the spec allows.
func randomRW2Request(rng *rand.Rand) *writev2.Request {
	st := writev2.NewSymbolTable()
	req := &writev2.Request{}
	for range rng.IntN(6) {
		labels := randomLabels(rng)
		if rng.IntN(4) == 0 {
			rng.Shuffle(len(labels), func(i, j int) { labels[i], labels[j] = labels[j], labels[i] })
		}
		ts := writev2.TimeSeries{}
		for _, l := range labels {
			ts.LabelsRefs = append(ts.LabelsRefs, st.Symbolize(l.Name), st.Symbolize(l.Value))
		}
		if rng.IntN(2) == 0 {
			for range 1 + rng.IntN(3) {
				ts.Samples = append(ts.Samples, writev2.Sample{Value: randomFloat(rng), Timestamp: randomInt64(rng), StartTimestamp: randomInt64(rng)})
			}
		} else {
			for range 1 + rng.IntN(3) {
				ts.Histograms = append(ts.Histograms, histogramToRW2(randomHistogram(rng), randomInt64(rng)))
			}
		}
		for range rng.IntN(3) {
			e := writev2.Exemplar{Value: randomFloat(rng), Timestamp: randomInt64(rng)}
			for _, l := range randomAnyLabels(rng) {
				e.LabelsRefs = append(e.LabelsRefs, st.Symbolize(l.Name), st.Symbolize(l.Value))
			}
			ts.Exemplars = append(ts.Exemplars, e)
		}
		if rng.IntN(2) == 0 {
			ts.Metadata = writev2.Metadata{Type: writev2.Metadata_MetricType(rng.IntN(8)),
				HelpRef: st.Symbolize(randomString(rng)), UnitRef: st.Symbolize(randomString(rng))}
		}
		req.Timeseries = append(req.Timeseries, ts)
		if rng.IntN(3) == 0 { // the same series again: repeated metadata
			req.Timeseries = append(req.Timeseries, ts)
		}
	}
	req.Symbols = slices.Clone(st.Symbols())
	for range rng.IntN(3) {
		req.Symbols = append(req.Symbols, randomString(rng), "")
	}
	return req
}

// sampleRW2 is a small request with every kind of data.
func sampleRW2() *writev2.Request {
	return &writev2.Request{
		Symbols: []string{"", "__name__", "anomaly_score", "for", "cpu", "trace_id", "abc", "score", "ratio", "latency"},
		Timeseries: []writev2.TimeSeries{
			{LabelsRefs: []uint32{1, 2, 3, 4}, Samples: []writev2.Sample{{Value: 0.5, Timestamp: 1000, StartTimestamp: 500}},
				Exemplars: []writev2.Exemplar{{LabelsRefs: []uint32{5, 6}, Value: 0.5, Timestamp: 1000}},
				Metadata:  writev2.Metadata{Type: writev2.Metadata_METRIC_TYPE_GAUGE, HelpRef: 7, UnitRef: 8}},
			{LabelsRefs: []uint32{1, 9}, Histograms: []writev2.Histogram{{
				Count: &writev2.Histogram_CountInt{CountInt: 6}, Sum: 12.5, Schema: 3,
				ZeroCount:     &writev2.Histogram_ZeroCountInt{ZeroCountInt: 1},
				PositiveSpans: []writev2.BucketSpan{{Offset: 0, Length: 2}}, PositiveDeltas: []int64{2, 1},
				Timestamp: 3000, StartTimestamp: 100}}},
		},
	}
}

// rw2Seeds returns FuzzRW2Transcode's seed corpus: valid requests, each
// rule broken once, truncations, and per nesting level the malformed and
// unknown fields of levelSeeds.
func rw2Seeds(t testing.TB) []fuzzSeed {
	full := marshalRW2(t, sampleRW2())
	one := func(refs []uint32, rest ...byte) []byte {
		ts := pbuf(nil)
		for _, r := range refs {
			ts = ts.varint(1, uint64(r))
		}
		return pbuf(nil).bytes(4, nil).bytes(4, []byte("__name__")).bytes(4, []byte("up")).bytes(5, append(ts, rest...))
	}
	sample := pbuf(nil).bytes(2, sampleBody)
	seeds := []fuzzSeed{
		{name: "valid_sample", body: full},
		{name: "empty"},
		{name: "unpacked_refs", body: one([]uint32{1, 2}, sample...)},
		{name: "symbols0_not_empty", body: pbuf(nil).bytes(4, []byte("x"))},
		{name: "odd_refs", body: one([]uint32{1, 2, 1}, sample...)},
		{name: "ref_out_of_range", body: one([]uint32{1, 3}, sample...)},
		{name: "ref_wraps_uint32", body: one([]uint32{1}, append(pbuf(nil).varint(1, 1<<32|2), sample...)...)},
		{name: "no_samples", body: one([]uint32{1, 2})},
		{name: "no_name", body: one(nil, sample...)},
		{name: "duplicate_label", body: one([]uint32{1, 2, 1, 2}, sample...)},
		{name: "exemplar_odd_refs", body: one([]uint32{1, 2}, append(slices.Clone(sample), pbuf(nil).bytes(4, pbuf(nil).varint(1, 1))...)...)},
		{name: "metadata_help_out_of_range", body: one([]uint32{1, 2}, append(slices.Clone(sample), pbuf(nil).bytes(5, pbuf(nil).varint(3, 9))...)...)},
		{name: "metadata_merged", body: one([]uint32{1, 2}, append(slices.Clone(sample), pbuf(nil).bytes(5, pbuf(nil).varint(1, 2)).bytes(5, pbuf(nil).varint(4, 2))...)...)},
		// labels_refs packed with length 1, whose varint runs one byte past
		// it: gogo reads ref 1 and goes on after that byte.
		{name: "packed_refs_straddle", body: one(nil, append(append(pbuf(nil).tag(1, wireBytes), 1, 0x81, 0x00),
			pbuf(nil).varint(1, 2).bytes(2, sampleBody)...)...)},
	}
	for _, n := range []int{1, 2, 5, len(full) / 2, len(full) - 1} {
		seeds = append(seeds, fuzzSeed{name: fmt.Sprint("truncated_at_", n), body: full[:n]})
	}
	for i := range 8 {
		seeds = append(seeds, fuzzSeed{name: fmt.Sprint("random_", i), body: marshalRW2(t, randomRW2Request(rngFromBytes([]byte(fmt.Sprint(i)))))})
	}
	for _, lv := range rw2SeedLevels {
		seeds = append(seeds, levelSeeds(lv)...)
	}
	return seeds
}

var (
	rw2Base   = pbuf(nil).bytes(4, nil).bytes(4, []byte("__name__")).bytes(4, []byte("up"))
	rw2Refs   = pbuf(nil).bytes(1, []byte{1, 2})
	rw2Series = func(rest []byte) []byte {
		return append(slices.Clip(rw2Base), pbuf(nil).bytes(5, append(slices.Clip(rw2Refs), rest...))...)
	}
)

// rw2SeedLevels place extra fields at the end of each RW2 message type.
var rw2SeedLevels = []seedLevel{
	{"rw2_request", &msgSchema{fields: []fieldRule{4: bytesRule, 5: messageKey}}, func(x []byte) []byte {
		return append(rw2Series(pbuf(nil).bytes(2, sampleBody)), x...)
	}},
	{"rw2_series", &rw2SeriesSchema, func(x []byte) []byte { return rw2Series(append(pbuf(nil).bytes(2, sampleBody), x...)) }},
	{"rw2_sample", &rw2SampleSchema, func(x []byte) []byte { return rw2Series(pbuf(nil).bytes(2, append(slices.Clip(sampleBody), x...))) }},
	{"rw2_exemplar", &rw2ExemplarSchema, func(x []byte) []byte {
		return rw2Series(pbuf(nil).bytes(2, sampleBody).bytes(4, append(pbuf(nil).bytes(1, []byte{1, 2}).fixed64(2, 0).varint(3, 1), x...)))
	}},
	// Valid histograms, as in seedLevels.
	{"rw2_histogram", &rw2HistogramSchema, func(x []byte) []byte {
		return rw2Series(pbuf(nil).bytes(3, append(pbuf(nil).varint(1, 0).varint(15, 1000).varint(17, 5), x...)))
	}},
	{"rw2_span", &spanSchema, func(x []byte) []byte {
		return rw2Series(pbuf(nil).bytes(3, pbuf(nil).varint(1, 1).bytes(11, append(pbuf(nil).varint(1, 2).varint(2, 1), x...)).varint(12, 2)))
	}},
	{"rw2_metadata", &rw2MetadataSchema, func(x []byte) []byte {
		return rw2Series(pbuf(nil).bytes(2, sampleBody).bytes(5, append(pbuf(nil).varint(1, 2).varint(3, 2), x...)))
	}},
}

// TestRW2FuzzSeedCorpus keeps testdata/fuzz/FuzzRW2Transcode and
// FuzzRW2Valid equal to the seeds generated here (plus fuzzer findings);
// -update-fuzz-corpus rewrites them. Every seed also runs through the
// property, so a seed that the generator makes wrong fails here.
func TestRW2FuzzSeedCorpus(t *testing.T) {
	seeds := rw2Seeds(t)
	var valid []fuzzSeed
	for i := range 16 {
		valid = append(valid, fuzzSeed{name: fmt.Sprint("seed_", i), body: []byte(fmt.Sprint("rw2 seed ", i))})
	}
	for target, seeds := range map[string][]fuzzSeed{"FuzzRW2Transcode": seeds, "FuzzRW2Valid": valid} {
		dir := filepath.Join("testdata", "fuzz", target)
		if *updateCorpus {
			writeCorpus(t, dir, seeds)
		}
		checkCorpus(t, dir, seeds)
	}
	outcomes := map[string]int{}
	for _, s := range seeds {
		_, outcome, _ := rw2Reference(s.body)
		outcomes[outcome]++
	}
	for _, o := range []string{"ok", "bad", "symbols", "invalid"} {
		if outcomes[o] == 0 {
			t.Errorf("no seed has outcome %q: %v", o, outcomes)
		}
	}
}
