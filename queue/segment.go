package queue

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
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
	logDir         = "log"
	segmentExt     = ".seg"
	indexExt       = ".idx"
	readOffsetFile = "read-offset"
)

// segment is one segment file of the log.
type segment struct {
	id uint64
	// size is the number of bytes readers may read: everything for a segment
	// found at start-up, the fsynced bytes for the one being written.
	size int64
	// sealed means no more records will be appended.
	sealed bool
	// refs counts the records in the segment written and not yet delivered
	// or set aside, of every endpoint; refBytes is their size. A sealed
	// segment without refs is deleted.
	refs, refBytes int64
	// byEndpoint splits refs by endpoint id; an endpoint without refs has
	// no entry.
	byEndpoint map[uint32]*share
}

// share is one endpoint's undelivered records in a segment.
type share struct{ refs, bytes int64 }

// pins is the disk the segment holds for endpoint ep: all of a sealed
// segment ep still needs, ep's undelivered records in the one being written.
func (s *segment) pins(ep uint32) int64 {
	sh := s.byEndpoint[ep]
	switch {
	case sh == nil:
		return 0
	case s.sealed:
		return s.size
	}
	return sh.bytes
}

// held is the disk the segment counts for in the quota: all of a sealed
// segment that any endpoint still needs (one stalled endpoint holds the
// others' delivered records in it too, which is why the quota also bounds
// each endpoint's pins), the undelivered records of the one being written.
func (s *segment) held() int64 {
	if s.sealed {
		if s.refs > 0 {
			return s.size
		}
		return 0
	}
	return s.refBytes
}

// position is a place in the log. Positions grow with every record written.
type position struct {
	seg uint64
	off int64
}

func (p position) less(o position) bool { return p.seg < o.seg || p.seg == o.seg && p.off < o.off }

// corruption is a damaged stretch of a segment: [at.off, end) is skipped.
type corruption struct {
	at  position
	end int64
}

// segmentLog is the append-only log every endpoint's records go to: the
// committer goroutine appends (writer.go); each endpoint's delivery worker
// reads its own records at the positions the committer handed it
// (cursor.go). They share only what mu guards.
type segmentLog struct {
	dir          string
	segmentBytes int64
	syncFile     func(*os.File) error // fsync, replaceable in tests
	onSync       func(time.Duration)  // fsync latency, for the histogram

	mu     sync.Mutex
	segs   map[uint64]*segment // live segments by id; guarded by mu
	nextID uint64              // id of the next segment to create; guarded by mu
	// total is the disk the queue's undelivered data holds (segment.held
	// summed), for the disk quota.
	total *atomic.Int64
	// sealedCh is closed, and replaced, whenever a segment is sealed, so
	// that idle cursors let go of it. Guarded by mu.
	sealedCh chan struct{}
	// pinned is, by endpoint id, the disk its undelivered records hold
	// (segment.pins summed): what one stalled endpoint keeps from the
	// others. Guarded by mu.
	pinned map[uint32]int64

	w writerState // committer goroutine only
}

// openLog opens the log in dir (created if missing) and notes its segments,
// all sealed: writing starts in a new segment, numbered after them and after
// minNext (the endpoints' read offsets, which must stay behind every new
// record), so nothing is ever appended after a torn record. Call scan, then
// collect, before writing.
func openLog(dir string, segmentBytes int64, syncFile func(*os.File) error, total *atomic.Int64, minNext uint64) (*segmentLog, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	l := &segmentLog{dir: dir, segmentBytes: segmentBytes, syncFile: syncFile, segs: map[uint64]*segment{}, pinned: map[uint32]int64{}, sealedCh: make(chan struct{}),
		onSync: func(time.Duration) {}, total: total, nextID: max(minNext, 1)}
	ids, err := listFiles(dir, segmentExt, indexExt)
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		// A segment whose index is left but whose file is gone has size 0:
		// every record its index lists is reported lost.
		var size int64
		if st, err := os.Stat(l.segPath(id)); err == nil {
			size = st.Size()
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		l.segs[id] = &segment{id: id, size: size, sealed: true}
		l.nextID = max(l.nextID, id+1)
	}
	return l, nil
}

