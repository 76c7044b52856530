package remotewrite

import (
	"bytes"
	"context"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
)

// The acknowledgement rule: a 2xx means every sample of the request reached
// the processor. TestAckRule and FuzzAckRule drive the real Handler with
// random bodies under random Content-Types and Content-Encodings and check,
// for every answer:
//   - 2xx: the reference decoder of the declared message (prompb or writev2)
//     accepts the decompressed body, and the processor got as many series,
//     samples, histograms and exemplars (and, for RW1, metadata) as it
//     counts; that is something, unless the body is empty or (RW1) holds
//     series or metadata that carry no samples;
//   - 4xx: the processor got nothing;
//   - nothing else (the processor never fails here).
//
//	go test -run '^$' -fuzz FuzzAckRule -fuzztime 20000x ./remotewrite/

// declared is the message a Content-Type names.
type declared uint8

const (
	declaresRW1 declared = iota
	declaresRW2
	declaresNone // unsupported: 415
)

var ackContentTypes = []struct {
	value string
	is    declared
}{
	{"", declaresRW1},
	{"application/x-protobuf", declaresRW1},
	{ContentTypeRW1, declaresRW1},
	{"application/x-protobuf; proto=prometheus.WriteRequest; charset=utf-8", declaresRW1},
	{ContentTypeRW2, declaresRW2},
	{"Application/X-Protobuf; proto=io.prometheus.write.v2.Request", declaresRW2},
	{`application/x-protobuf;proto="io.prometheus.write.v2.Request"`, declaresRW2},
	{"application/x-protobuf;proto=io.prometheus.write.v3.Request", declaresNone},
	{"application/json", declaresNone},
}

// codec is how a body is compressed, or which decoder an encoding names.
type codec uint8

const (
	codecSnappy codec = iota
	codecZstd
	codecNone // sent as is, or an unsupported encoding
)

var ackEncodings = []struct {
	value string
	is    codec
}{
	{"", codecSnappy},
	{"snappy", codecSnappy},
	{"zstd", codecZstd},
	{"ZSTD", codecZstd},
	{"gzip", codecNone},
}

// ackCase is one request: its body before compression, how it was
// compressed and the headers it is sent with.
type ackCase struct {
	raw         []byte
	compressed  []byte
	contentType int // index in ackContentTypes
	encoding    int // index in ackEncodings
	// mustAccept: raw is a valid request of the declared message,
	// compressed as the encoding says.
	mustAccept bool
}

// ackRecorder is a processor that accepts every request and counts what it
// would forward: the request encoded as the router's unchanged path does,
// as prompb reads it (not the decoder's own counts).
type ackRecorder struct {
	calls                                            int
	series, samples, histograms, exemplars, metadata int
	unreadable                                       bool // prompb cannot read what it would forward
}

func (r *ackRecorder) Process(_ context.Context, req *Request, _ string) error {
	r.calls++
	var wr prompb.WriteRequest
	if err := wr.Unmarshal(reencode(req, true)); err != nil {
		r.unreadable = true
		return nil
	}
	for _, ts := range wr.Timeseries {
		r.samples += len(ts.Samples)
		r.histograms += len(ts.Histograms)
		r.exemplars += len(ts.Exemplars)
	}
	r.series += len(wr.Timeseries)
	r.metadata += len(wr.Metadata)
	return nil
}

// refCounts is what the reference decoder of the declared message finds in
// a body; metadata is -1 for RW2, whose metadata lives in the series.
type refCounts struct {
	ok                                               bool
	series, samples, histograms, exemplars, metadata int
}

