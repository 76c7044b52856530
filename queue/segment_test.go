package queue

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// openTestLog opens a log in dir with tiny segments, so that a few records
// span several files.
func openTestLog(t *testing.T, dir string, segmentBytes int64) (*segmentLog, scanReport) {
	t.Helper()
	l, rep, err := openLog(dir, segmentBytes, (*os.File).Sync, new(atomic.Int64))
	if err != nil {
		t.Fatalf("openLog: %v", err)
	}
	return l, rep
}

// appendBodies writes and commits one record per body.
func appendBodies(t *testing.T, l *segmentLog, bodies ...string) {
	t.Helper()
	for _, b := range bodies {
		if err := l.write(appendRecord(nil, []byte(b), 1, 2, time.Now())); err != nil {
			t.Fatalf("write: %v", err)
		}
	}
	if err := l.commit(); err != nil {
		t.Fatalf("commit: %v", err)
	}
}

// readBodies reads and acknowledges n records, failing if they do not come
// within a bounded wait.
func readBodies(t *testing.T, l *segmentLog, n int) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var out []string
	for len(out) < n {
		it, _, err := l.next(ctx, nil)
		if err != nil {
			t.Fatalf("next after %v: %v", out, err)
		}
		if !it.segEnd {
			out = append(out, string(it.body))
		}
		if err := l.ack(it); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// wantNothing checks that no record is pending, waiting briefly.
func wantNothing(t *testing.T, l *segmentLog) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	for {
		it, _, err := l.next(ctx, nil)
		if err != nil {
			return
		}
		if !it.segEnd {
			t.Fatalf("unexpected record %q", it.body)
		}
		l.ack(it) // a finished segment is no record
	}
}

func segmentFiles(t *testing.T, dir string) []uint64 {
	t.Helper()
	ids, err := listSegments(dir)
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

func TestLogWriteReadRotateDelete(t *testing.T) {
	dir := t.TempDir()
	l, _ := openTestLog(t, dir, 100) // each record is 37 bytes: 3 per segment
	want := bodies("block", 10)
	appendBodies(t, l, want[:4]...)
	appendBodies(t, l, want[4:]...)
	if n := len(segmentFiles(t, dir)); n != 4 {
		t.Fatalf("%d segment files after 10 records of 37 bytes, want 4", n)
	}
	if blocks, bytes, _ := l.pending(); blocks != 10 || bytes != 10*37 {
		t.Fatalf("pending %d blocks, %d bytes; want 10, 370", blocks, bytes)
	}
	got := readBodies(t, l, 10)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("read %v, want %v", got, want)
	}
	wantNothing(t, l)
	if ids := segmentFiles(t, dir); len(ids) != 1 {
		t.Fatalf("segments %v left after delivering everything, want only the one being written", ids)
	}
	if blocks, bytes, _ := l.pending(); blocks != 0 || bytes != 0 {
		t.Fatalf("pending %d blocks, %d bytes after delivering everything", blocks, bytes)
	}
	if err := l.close(); err != nil {
		t.Fatal(err)
	}
}

// A restart resumes after the last acknowledged record; unacknowledged ones
// come again, first.
func TestLogResumesAfterRestart(t *testing.T) {
	dir := t.TempDir()
	l, _ := openTestLog(t, dir, 100)
	appendBodies(t, l, bodies("old", 5)...)
	readBodies(t, l, 2)
	if _, _, err := l.next(context.Background(), nil); err != nil { // read, not acknowledged
		t.Fatal(err)
	}
	l.close()

	l, rep := openTestLog(t, dir, 100)
	defer l.close()
	if len(rep.corrupted) != 0 {
		t.Fatalf("clean log reported corrupted: %+v", rep.corrupted)
	}
	if blocks, _, oldest := l.pending(); blocks != 3 || oldest.IsZero() {
		t.Fatalf("pending %d blocks (oldest %v) after restart, want 3", blocks, oldest)
	}
	appendBodies(t, l, "new-00")
	got := readBodies(t, l, 4)
	if want := "[old-02 old-03 old-04 new-00]"; fmt.Sprint(got) != want {
		t.Fatalf("read %v after restart, want %v", got, want)
	}
}

// A record torn by a crash mid-write is skipped and reported with the bytes
// lost; the records before it are delivered, and so is what comes later.
func TestLogTornTail(t *testing.T) {
	dir := t.TempDir()
	l, _ := openTestLog(t, dir, 1<<20)
	appendBodies(t, l, "a", "b", "c")
	l.close()
	path := l.segPath(1)
	st, _ := os.Stat(path)
	if err := os.Truncate(path, st.Size()-10); err != nil {
		t.Fatal(err)
	}

	l, rep := openTestLog(t, dir, 1<<20)
	defer l.close()
	if len(rep.corrupted) != 1 {
		t.Fatalf("corruptions %+v, want 1", rep.corrupted)
	}
	c := rep.corrupted[0]
	if lost := c.end - c.at.off; c.at != (position{1, 2 * recordSize(1)}) || lost != recordSize(1)-10 {
		t.Fatalf("corruption at %+v losing %d bytes, want at offset %d losing %d", c.at, lost, 2*recordSize(1), recordSize(1)-10)
	}
	if blocks, _, _ := l.pending(); blocks != 2 {
		t.Fatalf("pending %d blocks, want 2", blocks)
	}
	appendBodies(t, l, "d")
	if got := readBodies(t, l, 3); fmt.Sprint(got) != "[a b d]" {
		t.Fatalf("read %v, want [a b d]", got)
	}
	wantNothing(t, l)
}

// A record damaged in the middle of a segment costs that record only.
func TestLogMidRecordCorruption(t *testing.T) {
	dir := t.TempDir()
	l, _ := openTestLog(t, dir, 1<<20)
	appendBodies(t, l, "first", "second", "third")
	l.close()
	f, err := os.OpenFile(l.segPath(1), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	secondAt := recordSize(len("first"))
	if _, err := f.WriteAt([]byte("XY"), secondAt+headerSize+payloadHead); err != nil {
		t.Fatal(err)
	}
	f.Close()

	l, rep := openTestLog(t, dir, 1<<20)
	defer l.close()
	if len(rep.corrupted) != 1 || rep.corrupted[0].at.off != secondAt || rep.corrupted[0].end != secondAt+recordSize(len("second")) {
		t.Fatalf("corruptions %+v, want the second record [%d, %d)", rep.corrupted, secondAt, secondAt+recordSize(len("second")))
	}
	appendBodies(t, l, "fourth")
	if got := readBodies(t, l, 3); fmt.Sprint(got) != "[first third fourth]" {
		t.Fatalf("read %v, want [first third fourth]", got)
	}
}

// A damaged read-offset file means starting from the oldest segment:
// duplicates, never losses.
func TestLogDamagedOffsetFile(t *testing.T) {
	dir := t.TempDir()
	l, _ := openTestLog(t, dir, 1<<20)
	appendBodies(t, l, "a", "b", "c")
	readBodies(t, l, 2)
	l.close()
	if err := os.WriteFile(filepath.Join(dir, readOffsetFile), []byte("junk"), 0o600); err != nil {
		t.Fatal(err)
	}
	l, _ = openTestLog(t, dir, 1<<20)
	defer l.close()
	if got := readBodies(t, l, 3); fmt.Sprint(got) != "[a b c]" {
		t.Fatalf("read %v, want [a b c]", got)
	}
}
