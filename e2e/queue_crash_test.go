package e2e

import (
	"encoding/binary"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/scoreproxy/scoreproxy/internal/testenv"
)

// TestQueueSurvivesSIGKILL kills scoreproxy with SIGKILL twice under load,
// once with acknowledged data still queued (the upstream unreachable) and
// once while that backlog is being delivered, restarting it each time on the
// same queue directory: every acknowledged sample is read back from
// VictoriaMetrics (duplicates allowed).
func TestQueueSurvivesSIGKILL(t *testing.T) {
	bin := scoreproxy(t)
	vm := testenv.StartVictoriaMetrics(t)
	up := newRelay(t)
	up.up(t, vm.Addr)
	cfg := queueConfig(up.url(), t.TempDir(), "")
	sp := testenv.StartScoreproxy(t, bin, cfg)

	load := newProducers(sp.URL)
	stopLoad := load.start(t, 4, 5*time.Millisecond)

	time.Sleep(time.Second)
	up.down() // acknowledged blocks pile up in the queue
	time.Sleep(time.Second)
	backlog := metricValue(t, sp, "scoreproxy_queue_pending_blocks", nil)
	kill(t, sp.Process)
	t.Logf("first SIGKILL with %v blocks queued, %d requests acknowledged", backlog, len(load.ackedIDs()))
	sp = testenv.StartScoreproxy(t, bin, cfg)
	load.setTarget(sp.URL)
	if logs, ok := sp.WaitLogs(10*time.Second, "undelivered blocks found"); !ok {
		t.Errorf("the restart did not report the blocks left queued; its log:\n%s", logs)
	}

	up.up(t, vm.Addr)
	time.Sleep(500 * time.Millisecond) // delivering the backlog, under load
	kill(t, sp.Process)
	t.Logf("second SIGKILL while delivering, %d requests acknowledged", len(load.ackedIDs()))
	sp = testenv.StartScoreproxy(t, bin, cfg)
	load.setTarget(sp.URL)
	time.Sleep(time.Second)
	stopLoad()

	ids := load.ackedIDs()
	stored := waitAllAcked(t, vm, ids, 60*time.Second)
	t.Logf("%d requests (%d samples) acknowledged, all read back (%d distinct samples stored); unanswered tries: %d",
		len(ids), len(ids)*loadSeries, stored, load.answers(0))
}

// TestQueueCorruptedSegment damages a queue file while scoreproxy is stopped:
// one record in the middle of the segment gets garbage in its payload and
// the last one is cut short, as a crash during a write leaves it. Start-up
// succeeds, both losses are reported (metrics and log, in bytes and, exactly,
// in the blocks and samples that never arrive), every other acknowledged
// sample is delivered, and later data flows.
func TestQueueCorruptedSegment(t *testing.T) {
	bin := scoreproxy(t)
	vm := testenv.StartVictoriaMetrics(t)
	up := newRelay(t) // down: the blocks stay queued
	dir := t.TempDir()
	cfg := queueConfig(up.url(), dir, "")
	sp := testenv.StartScoreproxy(t, bin, cfg)
	load := newProducers(sp.URL)
	for range 10 {
		load.sendOne(nil)
	}
	if n := len(load.ackedIDs()); n != 10 {
		t.Fatalf("%d of 10 requests acknowledged", n)
	}
	if err := sp.Stop(); err != nil {
		t.Fatalf("stop scoreproxy: %v", err)
	}

	segs := segmentFiles(t, dir)
	if len(segs) != 1 {
		t.Fatalf("segment files %v, want 1", segs)
	}
	offsets := recordOffsets(t, segs[0])
	if len(offsets) != 10 {
		t.Fatalf("%d records in %s, want 10", len(offsets), segs[0])
	}
	const damaged, torn = 3, 9 // request ids: record i holds request i
	garble(t, segs[0], offsets[damaged]+40)
	if err := os.Truncate(segs[0], offsets[torn]+30); err != nil {
		t.Fatal(err)
	}

	up.up(t, vm.Addr)
	sp = testenv.StartScoreproxy(t, bin, cfg)
	load.setTarget(sp.URL)
	for range 5 {
		load.sendOne(nil) // later data
	}
	var delivered []int64
	for _, id := range load.ackedIDs() {
		if id != damaged && id != torn {
			delivered = append(delivered, id)
		}
	}
	waitAllAcked(t, vm, delivered, 30*time.Second)
	if got := metricValue(t, sp, "scoreproxy_queue_corrupted_records_total", nil); got != 2 {
		t.Errorf("scoreproxy_queue_corrupted_records_total = %v, want 2", got)
	}
	if got := metricValue(t, sp, "scoreproxy_queue_corrupted_bytes_total", nil); got == 0 {
		t.Errorf("scoreproxy_queue_corrupted_bytes_total = 0, want the bytes lost")
	}
	// Exactly what never arrives: the two requests' blocks and samples.
	if got := metricValue(t, sp, "scoreproxy_queue_lost_blocks_total", nil); got != 2 {
		t.Errorf("scoreproxy_queue_lost_blocks_total = %v, want 2", got)
	}
	if got := metricValue(t, sp, "scoreproxy_queue_lost_samples_total", nil); got != 2*loadSeries {
		t.Errorf("scoreproxy_queue_lost_samples_total = %v, want %d", got, 2*loadSeries)
	}
	if logs, ok := sp.WaitLogs(5*time.Second, "blocks_lost=2 samples_lost=200"); !ok {
		t.Errorf("no log line reports 2 blocks and 200 samples lost:\n%s", logs)
	}
	logs, _ := sp.WaitLogs(5*time.Second, "skipped a torn or corrupted record", "bytes_lost=")
	if n := strings.Count(logs, "skipped a torn or corrupted record"); n != 2 || !strings.Contains(logs, "bytes_lost=") {
		t.Errorf("%d log lines about corrupted records (want 2, with bytes_lost):\n%s", n, logs)
	}
	for _, s := range vmExport(t, vm) {
		for _, ts := range s.Timestamps {
			if ts == loadBase+damaged || ts == loadBase+torn {
				t.Errorf("sample at %d of a reported-lost record was delivered: the loss report is wrong", ts)
			}
		}
	}
}

// recordOffsets walks a segment file by its documented record headers
// ([magic u32][length u32][crc32c u32][payload]) and returns where each starts.
func recordOffsets(t *testing.T, path string) []int64 {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var offs []int64
	for off := 0; off+12 <= len(data); {
		if string(data[off:off+4]) != "SPQ2" {
			t.Fatalf("%s: no record magic at %d", path, off)
		}
		offs = append(offs, int64(off))
		off += 12 + int(binary.LittleEndian.Uint32(data[off+4:]))
	}
	return offs
}

// garble overwrites 8 bytes at off.
func garble(t *testing.T, path string, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt([]byte("GARBAGE!"), off); err != nil {
		t.Fatal(err)
	}
}