func referenceCounts(raw []byte, rw2 bool) refCounts {
	c := refCounts{ok: true, metadata: -1}
	if rw2 {
		var req writev2.Request
		if req.Unmarshal(raw) != nil {
			return refCounts{}
		}
		for _, ts := range req.Timeseries {
			c.samples += len(ts.Samples)
			c.histograms += len(ts.Histograms)
			c.exemplars += len(ts.Exemplars)
		}
		c.series = len(req.Timeseries)
		return c
	}
	var wr prompb.WriteRequest
	if wr.Unmarshal(raw) != nil {
		return refCounts{}
	}
	for _, ts := range wr.Timeseries {
		c.samples += len(ts.Samples)
		c.histograms += len(ts.Histograms)
		c.exemplars += len(ts.Exemplars)
	}
	c.series, c.metadata = len(wr.Timeseries), len(wr.Metadata)
	return c
}

// decompress decodes what was sent with the decoder the encoding names
// (s2 reads every snappy block, as the handler's does); ok is false when
// the handler cannot decode it either.
func decompress(t testing.TB, c *ackCase) ([]byte, bool) {
	switch ackEncodings[c.encoding].is {
	case codecSnappy:
		out, err := s2.Decode(nil, c.compressed)
		return out, err == nil
	case codecZstd:
		out, err := ackZstd(t).dec.DecodeAll(c.compressed, nil)
		return out, err == nil
	}
	return nil, false
}

// ackHandler is the handler under test with a recorder as its processor.
func ackHandler() (*Handler, *ackRecorder) {
	rec := &ackRecorder{}
	return NewHandler(HandlerConfig{MaxRequestBytes: 4 << 20, MaxDecodedBytes: 4 << 20, Logger: quiet}, rec), rec
}

