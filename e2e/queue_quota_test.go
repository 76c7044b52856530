package e2e

import (
	"bytes"
	"net/http"
	"testing"
	"time"

	"github.com/golang/snappy"

	"github.com/scoreproxy/scoreproxy/internal/testenv"
)

// TestQueueDiskQuota fills the queue while VictoriaMetrics is unreachable:
// scoreproxy answers 429 with Retry-After (never dropping) and /ready says
// it is full; once the upstream is back and the queue drained, it takes data
// again, and every acknowledged sample is read back.
func TestQueueDiskQuota(t *testing.T) {
	bin := scoreproxy(t)
	vm := testenv.StartVictoriaMetrics(t)
	up := newRelay(t) // down
	sp := testenv.StartScoreproxy(t, bin, queueConfig(up.url(), t.TempDir(), "  max_disk_bytes: 64KiB\n"))
	load := newProducers(sp.URL)

	var full *http.Response
	for id := range int64(200) {
		resp := pushOnce(t, sp.URL, id)
		if resp.StatusCode == http.StatusNoContent {
			load.acked[id] = true
			continue
		}
		full = resp
		break
	}
	if full == nil || full.StatusCode != http.StatusTooManyRequests || full.Header.Get("Retry-After") == "" {
		t.Fatalf("a full queue answered %+v, want 429 with Retry-After", full)
	}
	t.Logf("429 (Retry-After %s) after %d acknowledged requests", full.Header.Get("Retry-After"), len(load.acked))
	if got := readyStatus(t, sp); got != http.StatusServiceUnavailable {
		t.Errorf("/ready = %d while the queue is full, want 503", got)
	}
	if got := metricValue(t, sp, "scoreproxy_queue_quota_exceeded_total", nil); got == 0 {
		t.Errorf("scoreproxy_queue_quota_exceeded_total = 0 after a 429")
	}

	up.up(t, vm.Addr)
	eventually(t, "/ready once the queue drained", 30*time.Second, func() bool { return readyStatus(t, sp) == http.StatusOK })
	// /ready turns 200 as soon as one more block of the refused size fits;
	// wait for the whole backlog to be delivered before expecting room for
	// several requests.
	eventually(t, "an empty queue", 30*time.Second, func() bool {
		return metricValue(t, sp, "scoreproxy_queue_pending_bytes", nil) == 0
	})
	next := int64(len(load.acked)) + 1
	for id := next; id < next+5; id++ {
		if resp := pushOnce(t, sp.URL, id); resp.StatusCode != http.StatusNoContent {
			t.Fatalf("after draining, request %d got %d, want 204", id, resp.StatusCode)
		}
		load.acked[id] = true
	}
	waitAllAcked(t, vm, load.ackedIDs(), 30*time.Second)
}

// pushOnce sends request id once and returns the answer (body closed).
func pushOnce(t *testing.T, base string, id int64) *http.Response {
	t.Helper()
	raw, err := loadRequest(id).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, base+"/api/v1/write", bytes.NewReader(snappy.Encode(nil, raw)))
	req.Header.Set("Content-Encoding", "snappy")
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", base, err)
	}
	resp.Body.Close()
	return resp
}

func readyStatus(t *testing.T, sp *testenv.Scoreproxy) int {
	t.Helper()
	resp, err := http.Get(sp.URL + "/ready")
	if err != nil {
		t.Fatalf("GET /ready: %v", err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
