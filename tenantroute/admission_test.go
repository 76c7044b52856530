package tenantroute

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"

	"github.com/scoreproxy/scoreproxy/remotewrite"
)

// The admitted fraction halves when a generation fills while few lookups
// hit, never below 1/2^maxAdmitShift, and doubles again after
// admitRelaxLookups lookups without a generation change.
func TestAdmissionAdapts(t *testing.T) {
	var a admission
	steps := []struct {
		name            string
		lookups, hits   int
		filled          bool
		wantShift       uint32
		wantAdmitsShare float64 // of 4096 distinct keys, about
	}{
		{"starts admitting all", 0, 0, false, 0, 1},
		{"a generation fills with many hits", 1000, 900, true, 0, 1},
		{"a generation fills with few hits", 1000, 100, true, 1, 0.5},
		{"again", 1000, 0, true, 2, 0.25},
		{"and again", 1000, 0, true, 3, 0.125},
		{"many lookups without a new generation", admitRelaxLookups, 0, false, 2, 0.25},
	}
	for _, st := range steps {
		if a.counted(st.lookups, st.hits) {
			a.relax(0, 1<<20)
		}
		if st.filled {
			a.generationFilled()
		}
		if got := a.shift.Load(); got != st.wantShift {
			t.Fatalf("%s: shift %d, want %d", st.name, got, st.wantShift)
		}
		admitted := 0
		for i := range 4096 {
			if a.admits(keyHash(fmt.Appendf(nil, "series-%d", i))) {
				admitted++
			}
		}
		if share := float64(admitted) / 4096; share < st.wantAdmitsShare*0.8 || share > st.wantAdmitsShare*1.2 {
			t.Fatalf("%s: admits %.3f of the keys, want about %.3f", st.name, share, st.wantAdmitsShare)
		}
	}
	for range 2 * maxAdmitShift {
		a.counted(1000, 0)
		a.generationFilled()
	}
	if got := a.shift.Load(); got != maxAdmitShift {
		t.Fatalf("shift %d after many poor generations, want the bound %d", got, maxAdmitShift)
	}
	// The same key is always admitted or always not.
	key := []byte("series-42")
	first := a.admits(keyHash(key))
	for range 100 {
		if a.admits(keyHash(key)) != first {
			t.Fatal("admission of one key changes between calls")
		}
	}
}

// At the smallest fraction, a generation that fills with fewer than
// shrinkHitRatio hits halves the cache's budget, down to 1/2^maxShrink.
func TestAdmissionShrinksTheBudget(t *testing.T) {
	var a admission
	a.shift.Store(maxAdmitShift)
	const gen = 1 << 20
	steps := []struct {
		name          string
		lookups, hits int
		want          int
	}{
		{"a generation fills with some hits", 1000, 200, gen},
		{"a generation fills with hardly any", 1000, 50, gen / 2},
		{"again", 1000, 0, gen / 4},
		{"and again", 1000, 0, gen / 8},
		{"to the bound", 1000, 0, gen / 16},
		{"not beyond", 1000, 0, gen / 16},
	}
	for _, st := range steps {
		a.counted(st.lookups, st.hits)
		a.generationFilled()
		if got := a.generationBytes(gen); got != st.want {
			t.Fatalf("%s: generations of %d bytes, want %d", st.name, got, st.want)
		}
	}
}

