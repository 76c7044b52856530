package queue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/scoreproxy/scoreproxy/remotewrite"
)

// Defaults of Options left zero.
const (
	DefaultSegmentBytes     = 32 << 20
	DefaultMaxRejectedBytes = 256 << 20
	DefaultRetryMinInterval = time.Second
	DefaultRetryMaxInterval = time.Minute
	DefaultMaxBatchBytes    = 4 << 20
	lockFile                = "lock"
)

// Options configure a Queue.
type Options struct {
	// Dir holds one subdirectory per endpoint; created if missing.
	Dir string
	// MaxDiskBytes bounds the disk the undelivered data of all endpoints
	// holds (a segment any endpoint still needs counts whole once sealed);
	// Send answers 429 beyond it. An endpoint holding more than half of it
	// is refused alone while other endpoints deliver (see overShare). 0
	// means no bound.
	MaxDiskBytes int64
	// SegmentBytes is the size at which a segment file is closed and a new
	// one started; delivered data is deleted a segment at a time.
	SegmentBytes int64
	// MaxRejectedBytes bounds each endpoint's rejected-data files.
	MaxRejectedBytes int64
	// RetryMinInterval and RetryMaxInterval bound the backoff between
	// delivery attempts of a block.
	RetryMinInterval, RetryMaxInterval time.Duration
	// DeliveryConcurrency is the number of upstream requests in flight per
	// endpoint; 0 means 1. With 1, blocks arrive strictly in order; with more
	// they are sent in order but may land out of order (VictoriaMetrics
	// accepts that), for upstreams whose latency limits one request at a time.
	DeliveryConcurrency int
	// MaxBatchBytes bounds the decoded size of the blocks the delivery worker
	// sends as one upstream request: consecutive blocks already queued are
	// grouped up to it (a larger block goes alone). 0 means
	// DefaultMaxBatchBytes; a value below the size of one block turns grouping off.
	MaxBatchBytes int64
	// Logger defaults to slog.Default().
	Logger *slog.Logger

	syncFile func(*os.File) error // fsync; tests count or fail it
}

// Upstream delivers one block; *remotewrite.Client implements it.
type Upstream interface {
	Send(ctx context.Context, url string, body []byte, stats remotewrite.BatchStats) remotewrite.SendResult
}

// Queue is the durable queue in front of the upstream. Send is safe for
// concurrent use; it implements tenantroute.Sender.
type Queue struct {
	opts      Options
	upstream  Upstream
	logger    *slog.Logger
	logLimit  *remotewrite.LogLimiter
	backoff   backoff
	m         *queueMetrics
	lock      *os.File     // flock'ed: one process per queue directory
	log       *segmentLog  // shared by every endpoint
	pending   atomic.Int64 // disk held by undelivered data (see segment.held)
	reserved  atomic.Int64 // bytes of Sends not yet committed
	refused   atomic.Int64 // size of the last block refused for the quota; 0 after one is taken
	bufs      sync.Pool    // of *[]byte: encoded records, and payloads read back
	groupBufs sync.Pool    // of *[]byte: bodies of grouped blocks

	appends       chan *appendReq // to the committer; closed by Close
	committerDone chan struct{}

	workerCtx   context.Context
	stopWorkers context.CancelFunc

	wakeMu sync.Mutex
	wakeCh chan struct{} // closed by Wake, then replaced; guarded by wakeMu

	mu        sync.RWMutex
	endpoints map[string]*endpoint // by URL; guarded by mu
	nextID    uint32               // id of the next endpoint created; guarded by mu
	closed    bool                 // guarded by mu
	inflight  sync.WaitGroup       // Sends in progress; Add under mu.RLock while !closed
}

