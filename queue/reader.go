package queue

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// recordRef is where one record of an endpoint lies in the log.
type recordRef struct {
	at       position
	end      int64
	enqueued time.Time
	samples  int // for reporting the loss if the record is found damaged
}

func (r recordRef) size() int64 { return r.end - r.at.off }

// cursor is one endpoint's side of the log: the positions of its records
// not yet delivered, in log order, handed over by the committer (or found at
// start-up), and the read offset, persisted, before which all of them are
// delivered. Its delivery worker reads and acknowledges them in order.
type cursor struct {
	log      *segmentLog
	endpoint uint32 // id of the endpoint whose records it reads

	mu      sync.Mutex
	pend    []recordRef   // undelivered records, oldest first; guarded by mu
	read    int           // pend[:read] are read and not yet acknowledged; guarded by mu
	bytes   int64         // size of the records in pend; guarded by mu
	changed chan struct{} // capacity 1: signalled when records are added

	start  position // the persisted read offset at start-up
	f      *os.File // segment fID, open for reading; delivery worker only
	fID    uint64
	offset *os.File // the read-offset file, written by ack
}

// item is what next hands out, in log order: a block to deliver, or (skip)
// a record found damaged or missing, only to be acknowledged (and reported
// lost once it is).
type item struct {
	block
	ref  recordRef
	skip bool
}

// openCursor opens the read-offset file of the endpoint directory dir. A
// missing or damaged one means "from the start of the log", which may
// deliver some blocks twice but never skips one.
func openCursor(dir string, endpoint uint32, l *segmentLog) (*cursor, error) {
	c := &cursor{log: l, endpoint: endpoint, changed: make(chan struct{}, 1)}
	if b, err := os.ReadFile(filepath.Join(dir, readOffsetFile)); err == nil {
		if seg, off, ok := decodeOffset(b); ok && off >= 0 {
			c.start = position{seg, off}
		}
	}
	f, err := os.OpenFile(filepath.Join(dir, readOffsetFile), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	c.offset = f
	return c, nil
}

// push adds records of the endpoint, committed (or found at start-up), in log order.
func (c *cursor) push(refs ...recordRef) {
	c.mu.Lock()
	for _, r := range refs {
		c.pend = append(c.pend, r)
		c.bytes += r.size()
	}
	c.mu.Unlock()
	select {
	case c.changed <- struct{}{}:
	default:
	}
}

// next returns the next record, waiting until one is committed or ctx ends.
// Its payload is read into buf (grown as needed): the caller owns it until
// the item is acknowledged. A record found damaged now is returned as a
// skip item.
func (c *cursor) next(ctx context.Context, buf []byte) (item, []byte, error) {
	return c.nextItem(ctx, buf, true)
}

// errNoneCommitted is what poll returns when next would wait.
var errNoneCommitted = errors.New("no committed record left to read")

// poll is next without waiting: errNoneCommitted when nothing committed is
// left to read. The delivery worker uses it to add the blocks already queued
// to a group, never delaying a group for blocks still to come.
func (c *cursor) poll(buf []byte) (item, []byte, error) {
	return c.nextItem(context.Background(), buf, false)
}

func (c *cursor) nextItem(ctx context.Context, buf []byte, wait bool) (item, []byte, error) {
	for {
		c.mu.Lock()
		if c.read < len(c.pend) {
			ref := c.pend[c.read]
			c.read++
			c.mu.Unlock()
			it, buf, err := c.readRecord(ref, buf)
			if err != nil {
				c.mu.Lock()
				c.read--
				c.mu.Unlock()
			}
			return it, buf, err
		}
		c.mu.Unlock()
		if !wait {
			return item{}, buf, errNoneCommitted
		}
		// Nothing left to read: let go of a sealed segment, which is
		// deleted once delivered (an open file would keep its disk space),
		// now or as soon as the one being written is sealed.
		sealed := c.log.nextSeal()
		c.closeIfSealed()
		select {
		case <-c.changed:
		case <-sealed:
		case <-ctx.Done():
			return item{}, buf, ctx.Err()
		}
	}
}

// readRecord reads and verifies the record at ref. A record that is
// damaged, cut off (the file is shorter) or in a segment file that is gone
// is a skip item; any other error is returned, to be tried again.
func (c *cursor) readRecord(ref recordRef, buf []byte) (item, []byte, error) {
	f, err := c.file(ref.at.seg)
	if errors.Is(err, fs.ErrNotExist) {
		return item{ref: ref, skip: true}, buf, nil
	}
	if err != nil {
		return item{}, buf, err
	}
	payload, next, err := readRecordAt(f, ref.at.off, ref.end, buf)
	var b block
	if err == nil {
		b, err = decodePayload(payload)
	}
	if errors.Is(err, errCorrupt) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || err == nil && next != ref.end {
		return item{ref: ref, skip: true}, payload, nil
	}
	if err != nil {
		return item{}, payload, err
	}
	return item{block: b, ref: ref}, payload, nil
}

// file returns segment id open for reading.
func (c *cursor) file(id uint64) (*os.File, error) {
	if c.f != nil && c.fID == id {
		return c.f, nil
	}
	c.closeFile()
	f, err := os.Open(c.log.segPath(id))
	if err != nil {
		return nil, err
	}
	c.f, c.fID = f, id
	return f, nil
}

// closeIfSealed closes the segment open for reading if it is sealed (or
// gone): no record will be added to it, and it may be deleted.
func (c *cursor) closeIfSealed() {
	if c.f != nil && c.log.sealedOrGone(c.fID) {
		c.closeFile()
	}
}

// closeFile closes the segment open for reading, if any.
func (c *cursor) closeFile() {
	if c.f != nil {
		_ = c.f.Close()
		c.f = nil
	}
}

// ackAll acknowledges items, the oldest read ones in the order next returned
// them: they leave the endpoint's records, their segments are released
// (deleted once no endpoint needs them) and the read offset moves past the
// last, written once for all of them.
func (c *cursor) ackAll(items []item) {
	if len(items) == 0 {
		return
	}
	c.mu.Lock()
	n := min(len(items), c.read)
	for _, r := range c.pend[:n] {
		c.bytes -= r.size()
	}
	c.pend = c.pend[n:]
	c.read -= n
	c.mu.Unlock()
	for _, it := range items {
		c.log.unref(it.ref.at.seg, c.endpoint, it.ref.size())
	}
	last := items[len(items)-1].ref
	// Not fsynced: the page cache survives a crash of the process, and after
	// a power loss an older offset only means some blocks are delivered twice.
	_, _ = c.offset.WriteAt(encodeOffset(last.at.seg, last.end), 0)
}

// pending returns the committed, undelivered blocks and bytes, and the
// enqueue time of the oldest (zero when there is none).
func (c *cursor) pending() (blocks, bytes int64, oldest time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.pend) > 0 {
		oldest = c.pend[0].enqueued
	}
	return int64(len(c.pend)), c.bytes, oldest
}

// close closes the cursor's files. Call it after the delivery worker stopped.
func (c *cursor) close() error {
	var errs []error
	if c.f != nil {
		errs = append(errs, c.f.Close())
		c.f = nil
	}
	if c.offset != nil {
		errs = append(errs, c.offset.Close())
		c.offset = nil
	}
	return errors.Join(errs...)
}
