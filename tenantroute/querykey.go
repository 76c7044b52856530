package tenantroute

import (
	"strings"
	"sync"

	"github.com/scoreproxy/scoreproxy/remotewrite"
)

// maxQueryKeyIDs bounds the distinct query keys a router names: the query
// key is producer input. Keys past it share the id of
// remotewrite.OverflowQueryKey. The writer metrics bound them again per URL
// (remotewrite.MaxQueryKeys).
const maxQueryKeyIDs = 1024

// overflowQueryKey is the id of remotewrite.OverflowQueryKey; the zero
// queryKey (id 0) is "", the key of the series without one.
const overflowQueryKey int32 = 1

// queryKeys interns the values of the query key label (routing.
// query_key_label) the router has seen, giving each a small id: a cached
// rewrite holds the id of its series' key, and a batch counts its series
// per key by id (see batch.count) with an array index instead of a string
// comparison per series.
type queryKeys struct {
	mu  sync.RWMutex
	ids map[string]queryKey // guarded by mu
}

func newQueryKeys() *queryKeys {
	return &queryKeys{ids: map[string]queryKey{"": {}, remotewrite.OverflowQueryKey: {name: remotewrite.OverflowQueryKey, id: overflowQueryKey}}}
}

// queryKey is an interned query key: its id and its name.
type queryKey struct {
	name string
	id   int32
}

// get returns the interned key, interning a key not seen before.
func (q *queryKeys) get(key []byte) queryKey {
	q.mu.RLock()
	k, ok := q.ids[string(key)]
	q.mu.RUnlock()
	if ok {
		return k
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if k, ok := q.ids[string(key)]; ok {
		return k
	}
	if len(q.ids) >= maxQueryKeyIDs {
		return q.ids[remotewrite.OverflowQueryKey]
	}
	name := strings.Clone(string(key))
	k = queryKey{name: name, id: int32(len(q.ids))}
	q.ids[name] = k
	return k
}

// queryKeyOf returns the query key of the series whose input labels are
// in (in any order: they are the producer's). A producer has few query
// keys, and series of one key mostly come together: the key found last in
// the value's slot of w.recentKeys is compared before the interning table
// is consulted.
func (r *Router) queryKeyOf(w *work, in []remotewrite.Label) queryKey {
	for _, l := range in {
		if string(l.Name) != r.queryKey {
			continue
		}
		if len(l.Value) == 0 {
			return queryKey{}
		}
		recent := &w.recentKeys[keySlot(l.Value)]
		if string(l.Value) != recent.name {
			*recent = r.keys.get(l.Value)
		}
		return *recent
	}
	return queryKey{}
}

// keySlot is the slot of w.recentKeys for the non-empty query key value v:
// its length and last byte tell apart the usual keys (numbered, or of
// different lengths) without hashing it.
func keySlot(v []byte) int {
	return (len(v) + int(v[len(v)-1])) & (len(work{}.recentKeys) - 1)
}

// count adds series s, of query key k, to the batch's totals. A key the
// batch has counted before costs an index into keyPos.
func (b *batch) count(s *remotewrite.Series, k queryKey) {
	n := s.Samples + s.Histograms
	b.series++
	b.samples += n
	if pos := b.keyPos; uint(k.id) < uint(len(pos)) && pos[k.id] > 0 && int(pos[k.id]) <= len(b.keys) {
		t := &b.keys[pos[k.id]-1]
		t.Series++
		t.Samples += n
		return
	}
	b.newKey(k, n)
}

// newKey starts the tally of key k with one series of n samples. It is kept
// out of line so that count, called per series, inlines.
//
//go:noinline
func (b *batch) newKey(k queryKey, n int) {
	if int(k.id) >= len(b.keyPos) {
		b.keyPos = append(b.keyPos, make([]int32, int(k.id)+1-len(b.keyPos))...)
	}
	b.keys = append(b.keys, remotewrite.KeyTally{Key: k.name, Series: 1, Samples: n})
	b.keyPos[k.id] = int32(len(b.keys))
}

// resetKeys empties the batch's tallies.
func (b *batch) resetKeys() {
	b.keys = b.keys[:0]
	clear(b.keyPos)
}
