package tenantroute

import (
	"strconv"

	"github.com/scoreproxy/scoreproxy/remotewrite"
)

// maxRetainedWork is the largest amount of buffer memory a pooled work keeps:
// a rare huge request should not pin its memory for the life of the process.
const maxRetainedWork = 64 << 20

// batch is the encoded WriteRequest for one upstream endpoint.
type batch struct {
	ep         *endpoint // where the batch goes
	tenant     Tenant    // the endpoint's tenant (SplitMode), zero otherwise
	buf        []byte    // uncompressed WriteRequest being built
	compressed []byte    // snappy block of buf, in the work's compressed buffer
	series     int
	samples    int // samples + histograms
	// keys splits series and samples by query key; keyPos[id] is the
	// position + 1 in keys of the key of id, 0 when the batch has none
	// of it (see count).
	keys   remotewrite.KeyTallies
	keyPos []int32

	// Coalescing (see lane): the answer to this batch, the batches this one
	// sends for when it leads a group, the group's concatenated bodies, and
	// the signal that the answer is ready or that this batch leads.
	result    remotewrite.SendResult
	group     []*batch
	joined    []byte
	groupKeys remotewrite.KeyTallies // the query keys of the group
	done      chan struct{}
}

// inputLabels returns the labels of s as received. The decoder leaves them
// unparsed for a series the rewrite cache knows (see
// remotewrite.DecodeWriteRequestKnown); they are parsed here when a path that
// cannot use the cache (a path tenant, say) needs them.
func (w *work) inputLabels(s *remotewrite.Series) []remotewrite.Label {
	if s.Labels != nil || s.Known == nil {
		return s.Labels
	}
	w.input = remotewrite.AppendLabels(w.input[:0], s.LabelFields())
	return w.input
}

// stats returns what the batch holds, for the writer metrics.
func (b *batch) stats() remotewrite.BatchStats {
	return remotewrite.BatchStats{Series: b.series, Samples: b.samples, QueryKeys: b.keys}
}

// work is the per-request scratch state of a Router, reused across requests
// so that routing allocates nothing per series in the steady state.
type work struct {
	endpoints *endpointCache
	batches   []batch // in first-seen order; capacity kept across requests
	// slots maps endpoint ids to positions in batches: slots[id] is valid
	// when its gen is the request's gen, so nothing is cleared per request.
	slots []batchSlot
	gen   uint32
	// index maps the tenants of endpoints without an id (the endpoint cache
	// was full) to positions in batches.
	index map[Tenant]int
	// last is the batch of the previous series: consecutive series often
	// share a tenant, which saves the lookup.
	last int

	// storing is whether the request's new series may be stored in the
	// cache it was looked up in (see rewriteCache.lookupAll).
	storing bool

	input    []remotewrite.Label // labels of the current series when the decoder skipped them
	labels   []remotewrite.Label // rewritten labels of the current series
	values   []byte              // rendered label values of the current series
	spliced  []byte              // output label fields of the current series (see splice)
	stripped []remotewrite.Label // labels without the tenant labels (SplitMode)
	pipe     pipeScratch         // relabeling scratch and drop counts

	override    [2]remotewrite.Label // tenant labels from the request path
	overrideBuf []byte

	results []remotewrite.SendResult
	fanout  fanout // the send workers' shared state while batches go out
	// compressed holds every batch's snappy block, one after another.
	compressed []byte

	hits  []*rewrite // cached rewrite of each series of the request, nil for a miss
	fresh []*rewrite // rewrites computed in this request, to cache at its end
	// sighted is the memory of the first sightings of this request (see
	// rewriteCache.admitsNew), counted by the cache at its end.
	sighted int

	recentKeys [8]queryKey // the query keys found last, by keySlot (see queryKeyOf)
	// recentEndpoints are the endpoints found last, by tenantSlot (see
	// endpointOf).
	recentEndpoints [8]tenantEndpoint
	warns           []warning   // tenant warnings of the series being resolved
	repeats         repeats     // warnings of cached series seen in this request
	tenants         tenantNotes // upstream tenants of a guarded multitenant request
}

// batchSlot is the position in work.batches of one endpoint's batch in the
// request of generation gen.
type batchSlot struct {
	gen uint32
	pos int32
}

func (w *work) reset() {
	w.batches = w.batches[:0]
	if len(w.index) > 0 {
		clear(w.index)
	}
	w.gen++
	if w.gen == 0 { // wrapped: old slots could look current
		clear(w.slots)
		w.gen = 1
	}
	w.last = -1
	w.results = w.results[:0]
}

