package tenantroute

import (
	"slices"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/VictoriaMetrics/metrics"

	"github.com/scoreproxy/scoreproxy/remotewrite"
)

// rewrite is the cached outcome of routing one label set: the encoded output
// labels and the destination. Entries are immutable once stored.
type rewrite struct {
	key         string // the input label fields it is the rewrite of
	hash        uint64 // keyHash(key)
	labelFields []byte // output labels as TimeSeries label fields
	tenant      Tenant
	ep          *endpoint // the endpoint of tenant
	// drop is the relabeling stage that drops this label set; dropNone
	// keeps it. A drop entry has no labels or endpoint: each occurrence is
	// counted, not forwarded.
	drop dropStage
	// warnings are the tenant warnings the label set raises, raised again
	// for every occurrence (see repeats).
	warnings []warning
	// upTenants is, in MultitenantMode, the tenant vminsert will read from
	// the output labels, both ways (see labelTenants and tenantNotes).
	upTenants [2]Tenant
	// queryKey is the value of the query key label of the input labels,
	// interned: the query_key of the writer's sent counters.
	queryKey queryKey
	// owner is the cache the rewrite belongs to: with several writers the
	// decoder consults the first writer's cache (Series.Known), and the
	// others must not take its rewrites for theirs.
	owner *rewriteCache
	// reordered is true when the key's labels are out of order (the
	// producer does not sort them): the decoder, told so by Known, marks
	// the series Reordered, so that a request holding it is never
	// forwarded as received; labelFields are in order.
	reordered bool
}

// defaultCacheBytes bounds the memory of the rewrite cache (both
// generations): about 7,500 series of the standard request with the seed
// metric_format, 15,000 forwarded unchanged. A larger cache pays little:
// once the series set outgrows the processor's caches, a hit costs memory
// latency too, and its entries make the garbage collector scan more; with
// the series set larger than the cache, admission keeps a fixed subset
// cached, and uses only as much of the budget as pays (see admission;
// BENCHMARKS.md, "Cardinality sweep", has the measurements). The
// doorkeeper adds 1/128 of it (32 KiB).
const defaultCacheBytes = 4 << 20

// entryOverhead approximates the map and struct memory of one entry (the
// key's bytes are shared by the map key and rewrite.key).
const entryOverhead = 112

// warningOverhead approximates the memory of one warning of an entry.
const warningOverhead = 64

var (
	cacheHits   = metrics.NewCounter("scoreproxy_rewrite_cache_hits_total")
	cacheMisses = metrics.NewCounter("scoreproxy_rewrite_cache_misses_total")
	// cacheSkipped counts the misses that were not looked up: the series
	// routed while caching is futile (see admission.futile).
	cacheSkipped = metrics.NewCounter("scoreproxy_rewrite_cache_skipped_total")
	// cacheBudget and cacheHeld are the memory all rewrite caches may hold
	// now (their budgets, which admission shrinks when caching does not
	// pay) and hold (their entries), as reported (see report).
	cacheBudget, cacheHeld atomic.Int64
	_                      = metrics.NewGauge("scoreproxy_rewrite_cache_budget_bytes", func() float64 { return float64(cacheBudget.Load()) })
	_                      = metrics.NewGauge("scoreproxy_rewrite_cache_bytes", func() float64 { return float64(cacheHeld.Load()) })
)

