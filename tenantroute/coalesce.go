package tenantroute

import (
	"context"
	"encoding/binary"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/klauspost/compress/s2"

	"github.com/scoreproxy/scoreproxy/remotewrite"
)

// maxGroupBytes bounds the uncompressed size of one coalesced upstream
// request: well under vminsert's default -maxInsertRequestSize (32 MB), and
// small enough that one request does not hold much memory.
const maxGroupBytes = 8 << 20

var (
	coalescedBatches = metrics.NewCounter("scoreproxy_upstream_batches_coalesced_total")
	coalescedSplits  = metrics.NewCounter("scoreproxy_upstream_coalesced_resends_total")
)

// lane coalesces the batches that concurrent producer requests send to one
// endpoint. Up to limit upstream requests are in flight per endpoint; a
// batch that arrives while all of them are busy waits, and when a send
// finishes, every waiting batch goes out together in one upstream request
// (concatenated WriteRequests are a WriteRequest). An idle endpoint adds no
// latency; a busy one gets fewer, larger requests, which is what makes
// splitting one request into many tenants cheap: the per-request cost of
// HTTP is paid per group, not per producer request and tenant.
//
// Each batch's producer still gets its own batch's answer: a group that the
// upstream rejects as bad (4xx other than 429) is re-sent batch by batch, so
// one producer's bad data never fails another producer's request.
type lane struct {
	mu      sync.Mutex
	limit   int      // upstream requests in flight at most
	sending int      // guarded by mu: upstream requests in flight
	waiting []*batch // guarded by mu: batches waiting for a send slot, in arrival order
}

// sendBatch sends batch b through its endpoint's lane and returns b's answer.
// The batch is compressed already (see Router.send), so that a group's
// leader only has to join compressed blocks (see joinSnappy).
func (r *Router) sendBatch(ctx context.Context, b *batch, serialize time.Duration) remotewrite.SendResult {
	l := &b.ep.lane
	l.mu.Lock()
	if l.sending < l.limit {
		l.sending++
		l.mu.Unlock()
		b.group = append(b.group[:0], b)
	} else {
		if b.done == nil {
			b.done = make(chan struct{}, 1)
		}
		b.group = b.group[:0]
		l.waiting = append(l.waiting, b)
		l.mu.Unlock()
		<-b.done
		if len(b.group) == 0 { // another batch's goroutine sent b
			return b.result
		}
	}
	r.sendGroup(ctx, b, serialize)
	r.handOff(l)
	return b.result
}

// handOff passes the send slot just freed to the oldest waiting batch,
// making it the leader of every batch waiting (up to maxGroupBytes), or
// releases the slot when nothing waits. The leader's goroutine does the
// sending: it was blocked anyway, and the batch that freed the slot returns
// to its producer at once.
func (r *Router) handOff(l *lane) {
	l.mu.Lock()
	if len(l.waiting) == 0 {
		l.sending--
		l.mu.Unlock()
		return
	}
	leader := l.waiting[0]
	leader.group = append(leader.group[:0], leader)
	size, n := len(leader.buf), 1
	for ; n < len(l.waiting) && size+len(l.waiting[n].buf) <= maxGroupBytes; n++ {
		size += len(l.waiting[n].buf)
		leader.group = append(leader.group, l.waiting[n])
	}
	rest := copy(l.waiting, l.waiting[n:])
	clear(l.waiting[rest:])
	l.waiting = l.waiting[:rest]
	l.mu.Unlock()
	leader.done <- struct{}{}
}

// sendGroup sends the batches of leader.group as one upstream request and
// gives every batch its answer; the other batches' goroutines are woken.
// After waking a batch sendGroup never touches it again: its producer may
// already be reusing it. Every batch of the group is compressed already.
func (r *Router) sendGroup(ctx context.Context, leader *batch, serialize time.Duration) {
	group := leader.group
	defer func() { leader.group = leader.group[:0] }()
	if len(group) == 1 {
		leader.result = r.send1(ctx, leader, leader.compressed, serialize)
		return
	}
	// The group's requests come from several producers: one producer going
	// away must not fail the others' data.
	ctx = context.WithoutCancel(ctx)
	coalescedBatches.Add(len(group))
	sum := batch{ep: leader.ep, tenant: leader.tenant, keys: leader.groupKeys[:0]}
	leader.joined = joinSnappy(leader.joined[:0], group)
	for _, b := range group {
		sum.series += b.series
		sum.samples += b.samples
		sum.keys = sum.keys.Merge(b.keys)
	}
	leader.groupKeys = sum.keys
	res := r.send1(ctx, &sum, leader.joined, serialize)
	if rejectedAsBad(res) {
		coalescedSplits.Inc()
		for _, b := range group {
			b.result = r.send1(ctx, b, b.compressed, 0)
		}
	} else {
		for _, b := range group {
			b.result = res
		}
	}
	for _, b := range group[1:] {
		b.done <- struct{}{}
	}
}

// joinSnappy appends to dst one snappy block that decodes to the
// concatenation of the batches' uncompressed bodies, without compressing
// again. A snappy block is the uncompressed length as a uvarint followed by
// literal and copy elements whose copy offsets are relative to the current
// output position and never reach before the block's start; so the element
// streams of several blocks, concatenated under a header with the total
// length, decode to the blocks' outputs one after another.
func joinSnappy(dst []byte, group []*batch) []byte {
	total := 0
	for _, b := range group {
		total += len(b.buf)
	}
	dst = binary.AppendUvarint(dst, uint64(total))
	for _, b := range group {
		_, n := binary.Uvarint(b.compressed)
		dst = append(dst, b.compressed[n:]...)
	}
	return dst
}

// rejectedAsBad reports whether the upstream refused a request for its
// content (4xx other than 429), which one batch of a group may cause alone.
func rejectedAsBad(res remotewrite.SendResult) bool {
	return res.StatusCode >= 400 && res.StatusCode < 500 && res.StatusCode != 429
}

// compressAll snappy-encodes every batch into the work's one buffer for
// compressed blocks. s2 needs room for the worst case (a little more than
// the input) to encode in place, but a block takes a fifth of that on
// typical data; a buffer per batch sized for the worst case held five
// times the memory it used, for every batch of every pooled work. Here the
// blocks follow each other and only the block being encoded needs the
// headroom. EncodeSnappy writes the plain snappy block format remote write
// requires (any snappy decoder reads it), faster than golang/snappy.
func (w *work) compressAll() {
	out := w.compressed[:0]
	for i := range w.batches {
		b := &w.batches[i]
		need := s2.MaxEncodedLen(len(b.buf))
		if cap(out)-len(out) < need {
			grown := make([]byte, len(out), max(2*cap(out), len(out)+need))
			copy(grown, out)
			out = grown
		}
		b.compressed = s2.EncodeSnappy(out[len(out):len(out)+need], b.buf)
		out = out[:len(out)+len(b.compressed)]
	}
	w.compressed = out
	// Slice again now: the buffer may have moved while it grew, and only
	// the blocks' lengths are still right.
	start := 0
	for i := range w.batches {
		b := &w.batches[i]
		end := start + len(b.compressed)
		b.compressed = out[start:end:end]
		start = end
	}
}
