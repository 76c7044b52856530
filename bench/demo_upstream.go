package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
)

// demoUpstream is the demo's stand-in for vminsert: the counting Sink, plus
// a few of the series each write path received, for printing.
type demoUpstream struct {
	sink   *Sink
	url    string
	srv    *http.Server
	lines  int // series kept per path
	mu     sync.Mutex
	looked map[string]int      // requests decoded per path; guarded by mu
	series map[string][]string // path -> series kept, in Prometheus text; guarded by mu
}

// demoLookedRequests is how many requests per path are decoded for the
// printed series: the rest only go through the sink, so printing does not
// weigh on the throughput.
const demoLookedRequests = 3

// startDemoUpstream serves a counting sink on a free loopback port.
func startDemoUpstream(lines int) (*demoUpstream, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	u := &demoUpstream{sink: NewSink(http.StatusNoContent, 0, true), url: "http://" + ln.Addr().String(),
		lines: lines, looked: map[string]int{}, series: map[string][]string{}}
	u.srv = &http.Server{Handler: u}
	go u.srv.Serve(ln)
	return u, nil
}

func (u *demoUpstream) close() { u.srv.Close() }

// ServeHTTP keeps a few series of the first requests of each path, then
// lets the sink decode, count and answer.
func (u *demoUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost && u.wants(r.URL.Path) {
		body, err := io.ReadAll(io.LimitReader(r.Body, maxSinkBody+1))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		u.keep(r.URL.Path, body)
		r.Body = io.NopCloser(bytes.NewReader(body))
	}
	u.sink.ServeHTTP(w, r)
}

// wants reports whether the next request of path is decoded for printing.
func (u *demoUpstream) wants(path string) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.looked[path]++
	return u.looked[path] <= demoLookedRequests
}

// keep records the first series of each metric name in body, up to lines
// per path. A body the sink will refuse is simply not recorded.
func (u *demoUpstream) keep(path string, body []byte) {
	raw, err := snappy.Decode(nil, body)
	var wr prompb.WriteRequest
	if err != nil || wr.Unmarshal(raw) != nil {
		return
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	kept := u.series[path]
	for _, ts := range wr.Timeseries {
		if len(kept) >= u.lines {
			break
		}
		text := seriesText(ts.Labels)
		name, _, _ := strings.Cut(text, "{")
		if !hasName(kept, name) {
			kept = append(kept, text)
		}
	}
	u.series[path] = kept
}

func hasName(kept []string, name string) bool {
	for _, k := range kept {
		if strings.HasPrefix(k, name+"{") {
			return true
		}
	}
	return false
}

// seriesText renders labels as name{label="value",...}.
func seriesText(labels []prompb.Label) string {
	var name string
	var parts []string
	for _, l := range labels {
		if l.Name == "__name__" {
			name = l.Value
			continue
		}
		parts = append(parts, l.Name+"="+strconv.Quote(l.Value))
	}
	return name + "{" + strings.Join(parts, ",") + "}"
}

// keptSeries returns the series kept for path.
func (u *demoUpstream) keptSeries(path string) []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.series[path]...)
}

// tenantWarnings reads scoreproxy_tenant_warnings_total by case from the
// proxy's /metrics, the way an operator would.
func tenantWarnings(proxyURL string) (map[string]int64, error) {
	resp, err := http.Get(proxyURL + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	counts := map[string]int64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), `scoreproxy_tenant_warnings_total{case="`)
		if !ok {
			continue
		}
		c, value, ok := strings.Cut(rest, `"} `)
		if n, err := strconv.ParseInt(value, 10, 64); ok && err == nil {
			counts[c] = n
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(counts) == 0 {
		return nil, fmt.Errorf("%s/metrics has no scoreproxy_tenant_warnings_total", proxyURL)
	}
	return counts, nil
}

// diffCounts returns after - before per key: the metrics are process-wide,
// so a second demo in the same process (tests) must not count the first.
func diffCounts(before, after map[string]int64) map[string]int64 {
	out := map[string]int64{}
	for k, v := range after {
		out[k] = v - before[k]
	}
	return out
}

// warningLog is the proxy's slog handler in the demo: it keeps the first
// message of each tenant warning case, and every other warning or error.
type warningLog struct {
	mu     sync.Mutex
	byCase map[string]string // case -> first message; guarded by mu
	other  []string          // guarded by mu
}

func newWarningLog() *warningLog { return &warningLog{byCase: map[string]string{}} }

func (l *warningLog) Enabled(_ context.Context, level slog.Level) bool {
	return level >= slog.LevelWarn
}
func (l *warningLog) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *warningLog) WithGroup(string) slog.Handler      { return l }

func (l *warningLog) Handle(_ context.Context, r slog.Record) error {
	var c string
	var attrs []string
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "case" {
			c = a.Value.String()
		} else {
			attrs = append(attrs, a.Key+"="+a.Value.String())
		}
		return true
	})
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case c == "":
		l.other = append(l.other, strings.TrimSpace(r.Level.String()+" "+r.Message+" "+strings.Join(attrs, " ")))
	case l.byCase[c] == "":
		l.byCase[c] = r.Message
	}
	return nil
}

// firstMessage returns the first logged message of a warning case.
func (l *warningLog) firstMessage(c string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.byCase[c]
}

func (l *warningLog) others() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.other...)
}

// sortedMapKeys returns the keys of m in order.
func sortedMapKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
