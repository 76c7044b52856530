package app

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"

	"github.com/scoreproxy/scoreproxy/internal/testenv"
)

// healingUpstream answers writes and /health with 503 while down holds,
// and takes writes (counting their samples in up) once it is back.
type healingUpstream struct {
	up       *upstream
	srv      *httptest.Server
	down     atomic.Bool
	attempts atomic.Int64 // writes refused while down
}

func newHealingUpstream(t *testing.T) *healingUpstream {
	h := &healingUpstream{up: &upstream{samples: map[string]map[string]int{}, status: http.StatusNoContent}}
	h.down.Store(true)
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h.down.Load() {
			if r.URL.Path != "/health" {
				h.attempts.Add(1)
			}
			http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
			return
		}
		h.up.serve(w, r)
	}))
	t.Cleanup(h.srv.Close)
	return h
}

// samplesAt counts the samples received with a timestamp in [from, to).
func (h *healingUpstream) samplesAt(from, to int64) int {
	h.up.mu.Lock()
	defer h.up.mu.Unlock()
	n := 0
	for _, byKey := range h.up.samples {
		for key, times := range byKey {
			at := key[strings.LastIndex(key, "@")+1:]
			ts, _ := strconv.ParseInt(at[:strings.Index(at, "=")], 10, 64)
			if ts >= from && ts < to {
				n += times
			}
		}
	}
	return n
}

// numbered is a request of n series whose samples are stamped with the
// request number i, so the upstream can tell which requests arrived.
func numbered(n, i int) *prompb.WriteRequest {
	wr := modelOutputs(n, 1)
	for s := range wr.Timeseries {
		for j := range wr.Timeseries[s].Samples {
			wr.Timeseries[s].Samples[j].Timestamp = stamp(i) + int64(j)
		}
	}
	return wr
}

// padded adds to every series of wr a label of 200 random characters, which
// snappy cannot compress: the requests fill a disk quickly.
func padded(wr *prompb.WriteRequest) *prompb.WriteRequest {
	raw := make([]byte, 150)
	for i := range wr.Timeseries {
		rand.Read(raw)
		wr.Timeseries[i].Labels = append(wr.Timeseries[i].Labels, prompb.Label{Name: "pad", Value: base64.RawURLEncoding.EncodeToString(raw)})
	}
	return wr
}

func stamp(i int) int64 { return 1_700_000_000_000 + int64(i)*1000 }

// serveWithQueue runs Serve on a free address with the writer pointed at
// upstreamURL and the queue in dir, until the test ends.
func serveWithQueue(t *testing.T, upstreamURL, dir, extra string) string {
	addr := freeAddr(t)
	cfg := writeConfig(t, fmt.Sprintf("listen: %s\nwriter:\n  datasource_url: %s\nqueue:\n  path: %s\n%s", addr, upstreamURL, dir, extra))
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- Serve(ctx, cfg, slog.New(slog.DiscardHandler)) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-served:
			if err != nil {
				t.Errorf("serve returned %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Error("serve did not return within its shutdown timeout")
		}
	})
	waitFor(t, "the listener", func() bool { return accepting(addr) })
	return "http://" + addr
}

// Delivery resumes within a second of the upstream's health_path answering
// again, although the queue's backoff is a minute and the health check
// interval an hour: the health check probes every second while the upstream
// is down and wakes the delivery workers when it is back.
func TestQueueResumesWhenHealthReturns(t *testing.T) {
	h := newHealingUpstream(t)
	proxy := serveWithQueue(t, h.srv.URL, t.TempDir(),
		"  retry_min_interval: 1m\n  retry_max_interval: 5m\nserver:\n  health_check_interval: 1h\n")
	if resp := post(t, proxy+"/api/v1/write", numbered(10, 0)); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("producer got %d, want 204 (queued while the upstream is down)", resp.StatusCode)
	}
	waitFor(t, "a delivery attempt refused", func() bool { return h.attempts.Load() > 0 })
	back := time.Now()
	h.down.Store(false)
	waitFor(t, "delivery after the upstream is back", func() bool { return h.samplesAt(stamp(0), stamp(1)) == 20 })
	took := time.Since(back)
	t.Logf("delivered %v after the upstream was back", took)
	if took > time.Second {
		t.Fatalf("delivery resumed %v after the upstream was back, want within a second", took)
	}
}

