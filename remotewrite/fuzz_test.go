package remotewrite

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/prometheus/prometheus/prompb"
)

// The hot path never decodes into gogo's prompb structs (too slow and too
// allocating for it, see BenchmarkDecode), so these fuzz targets hold the
// streaming codec to them instead:
//
//	go test -fuzz=FuzzDecodeDifferential -fuzztime 3m ./remotewrite/
//	go test -fuzz=FuzzRoundTripValid -fuzztime 3m ./remotewrite/
//
// Without -fuzz, `go test` runs both on their seed corpus in
// testdata/fuzz/<FuzzName>/ (see TestFuzzSeedCorpus for how it is made).

// FuzzDecodeDifferential feeds arbitrary bytes to prompb's Unmarshal and to
// DecodeWriteRequest and requires the same decision and, on success, the same
// message after re-encoding.
func FuzzDecodeDifferential(f *testing.F) {
	f.Add(marshal(f, sampleRequest()))
	f.Fuzz(func(t *testing.T, body []byte) {
		checkDifferential(t, body)
	})
}

// checkDifferential is the property of FuzzDecodeDifferential:
//   - prompb rejects: we reject as bad_protobuf;
//   - prompb accepts: we never say bad_protobuf; we say invalid_series, for
//     the same series (and for a histogram, with Prometheus' message),
//     exactly when referenceInvalidSeries does; and otherwise both the
//     re-encoding and the verbatim output unmarshal (by prompb) to what
//     prompb decoded from the input.
func checkDifferential(t *testing.T, body []byte) {
	var ref prompb.WriteRequest
	refErr := ref.Unmarshal(body)
	var req Request
	err := DecodeWriteRequest(body, &req)
	reason := decodeReason(t, err)
	switch {
	case refErr != nil && reason != ReasonBadProtobuf:
		t.Fatalf("prompb rejects (%v), DecodeWriteRequest says %q (%v)", refErr, reason, err)
	case refErr != nil:
		return
	case reason == ReasonBadProtobuf:
		t.Fatalf("prompb accepts, DecodeWriteRequest rejects: %v\nprompb: %s", err, ref.String())
	}
	if bad, why := referenceInvalidSeries(&ref); bad >= 0 || err != nil {
		requireInvalidSeries(t, err, bad, why)
		return
	}
	reordered := sortReference(&ref)
	for i := range req.Series {
		if req.Series[i].Reordered != reordered[i] {
			t.Fatalf("series #%d: Reordered %v, reference %v", i, req.Series[i].Reordered, reordered[i])
		}
	}
	checkDecoded(t, &ref, &req)
	checkReencoded(t, &ref, &req, reordered)
}

// requireInvalidSeries requires err, what the decoder said of a request that
// prompb accepts, to be what referenceInvalidSeries said: series bad is
// invalid (-1: none), and when why is not nil, err ends in why.
func requireInvalidSeries(t *testing.T, err error, bad int, why error) {
	t.Helper()
	if reason := decodeReason(t, err); (reason == ReasonInvalidSeries) != (bad >= 0) {
		t.Fatalf("reference check: first invalid series %d (-1: none), %v; DecodeWriteRequest: %v", bad, why, err)
	}
	if want := fmt.Sprintf("invalid series #%d ", bad); !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q does not name series #%d", err, bad)
	}
	if why != nil && !strings.HasSuffix(err.Error(), ": "+why.Error()) {
		t.Fatalf("error %q does not end in the reference's %q", err, why)
	}
}

// decodeReason returns the Reason of a DecodeWriteRequest error, "" for nil.
func decodeReason(t *testing.T, err error) string {
	t.Helper()
	if err == nil {
		return ""
	}
	var de *DecodeError
	if !errors.As(err, &de) {
		t.Fatalf("error is not a *DecodeError: %v", err)
	}
	return de.Reason
}

// referenceInvalidSeries applies the remote-write spec's rules to prompb's
// decoding and returns the index of the first series that breaks them, or
// -1. A series is invalid when its labels are, and otherwise when one of
// its histograms is: then why is Prometheus' verdict, as the decoder words
// it (see histogramError).
func referenceInvalidSeries(wr *prompb.WriteRequest) (bad int, why error) {
	for i, ts := range wr.Timeseries {
		if !referenceValidLabels(ts.Labels) {
			return i, nil
		}
		for j := range ts.Histograms {
			h := &ts.Histograms[j]
			if err := prometheusVerdict(h); err != nil {
				return i, fmt.Errorf("histogram #%d at timestamp %d: %w", j, h.Timestamp, err)
			}
		}
	}
	return -1, nil
}

