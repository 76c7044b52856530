package queue

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"

	"github.com/golang/snappy"
	"github.com/klauspost/compress/s2"
	"github.com/prometheus/prometheus/prompb"
)

// encoders are the snappy block encoders a queued body may come from: the
// router's (s2 in snappy mode), Prometheus' (golang/snappy), and s2's
// stronger modes, whose copies reach further back.
var encoders = map[string]func([]byte) []byte{
	"golang/snappy":         func(b []byte) []byte { return snappy.Encode(nil, b) },
	"s2.EncodeSnappy":       func(b []byte) []byte { return s2.EncodeSnappy(nil, b) },
	"s2.EncodeSnappyBetter": func(b []byte) []byte { return s2.EncodeSnappyBetter(nil, b) },
	"s2.EncodeSnappyBest":   func(b []byte) []byte { return s2.EncodeSnappyBest(nil, b) },
}

// texts are block contents that exercise literals, short and long copies,
// and the empty block.
func texts() [][]byte {
	rnd := rand.New(rand.NewPCG(1, 2))
	random := make([]byte, 100_000)
	for i := range random {
		random[i] = byte(rnd.IntN(256))
	}
	return [][]byte{
		[]byte("first block"),
		{},
		bytes.Repeat([]byte("abcabcabd"), 20_000), // copies far back, across 64 KiB
		random,
		[]byte("x"),
		bytes.Repeat([]byte{0}, 70_000),
		[]byte(`{__name__="anomaly_score", for="q1"} repeated anomaly_score for="q1"`),
	}
}

// A spliced block decodes, with the reference decoder VictoriaMetrics uses
// (golang/snappy) and with s2, to the concatenation of the blocks, whichever
// encoder made them, in every mix.
func TestSpliceSnappyDecodesToConcatenation(t *testing.T) {
	in := texts()
	for name, enc := range encoders {
		for _, other := range []string{"golang/snappy", "s2.EncodeSnappyBest"} {
			t.Run(name+"+"+other, func(t *testing.T) {
				var bodies [][]byte
				var want []byte
				for i, text := range in {
					e := enc
					if i%2 == 1 {
						e = encoders[other]
					}
					bodies = append(bodies, e(text))
					want = append(want, text...)
				}
				got, ok := spliceSnappy([]byte("prefix kept"), slices.Values(bodies))
				if !ok {
					t.Fatal("spliceSnappy refused valid snappy blocks")
				}
				body, found := bytes.CutPrefix(got, []byte("prefix kept"))
				if !found {
					t.Fatal("spliceSnappy did not append to dst")
				}
				for dec, decode := range map[string]func([]byte, []byte) ([]byte, error){"golang/snappy": snappy.Decode, "s2": s2.Decode} {
					out, err := decode(nil, body)
					if err != nil || !bytes.Equal(out, want) {
						t.Fatalf("%s decodes the spliced block to %d bytes (err %v), want the %d bytes of the concatenation", dec, len(out), err, len(want))
					}
				}
			})
		}
	}
}

// The decoded group is one WriteRequest holding the series of every block in
// order: what the upstream stores is what the blocks one by one would have.
func TestSpliceSnappyIsOneWriteRequest(t *testing.T) {
	var bodies [][]byte
	var want []prompb.TimeSeries
	for i := range 5 {
		req := prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
			Labels:  []prompb.Label{{Name: "__name__", Value: "anomaly_score"}, {Name: "block", Value: fmt.Sprint(i)}},
			Samples: []prompb.Sample{{Value: float64(i), Timestamp: int64(1000 + i)}},
		}}}
		raw, err := req.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		bodies = append(bodies, s2.EncodeSnappy(nil, raw))
		want = append(want, req.Timeseries...)
	}
	body, ok := spliceSnappy(nil, slices.Values(bodies))
	if !ok {
		t.Fatal("spliceSnappy refused valid blocks")
	}
	raw, err := snappy.Decode(nil, body)
	if err != nil {
		t.Fatal(err)
	}
	var got prompb.WriteRequest
	if err := got.Unmarshal(raw); err != nil {
		t.Fatalf("the group is not a WriteRequest: %v", err)
	}
	if !reflect.DeepEqual(got.Timeseries, want) {
		t.Fatalf("group holds %v, want %v", got.Timeseries, want)
	}
}

// A body without a valid snappy header is never spliced; dst is unchanged.
func TestSpliceSnappyRefusesBadHeaders(t *testing.T) {
	good := snappy.Encode(nil, []byte("good"))
	for name, bad := range map[string][]byte{
		"empty":                {},
		"unterminated varint":  {0x80, 0x80},
		"length above 32 bits": {0x80, 0x80, 0x80, 0x80, 0x10},
	} {
		t.Run(name, func(t *testing.T) {
			dst, ok := spliceSnappy([]byte("dst"), slices.Values([][]byte{good, bad}))
			if ok || string(dst) != "dst" {
				t.Fatalf("spliceSnappy = %q, %v; want dst unchanged and false", dst, ok)
			}
		})
	}
}
