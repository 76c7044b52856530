package remotewrite

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
)

// HealthChecker probes an upstream's health URL (vmanomaly's health_path,
// e.g. http://vminsert:8480/health) in the background, so /ready can answer
// from memory and a dead upstream shows on dashboards before data piles up.
// While the upstream is not ready it probes every RecoveryProbeInterval (or
// its interval, if shorter), so that the queue learns within a second that
// the upstream is back (OnReady).
type HealthChecker struct {
	client   *Client
	url      string // as given; may carry credentials
	safeURL  string // for logs
	interval time.Duration
	logger   *slog.Logger
	ready    atomic.Bool
	gauge    *metrics.Gauge         // scoreproxy_upstream_ready{url}
	onReady  atomic.Pointer[func()] // called when a probe succeeds after one that did not

	// Only Run's goroutine touches these: the last logged state, so that
	// only changes are logged.
	logged    healthState
	loggedErr string // last credentials error logged
}

type healthState int

const (
	stateUnknown healthState = iota
	stateReady
	stateNotReady
)

// NewHealthChecker prepares probes of url with c's auth and TLS settings. An
// interval <= 0 means 10s; a nil logger means slog.Default().
func NewHealthChecker(c *Client, url string, interval time.Duration, logger *slog.Logger) *HealthChecker {
	if interval <= 0 {
		interval = 10 * time.Second
	}
	if logger == nil {
		logger = slog.Default()
	}
	safe := redactURL(url)
	return &HealthChecker{
		client:   c,
		url:      url,
		safeURL:  safe,
		interval: interval,
		logger:   logger,
		gauge:    metrics.GetOrCreateGauge(metricUpstreamReady+`{url="`+escapeLabelValue(safe)+`"}`, nil),
	}
}

// Ready reports whether the last probe got a 2xx answer. It is one atomic
// load, cheap enough for every /ready request.
func (h *HealthChecker) Ready() bool { return h.ready.Load() }

// RecoveryProbeInterval is the probe interval while the upstream is not
// ready: how late, at most, OnReady learns that it is back.
const RecoveryProbeInterval = 500 * time.Millisecond

// OnReady sets f to be called (from Run's goroutine) whenever a probe
// succeeds after a failed one, or the first probe succeeds: the queue wakes
// its delivery workers out of their retry backoff with it.
func (h *HealthChecker) OnReady(f func()) { h.onReady.Store(&f) }

// Run probes the URL every interval until ctx is done (every
// RecoveryProbeInterval while the upstream is not ready); the first probe
// runs immediately so readiness is known right after start-up.
func (h *HealthChecker) Run(ctx context.Context) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		h.probeOnce(ctx)
		t.Reset(h.nextProbe())
	}
}

// nextProbe is the wait before the next probe.
func (h *HealthChecker) nextProbe() time.Duration {
	if h.ready.Load() {
		return h.interval
	}
	return min(h.interval, RecoveryProbeInterval)
}

// probeOnce runs one probe and records its outcome. A probe cut short by ctx
// ending (shutdown) changes nothing.
func (h *HealthChecker) probeOnce(ctx context.Context) {
	reason := h.probe(ctx)
	if ctx.Err() != nil {
		return
	}
	ok := reason == ""
	wasReady := h.ready.Swap(ok)
	if ok {
		h.gauge.Set(1)
	} else {
		h.gauge.Set(0)
	}
	h.logChange(ok, reason)
	h.logCredentials()
	if f := h.onReady.Load(); ok && !wasReady && f != nil {
		(*f)()
	}
}

// probe GETs the health URL and returns why it is not healthy, or "".
func (h *HealthChecker) probe(ctx context.Context) string {
	ctx, cancel := context.WithTimeout(ctx, h.client.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.url, nil)
	if err != nil {
		return "invalid health URL"
	}
	h.client.setCommonHeaders(req.Header, time.Now())
	resp, err := h.client.hc.Do(req)
	if err != nil {
		return transportMessage(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		drain(resp.Body)
		return ""
	}
	reason := "answered " + strconv.Itoa(resp.StatusCode) + " " + http.StatusText(resp.StatusCode)
	if msg := readMessage(resp.Body); msg != "" {
		reason += ": " + msg
	}
	return reason
}

// logChange logs transitions only, so a long outage is one line, not one per probe.
func (h *HealthChecker) logChange(ok bool, reason string) {
	switch {
	case ok && h.logged != stateReady:
		h.logged = stateReady
		h.logger.Info("upstream is ready", "url", h.safeURL)
	case !ok && h.logged != stateNotReady:
		h.logged = stateNotReady
		h.logger.Warn("upstream is not ready", "url", h.safeURL, "reason", reason)
	}
}

// logCredentials reports a change in the client's credential re-read errors
// (rotated token or certificate unreadable), which Send cannot log per request.
func (h *HealthChecker) logCredentials() {
	msg := ""
	if err := h.client.CredentialsError(); err != nil {
		msg = err.Error()
	}
	if msg == h.loggedErr {
		return
	}
	h.loggedErr = msg
	if msg == "" {
		h.logger.Info("upstream credentials re-read again", "url", h.safeURL)
		return
	}
	h.logger.Warn("cannot re-read upstream credentials; using the last good ones", "url", h.safeURL, "error", msg)
}
