package remotewrite

import (
	"testing"
	"unsafe"

	"github.com/prometheus/prometheus/prompb"
)

func TestGrownCap(t *testing.T) {
	for _, tc := range []struct {
		name                     string
		n, done, total, minBytes int
		want                     int
	}{
		{"nothing decoded yet: a small start", 0, 0, 1 << 20, 4, 16},
		{"first item: doubles", 1, 0, 1 << 20, 4, 18},
		{"extrapolated to the body, plus an eighth", 900, 26_000, 260_000, 4, 10_125},
		{"never less than double", 900, 250_000, 260_000, 4, 1_816},
		{"bounded by what the body can hold", 16, 8, 1000, 4, 281},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := grownCap(tc.n, tc.done, tc.total, tc.minBytes); got != tc.want {
				t.Errorf("grownCap(%d, %d, %d, %d) = %d, want %d", tc.n, tc.done, tc.total, tc.minBytes, got, tc.want)
			}
		})
	}
}

// TestColdDecodeGrowsOnce: a Request decoding its first large request
// grows its label arena and series slice a couple of times, not once per
// quarter of their size as append would.
func TestColdDecodeGrowsOnce(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector")
	}
	body := marshal(t, anomalyWorkload()) // 1,000 series, 9,000 labels
	allocs := testing.AllocsPerRun(20, func() {
		var req Request
		if err := DecodeWriteRequest(body, &req); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 6 {
		t.Errorf("a cold decode of 1,000 series allocates %.0f times, want at most 6", allocs)
	}
}

// TestResetTrimsAnUnusedLabelArena: a Request keeps its label arena while
// requests use it (also across an extra Reset, as pools do), and lets a
// large one go when requests stop parsing labels (the rewrite cache knows
// their series).
func TestResetTrimsAnUnusedLabelArena(t *testing.T) {
	var req Request
	if err := DecodeWriteRequest(marshal(t, anomalyWorkload()), &req); err != nil {
		t.Fatal(err)
	}
	big := cap(req.labels)
	if big <= retainedLabels {
		t.Fatalf("arena of %d labels after 9,000 labels, want more than %d", big, retainedLabels)
	}
	body := marshal(t, anomalyWorkload())
	allocs := testing.AllocsPerRun(5, func() {
		req.Reset() // a pool's release after the decode's own Reset changes nothing
		if err := DecodeWriteRequest(body, &req); err != nil {
			t.Fatal(err)
		}
	})
	if cap(req.labels) != big || (allocs != 0 && !raceEnabled) {
		t.Fatalf("decodes that fill the arena, with an extra Reset between: cap %d (want %d kept), %.0f allocations (want 0)",
			cap(req.labels), big, allocs)
	}
	small := marshal(t, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{series("__name__", "up")}})
	for range 2 { // the arena is let go by the decode after the one that used little of it
		if err := DecodeWriteRequest(small, &req); err != nil {
			t.Fatal(err)
		}
		req.Reset()
	}
	if cap(req.labels) > retainedLabels {
		t.Errorf("after requests that used 1 of %d labels: cap %d, want the large arena released", big, cap(req.labels))
	}
}

// A Request pooled with the buffer it decoded keeps its label arena's
// references into that buffer (ResetKeepingArena); any other buffer, and a
// decode of a body in another array, clears them, so that the arena never
// holds an array its owner let go. Decodes of the kept buffer stay correct.
func TestResetKeepingArenaHoldsOnlyItsBuffer(t *testing.T) {
	big := marshal(t, anomalyWorkload())
	buf := append([]byte(nil), big...)
	var req Request
	if err := DecodeWriteRequest(buf, &req); err != nil {
		t.Fatal(err)
	}
	n := len(req.labels)
	req.ResetKeepingArena(nil, buf[:0])
	if into := labelsInto(req.labels[:n], buf); into != n {
		t.Fatalf("kept with its buffer: %d of %d arena slots point into it, want all", into, n)
	}
	// Another array: every slot is cleared before the decode fills it.
	other := append([]byte(nil), big...)
	if err := DecodeWriteRequest(other, &req); err != nil {
		t.Fatal(err)
	}
	if into := labelsInto(req.labels[:cap(req.labels)], buf); into != 0 {
		t.Fatalf("after a decode of another array: %d arena slots still point into the old one", into)
	}
	// The same array, now holding a smaller request: the slots beyond it
	// keep pointing into that array, and nothing else.
	small := marshal(t, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{series("__name__", "up", "job", "a")}})
	other = append(other[:0], small...)
	if err := DecodeWriteRequest(other, &req); err != nil {
		t.Fatal(err)
	}
	if got := string(req.Series[0].Labels[1].Value); len(req.Series) != 1 || got != "a" {
		t.Fatalf("decode of the kept array: %d series, job %q; want 1 and \"a\"", len(req.Series), got)
	}
	if into := labelsInto(req.labels[:n], other[:cap(other)]); into != n {
		t.Fatalf("after a smaller decode of the same array: %d of %d arena slots point into it, want all", into, n)
	}
	// Pooled without its buffer: cleared in full.
	req.ResetKeepingArena(buf)
	for i, l := range req.labels[:cap(req.labels)] {
		if l.Name != nil || l.Value != nil {
			t.Fatalf("kept with a buffer it did not decode: arena slot %d still set", i)
		}
	}
}

// labelsInto counts the labels whose name points into buf.
func labelsInto(labels []Label, buf []byte) int {
	n := 0
	for _, l := range labels {
		if len(l.Name) == 0 {
			continue
		}
		p, start := uintptr(unsafe.Pointer(&l.Name[0])), uintptr(unsafe.Pointer(&buf[0]))
		if p >= start && p < start+uintptr(len(buf)) {
			n++
		}
	}
	return n
}
