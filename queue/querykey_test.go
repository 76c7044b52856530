package queue

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/scoreproxy/scoreproxy/remotewrite"
)

// The query keys of queued blocks reach the upstream's writer metrics when
// the blocks are delivered: after a restart, and summed when blocks are
// delivered as one group.
func TestQueuedBlocksKeepQueryKeys(t *testing.T) {
	const url = "http://a/write"
	dir := t.TempDir()
	var down atomic.Bool
	down.Store(true)
	var mu sync.Mutex
	series := map[string]int{}
	up := upstreamFunc(func(_ context.Context, u string, _ []byte, s remotewrite.BatchStats) remotewrite.SendResult {
		if down.Load() {
			return remotewrite.SendResult{StatusCode: http.StatusServiceUnavailable, URL: u}
		}
		mu.Lock()
		defer mu.Unlock()
		keys := s.QueryKeys
		if keys == nil {
			keys = remotewrite.KeyTallies{{Series: s.Series, Samples: s.Samples}}
		}
		for _, k := range keys {
			series[k.Key] += k.Series
		}
		return remotewrite.SendResult{StatusCode: http.StatusNoContent, URL: u}
	})
	q := openTestQueue(t, dir, up, nil)
	want := map[string]int{}
	for i := range 10 {
		keys := remotewrite.KeyTallies{{Key: fmt.Sprint("q", i%3), Series: 2, Samples: 4}, {Key: "", Series: 1, Samples: 1}}
		if i%4 == 0 {
			keys = nil // all ""
		}
		st := remotewrite.BatchStats{Series: 3, Samples: 5, QueryKeys: keys}
		if res := q.Send(context.Background(), url, testBody(fmt.Sprint("block ", i)), st); res.StatusCode != http.StatusNoContent {
			t.Fatalf("Send: %+v", res)
		}
		if keys == nil {
			want[""] += 3
			continue
		}
		want[keys[0].Key] += 2
		want[""]++
	}
	closeQueue(t, q)
	down.Store(false)
	q = openTestQueue(t, dir, up, nil)
	waitUntil(t, "delivery", func() bool { return q.PendingBytes() == 0 })
	mu.Lock()
	defer mu.Unlock()
	if !maps.Equal(series, want) {
		t.Fatalf("delivered series by query key %v, want %v", series, want)
	}
}
