package app

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/scoreproxy/scoreproxy/queue"
	"github.com/scoreproxy/scoreproxy/remotewrite"
)

// startQueueProxy starts an in-process proxy whose queue is closed at the end of the test.
func startQueueProxy(t *testing.T, yaml string) (*Proxy, *httptest.Server) {
	t.Helper()
	return newWritersProxy(t, yaml)
}

// In split mode with a queue, a tenant whose requests the upstream refuses
// does not hold up the others: the producer gets 204 once the batches are on
// disk, the other nine tenants receive every sample, and the refused batch is
// kept in that tenant's rejected-data file.
func TestQueueSplitTenantRefusedDoesNotBlockOthers(t *testing.T) {
	up, upSrv := newUpstream(t)
	const refused = "/insert/3:0/prometheus/api/v1/write"
	upstreamWithBadTenant := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == refused {
			http.Error(w, "cannot parse series of tenant 3", http.StatusBadRequest)
			return
		}
		up.serve(w, r)
	}))
	defer upstreamWithBadTenant.Close()
	upSrv.Close()
	dir := t.TempDir()
	_, proxy := startQueueProxy(t, fmt.Sprintf(`
writer:
  datasource_url: %s/
  tenant_id: multitenant
  metric_format:
    __name__: vmanomaly_$VAR
    for: q_$QUERY_KEY
    run: test_metric_format
routing:
  split_tenants: true
queue:
  path: %s
  retry_min_interval: 10ms
  retry_max_interval: 50ms
`, upstreamWithBadTenant.URL, dir))
	wr := modelOutputs(1000, 10)
	if resp := post(t, proxy.URL+"/api/v1/write", wr); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("producer got %d, want 204 (durably queued)", resp.StatusCode)
	}
	want := expected(wr, func(a string) string { return "/insert/" + a + ":0/prometheus/api/v1/write" }, false)
	delete(want, refused)
	waitFor(t, "the nine healthy tenants' samples", func() bool {
		up.mu.Lock()
		defer up.mu.Unlock()
		return fmt.Sprint(up.samples) == fmt.Sprint(want)
	})
	var rejected []queue.RejectedBlock
	waitFor(t, "the refused batch in the rejected-data file", func() bool {
		files, _ := filepath.Glob(filepath.Join(dir, "*_insert_3_0_*", "rejected.jsonl"))
		if len(files) != 1 {
			return false
		}
		rejected, _ = queue.ReadRejected(files[0])
		return len(rejected) == 1
	})
	r := rejected[0]
	if r.Status != 400 || r.Message != "cannot parse series of tenant 3" || r.Series != 100 || r.Samples != 200 ||
		!strings.HasSuffix(r.URL, refused) {
		t.Errorf("rejected block %+v", r)
	}
}

// With a queue, /ready follows the queue's room, not the upstream: a dead
// upstream still takes data; a full queue answers 429 and is not ready.
func TestQueueReadyFollowsQueueRoom(t *testing.T) {
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	_, proxy := startQueueProxy(t, fmt.Sprintf(`
writer:
  datasource_url: %s
queue:
  path: %s
  max_disk_bytes: 1000
`, dead.URL, t.TempDir()))
	readyStatus := func() int {
		resp, err := http.Get(proxy.URL + "/ready")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := readyStatus(); got != http.StatusOK {
		t.Fatalf("/ready = %d with an empty queue and the upstream down, want 200", got)
	}
	// An empty queue takes a block larger than the quota, so the quota never blocks forever.
	if resp := post(t, proxy.URL+"/api/v1/write", modelOutputs(50, 1)); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("first request got %d, want 204", resp.StatusCode)
	}
	resp := post(t, proxy.URL+"/api/v1/write", modelOutputs(50, 1))
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "1" {
		t.Fatalf("request to a full queue got %d Retry-After %q, want 429 and 1", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if got := readyStatus(); got != http.StatusServiceUnavailable {
		t.Fatalf("/ready = %d with a full queue, want 503", got)
	}
}

// serve closes the queue on shutdown: the directory is released and what was
// not delivered is still there for the next start.
func TestQueueServeShutdownKeepsUndelivered(t *testing.T) {
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	addr, dir := freeAddr(t), t.TempDir()
	cfg := writeConfig(t, fmt.Sprintf("listen: %s\nwriter:\n  datasource_url: %s\nqueue:\n  path: %s\nserver:\n  shutdown_timeout: 5s\n",
		addr, dead.URL, dir))
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- Serve(ctx, cfg, slog.New(slog.DiscardHandler)) }()
	waitFor(t, "the listener", func() bool { return accepting(addr) })
	if resp := post(t, "http://"+addr+"/api/v1/write", modelOutputs(10, 1)); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("got %d, want 204", resp.StatusCode)
	}
	cancel()
	select {
	case err := <-served:
		if err != nil {
			t.Fatalf("serve returned %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not return within shutdown_timeout")
	}
	var delivered atomic.Int64
	q, err := queue.Open(queue.Options{Dir: dir, Logger: slog.New(slog.DiscardHandler)}, upstreamFunc(
		func(context.Context, string, []byte, remotewrite.BatchStats) remotewrite.SendResult {
			delivered.Add(1)
			return remotewrite.SendResult{StatusCode: 204}
		}))
	if err != nil {
		t.Fatalf("reopening the queue after shutdown: %v", err)
	}
	defer q.Close(context.Background())
	waitFor(t, "the block left by the first run", func() bool { return delivered.Load() == 1 })
}

type upstreamFunc func(context.Context, string, []byte, remotewrite.BatchStats) remotewrite.SendResult

func (f upstreamFunc) Send(ctx context.Context, url string, body []byte, stats remotewrite.BatchStats) remotewrite.SendResult {
	return f(ctx, url, body, stats)
}

// A queue directory held by another process stops start-up with a message naming the key.
func TestQueuePathInUse(t *testing.T) {
	dir := t.TempDir()
	held, err := queue.Open(queue.Options{Dir: dir, Logger: slog.New(slog.DiscardHandler)}, upstreamFunc(nil))
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close(context.Background())
	_, err = New(writeConfig(t, "writer:\n  datasource_url: http://127.0.0.1:1\nqueue:\n  path: "+dir+"\n"), slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "queue.path:") || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("newProxy with a held queue directory: %v, want an error naming queue.path", err)
	}
}