// Caching becomes futile when a generation fills with fewer than
// shrinkHitRatio hits with the fraction and the budget at their smallest,
// and stops being futile at the next relaxation.
func TestAdmissionFutile(t *testing.T) {
	var a admission
	steps := []struct {
		name          string
		shift, shrink uint32 // set before the step
		lookups, hits int
		relax         bool // the step relaxes instead of filling a generation
		want          bool
	}{
		{"few hits while the fraction can halve", maxAdmitShift - 1, maxShrink, 1000, 0, false, false},
		{"few hits while the budget can halve", maxAdmitShift, maxShrink - 2, 1000, 0, false, false},
		{"few hits as the budget reaches its bound", maxAdmitShift, maxShrink - 1, 1000, 0, false, true},
		{"a relaxation", maxAdmitShift, maxShrink, 0, 0, true, false},
		{"some hits at both bounds", maxAdmitShift, maxShrink, 1000, 100, false, false},
		{"few hits at both bounds", maxAdmitShift, maxShrink, 1000, 99, false, true},
	}
	for _, st := range steps {
		a.shift.Store(st.shift)
		a.shrink.Store(st.shrink)
		a.counted(st.lookups, st.hits)
		if st.relax {
			a.relax(1<<30, 1<<20)
		} else {
			a.generationFilled()
		}
		if got := a.futile(); got != st.want {
			t.Fatalf("%s: futile %v, want %v", st.name, got, st.want)
		}
	}
}

// A relaxation doubles the admitted fraction, and grows the budget to the
// smallest that holds the series set (estimated from the memory held and
// the fraction) with a quarter to spare, unless the full budget does not
// hold it.
func TestAdmissionRelaxGrowsTheBudgetToTheSet(t *testing.T) {
	const full = 4 << 20
	for _, tc := range []struct {
		name          string
		shift, shrink uint32
		held          int
		wantShift     uint32
		wantBudget    int // full >> shrink
	}{
		{"a set that fits the shrunk budget", 0, 2, 512 << 10, 0, 1 << 20},
		{"a set that needs twice the budget", 0, 2, 900 << 10, 0, 2 << 20},
		{"a set estimated from a subset", 2, 4, 400 << 10, 1, 2 << 20},
		{"a set the full budget holds", 1, 4, 1600 << 10, 0, 4 << 20},
		{"a set too large for the full budget", 3, 2, 800 << 10, 2, 1 << 20},
		{"no shrink to undo", 2, 0, 100 << 10, 1, 4 << 20},
	} {
		var a admission
		a.shift.Store(tc.shift)
		a.shrink.Store(tc.shrink)
		a.relax(tc.held, full)
		if got, budget := a.shift.Load(), full>>a.shrink.Load(); got != tc.wantShift || budget != tc.wantBudget {
			t.Errorf("%s: shift %d, budget %d; want %d, %d", tc.name, got, budget, tc.wantShift, tc.wantBudget)
		}
	}
}

