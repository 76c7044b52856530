package queue

import (
	"fmt"
	"os"
	"time"
)

// writerState is the committer's side of the log.
type writerState struct {
	f       *os.File // the segment being written, nil before the first append
	seg     *segment // its entry in segs
	written int64    // bytes written to f, committed or not
	blocks  int      // records written since the last commit

	idx        *os.File // the segment's index; nil once a write to it failed
	idxSize    int64    // bytes of whole entries in idx
	idxPending []byte   // entries of the records written since the last commit
}

// write appends one encoded record to the current segment, first starting a
// new segment when there is none or the current one is full, and counts it
// as needed in its segment (ref) until it is delivered, or released with
// unref if it is never committed. The record is not durable until commit.
// It writes at the offset the log counts (not at the file's end), so that
// the positions handed to the cursors stay true even if the file was cut.
func (l *segmentLog) write(rec []byte) (position, int64, error) {
	if l.w.f == nil || l.w.written >= l.segmentBytes {
		if err := l.rotate(); err != nil {
			return position{}, 0, err
		}
	}
	at := position{l.w.seg.id, l.w.written}
	if _, err := l.w.f.WriteAt(rec, at.off); err != nil {
		l.cutBack()
		return position{}, 0, err
	}
	l.w.written += int64(len(rec))
	l.w.blocks++
	l.w.idxPending = appendIndexEntry(l.w.idxPending, at.off, rec)
	l.ref(at.seg, recordEndpoint(rec), int64(len(rec)))
	return at, l.w.written, nil
}

// committed reports whether a record written at at is durable: its segment
// was fsynced past it.
func (l *segmentLog) committed(at position, end int64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.segs[at.seg]
	return s != nil && s.size >= end
}

// commit fsyncs what was written since the last commit. After an error the
// records written since the last commit are not committed; the segment is
// sealed at its last good size, since after a failed fsync the file's state
// cannot be trusted.
func (l *segmentLog) commit() error {
	if l.w.f == nil || l.w.seg.size == l.w.written {
		return nil
	}
	return l.syncAndPublish(false)
}

// syncAndPublish fsyncs the current segment, indexes what the fsync made
// durable and makes it readable; seal marks the segment complete (it is
// being rotated out) and makes its index durable too.
func (l *segmentLog) syncAndPublish(seal bool) error {
	if err := l.sync(l.w.f); err != nil {
		l.abandon()
		return err
	}
	l.w.blocks = 0
	l.writeIndex()
	if seal {
		l.closeIndex(true)
	}
	l.mu.Lock()
	s, dead := l.w.seg, false
	if seal {
		dead = l.seal(s, l.w.written)
	} else {
		l.change(s, nil, func() { s.size = l.w.written }) // pins of a segment being written do not depend on its size
	}
	l.mu.Unlock()
	if dead {
		l.remove(s.id)
	}
	return nil
}

// writeIndex appends the pending entries to the index. The records are
// durable whatever happens here: a failed write only leaves them out of the
// index (their damage would then be reported in bytes), so it is cut back to
// its whole entries, or given up for this segment.
func (l *segmentLog) writeIndex() {
	pending := l.w.idxPending
	l.w.idxPending = pending[:0]
	if l.w.idx == nil || len(pending) == 0 {
		return
	}
	if _, err := l.w.idx.WriteAt(pending, l.w.idxSize); err != nil {
		if l.w.idx.Truncate(l.w.idxSize) != nil {
			l.closeIndex(false)
		}
		return
	}
	l.w.idxSize += int64(len(pending))
}

// closeIndex closes the current segment's index, fsynced first if sync.
func (l *segmentLog) closeIndex(sync bool) {
	if l.w.idx == nil {
		return
	}
	if sync {
		_ = l.w.idx.Sync()
	}
	_ = l.w.idx.Close()
	l.w.idx = nil
}

// rotate seals the current segment (after committing it) and creates the next.
func (l *segmentLog) rotate() error {
	if l.w.f != nil {
		if err := l.syncAndPublish(true); err != nil {
			return err
		}
		_ = l.w.f.Close()
		l.w = writerState{idxPending: l.w.idxPending[:0]}
	}
	l.mu.Lock()
	id := l.nextID
	l.nextID++
	l.mu.Unlock()
	f, err := os.OpenFile(l.segPath(id), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("create segment: %w", err)
	}
	// Without an index the segment is still written and read; only the
	// report of its damage is in bytes.
	idx, _ := os.OpenFile(l.indexPath(id), os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err := syncDir(l.dir); err != nil {
		_ = f.Close()
		if idx != nil {
			_ = idx.Close()
		}
		l.remove(id)
		return fmt.Errorf("sync queue directory: %w", err)
	}
	seg := &segment{id: id}
	l.mu.Lock()
	l.segs[id] = seg
	l.mu.Unlock()
	l.w = writerState{f: f, seg: seg, idx: idx, idxPending: l.w.idxPending[:0]}
	return nil
}

// cutBack undoes the writes since the last commit after a write error (the
// disk is full, typically): the segment is truncated to its committed size.
// A segment holding committed records is then sealed, so that it is deleted
// once they are delivered and its space comes back even if no write succeeds
// meanwhile; an empty one stays open for the next write, so failing writes
// do not leave a file each. The records written since the last commit are
// still counted until the committer releases them.
func (l *segmentLog) cutBack() {
	l.w.idxPending = l.w.idxPending[:0]
	if err := l.w.f.Truncate(l.w.seg.size); err != nil || l.w.seg.size > 0 {
		l.abandon()
		return
	}
	l.w.written, l.w.blocks = 0, 0
}

// abandon seals the current segment at its last committed size after a write
// or fsync error (cutting off what follows, where it can); the next write
// starts a new segment. A segment no record is needed from is deleted now;
// otherwise the records written since the last commit are still counted
// until the committer releases them, and the last release deletes it.
func (l *segmentLog) abandon() {
	if l.w.f == nil {
		return
	}
	_ = l.w.f.Truncate(l.w.seg.size)
	_ = l.w.f.Close()
	l.closeIndex(true)
	l.mu.Lock()
	s := l.w.seg
	dead := l.seal(s, s.size)
	l.mu.Unlock()
	if dead {
		l.remove(s.id)
	}
	l.w = writerState{idxPending: l.w.idxPending[:0]}
}

// sync fsyncs f and reports the latency.
func (l *segmentLog) sync(f *os.File) error {
	start := time.Now()
	err := l.syncFile(f)
	l.onSync(time.Since(start))
	return err
}
