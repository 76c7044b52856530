package queue

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/scoreproxy/scoreproxy/remotewrite"
)

// lossRun sends numbered blocks of varying sample counts to two endpoints
// and compares what never arrives with what the queue reports lost.
type lossRun struct {
	t       *testing.T
	dir     string
	sent    map[string]map[string]int // url -> block text -> samples
	logs    syncBuffer
	q       *Queue
	next    int
	lossURL []string
}

var lossURLs = []string{"http://a/write", "http://b/write"}

func newLossRun(t *testing.T) *lossRun {
	r := &lossRun{t: t, dir: t.TempDir(), sent: map[string]map[string]int{}}
	for _, u := range lossURLs {
		r.sent[u] = map[string]int{}
	}
	return r
}

// open opens the queue of the run, logging to r.logs, segments of 1 KiB.
func (r *lossRun) open(up Upstream) {
	r.q = openTestQueue(r.t, r.dir, up, func(o *Options) {
		o.SegmentBytes = 1 << 10
		o.Logger = slog.New(slog.NewTextHandler(&r.logs, nil))
	})
}

// send queues n blocks to each endpoint, with 1 to 13 samples each.
func (r *lossRun) send(n int) {
	for range n {
		for _, u := range lossURLs {
			text, samples := fmt.Sprintf("%s#%03d", u, r.next), 1+r.next%13
			res := r.q.Send(context.Background(), u, testBody(text), remotewrite.BatchStats{Series: 1, Samples: samples})
			if res.StatusCode != 204 {
				r.t.Fatalf("Send = %+v", res)
			}
			r.sent[u][text] = samples
		}
		r.next++
	}
}

// segment returns the path of the i-th segment file (0 the oldest).
func (r *lossRun) segment(i int) string {
	ids := segmentFiles(r.t, r.dir)
	if i < 0 {
		i += len(ids)
	}
	if i < 0 || i >= len(ids) {
		r.t.Fatalf("segment %d of %v", i, ids)
	}
	return filepath.Join(r.dir, logDir, segName(ids[i]))
}

// damage cuts the second segment in the middle of a record, flips bytes in
// the middle of the fourth, removes the sixth (its index stays), and in the
// last one (the one being written, if the queue is open) flips a byte of its
// first record and cuts off its end.
func (r *lossRun) damage() {
	t := r.t
	if n := len(segmentFiles(t, r.dir)); n < 8 {
		t.Fatalf("%d segments: the test needs at least 8", n)
	}
	truncate := func(path string, keep func(size int64) int64) {
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(path, keep(st.Size())); err != nil {
			t.Fatal(err)
		}
	}
	flip := func(path string, at func(size int64) int64) {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		f, err := os.OpenFile(path, os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		off := at(int64(len(data)))
		if _, err := f.WriteAt([]byte{^data[off], ^data[off+1]}, off); err != nil {
			t.Fatal(err)
		}
	}
	last := r.segment(-1)
	sixth := r.segment(5)
	truncate(r.segment(1), func(size int64) int64 { return size/2 + 3 })
	flip(r.segment(3), func(size int64) int64 { return size / 2 })
	if err := os.Remove(sixth); err != nil {
		t.Fatal(err)
	}
	flip(last, func(int64) int64 { return headerSize + 3 })
	truncate(last, func(size int64) int64 { return size - 5 })
}

var lossLine = regexp.MustCompile(`acknowledged blocks lost.* url=(\S+) .*blocks_lost=(\d+) samples_lost=(\d+)`)

// check waits until everything deliverable is delivered, then compares, per
// endpoint, the blocks and samples that never arrived with the ones the
// metrics and the log report lost, and wants some of each. A damaged
// block is reported just after the acknowledgement that empties the queue,
// so the reports are waited for too.
func (r *lossRun) check(up *fakeUpstream) {
	t := r.t
	waitUntil(t, "delivery of what is left", func() bool { return r.q.PendingBytes() == 0 })
	missing := r.missing(up)
	problems := r.unreported(missing)
	for deadline := time.Now().Add(10 * time.Second); len(problems) > 0 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
		problems = r.unreported(missing)
	}
	for _, p := range problems {
		t.Error(p)
	}
	if t.Failed() || testing.Verbose() {
		t.Logf("logs:\n%s", r.logs.String())
	}
}

