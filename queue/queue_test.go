package queue

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/golang/snappy"

	"github.com/scoreproxy/scoreproxy/remotewrite"

	"github.com/scoreproxy/scoreproxy/internal/testenv"
)

// fakeUpstream records what it is sent and answers per URL with answer
// (204 when answer is nil or returns StatusCode 0 with ok false).
type fakeUpstream struct {
	mu        sync.Mutex
	delivered map[string][]string // URL -> blocks accepted, in order (a group split back, see blocksOf)
	requests  map[string][]int    // URL -> number of blocks of each request accepted
	calls     map[string]int
	answer    func(url string) (remotewrite.SendResult, bool)
	changed   chan struct{} // signalled on every call
}

func newFakeUpstream() *fakeUpstream {
	return &fakeUpstream{delivered: map[string][]string{}, requests: map[string][]int{}, calls: map[string]int{},
		changed: make(chan struct{}, 1)}
}

func (f *fakeUpstream) Send(ctx context.Context, url string, body []byte, stats remotewrite.BatchStats) remotewrite.SendResult {
	f.mu.Lock()
	defer func() {
		f.mu.Unlock()
		select {
		case f.changed <- struct{}{}:
		default:
		}
	}()
	f.calls[url]++
	if f.answer != nil {
		if res, ok := f.answer(url); ok {
			res.URL = url
			return res
		}
	}
	blocks := blocksOf(body)
	f.delivered[url] = append(f.delivered[url], blocks...)
	f.requests[url] = append(f.requests[url], len(blocks))
	return remotewrite.SendResult{StatusCode: http.StatusNoContent, URL: url}
}

func (f *fakeUpstream) setAnswer(a func(url string) (remotewrite.SendResult, bool)) {
	f.mu.Lock()
	f.answer = a
	f.mu.Unlock()
}

// testBody is the queued form of a test block: the snappy block of text and
// a newline, as a producer's request would be snappy, so that the delivery
// worker groups it and blocksOf can split a group back.
func testBody(text string) []byte { return snappy.Encode(nil, []byte(text+"\n")) }

// blocksOf returns the texts of the blocks a body holds: a group decodes to
// its blocks' texts one after the other, each ending in a newline. A body
// that is not snappy (sent as is by a test) is one block.
func blocksOf(body []byte) []string {
	text, err := snappy.Decode(nil, body)
	if err != nil || !bytes.HasSuffix(text, []byte("\n")) {
		return []string{string(body)}
	}
	return strings.Split(strings.TrimSuffix(string(text), "\n"), "\n")
}

// sizes returns the number of blocks of each request url accepted.
func (f *fakeUpstream) sizes(url string) []int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]int(nil), f.requests[url]...)
}

func (f *fakeUpstream) got(url string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.delivered[url]...)
}

// waitUntil polls cond until it holds, failing the test after a bounded wait.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// openTestQueue opens a queue with fast retries, closed at the end of the test.
func openTestQueue(t *testing.T, dir string, up Upstream, tune func(*Options)) *Queue {
	t.Helper()
	opts := Options{Dir: dir, RetryMinInterval: 5 * time.Millisecond, RetryMaxInterval: 20 * time.Millisecond, SegmentBytes: 4 << 10,
		Logger: slog.New(slog.DiscardHandler)}
	if tune != nil {
		tune(&opts)
	}
	q, err := Open(opts, up)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { q.Close(context.Background()) })
	return q
}

func mustSend(t *testing.T, q *Queue, url, body string) {
	t.Helper()
	res := q.Send(context.Background(), url, testBody(body), remotewrite.BatchStats{Series: 1, Samples: 1})
	if res.StatusCode != http.StatusNoContent {
		t.Fatalf("Send(%s, %q) = %+v, want 204", url, body, res)
	}
}

