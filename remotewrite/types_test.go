package remotewrite

import (
	"testing"

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
