package queue

import (
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"
)

// openExisting opens the endpoints a previous run left in the directory and
// the shared log, then finds every endpoint's undelivered records: those at
// or after its read offset. Segments no endpoint needs any more are deleted.
func (q *Queue) openExisting() error {
	entries, err := os.ReadDir(q.opts.Dir)
	if err != nil {
		return err
	}
	byID := map[uint32]*endpoint{}
	minNext := uint64(1)
	for _, ent := range entries {
		if !ent.IsDir() || ent.Name() == logDir {
			continue
		}
		dir := filepath.Join(q.opts.Dir, ent.Name())
		if ids, _ := listSegments(dir); len(ids) > 0 {
			return fmt.Errorf("%s holds segment files of an older scoreproxy's queue layout (one log per endpoint); "+
				"deliver them with that version, or move the directory away", dir)
		}
		m, err := readMeta(dir)
		if err != nil {
			q.logger.Warn("queue: ignoring a directory that is not an endpoint queue", "dir", dir, "error", err)
			continue
		}
		if byID[m.ID] != nil {
			return fmt.Errorf("%s and %s both have endpoint id %d; move one of them away", dir, byID[m.ID].dir, m.ID)
		}
		e, err := q.newEndpoint(m, dir)
		if err != nil {
			return fmt.Errorf("queue %s: %w", dir, err)
		}
		q.endpoints[m.URL], byID[m.ID] = e, e
		q.nextID = max(q.nextID, m.ID+1)
		minNext = max(minNext, e.cur.start.seg+1)
	}
	cursors := make(map[uint32]*cursor, len(byID))
	for id, e := range byID {
		cursors[id] = e.cur
	}
	q.log, err = loadLog(filepath.Join(q.opts.Dir, logDir), q.opts, &q.pending, cursors, minNext,
		func(c corruption) { q.reportCorruption(c, "at start-up") },
		func(r scanned) {
			// Never give this id to a new endpoint: after a restart its
			// records would look like the new endpoint's.
			q.nextID = max(q.nextID, r.endpoint+1)
			q.m.corrupted.Inc()
			q.m.corruptedBytes.Add(int(r.end - r.at.off))
			q.logger.Warn("queue: a record's endpoint directory is gone; the block is lost",
				"endpoint_id", r.endpoint, "segment", q.segPath(r.at.seg),
				"offset", r.at.off, "bytes_lost", r.end-r.at.off)
		})
	if err != nil {
		return err
	}
	q.log.onSync = func(d time.Duration) { q.m.fsync.Update(d.Seconds()) }
	return nil
}

// loadLog opens the shared log in dir, gives each endpoint's cursor (by
// endpoint id) the records at or after its read offset, and deletes the
// segments no cursor needs. Damaged stretches and records of unknown
// endpoints are skipped and reported through damaged and orphan.
func loadLog(dir string, opts Options, total *atomic.Int64, cursors map[uint32]*cursor, minNext uint64,
	damaged func(corruption), orphan func(scanned)) (*segmentLog, error) {
	l, err := openLog(dir, opts.SegmentBytes, opts.syncFile, total, minNext)
	if err != nil {
		return nil, err
	}
	for _, c := range cursors {
		c.log = l
	}
	err = l.scan(func(r scanned) {
		c := cursors[r.endpoint]
		switch {
		case c == nil:
			orphan(r)
		case !r.at.less(c.start):
			ref := recordRef{at: r.at, end: r.end, enqueued: r.enqueued}
			l.ref(r.at.seg, ref.size())
			c.push(ref)
		}
	}, damaged)
	if err != nil {
		return nil, fmt.Errorf("queue %s: %w", dir, err)
	}
	l.collect()
	return l, nil
}
