package tenantroute

import (
	"fmt"
	"testing"
)

// holds finds a fingerprint in any of a bucket's four lanes and never
// reports one that is not there.
func TestPresenceHolds(t *testing.T) {
	for _, tc := range []struct {
		bucket, fp uint64
		want       bool
	}{
		{0, 1, false},
		{0x0000_0000_0000_0003, 3, true},
		{0x0003_0000_0000_0000, 3, true},
		{0x0005_0003_0007_0009, 7, true},
		{0x0005_0003_0007_0009, 0xb, false},
		{0x0100_0100_0100_0100, 0x0101, false}, // lanes one bit off
		{0xffff_ffff_ffff_fffe, 0xffff, true},
		{0xfffe_fffe_fffe_fffe, 0xffff, false},
		{0x0001_0000_0000_0000, 0x0001, true}, // an empty lane is not a match
		{0x0000_0000_0000_0000, 0x8001, false},
	} {
		if got := holds(tc.bucket, tc.fp); got != tc.want {
			t.Errorf("holds(%#016x, %#x) = %v, want %v", tc.bucket, tc.fp, got, tc.want)
		}
	}
}

// Every added key may be held while its bucket has room; a key never added
// is rarely reported; rebuild keeps exactly the keys of the maps given.
func TestPresenceRecordsKeys(t *testing.T) {
	p := newPresence(1 << 20) // 8,192 buckets
	keys := make(map[string]*rewrite)
	for i := range 2000 {
		k := fmt.Sprintf("series-%d", i)
		keys[k] = nil
		p.add(keyHash([]byte(k)))
	}
	lost := 0
	for k := range keys {
		if !p.mayHold(keyHash([]byte(k))) {
			lost++
		}
	}
	if lost > 2 { // buckets overflow only beyond four keys
		t.Errorf("%d of %d added keys not held", lost, len(keys))
	}
	if f := falseHolds(&p, "other-%d", 100000); f > 100 {
		t.Errorf("%d of 100000 keys never added are held", f)
	}
	p.rebuild(1<<20, map[string]*rewrite{"kept": {hash: keyHash([]byte("kept"))}})
	if !p.mayHold(keyHash([]byte("kept"))) {
		t.Error("rebuild forgot a key of the maps given")
	}
	if f := falseHolds(&p, "series-%d", 2000); f > 0 {
		t.Errorf("rebuild kept %d dropped keys", f)
	}
	p.rebuild(4<<20, map[string]*rewrite{"kept": {hash: keyHash([]byte("kept"))}})
	if len(p.buckets) != 32768 || !p.mayHold(keyHash([]byte("kept"))) {
		t.Errorf("resized to %d buckets, kept held %v; want 32768 and true", len(p.buckets), p.mayHold(keyHash([]byte("kept"))))
	}
}

// A full bucket takes a new key in place of an old one: the new key is
// held, and the bucket still holds three of the others.
func TestPresenceFullBucket(t *testing.T) {
	p := newPresence(0) // 256 buckets
	var inBucket []string
	fps := map[uint64]bool{}
	for i := 0; len(inBucket) < 5; i++ {
		k := fmt.Sprint(i)
		b, fp := p.fingerprint(keyHash([]byte(k)))
		if b == &p.buckets[0] && !fps[fp] {
			inBucket, fps[fp] = append(inBucket, k), true
		}
	}
	for _, k := range inBucket {
		p.add(keyHash([]byte(k)))
	}
	held := 0
	for _, k := range inBucket[:4] {
		if p.mayHold(keyHash([]byte(k))) {
			held++
		}
	}
	if !p.mayHold(keyHash([]byte(inBucket[4]))) || held != 3 {
		t.Errorf("the fifth key held %v, %d of the first four; want true and 3", p.mayHold(keyHash([]byte(inBucket[4]))), held)
	}
}

// falseHolds counts the keys of format, numbered 0..n-1, that p holds.
func falseHolds(p *presence, format string, n int) int {
	f := 0
	for i := range n {
		if p.mayHold(keyHash(fmt.Appendf(nil, format, i))) {
			f++
		}
	}
	return f
}