// Open opens the queue in opts.Dir and starts delivering what a previous run
// left there, each endpoint in order, before anything sent now. Damaged
// records are skipped and reported, never fatal.
func Open(opts Options, upstream Upstream) (*Queue, error) {
	opts = withDefaults(opts)
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, err
	}
	lock, err := lockDir(opts.Dir)
	if err != nil {
		return nil, err
	}
	q := &Queue{opts: opts, upstream: upstream, logger: opts.Logger, lock: lock,
		logLimit:  remotewrite.NewLogLimiter(time.Minute, 10),
		backoff:   backoff{min: opts.RetryMinInterval, max: opts.RetryMaxInterval},
		endpoints: map[string]*endpoint{}, nextID: 1, appends: make(chan *appendReq, maxBatch), committerDone: make(chan struct{}),
		wakeCh: make(chan struct{})}
	q.workerCtx, q.stopWorkers = context.WithCancel(context.Background())
	q.m = newQueueMetrics(q)
	if err := q.openExisting(); err != nil {
		for _, e := range q.endpoints {
			_ = e.cur.close()
		}
		q.stopWorkers()
		q.m.close()
		_ = q.lock.Close()
		return nil, err
	}
	go q.commitLoop()
	for _, e := range q.endpoints {
		e.start()
	}
	return q, nil
}

func withDefaults(o Options) Options {
	if o.SegmentBytes <= 0 {
		o.SegmentBytes = DefaultSegmentBytes
	}
	if o.MaxRejectedBytes <= 0 {
		o.MaxRejectedBytes = DefaultMaxRejectedBytes
	}
	if o.RetryMinInterval <= 0 {
		o.RetryMinInterval = DefaultRetryMinInterval
	}
	if o.RetryMaxInterval < o.RetryMinInterval {
		o.RetryMaxInterval = max(DefaultRetryMaxInterval, o.RetryMinInterval)
	}
	o.DeliveryConcurrency = max(o.DeliveryConcurrency, 1)
	if o.MaxBatchBytes <= 0 {
		o.MaxBatchBytes = DefaultMaxBatchBytes
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.syncFile == nil {
		o.syncFile = (*os.File).Sync
	}
	return o
}

// lockDir takes an exclusive lock on the queue directory: two processes
// appending to the same segments would corrupt them. The kernel releases it
// when the process dies, even by SIGKILL.
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("queue directory %s is in use by another process (%v); give each scoreproxy its own queue.path", dir, err)
	}
	return f, nil
}

// Send queues body for url and returns 204 once it is durably on disk; the
// delivery worker of url forwards it later. Beyond MaxDiskBytes it answers
// 429 with Retry-After, so the producer retries instead of the data being
// dropped. body is copied: the caller may reuse it when Send returns.
func (q *Queue) Send(ctx context.Context, url string, body []byte, stats remotewrite.BatchStats) remotewrite.SendResult {
	q.mu.RLock()
	if q.closed {
		q.mu.RUnlock()
		return unavailable(url, errClosed)
	}
	q.inflight.Add(1)
	e := q.endpoints[url]
	q.mu.RUnlock()
	defer q.inflight.Done()
	if e == nil {
		var err error
		if e, err = q.endpoint(url); err != nil {
			return unavailable(url, err)
		}
	}
	keys := recordKeys(stats)
	n, now := recordSize(len(body))+keysSize(keys), time.Now()
	if res, refused := q.admit(e, n, now); refused {
		return res
	}
	defer q.reserved.Add(-n) // once committed, the bytes count in q.pending
	req := &appendReq{e: e, rec: q.getBuf(), done: make(chan error, 1)}
	req.ref.enqueued, req.ref.samples = now, stats.Samples
	*req.rec = appendRecord((*req.rec)[:0], e.id, body, stats, keys, req.ref.enqueued)
	q.appends <- req
	select {
	case err := <-req.done:
		if err != nil {
			return unavailable(url, fmt.Errorf("cannot queue the request: writing to disk failed: %w; "+
				"retry later (delivered data frees its space)", err))
		}
		return remotewrite.SendResult{StatusCode: http.StatusNoContent, URL: e.safeURL}
	case <-ctx.Done():
		return remotewrite.SendResult{Message: "queue for " + e.safeURL + ": cancelled while waiting for the fsync: " + ctx.Err().Error(),
			URL: e.safeURL, Local: true}
	}
}

