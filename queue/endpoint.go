package queue

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"

	"github.com/scoreproxy/scoreproxy/remotewrite"
)

const (
	metaFile = "endpoint.json"
)

// endpoint is the queue of one upstream URL: its records in the shared log
// (its cursor), and the worker that delivers them.
type endpoint struct {
	q        *Queue
	id       uint32 // tags its records in the log
	url      string // as the router gave it; may carry credentials
	safeURL  string // for logs, metrics and results
	dir      string
	cur      *cursor
	rejected rejectedLog
	m        endpointMetrics
	lastSend atomic.Int64 // unix nanoseconds of the last Send to it, for the share rule

	workerDone chan struct{}
}

type endpointMeta struct {
	URL string `json:"url"`
	ID  uint32 `json:"id"`
}

// dirName derives an endpoint's directory name from its URL: readable (the
// URL without credentials, sanitized, cut to 80 bytes) and unique (a hash of
// the full URL, so two credentials for one URL do not share a queue).
func dirName(rawURL string) string {
	sum := sha256.Sum256([]byte(rawURL))
	safe := remotewrite.RedactURL(rawURL)
	if _, rest, ok := strings.Cut(safe, "://"); ok {
		safe = rest
	}
	name := []byte(safe)
	for i, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-') {
			name[i] = '_'
		}
	}
	return string(name[:min(len(name), 80)]) + "-" + hex.EncodeToString(sum[:8])
}

// writeMeta records the endpoint's URL durably, before any block is queued
// for it, so that a restart knows where the blocks go.
func writeMeta(dir, rawURL string, id uint32) error {
	data, err := json.Marshal(endpointMeta{URL: rawURL, ID: id})
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, metaFile+".tmp")
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600) // the URL may hold credentials
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, metaFile))
	}
	if err == nil {
		err = syncDir(dir)
	}
	return err
}

// readMeta returns the URL and id of the endpoint directory dir.
func readMeta(dir string) (endpointMeta, error) {
	data, err := os.ReadFile(filepath.Join(dir, metaFile))
	if err != nil {
		return endpointMeta{}, err
	}
	var m endpointMeta
	if err := json.Unmarshal(data, &m); err != nil || m.URL == "" || m.ID == 0 {
		return endpointMeta{}, fmt.Errorf("%s: not a queue endpoint file of this version (%v)", filepath.Join(dir, metaFile), err)
	}
	return m, nil
}

// newEndpoint opens the endpoint directory dir (its read offset); its
// records are pushed to its cursor by the start-up scan and the committer.
func (q *Queue) newEndpoint(m endpointMeta, dir string) (*endpoint, error) {
	c, err := openCursor(dir, m.ID, q.log)
	if err != nil {
		return nil, err
	}
	e := &endpoint{q: q, id: m.ID, url: m.URL, safeURL: remotewrite.RedactURL(m.URL), dir: dir, cur: c,
		rejected:   rejectedLog{dir: dir, maxBytes: q.opts.MaxRejectedBytes, syncFile: q.opts.syncFile},
		workerDone: make(chan struct{})}
	e.m = q.m.register(e)
	return e, nil
}

// start adds the endpoint's gauges and starts its delivery worker.
func (e *endpoint) start() {
	e.m.addGauges(e)
	if blocks, bytes, _ := e.cur.pending(); blocks > 0 {
		e.q.logger.Info("queue: undelivered blocks found; delivering them first", "url", e.safeURL, "blocks", blocks, "bytes", bytes)
	}
	go e.deliverLoop(e.q.workerCtx)
}

// reportLost counts and logs acknowledged blocks of e, in segment seg, that
// will never be delivered: their records are damaged, cut off or gone.
func (e *endpoint) reportLost(seg uint64, l lossSum, found string) {
	e.m.lostBlocks.Add(l.blocks)
	e.m.lostSamples.Add(l.samples)
	e.q.logger.Warn("queue: acknowledged blocks lost to a damaged, cut or missing segment; they will not be delivered",
		"url", e.safeURL, "found", found, "segment", e.q.segPath(seg), "blocks_lost", l.blocks, "samples_lost", l.samples, "bytes_lost", l.bytes)
}

// reportSkipped reports the damaged records among items, acknowledged by
// the delivery worker: counted as corrupted records and, per segment, as
// lost blocks.
func (e *endpoint) reportSkipped(items []item) {
	var seg uint64
	var sum lossSum
	for _, it := range items {
		if !it.skip {
			continue
		}
		if sum.blocks > 0 && it.ref.at.seg != seg {
			e.reportLost(seg, sum, "while delivering")
			sum = lossSum{}
		}
		seg = it.ref.at.seg
		sum.blocks, sum.samples, sum.bytes = sum.blocks+1, sum.samples+it.ref.samples, sum.bytes+int(it.ref.size())
		e.q.m.corrupted.Inc()
		e.q.m.corruptedBytes.Add(int(it.ref.size()))
	}
	if sum.blocks > 0 {
		e.reportLost(seg, sum, "while delivering")
	}
}

// reportCorruption counts and logs a damaged stretch of a segment found at
// start-up: a record torn by a crash in the middle of a write, or damaged on
// disk. The blocks in it are lost (reportLost says which, where the
// segment's index knows); the ones after it are delivered.
func (q *Queue) reportCorruption(c corruption, when string) {
	lost := c.end - c.at.off
	q.m.corrupted.Inc()
	q.m.corruptedBytes.Add(int(lost))
	q.logger.Warn("queue: skipped a torn or corrupted record", "found", when,
		"segment", q.segPath(c.at.seg), "offset", c.at.off, "bytes_lost", lost)
}

// segPath is the path of segment id of the shared log (usable before the log is open).
func (q *Queue) segPath(id uint64) string {
	return filepath.Join(q.opts.Dir, logDir, segName(id))
}

// errClosed is returned by Send after Close began.
var errClosed = errors.New("the queue is shutting down")
