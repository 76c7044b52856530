package queue

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"
)

// testLog is the shared log of a queue directory with the cursors of two
// endpoints (ids 1 and 2, directories e1 and e2), as Open builds them.
type testLog struct {
	dir       string
	l         *segmentLog
	cur       map[uint32]*cursor
	total     *atomic.Int64
	corrupted []corruption
	lost      map[uint32]int // blocks reported lost, by endpoint
	skipped   []recordRef    // records readBodies found damaged
}

// openTestLog opens the log in dir with segments of segmentBytes, so that a
// few records span several files.
func openTestLog(t *testing.T, dir string, segmentBytes int64) *testLog {
	t.Helper()
	tl := &testLog{dir: dir, cur: map[uint32]*cursor{}, total: new(atomic.Int64), lost: map[uint32]int{}}
	minNext := uint64(1)
	for _, id := range []uint32{1, 2} {
		edir := filepath.Join(dir, fmt.Sprint("e", id))
		if err := os.MkdirAll(edir, 0o755); err != nil {
			t.Fatal(err)
		}
		c, err := openCursor(edir, id, nil)
		if err != nil {
			t.Fatal(err)
		}
		tl.cur[id] = c
		minNext = max(minNext, c.start.seg+1)
	}
	l, err := loadLog(filepath.Join(dir, logDir), Options{SegmentBytes: segmentBytes, syncFile: (*os.File).Sync}, tl.total, tl.cur, minNext,
		loadReport{
			damaged: func(c corruption) { tl.corrupted = append(tl.corrupted, c) },
			orphan:  func(r scanned) { t.Errorf("record of unknown endpoint %d", r.endpoint) },
			lost:    func(endpoint uint32, _ uint64, l lossSum) { tl.lost[endpoint] += l.blocks },
		})
	if err != nil {
		t.Fatalf("loadLog: %v", err)
	}
	tl.l = l
	return tl
}

func (tl *testLog) close() {
	tl.l.close()
	for _, c := range tl.cur {
		c.close()
	}
}

// appendBodies writes one record per body for endpoint id and commits them,
// as the committer does.
func (tl *testLog) appendBodies(t *testing.T, id uint32, bodies ...string) {
	t.Helper()
	var refs []recordRef
	for _, b := range bodies {
		now := time.Now()
		at, end, err := tl.l.write(appendRecord(nil, id, []byte(b), stats(1, 2), nil, now))
		if err != nil {
			t.Fatalf("write: %v", err)
		}
		refs = append(refs, recordRef{at: at, end: end, enqueued: now, samples: 2})
	}
	if err := tl.l.commit(); err != nil {
		t.Fatalf("commit: %v", err)
	}
	tl.cur[id].push(refs...)
}

// readBodies reads and acknowledges n records of endpoint id, failing if
// they do not come within a bounded wait.
func (tl *testLog) readBodies(t *testing.T, id uint32, n int) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var out []string
	for len(out) < n {
		it, _, err := tl.cur[id].next(ctx, nil)
		if err != nil {
			t.Fatalf("next after %v: %v", out, err)
		}
		if it.skip {
			tl.skipped = append(tl.skipped, it.ref)
		} else {
			out = append(out, string(it.body))
		}
		tl.cur[id].ackAll([]item{it})
	}
	return out
}

// wantNothing checks that endpoint id has nothing to read.
func (tl *testLog) wantNothing(t *testing.T, id uint32) {
	t.Helper()
	if it, _, err := tl.cur[id].poll(nil); err == nil {
		t.Fatalf("unexpected record %q (skip %v)", it.body, it.skip)
	}
}

func segmentFiles(t *testing.T, dir string) []uint64 {
	t.Helper()
	ids, err := listSegments(filepath.Join(dir, logDir))
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

func bodies(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%02d", prefix, i)
	}
	return out
}

