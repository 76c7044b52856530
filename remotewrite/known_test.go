package remotewrite

import (
	"errors"
	"hash/fnv"
	"testing"

	"github.com/prometheus/prometheus/prompb"
)

// knownSet is a KnownLabelSets holding label regions by value.
type knownSet struct {
	sets         map[string]bool
	begun, ended int
	declines     bool // BeginKnown answers that there are no lookups
	lookups      int
}

func (k *knownSet) BeginKnown() bool { k.begun++; return !k.declines }
func (k *knownSet) EndKnown()        { k.ended++ }
func (k *knownSet) Known(_ int, labelFields []byte) (any, bool, uint64) {
	k.lookups++
	if k.sets[string(labelFields)] {
		return "known", false, 0
	}
	return nil, false, fnvHash(labelFields)
}

func fnvHash(b []byte) uint64 {
	h := fnv.New64a()
	h.Write(b)
	return h.Sum64()
}

// learn decodes body in full and remembers the label region of every series.
func learn(t *testing.T, body []byte) *knownSet {
	var req Request
	if err := DecodeWriteRequest(body, &req); err != nil {
		t.Fatal(err)
	}
	k := &knownSet{sets: map[string]bool{}}
	for i := range req.Series {
		k.sets[string(req.Series[i].LabelFields())] = true
	}
	return k
}

// A KnownLabelSets that declines a request gets no lookups and no EndKnown,
// and the request decodes as DecodeWriteRequest decodes it, with no KnownBy.
func TestDecodeKnownDeclined(t *testing.T) {
	body := marshal(t, sampleRequest())
	k := learn(t, body)
	k.declines = true
	var full, declined Request
	if err := DecodeWriteRequest(body, &full); err != nil {
		t.Fatal(err)
	}
	if err := DecodeWriteRequestKnown(body, &declined, k); err != nil {
		t.Fatal(err)
	}
	if k.begun != 1 || k.lookups != 0 || k.ended != 0 {
		t.Errorf("BeginKnown/Known/EndKnown called %d/%d/%d times, want 1/0/0", k.begun, k.lookups, k.ended)
	}
	if declined.KnownBy != nil {
		t.Errorf("KnownBy = %v, want nil", declined.KnownBy)
	}
	if len(declined.Series) != len(full.Series) {
		t.Fatalf("%d series, want %d", len(declined.Series), len(full.Series))
	}
	for i := range full.Series {
		f, d := &full.Series[i], &declined.Series[i]
		if d.Known != nil || !LabelsEqual(d.Labels, f.Labels) || d.Samples != f.Samples || d.Histograms != f.Histograms {
			t.Errorf("series %d: %+v, want %+v", i, d, f)
		}
	}
}

func TestDecodeKnownSkipsLabelsAndKeepsEverythingElse(t *testing.T) {
	body := marshal(t, sampleRequest())
	k := learn(t, body)
	var full, fast Request
	if err := DecodeWriteRequest(body, &full); err != nil {
		t.Fatal(err)
	}
	if err := DecodeWriteRequestKnown(body, &fast, k); err != nil {
		t.Fatal(err)
	}
	if k.begun != 1 || k.ended != 1 {
		t.Errorf("BeginKnown/EndKnown called %d/%d times, want once each", k.begun, k.ended)
	}
	if len(fast.Series) != len(full.Series) || len(fast.Metadata) != len(full.Metadata) {
		t.Fatalf("series %d metadata %d, want %d %d", len(fast.Series), len(fast.Metadata), len(full.Series), len(full.Metadata))
	}
	for i := range full.Series {
		f, s := &full.Series[i], &fast.Series[i]
		if s.Labels != nil || s.Known != "known" {
			t.Errorf("series %d: labels parsed (%v) or Known not set (%v)", i, s.Labels, s.Known)
		}
		if string(s.Body) != string(f.Body) || s.RestOffset != f.RestOffset || s.Samples != f.Samples ||
			s.Exemplars != f.Exemplars || s.Histograms != f.Histograms {
			t.Errorf("series %d differs from the full decode", i)
		}
		if string(s.LabelFields()) != string(f.LabelFields()) {
			t.Errorf("series %d: label fields differ", i)
		}
	}
}

