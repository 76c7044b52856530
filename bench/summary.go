package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// recorder collects the outcome of one sender's requests; it is owned by
// that sender, so it needs no lock.
type recorder struct {
	latencies    []time.Duration
	errors       map[string]int64
	firstMessage map[string]string
	acked        int64
	ackedSamples int64
	ackedBodies  []int64 // acknowledged requests per body of the pool
}

// newRecorder returns an empty recorder for a pool of bodies bodies.
func newRecorder(bodies int) *recorder {
	return &recorder{errors: map[string]int64{}, firstMessage: map[string]string{}, ackedBodies: make([]int64, bodies)}
}

// record adds the latency and outcome of one request of body number body.
func (r *recorder) record(lat time.Duration, status int, msg string, err error, body, samples int) {
	r.latencies = append(r.latencies, lat)
	var key string
	switch {
	case err != nil:
		key, msg = errorClass(err), err.Error()
	case status/100 == 2:
		r.acked++
		r.ackedBodies[body]++
		r.ackedSamples += int64(samples)
		return
	default:
		key = strconv.Itoa(status)
	}
	r.errors[key]++
	if _, ok := r.firstMessage[key]; !ok {
		r.firstMessage[key] = msg
	}
}

// Summary is the result of one load run, printed as text or JSON.
type Summary struct {
	URL         string   `json:"url"`
	Workload    Workload `json:"workload"`
	Concurrency int      `json:"concurrency"`
	// PoolBodies is the number of distinct bodies; a run with more requests
	// re-sends bodies, so a deduplicating store keeps fewer samples.
	PoolBodies int        `json:"pool_bodies"`
	BodyFormat BodyFormat `json:"body_format"`
	// BodySnappyBytes is the mean body as sent (snappy, gzip or, for
	// uncompressed JSON lines, the lines themselves).
	BodySnappyBytes    int64             `json:"body_snappy_bytes"`
	BodyRawBytes       int64             `json:"body_raw_bytes"`
	DurationSeconds    float64           `json:"duration_seconds"`
	Requests           int64             `json:"requests"`
	AckedRequests      int64             `json:"acked_requests"`
	AckedSamples       int64             `json:"acked_samples"`
	SamplesPerSecond   float64           `json:"samples_per_second"`
	RequestsPerSecond  float64           `json:"requests_per_second"`
	LatencyP50Ms       float64           `json:"latency_p50_ms"`
	LatencyP90Ms       float64           `json:"latency_p90_ms"`
	LatencyP99Ms       float64           `json:"latency_p99_ms"`
	ErrorsByStatus     map[string]int64  `json:"errors_by_status"`
	FirstErrorMessages map[string]string `json:"first_error_messages,omitempty"`
	// ackedBodies counts the acknowledged requests of each pool body, for
	// the samples per tenant they carried (Pool.AckedTenantSamples).
	ackedBodies []int64
}

// summarize merges the senders' recorders into a Summary.
func summarize(cfg LoadConfig, p *Pool, elapsed time.Duration, recs []*recorder) *Summary {
	s := &Summary{
		URL: cfg.URL, Concurrency: cfg.Concurrency, PoolBodies: len(p.Bodies), BodyFormat: p.Format,
		BodySnappyBytes: p.AvgCompressed(), BodyRawBytes: p.AvgRaw(),
		DurationSeconds: elapsed.Seconds(), ErrorsByStatus: map[string]int64{},
		FirstErrorMessages: map[string]string{}, ackedBodies: make([]int64, len(p.Bodies)),
	}
	var lats []time.Duration
	for _, r := range recs {
		lats = append(lats, r.latencies...)
		for i, n := range r.ackedBodies {
			s.ackedBodies[i] += n
		}
		s.AckedRequests += r.acked
		s.AckedSamples += r.ackedSamples
		for k, v := range r.errors {
			s.ErrorsByStatus[k] += v
			if _, ok := s.FirstErrorMessages[k]; !ok {
				s.FirstErrorMessages[k] = r.firstMessage[k]
			}
		}
	}
	s.Requests = int64(len(lats))
	if sec := elapsed.Seconds(); sec > 0 {
		s.SamplesPerSecond = float64(s.AckedSamples) / sec
		s.RequestsPerSecond = float64(s.Requests) / sec
	}
	slices.Sort(lats)
	s.LatencyP50Ms = ms(percentile(lats, 0.50))
	s.LatencyP90Ms = ms(percentile(lats, 0.90))
	s.LatencyP99Ms = ms(percentile(lats, 0.99))
	return s
}

// percentile returns the nearest-rank percentile q (0..1] of sorted values.
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// ms converts a duration to fractional milliseconds.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// WriteJSON writes the summary as indented JSON.
func (s *Summary) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(s)
}

// WriteText writes the human-readable summary.
func (s *Summary) WriteText(w io.Writer) {
	wl := s.Workload
	fmt.Fprintf(w, "target       %s\n", s.URL)
	fmt.Fprintf(w, "workload     %s: %d series x %d samples, %d labels, %d tenants, %d query keys\n",
		wl.Preset, wl.Series, wl.Samples, wl.Labels, wl.Tenants, wl.QueryKeys)
	if c := wl.describeCardinality(); c != "" {
		fmt.Fprintf(w, "series       %s\n", c)
	}
	fmt.Fprintf(w, "body         %s, %d distinct bodies\n", s.BodyFormat.describeBody(s.BodySnappyBytes, s.BodyRawBytes), s.PoolBodies)
	fmt.Fprintf(w, "run          %.2f s, concurrency %d\n", s.DurationSeconds, s.Concurrency)
	fmt.Fprintf(w, "requests     %d sent, %d acknowledged, %.1f requests/s\n", s.Requests, s.AckedRequests, s.RequestsPerSecond)
	fmt.Fprintf(w, "samples      %d acknowledged, %s samples/s\n", s.AckedSamples, humanCount(s.SamplesPerSecond))
	fmt.Fprintf(w, "latency      p50 %.2f ms  p90 %.2f ms  p99 %.2f ms\n", s.LatencyP50Ms, s.LatencyP90Ms, s.LatencyP99Ms)
	fmt.Fprintf(w, "errors       %s\n", s.errorsText())
	if s.Requests > int64(s.PoolBodies) {
		fmt.Fprintf(w, "note         %d requests re-sent bodies of a %d-body pool: a deduplicating store keeps fewer samples (raise -pool)\n",
			s.Requests, s.PoolBodies)
	}
}

// errorsText renders the errors by status, most frequent first.
func (s *Summary) errorsText() string {
	if len(s.ErrorsByStatus) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(s.ErrorsByStatus))
	for k := range s.ErrorsByStatus {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		a, b := s.ErrorsByStatus[keys[i]], s.ErrorsByStatus[keys[j]]
		return a > b || a == b && keys[i] < keys[j]
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s: %d (%s)", k, s.ErrorsByStatus[k], truncate(s.FirstErrorMessages[k], 120))
	}
	return strings.Join(parts, "; ")
}

// truncate shortens s to at most n bytes.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// humanCount renders a count with a k/M/G suffix.
func humanCount(v float64) string {
	switch {
	case v >= 1e9:
		return fmt.Sprintf("%.2fG", v/1e9)
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.1fk", v/1e3)
	}
	return fmt.Sprintf("%.0f", v)
}
