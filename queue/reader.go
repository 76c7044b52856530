package queue

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"time"
)

// readerState is the delivery worker's side of a log.
type readerState struct {
	pos     position // the next record to deliver
	f       *os.File // segment pos.seg, open for reading
	fID     uint64
	buf     []byte   // payload of the record returned by next
	next    int64    // offset after that record
	size    int64    // its size on disk
	offset  *os.File // the read-offset file
	corrupt func(c corruption)
}

// openOffsetFile opens the read-offset file for the in-place updates of ack.
func (l *segmentLog) openOffsetFile() error {
	f, err := os.OpenFile(filepath.Join(l.dir, readOffsetFile), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return err
	}
	l.r.offset = f
	l.r.corrupt = func(corruption) {}
	return nil
}

// next returns the oldest undelivered block, waiting until one is committed
// or ctx ends. The block's body is valid until the next call. A record found
// damaged now (not at start-up) is skipped and reported through r.corrupt.
func (l *segmentLog) next(ctx context.Context) (block, error) {
	for {
		seg, ok := l.head()
		if !ok {
			if err := l.wait(ctx); err != nil {
				return block{}, err
			}
			continue
		}
		if seg.id != l.r.pos.seg {
			l.r.pos = position{seg: seg.id}
		}
		if l.r.pos.off >= seg.size {
			if !seg.sealed {
				if err := l.wait(ctx); err != nil {
					return block{}, err
				}
				continue
			}
			if err := l.finishSegment(seg.id); err != nil {
				return block{}, err
			}
			continue
		}
		b, ok, err := l.read(seg)
		if err != nil || ok {
			return b, err
		}
	}
}

// head returns a copy of the oldest segment. When the reader has read all of
// it and it is the only one, nothing is pending: the counters are reset then,
// which also repairs them after a damaged stretch of unknown record count.
func (l *segmentLog) head() (segment, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.segs) == 0 {
		return segment{}, false
	}
	s := *l.segs[0]
	if len(l.segs) == 1 && s.id == l.r.pos.seg && l.r.pos.off >= s.size {
		l.total.Add(-l.pendingBytes)
		l.pendingBlocks, l.pendingBytes, l.oldest = 0, 0, time.Time{}
	}
	return s, true
}

// read returns the record at the read position of seg, or ok false after
// stepping over a damaged stretch.
func (l *segmentLog) read(seg segment) (b block, ok bool, err error) {
	at := l.r.pos
	l.mu.Lock()
	end, known := l.skips[at]
	delete(l.skips, at)
	l.mu.Unlock()
	if known {
		l.r.pos.off = end
		return block{}, false, nil
	}
	f, err := l.readFile(seg.id)
	if err != nil {
		return block{}, false, err
	}
	payload, next, err := readRecordAt(f, at.off, seg.size, l.r.buf)
	l.r.buf = payload
	if errors.Is(err, errCorrupt) {
		return block{}, false, l.skipDamaged(f, seg, at)
	}
	if err != nil {
		return block{}, false, err
	}
	b, err = decodePayload(payload)
	if err != nil {
		return block{}, false, l.skipDamaged(f, seg, at)
	}
	l.r.next, l.r.size = next, next-at.off
	l.mu.Lock()
	l.oldest = b.enqueued
	l.mu.Unlock()
	return b, true, nil
}

// skipDamaged steps over a stretch found damaged while delivering: its bytes
// had been counted as pending, and are not any more.
func (l *segmentLog) skipDamaged(f *os.File, seg segment, at position) error {
	end, err := nextValid(f, at.off, seg.size)
	if err != nil {
		return err
	}
	l.mu.Lock()
	lost := min(end-at.off, l.pendingBytes)
	l.pendingBytes -= lost
	l.total.Add(-lost)
	l.pendingBlocks = max(l.pendingBlocks-1, 0)
	l.mu.Unlock()
	l.r.pos.off = end
	l.r.corrupt(corruption{at: at, end: end})
	return nil
}

// ack marks the block returned by next as done (delivered or set aside):
// the read position moves past it and is persisted.
func (l *segmentLog) ack() {
	l.r.pos.off = l.r.next
	l.mu.Lock()
	l.pendingBlocks = max(l.pendingBlocks-1, 0)
	size := min(l.r.size, l.pendingBytes)
	l.pendingBytes -= size
	l.total.Add(-size)
	if l.pendingBlocks == 0 {
		l.oldest = time.Time{}
	}
	l.mu.Unlock()
	l.persistOffset()
}

// persistOffset writes the read position in place. It is not fsynced: the
// page cache survives a crash of the process, and after a power loss an
// older position only means some blocks are delivered twice.
func (l *segmentLog) persistOffset() {
	_, _ = l.r.offset.WriteAt(encodeOffset(l.r.pos.seg, l.r.pos.off), 0)
}

// finishSegment deletes a sealed segment read to its end. The read offset
// moves to the next segment first, so a crash in between cannot make a
// restart look for records in a deleted file.
func (l *segmentLog) finishSegment(id uint64) error {
	l.r.pos = position{seg: id + 1}
	l.persistOffset()
	if l.r.f != nil && l.r.fID == id {
		_ = l.r.f.Close()
		l.r.f = nil
	}
	if err := os.Remove(l.segPath(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	l.mu.Lock()
	l.segs = l.segs[1:]
	l.mu.Unlock()
	return nil
}

// readFile returns segment id open for reading.
func (l *segmentLog) readFile(id uint64) (*os.File, error) {
	if l.r.f != nil && l.r.fID == id {
		return l.r.f, nil
	}
	if l.r.f != nil {
		_ = l.r.f.Close()
		l.r.f = nil
	}
	f, err := os.Open(l.segPath(id))
	if err != nil {
		return nil, err
	}
	l.r.f, l.r.fID = f, id
	return f, nil
}

// wait blocks until records are committed or ctx ends.
func (l *segmentLog) wait(ctx context.Context) error {
	select {
	case <-l.changed:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
