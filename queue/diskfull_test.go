package queue

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/scoreproxy/scoreproxy/internal/testenv"
	"github.com/scoreproxy/scoreproxy/remotewrite"
)

// randomText returns n bytes of text that snappy cannot compress.
func randomText(n int) string {
	b := make([]byte, n*3/4)
	rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

// fillDisk sends blocks of about 64 KiB to url until the disk is full (the
// queue answers 503), and returns the texts of the blocks acknowledged.
func fillDisk(t *testing.T, q *Queue, url string) []string {
	t.Helper()
	filler := randomText(64 << 10)
	var acked []string
	for i := 0; ; i++ {
		if i == 2000 {
			t.Fatalf("%d blocks of 64 KiB acknowledged and the disk is still not full", i)
		}
		text := fmt.Sprintf("%04d %s", i, filler)
		res := q.Send(context.Background(), url, testBody(text), remotewrite.BatchStats{Series: 1, Samples: 1})
		if res.StatusCode == http.StatusServiceUnavailable {
			return acked
		}
		if res.StatusCode != http.StatusNoContent {
			t.Fatalf("Send %d = %+v, want 204 until the disk is full, then 503", i, res)
		}
		acked = append(acked, text)
	}
}

// A full disk does not outlive its cause. On a 20 MB tmpfs, with segments
// larger than the disk and the upstream down, Sends get 503 once the disk is
// full and the failed writes leave no file each; once the upstream is back
// every acknowledged block is delivered, no deleted segment is held open,
// the disk is empty again and Sends are accepted within seconds.
func TestQueueRecoversFromFullDisk(t *testing.T) {
	dir := testenv.MountTmpfs(t, 20<<20)
	up, down := downUntil()
	q := openTestQueue(t, dir, up, func(o *Options) {
		o.SegmentBytes = DefaultSegmentBytes
		o.MaxDiskBytes = 1 << 30
	})
	const url = "http://a/write"
	acked := fillDisk(t, q, url)
	if len(acked) < 100 {
		t.Fatalf("only %d blocks of 64 KiB fit on a 20 MB disk", len(acked))
	}
	big := testBody(randomText(64 << 10))
	for range 50 {
		if res := q.Send(context.Background(), url, big, remotewrite.BatchStats{}); res.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("Send to a full disk = %+v, want 503", res)
		}
	}
	if ids := segmentFiles(t, dir); len(ids) > 2 {
		t.Fatalf("segments %v after 50 failed writes: want the full one and at most one empty one", ids)
	}

	down.Store(false)
	waitUntil(t, "every acknowledged block delivered", func() bool { return len(up.got(url)) >= len(acked) })
	if got := up.got(url); !slices.Equal(got, acked) {
		t.Fatalf("delivered %d blocks, want the %d acknowledged, in order", len(got), len(acked))
	}
	waitUntil(t, "no deleted segment held open", func() bool { return len(testenv.DeletedFilesOpen(t, dir)) == 0 })
	back := time.Now()
	waitUntil(t, "a Send accepted again", func() bool {
		res := q.Send(context.Background(), url, big, remotewrite.BatchStats{})
		return res.StatusCode == http.StatusNoContent
	})
	if d := time.Since(back); d > 5*time.Second {
		t.Fatalf("Sends accepted again %v after the backlog was delivered, want within seconds", d)
	}
	waitUntil(t, "the last block delivered", func() bool { return q.PendingBytes() == 0 })
	if used := testenv.DiskUsed(t, dir); used > 1<<20 {
		t.Fatalf("%d bytes of the disk in use after delivering everything, want the space back", used)
	}
}

// A delivery worker with nothing to read does not keep a deleted segment
// open: endpoint a goes idle reading the segment being written; b's writes
// then seal it, and once b's records in it are delivered it is deleted,
// its space freed although a is sent nothing more.
func TestQueueIdleReaderLetsGoOfDeletedSegment(t *testing.T) {
	up := newFakeUpstream()
	dir := t.TempDir()
	q := openTestQueue(t, dir, up, func(o *Options) { o.SegmentBytes = 1 << 10 })
	mustSend(t, q, "http://a/write", "only block")
	waitUntil(t, "a's block delivered", func() bool { return len(up.got("http://a/write")) == 1 })
	first := segmentFiles(t, dir)[0]
	for i := range 40 {
		mustSend(t, q, "http://b/write", fmt.Sprintf("b-%02d %s", i, randomText(64)))
	}
	waitUntil(t, "b's blocks delivered", func() bool { return len(up.got("http://b/write")) == 40 })
	waitUntil(t, "the first segment deleted", func() bool { return !slices.Contains(segmentFiles(t, dir), first) })
	waitUntil(t, "no deleted segment held open", func() bool { return len(testenv.DeletedFilesOpen(t, dir)) == 0 })
}