// Two endpoints share the log: each reads its own records in order; a
// segment is deleted once every record in it, of either endpoint, is
// delivered; the quota counts what undelivered data holds.
func TestLogSharedByEndpoints(t *testing.T) {
	dir := t.TempDir()
	tl := openTestLog(t, dir, 100) // each record is 39 bytes: 3 per segment
	defer tl.close()
	a, b := bodies("a", 6), bodies("b", 4)
	for i := range a {
		tl.appendBodies(t, 1, a[i])
		if i < len(b) {
			tl.appendBodies(t, 2, b[i])
		}
	}
	if n := len(segmentFiles(t, dir)); n != 4 {
		t.Fatalf("%d segment files after 10 records of 39 bytes, want 4", n)
	}
	if blocks, bytes, _ := tl.cur[1].pending(); blocks != 6 || bytes != 6*39 {
		t.Fatalf("endpoint 1 pending %d blocks, %d bytes; want 6, 234", blocks, bytes)
	}
	if got := tl.readBodies(t, 1, 6); !slices.Equal(got, a) {
		t.Fatalf("endpoint 1 read %v, want %v", got, a)
	}
	tl.wantNothing(t, 1)
	// Endpoint 2 has not delivered: every segment holds one of its records.
	if n := len(segmentFiles(t, dir)); n != 4 {
		t.Fatalf("%d segment files while endpoint 2 has delivered nothing, want all 4 kept", n)
	}
	if held := tl.total.Load(); held != 3*117 {
		t.Fatalf("quota counts %d bytes; want the 3 sealed segments endpoint 2 holds, whole (%d)", held, 3*117)
	}
	if got := tl.readBodies(t, 2, 4); !slices.Equal(got, b) {
		t.Fatalf("endpoint 2 read %v, want %v", got, b)
	}
	if ids := segmentFiles(t, dir); len(ids) != 1 {
		t.Fatalf("segments %v left after delivering everything, want only the one being written", ids)
	}
	if held := tl.total.Load(); held != 0 {
		t.Fatalf("quota counts %d bytes after delivering everything", held)
	}
}

// A restart resumes each endpoint after its last acknowledged record;
// unacknowledged ones come again, first.
func TestLogResumesAfterRestart(t *testing.T) {
	dir := t.TempDir()
	tl := openTestLog(t, dir, 100)
	for i, body := range bodies("old", 5) {
		tl.appendBodies(t, 1, body)
		tl.appendBodies(t, 2, fmt.Sprint("two-", i))
	}
	tl.readBodies(t, 1, 2)
	tl.readBodies(t, 2, 4)
	if _, _, err := tl.cur[1].next(context.Background(), nil); err != nil { // read, not acknowledged
		t.Fatal(err)
	}
	tl.close()

	tl = openTestLog(t, dir, 100)
	defer tl.close()
	if len(tl.corrupted) != 0 {
		t.Fatalf("clean log reported corrupted: %+v", tl.corrupted)
	}
	if blocks, _, oldest := tl.cur[1].pending(); blocks != 3 || oldest.IsZero() {
		t.Fatalf("pending %d blocks (oldest %v) after restart, want 3", blocks, oldest)
	}
	tl.appendBodies(t, 1, "new-00")
	if got, want := tl.readBodies(t, 1, 4), "[old-02 old-03 old-04 new-00]"; fmt.Sprint(got) != want {
		t.Fatalf("read %v after restart, want %v", got, want)
	}
	if got := tl.readBodies(t, 2, 1); fmt.Sprint(got) != "[two-4]" {
		t.Fatalf("endpoint 2 read %v after restart, want [two-4]", got)
	}
	if ids := segmentFiles(t, dir); len(ids) != 1 {
		t.Fatalf("segments %v left after delivering everything, want only the one being written", ids)
	}
}

// Segments deleted, then a restart: new segments are numbered after every
// read offset, so no new record can look delivered to the next start.
func TestLogNumbersAfterReadOffsets(t *testing.T) {
	dir := t.TempDir()
	tl := openTestLog(t, dir, 100)
	tl.appendBodies(t, 1, bodies("a", 7)...)
	tl.readBodies(t, 1, 7)
	tl.close()
	for _, id := range segmentFiles(t, dir) { // as if every segment had been deleted
		os.Remove(filepath.Join(dir, logDir, fmt.Sprintf("%016x%s", id, segmentExt)))
	}
	tl = openTestLog(t, dir, 100)
	tl.appendBodies(t, 1, "after")
	tl.close()
	tl = openTestLog(t, dir, 100)
	defer tl.close()
	if got := tl.readBodies(t, 1, 1); fmt.Sprint(got) != "[after]" {
		t.Fatalf("read %v, want [after]", got)
	}
}