// admit books n bytes of the disk quota for a Send to e at now, or returns
// the 429 that refuses it: e holds more than its share (overShare), or the
// queue is full.
func (q *Queue) admit(e *endpoint, n int64, now time.Time) (remotewrite.SendResult, bool) {
	e.lastSend.Store(now.UnixNano())
	if msg, over := q.overShare(e, now); over {
		q.m.quotaExceeded.Inc()
		e.m.shareExceeded.Inc()
		return q.full(e, msg), true
	}
	if !q.reserve(n) {
		q.m.quotaExceeded.Inc()
		return q.full(e, fmt.Sprintf("queue full: %d bytes pending for all endpoints, limit queue.max_disk_bytes %d; not queued for %s, retry later",
			q.pending.Load()+q.reserved.Load(), q.opts.MaxDiskBytes, e.safeURL)), true
	}
	return remotewrite.SendResult{}, false
}

// endpoint returns the endpoint of url, creating its directory and
// goroutines on first use.
func (q *Queue) endpoint(url string) (*endpoint, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if e := q.endpoints[url]; e != nil {
		return e, nil
	}
	dir := filepath.Join(q.opts.Dir, dirName(url))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	m := endpointMeta{URL: url, ID: q.nextID}
	if err := writeMeta(dir, m.URL, m.ID); err != nil {
		return nil, fmt.Errorf("queue %s: %w", dir, err)
	}
	if err := syncDir(q.opts.Dir); err != nil {
		return nil, err
	}
	e, err := q.newEndpoint(m, dir)
	if err != nil {
		return nil, fmt.Errorf("queue %s: %w", dir, err)
	}
	q.nextID++
	q.endpoints[url] = e
	e.start()
	return e, nil
}

// reserve books n bytes of the disk quota for a Send. A queue holding
// nothing takes any block, so one larger than the quota is not refused forever.
func (q *Queue) reserve(n int64) bool {
	used := q.reserved.Add(n) + q.pending.Load()
	if q.opts.MaxDiskBytes > 0 && used > q.opts.MaxDiskBytes && used > n {
		q.reserved.Add(-n)
		q.refused.Store(n)
		return false
	}
	q.refused.Store(0)
	return true
}

// activeWindow is how recently an endpoint must have been sent data to
// count as delivering, for the share rule (overShare).
const activeWindow = time.Minute

// overShare reports whether e's Send is refused because e holds more than
// its share of the disk: more than half of MaxDiskBytes (a sealed segment
// it still needs counts whole, see segment.pins) while another endpoint,
// sent data within activeWindow, holds at most half. So one stalled endpoint
// (or several) cannot fill the disk the others need, and when every active
// endpoint is stalled (one upstream down for all) the whole quota buffers
// them, as it would without the rule. The message says why.
func (q *Queue) overShare(e *endpoint, now time.Time) (string, bool) {
	limit := q.opts.MaxDiskBytes / 2
	if limit <= 0 || q.pending.Load() <= limit {
		return "", false
	}
	held := q.log.pinnedBy(e.id)
	if held <= limit || !q.othersDelivering(e, limit, now) {
		return "", false
	}
	return fmt.Sprintf("queue full for %s: its undelivered blocks hold %d bytes of segments, more than half of "+
		"queue.max_disk_bytes %d, while other endpoints deliver; retry later (its upstream is not taking data)",
		e.safeURL, held, q.opts.MaxDiskBytes), true
}

// othersDelivering reports whether an endpoint other than e was sent data
// within activeWindow before now and holds at most limit bytes.
func (q *Queue) othersDelivering(e *endpoint, limit int64, now time.Time) bool {
	q.mu.RLock()
	defer q.mu.RUnlock()
	for _, o := range q.endpoints {
		if o != e && now.UnixNano()-o.lastSend.Load() < int64(activeWindow) && q.log.pinnedBy(o.id) <= limit {
			return true
		}
	}
	return false
}

// retryAfter is the Retry-After of a 429 for a full queue: the shortest
// retry interval, in whole seconds (at least 1).
func (q *Queue) retryAfter() string {
	return strconv.Itoa(max(1, int(math.Ceil(q.opts.RetryMinInterval.Seconds()))))
}

// Ready reports whether the queue accepts data, and why not: it is open and
// has room, at least for the block it last refused.
func (q *Queue) Ready() (bool, string) {
	q.mu.RLock()
	closed := q.closed
	q.mu.RUnlock()
	if closed {
		return false, errClosed.Error()
	}
	used := q.pending.Load() + q.reserved.Load()
	if q.opts.MaxDiskBytes > 0 && (used >= q.opts.MaxDiskBytes || used > 0 && used+q.refused.Load() > q.opts.MaxDiskBytes) {
		return false, fmt.Sprintf("queue is full: %d bytes undelivered, queue.max_disk_bytes is %d", used, q.opts.MaxDiskBytes)
	}
	return true, ""
}

