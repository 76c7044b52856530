package tenantroute

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
)

func TestDoorkeeperSizes(t *testing.T) {
	for _, tc := range []struct{ genBytes, slots int }{
		{0, 64}, {1000, 64}, {64 * doorkeeperSlotBytes, 64}, {65 * doorkeeperSlotBytes, 128},
		{2 << 20, 2 << 20 / doorkeeperSlotBytes}, {1 << 40, maxDoorkeeperSlots},
	} {
		d := newDoorkeeper(tc.genBytes)
		if got, words := int(d.mask+1), [2]int{len(d.gens[0]), len(d.gens[1])}; got != tc.slots || words != [2]int{tc.slots / 64, tc.slots / 64} {
			t.Errorf("newDoorkeeper(%d): %d slots in %v words, want %d slots in %d words per generation", tc.genBytes, got, words, tc.slots, tc.slots/64)
		}
	}
}

// A label set is seen before from its second sighting on, within the
// generation of its sighting and the next; a hash differing only outside
// bits 8 to 31 takes the same slot.
func TestDoorkeeperSeesTwice(t *testing.T) {
	d := newDoorkeeper(1 << 20)
	h := uint64(0xabcd_1234_5678_9a00)
	for i, want := range []bool{false, true, true} {
		if got := d.seenBefore(h); got != want {
			t.Fatalf("sighting %d: seen before %v, want %v", i+1, got, want)
		}
	}
	if !d.seenBefore(h ^ 0xff ^ 0xffff_ffff_0000_0000) {
		t.Error("a hash differing outside bits 8-31 takes another slot")
	}
	if d.seenBefore(h ^ 1<<8) {
		t.Error("a hash differing in bit 8 shares the slot")
	}
	other := h ^ 1<<9
	d.seenBefore(other) // sighted in the first generation
	d.rotate()
	if !d.seenBefore(other) {
		t.Error("a label set sighted in the generation before is not seen before")
	}
	d.rotate() // other was sighted again in the second generation: still there
	if !d.seenBefore(other) {
		t.Error("a label set sighted in the generation before is not seen before, after two rotations")
	}
	d.rotate()
	d.rotate()
	if d.seenBefore(h) {
		t.Error("a label set last sighted two generations back is seen before")
	}
}

// A series the cache sees once is not stored, but its sighting fills the
// generation as its entry would: under 100% churn the cache holds next to
// nothing, and the admission still narrows (as TestCacheAdmissionUnderChurnHeals
// requires of it). A series set seen twice is stored in full.
func TestSeriesSeenOnceAreNotStored(t *testing.T) {
	for _, tc := range []struct {
		name   string
		format map[string]string
	}{{"metric_format", seedFormat}, {"pass-through", nil}} {
		t.Run(tc.name, func(t *testing.T) {
			r := newTestRouter(t, Options{BaseURL: base, TenantID: Multitenant}, tc.format, discard{})
			settled := churnRequest(1000, -1)
			processReceived(t, r, settled)
			// Only slots that another series took let a first sighting through.
			if n := cacheEntries(r.cache); n > 20 {
				t.Errorf("%d entries after 1,000 series seen once, want next to none", n)
			}
			processReceived(t, r, settled)
			req := decoded(t, settled)
			r.cache.mu.RLock()
			for i := range req.Series {
				if e, _ := r.cache.getLocked(req.Series[i].LabelFields()); e == nil {
					t.Errorf("series %d, seen twice, is not cached", i)
					break
				}
			}
			r.cache.mu.RUnlock()
			for gen := range 20 {
				processReceived(t, r, churnRequest(1000, gen))
			}
			if n := cacheEntries(r.cache); n > 1000+200 {
				t.Errorf("%d entries after 20,000 more series seen once, want next to none beyond the 1,000 seen twice", n)
			}
			if r.cache.admit.shift.Load() == 0 {
				t.Error("sightings did not fill a generation: the admitted fraction is still whole")
			}
		})
	}
}

// processReceived routes wr with r, decoded without r's cache, with the snappy
// body as received (forwarded as is in pass-through).
func processReceived(t *testing.T, r *Router, wr *prompb.WriteRequest) {
	t.Helper()
	req := decoded(t, wr)
	raw, err := wr.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	req.Compressed = snappy.Encode(nil, raw)
	if err := r.Process(t.Context(), req, ""); err != nil {
		t.Fatal(err)
	}
}

// cacheEntries is how many rewrites c holds in both generations.
func cacheEntries(c *rewriteCache) int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.cur) + len(c.prev)
}

// A series counts towards its generation once, as its first sighting and
// then as its entry: a shuffled set of 8,000 series that the full budget
// holds with the seed metric_format (but not the budget a cache starts
// with) grows the cache to its full budget and then hits almost always,
// as it does when every admitted series is stored at once. Counting the
// entry on top of the sighting kept such a set at a quarter of the budget
// and below 20% hits.
func TestSettledSetGrowsTheCacheThroughTheDoorkeeper(t *testing.T) {
	r := newTestRouter(t, Options{BaseURL: base, TenantID: Multitenant}, seedFormat, discard{})
	bodies := shuffledRequests(t, 512, 8000)
	var p processor
	for i := range 2048 {
		p.process(t, r, bodies[i%len(bodies)])
	}
	hits, misses := cacheHits.Get(), cacheMisses.Get()
	for i := range 256 {
		p.process(t, r, bodies[i%len(bodies)])
	}
	hits, misses = cacheHits.Get()-hits, cacheMisses.Get()-misses
	ratio := float64(hits) / float64(hits+misses)
	if ratio < 0.95 {
		t.Errorf("hit ratio %.3f of a settled set of 8,000 series, want at least 0.95", ratio)
	}
	t.Logf("hit ratio %.3f", ratio)
	r.cache.mu.RLock()
	budget := r.cache.budget()
	r.cache.mu.RUnlock()
	if budget != defaultCacheBytes {
		t.Errorf("budget %d for a settled set the full budget holds, want %d", budget, defaultCacheBytes)
	}
}

// shuffledRequests returns n snappy-compressed requests of 1,000 series
// each, drawn at random from a set of distinct series with a for label.
func shuffledRequests(t testing.TB, n, distinct int) [][]byte {
	rng := rand.New(rand.NewPCG(uint64(distinct), 2))
	out := make([][]byte, n)
	for k := range out {
		wr := &prompb.WriteRequest{}
		for range 1000 {
			i := rng.IntN(distinct)
			s := ts("__name__", "y", "for", fmt.Sprint("q", i%7), "instance", fmt.Sprint("host-", i), "job", "node",
				"vm_account_id", fmt.Sprint(i%10), "vm_project_id", "0")
			s.Samples = []prompb.Sample{{Value: 1, Timestamp: 1000}, {Value: 2, Timestamp: 2000}}
			wr.Timeseries = append(wr.Timeseries, s)
		}
		raw, err := wr.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		out[k] = snappy.Encode(nil, raw)
	}
	return out
}