// rewriteCache remembers the rewrite of every label set seen recently, keyed
// by its encoded label fields. Model runners and scrapers send the same
// series again and again with new samples, so after the first request a
// series costs one map lookup instead of metric_format, tenant parsing and
// label encoding. It holds two generations: when the current one is full it
// becomes the previous one and the oldest is dropped, which bounds memory
// without per-entry bookkeeping. A series that raised a tenant warning is
// cached with it, and every occurrence raises it again (see repeats). The
// router has one cache, plus one per path tenant (see pathcache.go).
type rewriteCache struct {
	mu        sync.RWMutex
	cur       map[string]*rewrite // guarded by mu
	prev      map[string]*rewrite // guarded by mu; read-only
	curBytes  int                 // guarded by mu: memory of cur
	prevBytes int                 // guarded by mu: memory of prev
	genBytes  int                 // memory at which cur becomes prev, before admit halves it
	// present records the keys of cur and prev, so that most misses end
	// without a map probe; guarded by mu.
	present presence
	// hints[i] is the rewrite found last for the series at position i of a
	// request (see Known). A hint may outlive its generation: at most
	// len(hints) entries are kept that way.
	hints []atomic.Pointer[rewrite]
	// admit chooses the new label sets worth storing (see admission).
	admit admission
	// door holds back the admitted label sets seen once (see doorkeeper).
	// It is sized for the budget the cache was made with: resize leaves
	// it, so a path tenant's cache, which shrinks as others come, keeps a
	// doorkeeper larger than it needs.
	door *doorkeeper
	// sighted and prevSighted are the memory that the entries of the
	// first sightings in cur's and prev's generations would have taken;
	// guarded by mu.
	sighted, prevSighted int
	// hintsPay is whether the position hints beyond the first hintProbes
	// of a request are tried: a producer that shuffles its series (a
	// Prometheus shard, many runners) makes them miss, and a missed hint
	// costs two reads of memory that is rarely in the processor's caches.
	// The first hintProbes positions of every request are always tried
	// and decide it (see probedHint).
	hintsPay atomic.Bool
	// hintTally counts the probes' tries (high 32 bits) and hits (low).
	hintTally atomic.Uint64
	// reportedBudget and reportedHeld are this cache's part of cacheBudget
	// and cacheHeld; guarded by mu.
	reportedBudget, reportedHeld int
}

// report brings this cache's part of the budget and memory gauges up to
// date; the caller holds mu (or owns c).
func (c *rewriteCache) report() {
	budget, held := c.budget(), c.curBytes+c.prevBytes
	cacheBudget.Add(int64(budget - c.reportedBudget))
	cacheHeld.Add(int64(held - c.reportedHeld))
	c.reportedBudget, c.reportedHeld = budget, held
}

// hintProbes is how many leading positions of a request always try their
// hint; hintVerdict is how many such tries decide whether the others do.
const (
	hintProbes  = 8
	hintVerdict = 256
)

// probedHint counts one try of a probe position's hint; every hintVerdict
// tries, the hints of the other positions are turned on when at least half
// of the tries hit, off otherwise.
func (c *rewriteCache) probedHint(hit bool) {
	add := uint64(1) << 32
	if hit {
		add++
	}
	t := c.hintTally.Add(add)
	if t>>32 < hintVerdict {
		return
	}
	c.hintsPay.Store(2*uint32(t) >= hintVerdict)
	c.hintTally.Store(0)
}

// hintSlots is how many series positions have a hint; series further into
// a request are looked up in the maps only.
const hintSlots = 1 << 14

func newRewriteCache(maxBytes, hints int) *rewriteCache {
	c := &rewriteCache{cur: map[string]*rewrite{}, genBytes: maxBytes / 2, hints: make([]atomic.Pointer[rewrite], hints),
		present: newPresence(maxBytes >> initialShrink), door: newDoorkeeper(maxBytes / 2)}
	c.hintsPay.Store(true)
	c.admit.shrink.Store(initialShrink)
	c.report()
	return c
}

// resize sets the memory the cache may hold (both generations); the next
// store starts a new generation if the current one is over its new size.
func (c *rewriteCache) resize(maxBytes int) {
	c.mu.Lock()
	c.genBytes = maxBytes / 2
	c.present.rebuild(c.budget(), c.cur, c.prev)
	c.report()
	c.mu.Unlock()
}