func TestDecodeKnownFallsBackToFullDecode(t *testing.T) {
	label := func(n, v string) []byte {
		return appendBytesField(appendBytesField(nil, tagLabelName, []byte(n)), tagLabelValue, []byte(v))
	}
	sample := []byte{0x09, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f, 0x10, 0x01}
	leading := appendBytesField(nil, tagSeriesLabels, label("__name__", "up"))
	series := func(rest ...[]byte) []byte {
		b := append([]byte(nil), leading...)
		for _, r := range rest {
			b = append(b, r...)
		}
		return appendBytesField(nil, tagWriteTimeseries, b)
	}
	k := &knownSet{sets: map[string]bool{string(leading): true}}
	cases := []struct {
		name       string
		body       []byte
		wantKnown  bool
		wantReason string
	}{
		{"known labels, samples follow", series(appendBytesField(nil, fieldSeriesSamples<<3|wireBytes, sample)), true, ""},
		{"a label after the samples: labels not contiguous", series(appendBytesField(nil, fieldSeriesSamples<<3|wireBytes, sample),
			appendBytesField(nil, tagSeriesLabels, label("job", "x"))), false, ""},
		{"malformed sample after known labels", series(appendBytesField(nil, fieldSeriesSamples<<3|wireBytes, []byte{0x12, 0x01, 0x00})), false, ReasonBadProtobuf},
		{"truncated after known labels", series([]byte{0x12, 0x05, 0x01}), false, ReasonBadProtobuf},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got, want Request
			errGot := DecodeWriteRequestKnown(tc.body, &got, k)
			errWant := DecodeWriteRequest(tc.body, &want)
			var de *DecodeError
			if tc.wantReason != "" {
				if !errors.As(errGot, &de) || de.Reason != tc.wantReason || errWant == nil || errGot.Error() != errWant.Error() {
					t.Fatalf("got %v, want the full decoder's %v", errGot, errWant)
				}
				return
			}
			if errGot != nil || errWant != nil {
				t.Fatalf("errors %v / %v", errGot, errWant)
			}
			if known := got.Series[0].Known != nil; known != tc.wantKnown {
				t.Errorf("known = %v, want %v", known, tc.wantKnown)
			}
			if !tc.wantKnown && !LabelsEqual(got.Series[0].Labels, want.Series[0].Labels) {
				t.Errorf("fallback labels %v, want %v", got.Series[0].Labels, want.Series[0].Labels)
			}
		})
	}
}

func TestDecodeKnownStillRejectsInvalidNewSeries(t *testing.T) {
	valid := prompb.TimeSeries{Labels: []prompb.Label{{Name: "__name__", Value: "up"}}, Samples: []prompb.Sample{{Value: 1, Timestamp: 1}}}
	k := learn(t, marshal(t, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{valid}}))
	bad := prompb.TimeSeries{Labels: []prompb.Label{{Name: "job", Value: "x"}}, Samples: valid.Samples}
	var req Request
	err := DecodeWriteRequestKnown(marshal(t, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{valid, bad}}), &req, k)
	var de *DecodeError
	if !errors.As(err, &de) || de.Reason != ReasonInvalidSeries {
		t.Fatalf("got %v, want invalid_series", err)
	}
}

