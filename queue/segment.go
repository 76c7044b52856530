package queue

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

const (
	segmentExt     = ".seg"
	readOffsetFile = "read-offset"
)

// segment is one segment file of a log.
type segment struct {
	id uint64
	// size is the number of bytes the reader may read: everything for a
	// segment found at start-up, the fsynced bytes for the one being written.
	size int64
	// sealed means no more records will be appended: once read to size,
	// the segment is deleted.
	sealed bool
}

// position is a place in a log.
type position struct {
	seg uint64
	off int64
}

// corruption is a damaged stretch of a segment: [at.off, end) is skipped.
type corruption struct {
	at  position
	end int64
}

// segmentLog is the append-only log of one endpoint: a committer goroutine
// appends (writer.go); the delivery worker reads from the oldest record on
// and acknowledges in order, from a second goroutine (reader.go). They share
// only what mu guards.
type segmentLog struct {
	dir          string
	segmentBytes int64
	syncFile     func(*os.File) error // fsync, replaceable in tests
	onSync       func(time.Duration)  // fsync latency, for the histogram

	mu            sync.Mutex
	segs          []*segment         // oldest first; guarded by mu
	skips         map[position]int64 // damaged stretches found at start-up: start -> end; guarded by mu
	pendingBlocks int64              // committed, not yet acknowledged records; guarded by mu
	pendingBytes  int64              // their size on disk; guarded by mu
	oldest        time.Time          // enqueue time of the oldest pending record (approximate until read); guarded by mu
	unacked       []time.Time        // enqueue times of the records read, not yet acknowledged, in order; guarded by mu
	changed       chan struct{}      // capacity 1: signalled when records are committed
	nextID        uint64             // id of the next segment to create; guarded by mu
	// total is the pending bytes of every log of the queue, for the disk
	// quota; it changes with pendingBytes.
	total *atomic.Int64

	w writerState // committer goroutine only
	r readerState // delivery worker only
}

// scanReport says what start-up found in a log.
type scanReport struct {
	corrupted []corruption
}

// openLog opens the log in dir (created if missing): it deletes segments the
// read offset says were delivered, verifies every record of the others and
// notes the damaged stretches, which are skipped and reported, never fatal.
// Writing starts in a new segment, so nothing is ever appended after a torn
// record.
func openLog(dir string, segmentBytes int64, syncFile func(*os.File) error, total *atomic.Int64) (*segmentLog, scanReport, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, scanReport{}, err
	}
	l := &segmentLog{dir: dir, segmentBytes: segmentBytes, syncFile: syncFile,
		skips: map[position]int64{}, changed: make(chan struct{}, 1), onSync: func(time.Duration) {}, total: total}
	ids, err := listSegments(dir)
	if err != nil {
		return nil, scanReport{}, err
	}
	start := l.loadOffset()
	for _, id := range ids {
		if id < start.seg {
			_ = os.Remove(l.segPath(id)) // delivered; its deletion was interrupted
			continue
		}
		st, err := os.Stat(l.segPath(id))
		if err != nil {
			return nil, scanReport{}, err
		}
		l.segs = append(l.segs, &segment{id: id, size: st.Size(), sealed: true})
	}
	l.nextID = start.seg + 1
	if n := len(l.segs); n > 0 {
		l.nextID = max(l.nextID, l.segs[n-1].id+1)
		if l.segs[0].id != start.seg {
			start = position{seg: l.segs[0].id}
		}
	}
	l.r.pos = start
	var rep scanReport
	for _, s := range l.segs {
		from := int64(0)
		if s.id == start.seg {
			from = start.off
		}
		if err := l.scan(s, from, &rep); err != nil {
			return nil, scanReport{}, fmt.Errorf("scan %s: %w", l.segPath(s.id), err)
		}
	}
	if err := l.openOffsetFile(); err != nil {
		return nil, scanReport{}, err
	}
	total.Add(l.pendingBytes)
	return l, rep, nil
}

// scan verifies the records of s from off on, counting the intact ones as
// pending and noting the damaged stretches.
func (l *segmentLog) scan(s *segment, off int64, rep *scanReport) error {
	f, err := os.Open(l.segPath(s.id))
	if err != nil {
		return err
	}
	defer f.Close()
	var buf []byte
	for off < s.size {
		payload, next, err := readRecordAt(f, off, s.size, buf)
		buf = payload
		if errors.Is(err, errCorrupt) {
			end, err := nextValid(f, off, s.size)
			if err != nil {
				return err
			}
			at := position{s.id, off}
			l.skips[at] = end
			rep.corrupted = append(rep.corrupted, corruption{at: at, end: end})
			off = end
			continue
		}
		if err != nil {
			return err
		}
		if l.pendingBlocks == 0 {
			if b, err := decodePayload(payload); err == nil {
				l.oldest = b.enqueued
			}
		}
		l.pendingBlocks++
		l.pendingBytes += next - off
		off = next
	}
	return nil
}

// listSegments returns the ids of dir's segment files, ascending.
func listSegments(dir string) ([]uint64, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var ids []uint64
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), segmentExt)
		if !ok || !e.Type().IsRegular() {
			continue
		}
		if id, err := strconv.ParseUint(name, 16, 64); err == nil {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids, nil
}

func (l *segmentLog) segPath(id uint64) string {
	return filepath.Join(l.dir, fmt.Sprintf("%016x%s", id, segmentExt))
}

// loadOffset reads the persisted read position; a missing or damaged file
// means "from the oldest segment", which may deliver some blocks twice but
// never skips one.
func (l *segmentLog) loadOffset() position {
	b, err := os.ReadFile(filepath.Join(l.dir, readOffsetFile))
	if err != nil {
		return position{}
	}
	seg, off, ok := decodeOffset(b)
	if !ok || off < 0 {
		return position{}
	}
	return position{seg, off}
}

// pending returns the committed, undelivered blocks and bytes, and the
// enqueue time of the oldest (zero when there is none).
func (l *segmentLog) pending() (blocks, bytes int64, oldest time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.pendingBlocks, l.pendingBytes, l.oldest
}

// close closes the log's files; the read offset is persisted as of the last
// acknowledged record. Call it after the committer and the worker stopped.
func (l *segmentLog) close() error {
	var errs []error
	if l.w.f != nil {
		errs = append(errs, l.w.f.Close())
		l.w.f = nil
	}
	if l.r.f != nil {
		errs = append(errs, l.r.f.Close())
		l.r.f = nil
	}
	if l.r.offset != nil {
		errs = append(errs, l.r.offset.Close())
		l.r.offset = nil
	}
	return errors.Join(errs...)
}

// syncDir makes the creation or removal of a file in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, fs.ErrInvalid) {
		return err
	}
	return nil
}