// referenceValidLabels applies the spec's rules to one label set.
func referenceValidLabels(unsorted []prompb.Label) bool {
	labels := slices.SortedFunc(slices.Values(unsorted), func(a, b prompb.Label) int { return strings.Compare(a.Name, b.Name) })
	name := ""
	for j, l := range labels {
		if l.Name == "" || (j > 0 && labels[j-1].Name == l.Name) || !utf8.ValidString(l.Name) || !utf8.ValidString(l.Value) {
			return false
		}
		if l.Name == MetricNameLabel {
			name = l.Value
		}
	}
	return name != ""
}

// sortReference sorts the labels of every series of wr by name, as the
// decoder does, and returns whether each series' labels were out of order.
func sortReference(wr *prompb.WriteRequest) (reordered []bool) {
	byName := func(a, b prompb.Label) int { return strings.Compare(a.Name, b.Name) }
	for i := range wr.Timeseries {
		ls := wr.Timeseries[i].Labels
		reordered = append(reordered, !slices.IsSortedFunc(ls, byName))
		slices.SortFunc(ls, byName)
	}
	return reordered
}

// checkDecoded compares our labels and counts with prompb's decoding.
func checkDecoded(t *testing.T, ref *prompb.WriteRequest, req *Request) {
	t.Helper()
	if len(req.Series) != len(ref.Timeseries) || len(req.Metadata) != len(ref.Metadata) {
		t.Fatalf("%d series and %d metadata, prompb %d and %d", len(req.Series), len(req.Metadata), len(ref.Timeseries), len(ref.Metadata))
	}
	for i := range req.Series {
		s, ts := &req.Series[i], &ref.Timeseries[i]
		if s.Samples != len(ts.Samples) || s.Exemplars != len(ts.Exemplars) || s.Histograms != len(ts.Histograms) {
			t.Fatalf("series #%d: counts %d/%d/%d, prompb %d/%d/%d", i, s.Samples, s.Exemplars, s.Histograms,
				len(ts.Samples), len(ts.Exemplars), len(ts.Histograms))
		}
		if !LabelsEqual(s.Labels, fromPrompbLabels(ts.Labels)) {
			t.Fatalf("series #%d: labels %s, prompb %v", i, FormatLabels(s.Labels), ts.Labels)
		}
	}
}

// checkReencoded re-encodes req both ways and compares prompb's decoding of
// the output with ref (its labels sorted). What the proxy does not forward
// is normalised away first: unknown WriteRequest fields always, unknown
// Label fields when the labels are re-encoded, which the verbatim encoding
// does for the series whose labels were out of order.
func checkReencoded(t *testing.T, ref *prompb.WriteRequest, req *Request, reordered []bool) {
	t.Helper()
	ref.XXX_unrecognized = nil
	for i := range ref.Timeseries {
		for j := range ref.Timeseries[i].Labels {
			if reordered[i] {
				ref.Timeseries[i].Labels[j].XXX_unrecognized = nil
			}
		}
	}
	requireSame(t, "verbatim", reencode(req, true), ref)
	for i := range ref.Timeseries {
		for j := range ref.Timeseries[i].Labels {
			ref.Timeseries[i].Labels[j].XXX_unrecognized = nil
		}
	}
	requireSame(t, "re-encoded", reencode(req, false), ref)
}

// requireSame requires prompb to decode out to a message equal to want.
// Equality is that of gogo's (deterministic) marshalling, which tells apart
// everything proto equality does, including unset and zero oneofs.
func requireSame(t *testing.T, what string, out []byte, want *prompb.WriteRequest) {
	t.Helper()
	var got prompb.WriteRequest
	if err := got.Unmarshal(out); err != nil {
		t.Fatalf("%s: prompb cannot read our output: %v", what, err)
	}
	if !bytes.Equal(marshal(t, &got), marshal(t, want)) {
		t.Fatalf("%s: output differs\n got %s\nwant %s", what, got.String(), want.String())
	}
}

func fromPrompbLabels(ls []prompb.Label) []Label {
	out := make([]Label, len(ls))
	for i, l := range ls {
		out[i] = Label{Name: []byte(l.Name), Value: []byte(l.Value)}
	}
	return out
}

// updateCorpus rewrites testdata/fuzz from the seed tables.
var updateCorpus = flag.Bool("update-fuzz-corpus", false, "rewrite the fuzz seed corpus in testdata/fuzz")