// Under churn a cache that does not pay shrinks to the bound; a producer
// that settles on a small series set gets the budget and all its series
// cached back.
func TestCacheShrinksUnderChurnAndHeals(t *testing.T) {
	r := newTestRouter(t, Options{BaseURL: base, TenantID: Multitenant}, seedFormat, discard{})
	r.cache.resize(256 << 10)
	process := func(wr *prompb.WriteRequest) {
		t.Helper()
		if err := r.Process(context.Background(), decoded(t, wr), ""); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; r.cache.admit.shrink.Load() < maxShrink; i++ {
		if i > 200 {
			t.Fatalf("budget halved %d times after %d requests of new series, want %d", r.cache.admit.shrink.Load(), i, maxShrink)
		}
		process(churnRequest(1000, i))
	}
	r.cache.mu.RLock()
	held := len(r.cache.cur) + len(r.cache.prev)
	r.cache.mu.RUnlock()
	if limit := 2 * r.cache.admit.generationBytes(r.cache.genBytes) / entryOverhead; held > limit {
		t.Errorf("the shrunk cache holds %d entries, want at most %d", held, limit)
	}
	wantReported(t, r.cache)
	wantSkipped(t, r, churnRequest(1000, -2))
	settled := []*prompb.WriteRequest{churnRequest(100, -1)}
	if n := cacheSettles(t, r, settled); n > 0 {
		t.Fatalf("%d of 100 series of the settled set are not cached", n)
	}
	wantReported(t, r.cache)
}

// wantSkipped checks that a router whose caching is futile routes wr, as
// decoded by the handler with the router's lookups, without looking its
// series up or storing them.
func wantSkipped(t *testing.T, r *Router, wr *prompb.WriteRequest) {
	t.Helper()
	if !r.cache.admit.futile() {
		t.Fatal("caching is not futile")
	}
	body, err := wr.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	var req remotewrite.Request
	if err := remotewrite.DecodeWriteRequestKnown(body, &req, r); err != nil {
		t.Fatal(err)
	}
	if req.KnownBy != nil {
		t.Errorf("the decoder consulted the futile cache (KnownBy %v)", req.KnownBy)
	}
	req.Compressed = snappy.Encode(nil, body)
	r.cache.mu.RLock()
	held := r.cache.curBytes + r.cache.prevBytes
	r.cache.mu.RUnlock()
	skipped, hits, misses := cacheSkipped.Get(), cacheHits.Get(), cacheMisses.Get()
	if err := r.Process(context.Background(), &req, ""); err != nil {
		t.Fatal(err)
	}
	if got := cacheSkipped.Get() - skipped; got != uint64(len(wr.Timeseries)) {
		t.Errorf("%d series skipped the cache, want %d", got, len(wr.Timeseries))
	}
	if got := cacheMisses.Get() - misses; cacheHits.Get() != hits || got != uint64(len(wr.Timeseries)) {
		t.Errorf("skipped series counted as %d hits and %d misses, want 0 and %d", cacheHits.Get()-hits, got, len(wr.Timeseries))
	}
	r.cache.mu.RLock()
	defer r.cache.mu.RUnlock()
	if now := r.cache.curBytes + r.cache.prevBytes; now != held {
		t.Errorf("the futile cache stored %d bytes of entries", now-held)
	}
}

// wantReported checks that the budget and memory gauges hold c's budget
// and entries as they are now.
func wantReported(t *testing.T, c *rewriteCache) {
	t.Helper()
	c.mu.RLock()
	defer c.mu.RUnlock()
	if budget, held := c.budget(), c.curBytes+c.prevBytes; c.reportedBudget != budget || c.reportedHeld != held {
		t.Errorf("gauges hold %d bytes of budget and %d of entries for the cache, want %d and %d", c.reportedBudget, c.reportedHeld, budget, held)
	}
	if cacheBudget.Load() < int64(c.reportedBudget) || cacheHeld.Load() < int64(c.reportedHeld) {
		t.Errorf("gauges total %d and %d bytes, less than the cache's %d and %d", cacheBudget.Load(), cacheHeld.Load(), c.reportedBudget, c.reportedHeld)
	}
}

// cacheSettles sends the requests of set in turn until the router's cache
// holds every series of them and admits all new ones, or 20,000 requests
// have been sent; it returns how many series of set are not cached.
func cacheSettles(t *testing.T, r *Router, set []*prompb.WriteRequest) int {
	t.Helper()
	missing := -1
	for i := 0; i < 20000 && missing != 0; i++ {
		if err := r.Process(context.Background(), decoded(t, set[i%len(set)]), ""); err != nil {
			t.Fatal(err)
		}
		if i%len(set) == len(set)-1 && r.cache.admit.shift.Load() == 0 {
			missing = uncached(t, r, set)
		}
	}
	if missing < 0 {
		missing = uncached(t, r, set)
	}
	return missing
}

// uncached counts the series of set that the router's cache does not hold.
func uncached(t *testing.T, r *Router, set []*prompb.WriteRequest) int {
	n := 0
	for _, wr := range set {
		req := decoded(t, wr)
		r.cache.mu.RLock()
		for i := range req.Series {
			if e, _ := r.cache.getLocked(req.Series[i].LabelFields()); e == nil {
				n++
			}
		}
		r.cache.mu.RUnlock()
	}
	return n
}

// A cache starts below its budget; a series set larger than the start but
// within the budget grows it, until every series of the set is cached.
func TestCacheGrowsToASetThatFits(t *testing.T) {
	r := newTestRouter(t, Options{BaseURL: base, TenantID: Multitenant}, seedFormat, discard{})
	r.cache.resize(4 << 20)
	if got := r.cache.admit.shrink.Load(); got != initialShrink {
		t.Fatalf("a new cache's budget is halved %d times, want %d", got, initialShrink)
	}
	set := []*prompb.WriteRequest{churnRequest(1000, -1), churnRequest(1000, -2), churnRequest(1000, -3)}
	if n := cacheSettles(t, r, set); n > 0 {
		t.Fatalf("%d of 3,000 series are not cached with the whole budget (halved %d times)", n, r.cache.admit.shrink.Load())
	}
}

// Under churn the router's cache stops storing most new series; once the
// producer settles on a series set that fits, the cache learns all of it
// again.
func TestCacheAdmissionUnderChurnHeals(t *testing.T) {
	r := newTestRouter(t, Options{BaseURL: base, TenantID: Multitenant}, seedFormat, discard{})
	r.cache.resize(4 << 20) // holds a few thousand series
	process := func(wr *prompb.WriteRequest) {
		t.Helper()
		if err := r.Process(context.Background(), decoded(t, wr), ""); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 60 {
		process(churnRequest(1000, i))
	}
	if s := r.cache.admit.shift.Load(); s == 0 {
		t.Fatal("the cache still stores every new series under 100% churn")
	}
	settled := churnRequest(1000, -1)
	for i := 0; r.cache.admit.shift.Load() > 0; i++ {
		if i > 4000 {
			t.Fatalf("the admitted fraction is still 1/2^%d after %d requests of one series set", r.cache.admit.shift.Load(), i)
		}
		process(settled)
	}
	// The series the smaller fractions left out are sighted by the next
	// request and stored by the one after (see doorkeeper).
	process(settled)
	process(settled)
	req := decoded(t, settled)
	r.cache.mu.RLock()
	defer r.cache.mu.RUnlock()
	for i := range req.Series {
		if e, _ := r.cache.getLocked(req.Series[i].LabelFields()); e == nil {
			t.Fatalf("series %d of the settled set is not cached", i)
		}
	}
}

// churnRequest is anomalyRequest with every series marked by generation
// gen, so that each gen's series are new.
func churnRequest(n, gen int) *prompb.WriteRequest {
	wr := anomalyRequest(n, 10)
	for i := range wr.Timeseries {
		wr.Timeseries[i].Labels = append(wr.Timeseries[i].Labels, prompb.Label{Name: "zgen", Value: fmt.Sprint(gen)})
	}
	return wr
}

// The position hints are tried beyond the first hintProbes series of a
// request only while they hit: a producer that shuffles its series turns
// them off, one that keeps its order turns them back on.
func TestPositionHintsFollowTheProducersOrder(t *testing.T) {
	r := newTestRouter(t, Options{BaseURL: base, TenantID: Multitenant}, seedFormat, discard{})
	wr := anomalyRequest(200, 10)
	process := func(wr *prompb.WriteRequest, times int) {
		t.Helper()
		for range times {
			var req remotewrite.Request
			body, err := wr.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			if err := remotewrite.DecodeWriteRequestKnown(body, &req, r); err != nil {
				t.Fatal(err)
			}
			if err := r.Process(context.Background(), &req, ""); err != nil {
				t.Fatal(err)
			}
		}
	}
	rounds := 2 * hintVerdict / hintProbes
	process(wr, rounds)
	if !r.cache.hintsPay.Load() {
		t.Fatal("hints are off for a producer that keeps its series in order")
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range rounds {
		shuffled := &prompb.WriteRequest{Timeseries: slices.Clone(wr.Timeseries)}
		rng.Shuffle(len(shuffled.Timeseries), func(i, j int) {
			shuffled.Timeseries[i], shuffled.Timeseries[j] = shuffled.Timeseries[j], shuffled.Timeseries[i]
		})
		process(shuffled, 1)
	}
	if r.cache.hintsPay.Load() {
		t.Fatal("hints are still on for a producer that shuffles its series")
	}
	process(wr, rounds)
	if !r.cache.hintsPay.Load() {
		t.Fatal("hints stay off after the producer went back to one order")
	}
}
