package tenantroute

import (
	"hash/maphash"
	"sync/atomic"
)

// admission decides which new label sets a rewriteCache stores. While the
// series a producer cycles through fit in the cache, it stores every one.
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
type admission struct {
	seed  maphash.Seed
	shift atomic.Uint32 // store the label sets with hash % 2^shift == 0
	// lookups and hits count since the last generation change, and since
	// the fraction last relaxed.
	lookups, hits atomic.Int64
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
)

func newAdmission() admission { return admission{seed: maphash.MakeSeed()} }

// admits reports whether the label set with encoded labels key is stored.
func (a *admission) admits(key []byte) bool {
	shift := a.shift.Load()
	if shift == 0 {
		return true
	}
	return maphash.Bytes(a.seed, key)&(1<<shift-1) == 0
}

// counted adds one request's lookups and hits; past admitRelaxLookups
// lookups without a generation change, the admitted fraction doubles.
func (a *admission) counted(lookups, hits int) {
	a.hits.Add(int64(hits))
	if a.lookups.Add(int64(lookups)) < admitRelaxLookups {
		return
	}
	if s := a.shift.Load(); s > 0 {
		a.shift.CompareAndSwap(s, s-1)
	}
	a.lookups.Store(0)
	a.hits.Store(0)
}

// generationFilled adapts the admitted fraction when a generation filled.
func (a *admission) generationFilled() {
	lookups, hits := a.lookups.Swap(0), a.hits.Swap(0)
	if lookups > 0 && float64(hits) < admitHitRatio*float64(lookups) {
		if s := a.shift.Load(); s < maxAdmitShift {
			a.shift.CompareAndSwap(s, s+1)
		}
	}
}