// TestFuzzSeedCorpus checks that each seed does what its name says for
// prompb (the fuzz targets check that the decoder agrees), and that
// testdata/fuzz holds exactly the seeds, plus the inputs the fuzzer found
// (named by their hash) or that were added by hand as regress_*.
// `go test -run TestFuzzSeedCorpus -update-fuzz-corpus ./remotewrite/`
// rewrites the seeds.
func TestFuzzSeedCorpus(t *testing.T) {
	corpus := map[string][]fuzzSeed{"FuzzDecodeDifferential": differentialSeeds(t), "FuzzHistogram": histogramSeeds(t)}
	for i := range 16 {
		corpus["FuzzRoundTripValid"] = append(corpus["FuzzRoundTripValid"], fuzzSeed{name: fmt.Sprint("seed_", i), body: []byte(fmt.Sprint("seed ", i))})
	}
	for _, s := range corpus["FuzzDecodeDifferential"] {
		if got := prompbOutcome(s.body); s.want != "" && got != s.want {
			t.Errorf("seed %s: prompb: %s, want %s", s.name, got, s.want)
		}
	}
	for target, seeds := range corpus {
		dir := filepath.Join("testdata", "fuzz", target)
		if *updateCorpus {
			writeCorpus(t, dir, seeds)
		}
		checkCorpus(t, dir, seeds)
	}
}

// corpusFile is a seed in the file format of `go test -fuzz`.
func corpusFile(s fuzzSeed) []byte {
	return fmt.Appendf(nil, "go test fuzz v1\n[]byte(%q)\n", s.body)
}

// isRegression reports whether a corpus file is a fuzzer finding or a
// hand-added regression rather than a generated seed.
func isRegression(name string) bool {
	return strings.HasPrefix(name, "regress_") || regexp.MustCompile(`^[0-9a-f]{16}$`).MatchString(name)
}