// lookupAll appends to dst the cached rewrite of every series of req (nil
// for a miss), taking the read lock once for the whole request, and reports
// whether the request's new series may be stored. A series the decoder
// found in this cache has its rewrite already; when the decoder consulted
// this cache (req.KnownBy), the others are misses without another lookup;
// else they are looked up by position hint first, as Known does, then in
// the maps. While caching is futile (see admission.futile) a request the
// decoder did not consult c for is neither looked up nor stored: each of
// its series counts as a miss (and in cacheSkipped), so that admission
// still relaxes on schedule and tries caching again.
func (c *rewriteCache) lookupAll(dst []*rewrite, req *remotewrite.Request, consulted bool) ([]*rewrite, bool) {
	series := req.Series
	if !consulted && c.admit.futile() {
		for range series {
			dst = append(dst, nil)
		}
		cacheMisses.Add(len(series))
		cacheSkipped.Add(len(series))
		c.counted(len(series), 0)
		return dst, false
	}
	hits := 0
	c.mu.RLock()
	for i := range series {
		e, _ := series[i].Known.(*rewrite)
		if e != nil && e.owner != c {
			e = nil
		}
		if e == nil && !consulted {
			e, _ = c.lookupLocked(i, series[i].LabelFields())
		}
		if e != nil {
			hits++
		}
		dst = append(dst, e)
	}
	c.mu.RUnlock()
	cacheHits.Add(hits)
	cacheMisses.Add(len(series) - hits)
	c.counted(len(series), hits)
	return dst, true
}

// counted adds one request's lookups and hits to the admission, and relaxes
// it when it is due.
func (c *rewriteCache) counted(lookups, hits int) {
	if c.admit.counted(lookups, hits) {
		c.relax()
	}
}

// relax relaxes the admission (see admission.relax) with the memory the
// cache would hold if it had stored every admitted series at its first
// sighting (see doorkeeper): that is the admitted part of the series set.
func (c *rewriteCache) relax() {
	c.mu.Lock()
	before := c.budget()
	c.admit.relax(c.curBytes+c.prevBytes+c.sighted+c.prevSighted, 2*c.genBytes)
	if c.budget() != before {
		c.present.rebuild(c.budget(), c.cur, c.prev)
		c.report()
	}
	c.mu.Unlock()
}

// budget is the memory the cache may hold now (both generations): its
// full budget less the admission's halvings. The caller holds mu.
func (c *rewriteCache) budget() int { return 2 * c.admit.generationBytes(c.genBytes) }

// lookupLocked returns the rewrite of the encoded label set key of the
// series at position index of a request, or nil: the hint of the position
// when it matches, else the maps' (which then becomes the hint), and the
// key's keyHash when the maps were consulted (else 0). The caller holds mu
// for reading.
func (c *rewriteCache) lookupLocked(index int, key []byte) (*rewrite, uint64) {
	if key == nil {
		return nil, 0
	}
	var hint *atomic.Pointer[rewrite]
	if index < len(c.hints) && (index < hintProbes || c.hintsPay.Load()) {
		hint = &c.hints[index]
		e := hint.Load()
		hit := e != nil && e.key == string(key)
		if index < hintProbes {
			c.probedHint(hit)
		}
		if hit {
			return e, 0
		}
	}
	e, h := c.getLocked(key)
	if e != nil && hint != nil {
		hint.Store(e)
	}
	return e, h
}

// getLocked returns the rewrite of an encoded label set, or nil, and the
// key's keyHash (0 for a nil key); the caller holds mu for reading.
func (c *rewriteCache) getLocked(key []byte) (*rewrite, uint64) {
	if key == nil {
		return nil, 0
	}
	h := keyHash(key)
	if !c.present.mayHold(h) {
		return nil, h
	}
	if e := c.cur[string(key)]; e != nil {
		return e, h
	}
	return c.prev[string(key)], h
}

// BeginKnown, Known and EndKnown implement remotewrite.KnownLabelSets, so
// the decoder skips parsing the labels of series this router has rewritten
// before (see remotewrite.DecodeWriteRequestKnown).
func (r *Router) BeginKnown() bool { return r.cache.BeginKnown() }

// EndKnown ends the lookups begun by BeginKnown.
func (r *Router) EndKnown() { r.cache.EndKnown() }

// Known returns the cached rewrite of labelFields, or nil, and the keyHash
// it computed (see remotewrite.KnownLabelSets). It must be called between
// BeginKnown and EndKnown.
func (r *Router) Known(index int, labelFields []byte) (any, bool, uint64) {
	return r.cache.Known(index, labelFields)
}

