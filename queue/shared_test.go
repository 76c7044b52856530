package queue

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/scoreproxy/scoreproxy/remotewrite"
)

// Concurrent Sends share fsyncs: while one fsync runs, the Sends arriving
// meanwhile wait for the next, which commits them all, whatever their
// endpoints (split mode: one producer request is one record per tenant).
func TestQueueGroupCommit(t *testing.T) {
	for _, tt := range []struct {
		name             string
		sends, endpoints int
	}{
		{"one endpoint", 32, 1},
		{"ten endpoints", 40, 10},
	} {
		t.Run(tt.name, func(t *testing.T) { testGroupCommit(t, tt.sends, tt.endpoints) })
	}
}

// testGroupCommit holds the first fsync until the other sends are waiting,
// then expects one more fsync for all of them; sends is a multiple of
// endpoints.
func testGroupCommit(t *testing.T, sends, endpoints int) {
	var (
		fsyncs atomic.Int64
		hold   atomic.Pointer[Queue]
	)
	up := newFakeUpstream()
	q := openTestQueue(t, t.TempDir(), up, func(o *Options) {
		o.SegmentBytes = 1 << 20
		o.syncFile = func(f *os.File) error {
			if q := hold.Load(); q != nil && fsyncs.Add(1) == 1 {
				deadline := time.Now().Add(5 * time.Second)
				for len(q.appends) < sends-q.log.w.blocks && time.Now().Before(deadline) {
					time.Sleep(time.Millisecond)
				}
			}
			return f.Sync()
		}
	})
	url := func(i int) string {
		return fmt.Sprintf("http://vminsert/insert/%d/prometheus/api/v1/write", i%endpoints)
	}
	for i := range endpoints {
		mustSend(t, q, url(i), "warm-up") // creates the endpoints
	}
	hold.Store(q)
	var wg sync.WaitGroup
	for i := range sends {
		wg.Go(func() { mustSend(t, q, url(i), fmt.Sprint(i)) })
	}
	wg.Wait()
	if got := fsyncs.Load(); got < 1 || got > 2 {
		t.Fatalf("%d concurrent Sends to %d endpoints took %d fsyncs, want at most 2 (the first, and one for all that waited)",
			sends, endpoints, got)
	}
	for i := range endpoints {
		waitUntil(t, "delivery", func() bool { return len(up.got(url(i))) == 1+sends/endpoints })
	}
}

// An endpoint that is down holds the segments its records are in, and the
// quota counts them whole, but the others deliver everything; once it is
// back, every segment but the one being written is deleted.
func TestQueueStalledEndpointHoldsSegments(t *testing.T) {
	const down, good = "http://down/write", "http://good/write"
	var isDown atomic.Bool
	isDown.Store(true)
	up := newFakeUpstream()
	up.setAnswer(func(url string) (remotewrite.SendResult, bool) {
		return remotewrite.SendResult{StatusCode: 503}, url == down && isDown.Load()
	})
	dir := t.TempDir()
	q := openTestQueue(t, dir, up, func(o *Options) { o.SegmentBytes = 1 << 10 })
	for i := range 50 {
		mustSend(t, q, down, fmt.Sprint("down-", i))
		mustSend(t, q, good, fmt.Sprint("good-", i))
	}
	waitUntil(t, "the healthy endpoint's delivery", func() bool { return len(up.got(good)) == 50 })
	held := segmentFiles(t, dir)
	if len(held) < 3 {
		t.Fatalf("segments %v: the test needs several", held)
	}
	var onDisk int64
	for _, id := range held[:len(held)-1] {
		st, err := os.Stat(filepath.Join(dir, logDir, segName(id)))
		if err != nil {
			t.Fatal(err)
		}
		onDisk += st.Size()
	}
	if q.PendingBytes() < onDisk {
		t.Fatalf("quota counts %d bytes, less than the %d of the sealed segments the stalled endpoint holds", q.PendingBytes(), onDisk)
	}
	isDown.Store(false)
	waitUntil(t, "the queue to drain", func() bool { return q.PendingBytes() == 0 })
	if got := up.got(down); len(got) != 50 || got[0] != "down-0" || got[49] != "down-49" {
		t.Fatalf("the endpoint back up got %v, want its 50 blocks in order", got)
	}
	if ids := segmentFiles(t, dir); len(ids) != 1 {
		t.Fatalf("segments %v left after delivering everything, want only the one being written", ids)
	}
}