func closeQueue(t *testing.T, q *Queue) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := q.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// Blocks of one endpoint arrive in the order they were acknowledged, while
// several endpoints are written to concurrently.
func TestQueueOrderPerEndpoint(t *testing.T) {
	up := newFakeUpstream()
	q := openTestQueue(t, t.TempDir(), up, nil)
	urls := []string{"http://a/write", "http://b/write", "http://c/write"}
	var wg sync.WaitGroup
	for _, u := range urls {
		wg.Go(func() {
			for i := range 100 {
				mustSend(t, q, u, fmt.Sprintf("%s#%03d", u, i))
			}
		})
	}
	wg.Wait()
	for _, u := range urls {
		waitUntil(t, "delivery to "+u, func() bool { return len(up.got(u)) == 100 })
		for i, b := range up.got(u) {
			if want := fmt.Sprintf("%s#%03d", u, i); b != want {
				t.Fatalf("%s: block %d is %q, want %q", u, i, b, want)
			}
		}
	}
}

// A full queue answers 429 with Retry-After and /ready says so; once
// delivery drains it, it accepts again.
func TestQueueDiskQuota(t *testing.T) {
	up := newFakeUpstream()
	var down atomic.Bool
	down.Store(true)
	up.setAnswer(func(string) (remotewrite.SendResult, bool) {
		return remotewrite.SendResult{StatusCode: 503}, down.Load()
	})
	body := strings.Repeat("x", 1000)
	q := openTestQueue(t, t.TempDir(), up, func(o *Options) {
		o.MaxDiskBytes = 3 * recordSize(len(testBody(body)))
		o.RetryMinInterval = time.Second // Retry-After: 1
	})
	const url = "http://a/write"
	for range 3 {
		mustSend(t, q, url, body)
	}
	res := q.Send(context.Background(), url, testBody(body), remotewrite.BatchStats{})
	if res.StatusCode != http.StatusTooManyRequests || res.RetryAfter != "1" || !strings.Contains(res.Message, "max_disk_bytes") {
		t.Fatalf("Send to a full queue = %+v, want 429 with Retry-After 1 naming max_disk_bytes", res)
	}
	if ok, why := q.Ready(); ok || !strings.Contains(why, "full") {
		t.Fatalf("Ready() = %v, %q on a full queue", ok, why)
	}
	acked := remotewrite.Ack([]remotewrite.SendResult{res})
	if acked.Code != 429 || acked.RetryAfter != "1" {
		t.Fatalf("the producer would get %d Retry-After %q, want 429 and 1", acked.Code, acked.RetryAfter)
	}
	if !strings.HasPrefix(acked.Msg, "queue full: ") || strings.Contains(acked.Msg, "answered") || !strings.Contains(acked.Msg, url) {
		t.Fatalf("the producer would read %q: want it to say the queue is full for %s, not that the upstream answered", acked.Msg, url)
	}
	down.Store(false)
	waitUntil(t, "the queue to drain", func() bool { return q.PendingBytes() == 0 })
	if ok, why := q.Ready(); !ok {
		t.Fatalf("Ready() = false (%s) after draining", why)
	}
	mustSend(t, q, url, body)
	waitUntil(t, "delivery", func() bool { return len(up.got(url)) == 4 })
}

