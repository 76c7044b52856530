package queue

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	"github.com/scoreproxy/scoreproxy/remotewrite"
)

// maxGroupBlocks bounds the blocks of one group whatever their size, so a
// backlog of tiny blocks does not make one huge slice.
const maxGroupBlocks = 1024

// flight is one upstream request between the reader and the acknowledger: a
// group of consecutive items of the endpoint (blocks, and damaged records
// passed on the way), delivered and acknowledged together.
type flight struct {
	items []item
	bufs  []*[]byte     // bufs[i] holds items[i].body; back to the pool once the group is done
	done  chan struct{} // closed when every block is delivered or set aside (ok), or abandoned at shutdown
	ok    bool
}

// blocks yields the blocks of the group, in order.
func (f *flight) blocks(yield func([]byte) bool) {
	for i := range f.items {
		if !f.items[i].skip && !yield(f.items[i].body) {
			return
		}
	}
}

// held is an item read but left for the next group, because it would have
// made the current one too large.
type held struct {
	it  item
	buf *[]byte
}

// deliverLoop is the delivery worker. It reads the blocks in order, groups
// the ones already queued (up to MaxBatchBytes) and dispatches each group to
// the upstream as one request, with at most DeliveryConcurrency groups in
// flight (1: the next is sent only once the previous is delivered); a second
// goroutine acknowledges them in order, so the read offset never passes an
// undelivered block. It returns when ctx ends; undelivered blocks stay queued.
func (e *endpoint) deliverLoop(ctx context.Context) {
	defer close(e.workerDone)
	k := e.q.opts.DeliveryConcurrency
	slots := make(chan struct{}, k) // taken per group read, given back when it is acknowledged
	window := make(chan *flight, k) // groups in log order, to the acknowledger
	ackDone := make(chan struct{})
	go func() { defer close(ackDone); e.ackLoop(window, slots) }()
	var inflight sync.WaitGroup
	e.readLoop(ctx, window, slots, &inflight)
	inflight.Wait()
	close(window)
	<-ackDone
}

// readLoop reads groups and starts their delivery until ctx ends.
func (e *endpoint) readLoop(ctx context.Context, window chan<- *flight, slots chan struct{}, inflight *sync.WaitGroup) {
	var next held
	for {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return
		}
		f, err := e.readGroup(ctx, &next)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			<-slots
			e.q.logLimit.Warn(e.q.logger, "read "+e.safeURL, "queue: cannot read a segment; trying again", "url", e.safeURL, "error", err)
			if !sleep(ctx, e.q.backoff.min) {
				return
			}
			continue
		}
		window <- f
		inflight.Add(1)
		go func() {
			defer inflight.Done()
			f.ok = e.deliverGroup(ctx, f)
			close(f.done)
		}()
	}
}

// readGroup waits for the next item, then adds the items already committed
// after it while the group's blocks decode to at most MaxBatchBytes (a block
// larger than that goes alone). An item that does not fit is kept in next.
func (e *endpoint) readGroup(ctx context.Context, next *held) (*flight, error) {
	f := &flight{done: make(chan struct{})}
	var size, blocks int64
	for {
		h := *next
		*next = held{}
		if h.buf == nil {
			h.buf = e.q.getBuf()
			var err error
			if len(f.items) == 0 {
				h.it, *h.buf, err = e.cur.next(ctx, (*h.buf)[:0])
			} else {
				h.it, *h.buf, err = e.cur.poll((*h.buf)[:0])
			}
			if err != nil {
				e.q.putBuf(h.buf)
				if len(f.items) > 0 {
					return f, nil // errNoneCommitted, or a read error the next group meets again
				}
				return nil, err
			}
		}
		n := decodedSize(h.it)
		if len(f.items) > 0 && !h.it.skip && (size+n > e.q.opts.MaxBatchBytes || blocks == maxGroupBlocks) {
			*next = h
			return f, nil
		}
		f.items, f.bufs = append(f.items, h.it), append(f.bufs, h.buf)
		if !h.it.skip {
			size, blocks = size+n, blocks+1
		}
	}
}

// decodedSize is the size a block decodes to, as its snappy header says (its
// own size when the header is invalid); 0 for a damaged record.
func decodedSize(it item) int64 {
	if it.skip {
		return 0
	}
	if n, _, ok := snappyHeader(it.body); ok {
		return int64(n)
	}
	return int64(len(it.body))
}

// ackLoop acknowledges the groups in log order as their deliveries finish.
// After one was abandoned (shutdown) it acknowledges nothing more, so the
// read offset stays before every undelivered block.
func (e *endpoint) ackLoop(window <-chan *flight, slots <-chan struct{}) {
	stopped := false
	for f := range window {
		<-f.done
		stopped = stopped || !f.ok
		if !stopped {
			e.cur.ackAll(f.items)
			e.reportSkipped(f.items)
		}
		for _, b := range f.bufs {
			e.q.putBuf(b)
		}
		<-slots
	}
}