// TestDecodeKeepsTheLookupHash: a series the KnownLabelSets looked up and
// did not know keeps the hash it computed, of exactly its LabelFields; a
// series it did not look up (a label too long for the short encoding,
// labels after the samples) has none.
func TestDecodeKeepsTheLookupHash(t *testing.T) {
	long := prompb.TimeSeries{Labels: []prompb.Label{{Name: "__name__", Value: "up"}, {Name: "long", Value: string(make([]byte, 300))}},
		Samples: []prompb.Sample{{Value: 1, Timestamp: 1}}}
	wr := sampleRequest()
	wr.Timeseries = append(wr.Timeseries, long)
	body := marshal(t, wr)
	interleaved := appendBytesField(nil, tagWriteTimeseries, appendBytesField(
		appendBytesField(nil, fieldSeriesSamples<<3|wireBytes, marshalSample(t, prompb.Sample{Value: 1, Timestamp: 1})),
		tagSeriesLabels, appendBytesField(appendBytesField(nil, tagLabelName, []byte("__name__")), tagLabelValue, []byte("up"))))
	body = append(body, interleaved...)
	var req Request
	if err := DecodeWriteRequestKnown(body, &req, &knownSet{sets: map[string]bool{}}); err != nil {
		t.Fatal(err)
	}
	last := len(req.Series) - 1
	for i, s := range req.Series {
		want := uint64(0)
		if i < last-1 {
			want = fnvHash(s.LabelFields())
		}
		if s.KnownHash != want {
			t.Errorf("series %d: KnownHash %x, want %x", i, s.KnownHash, want)
		}
	}
}

// TestAppendLabelsMatchesFullDecode: the labels a processor re-parses for a
// Known series are exactly the ones the full decode would have given.
func TestAppendLabelsMatchesFullDecode(t *testing.T) {
	long := prompb.TimeSeries{Labels: []prompb.Label{{Name: "__name__", Value: "up"}, {Name: "long", Value: string(make([]byte, 300))}},
		Samples: []prompb.Sample{{Value: 1, Timestamp: 1}}}
	body := marshal(t, &prompb.WriteRequest{Timeseries: append(sampleRequest().Timeseries, long)})
	var full, fast Request
	if err := DecodeWriteRequest(body, &full); err != nil {
		t.Fatal(err)
	}
	if err := DecodeWriteRequestKnown(body, &fast, learn(t, body)); err != nil {
		t.Fatal(err)
	}
	for i := range full.Series {
		got := AppendLabels(nil, fast.Series[i].LabelFields())
		if !LabelsEqual(got, full.Series[i].Labels) {
			t.Errorf("series %d: AppendLabels gave %s, want %s", i, FormatLabels(got), FormatLabels(full.Series[i].Labels))
		}
	}
}

// reorderedSet is a knownSet whose label regions are all out of order.
type reorderedSet struct{ *knownSet }

func (k reorderedSet) Known(i int, labelFields []byte) (any, bool, uint64) {
	v, _, h := k.knownSet.Known(i, labelFields)
	return v, v != nil, h
}

// TestDecodeKnownReordered: a known series whose labels are out of order is
// marked Reordered, as is its request, without its labels being parsed;
// AppendLabels gives them sorted.
func TestDecodeKnownReordered(t *testing.T) {
	body := marshal(t, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{series("job", "a", "__name__", "up")}})
	k := reorderedSet{learn(t, body)}
	var req Request
	if err := DecodeWriteRequestKnown(body, &req, k); err != nil {
		t.Fatal(err)
	}
	s := &req.Series[0]
	if s.Known == nil || s.Labels != nil || !s.Reordered || !req.Reordered {
		t.Fatalf("Known %v, Labels %v, Reordered %v (request %v); want known, unparsed, reordered", s.Known, s.Labels, s.Reordered, req.Reordered)
	}
	if got := FormatLabels(AppendLabels(nil, s.LabelFields())); got != `up{job="a"}` {
		t.Errorf("AppendLabels: %s, want up{job=\"a\"}", got)
	}
	if got := AppendLabels(nil, s.LabelFields()); string(got[0].Name) != MetricNameLabel {
		t.Errorf("AppendLabels: %s first, want __name__", got[0].Name)
	}
}
