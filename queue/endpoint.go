package queue

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/scoreproxy/scoreproxy/remotewrite"
)

const (
	metaFile = "endpoint.json"
	// maxBatch bounds the records one fsync commits, so a burst cannot make
	// the first of them wait for an unbounded write.
	maxBatch = 256
)

// endpoint is the queue of one upstream URL: its log, the committer that
// appends to it and the worker that delivers from it.
type endpoint struct {
	q        *Queue
	url      string // as the router gave it; may carry credentials
	safeURL  string // for logs, metrics and results
	dir      string
	log      *segmentLog
	rejected rejectedLog
	m        endpointMetrics

	appends       chan *appendReq // to the committer; closed by Queue.Close
	freeBufs      chan *[]byte    // payload buffers, from the acknowledger back to the reader
	committerDone chan struct{}
	workerDone    chan struct{}
}

// appendReq is one Send waiting for its record to be durable.
type appendReq struct {
	rec  *[]byte    // the encoded record, from Queue.bufs; the committer returns it
	done chan error // buffered: the committer never blocks on a caller gone away
}

type endpointMeta struct {
	URL string `json:"url"`
}

// dirName derives an endpoint's directory name from its URL: readable (the
// URL without credentials, sanitized, cut to 80 bytes) and unique (a hash of
// the full URL, so two credentials for one URL do not share a queue).
func dirName(rawURL string) string {
	sum := sha256.Sum256([]byte(rawURL))
	safe := remotewrite.RedactURL(rawURL)
	if _, rest, ok := strings.Cut(safe, "://"); ok {
		safe = rest
	}
	name := []byte(safe)
	for i, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-') {
			name[i] = '_'
		}
	}
	return string(name[:min(len(name), 80)]) + "-" + hex.EncodeToString(sum[:8])
}

// writeMeta records the endpoint's URL durably, before any block is queued
// for it, so that a restart knows where the blocks go.
func writeMeta(dir, rawURL string) error {
	data, err := json.Marshal(endpointMeta{URL: rawURL})
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, metaFile+".tmp")
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600) // the URL may hold credentials
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, metaFile))
	}
	if err == nil {
		err = syncDir(dir)
	}
	return err
}

// readMeta returns the URL of the endpoint directory dir.
func readMeta(dir string) (string, error) {
	data, err := os.ReadFile(filepath.Join(dir, metaFile))
	if err != nil {
		return "", err
	}
	var m endpointMeta
	if err := json.Unmarshal(data, &m); err != nil || m.URL == "" {
		return "", fmt.Errorf("%s: not a queue endpoint file (%v)", filepath.Join(dir, metaFile), err)
	}
	return m.URL, nil
}

// openEndpoint opens (or creates) the endpoint directory dir of rawURL,
// reports what start-up found damaged, and starts its goroutines.
func (q *Queue) openEndpoint(rawURL, dir string) (*endpoint, error) {
	l, rep, err := openLog(dir, q.opts.SegmentBytes, q.opts.syncFile, &q.pending)
	if err != nil {
		return nil, err
	}
	e := &endpoint{q: q, url: rawURL, safeURL: remotewrite.RedactURL(rawURL), dir: dir, log: l,
		rejected:      rejectedLog{dir: dir, maxBytes: q.opts.MaxRejectedBytes, syncFile: q.opts.syncFile},
		appends:       make(chan *appendReq, maxBatch),
		freeBufs:      make(chan *[]byte, q.opts.DeliveryConcurrency),
		committerDone: make(chan struct{}), workerDone: make(chan struct{})}
	l.onSync = func(d time.Duration) { q.m.fsync.Update(d.Seconds()) }
	l.r.corrupt = func(c corruption) { e.reportCorruption(c, "while delivering") }
	for _, c := range rep.corrupted {
		e.reportCorruption(c, "at start-up")
	}
	e.m = q.m.register(e)
	if blocks, bytes, _ := l.pending(); blocks > 0 {
		q.logger.Info("queue: undelivered blocks found; delivering them first", "url", e.safeURL, "blocks", blocks, "bytes", bytes)
	}
	go e.commitLoop()
	go e.deliverLoop(q.workerCtx)
	return e, nil
}

// reportCorruption counts and logs a damaged stretch of a segment: a record
// torn by a crash in the middle of a write, or damaged on disk. The blocks in
// it are lost; the ones after it are delivered.
func (e *endpoint) reportCorruption(c corruption, when string) {
	lost := c.end - c.at.off
	e.q.m.corrupted.Inc()
	e.q.m.corruptedBytes.Add(int(lost))
	e.q.logger.Warn("queue: skipped a torn or corrupted record", "url", e.safeURL, "found", when,
		"segment", e.log.segPath(c.at.seg), "offset", c.at.off, "bytes_lost", lost)
}

// commitLoop is the committer: it takes every record waiting, writes them,
// fsyncs once and answers their Sends (group commit), until appends closes.
func (e *endpoint) commitLoop() {
	defer close(e.committerDone)
	batch := make([]*appendReq, 0, maxBatch)
	for req := range e.appends {
		batch = append(batch[:0], req)
		batch = drain(e.appends, batch)
		err := e.commitBatch(batch)
		for _, r := range batch {
			r.done <- err
		}
	}
}