// consulted reports whether the decoder of req looked its series up in c:
// the handler decodes with the router (whose lookups are its cache's) or
// with a path tenant's cache (see KnownForPath).
func (r *Router) consulted(req *remotewrite.Request, c *rewriteCache) bool {
	switch k := req.KnownBy.(type) {
	case *Router:
		return k == r && c == r.cache
	case *rewriteCache:
		return k == c
	}
	return false
}

// storeFresh stores the rewrites computed during w's request (w.fresh), each
// under its key, counts the request's first sightings (w.sighted) towards
// the generation, and empties both.
func (c *rewriteCache) storeFresh(w *work) {
	if len(w.fresh) == 0 && w.sighted == 0 {
		return
	}
	c.mu.Lock()
	c.sighted += w.sighted
	w.sighted = 0
	c.fillGeneration()
	for _, e := range w.fresh {
		// An entry another request stored meanwhile is replaced by its
		// equal, and only a new key adds memory; either way the key
		// takes its presence slot (back).
		n := len(c.cur)
		c.cur[e.key] = e
		c.present.add(e.hash)
		if len(c.cur) == n {
			continue
		}
		c.curBytes += entryBytes(e)
		// The entry's first sighting was counted; the entry replaces it.
		c.sighted = max(0, c.sighted-sightingBytes(len(e.key)))
		c.fillGeneration()
	}
	c.report()
	c.mu.Unlock()
	clear(w.fresh)
	w.fresh = w.fresh[:0]
}

// fillGeneration starts a new generation when the current one is full:
// its entries and the first sightings (see doorkeeper) have reached the
// admission's generation size. The caller holds mu.
func (c *rewriteCache) fillGeneration() {
	if c.curBytes+c.sighted < c.admit.generationBytes(c.genBytes) {
		return
	}
	c.prev, c.cur = c.cur, make(map[string]*rewrite, len(c.cur))
	c.prevBytes, c.curBytes = c.curBytes, 0
	c.prevSighted, c.sighted = c.sighted, 0
	c.door.rotate()
	c.admit.generationFilled()
	c.present.rebuild(c.budget(), c.prev)
}

// admitsNew reports whether the new label set whose keyHash is h and
// whose key is keyLen bytes is to be stored: the admission admits it and
// the doorkeeper has seen it before. A first sighting is counted in w
// towards the generation (see sightingBytes and storeFresh).
func (c *rewriteCache) admitsNew(w *work, h uint64, keyLen int) bool {
	if !c.admit.admits(h) {
		return false
	}
	if c.door.seenBefore(h) {
		return true
	}
	w.sighted += sightingBytes(keyLen)
	return false
}

// sightingBytes is what a first sighting of a key of keyLen bytes counts
// towards the generation: the smallest entry the key makes. Storing the
// key at its second sighting takes it back (see storeFresh), so that a
// series counts once, as a sighting and then as its entry.
func sightingBytes(keyLen int) int { return keyLen + entryOverhead }

// routeAllCached routes every series of a request through cache c (the
// router's, or a path tenant's with its override labels).
func (r *Router) routeAllCached(w *work, c *rewriteCache, req *remotewrite.Request, override []remotewrite.Label) {
	series := req.Series
	w.hits, w.storing = c.lookupAll(w.hits[:0], req, r.consulted(req, c))
	for i := range series {
		s := &series[i]
		e := w.hits[i]
		if e == nil {
			e = r.routeAndRemember(w, c, s, override)
		}
		switch {
		case e == nil:
		case e.drop != dropNone:
			w.pipe.countDrop(e.drop, s)
		default:
			if e.warnings != nil && w.hits[i] != nil { // a miss raised them already
				w.repeats.note(e)
			}
			if w.tenants.on {
				w.tenants.note(e, s)
			}
			b := w.batchOf(e.ep, e.tenant)
			b.buf = remotewrite.AppendSeriesLabelFields(b.buf, e.labelFields, s)
			b.count(s, e.queryKey)
		}
	}
	c.storeFresh(w)
}

