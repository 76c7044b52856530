package main

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/prometheus/prometheus/prompb"
)

// seriesRecord is what a decoder reports about one series.
type seriesRecord struct {
	Name, Acct, Proj string
	Labelled         bool
	Samples          int64
}

// collect runs a walker and records what it reports.
func collect(walk func([]byte, seriesFunc) error, b []byte) ([]seriesRecord, error) {
	var out []seriesRecord
	err := walk(b, func(name, acct, proj []byte, labelled bool, samples int64) {
		out = append(out, seriesRecord{string(name), string(acct), string(proj), labelled, samples})
	})
	return out, err
}

// randomRequest builds a valid request with samples, exemplars,
// histograms and metadata.
func randomRequest(rng *rand.Rand) prompb.WriteRequest {
	var req prompb.WriteRequest
	for i := rng.IntN(20); i > 0; i-- {
		ts := series(rng.IntN(4), "__name__", fmt.Sprintf("m%d", rng.IntN(5)), "job", "j")
		if rng.IntN(2) == 0 {
			ts.Labels = append(ts.Labels, prompb.Label{Name: "vm_account_id", Value: fmt.Sprint(rng.IntN(3))})
		}
		if rng.IntN(3) == 0 {
			ts.Labels = append(ts.Labels, prompb.Label{Name: "vm_project_id", Value: "1"})
		}
		if rng.IntN(3) == 0 {
			ts.Exemplars = []prompb.Exemplar{{Labels: []prompb.Label{{Name: "trace_id", Value: "abc"}}, Value: 1, Timestamp: 5}}
		}
		if rng.IntN(3) == 0 {
			ts.Histograms = []prompb.Histogram{{Count: &prompb.Histogram_CountInt{CountInt: 3}, Sum: 1.5, Schema: 1,
				PositiveSpans: []prompb.BucketSpan{{Offset: 0, Length: 2}}, PositiveDeltas: []int64{1, 1}, Timestamp: 9}}
		}
		req.Timeseries = append(req.Timeseries, ts)
	}
	if rng.IntN(2) == 0 {
		req.Metadata = []prompb.MetricMetadata{{MetricFamilyName: "m0", Type: prompb.MetricMetadata_GAUGE, Help: "h"}}
	}
	return req
}

// On valid requests the wire walker reports exactly what prompb decodes,
// and it rejects every truncation that prompb rejects.
func TestWalkerMatchesPrompb(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 300; i++ {
		req := randomRequest(rng)
		b, err := req.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		want, errP := collect(walkPrompb, b)
		got, errW := collect(walkWriteRequest, b)
		if errP != nil || errW != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("request %d: walker %v (%v), prompb %v (%v)", i, got, errW, want, errP)
		}
		if len(b) > 0 {
			cut := b[:rng.IntN(len(b))]
			_, errP := collect(walkPrompb, cut)
			_, errW := collect(walkWriteRequest, cut)
			if errP != nil && errW == nil {
				t.Fatalf("request %d cut to %d bytes: prompb rejects (%v), walker accepts", i, len(cut), errP)
			}
		}
	}
}

// FuzzWalker: the walker never panics, and on every request prompb can
// decode, re-encoded canonically, it reports exactly what prompb decodes.
// (On raw input the two may differ at the edges: gogo reads a packed
// varint past its field's end, the walker does not look inside histograms.)
func FuzzWalker(f *testing.F) {
	rng := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 5; i++ {
		req := randomRequest(rng)
		b, _ := req.Marshal()
		f.Add(b)
	}
	f.Add([]byte{0x0a, 0x80})
	f.Fuzz(func(t *testing.T, b []byte) {
		collect(walkWriteRequest, b)
		var req prompb.WriteRequest
		if req.Unmarshal(b) != nil {
			return
		}
		canon, err := req.Marshal()
		if err != nil {
			return
		}
		want, errP := collect(walkPrompb, canon)
		got, errW := collect(walkWriteRequest, canon)
		if errP != nil || errW != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("canonical %x: prompb %v (%v); walker %v (%v)", canon, want, errP, got, errW)
		}
	})
}

// readUvarint rejects truncated varints and ones longer than 10 bytes.
func TestReadUvarint(t *testing.T) {
	cases := []struct {
		in   []byte
		v    uint64
		okay bool
	}{
		{[]byte{0x00}, 0, true}, {[]byte{0x96, 0x01}, 150, true}, {[]byte{0x80}, 0, false},
		{[]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, 1<<64 - 1, true},
		{[]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, 0, false},
	}
	for _, c := range cases {
		v, n := readUvarint(c.in)
		if (n > 0) != c.okay || (c.okay && v != c.v) {
			t.Errorf("%x: got %d, n=%d", c.in, v, n)
		}
	}
}
