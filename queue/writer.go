package queue

import (
	"fmt"
	"os"
	"time"
)

// writerState is the committer's side of a log.
type writerState struct {
	f       *os.File // the segment being written, nil before the first append
	seg     *segment // its entry in segs
	written int64    // bytes written to f, committed or not
	blocks  int64    // records written since the last commit
	bytes   int64    // their size
}

// write appends one encoded record to the current segment, first starting a
// new segment when there is none or the current one is full. The record is
// not durable until commit.
func (l *segmentLog) write(rec []byte) error {
	if l.w.f == nil || l.w.written >= l.segmentBytes {
		if err := l.rotate(); err != nil {
			return err
		}
	}
	if _, err := l.w.f.Write(rec); err != nil {
		l.abandon()
		return err
	}
	l.w.written += int64(len(rec))
	l.w.blocks++
	l.w.bytes += int64(len(rec))
	return nil
}

// commit fsyncs what was written since the last commit and hands it to the
// reader. After an error the records written since the last commit are
// neither acknowledged nor read; the segment is sealed at its last good size,
// since after a failed fsync the file's state cannot be trusted.
func (l *segmentLog) commit() error {
	if l.w.f == nil || l.w.blocks == 0 {
		return nil
	}
	return l.syncAndPublish(false)
}

// syncAndPublish fsyncs the current segment and publishes what was written
// to it; seal marks the segment complete (it is being rotated out).
func (l *segmentLog) syncAndPublish(seal bool) error {
	if err := l.sync(l.w.f); err != nil {
		l.abandon()
		return err
	}
	l.mu.Lock()
	l.w.seg.size = l.w.written
	l.publishLocked()
	if seal {
		l.w.seg.sealed = true
	}
	l.mu.Unlock()
	return nil
}

// publishLocked counts the newly committed records as pending and wakes the reader.
func (l *segmentLog) publishLocked() {
	if l.pendingBlocks == 0 {
		l.oldest = time.Now()
	}
	l.pendingBlocks += l.w.blocks
	l.pendingBytes += l.w.bytes
	l.total.Add(l.w.bytes)
	l.w.blocks, l.w.bytes = 0, 0
	select {
	case l.changed <- struct{}{}:
	default:
	}
}

// rotate seals the current segment (after committing it) and creates the next.
func (l *segmentLog) rotate() error {
	if l.w.f != nil {
		if err := l.syncAndPublish(true); err != nil {
			return err
		}
		_ = l.w.f.Close()
		l.w.f = nil
	}
	l.mu.Lock()
	id := l.nextID
	l.nextID++
	l.mu.Unlock()
	f, err := os.OpenFile(l.segPath(id), os.O_CREATE|os.O_EXCL|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("create segment: %w", err)
	}
	if err := syncDir(l.dir); err != nil {
		_ = f.Close()
		_ = os.Remove(l.segPath(id))
		return fmt.Errorf("sync queue directory: %w", err)
	}
	seg := &segment{id: id}
	l.mu.Lock()
	l.segs = append(l.segs, seg)
	l.mu.Unlock()
	l.w = writerState{f: f, seg: seg}
	return nil
}

// abandon seals the current segment at its last committed size after a write
// or fsync error; the next write starts a new segment.
func (l *segmentLog) abandon() {
	if l.w.f == nil {
		return
	}
	_ = l.w.f.Close()
	l.mu.Lock()
	l.w.seg.sealed = true
	select {
	case l.changed <- struct{}{}:
	default:
	}
	l.mu.Unlock()
	l.w = writerState{}
}

// sync fsyncs f and reports the latency.
func (l *segmentLog) sync(f *os.File) error {
	start := time.Now()
	err := l.syncFile(f)
	l.onSync(time.Since(start))
	return err
}