// checkAckRule sends c and checks the answer against the rule; it returns
// the status.
func checkAckRule(t *testing.T, h *Handler, rec *ackRecorder, c *ackCase) int {
	t.Helper()
	*rec = ackRecorder{}
	r := httptest.NewRequest(http.MethodPost, "/api/v1/write", bytes.NewReader(c.compressed))
	if ct := ackContentTypes[c.contentType].value; ct != "" {
		r.Header.Set("Content-Type", ct)
	}
	if enc := ackEncodings[c.encoding].value; enc != "" {
		r.Header.Set("Content-Encoding", enc)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	describe := func() string {
		return "Content-Type " + strconv.Quote(ackContentTypes[c.contentType].value) + ", Content-Encoding " +
			strconv.Quote(ackEncodings[c.encoding].value) + ", body of " + strconv.Itoa(len(c.raw)) + " bytes " +
			strconv.Quote(string(truncate(c.raw))) +
			": got " + strconv.Itoa(w.Code) + " " + strconv.Quote(w.Body.String())
	}
	switch {
	case w.Code >= 200 && w.Code < 300:
		checkForwarded(t, c, rec, w.Header(), describe)
	case w.Code >= 400 && w.Code < 500:
		if rec.calls > 0 {
			t.Fatalf("%s, and the processor got the request: %+v", describe(), *rec)
		}
		if c.mustAccept {
			t.Fatalf("valid request refused: %s", describe())
		}
	default:
		t.Fatalf("unexpected status: %s", describe())
	}
	return w.Code
}

// checkForwarded checks a 2xx answer: what the processor got is what the
// reference decoder of the declared message finds in the body.
func checkForwarded(t *testing.T, c *ackCase, rec *ackRecorder, hdr http.Header, describe func() string) {
	t.Helper()
	rw2 := ackContentTypes[c.contentType].is == declaresRW2
	body, ok := decompress(t, c)
	if !ok || ackContentTypes[c.contentType].is == declaresNone {
		t.Fatalf("2xx for a body the declared encoding or type cannot carry: %s", describe())
	}
	ref := referenceCounts(body, rw2)
	got := refCounts{ok: !rec.unreadable, series: rec.series, samples: rec.samples, histograms: rec.histograms,
		exemplars: rec.exemplars, metadata: rec.metadata}
	if rw2 {
		got.metadata = -1
	}
	switch {
	case rec.calls != 1:
		t.Fatalf("2xx after %d calls of the processor: %s", rec.calls, describe())
	case !ref.ok:
		t.Fatalf("2xx for a body the reference decoder rejects: %s", describe())
	case got != ref:
		t.Fatalf("processor got %+v, the body holds %+v: %s", got, ref, describe())
	case len(body) > 0 && ref.samples+ref.histograms == 0 && (rw2 || ref.series+ref.metadata == 0):
		t.Fatalf("2xx for a body that carries nothing: %s", describe())
	}
	if rw2 {
		for i, want := range []int{ref.samples, ref.histograms, ref.exemplars} {
			if v := hdr.Get(rw2Headers[i]); v != strconv.Itoa(want) {
				t.Fatalf("%s: %q, want %d: %s", rw2Headers[i], v, want, describe())
			}
		}
	}
}

// randomAckCase builds a request from rng: a body of some kind under some
// Content-Type, compressed as its Content-Encoding says (mostly).
func randomAckCase(t testing.TB, rng *rand.Rand) *ackCase {
	raw, is, valid := randomAckBody(t, rng)
	c := &ackCase{raw: raw, contentType: rng.IntN(len(ackContentTypes)), encoding: rng.IntN(len(ackEncodings))}
	if rng.IntN(3) > 0 { // the matching Content-Type, most of the time
		c.contentType = pickContentType(rng, is)
	}
	for rng.IntN(4) > 0 && ackEncodings[c.encoding].is == codecNone { // and a supported encoding
		c.encoding = rng.IntN(len(ackEncodings))
	}
	how := ackEncodings[c.encoding].is
	if rng.IntN(10) == 0 {
		how = codec(rng.IntN(3)) // the wrong codec, or none
	}
	c.compressed = compress(t, raw, how)
	c.mustAccept = valid && is == ackContentTypes[c.contentType].is && how == ackEncodings[c.encoding].is && how != codecNone
	return c
}

// pickContentType picks a Content-Type that declares is, or any for a
// body that is neither message.
func pickContentType(rng *rand.Rand, is declared) int {
	var idx []int
	for i, ct := range ackContentTypes {
		if ct.is == is || is == declaresNone {
			idx = append(idx, i)
		}
	}
	return idx[rng.IntN(len(idx))]
}

func compress(t testing.TB, raw []byte, how codec) []byte {
	switch how {
	case codecSnappy:
		return s2.EncodeSnappy(nil, raw)
	case codecZstd:
		return ackZstd(t).enc.EncodeAll(raw, nil)
	}
	return slices.Clone(raw)
}

// ackZstd returns one zstd encoder and decoder for every case (EncodeAll
// and DecodeAll are safe for concurrent use).
func ackZstd(t testing.TB) *zstdPair {
	p, err := ackZstdPair()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

var ackZstdPair = sync.OnceValues(func() (*zstdPair, error) {
	enc, err := zstd.NewWriter(nil)
	if err != nil {
		return nil, err
	}
	dec, err := zstd.NewReader(nil)
	return &zstdPair{enc: enc, dec: dec}, err
})

type zstdPair struct {
	enc *zstd.Encoder
	dec *zstd.Decoder
}

// randomAckBody returns a body, the message it is meant as (declaresNone:
// neither) and whether it is a valid request of that message.
func randomAckBody(t testing.TB, rng *rand.Rand) (raw []byte, is declared, valid bool) {
	switch rng.IntN(10) {
	case 0, 1:
		return marshal(t, ackRW1Request(rng)), declaresRW1, true
	case 2, 3:
		return marshalRW2(t, ackRW2Request(rng)), declaresRW2, true
	case 4:
		return marshal(t, randomRequest(rng)), declaresRW1, false
	case 5:
		return marshalRW2(t, randomRW2Request(rng)), declaresRW2, false
	case 6:
		return marshal(t, &prompb.WriteRequest{Metadata: ackRW1Request(rng).Metadata}), declaresRW1, true
	case 7:
		syms := writev2.Request{Symbols: []string{"", "__name__", ackName(rng)}}
		return marshalRW2(t, &syms), declaresRW2, false
	case 8:
		b := make([]byte, rng.IntN(64))
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b, declaresNone, false
	}
	raw, is, _ = randomAckBody(t, rng)
	return mutate(t, rng, raw), is, false
}

// mutate damages or extends a body: a flipped byte, a truncation, an
// unknown field, or the other message's body appended.
func mutate(t testing.TB, rng *rand.Rand, raw []byte) []byte {
	raw = slices.Clone(raw)
	switch rng.IntN(4) {
	case 0:
		if len(raw) > 0 {
			raw[rng.IntN(len(raw))] ^= byte(1 + rng.IntN(255))
		}
	case 1:
		raw = raw[:rng.IntN(len(raw)+1)]
	case 2:
		raw = pbuf(raw).varint(uint64(6+rng.IntN(20)), rng.Uint64())
	default:
		if rng.IntN(2) == 0 {
			raw = append(raw, marshal(t, ackRW1Request(rng))...)
		} else {
			raw = append(raw, marshalRW2(t, ackRW2Request(rng))...)
		}
	}
	return raw
}

// ackRW1Request is a valid RW1 request with ASCII labels and native
// histograms whose counts add up; series may carry only exemplars or
// nothing (RW1 allows both).
func ackRW1Request(rng *rand.Rand) *prompb.WriteRequest {
	wr := &prompb.WriteRequest{}
	for range rng.IntN(4) {
		ts := prompb.TimeSeries{Labels: ackLabels(rng)}
		for range rng.IntN(3) {
			ts.Samples = append(ts.Samples, prompb.Sample{Value: randomFloat(rng), Timestamp: randomInt64(rng)})
		}
		for range rng.IntN(2) {
			ts.Histograms = append(ts.Histograms, ackHistogram(rng))
		}
		for range rng.IntN(2) {
			ts.Exemplars = append(ts.Exemplars, prompb.Exemplar{Labels: []prompb.Label{{Name: "trace_id", Value: ackName(rng)}},
				Value: randomFloat(rng), Timestamp: randomInt64(rng)})
		}
		wr.Timeseries = append(wr.Timeseries, ts)
	}
	for range rng.IntN(3) {
		wr.Metadata = append(wr.Metadata, prompb.MetricMetadata{Type: prompb.MetricMetadata_MetricType(rng.IntN(8)),
			MetricFamilyName: ackName(rng), Help: ackName(rng), Unit: ackName(rng)})
	}
	return wr
}

// ackRW2Request is a valid RW2 request: the series of ackRW1Request that
// carry samples or histograms, with metadata sometimes. Without series it
// is empty, symbols table included.
func ackRW2Request(rng *rand.Rand) *writev2.Request {
	st := writev2.NewSymbolTable()
	req := &writev2.Request{}
	for _, s := range ackRW1Request(rng).Timeseries {
		if len(s.Samples)+len(s.Histograms) == 0 {
			continue
		}
		ts := writev2.TimeSeries{}
		for _, l := range s.Labels {
			ts.LabelsRefs = append(ts.LabelsRefs, st.Symbolize(l.Name), st.Symbolize(l.Value))
		}
		for _, x := range s.Samples {
			ts.Samples = append(ts.Samples, writev2.Sample{Value: x.Value, Timestamp: x.Timestamp, StartTimestamp: randomInt64(rng)})
		}
		for _, h := range s.Histograms {
			ts.Histograms = append(ts.Histograms, histogramToRW2(h, randomInt64(rng)))
		}
		for _, e := range s.Exemplars {
			ts.Exemplars = append(ts.Exemplars, writev2.Exemplar{LabelsRefs: []uint32{st.Symbolize("trace_id"), st.Symbolize(e.Labels[0].Value)},
				Value: e.Value, Timestamp: e.Timestamp})
		}
		if rng.IntN(2) == 0 {
			ts.Metadata = writev2.Metadata{Type: writev2.Metadata_MetricType(rng.IntN(8)),
				HelpRef: st.Symbolize(ackName(rng)), UnitRef: st.Symbolize(ackName(rng))}
		}
		req.Timeseries = append(req.Timeseries, ts)
	}
	if len(req.Timeseries) > 0 {
		req.Symbols = slices.Clone(st.Symbols())
	}
	return req
}

// ackLabels returns sorted, unique ASCII labels with a __name__.
func ackLabels(rng *rand.Rand) []prompb.Label {
	names := []string{MetricNameLabel}
	for range rng.IntN(4) {
		if n := ackName(rng); !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	ls := make([]prompb.Label, len(names))
	for i, n := range names {
		ls[i] = prompb.Label{Name: n, Value: ackName(rng)}
	}
	return ls
}

// ackName is a short non-empty ASCII name.
func ackName(rng *rand.Rand) string {
	b := make([]byte, 1+rng.IntN(8))
	for i := range b {
		b[i] = "abcdefghijklmnopqrstuvwxyz_"[rng.IntN(27)]
	}
	return string(b)
}

// ackHistogram is a valid native histogram: every observation in the zero
// bucket, so the counts agree.
func ackHistogram(rng *rand.Rand) prompb.Histogram {
	n := rng.Uint64N(100)
	h := prompb.Histogram{Sum: float64(n), ZeroThreshold: 1e-3, Timestamp: randomInt64(rng)}
	if rng.IntN(2) == 0 {
		h.Count = &prompb.Histogram_CountInt{CountInt: n}
		h.ZeroCount = &prompb.Histogram_ZeroCountInt{ZeroCountInt: n}
	} else {
		h.Count = &prompb.Histogram_CountFloat{CountFloat: float64(n) / 2}
		h.ZeroCount = &prompb.Histogram_ZeroCountFloat{ZeroCountFloat: float64(n) / 2}
	}
	return h
}

// TestAckRule checks the rule over 4,000 random requests, and that they
// include accepted requests with samples and each kind of refusal.
func TestAckRule(t *testing.T) {
	h, rec := ackHandler()
	statuses := map[int]int{}
	withSamples, mismatched := 0, rejectedByReason[ReasonContentTypeMismatch].Get()
	for i := range 4000 {
		c := randomAckCase(t, rand.New(rand.NewPCG(17, uint64(i))))
		code := checkAckRule(t, h, rec, c)
		statuses[code]++
		if code == http.StatusNoContent && rec.samples+rec.histograms > 0 {
			withSamples++
		}
	}
	mismatched = rejectedByReason[ReasonContentTypeMismatch].Get() - mismatched
	t.Logf("%d accepted with samples, %d content type mismatches, statuses %v", withSamples, mismatched, statuses)
	if withSamples < 500 || mismatched < 100 || statuses[http.StatusBadRequest] < 500 || statuses[http.StatusUnsupportedMediaType] == 0 {
		t.Errorf("the cases do not cover the rule: %d accepted with samples, %d content type mismatches, statuses %v",
			withSamples, mismatched, statuses)
	}
}

// FuzzAckRule checks the rule for a body (taken as is, or built from the
// input as a seed when mode is odd) under the Content-Type and
// Content-Encoding the input picks.
func FuzzAckRule(f *testing.F) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 8 {
		f.Add(uint8(0), uint8(i), uint8(i), marshal(f, ackRW1Request(rng)))
		f.Add(uint8(0), uint8(i), uint8(i+1), marshalRW2(f, ackRW2Request(rng)))
		f.Add(uint8(1), uint8(i), uint8(i), []byte{byte(i)})
	}
	f.Add(uint8(0), uint8(4), uint8(0), marshal(f, sampleRequest()))
	f.Add(uint8(0), uint8(0), uint8(0), marshalRW2(f, sampleRW2()))
	f.Fuzz(func(t *testing.T, mode, contentType, encoding uint8, data []byte) {
		c := &ackCase{raw: data, contentType: int(contentType) % len(ackContentTypes), encoding: int(encoding) % len(ackEncodings)}
		if mode%2 == 1 {
			c = randomAckCase(t, rngFromBytes(data))
		} else {
			c.compressed = compress(t, c.raw, ackEncodings[c.encoding].is)
		}
		h, rec := ackHandler()
		checkAckRule(t, h, rec, c)
	})
}

// TestHandlerBodyCarriesNothing: a body that decodes to no series and no
// metadata as the declared message gets 400 saying what it is, unless it is
// empty; RW1 requests of metadata only, or of series without samples, are
// requests.
func TestHandlerBodyCarriesNothing(t *testing.T) {
	rw1 := marshal(t, sampleRequest())
	rw2 := marshalRW2(t, sampleRW2())
	metadataOnly := marshal(t, &prompb.WriteRequest{Metadata: sampleRequest().Metadata})
	noName := marshal(t, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{series("job", "a")}})
	rw2NoSamples := marshalRW2(t, &writev2.Request{Symbols: []string{"", "__name__", "up"}, Timeseries: []writev2.TimeSeries{{LabelsRefs: []uint32{1, 2}}}})
	symbolsOnly := marshalRW2(t, &writev2.Request{Symbols: []string{"", "__name__", "up"}})
	unknownOnly := pbuf(nil).varint(9, 1).bytes(10, []byte("x"))
	exemplarOnly := marshal(t, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{Labels: series("__name__", "up").Labels,
		Exemplars: []prompb.Exemplar{{Labels: []prompb.Label{{Name: "trace_id", Value: "abc"}}, Value: 1}}}}})
	labelsOnly := marshal(t, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{Labels: series("__name__", "up").Labels}}})
	const (
		rw1As2 = "body is remote write 1.0 (prometheus.WriteRequest) but Content-Type says remote write 2.0 (io.prometheus.write.v2.Request); " +
			"set Content-Type: application/x-protobuf;proto=prometheus.WriteRequest"
		rw2As1 = "body is remote write 2.0 (io.prometheus.write.v2.Request) but Content-Type says remote write 1.0 (prometheus.WriteRequest); " +
			"set Content-Type: application/x-protobuf;proto=io.prometheus.write.v2.Request"
	)
	cases := []struct {
		name        string
		contentType string
		zstd        bool
		body        []byte
		wantCode    int
		wantReason  string
		wantMsg     string
		want        ackRecorder // what the processor got
	}{
		{name: "rw1 as rw2", contentType: ContentTypeRW2, body: rw1, wantCode: 400, wantReason: ReasonContentTypeMismatch, wantMsg: rw1As2},
		{name: "rw1 as rw2, zstd", contentType: ContentTypeRW2, zstd: true, body: rw1, wantCode: 400, wantReason: ReasonContentTypeMismatch, wantMsg: rw1As2},
		{name: "rw1 with an invalid series as rw2", contentType: ContentTypeRW2, body: noName, wantCode: 400, wantReason: ReasonContentTypeMismatch, wantMsg: rw1As2},
		{name: "rw1 metadata only as rw2", contentType: ContentTypeRW2, body: metadataOnly, wantCode: 400, wantReason: ReasonContentTypeMismatch, wantMsg: rw1As2},
		{name: "rw2 as rw1", contentType: ContentTypeRW1, body: rw2, wantCode: 400, wantReason: ReasonContentTypeMismatch, wantMsg: rw2As1},
		{name: "rw2 without Content-Type", body: rw2, wantCode: 400, wantReason: ReasonContentTypeMismatch, wantMsg: rw2As1},
		{name: "rw2 as bare protobuf, zstd", contentType: "application/x-protobuf", zstd: true, body: rw2, wantCode: 400, wantReason: ReasonContentTypeMismatch, wantMsg: rw2As1},
		{name: "rw2 with an invalid series as rw1", contentType: ContentTypeRW1, body: rw2NoSamples, wantCode: 400, wantReason: ReasonContentTypeMismatch, wantMsg: rw2As1},
		{name: "rw2 symbols only", contentType: ContentTypeRW2, body: symbolsOnly, wantCode: 400, wantReason: ReasonBadProtobuf,
			wantMsg: "body of 16 bytes (uncompressed) decodes to no series and no metadata as remote write 2.0 (io.prometheus.write.v2.Request): " +
				"it holds a symbols table of 3 symbols and no timeseries"},
		{name: "rw2 symbols only as rw1", contentType: ContentTypeRW1, body: symbolsOnly, wantCode: 400, wantReason: ReasonBadProtobuf,
			wantMsg: "body of 16 bytes (uncompressed) decodes to no series and no metadata as remote write 1.0 (prometheus.WriteRequest): " +
				"it holds only fields that message does not define"},
		{name: "unknown fields as rw1", contentType: ContentTypeRW1, body: unknownOnly, wantCode: 400, wantReason: ReasonBadProtobuf,
			wantMsg: "body of 5 bytes (uncompressed) decodes to no series and no metadata as remote write 1.0 (prometheus.WriteRequest): " +
				"it holds only fields that message does not define"},
		{name: "unknown fields as rw2", contentType: ContentTypeRW2, zstd: true, body: unknownOnly, wantCode: 400, wantReason: ReasonBadProtobuf,
			wantMsg: "body of 5 bytes (uncompressed) decodes to no series and no metadata as remote write 2.0 (io.prometheus.write.v2.Request): " +
				"it holds only fields that message does not define"},
		{name: "empty rw1", contentType: ContentTypeRW1, wantCode: 204, want: ackRecorder{calls: 1}},
		{name: "empty rw2", contentType: ContentTypeRW2, wantCode: 204, want: ackRecorder{calls: 1}},
		{name: "empty rw2, zstd", contentType: ContentTypeRW2, zstd: true, wantCode: 204, want: ackRecorder{calls: 1}},
		{name: "rw1 metadata only", contentType: ContentTypeRW1, body: metadataOnly, wantCode: 204, want: ackRecorder{calls: 1, metadata: 1}},
		{name: "rw1 exemplar only", body: exemplarOnly, wantCode: 204, want: ackRecorder{calls: 1, series: 1, exemplars: 1}},
		{name: "rw1 series without samples", body: labelsOnly, wantCode: 204, want: ackRecorder{calls: 1, series: 1}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			rec := &ackRecorder{}
			h := NewHandler(HandlerConfig{MaxRequestBytes: 1 << 20, MaxDecodedBytes: 1 << 20,
				Logger: slog.New(slog.NewTextHandler(&logs, nil))}, rec)
			how := codecSnappy
			if tc.zstd {
				how = codecZstd
			}
			r := httptest.NewRequest(http.MethodPost, "/api/v1/write", bytes.NewReader(compress(t, tc.body, how)))
			if tc.contentType != "" {
				r.Header.Set("Content-Type", tc.contentType)
			}
			if tc.zstd {
				r.Header.Set("Content-Encoding", "zstd")
			}
			before := uint64(0)
			if tc.wantReason != "" {
				before = rejectedByReason[tc.wantReason].Get()
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if got := strings.TrimSuffix(w.Body.String(), "\n"); w.Code != tc.wantCode || got != tc.wantMsg {
				t.Errorf("got %d %q\nwant %d %q", w.Code, got, tc.wantCode, tc.wantMsg)
			}
			if *rec != tc.want {
				t.Errorf("processor got %+v, want %+v", *rec, tc.want)
			}
			if tc.wantReason == "" {
				return
			}
			if n := rejectedByReason[tc.wantReason].Get() - before; n != 1 {
				t.Errorf("reason %s counted %d times, want 1", tc.wantReason, n)
			}
			if !strings.Contains(logs.String(), "reason="+tc.wantReason) || !strings.Contains(logs.String(), "rejected remote-write request") {
				t.Errorf("rejection not logged: %q", logs.String())
			}
		})
	}
}