// deliverGroup delivers the blocks of f as one upstream request (see
// splice.go), keeping their order. When the upstream refuses the group as bad
// data, the blocks are sent again one by one, so that only the bad ones are
// set aside. false when ctx ended first.
func (e *endpoint) deliverGroup(ctx context.Context, f *flight) bool {
	var stats remotewrite.BatchStats // SerializeSeconds 0: a resend
	var first *block
	n := 0
	for i := range f.items {
		if it := &f.items[i]; !it.skip {
			n++
			first = &it.block
			stats.Add(it.stats())
		}
	}
	switch n {
	case 0:
		return true
	case 1:
		return e.deliver(ctx, *first)
	}
	buf := e.q.getGroupBuf()
	defer e.q.groupBufs.Put(buf)
	body, ok := spliceSnappy((*buf)[:0], f.blocks)
	*buf = body
	if ok {
		res, o, alive := e.send(ctx, body, stats)
		if !alive || o == delivered {
			return alive
		}
		e.q.logLimit.Warn(e.q.logger, "split "+e.safeURL, "queue: upstream refused a group of blocks; sending them one by one to set aside only the bad ones",
			"url", e.safeURL, "status", res.StatusCode, "message", res.Message, "blocks", n)
	}
	for i := range f.items {
		if it := f.items[i]; !it.skip && !e.deliver(ctx, it.block) {
			return false
		}
	}
	return true
}

// deliver sends b until the upstream takes it or refuses it for good (then
// it is set aside); false when ctx ended first.
func (e *endpoint) deliver(ctx context.Context, b block) bool {
	res, o, alive := e.send(ctx, b.body, b.stats())
	if !alive || o == delivered {
		return alive
	}
	return e.setAside(ctx, b, res)
}

// send sends body until the upstream takes it (delivered) or refuses it as
// bad data (reject, with the upstream's answer), retrying everything else
// with backoff; alive is false when ctx ended first.
func (e *endpoint) send(ctx context.Context, body []byte, stats remotewrite.BatchStats) (res remotewrite.SendResult, o outcome, alive bool) {
	for attempt := 0; ; attempt++ {
		woken := e.q.woken() // a Wake during the attempt cuts the wait after it
		res = e.q.upstream.Send(ctx, e.url, body, stats)
		if o = classify(res); o != retry {
			return res, o, true
		}
		if ctx.Err() != nil {
			return res, o, false
		}
		e.m.retries.Inc()
		wait := e.q.backoff.delay(attempt, res.RetryAfter, time.Now())
		e.q.logLimit.Warn(e.q.logger, "retry "+e.safeURL, "queue: upstream did not take a block; retrying",
			"url", e.safeURL, "status", res.StatusCode, "message", res.Message, "attempt", attempt+1, "wait", wait)
		if !sleepUnlessWoken(ctx, wait, woken) {
			return res, o, false
		}
	}
}

// setAside appends a refused block to the rejected-data file, counts and
// logs it. Only once it is written there may the queue forget it.
func (e *endpoint) setAside(ctx context.Context, b block, res remotewrite.SendResult) bool {
	rb := RejectedBlock{Time: time.Now().UTC(), URL: e.safeURL, Status: res.StatusCode, Message: res.Message,
		Enqueued: b.enqueued.UTC(), Series: b.series, Samples: b.samples, Body: b.body}
	for {
		err := e.rejected.add(rb)
		if err == nil {
			break
		}
		e.q.logLimit.Warn(e.q.logger, "rejected-file "+e.safeURL, "queue: cannot write the rejected-data file; keeping the block queued",
			"url", e.safeURL, "error", err)
		if !sleep(ctx, e.q.backoff.min) {
			return false
		}
	}
	e.m.rejected(res.StatusCode).Inc()
	e.q.logLimit.Warn(e.q.logger, fmt.Sprintf("rejected %s %d", e.safeURL, res.StatusCode),
		"queue: upstream refused a block as bad data; it is kept in the rejected-data file, not retried",
		"url", e.safeURL, "status", res.StatusCode, "message", res.Message, "series", b.series, "samples", b.samples,
		"file", filepath.Join(e.dir, rejectedFile))
	return true
}

// sleep waits d or until ctx ends; false when ctx ended.
func sleep(ctx context.Context, d time.Duration) bool {
	return sleepUnlessWoken(ctx, d, nil)
}

// sleepUnlessWoken waits d, or until woken is closed or ctx ends; false
// when ctx ended.
func sleepUnlessWoken(ctx context.Context, d time.Duration, woken <-chan struct{}) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-woken:
		return ctx.Err() == nil
	case <-ctx.Done():
		return false
	}
}
