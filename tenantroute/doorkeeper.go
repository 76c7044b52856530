package tenantroute

import (
	"math/bits"
	"sync/atomic"
)

// doorkeeper records the label sets that a rewriteCache admitted (see
// admission) but did not store, because it had not seen them before: a
// bit per hash slot. A label set is stored at its second sighting, so a
// series that never comes back (churn, or a series set that recurs only
// after the cache would have forgotten it) costs a bit instead of an
// allocation, a map insertion and garbage-collector work, and does not
// take the place of one that recurs. A first sighting still counts towards
// filling the cache's generation, as the entry it would have made (see
// storeFresh), so that the admission adapts to a series set as it does
// when every admitted label set is stored.
//
// Like the cache, it has two generations: the bits of the current one and
// of the one before, so that a label set seen again within the two
// generations an entry would have lasted is stored. A slot that another
// label set took makes a first sighting look like a second one, so that
// label set is stored early, as it would be without a doorkeeper. Bits
// are set and read with atomic operations, by any request; rotate runs
// under the cache's lock.
type doorkeeper struct {
	gens [2][]atomic.Uint64
	cur  atomic.Uint32 // the index in gens of the current generation
	mask uint64        // slots - 1
}

// doorkeeperSlotBytes is the generation memory per doorkeeper slot: an
// entry takes a few hundred bytes, so a generation that fills with first
// sightings sets a small part of the slots.
const doorkeeperSlotBytes = 16

// maxDoorkeeperSlots is the most slots bits 8 to 31 of a keyHash choose
// among (see seenBefore).
const maxDoorkeeperSlots = 1 << 24

// newDoorkeeper returns a doorkeeper for generations of up to genBytes:
// one slot per doorkeeperSlotBytes in each, a power of two from 64 to
// maxDoorkeeperSlots.
func newDoorkeeper(genBytes int) *doorkeeper {
	slots := uint64(64)
	if n := genBytes / doorkeeperSlotBytes; n > 64 {
		slots = min(uint64(1)<<bits.Len64(uint64(n-1)), maxDoorkeeperSlots)
	}
	d := &doorkeeper{mask: slots - 1}
	for i := range d.gens {
		d.gens[i] = make([]atomic.Uint64, slots/64)
	}
	return d
}

// seenBefore reports whether the slot of keyHash h was set in either
// generation, and sets it in the current one. It takes bits 8 to 31 of h:
// presence takes the low bits and the top 16, admission bits 32 and up,
// and a slot chosen by the bits admission selects on would crowd the
// admitted label sets into a few words.
func (d *doorkeeper) seenBefore(h uint64) bool {
	slot := (h >> 8) & d.mask
	i, bit := slot>>6, uint64(1)<<(slot&63)
	cur := d.cur.Load()
	w := &d.gens[cur][i]
	if w.Load()&bit != 0 {
		return true
	}
	w.Or(bit)
	return d.gens[1-cur][i].Load()&bit != 0
}

// rotate starts a new generation: the sightings of the one before last
// are forgotten.
func (d *doorkeeper) rotate() {
	next := 1 - d.cur.Load()
	for i := range d.gens[next] {
		d.gens[next][i].Store(0)
	}
	d.cur.Store(next)
}
