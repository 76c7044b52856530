package queue

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/scoreproxy/scoreproxy/remotewrite"
)

// downUntil returns an upstream answering 503 while down holds, then taking
// everything, and the switch.
func downUntil() (*fakeUpstream, *atomic.Bool) {
	up := newFakeUpstream()
	var down atomic.Bool
	down.Store(true)
	up.setAnswer(func(string) (remotewrite.SendResult, bool) {
		return remotewrite.SendResult{StatusCode: 503, Message: "down"}, down.Load()
	})
	return up, &down
}

// A backlog is delivered in groups of consecutive blocks, in order, each
// group within max_batch_bytes (decoded), and every block once.
func TestQueueGroupsBacklog(t *testing.T) {
	const url = "http://a/write"
	text := func(i int) string { return fmt.Sprintf("block-%03d-%s", i, strings.Repeat("x", 90)) } // 100 bytes + newline
	up, down := downUntil()
	q := openTestQueue(t, t.TempDir(), up, func(o *Options) { o.MaxBatchBytes = 10 * 101; o.SegmentBytes = 1 << 10 })
	var want []string
	for i := range 95 {
		mustSend(t, q, url, text(i))
		want = append(want, text(i))
	}
	down.Store(false)
	waitUntil(t, "delivery", func() bool { return q.PendingBytes() == 0 })
	if got := up.got(url); !slices.Equal(got, want) {
		t.Fatalf("delivered %d blocks %v\nwant %d in order", len(got), got, len(want))
	}
	sizes := up.sizes(url)
	for _, n := range sizes {
		if n > 10 {
			t.Fatalf("a request held %d blocks (sizes %v), more than max_batch_bytes allows (10)", n, sizes)
		}
	}
	if len(sizes) > 20 {
		t.Fatalf("95 queued blocks took %d requests (sizes %v); want them grouped, about 10 per request", len(sizes), sizes)
	}
}

// A value below one block's size turns grouping off: one request per block.
func TestQueueGroupingOff(t *testing.T) {
	const url = "http://a/write"
	up, down := downUntil()
	q := openTestQueue(t, t.TempDir(), up, func(o *Options) { o.MaxBatchBytes = 1 })
	for i := range 20 {
		mustSend(t, q, url, fmt.Sprint("block ", i))
	}
	down.Store(false)
	waitUntil(t, "delivery", func() bool { return q.PendingBytes() == 0 })
	if sizes := up.sizes(url); len(sizes) != 20 || slices.Max(sizes) != 1 {
		t.Fatalf("requests held %v blocks, want 20 requests of 1", sizes)
	}
}

// When the upstream refuses a group as bad data, its blocks are sent again
// one by one: the good ones are delivered, in order, and only the bad one is
// in the rejected-data file.
func TestQueueRefusedGroupResentOneByOne(t *testing.T) {
	const url = "http://a/write"
	dir := t.TempDir()
	var down atomic.Bool
	down.Store(true)
	up := newFakeUpstream()
	var groupsRefused atomic.Int64
	// Like VictoriaMetrics: a request holding a bad series is refused whole.
	up.setAnswer(func(string) (remotewrite.SendResult, bool) { return remotewrite.SendResult{}, false })
	picky := upstreamFunc(func(ctx context.Context, u string, body []byte, s remotewrite.BatchStats) remotewrite.SendResult {
		if down.Load() {
			return remotewrite.SendResult{StatusCode: 503, URL: u}
		}
		blocks := blocksOf(body)
		if slices.Contains(blocks, "bad") {
			if len(blocks) > 1 {
				groupsRefused.Add(1)
			}
			return remotewrite.SendResult{StatusCode: 400, Message: "cannot parse series", URL: u}
		}
		return up.Send(ctx, u, body, s)
	})
	q := openTestQueue(t, dir, picky, nil)
	var want []string
	for i := range 10 {
		text := fmt.Sprint("good ", i)
		if i == 4 {
			text = "bad"
		} else {
			want = append(want, text)
		}
		mustSend(t, q, url, text)
	}
	down.Store(false)
	waitUntil(t, "delivery", func() bool { return q.PendingBytes() == 0 })
	if got := up.got(url); !slices.Equal(got, want) {
		t.Fatalf("delivered %v, want %v", got, want)
	}
	if groupsRefused.Load() == 0 {
		t.Fatal("no group was refused: the test did not exercise grouping")
	}
	rejected, err := ReadRejected(filepath.Join(dir, dirName(url), rejectedFile))
	if err != nil {
		t.Fatal(err)
	}
	if len(rejected) != 1 || fmt.Sprint(blocksOf(rejected[0].Body)) != "[bad]" || rejected[0].Status != 400 ||
		rejected[0].Message != "cannot parse series" || rejected[0].Samples != 1 {
		t.Fatalf("rejected-data file holds %+v, want only the bad block with the upstream's answer", rejected)
	}
}

// A group interrupted by a shutdown, while sent whole or while resent one by
// one after a 400, is delivered after the restart: nothing lost, in order;
// what had already arrived may arrive twice.
func TestQueueRestartMidGroup(t *testing.T) {
	for _, tc := range []struct {
		name string
		// answer answers the requests of the first run; hang makes it block until shutdown.
		answer func(blocks []string) (code int, hang bool)
	}{
		{"while the group is sent", func([]string) (int, bool) { return 0, true }},
		{"while resent one by one", func(blocks []string) (int, bool) {
			switch {
			case len(blocks) > 1:
				return 400, false // the group is refused...
			case blocks[0] == "b2":
				return 0, true // ...and the shutdown comes while its third block is sent
			}
			return 204, false
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const url = "http://a/write"
			dir := t.TempDir()
			var ready atomic.Bool
			entered := make(chan struct{}, 1)
			var first []string
			run1 := upstreamFunc(func(ctx context.Context, u string, body []byte, _ remotewrite.BatchStats) remotewrite.SendResult {
				if !ready.Load() {
					return remotewrite.SendResult{StatusCode: 503, URL: u}
				}
				blocks := blocksOf(body)
				code, hang := tc.answer(blocks)
				if hang {
					select {
					case entered <- struct{}{}:
					default:
					}
					<-ctx.Done()
					return remotewrite.SendResult{Message: ctx.Err().Error(), URL: u}
				}
				if code == 204 {
					first = append(first, blocks...)
				}
				return remotewrite.SendResult{StatusCode: code, URL: u}
			})
			q := openTestQueue(t, dir, run1, nil)
			want := []string{"b0", "b1", "b2", "b3", "b4"}
			for _, b := range want {
				mustSend(t, q, url, b)
			}
			ready.Store(true)
			<-entered
			closeQueue(t, q)

			up := newFakeUpstream()
			q = openTestQueue(t, dir, up, nil)
			mustSend(t, q, url, "after")
			waitUntil(t, "delivery after the restart", func() bool { return q.PendingBytes() == 0 && len(up.got(url)) > 0 })
			got := up.got(url)
			if all := append(first, got...); !isSubsequenceInOrder(append(want, "after"), all) {
				t.Fatalf("first run delivered %v, second %v: want every block of %v, in order", first, got, want)
			}
			if got[len(got)-1] != "after" {
				t.Fatalf("second run delivered %v, want the leftovers before the new block", got)
			}
		})
	}
}

// isSubsequenceInOrder reports whether every element of want appears in got
// in order (repeats in got, from redeliveries, allowed).
func isSubsequenceInOrder(want, got []string) bool {
	i := 0
	for _, g := range got {
		if i < len(want) && g == want[i] {
			i++
		}
	}
	return i == len(want)
}