// A record torn by a crash mid-write is skipped and reported with the bytes
// lost; the records before it are delivered, and so is what comes later.
func TestLogTornTail(t *testing.T) {
	dir := t.TempDir()
	tl := openTestLog(t, dir, 1<<20)
	tl.appendBodies(t, 1, "a", "b")
	tl.appendBodies(t, 2, "c")
	tl.close()
	path := tl.l.segPath(1)
	st, _ := os.Stat(path)
	if err := os.Truncate(path, st.Size()-10); err != nil {
		t.Fatal(err)
	}

	tl = openTestLog(t, dir, 1<<20)
	defer tl.close()
	if len(tl.corrupted) != 1 {
		t.Fatalf("corruptions %+v, want 1", tl.corrupted)
	}
	c := tl.corrupted[0]
	if lost := c.end - c.at.off; c.at != (position{1, 2 * recordSize(1)}) || lost != recordSize(1)-10 {
		t.Fatalf("corruption at %+v losing %d bytes, want at offset %d losing %d", c.at, lost, 2*recordSize(1), recordSize(1)-10)
	}
	if blocks, _, _ := tl.cur[1].pending(); blocks != 2 {
		t.Fatalf("pending %d blocks, want 2", blocks)
	}
	tl.appendBodies(t, 1, "d")
	if got := tl.readBodies(t, 1, 3); fmt.Sprint(got) != "[a b d]" {
		t.Fatalf("read %v, want [a b d]", got)
	}
	tl.wantNothing(t, 1)
	tl.wantNothing(t, 2)
}

// A record damaged in the middle of a segment costs that record only; one
// damaged after start-up is skipped when delivery meets it.
func TestLogMidRecordCorruption(t *testing.T) {
	dir := t.TempDir()
	tl := openTestLog(t, dir, 1<<20)
	tl.appendBodies(t, 1, "first", "second", "third")
	tl.close()
	secondAt := recordSize(len("first"))
	garble := func(at int64) {
		f, err := os.OpenFile(tl.l.segPath(1), os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.WriteAt([]byte("XY"), at+headerSize+payloadHead); err != nil {
			t.Fatal(err)
		}
	}
	garble(secondAt)

	tl = openTestLog(t, dir, 1<<20)
	defer tl.close()
	if len(tl.corrupted) != 1 || tl.corrupted[0].at.off != secondAt || tl.corrupted[0].end != secondAt+recordSize(len("second")) {
		t.Fatalf("corruptions %+v, want the second record [%d, %d)", tl.corrupted, secondAt, secondAt+recordSize(len("second")))
	}
	garble(secondAt + recordSize(len("second"))) // the third, after start-up checked it
	tl.appendBodies(t, 1, "fourth")
	if got := tl.readBodies(t, 1, 2); fmt.Sprint(got) != "[first fourth]" {
		t.Fatalf("read %v, want [first fourth]", got)
	}
	if third := secondAt + recordSize(len("second")); len(tl.skipped) != 1 || tl.skipped[0].at.off != third || tl.skipped[0].samples != 2 {
		t.Fatalf("damage met while delivering: skipped %+v, want the third record, at %d, with its 2 samples", tl.skipped, third)
	}
	if ids := segmentFiles(t, dir); len(ids) != 1 {
		t.Fatalf("segments %v left after delivering everything, want only the one being written", ids)
	}
}

// A damaged read-offset file means starting from the oldest segment:
// duplicates, never losses.
func TestLogDamagedOffsetFile(t *testing.T) {
	dir := t.TempDir()
	tl := openTestLog(t, dir, 1<<20)
	tl.appendBodies(t, 1, "a", "b", "c")
	tl.readBodies(t, 1, 2)
	tl.close()
	if err := os.WriteFile(filepath.Join(dir, "e1", readOffsetFile), []byte("junk"), 0o600); err != nil {
		t.Fatal(err)
	}
	tl = openTestLog(t, dir, 1<<20)
	defer tl.close()
	if got := tl.readBodies(t, 1, 3); fmt.Sprint(got) != "[a b c]" {
		t.Fatalf("read %v, want [a b c]", got)
	}
}
