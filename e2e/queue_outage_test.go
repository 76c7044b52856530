package e2e

import (
	"testing"
	"time"

	"github.com/scoreproxy/scoreproxy/internal/testenv"
)

// upstreamOutage is how long VictoriaMetrics is stopped under load.
const upstreamOutage = 30 * time.Second

// TestQueueUpstreamOutage stops VictoriaMetrics for 30 s while producers keep
// writing through scoreproxy's durable queue, then starts it again: every
// sample scoreproxy acknowledged, before, during and after the outage, is
// read back from VictoriaMetrics.
func TestQueueUpstreamOutage(t *testing.T) {
	bin := scoreproxy(t)
	data := t.TempDir()
	vm := startVMWithData(t, data)
	up := newRelay(t)
	up.up(t, vm.Addr)
	sp := testenv.StartScoreproxy(t, bin, queueConfig(up.url(), t.TempDir(), ""))
	sp.WaitReady(t, 15*time.Second)

	load := newProducers(sp.URL)
	stopLoad := load.start(t, 2, 25*time.Millisecond)
	time.Sleep(2 * time.Second)

	start := time.Now()
	up.down()
	if err := vm.Stop(); err != nil {
		t.Fatalf("stop VictoriaMetrics: %v", err)
	}
	acked := len(load.ackedIDs())
	t.Logf("VictoriaMetrics stopped after %d acknowledged requests", acked)
	time.Sleep(upstreamOutage / 2)
	pending := metricValue(t, sp, "scoreproxy_queue_pending_blocks", nil)
	if pending == 0 || metricValue(t, sp, "scoreproxy_queue_retries_total", nil) == 0 {
		t.Errorf("during the outage: %v pending blocks and no retries counted; want both above 0", pending)
	}
	if age := metricValue(t, sp, "scoreproxy_queue_oldest_block_age_seconds", nil); age < 5 {
		t.Errorf("oldest block age %v s halfway through the outage, want at least 5 s", age)
	}
	sp.WaitReady(t, time.Second) // still takes data: the queue is not full
	time.Sleep(upstreamOutage - time.Since(start))

	vm = startVMWithData(t, data)
	up.up(t, vm.Addr)
	t.Logf("VictoriaMetrics back after %v; %d requests acknowledged during the outage",
		time.Since(start).Round(time.Second), len(load.ackedIDs())-acked)
	time.Sleep(2 * time.Second)
	stopLoad()

	ids := load.ackedIDs()
	if len(ids)-acked < 100 {
		t.Fatalf("only %d requests acknowledged during the outage; the load did not go on", len(ids)-acked)
	}
	stored := waitAllAcked(t, vm, ids, 60*time.Second)
	t.Logf("%d requests (%d samples) acknowledged, all read back (%d distinct samples stored); answers: 204 %d, 429 %d, 503 %d, none %d",
		len(ids), len(ids)*loadSeries, stored, load.answers(204), load.answers(429), load.answers(503), load.answers(0))
	eventually(t, "the queue to drain", 30*time.Second, func() bool {
		return metricValue(t, sp, "scoreproxy_queue_pending_blocks", nil) == 0
	})
	// The backlog went out in groups (spliced snappy blocks, see queue/splice.go),
	// which VictoriaMetrics took: every sample was read back above.
	requests := metricValue(t, sp, "vmanomaly_writer_responses_total", map[string]string{"code": "204"})
	t.Logf("%d acknowledged requests delivered in %v upstream requests", len(ids), requests)
	if requests == 0 || requests >= float64(len(ids)) {
		t.Errorf("%v upstream requests delivered %d acknowledged requests; want the backlog grouped into fewer", requests, len(ids))
	}
}
