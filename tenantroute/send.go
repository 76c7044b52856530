package tenantroute

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/scoreproxy/scoreproxy/remotewrite"
)

// send compresses every batch and sends them, in parallel when the request
// was split, then maps the upstream answers to the producer's answer.
// started is when the request's routing began: the serialization time
// reported per batch is its share of the routing and compression, measured
// once per request rather than with two clock reads per batch.
func (r *Router) send(ctx context.Context, w *work, started time.Time) error {
	if len(w.batches) == 0 {
		return nil
	}
	// Compress every batch before any is sent: a batch may join a group
	// another request's goroutine leads, which only concatenates
	// compressed blocks (see sendBatch and joinSnappy).
	w.compressAll()
	serialize := time.Since(started) / time.Duration(len(w.batches))
	if cap(w.results) < len(w.batches) {
		w.results = make([]remotewrite.SendResult, len(w.batches))
	}
	w.results = w.results[:len(w.batches)]
	if len(w.batches) == 1 {
		w.results[0] = r.sendBatch(ctx, &w.batches[0], serialize)
	} else {
		r.sendParallel(ctx, w, serialize)
	}
	if ack := remotewrite.Ack(w.results); ack != nil {
		return ack
	}
	return nil
}

// sendParallel sends all batches with at most r.parallel in flight. A few
// workers take batches in turn, so a request split over a thousand tenants
// costs a thousand sends, not a thousand goroutines.
func (r *Router) sendParallel(ctx context.Context, w *work, serialize time.Duration) {
	f := &w.fanout
	workers := min(r.parallel, len(w.batches))
	// Workers claim a few batches at a time when there are many, so that
	// a request split over a thousand tenants does not make them contend
	// for the counter a thousand times; a few batches still spread evenly.
	f.start(r, w.batches, w.results, ctx, serialize, max(1, len(w.batches)/(workers*8)))
	f.done.Add(workers - 1)
	for range workers - 1 {
		r.workers.run(f.helper)
	}
	f.sendAll() // the request's own goroutine is one of the workers
	f.done.Wait()
	f.ctx, f.batches, f.results = nil, nil, nil // the pool keeps neither the producer's context nor extra references
}

// fanout is what the workers of one request's sendParallel share. It lives
// in the request's pooled work, and its helper is bound once, so that
// sending a split request allocates nothing (a closure per request did).
type fanout struct {
	router    *Router
	batches   []batch                  // the request's, sent in turn
	results   []remotewrite.SendResult // results[i] is batches[i]'s answer
	ctx       context.Context
	serialize time.Duration
	chunk     int            // batches claimed at a time
	done      sync.WaitGroup // the helpers of the request
	helper    func()         // sendAll for a send worker, then done.Done
	// next is the first batch not claimed yet. The workers write it on
	// every claim, so it has a cache line to itself and the claims do not
	// invalidate the fields above (or the work's fields around it) on the
	// other core. An A/B against the unpadded layout was within noise;
	// the padding is kept as the layout that cannot share.
	_    [64]byte
	next atomic.Int64
	_    [56]byte
}

func (f *fanout) start(r *Router, batches []batch, results []remotewrite.SendResult, ctx context.Context, serialize time.Duration, chunk int) {
	f.router, f.batches, f.results, f.ctx, f.serialize, f.chunk = r, batches, results, ctx, serialize, chunk
	f.next.Store(0)
	if f.helper == nil {
		f.helper = func() { defer f.done.Done(); f.sendAll() }
	}
}

// sendAll claims batches until none is left and sends them. What it reads
// of f is read once: only next is written while the workers run.
func (f *fanout) sendAll() {
	r, ctx, serialize, chunk := f.router, f.ctx, f.serialize, f.chunk
	batches, results := f.batches, f.results
	for {
		first := int(f.next.Add(int64(chunk))) - chunk
		if first >= len(batches) {
			return
		}
		for i := first; i < min(first+chunk, len(batches)); i++ {
			results[i] = r.sendBatch(ctx, &batches[i], serialize)
		}
	}
}

// sendBody sends one already compressed body as the request's only batch.
func (r *Router) sendBody(ctx context.Context, w *work, b *batch, body []byte, serialize time.Duration) error {
	w.results = append(w.results[:0], r.send1(ctx, b, body, serialize))
	if ack := remotewrite.Ack(w.results); ack != nil {
		return ack
	}
	return nil
}

// send1 sends the compressed body of batch b and counts what was forwarded.
func (r *Router) send1(ctx context.Context, b *batch, body []byte, serialize time.Duration) remotewrite.SendResult {
	ep := b.ep
	if ep == nil {
		ep = r.endpoints.get(b.tenant)
	}
	stats := b.stats()
	stats.SerializeSeconds = serialize.Seconds()
	res := r.sender.Send(ctx, ep.url, body, stats)
	if res.OK() {
		ep.seriesForwarded.Add(b.series)
		ep.samplesForwarded.Add(b.samples)
	}
	return res
}