// scanned is an intact record found by scan.
type scanned struct {
	block
	at  position
	end int64
}

// scanReport receives what scan finds: visit each intact record (its body
// aliases a buffer reused for the next), damaged each damaged stretch, which
// is skipped, and lost each record the segment's index lists that is not
// intact (damaged, or cut off with the end of the file).
type scanReport struct {
	visit   func(scanned)
	damaged func(corruption)
	lost    func(seg uint64, e indexEntry)
}

// scan verifies every record of every segment, oldest first, and reports
// them to r.
func (l *segmentLog) scan(r scanReport) error {
	ids := make([]uint64, 0, len(l.segs))
	for id := range l.segs {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	var buf []byte
	for _, id := range ids {
		var err error
		if buf, err = l.scanSegment(l.segs[id], buf, r); err != nil {
			return err
		}
	}
	return nil
}

func (l *segmentLog) scanSegment(s *segment, buf []byte, r scanReport) ([]byte, error) {
	indexed, err := l.readIndex(s.id)
	if err != nil {
		return buf, err
	}
	f, err := os.Open(l.segPath(s.id))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return buf, err
	}
	if f != nil {
		defer f.Close()
	}
	for off := int64(0); off < s.size; {
		payload, next, err := readRecordAt(f, off, s.size, buf)
		buf = payload
		if err == nil {
			var b block
			if b, err = decodePayload(payload); err == nil {
				if e, ok := indexed[off]; ok && e.size == next-off {
					delete(indexed, off)
				}
				r.visit(scanned{block: b, at: position{s.id, off}, end: next})
				off = next
				continue
			}
		}
		if !errors.Is(err, errCorrupt) {
			return buf, err
		}
		end, err := nextValid(f, off, s.size)
		if err != nil {
			return buf, err
		}
		r.damaged(corruption{at: position{s.id, off}, end: end})
		off = end
	}
	for _, off := range slices.Sorted(maps.Keys(indexed)) {
		r.lost(s.id, indexed[off])
	}
	return buf, nil
}

// readIndex returns the intact entries of segment id's index by offset;
// none when it has no index.
func (l *segmentLog) readIndex(id uint64) (map[int64]indexEntry, error) {
	b, err := os.ReadFile(l.indexPath(id))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	byOff := map[int64]indexEntry{}
	for _, e := range decodeIndex(b) {
		byOff[e.off] = e
	}
	return byOff, nil
}

// collect deletes the sealed segments no record is needed from (after
// start-up, the ones whose records were all delivered).
func (l *segmentLog) collect() {
	l.mu.Lock()
	var dead []uint64
	for id, s := range l.segs {
		if s.sealed && s.refs == 0 {
			delete(l.segs, id)
			dead = append(dead, id)
		}
	}
	l.mu.Unlock()
	l.remove(dead...)
}

// ref counts a record of n bytes of endpoint ep in segment id as needed
// (written, not yet delivered).
func (l *segmentLog) ref(id uint64, ep uint32, n int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if s := l.segs[id]; s != nil {
		l.change(s, []uint32{ep}, func() {
			s.refs++
			s.refBytes += n
			if s.byEndpoint == nil {
				s.byEndpoint = map[uint32]*share{}
			}
			sh := s.byEndpoint[ep]
			if sh == nil {
				sh = &share{}
				s.byEndpoint[ep] = sh
			}
			sh.refs++
			sh.bytes += n
		})
	}
}