// clearRefs drops references into the request body so it can be collected.
func (w *work) clearRefs() {
	clear(w.labels[:cap(w.labels)])
	clear(w.stripped[:cap(w.stripped)])
	clear(w.input[:cap(w.input)])
	w.pipe.clearRefs()
	clear(w.hits[:cap(w.hits)])
	clear(w.warns[:cap(w.warns)])
	w.repeats = repeats{}
	w.tenants.reset(false)
	all := w.batches[:cap(w.batches)]
	for i := range all {
		all[i].ep = nil
		clear(all[i].groupKeys[:cap(all[i].groupKeys)])
		clear(all[i].group[:cap(all[i].group)])
	}
	w.override = [2]remotewrite.Label{}
}

func (w *work) retainedBytes() int {
	n := cap(w.values) + cap(w.overrideBuf) + cap(w.compressed)
	for _, b := range w.batches[:cap(w.batches)] {
		n += cap(b.buf) + cap(b.joined)
	}
	return n
}

// batchFor returns the batch of tenant t (see batchOf).
func (w *work) batchFor(t Tenant) *batch {
	if w.last >= 0 && w.batches[w.last].tenant == t {
		return &w.batches[w.last]
	}
	return w.batchOf(w.endpointOf(t), t)
}

// tenantEndpoint is an endpoint and the tenant it was looked up for.
type tenantEndpoint struct {
	tenant Tenant
	ep     *endpoint
}

// endpointOf returns the endpoint of tenant t. A request's series of
// different tenants interleave, and a split writes to a handful of
// tenants: the endpoint found last for t's slot of w.recentEndpoints is
// compared before the endpoint cache is consulted.
func (w *work) endpointOf(t Tenant) *endpoint {
	recent := &w.recentEndpoints[tenantSlot(t)]
	if recent.ep == nil || recent.tenant != t {
		*recent = tenantEndpoint{tenant: t, ep: w.endpoints.get(t)}
	}
	return recent.ep
}

// tenantSlot is the slot of w.recentEndpoints for tenant t.
func tenantSlot(t Tenant) int {
	return int(t.AccountID^t.ProjectID*7) & (len(work{}.recentEndpoints) - 1)
}

// batchOf returns the batch of endpoint ep (of tenant t), creating it
// (reusing an old slot's buffers) the first time ep is seen in this request.
func (w *work) batchOf(ep *endpoint, t Tenant) *batch {
	if w.last >= 0 && w.batches[w.last].ep == ep {
		return &w.batches[w.last]
	}
	var pos int
	var ok bool
	if ep.id >= 0 {
		pos, ok = w.slotOf(ep.id)
	} else {
		pos, ok = w.index[t]
	}
	if !ok {
		pos = w.newBatch(ep, t)
		if ep.id >= 0 {
			w.slots[ep.id] = batchSlot{gen: w.gen, pos: int32(pos)}
		} else {
			w.index[t] = pos
		}
	}
	w.last = pos
	return &w.batches[pos]
}

// slotOf returns the position of endpoint id's batch in this request, if it
// has one, growing slots to hold id.
func (w *work) slotOf(id int) (int, bool) {
	if id >= len(w.slots) {
		w.slots = append(w.slots, make([]batchSlot, id+1-len(w.slots))...)
	}
	if s := w.slots[id]; s.gen == w.gen {
		return int(s.pos), true
	}
	return 0, false
}

// newBatch appends an empty batch for ep, reusing the buffers of a slot
// left by an earlier request, and returns its position.
func (w *work) newBatch(ep *endpoint, t Tenant) int {
	pos := len(w.batches)
	if pos < cap(w.batches) {
		w.batches = w.batches[:pos+1]
	} else {
		w.batches = append(w.batches, batch{})
	}
	b := &w.batches[pos]
	b.ep, b.tenant, b.buf, b.compressed, b.series, b.samples = ep, t, b.buf[:0], nil, 0, 0
	b.resetKeys()
	return pos
}

// tenantLabels returns t as the sorted pair of vminsert tenant labels.
func (w *work) tenantLabels(t Tenant) []remotewrite.Label {
	buf := strconv.AppendUint(w.overrideBuf[:0], uint64(t.AccountID), 10)
	n := len(buf)
	buf = strconv.AppendUint(buf, uint64(t.ProjectID), 10)
	w.overrideBuf = buf
	w.override[0] = remotewrite.Label{Name: []byte(AccountLabel), Value: buf[:n]}
	w.override[1] = remotewrite.Label{Name: []byte(ProjectLabel), Value: buf[n:]}
	return w.override[:]
}

// addMetadata appends the request's metadata to every batch, or to the batch
// of defaultTenant when the request has metadata only (Prometheus sends
// metadata in requests of its own).
func (w *work) addMetadata(md [][]byte, defaultTenant Tenant) {
	if len(md) == 0 {
		return
	}
	if len(w.batches) == 0 {
		w.batchFor(defaultTenant)
	}
	for i := range w.batches {
		b := &w.batches[i]
		for _, m := range md {
			b.buf = remotewrite.AppendMetadata(b.buf, m)
		}
	}
}
