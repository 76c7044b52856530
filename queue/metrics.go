package queue

import (
	"strconv"
	"strings"
	"time"

	"github.com/VictoriaMetrics/metrics"
)

// Metric names (see README): per endpoint, labelled with its URL without credentials.
const (
	metricPendingBytes   = "scoreproxy_queue_pending_bytes"
	metricPendingBlocks  = "scoreproxy_queue_pending_blocks"
	metricOldestAge      = "scoreproxy_queue_oldest_block_age_seconds"
	metricRetries        = "scoreproxy_queue_retries_total"
	metricRejected       = "scoreproxy_queue_rejected_blocks_total"
	metricFsync          = "scoreproxy_queue_fsync_duration_seconds"
	metricCorrupted      = "scoreproxy_queue_corrupted_records_total"
	metricCorruptedBytes = "scoreproxy_queue_corrupted_bytes_total"
	metricLostBlocks     = "scoreproxy_queue_lost_blocks_total"
	metricLostSamples    = "scoreproxy_queue_lost_samples_total"
	metricQuotaExceeded  = "scoreproxy_queue_quota_exceeded_total"
	metricShareExceeded  = "scoreproxy_queue_endpoint_quota_exceeded_total"
	metricHeldBytes      = "scoreproxy_queue_held_bytes"
	metricMaxBytes       = "scoreproxy_queue_max_disk_bytes"
)

// queueMetrics are one Queue's metrics. They live in a Set of their own,
// registered while the Queue is open, so that a Queue opened again (tests, a
// restart in-process) starts from its own state instead of inheriting gauges
// whose callbacks point at a closed one.
type queueMetrics struct {
	set            *metrics.Set
	fsync          *metrics.Histogram
	corrupted      *metrics.Counter
	corruptedBytes *metrics.Counter
	quotaExceeded  *metrics.Counter
}

func newQueueMetrics(q *Queue) *queueMetrics {
	s := metrics.NewSet()
	// The queue-wide series are labelled with the queue's directory: with
	// several writers (writers:) each has a queue of its own.
	path := `{path="` + escapeLabel(q.opts.Dir) + `"}`
	m := &queueMetrics{
		set:            s,
		fsync:          s.NewHistogram(metricFsync + path),
		corrupted:      s.NewCounter(metricCorrupted + path),
		corruptedBytes: s.NewCounter(metricCorruptedBytes + path),
		quotaExceeded:  s.NewCounter(metricQuotaExceeded + path),
	}
	s.NewGauge(metricMaxBytes+path, func() float64 { return float64(q.opts.MaxDiskBytes) })
	metrics.RegisterSet(s)
	return m
}

// endpointMetrics are the per-endpoint series.
type endpointMetrics struct {
	set         *metrics.Set
	label       string // {url="..."} without the braces
	retries     *metrics.Counter
	lostBlocks  *metrics.Counter // acknowledged blocks never to be delivered (damage)
	lostSamples *metrics.Counter
	// shareExceeded counts Sends refused because the endpoint held more
	// than half of the quota while others delivered.
	shareExceeded *metrics.Counter
}

// register adds e's counters; its gauges come with addGauges.
func (m *queueMetrics) register(e *endpoint) endpointMetrics {
	label := `url="` + escapeLabel(e.safeURL) + `"`
	name := func(family string) string { return family + "{" + label + "}" }
	return endpointMetrics{set: m.set, label: label, retries: m.set.GetOrCreateCounter(name(metricRetries)),
		lostBlocks: m.set.GetOrCreateCounter(name(metricLostBlocks)), lostSamples: m.set.GetOrCreateCounter(name(metricLostSamples)),
		shareExceeded: m.set.GetOrCreateCounter(name(metricShareExceeded))}
}

// addGauges adds e's gauges, read from its cursor and the log when
// /metrics is scraped: call it once the log is open.
func (m endpointMetrics) addGauges(e *endpoint) {
	name := func(family string) string { return family + "{" + m.label + "}" }
	m.set.GetOrCreateGauge(name(metricPendingBytes), func() float64 {
		_, bytes, _ := e.cur.pending()
		return float64(bytes)
	})
	m.set.GetOrCreateGauge(name(metricPendingBlocks), func() float64 {
		blocks, _, _ := e.cur.pending()
		return float64(blocks)
	})
	m.set.GetOrCreateGauge(name(metricOldestAge), func() float64 {
		_, _, oldest := e.cur.pending()
		if oldest.IsZero() {
			return 0
		}
		return time.Since(oldest).Seconds()
	})
	log := e.q.log
	m.set.GetOrCreateGauge(name(metricHeldBytes), func() float64 { return float64(log.pinnedBy(e.id)) })
}

// rejected is the counter of blocks set aside after the upstream answered code.
func (m endpointMetrics) rejected(code int) *metrics.Counter {
	return m.set.GetOrCreateCounter(metricRejected + "{" + m.label + `,code="` + strconv.Itoa(code) + `"}`)
}

// close unregisters every metric of the queue.
func (m *queueMetrics) close() { metrics.UnregisterSet(m.set, true) }

var labelEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)

func escapeLabel(s string) string { return labelEscaper.Replace(s) }