// writeCorpus replaces the generated seeds in dir.
func writeCorpus(t *testing.T, dir string, seeds []fuzzSeed) {
	old, _ := os.ReadDir(dir)
	for _, e := range old {
		if !isRegression(e.Name()) {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, s := range seeds {
		if err := os.WriteFile(filepath.Join(dir, s.name), corpusFile(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// checkCorpus requires dir to hold exactly the seeds, besides regressions.
func checkCorpus(t *testing.T, dir string, seeds []fuzzSeed) {
	want := map[string][]byte{}
	for _, s := range seeds {
		want[s.name] = corpusFile(s)
	}
	files, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range files {
		got, err := os.ReadFile(filepath.Join(dir, e.Name()))
		switch data, ok := want[e.Name()]; {
		case err != nil:
			t.Fatal(err)
		case ok && !bytes.Equal(got, data):
			t.Errorf("%s/%s is stale: run with -update-fuzz-corpus", dir, e.Name())
		case !ok && !isRegression(e.Name()):
			t.Errorf("%s/%s is no longer generated: run with -update-fuzz-corpus", dir, e.Name())
		}
		delete(want, e.Name())
	}
	for name := range want {
		t.Errorf("%s/%s is missing: run with -update-fuzz-corpus", dir, name)
	}
}

// FuzzRoundTripValid builds a valid random request from the fuzz input (a
// seed for math/rand) with every field remote write 1.0 carries, and requires
// an exact round trip: our output, re-encoded or verbatim, is byte for byte
// gogo's marshalling, and replacing a series' labels keeps everything else.
func FuzzRoundTripValid(f *testing.F) {
	f.Add([]byte("scoreproxy"))
	f.Fuzz(func(t *testing.T, seed []byte) {
		rng := rngFromBytes(seed)
		wr := randomRequest(rng)
		if bad, why := referenceInvalidSeries(wr); bad >= 0 {
			t.Fatalf("the generator made invalid series #%d: %v", bad, why)
		}
		body := marshal(t, wr)
		var req Request
		if err := DecodeWriteRequest(body, &req); err != nil {
			t.Fatalf("valid request rejected: %v\n%s", err, wr.String())
		}
		checkDecoded(t, wr, &req)
		for _, verbatim := range []bool{false, true} {
			if out := reencode(&req, verbatim); !bytes.Equal(out, body) {
				t.Fatalf("verbatim=%v: output differs from gogo's marshalling\n got %x\nwant %x", verbatim, out, body)
			}
		}
		checkRelabel(t, rng, wr, &req)
		checkDifferential(t, body)
	})
}

// checkRelabel gives every series new labels through AppendSeries and
// requires prompb to read back the new labels with the rest unchanged.
func checkRelabel(t *testing.T, rng *rand.Rand, wr *prompb.WriteRequest, req *Request) {
	t.Helper()
	want := prompb.WriteRequest{Metadata: wr.Metadata}
	var out []byte
	for i := range req.Series {
		ts := wr.Timeseries[i]
		ts.Labels = randomLabels(rng)
		want.Timeseries = append(want.Timeseries, ts)
		out = AppendSeries(out, fromPrompbLabels(ts.Labels), &req.Series[i])
	}
	for _, md := range req.Metadata {
		out = AppendMetadata(out, md)
	}
	requireSame(t, "relabelled", out, &want)
}

// rngFromBytes seeds a generator with a hash of b.
func rngFromBytes(b []byte) *rand.Rand {
	h := fnv.New64a()
	h.Write(b)
	return rand.New(rand.NewPCG(h.Sum64(), uint64(len(b))))
}

// randomRequest builds a valid WriteRequest: sorted unique labels with a
// __name__, and samples, exemplars, valid native histograms (see
// randomHistogram) and metadata with random (also extreme) values.
func randomRequest(rng *rand.Rand) *prompb.WriteRequest {
	wr := &prompb.WriteRequest{}
	for range rng.IntN(6) {
		ts := prompb.TimeSeries{Labels: randomLabels(rng)}
		for range rng.IntN(4) {
			ts.Samples = append(ts.Samples, prompb.Sample{Value: randomFloat(rng), Timestamp: randomInt64(rng)})
		}
		for range rng.IntN(3) {
			ts.Exemplars = append(ts.Exemplars, prompb.Exemplar{
				Labels: randomAnyLabels(rng), Value: randomFloat(rng), Timestamp: randomInt64(rng)})
		}
		for range rng.IntN(3) {
			ts.Histograms = append(ts.Histograms, randomHistogram(rng))
		}
		wr.Timeseries = append(wr.Timeseries, ts)
	}
	first := rng.IntN(8)
	for k := range rng.IntN(10) {
		wr.Metadata = append(wr.Metadata, prompb.MetricMetadata{
			Type:             prompb.MetricMetadata_MetricType((first + k) % 8),
			MetricFamilyName: randomString(rng), Help: randomString(rng), Unit: randomString(rng),
		})
	}
	return wr
}

// randomLabels returns a valid label set: names non-empty, sorted, unique,
// with a non-empty __name__.
func randomLabels(rng *rand.Rand) []prompb.Label {
	names := []string{MetricNameLabel}
	for range rng.IntN(12) {
		if n := randomLabelString(rng); n != "" && !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	ls := make([]prompb.Label, len(names))
	for i, n := range names {
		ls[i] = prompb.Label{Name: n, Value: randomLabelString(rng)}
		if n == MetricNameLabel && ls[i].Value == "" {
			ls[i].Value = "m"
		}
	}
	return ls
}

// randomAnyLabels returns exemplar labels, which the spec does not constrain.
func randomAnyLabels(rng *rand.Rand) []prompb.Label {
	ls := make([]prompb.Label, rng.IntN(4))
	for i := range ls {
		ls[i] = prompb.Label{Name: randomString(rng), Value: randomString(rng)}
	}
	return ls
}

func randomFloats(rng *rand.Rand) []float64 {
	out := make([]float64, rng.IntN(5))
	for i := range out {
		out[i] = randomFloat(rng)
	}
	return out
}

// specialFloats are values whose bits must survive the trip: Prometheus'
// stale marker, NaN, infinities, negative zero, extremes.
var specialFloats = []float64{math.Float64frombits(0x7ff0000000000002), math.NaN(), math.Inf(1), math.Inf(-1),
	math.Copysign(0, -1), 0, math.MaxFloat64, math.SmallestNonzeroFloat64}

func randomFloat(rng *rand.Rand) float64 {
	if rng.IntN(4) == 0 {
		return specialFloats[rng.IntN(len(specialFloats))]
	}
	return rng.NormFloat64() * math.Pow(10, float64(rng.IntN(20)))
}

// randomInt64 covers small, negative and extreme values (varints of 1 to 10 bytes).
func randomInt64(rng *rand.Rand) int64 {
	return int64(rng.Uint64()) >> rng.IntN(64)
}

// randomString is empty, short ASCII, long (multi-byte length prefix) or
// arbitrary bytes (gogo does not check UTF-8, so neither does the proxy).
// randomLabelString is randomString made valid UTF-8, as label names and
// values must be.
func randomLabelString(rng *rand.Rand) string {
	return strings.ToValidUTF8(randomString(rng), "\uFFFD")
}

func randomString(rng *rand.Rand) string {
	n := rng.IntN(12)
	switch rng.IntN(8) {
	case 0:
		return ""
	case 1:
		n = 100 + rng.IntN(300)
	}
	b := make([]byte, n)
	for i := range b {
		if rng.IntN(10) == 0 {
			b[i] = byte(rng.Uint32())
		} else {
			b[i] = "abcdefghijklmnopqrstuvwxyz_"[rng.IntN(27)]
		}
	}
	return string(b)
}