// drain adds the requests already waiting in ch to batch, without blocking.
func drain(ch chan *appendReq, batch []*appendReq) []*appendReq {
	for len(batch) < maxBatch {
		select {
		case r, ok := <-ch:
			if !ok {
				return batch
			}
			batch = append(batch, r)
		default:
			return batch
		}
	}
	return batch
}

// commitBatch writes and fsyncs the batch. On error every Send of the batch
// fails (some records may still be delivered: duplicates, never losses).
func (e *endpoint) commitBatch(batch []*appendReq) error {
	var err error
	for _, r := range batch {
		if err == nil {
			err = e.log.write(*r.rec)
		}
		e.q.putBuf(r.rec)
	}
	if err == nil {
		err = e.log.commit()
	}
	if err != nil {
		e.q.logLimit.Warn(e.q.logger, "write "+e.safeURL, "queue: cannot write to disk; answering 503", "url", e.safeURL, "error", err)
	}
	return err
}

// flight is one item between the reader and the acknowledger.
type flight struct {
	it   item
	buf  *[]byte       // holds it.body; reused once the item is acknowledged
	done chan struct{} // closed when the block is delivered or set aside (ok), or abandoned at shutdown
	ok   bool
}

// deliverLoop is the delivery worker. It reads the blocks in order and
// dispatches each to the upstream, with at most DeliveryConcurrency in
// flight (1: the next is sent only once the previous is delivered); a second
// goroutine acknowledges them in order, so the read offset never passes an
// undelivered block. It returns when ctx ends; undelivered blocks stay queued.
func (e *endpoint) deliverLoop(ctx context.Context) {
	defer close(e.workerDone)
	k := e.q.opts.DeliveryConcurrency
	slots := make(chan struct{}, k) // taken per item read, given back when it is acknowledged
	window := make(chan *flight, k) // items in log order, to the acknowledger
	ackDone := make(chan struct{})
	go func() { defer close(ackDone); e.ackLoop(window, slots) }()
	var inflight sync.WaitGroup
	e.readLoop(ctx, window, slots, &inflight)
	inflight.Wait()
	close(window)
	<-ackDone
}

// readLoop reads items and starts their delivery until ctx ends.
func (e *endpoint) readLoop(ctx context.Context, window chan<- *flight, slots chan struct{}, inflight *sync.WaitGroup) {
	bufs := make([]*[]byte, 0, cap(slots))
	for {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return
		}
		f := &flight{buf: new([]byte), done: make(chan struct{})}
		if n := len(bufs); n > 0 {
			f.buf, bufs = bufs[n-1], bufs[:n-1]
		}
		it, buf, err := e.log.next(ctx, *f.buf)
		*f.buf, f.it = buf, it
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
		if it.segEnd {
			f.ok = true
			close(f.done)
			continue
		}
		inflight.Add(1)
		go func() {
			defer inflight.Done()
			f.ok = e.deliver(ctx, f.it.block)
			close(f.done)
		}()
		bufs = e.reclaim(bufs)
	}
}

// reclaim takes back the payload buffers of acknowledged items.
func (e *endpoint) reclaim(bufs []*[]byte) []*[]byte {
	for len(bufs) < cap(bufs) {
		select {
		case b := <-e.freeBufs:
			bufs = append(bufs, b)
		default:
			return bufs
		}
	}
	return bufs
}

// ackLoop acknowledges the items in log order as their deliveries finish.
// After one was abandoned (shutdown) it acknowledges nothing more, so the
// read offset stays before every undelivered block.
func (e *endpoint) ackLoop(window <-chan *flight, slots <-chan struct{}) {
	stopped := false
	for f := range window {
		<-f.done
		stopped = stopped || !f.ok
		if !stopped {
			if err := e.log.ack(f.it); err != nil {
				e.q.logLimit.Warn(e.q.logger, "ack "+e.safeURL, "queue: cannot delete a delivered segment", "url", e.safeURL, "error", err)
			}
			select {
			case e.freeBufs <- f.buf:
			default:
			}
		}
		<-slots
	}
}

// deliver sends b until the upstream takes it or refuses it for good (then
// it is set aside); false when ctx ended first.
func (e *endpoint) deliver(ctx context.Context, b block) bool {
	stats := remotewrite.BatchStats{Series: b.series, Samples: b.samples} // SerializeSeconds 0: a resend
	for attempt := 0; ; attempt++ {
		res := e.q.upstream.Send(ctx, e.url, b.body, stats)
		switch classify(res) {
		case delivered:
			return true
		case reject:
			return e.setAside(ctx, b, res)
		}
		if ctx.Err() != nil {
			return false
		}
		e.m.retries.Inc()
		wait := e.q.backoff.delay(attempt, res.RetryAfter, time.Now())
		e.q.logLimit.Warn(e.q.logger, "retry "+e.safeURL, "queue: upstream did not take a block; retrying",
			"url", e.safeURL, "status", res.StatusCode, "message", res.Message, "attempt", attempt+1, "wait", wait)
		if !sleep(ctx, wait) {
			return false
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
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// errClosed is returned by Send after Close began.
var errClosed = errors.New("the queue is shutting down")
