package tenantroute

import (
	"hash/maphash"
	"math/bits"

	"github.com/scoreproxy/scoreproxy/remotewrite"
)

// presence is a compact record of the keys a rewriteCache holds: 16-bit
// fingerprints in buckets of four, the bucket chosen by the key's hash. A
// key whose bucket does not hold its fingerprint is not in the cache, and
// its lookup ends there instead of probing both generations' maps. That
// matters when most lookups miss (a series set far larger than the cache,
// or churn): a map probe reads memory that is rarely in the processor's
// caches, while the buckets (8 bytes per 128 bytes of the cache's budget,
// so at most a few entries per bucket) mostly are.
//
// A full bucket gives up one of its fingerprints for a new key, so a key
// may be stored and not found: its series is routed again, as any miss is,
// and storing it takes a place back. With an entry taking at least a few
// hundred bytes a bucket rarely holds more than two, and almost never
// five. The caller guards a presence as it guards the maps.
type presence struct {
	buckets []uint64
	mask    uint64
}

// keySeed seeds keyHash.
var keySeed = maphash.MakeSeed()

// keyHash is the hash of an encoded label set (a cache key) that every
// cache's presence and admission use: one hash per key, computed once when
// the decoder looks the key up (Series.KnownHash) or when it is routed.
// presence takes its low bits (the bucket) and its top 16 (the
// fingerprint), admission bits 32 and up: independent choices.
func keyHash(key []byte) uint64 { return maphash.Bytes(keySeed, key) }

// seriesKeyHash is keyHash of key, the label fields of s, taken from the
// decoder when its lookup computed it.
func seriesKeyHash(s *remotewrite.Series, key []byte) uint64 {
	if s.KnownHash != 0 {
		return s.KnownHash
	}
	return keyHash(key)
}

// presenceBytesPerBucket is the cache budget per bucket.
const presenceBytesPerBucket = 128

// Lane constants of a bucket's four 16-bit fingerprints.
const (
	lanesLow  = 0x0001_0001_0001_0001
	lanesHigh = 0x8000_8000_8000_8000
)

func newPresence(maxBytes int) presence {
	return presence{buckets: make([]uint64, presenceBuckets(maxBytes))}.masked()
}

// presenceBuckets is the number of buckets for a cache budget: a power of
// two, at least 256.
func presenceBuckets(maxBytes int) int {
	n := max(maxBytes/presenceBytesPerBucket, 256)
	return 1 << bits.Len(uint(n-1))
}

func (p presence) masked() presence {
	p.mask = uint64(len(p.buckets) - 1)
	return p
}

// fingerprint is the bucket and the nonzero fingerprint of hash h (an
// empty lane holds zero, which no key matches).
func (p *presence) fingerprint(h uint64) (bucket *uint64, fp uint64) {
	return &p.buckets[h&p.mask], h>>48 | 1
}

// holds reports whether one of the four lanes of bucket is fp.
func holds(bucket, fp uint64) bool {
	x := bucket ^ fp*lanesLow // a lane holding fp is zero
	return (x-lanesLow)&^x&lanesHigh != 0
}

// mayHold reports whether the key whose keyHash is h may be stored: false
// means it is not.
func (p *presence) mayHold(h uint64) bool {
	b, fp := p.fingerprint(h)
	return holds(*b, fp)
}

// add records a stored key by its keyHash h: in a free lane of its bucket,
// else in place of the fingerprint its own selects.
func (p *presence) add(h uint64) {
	b, fp := p.fingerprint(h)
	if holds(*b, fp) {
		return
	}
	lane := (fp >> 1) & 3
	for i := range uint64(4) {
		if *b>>(16*i)&0xffff == 0 {
			lane = i
			break
		}
	}
	*b = *b&^(0xffff<<(16*lane)) | fp<<(16*lane)
}

// rebuild forgets every key, then records the keys of the maps given, with
// buckets for a budget of maxBytes: after a generation change the dropped
// generation's keys would otherwise keep their places, and lookups of them
// would probe the maps for nothing.
func (p *presence) rebuild(maxBytes int, maps ...map[string]*rewrite) {
	if n := presenceBuckets(maxBytes); n != len(p.buckets) {
		p.buckets = make([]uint64, n)
		*p = p.masked()
	} else {
		clear(p.buckets)
	}
	for _, m := range maps {
		for _, e := range m {
			p.add(e.hash)
		}
	}
}
