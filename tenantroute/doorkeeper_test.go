package tenantroute

import (
	"testing"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
)

func TestDoorkeeperSizes(t *testing.T) {
	for _, tc := range []struct{ genBytes, slots int }{
		{0, 64}, {1000, 64}, {64 * doorkeeperSlotBytes, 64}, {65 * doorkeeperSlotBytes, 128},
		{2 << 20, 2 << 20 / doorkeeperSlotBytes},
	} {
		d := newDoorkeeper(tc.genBytes)
		if got := int(d.mask + 1); got != tc.slots || d.bytes() != tc.slots/4 {
			t.Errorf("newDoorkeeper(%d): %d slots in %d bytes, want %d slots in %d (two generations)", tc.genBytes, got, d.bytes(), tc.slots, tc.slots/4)
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
