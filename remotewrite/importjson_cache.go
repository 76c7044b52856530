package remotewrite

import (
	"bytes"
	"errors"
	"sync"
	"unsafe"
)

// importLabelCache remembers, for the exact text of a JSON import line's
// "metric" object, its labels as the transcoder outputs them: validated,
// sorted and encoded as TimeSeries.labels fields. A model writes the same
// series request after request, so with a cache most lines skip parsing,
// checking and encoding their labels: the object's text runs to its first
// '}', and is looked up. Only objects that end there are remembered, so a
// text found is a whole object, and its labels are what parsing it gives.
// One cache serves all the transcoders of a Handler; it is bounded in
// bytes, and emptied when it is full and a whole request found nothing in
// it (the series have changed).
type importLabelCache struct {
	mu    sync.RWMutex
	m     map[string][]byte
	bytes int
	limit int
}

// importCacheEntryOverhead is about what a map entry costs beyond the bytes
// of its key and labels.
const importCacheEntryOverhead = 64

// defaultImportCacheBytes bounds a Handler's importLabelCache: about
// 20,000 series of bench's anomaly workload.
const defaultImportCacheBytes = 8 << 20

// newImportLabelCache returns an empty cache of at most limit bytes.
func newImportLabelCache(limit int) *importLabelCache {
	return &importLabelCache{m: map[string][]byte{}, limit: limit}
}

// importCacheEntry is a label set a transcode found, added to the cache
// when the transcode ends (it reads the cache under the read lock). Both
// slices point into the request (its body and its transcoding), valid
// until the transcode ends: the cache copies the entries it takes, so
// concurrent requests of the same new series cost one copy.
type importCacheEntry struct {
	key, labels []byte
}

// errUncachedLine makes Transcode parse a line again without the cache:
// it has a second "metric" object after one found in the cache.
var errUncachedLine = errors.New("line needs parsing without the label cache")

// full reports whether the cache takes no more entries.
func (c *importLabelCache) full() bool { return c.bytes >= c.limit }

// add stores the entries a transcode found; hits and misses are its
// lookups' outcomes. It takes the lock only when there is something to
// store, or possibly a cache of other series to empty.
func (c *importLabelCache) add(entries []importCacheEntry, hits, misses int) {
	if len(entries) == 0 && (hits > 0 || misses == 0) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.full() && hits == 0 && misses > 0 {
		clear(c.m)
		c.bytes = 0
	}
	for _, e := range entries {
		if _, ok := c.m[string(e.key)]; ok || c.full() {
			continue
		}
		// One allocation holds both; the key's bytes are never written again.
		buf := make([]byte, len(e.key)+len(e.labels))
		copy(buf, e.key)
		copy(buf[len(e.key):], e.labels)
		c.m[unsafe.String(&buf[0], len(e.key))] = buf[len(e.key):]
		c.bytes += len(buf) + importCacheEntryOverhead
	}
}

// cachedMetric looks up the "metric" object at s.i. When the text up to
// its first '}' is in the cache, it consumes it, sets t.hit and reports
// true. Otherwise it keeps the text in t.metricKey, to be remembered once
// the line has been parsed if the object ends there.
func (t *ImportTranscoder) cachedMetric(s *jsonScanner) bool {
	b := s.b[s.i:]
	if len(b) == 0 || b[0] != '{' {
		return false
	}
	end := bytes.IndexByte(b, '}')
	if end < 0 {
		return false
	}
	key := b[:end+1]
	if labels, ok := t.cache.m[string(key)]; ok {
		t.hit, t.hits = labels, t.hits+1
		s.i += end + 1
		return true
	}
	t.misses++
	if !t.cache.full() {
		t.metricKey = key
	}
	return false
}

// remember queues the labels of the line just appended for the cache:
// labels is their encoding in the output.
func (t *ImportTranscoder) remember(labels []byte) {
	if t.metricKey == nil {
		return
	}
	t.pending = append(t.pending, importCacheEntry{key: t.metricKey, labels: labels})
}

// flushCache hands the entries queued by this transcode to the cache.
func (t *ImportTranscoder) flushCache() {
	t.cache.add(t.pending, t.hits, t.misses)
	clear(t.pending)
	t.pending, t.hits, t.misses = t.pending[:0], 0, 0
}