// unref releases a record of n bytes of endpoint ep in segment id
// (delivered, set aside, lost to damage, or never committed). The last
// release of a sealed segment deletes it.
func (l *segmentLog) unref(id uint64, ep uint32, n int64) {
	l.mu.Lock()
	s := l.segs[id]
	if s == nil {
		l.mu.Unlock()
		return
	}
	l.change(s, []uint32{ep}, func() {
		s.refs--
		s.refBytes -= n
		if sh := s.byEndpoint[ep]; sh != nil {
			if sh.refs--; sh.refs <= 0 {
				delete(s.byEndpoint, ep)
			} else {
				sh.bytes -= n
			}
		}
	})
	dead := s.sealed && s.refs <= 0
	if dead {
		delete(l.segs, id)
	}
	l.mu.Unlock()
	if dead {
		l.remove(id)
	}
}

// seal marks s complete at size and returns whether it is to be deleted
// (no record in it is needed; it is then dropped from segs). Call with mu
// held.
func (l *segmentLog) seal(s *segment, size int64) (dead bool) {
	l.change(s, slices.Collect(maps.Keys(s.byEndpoint)), func() { s.size, s.sealed = size, true })
	close(l.sealedCh)
	l.sealedCh = make(chan struct{})
	if s.refs > 0 {
		return false
	}
	delete(l.segs, s.id)
	return true
}

// change applies f to s and updates what the quota counts by the
// difference: the total s holds, and what it pins for the endpoints eps,
// the ones f changes the pins of. Call with mu held.
func (l *segmentLog) change(s *segment, eps []uint32, f func()) {
	before := s.held()
	var pinsBefore [1]int64 // the common case, one endpoint, without allocating
	pins := pinsBefore[:0]
	for _, ep := range eps {
		pins = append(pins, s.pins(ep))
	}
	f()
	l.total.Add(s.held() - before)
	for i, ep := range eps {
		if p := l.pinned[ep] + s.pins(ep) - pins[i]; p != 0 {
			l.pinned[ep] = p
		} else {
			delete(l.pinned, ep)
		}
	}
}

// nextSeal returns a channel closed when a segment is next sealed.
func (l *segmentLog) nextSeal() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.sealedCh
}

// sealedOrGone reports whether segment id takes no more records: sealed,
// or deleted.
func (l *segmentLog) sealedOrGone(id uint64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.segs[id]
	return s == nil || s.sealed
}

// pinnedBy returns the disk endpoint ep's undelivered records hold.
func (l *segmentLog) pinnedBy(ep uint32) int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.pinned[ep]
}

// remove deletes segment files no longer needed, each index before its
// segment (an index without its segment reports every record it lists
// lost). A failure only leaves a file behind: it is deleted at the next
// start-up (its records are behind every read offset).
func (l *segmentLog) remove(ids ...uint64) {
	for _, id := range ids {
		_ = os.Remove(l.indexPath(id))
		_ = os.Remove(l.segPath(id))
	}
}

// listSegments returns the ids of dir's segment files, ascending.
func listSegments(dir string) ([]uint64, error) { return listFiles(dir, segmentExt) }

// listFiles returns the ids of dir's files named <id><ext> for any of exts,
// ascending, each once.
func listFiles(dir string, exts ...string) ([]uint64, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var ids []uint64
	for _, e := range entries {
		for _, ext := range exts {
			name, ok := strings.CutSuffix(e.Name(), ext)
			if !ok || !e.Type().IsRegular() {
				continue
			}
			if id, err := strconv.ParseUint(name, 16, 64); err == nil {
				ids = append(ids, id)
			}
		}
	}
	slices.Sort(ids)
	return slices.Compact(ids), nil
}

func (l *segmentLog) segPath(id uint64) string {
	return filepath.Join(l.dir, segName(id))
}

func (l *segmentLog) indexPath(id uint64) string {
	return filepath.Join(l.dir, fmt.Sprintf("%016x%s", id, indexExt))
}

func segName(id uint64) string { return fmt.Sprintf("%016x%s", id, segmentExt) }

// close closes the segment being written. Call it after the committer stopped.
func (l *segmentLog) close() error {
	l.closeIndex(true)
	if l.w.f == nil {
		return nil
	}
	err := l.w.f.Close()
	l.w.f = nil
	return err
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
