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
	q.log, err = loadLog(filepath.Join(q.opts.Dir, logDir), q.opts, &q.pending, cursors, minNext, loadReport{
		damaged: func(c corruption) { q.reportCorruption(c, "at start-up") },
		orphan: func(r scanned) {
			// Never give this id to a new endpoint: after a restart its
			// records would look like the new endpoint's.
			q.nextID = max(q.nextID, r.endpoint+1)
			q.m.corrupted.Inc()
			q.m.corruptedBytes.Add(int(r.end - r.at.off))
			q.logger.Warn("queue: a record's endpoint directory is gone; the block is lost",
				"endpoint_id", r.endpoint, "segment", q.segPath(r.at.seg),
				"offset", r.at.off, "bytes_lost", r.end-r.at.off, "samples_lost", r.samples)
		},
		lost: func(endpoint uint32, seg uint64, l lossSum) {
			if e := byID[endpoint]; e != nil {
				e.reportLost(seg, l, "at start-up")
				return
			}
			q.nextID = max(q.nextID, endpoint+1)
			q.logger.Warn("queue: blocks of an endpoint whose directory is gone were lost to a damaged segment",
				"endpoint_id", endpoint, "segment", q.segPath(seg), "blocks_lost", l.blocks, "samples_lost", l.samples)
		},
	})
	if err != nil {
		return err
	}
	q.log.onSync = func(d time.Duration) { q.m.fsync.Update(d.Seconds()) }
	return nil
}

// loadReport receives what loadLog finds: damaged stretches, intact records
// of unknown endpoints (orphan), and per endpoint and segment the
// acknowledged, undelivered records that are unreadable or gone (lost, from
// the segment's index; also for unknown endpoints).
type loadReport struct {
	damaged func(corruption)
	orphan  func(scanned)
	lost    func(endpoint uint32, seg uint64, l lossSum)
}

// lossSum is what damage cost one endpoint in one segment.
type lossSum struct{ blocks, samples, bytes int }

// loadLog opens the shared log in dir, gives each endpoint's cursor (by
// endpoint id) the records at or after its read offset, and deletes the
// segments no cursor needs. Damage and loss are reported to r.
func loadLog(dir string, opts Options, total *atomic.Int64, cursors map[uint32]*cursor, minNext uint64, r loadReport) (*segmentLog, error) {
	l, err := openLog(dir, opts.SegmentBytes, opts.syncFile, total, minNext)
	if err != nil {
		return nil, err
	}
	for _, c := range cursors {
		c.log = l
	}
	var tally lossTally
	err = l.scan(scanReport{
		visit: func(s scanned) {
			c := cursors[s.endpoint]
			switch {
			case c == nil:
				r.orphan(s)
			case !s.at.less(c.start):
				ref := recordRef{at: s.at, end: s.end, enqueued: s.enqueued, samples: s.samples}
				l.ref(s.at.seg, s.endpoint, ref.size())
				c.push(ref)
			}
		},
		damaged: r.damaged,
		lost: func(seg uint64, e indexEntry) {
			if c := cursors[e.endpoint]; c == nil || !(position{seg, e.off}).less(c.start) {
				tally.add(seg, e) // else delivered before the damage
			}
		},
	})
	if err != nil {
		return nil, fmt.Errorf("queue %s: %w", dir, err)
	}
	tally.report(r.lost)
	l.collect()
	return l, nil
}

// lossTally sums lost records by endpoint and segment, in the order met.
type lossTally struct {
	order []lossKey
	sums  map[lossKey]*lossSum
}

type lossKey struct {
	endpoint uint32
	seg      uint64
}

func (t *lossTally) add(seg uint64, e indexEntry) {
	k := lossKey{e.endpoint, seg}
	if t.sums == nil {
		t.sums = map[lossKey]*lossSum{}
	}
	if t.sums[k] == nil {
		t.sums[k] = &lossSum{}
		t.order = append(t.order, k)
	}
	sum := t.sums[k]
	sum.blocks, sum.samples, sum.bytes = sum.blocks+1, sum.samples+e.samples, sum.bytes+int(e.size)
}

// report calls lost for each endpoint and segment that lost records.
func (t *lossTally) report(lost func(endpoint uint32, seg uint64, l lossSum)) {
	for _, k := range t.order {
		lost(k.endpoint, k.seg, *t.sums[k])
	}
}