// An endpoint answering 400 and one that is down do not hold up a healthy
// one; the refused blocks are kept in the rejected-data file, readable back.
func TestQueueFailingEndpointsDoNotBlockOthers(t *testing.T) {
	const bad, down, good = "http://bad/write", "http://down/write", "http://good/write"
	up := newFakeUpstream()
	up.setAnswer(func(url string) (remotewrite.SendResult, bool) {
		switch url {
		case bad:
			return remotewrite.SendResult{StatusCode: 400, Message: "cannot parse labels"}, true
		case down:
			return remotewrite.SendResult{Message: "connection refused"}, true
		}
		return remotewrite.SendResult{}, false
	})
	dir := t.TempDir()
	q := openTestQueue(t, dir, up, nil)
	for i := range 20 {
		for _, u := range []string{bad, down, good} {
			mustSend(t, q, u, fmt.Sprintf("%s#%d", u, i))
		}
	}
	waitUntil(t, "the healthy endpoint's delivery", func() bool { return len(up.got(good)) == 20 })
	// The worker records its progress after the upstream answered: wait for
	// that too before reading the pending gauges.
	waitUntil(t, "the healthy endpoint's progress", func() bool { return !q.endpoints[good].hasPending() })
	waitUntil(t, "the bad endpoint's blocks to be set aside", func() bool {
		return !q.endpoints[bad].hasPending()
	})
	rejected, err := ReadRejected(filepath.Join(dir, dirName(bad), rejectedFile))
	if err != nil {
		t.Fatal(err)
	}
	if len(rejected) != 20 {
		t.Fatalf("%d rejected blocks read back, want 20", len(rejected))
	}
	for i, r := range rejected {
		if fmt.Sprint(blocksOf(r.Body)) != fmt.Sprintf("[%s#%d]", bad, i) || r.Status != 400 || r.Message != "cannot parse labels" ||
			r.URL != bad || r.Series != 1 || r.Samples != 1 || r.Time.IsZero() || r.Enqueued.IsZero() {
			t.Fatalf("rejected block %d = %+v", i, r)
		}
	}
	if blocks, _, _ := q.endpoints[down].cur.pending(); blocks != 20 {
		t.Fatalf("the endpoint that is down has %d pending blocks, want 20", blocks)
	}
	page := scrapeMetrics()
	for _, want := range []string{
		`scoreproxy_queue_rejected_blocks_total{url="http://bad/write",code="400"} 20`,
		`scoreproxy_queue_pending_blocks{url="http://down/write"} 20`,
		`scoreproxy_queue_pending_blocks{url="http://good/write"} 0`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if !strings.Contains(page, `scoreproxy_queue_retries_total{url="http://down/write"}`) {
		t.Errorf("/metrics lacks retries of the endpoint that is down")
	}
}

func (e *endpoint) hasPending() bool {
	blocks, _, _ := e.cur.pending()
	return blocks > 0
}

func scrapeMetrics() string {
	var b bytes.Buffer
	metrics.WritePrometheus(&b, false)
	return b.String()
}

// What a stopped queue did not deliver goes first after a restart.
func TestQueueRestartDeliversLeftoversFirst(t *testing.T) {
	dir := t.TempDir()
	down := newFakeUpstream()
	down.setAnswer(func(string) (remotewrite.SendResult, bool) { return remotewrite.SendResult{StatusCode: 502}, true })
	q := openTestQueue(t, dir, down, nil)
	const url = "http://user:pw@a/write"
	for i := range 50 {
		mustSend(t, q, url, fmt.Sprintf("old-%02d", i))
	}
	closeQueue(t, q)

	up := newFakeUpstream()
	q = openTestQueue(t, dir, up, nil)
	for i := range 5 {
		mustSend(t, q, url, fmt.Sprintf("new-%02d", i))
	}
	waitUntil(t, "delivery", func() bool { return len(up.got(url)) == 55 })
	got := up.got(url)
	for i := range 50 {
		if got[i] != fmt.Sprintf("old-%02d", i) {
			t.Fatalf("block %d delivered is %q, want old-%02d: leftovers go first, in order", i, got[i], i)
		}
	}
	if ids := segmentFiles(t, dir); len(ids) > 1 {
		t.Fatalf("segments %v kept after everything was delivered", ids)
	}
}

// Close returns within its bound even while the upstream hangs, and the
// block being sent stays queued.
func TestQueueCloseWhileUpstreamHangs(t *testing.T) {
	dir := t.TempDir()
	hang := &blockingUpstream{entered: make(chan struct{}, 1)}
	q := openTestQueue(t, dir, hang, nil)
	mustSend(t, q, "http://a/write", "stuck")
	<-hang.entered
	closeQueue(t, q)
	if res := q.Send(context.Background(), "http://a/write", []byte("late"), remotewrite.BatchStats{}); res.StatusCode != 503 {
		t.Fatalf("Send after Close = %+v, want 503", res)
	}
	up := newFakeUpstream()
	openTestQueue(t, dir, up, nil)
	waitUntil(t, "redelivery", func() bool { return len(up.got("http://a/write")) == 1 })
}

type blockingUpstream struct{ entered chan struct{} }

func (b *blockingUpstream) Send(ctx context.Context, url string, _ []byte, _ remotewrite.BatchStats) remotewrite.SendResult {
	select {
	case b.entered <- struct{}{}:
	default:
	}
	<-ctx.Done()
	return remotewrite.SendResult{Message: ctx.Err().Error(), URL: url}
}

// The caller may reuse its buffer as soon as Send returns.
func TestQueueCopiesBody(t *testing.T) {
	up := newFakeUpstream()
	var down atomic.Bool
	down.Store(true)
	up.setAnswer(func(string) (remotewrite.SendResult, bool) {
		return remotewrite.SendResult{StatusCode: 503}, down.Load()
	})
	q := openTestQueue(t, t.TempDir(), up, nil)
	buf := []byte("original")
	q.Send(context.Background(), "http://a/write", buf, remotewrite.BatchStats{})
	copy(buf, "XXXXXXXX")
	down.Store(false)
	waitUntil(t, "delivery", func() bool { return len(up.got("http://a/write")) == 1 })
	if got := up.got("http://a/write")[0]; got != "original" {
		t.Fatalf("delivered %q, want the body as it was when Send returned", got)
	}
}

// A failed fsync answers 503 (the producer retries); the queue goes on.
func TestQueueFsyncFailure(t *testing.T) {
	var fail atomic.Bool
	up := newFakeUpstream()
	dir := t.TempDir()
	q := openTestQueue(t, dir, up, func(o *Options) {
		o.syncFile = func(f *os.File) error {
			if fail.Load() {
				return errors.New("injected EIO")
			}
			return f.Sync()
		}
	})
	mustSend(t, q, "http://a/write", "before")
	fail.Store(true)
	for range 20 {
		if res := q.Send(context.Background(), "http://a/write", []byte("lost"), remotewrite.BatchStats{}); res.StatusCode != 503 ||
			!strings.Contains(res.Message, "injected EIO") {
			t.Fatalf("Send with a failing fsync = %+v, want 503 naming the error", res)
		}
	}
	if ids := segmentFiles(t, dir); len(ids) > 2 {
		t.Fatalf("segments %v after 20 failed fsyncs: a failed commit leaves no file behind", ids)
	}
	fail.Store(false)
	mustSend(t, q, "http://a/write", "after")
	waitUntil(t, "delivery", func() bool { return len(up.got("http://a/write")) == 2 })
	if got := up.got("http://a/write"); fmt.Sprint(got) != "[before after]" {
		t.Fatalf("delivered %v, want [before after]", got)
	}
}

// Through the real upstream client: a 429 with Retry-After and a 503 are
// retried, and the block arrives once the upstream takes it.
func TestQueueWithRealClient(t *testing.T) {
	var calls atomic.Int64
	var bodies sync.Map
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch calls.Add(1) {
		case 1:
			w.Header().Set("Retry-After", "0")
			http.Error(w, "slow down", http.StatusTooManyRequests)
		case 2:
			http.Error(w, "overloaded", http.StatusServiceUnavailable)
		default:
			var b bytes.Buffer
			b.ReadFrom(r.Body)
			bodies.Store(strings.Join(blocksOf(b.Bytes()), ","), r.Header.Get("Content-Encoding"))
			w.WriteHeader(http.StatusNoContent)
		}
	}))
	defer srv.Close()
	client, err := remotewrite.NewClient(remotewrite.ClientConfig{Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	q := openTestQueue(t, t.TempDir(), client, nil)
	mustSend(t, q, srv.URL+"/api/v1/write", "payload")
	waitUntil(t, "delivery", func() bool { _, ok := bodies.Load("payload"); return ok })
	if enc, _ := bodies.Load("payload"); enc != "snappy" {
		t.Fatalf("Content-Encoding %q, want snappy", enc)
	}
	if n := calls.Load(); n != 3 {
		t.Fatalf("%d upstream calls, want 3 (429, 503, 204)", n)
	}
}

// A second process on the same directory is refused.
func TestQueueDirectoryLock(t *testing.T) {
	dir := t.TempDir()
	openTestQueue(t, dir, newFakeUpstream(), nil)
	if _, err := Open(Options{Dir: dir}, newFakeUpstream()); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second Open on %s: %v, want an 'in use' error", dir, err)
	}
}

