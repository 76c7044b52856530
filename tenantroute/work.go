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
	tenant     Tenant // the endpoint's tenant (SplitMode), zero otherwise
	buf        []byte // uncompressed WriteRequest being built
	compressed []byte // snappy block of buf
	series     int
	samples    int // samples + histograms
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

// count adds series s to the batch's totals.
func (b *batch) count(s *remotewrite.Series) {
	b.series++
	b.samples += s.Samples + s.Histograms
}

// work is the per-request scratch state of a Router, reused across requests
// so that routing allocates nothing per series in the steady state.
type work struct {
	batches []batch        // in first-seen order; capacity kept across requests
	index   map[Tenant]int // tenant -> position in batches (SplitMode only)
	// last is the batch of the previous series: consecutive series usually
	// share a tenant, which saves the map lookup.
	last int

	input    []remotewrite.Label // labels of the current series when the decoder skipped them
	labels   []remotewrite.Label // rewritten labels of the current series
	values   []byte              // rendered label values of the current series
	stripped []remotewrite.Label // labels without the tenant labels (SplitMode)

	override    [2]remotewrite.Label // tenant labels from the request path
	overrideBuf []byte

	results []remotewrite.SendResult

	hits  []*rewrite   // cached rewrite of each series of the request, nil for a miss
	fresh []freshEntry // rewrites computed in this request, to cache at its end
}

func (w *work) reset() {
	w.batches = w.batches[:0]
	clear(w.index)
	w.last = -1
	w.results = w.results[:0]
}

// clearRefs drops references into the request body so it can be collected.
func (w *work) clearRefs() {
	clear(w.labels[:cap(w.labels)])
	clear(w.stripped[:cap(w.stripped)])
	clear(w.input[:cap(w.input)])
	clear(w.hits[:cap(w.hits)])
	w.override = [2]remotewrite.Label{}
}

func (w *work) retainedBytes() int {
	n := cap(w.values) + cap(w.overrideBuf)
	for _, b := range w.batches[:cap(w.batches)] {
		n += cap(b.buf) + cap(b.compressed)
	}
	return n
}

// batchFor returns the batch of tenant t, creating it (reusing an old slot's
// buffers) the first time t is seen in this request.
func (w *work) batchFor(t Tenant) *batch {
	if w.last >= 0 && w.batches[w.last].tenant == t {
		return &w.batches[w.last]
	}
	i, ok := w.index[t]
	if !ok {
		i = len(w.batches)
		if i < cap(w.batches) {
			w.batches = w.batches[:i+1]
		} else {
			w.batches = append(w.batches, batch{})
		}
		b := &w.batches[i]
		b.tenant, b.buf, b.compressed, b.series, b.samples = t, b.buf[:0], b.compressed[:0], 0, 0
		w.index[t] = i
	}
	w.last = i
	return &w.batches[i]
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
