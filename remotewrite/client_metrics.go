package remotewrite

import (
	"maps"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/VictoriaMetrics/metrics"
)

// Metric names of the upstream client. The vmanomaly_writer_* family keeps the
// names, types and the url/code labels of vmanomaly's VmWriter self-monitoring
// metrics, so dashboards and alerts built for vmanomaly's writer keep working
// when scoreproxy does the writing. vmanomaly's query_key, scheduler_alias and
// preset labels are left out: the proxy does not know them.
//
// Both durations are VictoriaMetrics histograms (vmrange buckets), the only
// histogram github.com/VictoriaMetrics/metrics has; MetricsQL's
// histogram_quantile reads them directly, and prometheus_buckets() turns them
// into `le` buckets.
const (
	metricRequestDuration  = "vmanomaly_writer_request_duration_seconds"  // histogram{url}, every request
	metricResponses        = "vmanomaly_writer_responses_total"           // counter{url,code}, every request
	metricSentBytes        = "vmanomaly_writer_sent_bytes_total"          // counter{url}, body bytes of requests that got an answer
	metricSerializeSeconds = "vmanomaly_writer_request_serialize_seconds" // histogram{url}, BatchStats.SerializeSeconds when > 0
	metricDatapointsSent   = "vmanomaly_writer_datapoints_sent_total"     // counter{url,query_key}, 2xx only
	metricTimeseriesSent   = "vmanomaly_writer_timeseries_sent_total"     // counter{url,query_key}, 2xx only
	metricUpstreamErrors   = "scoreproxy_upstream_errors_total"           // counter{url,reason}, transport errors
	metricUpstreamReady    = "scoreproxy_upstream_ready"                  // gauge{url}, last health probe 2xx (1) or not (0)
)

// errReason classifies a transport error (no HTTP response). Its name is the
// `reason` label of scoreproxy_upstream_errors_total; code is the `code` label
// of vmanomaly_writer_responses_total, where vmanomaly uses "timeout" and
// "connection_error" in place of a status code, and scoreproxy adds
// "canceled" for requests abandoned because the caller's context ended.
type errReason int

const (
	reasonConnection errReason = iota // refused, reset, DNS, TLS handshake, bad URL...
	reasonTimeout                     // the per-request timeout or the caller's deadline expired
	reasonCanceled                    // the caller cancelled (producer went away, shutdown)
	numReasons
)

var reasonNames = [numReasons]string{"connection", "timeout", "canceled"}
var reasonCodes = [numReasons]string{"connection_error", "timeout", "canceled"}

// lazyCounter creates its counter on first use, so series that never happen
// (an error reason, a status code) are not exported as zeros.
type lazyCounter struct {
	p atomic.Pointer[metrics.Counter]
}

// get returns the counter, registering it under name() on first use. Racing
// first uses are harmless: GetOrCreateCounter returns the same object.
func (l *lazyCounter) get(name func() string) *metrics.Counter {
	if c := l.p.Load(); c != nil {
		return c
	}
	c := metrics.GetOrCreateCounter(name())
	l.p.Store(c)
	return c
}

// urlMetrics holds the metric objects of one upstream URL, created once so
// that Send neither formats metric names nor looks them up per call.
type urlMetrics struct {
	// safeURL is the URL without userinfo: the `url` label and SendResult.URL.
	safeURL string
	// label is `url="<escaped safeURL>"`, the shared part of every name.
	label string

	duration, serialize *metrics.Histogram
	sentBytes           *metrics.Counter

	// keys maps a query key to its sent counters, copied on write (under
	// keysMu) like codes; noKey is the entry of "", there from the start.
	keys   atomic.Pointer[map[string]*sentCounters]
	keysMu sync.Mutex
	noKey  *sentCounters

	// codes maps an HTTP status to its responses counter. It is copied on
	// write (under codesMu) so the per-request read is a lock-free load.
	codes   atomic.Pointer[map[int]*metrics.Counter]
	codesMu sync.Mutex
	// errCodes and errReasons are the responses{code} and errors{reason}
	// counters of transport errors, indexed by errReason.
	errCodes, errReasons [numReasons]lazyCounter
}

// newURLMetrics registers the always-present metrics of safeURL.
func newURLMetrics(safeURL string) *urlMetrics {
	m := &urlMetrics{safeURL: safeURL, label: `url="` + escapeLabelValue(safeURL) + `"`}
	m.duration = metrics.GetOrCreateHistogram(m.name(metricRequestDuration, ""))
	m.serialize = metrics.GetOrCreateHistogram(m.name(metricSerializeSeconds, ""))
	m.sentBytes = metrics.GetOrCreateCounter(m.name(metricSentBytes, ""))
	m.noKey = m.newSentCounters("")
	keys := map[string]*sentCounters{"": m.noKey}
	m.keys.Store(&keys)
	empty := map[int]*metrics.Counter{}
	m.codes.Store(&empty)
	return m
}