// After a restart every endpoint gets its own leftovers, in order, and the
// endpoints keep their ids: new data goes where it belongs.
func TestQueueRestartWithManyEndpoints(t *testing.T) {
	dir := t.TempDir()
	urls := []string{"http://a/write", "http://b/write", "http://c/write"}
	down := newFakeUpstream()
	down.setAnswer(func(string) (remotewrite.SendResult, bool) { return remotewrite.SendResult{StatusCode: 502}, true })
	q := openTestQueue(t, dir, down, nil)
	for i := range 20 {
		for _, u := range urls {
			mustSend(t, q, u, fmt.Sprintf("%s old-%02d", u, i))
		}
	}
	closeQueue(t, q)

	up := newFakeUpstream()
	q = openTestQueue(t, dir, up, nil)
	q.endpoint("http://d/write") // a new endpoint takes a new id
	for _, u := range append(urls, "http://d/write") {
		mustSend(t, q, u, u+" new")
	}
	for _, u := range urls {
		waitUntil(t, "delivery to "+u, func() bool { return len(up.got(u)) == 21 })
		got := up.got(u)
		for i, b := range got[:20] {
			if want := fmt.Sprintf("%s old-%02d", u, i); b != want {
				t.Fatalf("%s: block %d is %q, want %q", u, i, b, want)
			}
		}
		if got[20] != u+" new" {
			t.Fatalf("%s: last block %q, want the new one", u, got[20])
		}
	}
	waitUntil(t, "delivery to d", func() bool { return slices.Equal(up.got("http://d/write"), []string{"http://d/write new"}) })
}

// A directory of the older layout (segment files in each endpoint's
// directory) is not silently ignored: Open says what to do.
func TestQueueRefusesOlderLayout(t *testing.T) {
	dir := t.TempDir()
	old := filepath.Join(dir, "a_write-0011223344556677")
	if err := os.MkdirAll(old, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(old, segName(1)), []byte("SPQ1"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Open(Options{Dir: dir}, newFakeUpstream())
	if err == nil || !strings.Contains(err.Error(), "older scoreproxy") || !strings.Contains(err.Error(), old) {
		t.Fatalf("Open on an older layout: %v, want an error naming the directory", err)
	}
	// The lock is released: the directory can be used once fixed.
	if err := os.RemoveAll(old); err != nil {
		t.Fatal(err)
	}
	openTestQueue(t, dir, newFakeUpstream(), nil)
}

// Records whose endpoint directory was removed are reported lost at
// start-up, do not hold their segment, and their id is never reused.
func TestQueueRecordsOfARemovedEndpoint(t *testing.T) {
	dir := t.TempDir()
	down := newFakeUpstream()
	down.setAnswer(func(string) (remotewrite.SendResult, bool) { return remotewrite.SendResult{StatusCode: 503}, true })
	q := openTestQueue(t, dir, down, nil)
	mustSend(t, q, "http://a/write", "orphan")
	closeQueue(t, q)
	if err := os.RemoveAll(filepath.Join(dir, dirName("http://a/write"))); err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	up := newFakeUpstream()
	q = openTestQueue(t, dir, up, func(o *Options) { o.Logger = slog.New(slog.NewTextHandler(&logs, nil)) })
	if !strings.Contains(logs.String(), "endpoint directory is gone") || !strings.Contains(scrapeMetrics(), `scoreproxy_queue_corrupted_records_total{path="`+escapeLabel(dir)+`"} 1`) {
		t.Fatalf("the lost record was not reported; logs:\n%s", logs.String())
	}
	mustSend(t, q, "http://b/write", "new")
	if id := q.endpoints["http://b/write"].id; id == 1 {
		t.Fatal("the new endpoint took the id of the removed one")
	}
	waitUntil(t, "delivery", func() bool { return q.PendingBytes() == 0 && len(up.got("http://b/write")) == 1 })
	closeQueue(t, q)
	again := newFakeUpstream()
	openTestQueue(t, dir, again, nil)
	time.Sleep(50 * time.Millisecond)
	if got := again.got("http://b/write"); len(got) != 0 {
		t.Fatalf("after a restart the new endpoint got %v, want nothing (the orphan is not its record)", got)
	}
}

// A log that cannot be opened stops Open with an error naming it, and
// releases the directory.
func TestQueueOpenFailsOnUnreadableLog(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, logDir), []byte("not a directory"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(Options{Dir: dir, Logger: slog.New(slog.DiscardHandler)}, newFakeUpstream()); err == nil || !strings.Contains(err.Error(), logDir) {
		t.Fatalf("Open with a file where the log directory goes: %v, want an error naming it", err)
	}
	if err := os.Remove(filepath.Join(dir, logDir)); err != nil {
		t.Fatal(err)
	}
	openTestQueue(t, dir, newFakeUpstream(), nil)
}