// routeAndRemember routes a series the cache does not know. It returns the
// rewrite to store and to append with (a drop entry for a series that
// relabeling drops), or nil when the series was appended (or its drop
// counted) already because it is not to be cached: its labels are not
// contiguous in its encoding, the cache does not admit it, or the request
// stores nothing (w.storing, see lookupAll).
func (r *Router) routeAndRemember(w *work, c *rewriteCache, s *remotewrite.Series, override []remotewrite.Label) *rewrite {
	var key []byte
	var h uint64
	if w.storing {
		key = s.LabelFields()
	}
	if key != nil {
		if h = seriesKeyHash(s, key); !c.admitsNew(w, h, len(key)) {
			key = nil
		}
	}
	res := r.resolve(w, s, override)
	if res.drop != dropNone {
		if key == nil {
			w.pipe.countDrop(res.drop, s)
			return nil
		}
		e := &rewrite{drop: res.drop, key: string(key), hash: h, owner: c}
		w.fresh = append(w.fresh, e)
		return e
	}
	if key == nil {
		w.tenants.incomplete = true // no rewrite to note the tenant of
		w.appendResolved(s, &res)
		return nil
	}
	var k string
	var fields []byte
	if res.fields != nil {
		k, fields = keyAndCopy(key, res.fields)
	} else {
		k, fields = keyAndFields(key, res.labels)
	}
	e := r.remember(w, c, k, h, fields, res.labels, res.tenant)
	e.reordered = s.Reordered
	e.queryKey = res.queryKey
	return e
}

// keyAndFields returns a copy of key as a string and the encoded labels,
// in one allocation instead of two: a new series' entry is made of them
// (and its struct), and under series churn every allocation counts. Both
// are immutable, like the entry; the fields' capacity ends at their length,
// so an append to them copies instead of writing past them.
func keyAndFields(key []byte, labels []remotewrite.Label) (string, []byte) {
	buf := make([]byte, 0, len(key)+remotewrite.LabelFieldsLen(labels))
	buf = remotewrite.AppendLabelFields(append(buf, key...), labels)
	return unsafe.String(unsafe.SliceData(buf), len(key)), buf[len(key):len(buf):len(buf)]
}

// keyAndCopy is keyAndFields for label fields encoded already.
func keyAndCopy(key, fields []byte) (string, []byte) {
	buf := make([]byte, 0, len(key)+len(fields))
	buf = append(append(buf, key...), fields...)
	return unsafe.String(unsafe.SliceData(buf), len(key)), buf[len(key):len(buf):len(buf)]
}

// sameBytes is keyAndFields for an unchanged label set: the encoded labels
// are the key's own bytes, not a copy of them.
func sameBytes(key []byte) (string, []byte) {
	k := string(key)
	return k, unsafe.Slice(unsafe.StringData(k), len(k))
}

// entryBytes approximates the memory of e: its key, its fields unless they
// share the key's bytes (sameBytes), the struct and map slot, its warnings.
func entryBytes(e *rewrite) int {
	n := len(e.key) + entryOverhead + len(e.warnings)*warningOverhead
	if len(e.labelFields) > 0 && unsafe.SliceData(e.labelFields) != unsafe.StringData(e.key) {
		n += len(e.labelFields)
	}
	return n
}

// remember makes the rewrite of the series whose encoded labels are key
// (its output labels out, encoded as labelFields, going to tenant t, with
// the warnings in w.warns) and adds it to w.fresh, to be stored in c at the
// end of the request.
func (r *Router) remember(w *work, c *rewriteCache, key string, hash uint64, labelFields []byte, out []remotewrite.Label, t Tenant) *rewrite {
	e := &rewrite{key: key, hash: hash, labelFields: labelFields, tenant: t, ep: w.endpointOf(t), owner: c,
		warnings: slices.Clone(w.warns)}
	if r.mode == MultitenantMode {
		e.upTenants = upTenants(out)
	}
	w.fresh = append(w.fresh, e)
	return e
}
