package queue

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"time"
)

// readerState is the delivery worker's side of a log. The reader may run
// ahead of the acknowledgements by the blocks in flight; acks come in order.
type readerState struct {
	pos     position // the next record to read
	f       *os.File // segment fID, open for reading
	fID     uint64
	offset  *os.File // the read-offset file, written by ack
	corrupt func(c corruption)
}

// item is what next hands out, in log order: a block to deliver, or the end
// of a sealed segment, whose file ack deletes once everything before it is
// acknowledged.
type item struct {
	block
	at     position // where the record starts
	end    int64    // where it ends
	segEnd bool     // no block: segment at.seg is read to its end
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

// next returns the next item, waiting until a record is committed or ctx
// ends. The block's payload is read into buf (grown as needed): the caller
// owns it until the item is acknowledged. A record found damaged now (not at
// start-up) is skipped and reported through r.corrupt.
func (l *segmentLog) next(ctx context.Context, buf []byte) (item, []byte, error) {
	for {
		seg, ok := l.current()
		if !ok {
			if err := l.wait(ctx); err != nil {
				return item{}, buf, err
			}
			continue
		}
		if seg.id != l.r.pos.seg {
			l.r.pos = position{seg: seg.id}
		}
		if l.r.pos.off >= seg.size {
			if !seg.sealed {
				if err := l.wait(ctx); err != nil {
					return item{}, buf, err
				}
				continue
			}
			at := l.r.pos
			l.r.pos = position{seg: seg.id + 1}
			return item{at: at, segEnd: true}, buf, nil
		}
		it, buf, ok, err := l.read(seg, buf)
		if err != nil || ok {
			return it, buf, err
		}
	}
}

// current returns a copy of the segment the reader is in or comes to next.
func (l *segmentLog) current() (segment, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range l.segs {
		if s.id >= l.r.pos.seg {
			return *s, true
		}
	}
	return segment{}, false
}

// read returns the record at the read position of seg, or ok false after
// stepping over a damaged stretch.
func (l *segmentLog) read(seg segment, buf []byte) (it item, _ []byte, ok bool, err error) {
	at := l.r.pos
	l.mu.Lock()
	end, known := l.skips[at]
	delete(l.skips, at)
	l.mu.Unlock()
	if known {
		l.r.pos.off = end
		return item{}, buf, false, nil
	}
	f, err := l.readFile(seg.id)
	if err != nil {
		return item{}, buf, false, err
	}
	payload, next, err := readRecordAt(f, at.off, seg.size, buf)
	if err == nil {
		it.block, err = decodePayload(payload)
	}
	if errors.Is(err, errCorrupt) {
		return item{}, payload, false, l.skipDamaged(f, seg, at)
	}
	if err != nil {
		return item{}, payload, false, err
	}
	it.at, it.end = at, next
	l.r.pos.off = next
	l.mu.Lock()
	l.unacked = append(l.unacked, it.enqueued)
	l.mu.Unlock()
	return it, payload, true, nil
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
	l.settleLocked()
	l.mu.Unlock()
	l.r.pos.off = end
	l.r.corrupt(corruption{at: at, end: end})
	return nil
}

// ack marks an item returned by next as done (a block delivered or set
// aside, or a segment passed); items must be acknowledged in the order next
// returned them. The read offset moves past the item and is persisted; a
// finished segment is deleted.
func (l *segmentLog) ack(it item) error {
	if it.segEnd {
		return l.finishSegment(it.at.seg)
	}
	l.mu.Lock()
	size := min(it.end-it.at.off, l.pendingBytes)
	l.pendingBytes -= size
	l.total.Add(-size)
	l.pendingBlocks--
	if len(l.unacked) > 0 {
		l.unacked = l.unacked[1:]
	}
	l.settleLocked()
	l.mu.Unlock()
	l.persistOffset(position{it.at.seg, it.end})
	return nil
}

// settleLocked keeps the counters consistent: pendingBytes is exact (a
// damaged stretch subtracts exactly its bytes), so no bytes means no blocks,
// whatever number of records a damaged stretch held.
func (l *segmentLog) settleLocked() {
	if l.pendingBytes <= 0 || l.pendingBlocks <= 0 {
		l.pendingBlocks, l.pendingBytes = 0, 0
	}
	switch {
	case l.pendingBlocks == 0:
		l.oldest = time.Time{}
	case len(l.unacked) > 0:
		l.oldest = l.unacked[0]
	}
}

// persistOffset writes the read position in place. It is not fsynced: the
// page cache survives a crash of the process, and after a power loss an
// older position only means some blocks are delivered twice.
func (l *segmentLog) persistOffset(p position) {
	_, _ = l.r.offset.WriteAt(encodeOffset(p.seg, p.off), 0)
}

// finishSegment deletes a sealed segment whose records are all acknowledged.
// The read offset moves to the next segment first, so a crash in between
// cannot make a restart look for records in a deleted file.
func (l *segmentLog) finishSegment(id uint64) error {
	l.persistOffset(position{seg: id + 1})
	l.mu.Lock()
	if len(l.segs) > 0 && l.segs[0].id == id {
		l.segs = l.segs[1:]
	}
	l.mu.Unlock()
	if err := os.Remove(l.segPath(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
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