// A torn record found at start-up is counted and logged with the bytes lost;
// the queue opens, delivers what is intact and takes new data.
func TestQueueReportsCorruptionAtStartUp(t *testing.T) {
	dir := t.TempDir()
	const url = "http://a/write"
	down := newFakeUpstream()
	down.setAnswer(func(string) (remotewrite.SendResult, bool) { return remotewrite.SendResult{StatusCode: 503}, true })
	q := openTestQueue(t, dir, down, func(o *Options) { o.SegmentBytes = 1 << 20 })
	mustSend(t, q, url, "intact")
	mustSend(t, q, url, "torn by the crash")
	closeQueue(t, q)
	seg := filepath.Join(dir, logDir, fmt.Sprintf("%016x%s", 1, segmentExt))
	st, err := os.Stat(seg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(seg, st.Size()-5); err != nil {
		t.Fatal(err)
	}

	var logs syncBuffer
	up := newFakeUpstream()
	q = openTestQueue(t, dir, up, func(o *Options) { o.Logger = slog.New(slog.NewTextHandler(&logs, nil)) })
	mustSend(t, q, url, "later")
	waitUntil(t, "delivery", func() bool { return len(up.got(url)) == 2 })
	if got := up.got(url); fmt.Sprint(got) != "[intact later]" {
		t.Fatalf("delivered %v, want [intact later]", got)
	}
	lost := recordSize(len(testBody("torn by the crash"))) - 5
	if want := fmt.Sprintf("bytes_lost=%d", lost); !strings.Contains(logs.String(), want) {
		t.Fatalf("log lacks %s:\n%s", want, logs.String())
	}
	page := scrapeMetrics()
	path := `{path="` + escapeLabel(dir) + `"}`
	for _, want := range []string{"scoreproxy_queue_corrupted_records_total" + path + " 1", fmt.Sprintf("scoreproxy_queue_corrupted_bytes_total%s %d", path, lost)} {
		if !strings.Contains(page, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// syncBuffer is a log sink the code under test's goroutines write to.
type syncBuffer = testenv.SyncBuffer

// With several requests in flight per endpoint every block is delivered,
// retries included, and the acknowledgements stay in order: after a restart
// nothing is delivered again and only the segment being written is left.
func TestQueueDeliveryConcurrency(t *testing.T) {
	dir := t.TempDir()
	const url = "http://a/write"
	up := newFakeUpstream()
	var calls sync.Map
	up.setAnswer(func(string) (remotewrite.SendResult, bool) { return remotewrite.SendResult{}, false })
	flaky := upstreamFunc(func(ctx context.Context, u string, body []byte, s remotewrite.BatchStats) remotewrite.SendResult {
		if _, seen := calls.LoadOrStore(string(body), true); !seen {
			return remotewrite.SendResult{StatusCode: 503, URL: u} // every block fails once
		}
		return up.Send(ctx, u, body, s)
	})
	q := openTestQueue(t, dir, flaky, func(o *Options) { o.DeliveryConcurrency = 4; o.SegmentBytes = 1 << 10 })
	for i := range 200 {
		mustSend(t, q, url, fmt.Sprintf("block-%03d", i))
	}
	waitUntil(t, "delivery", func() bool { return len(up.got(url)) == 200 && q.PendingBytes() == 0 })
	seen := map[string]bool{}
	for _, b := range up.got(url) {
		if seen[b] {
			t.Fatalf("%s delivered twice", b)
		}
		seen[b] = true
	}
	closeQueue(t, q)
	if ids := segmentFiles(t, dir); len(ids) > 1 {
		t.Fatalf("segments %v kept after everything was delivered", ids)
	}
	again := newFakeUpstream()
	q = openTestQueue(t, dir, again, nil)
	mustSend(t, q, url, "after restart")
	waitUntil(t, "delivery after restart", func() bool { return len(again.got(url)) == 1 })
	if got := again.got(url); got[0] != "after restart" {
		t.Fatalf("after a restart %v was delivered, want only the new block", got)
	}
}

type upstreamFunc func(context.Context, string, []byte, remotewrite.BatchStats) remotewrite.SendResult

func (f upstreamFunc) Send(ctx context.Context, url string, body []byte, stats remotewrite.BatchStats) remotewrite.SendResult {
	return f(ctx, url, body, stats)
}
