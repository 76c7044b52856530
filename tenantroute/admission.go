package tenantroute

import (
	"sync/atomic"
)

// admission decides which new label sets a rewriteCache stores (at their
// second sighting, see doorkeeper). While the series a producer cycles
// through fit in the cache, it stores every one.
// When they do not (hundreds of thousands of distinct series, or churn:
// series never seen again), storing every new series only evicts the ones
// that would have hit, and costs an allocation, a map insertion and
// garbage-collector work per series for nothing. Then the cache stores
// only the label sets whose hash falls in a fraction 1/2^shift of the hash
// space: always the same ones, so a fixed subset of a large series set
// stays cached and hits, instead of all of it passing through.
//
// The fraction adapts at every generation change (see rewriteCache.store):
// a generation that filled while fewer than admitHitRatio of the lookups
// hit halves it (down to 1/2^maxAdmitShift); a cache that has taken
// admitRelaxLookups lookups without a generation change doubles it again,
// so a workload that settles gets its whole series set cached back.
//
// When even the smallest fraction leaves a filled generation with fewer
// than shrinkHitRatio of its lookups hitting (a series set many times the
// cache, or churn), the cache's memory pays for nothing: each such
// generation halves the cache's budget, down to 1/2^maxShrink of it. The
// budget starts at 1/2^initialShrink: a series set that fits it needs no
// more, a larger one that the full budget holds grows it at a relaxation,
// and one far larger never makes the process hold the whole budget. A
// generation that fills that badly at the smallest budget makes caching
// futile until the next relaxation: requests then skip the cache entirely.
type admission struct {
	shift atomic.Uint32 // store the label sets with (keyHash >> 32) % 2^shift == 0
	// shrink halves the cache's budget this many times.
	shrink atomic.Uint32
	// lookups and hits count since the last generation change, and since
	// the fraction last relaxed.
	lookups, hits atomic.Int64
	// noPay is whether caching is futile (see futile).
	noPay atomic.Bool
}

const (
	// admitHitRatio is the hit ratio below which a filled generation
	// halves the admitted fraction.
	admitHitRatio = 0.75
	// maxAdmitShift bounds the reduction: 1 in 64 new label sets is
	// still stored, so the cache keeps learning.
	maxAdmitShift = 6
	// admitRelaxLookups is how many lookups without a generation change
	// double the admitted fraction.
	admitRelaxLookups = 1 << 18
	// shrinkHitRatio is the hit ratio below which a filled generation at
	// the smallest fraction halves the cache's budget.
	shrinkHitRatio = 0.1
	// maxShrink bounds the halvings of the budget: 4 MiB becomes 256 KiB.
	maxShrink = 4
	// initialShrink is the halvings a cache starts with: 4 MiB starts as
	// 1 MiB, enough for about 1,800 series of the standard request with
	// the seed metric_format.
	initialShrink = 2
)

// futile reports whether caching does not pay at all: with the admitted
// fraction and the budget at their smallest, a filled generation hit fewer
// than shrinkHitRatio of its lookups. Then the cache's lookups, admissions
// and stores cost more than the rare hit saves, and requests skip them (see
// rewriteCache.lookupAll). The next relaxation (admitRelaxLookups series
// later, skipped ones included) ends it, and caching resumes until a
// generation fills as badly again.
func (a *admission) futile() bool { return a.noPay.Load() }

// admits reports whether the label set whose keyHash is h is stored.
func (a *admission) admits(h uint64) bool {
	shift := a.shift.Load()
	return (h>>32)&(1<<shift-1) == 0
}

// counted adds one request's lookups and hits. It reports whether
// admitRelaxLookups lookups have passed without a generation change: then
// the caller relaxes (see relax).
func (a *admission) counted(lookups, hits int) bool {
	a.hits.Add(int64(hits))
	n := a.lookups.Add(int64(lookups))
	if n < admitRelaxLookups || !a.lookups.CompareAndSwap(n, 0) {
		return false
	}
	a.hits.Store(0)
	return true
}

// relax doubles the admitted fraction, and grows the budget when the
// series set fits the full one: held is the memory of the cache's
// entries, the admitted part of the set, and full is the full budget.
// The budget becomes the smallest that holds the set with a quarter to
// spare; a set larger than the full budget leaves it as it is, since
// caching a larger part of such a set hardly pays.
func (a *admission) relax(held, full int) {
	a.noPay.Store(false)
	shift := a.shift.Load()
	if shift > 0 {
		a.shift.CompareAndSwap(shift, shift-1)
	}
	set := held << shift
	if set > full {
		return
	}
	for s := a.shrink.Load(); s > 0 && full>>s < set+set/4; s-- {
		a.shrink.Store(s - 1)
	}
}

// generationFilled adapts the admitted fraction when a generation filled.
func (a *admission) generationFilled() {
	lookups, hits := a.lookups.Swap(0), a.hits.Swap(0)
	if lookups == 0 || float64(hits) >= admitHitRatio*float64(lookups) {
		return
	}
	if s := a.shift.Load(); s < maxAdmitShift {
		a.shift.CompareAndSwap(s, s+1)
		return
	}
	if float64(hits) >= shrinkHitRatio*float64(lookups) {
		return
	}
	if s := a.shrink.Load(); s < maxShrink {
		a.shrink.CompareAndSwap(s, s+1)
	}
	if a.shrink.Load() == maxShrink {
		a.noPay.Store(true)
	}
}

// generationBytes is the memory at which a generation of a cache whose
// full budget gives generations of genBytes fills, after the halvings.
func (a *admission) generationBytes(genBytes int) int {
	return genBytes >> a.shrink.Load()
}