// Wake makes every delivery worker waiting out a retry backoff try again
// now. The upstream's health check calls it when the upstream answers again,
// so that delivery resumes at once instead of when the backoff (up to
// RetryMaxInterval) ends.
func (q *Queue) Wake() {
	q.wakeMu.Lock()
	defer q.wakeMu.Unlock()
	close(q.wakeCh)
	q.wakeCh = make(chan struct{})
}

// woken returns a channel closed by the next Wake.
func (q *Queue) woken() <-chan struct{} {
	q.wakeMu.Lock()
	defer q.wakeMu.Unlock()
	return q.wakeCh
}

// PendingBytes returns the disk the undelivered data of all endpoints holds
// (what max_disk_bytes bounds); 0 once everything is delivered.
func (q *Queue) PendingBytes() int64 { return q.pending.Load() }

// Close stops accepting, lets the Sends in progress finish, stops the
// delivery workers (a block being sent stays queued) and closes the files,
// within ctx. Undelivered data stays on disk for the next Open.
func (q *Queue) Close(ctx context.Context) error {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return nil
	}
	q.closed = true
	q.mu.Unlock()
	if err := waitFor(ctx, "the Sends in progress", q.inflight.Wait); err != nil {
		return err
	}
	// Only now is the set of endpoints final: a Send in progress may have created one.
	q.mu.RLock()
	eps := make([]*endpoint, 0, len(q.endpoints))
	for _, e := range q.endpoints {
		eps = append(eps, e)
	}
	q.mu.RUnlock()
	close(q.appends)
	if err := waitFor(ctx, "the queue's last commit", func() { <-q.committerDone }); err != nil {
		return err
	}
	q.stopWorkers()
	var errs []error
	for _, e := range eps {
		if err := waitFor(ctx, "the queue of "+e.safeURL, func() { <-e.workerDone }); err != nil {
			return err
		}
		errs = append(errs, e.cur.close())
	}
	errs = append(errs, q.log.close())
	q.m.close()
	errs = append(errs, q.lock.Close())
	return errors.Join(errs...)
}

// waitFor runs wait and returns when it does, or with an error when ctx ends first.
func waitFor(ctx context.Context, what string, wait func()) error {
	done := make(chan struct{})
	go func() { wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("queue: gave up waiting for %s: %w", what, ctx.Err())
	}
}

// full is the answer to a Send the quota refuses: 429 with Retry-After,
// answered by the queue, not the upstream.
func (q *Queue) full(e *endpoint, msg string) remotewrite.SendResult {
	return remotewrite.SendResult{StatusCode: http.StatusTooManyRequests, RetryAfter: q.retryAfter(), URL: e.safeURL,
		Message: msg, Local: true}
}

// unavailable is the answer to a Send the queue cannot take: 503, so that
// the producer retries; the message names the URL, as the upstream's
// answers are named.
func unavailable(url string, err error) remotewrite.SendResult {
	safe := remotewrite.RedactURL(url)
	return remotewrite.SendResult{StatusCode: http.StatusServiceUnavailable, Message: "queue for " + safe + ": " + err.Error(),
		URL: safe, Local: true}
}

// getBuf and putBuf recycle record buffers; oversized ones are dropped so a
// rare huge block does not pin its memory.
func (q *Queue) getBuf() *[]byte {
	if b, ok := q.bufs.Get().(*[]byte); ok {
		return b
	}
	return new([]byte)
}

func (q *Queue) putBuf(b *[]byte) {
	if cap(*b) <= 1<<20 {
		q.bufs.Put(b)
	}
}

// getGroupBuf returns a buffer for the body of a group; the delivery workers
// hold one each while a group is in flight, so at most DeliveryConcurrency
// per endpoint exist.
func (q *Queue) getGroupBuf() *[]byte {
	if b, ok := q.groupBufs.Get().(*[]byte); ok {
		return b
	}
	return new([]byte)
}