// missing returns, per endpoint, the blocks and samples sent that the
// upstream never got, and wants some for each.
func (r *lossRun) missing(up *fakeUpstream) map[string][2]int {
	t := r.t
	out := map[string][2]int{}
	for _, u := range lossURLs {
		missing := map[string]int{}
		for text, samples := range r.sent[u] {
			missing[text] = samples
		}
		for _, text := range up.got(u) {
			if _, ok := r.sent[u][text]; !ok {
				t.Fatalf("%s: delivered %q, which was never sent", u, text)
			}
			delete(missing, text)
		}
		samples := 0
		for _, s := range missing {
			samples += s
		}
		if len(missing) == 0 {
			t.Fatalf("%s: every block arrived; the damage should have cost some", u)
		}
		out[u] = [2]int{len(missing), samples}
	}
	return out
}

// unreported lists, per endpoint, where /metrics or the log do not report
// the loss that missing says: nothing when both report it exactly.
func (r *lossRun) unreported(missing map[string][2]int) []string {
	page, logged := scrapeMetrics(), r.loggedLoss()
	var problems []string
	for _, u := range lossURLs {
		blocks, samples := missing[u][0], missing[u][1]
		for _, want := range []string{
			fmt.Sprintf(`scoreproxy_queue_lost_blocks_total{url="%s"} %d`, u, blocks),
			fmt.Sprintf(`scoreproxy_queue_lost_samples_total{url="%s"} %d`, u, samples),
		} {
			if !strings.Contains(page, want+"\n") {
				problems = append(problems, fmt.Sprintf("/metrics lacks %s (%d blocks, %d samples never arrived)", want, blocks, samples))
			}
		}
		if got := logged[u]; got != missing[u] {
			problems = append(problems, fmt.Sprintf("%s: the log reports %d blocks, %d samples lost; %d blocks, %d samples never arrived",
				u, got[0], got[1], blocks, samples))
		}
	}
	return problems
}

// loggedLoss adds up, per endpoint, the blocks and samples the log reports lost.
func (r *lossRun) loggedLoss() map[string][2]int {
	logged := map[string][2]int{}
	for _, line := range strings.Split(r.logs.String(), "\n") {
		if m := lossLine.FindStringSubmatch(line); m != nil {
			blocks, _ := strconv.Atoi(m[2])
			samples, _ := strconv.Atoi(m[3])
			logged[m[1]] = [2]int{logged[m[1]][0] + blocks, logged[m[1]][1] + samples}
		}
	}
	return logged
}

// The loss that damage causes is reported exactly, in blocks and samples,
// per endpoint (log and metrics): damage to sealed segments (cut in the
// middle of a record, bytes flipped, the file removed) and to the segment
// being written (a byte flipped, its end cut off), found at start-up and
// while delivering.
func TestQueueReportsLossExactly(t *testing.T) {
	t.Run("found at start-up", func(t *testing.T) {
		r := newLossRun(t)
		down, _ := downUntil()
		r.open(down)
		r.send(80)
		closeQueue(t, r.q)
		r.damage()
		up := newFakeUpstream()
		r.open(up)
		r.send(5)
		r.check(up)
	})
	t.Run("found while delivering", func(t *testing.T) {
		r := newLossRun(t)
		up, down := downUntil()
		r.open(up)
		r.send(80)
		waitUntil(t, "the first delivery attempts", func() bool {
			up.mu.Lock()
			defer up.mu.Unlock()
			return up.calls[lossURLs[0]] > 0 && up.calls[lossURLs[1]] > 0
		})
		r.damage()
		r.send(5) // written after the cut, at the offsets the queue handed out
		down.Store(false)
		r.check(up)
	})
}
