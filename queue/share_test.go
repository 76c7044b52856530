package queue

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/scoreproxy/scoreproxy/remotewrite"
)

// segmentBytesOnDisk sums the sizes of the segment files in dir's log.
func segmentBytesOnDisk(t *testing.T, dir string) int64 {
	t.Helper()
	var sum int64
	for _, id := range segmentFiles(t, dir) {
		if st, err := os.Stat(filepath.Join(dir, logDir, segName(id))); err == nil {
			sum += st.Size()
		}
	}
	return sum
}

// One endpoint whose upstream is down for the whole test cannot take the
// disk from the others: its records are in every segment, so without the
// share rule the quota fills at the pace of all traffic and every producer
// gets 429. With it, the stalled endpoint is refused (429, saying why) once
// it holds half of max_disk_bytes, and the two healthy endpoints have every
// one of their 3,000 Sends accepted and delivered, in order, while the disk
// stays within the quota. Once its upstream is back, the stalled endpoint
// is accepted again.
func TestQueueStalledEndpointLeavesOthersRoom(t *testing.T) {
	const stalled = "http://stalled/write"
	healthy := []string{"http://a/write", "http://b/write"}
	var down atomic.Bool
	down.Store(true)
	up := newFakeUpstream()
	up.setAnswer(func(url string) (remotewrite.SendResult, bool) {
		return remotewrite.SendResult{StatusCode: 503, Message: "down"}, url == stalled && down.Load()
	})
	const quota = 64 << 10
	dir := t.TempDir()
	q := openTestQueue(t, dir, up, func(o *Options) {
		o.MaxDiskBytes, o.SegmentBytes = quota, 4<<10
		o.syncFile = func(*os.File) error { return nil } // this test is about room, not durability
	})
	filler := strings.Repeat("x", 100)
	refused, maxDisk := 0, int64(0)
	var lastRefusal string
	for i := range 1500 {
		res := q.Send(context.Background(), stalled, testBody(fmt.Sprintf("stalled-%04d %s", i, filler)), remotewrite.BatchStats{Samples: 1})
		switch res.StatusCode {
		case http.StatusNoContent:
		case http.StatusTooManyRequests:
			refused, lastRefusal = refused+1, res.Message
		default:
			t.Fatalf("Send to the stalled endpoint = %+v", res)
		}
		for _, u := range healthy {
			mustSend(t, q, u, fmt.Sprintf("%s-%04d %s", u, i, filler))
		}
		maxDisk = max(maxDisk, segmentBytesOnDisk(t, dir))
	}
	if refused == 0 {
		t.Fatal("the stalled endpoint was never refused: the test did not reach its share")
	}
	if !strings.Contains(lastRefusal, "queue full for "+stalled) || !strings.Contains(lastRefusal, "max_disk_bytes") {
		t.Fatalf("the stalled endpoint's refusal says %q: want it to name the endpoint and queue.max_disk_bytes", lastRefusal)
	}
	if limit := int64(quota + 4<<10); maxDisk > limit {
		t.Fatalf("segment files took %d bytes, more than the quota and one segment (%d)", maxDisk, limit)
	}
	for _, u := range healthy {
		waitUntil(t, "delivery to "+u, func() bool { return len(up.got(u)) == 1500 })
		for i, b := range up.got(u) {
			if want := fmt.Sprintf("%s-%04d %s", u, i, filler); b != want {
				t.Fatalf("%s: block %d is %q, want %q", u, i, b[:30], want[:30])
			}
		}
	}
	if page := scrapeMetrics(); !strings.Contains(page, fmt.Sprintf(`scoreproxy_queue_endpoint_quota_exceeded_total{url="%s"} %d`, stalled, refused)) {
		t.Errorf("/metrics lacks the %d refusals of the stalled endpoint", refused)
	}
	t.Logf("stalled endpoint: %d of 1500 Sends refused; segment files at most %d bytes", refused, maxDisk)

	down.Store(false)
	waitUntil(t, "the stalled endpoint's backlog delivered", func() bool { return q.PendingBytes() == 0 })
	for _, u := range append(healthy, stalled) {
		if held := q.log.pinnedBy(q.endpoints[u].id); held != 0 {
			t.Errorf("%s holds %d bytes after everything was delivered, want 0", u, held)
		}
	}
	mustSend(t, q, stalled, "back")
}

// When every endpoint that is sent data is stalled (one upstream down for
// all), the share rule refuses none of them early: together they fill the
// whole quota, as a single endpoint would.
func TestQueueAllStalledUseTheWholeQuota(t *testing.T) {
	urls := []string{"http://a/write", "http://b/write"}
	up, _ := downUntil()
	const quota = 32 << 10
	q := openTestQueue(t, t.TempDir(), up, func(o *Options) {
		o.MaxDiskBytes, o.SegmentBytes = quota, 2<<10
		o.syncFile = func(*os.File) error { return nil }
	})
	filler := strings.Repeat("x", 100)
	for i := 0; ; i++ {
		if i == 1000 {
			t.Fatal("the quota never filled")
		}
		res := q.Send(context.Background(), urls[i%2], testBody(fmt.Sprint(i, filler)), remotewrite.BatchStats{})
		if res.StatusCode == http.StatusNoContent {
			continue
		}
		if res.StatusCode != http.StatusTooManyRequests || !strings.HasPrefix(res.Message, "queue full: ") {
			t.Fatalf("Send %d = %+v, want 204 until the whole quota is full, then the queue-wide 429", i, res)
		}
		if held := q.PendingBytes(); held < quota*3/4 {
			t.Fatalf("refused at %d bytes held, want the whole quota (%d) used", held, quota)
		}
		return
	}
}