// Through the proxy, a full disk heals by itself: on a 20 MB tmpfs with the
// default max_disk_bytes (1 GiB) and segment size (32 MiB), producers get
// 503 once the disk is full; after the upstream is back and the backlog is
// delivered, every acknowledged sample has arrived, no deleted segment is
// held open, and producers get 204 again within seconds.
func TestQueueFullDiskHealsThroughProxy(t *testing.T) {
	dir := testenv.MountTmpfs(t, 20<<20)
	h := newHealingUpstream(t)
	proxy := serveWithQueue(t, h.srv.URL, dir, "  retry_min_interval: 10ms\n  retry_max_interval: 100ms\n")
	const series = 2000 // with a random 200-byte label each: about 500 KB a request, 40 fill the disk
	acked, lastCode := 0, 0
	for ; acked < 500; acked++ {
		resp := post(t, proxy+"/api/v1/write", padded(numbered(series, acked)))
		if lastCode = resp.StatusCode; lastCode != http.StatusNoContent {
			break
		}
	}
	if lastCode != http.StatusServiceUnavailable || acked < 5 {
		t.Fatalf("after %d requests queued the producer got %d, want 503 once the 20 MB disk is full", acked, lastCode)
	}
	h.down.Store(false)
	waitFor(t, "every acknowledged sample delivered", func() bool { return h.samplesAt(stamp(0), stamp(acked)) >= acked*series*2 })
	for i := range acked {
		if got := h.samplesAt(stamp(i), stamp(i+1)); got != series*2 {
			t.Fatalf("request %d: %d samples arrived, want %d", i, got, series*2)
		}
	}
	waitFor(t, "no deleted segment held open", func() bool { return len(testenv.DeletedFilesOpen(t, dir)) == 0 })
	back := time.Now()
	waitFor(t, "a request queued again", func() bool {
		return post(t, proxy+"/api/v1/write", padded(numbered(series, acked))).StatusCode == http.StatusNoContent
	})
	if d := time.Since(back); d > 5*time.Second {
		t.Fatalf("requests queued again %v after the backlog was delivered, want within seconds", d)
	}
}

// In split mode, a tenant whose upstream refuses everything for the whole
// test cannot take the disk from the others: its producer gets 429 saying
// its queue is full once it holds half of max_disk_bytes, while every
// request of the two other tenants is queued (204) and delivered, and the
// segment files stay within the quota.
func TestQueueStalledTenantLeavesOthersRoom(t *testing.T) {
	const stalledPath = "/insert/3:0/prometheus/api/v1/write"
	up, _ := newUpstream(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == stalledPath {
			http.Error(w, "tenant 3's cluster is down", http.StatusServiceUnavailable)
			return
		}
		up.serve(w, r)
	}))
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	const quota = 1 << 20
	_, proxy := newWritersProxy(t, fmt.Sprintf(`
writer:
  datasource_url: %s/
  tenant_id: multitenant
routing:
  split_tenants: true
queue:
  path: %s
  max_disk_bytes: %d
  segment_bytes: 64KiB
  retry_min_interval: 10ms
  retry_max_interval: 50ms
`, srv.URL, dir, quota))
	const rounds, series = 150, 500
	refused, lastMsg := 0, ""
	for i := range rounds {
		for _, tenant := range []string{"1:0", "2:0", "3:0"} {
			code, msg := postBody(t, proxy.URL+"/insert/"+tenant+"/prometheus/api/v1/write", numbered(series, i))
			switch {
			case code == http.StatusNoContent:
			case tenant == "3:0" && code == http.StatusTooManyRequests:
				refused, lastMsg = refused+1, msg
			default:
				t.Fatalf("round %d, tenant %s: %d %s", i, tenant, code, msg)
			}
		}
		if used := dirSize(t, filepath.Join(dir, "log")); used > quota+64<<10 {
			t.Fatalf("round %d: the segment files hold %d bytes, more than the quota and a segment", i, used)
		}
	}
	if refused == 0 || !strings.Contains(lastMsg, "queue full for ") || !strings.Contains(lastMsg, stalledPath) {
		t.Fatalf("the stalled tenant was refused %d times, last with %q: want 429 naming its queue", refused, lastMsg)
	}
	for _, tenant := range []string{"1:0", "2:0"} {
		path := "/insert/" + tenant + "/prometheus/api/v1/write"
		waitFor(t, "tenant "+tenant+"'s samples", func() bool {
			up.mu.Lock()
			defer up.mu.Unlock()
			return len(up.samples[path]) == rounds*series*2
		})
	}
	t.Logf("tenant 3 refused %d of %d requests; tenants 1 and 2 delivered", refused, rounds)
}

// dirSize sums the sizes of the files in dir.
func dirSize(t *testing.T, dir string) int64 {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var sum int64
	for _, e := range entries {
		if info, err := e.Info(); err == nil {
			sum += info.Size()
		}
	}
	return sum
}