// sentCounters are the datapoints and timeseries sent of one query key.
type sentCounters struct {
	datapoints, timeseries *metrics.Counter
}

func (m *urlMetrics) newSentCounters(key string) *sentCounters {
	label := `query_key="` + escapeLabelValue(key) + `"`
	return &sentCounters{
		datapoints: metrics.GetOrCreateCounter(m.name(metricDatapointsSent, label)),
		timeseries: metrics.GetOrCreateCounter(m.name(metricTimeseriesSent, label)),
	}
}

// countSent adds what an accepted request carried to the sent counters.
func (m *urlMetrics) countSent(stats BatchStats) {
	if stats.QueryKeys == nil {
		m.noKey.datapoints.Add(stats.Samples)
		m.noKey.timeseries.Add(stats.Series)
		return
	}
	for _, t := range stats.QueryKeys {
		c := m.sent(t.Key)
		c.datapoints.Add(t.Samples)
		c.timeseries.Add(t.Series)
	}
}

// sent returns the sent counters of a query key, creating them on first
// use; past MaxQueryKeys keys (besides "") it returns OverflowQueryKey's.
func (m *urlMetrics) sent(key string) *sentCounters {
	if c := (*m.keys.Load())[key]; c != nil {
		return c
	}
	m.keysMu.Lock()
	defer m.keysMu.Unlock()
	old := *m.keys.Load()
	if c := old[key]; c != nil {
		return c
	}
	if len(old) > MaxQueryKeys {
		key = OverflowQueryKey
		if c := old[key]; c != nil {
			return c
		}
	}
	key = strings.Clone(key) // it may point into a request being routed
	c := m.newSentCounters(key)
	next := make(map[string]*sentCounters, len(old)+1)
	maps.Copy(next, old)
	next[key] = c
	m.keys.Store(&next)
	return c
}

// name renders `family{url="...",extra}`; extra is another label or "".
func (m *urlMetrics) name(family, extra string) string {
	if extra == "" {
		return family + "{" + m.label + "}"
	}
	return family + "{" + m.label + "," + extra + "}"
}

// responses returns the responses counter of an HTTP status code.
func (m *urlMetrics) responses(code int) *metrics.Counter {
	if c := (*m.codes.Load())[code]; c != nil {
		return c
	}
	m.codesMu.Lock()
	defer m.codesMu.Unlock()
	old := *m.codes.Load()
	if c := old[code]; c != nil {
		return c
	}
	c := metrics.GetOrCreateCounter(m.name(metricResponses, `code="`+strconv.Itoa(code)+`"`))
	next := make(map[int]*metrics.Counter, len(old)+1)
	maps.Copy(next, old)
	next[code] = c
	m.codes.Store(&next)
	return c
}

// transportError counts one request that got no HTTP response.
func (m *urlMetrics) transportError(r errReason) {
	m.errCodes[r].get(func() string {
		return m.name(metricResponses, `code="`+reasonCodes[r]+`"`)
	}).Inc()
	m.errReasons[r].get(func() string {
		return m.name(metricUpstreamErrors, `reason="`+reasonNames[r]+`"`)
	}).Inc()
}

// urlRegistry maps each raw upstream URL (as passed to Send, possibly with
// credentials) to its metrics. Reads are lock-free loads of a map that is
// copied on write; URLs are few (one per tenant endpoint) and added rarely.
type urlRegistry struct {
	m  atomic.Pointer[map[string]*urlMetrics]
	mu sync.Mutex // serializes writers
}

// registry is shared by all Clients: the metrics live in the default set, so
// two Clients sending to one URL must update the same objects anyway.
var registry urlRegistry

// get returns the metrics of rawURL, creating them on first use.
func (r *urlRegistry) get(rawURL string) *urlMetrics {
	if p := r.m.Load(); p != nil {
		if m := (*p)[rawURL]; m != nil {
			return m
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var old map[string]*urlMetrics
	if p := r.m.Load(); p != nil {
		old = *p
	}
	if m := old[rawURL]; m != nil {
		return m
	}
	m := newURLMetrics(redactURL(rawURL))
	next := make(map[string]*urlMetrics, len(old)+1)
	maps.Copy(next, old)
	next[rawURL] = m
	r.m.Store(&next)
	return m
}

// escapeLabelValue escapes a Prometheus text-format label value.
func escapeLabelValue(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s)
}
