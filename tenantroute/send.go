package tenantroute

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/s2"

	"github.com/scoreproxy/scoreproxy/remotewrite"
)

// send compresses every batch and sends them, in parallel when the request
// was split, then maps the upstream answers to the producer's answer.
func (r *Router) send(ctx context.Context, w *work) error {
	if len(w.batches) == 0 {
		return nil
	}
	if cap(w.results) < len(w.batches) {
		w.results = make([]remotewrite.SendResult, len(w.batches))
	}
	w.results = w.results[:len(w.batches)]
	if len(w.batches) == 1 {
		w.results[0] = r.sendBatch(ctx, &w.batches[0])
	} else {
		r.sendParallel(ctx, w)
	}
	if ack := remotewrite.Ack(w.results); ack != nil {
		return ack
	}
	return nil
}

// sendParallel sends all batches with at most r.parallel in flight. A few
// workers take batches in turn, so a request split over a thousand tenants
// costs a thousand sends, not a thousand goroutines.
func (r *Router) sendParallel(ctx context.Context, w *work) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(r.parallel, len(w.batches)) {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < len(w.batches); i = int(next.Add(1) - 1) {
				w.results[i] = r.sendBatch(ctx, &w.batches[i])
			}
		})
	}
	wg.Wait()
}

// sendBatch compresses one batch into its reused buffer and sends it.
func (r *Router) sendBatch(ctx context.Context, b *batch) remotewrite.SendResult {
	start := time.Now()
	if n := s2.MaxEncodedLen(len(b.buf)); cap(b.compressed) < n {
		b.compressed = make([]byte, n)
	}
	// EncodeSnappy writes the plain snappy block format remote write requires
	// (any snappy decoder reads it), faster than golang/snappy.
	b.compressed = s2.EncodeSnappy(b.compressed[:cap(b.compressed)], b.buf)
	return r.send1(ctx, b, b.compressed, time.Since(start))
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
	ep := r.endpoints.get(b.tenant)
	stats := remotewrite.BatchStats{Series: b.series, Samples: b.samples, SerializeSeconds: serialize.Seconds()}
	res := r.sender.Send(ctx, ep.url, body, stats)
	if res.OK() {
		ep.seriesForwarded.Add(b.series)
		ep.samplesForwarded.Add(b.samples)
	}
	return res
}
