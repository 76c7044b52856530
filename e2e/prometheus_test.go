package e2e

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/scoreproxy/scoreproxy/internal/testenv"
)

// modelExporter serves anomaly-detection outputs in the text format, as a
// model that exposes /metrics would; values change at every scrape.
func modelExporter(t *testing.T) *httptest.Server {
	var scrapes atomic.Int64
	srv := loopbackServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := scrapes.Add(1)
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		var b strings.Builder
		b.WriteString("# TYPE anomaly_score gauge\n")
		for _, q := range []string{"cpu_rate", "ingestion_rate"} {
			for _, host := range []string{"host-a", "host-b"} {
				fmt.Fprintf(&b, "anomaly_score{for=%q,host=%q} %g\n", q, host, float64(n%7)/4)
				fmt.Fprintf(&b, "yhat{for=%q,host=%q} %g\n", q, host, float64(n)*1.5)
			}
		}
		b.WriteString("# TYPE model_runs_total counter\nmodel_runs_total ")
		fmt.Fprintf(&b, "%d\n", n)
		w.Write([]byte(b.String()))
	}))
	return srv
}

// promConfig scrapes the model exporter and scoreproxy's own /metrics every
// second and remote-writes through scoreproxy, sending batches quickly.
const promConfig = `global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: model
    static_configs:
      - targets: ['%s']
  - job_name: scoreproxy
    static_configs:
      - targets: ['%s']
remote_write:
  - url: http://%s/api/v1/write
    queue_config:
      batch_send_deadline: 200ms
      min_backoff: 100ms
      max_backoff: 1s
`

// The metric_format test A applies: every output gets the prefix "scraped_",
// `for` keeps its value (and goes away where a series has none), and a static
// label marks what came through scoreproxy. routing.format_match `{}`
// selects every series: by default only series with a `for` label would be
// renamed, and most scraped series have none.
const promScoreproxyConfig = `listen: {{LISTEN}}
writer:
  datasource_url: %s
  metric_format:
    __name__: "scraped_$VAR"
    for: "$QUERY_KEY"
    source: prometheus-e2e
routing:
  format_match: "{}"
server:
  health_check_interval: 1s
`

// TestPrometheusRemoteWriteThroughScoreproxy is end-to-end test A: a real
// Prometheus scrapes a model exporter and scoreproxy itself and remote-writes
// through scoreproxy into a real VictoriaMetrics. Every series Prometheus
// stored must be in VictoriaMetrics renamed by metric_format with all its
// labels inherited and the same samples; and the sample counts Prometheus,
// scoreproxy and VictoriaMetrics report must agree.
func TestPrometheusRemoteWriteThroughScoreproxy(t *testing.T) {
	t.Parallel()
	vm, proxy := scoreproxyBeforeVM(t, promScoreproxyConfig)
	exporter := modelExporter(t)
	prom := testenv.StartPrometheus(t, fmt.Sprintf(promConfig,
		strings.TrimPrefix(exporter.URL, "http://"), proxy.Addr, proxy.Addr))

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// Let Prometheus scrape a few times.
	snapshot := waitForScrapes(ctx, t, prom, `{job=~"model|scoreproxy"}`,
		map[string]int{"anomaly_score": 5, "scoreproxy_requests_received_total": 3})

	// What VictoriaMetrics must hold: each Prometheus series renamed, with its
	// samples up to the snapshot. VictoriaMetrics drops NaN samples on
	// ingestion, so they are not expected.
	want := make([]testenv.Series, 0, len(snapshot))
	wantBy := map[string]testenv.Series{}
	for _, s := range snapshot {
		labels := map[string]string{"source": "prometheus-e2e"}
		for k, v := range s.Labels {
			labels[k] = v
		}
		labels["__name__"] = "scraped_" + s.Labels["__name__"]
		if x := withoutNaN(labels, s); len(x.Timestamps) > 0 {
			want = append(want, x)
			wantBy[x.Key()] = x
		}
	}
	mustHave := map[string]bool{
		`scraped_anomaly_score{for="cpu_rate",host="host-a",instance="` + strings.TrimPrefix(exporter.URL, "http://") + `",job="model",source="prometheus-e2e"}`: true,
		`scraped_up{instance="` + proxy.Addr + `",job="scoreproxy",source="prometheus-e2e"}`:                                                                     true,
	}
	for k := range mustHave {
		if _, ok := wantBy[k]; !ok {
			t.Fatalf("test bug: the Prometheus snapshot lacks %s", k)
		}
	}

	// VictoriaMetrics gets the same series with at least the samples of the
	// snapshot (Prometheus goes on scraping meanwhile: later ones are ignored).
	// Values are compared to 1e-11: VictoriaMetrics stores about 12 decimal
	// digits, Prometheus' own float64 values may have 17.
	vm.WaitExport(t, `{source="prometheus-e2e"}`, 60*time.Second, func(got []testenv.Series) error {
		return diffSeries(want, cutToSnapshot(got, wantBy), 1e-11)
	})
	total := 0
	for _, w := range want {
		total += len(w.Values)
	}
	t.Logf("all %d series and %d samples Prometheus stored up to the snapshot are in VictoriaMetrics, renamed", len(want), total)

	// Every series in VictoriaMetrics is one Prometheus has (none invented).
	all, err := vm.Export(ctx, `{__name__!=""}`)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range all {
		name := s.Labels["__name__"]
		if s.Labels["source"] != "prometheus-e2e" || !strings.HasPrefix(name, "scraped_") {
			t.Errorf("VictoriaMetrics has a series not renamed by metric_format: %s", s.Key())
		}
	}

	// Counts: what Prometheus says it sent = what scoreproxy received = what it
	// forwarded = what VictoriaMetrics ingested over remote write. Read between
	// two batches, when all four stand still.
	agreeDeadline := time.Now().Add(30 * time.Second)
	var last string
	for {
		p1 := promSent(t, prom)
		m := scrape(t, proxy.URL+"/metrics")
		vmm := scrape(t, vm.URL+"/metrics")
		p2 := promSent(t, prom)
		received, _ := m.Sum("scoreproxy_samples_received_total", nil)
		forwarded, _ := m.Sum("scoreproxy_samples_forwarded_total", map[string]string{"url": vm.WriteURL()})
		ingested, _ := vmm.Sum("vm_rows_inserted_total", map[string]string{"type": "promremotewrite"})
		last = fmt.Sprintf("Prometheus sent %v then %v, scoreproxy received %v and forwarded %v, VictoriaMetrics ingested %v",
			p1.sent, p2.sent, received, forwarded, ingested)
		if p1 == p2 && p1.sent > 0 && p1.sent == received && received == forwarded && forwarded == ingested {
			if p1.failed != 0 || p1.retried != 0 || p1.dropped != 0 {
				t.Errorf("Prometheus remote write: %d samples failed, %d retried, %d dropped; want none", int(p1.failed), int(p1.retried), int(p1.dropped))
			}
			t.Log(last)
			break
		}
		if time.Now().After(agreeDeadline) {
			t.Fatalf("sample counts never agreed within 30s; last: %s", last)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if v, _ := scrape(t, proxy.URL+"/metrics").Sum("scoreproxy_requests_rejected_total", nil); v != 0 {
		t.Errorf("scoreproxy rejected %v requests of Prometheus", v)
	}
}

// minSamples is the smallest sample count among the series named name; 0 if none.
// waitForScrapes polls Prometheus for the raw samples of sel until every
// metric of atLeast has that many samples in each of its series, and
// returns them; it fails the test after 40 s.
func waitForScrapes(ctx context.Context, t *testing.T, prom *testenv.Prometheus, sel string, atLeast map[string]int) []testenv.Series {
	t.Helper()
	deadline := time.Now().Add(40 * time.Second)
	for {
		snapshot, err := prom.RawSamples(ctx, sel, 10*time.Minute, time.Now())
		if err != nil {
			t.Fatalf("query Prometheus: %v", err)
		}
		enough := true
		for name, n := range atLeast {
			enough = enough && minSamples(snapshot, name) >= n
		}
		if enough {
			return snapshot
		}
		if time.Now().After(deadline) {
			t.Fatalf("Prometheus did not scrape %v often enough in 40s (samples per series wanted: %v); it has %d series", sel, atLeast, len(snapshot))
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func minSamples(ss []testenv.Series, name string) int {
	min := -1
	for _, s := range ss {
		if s.Labels["__name__"] == name && (min < 0 || len(s.Values) < min) {
			min = len(s.Values)
		}
	}
	if min < 0 {
		return 0
	}
	return min
}

// promSentCounts are Prometheus' own remote-write counters.
type promSentCounts struct{ sent, failed, retried, dropped float64 }

func promSent(t *testing.T, prom *testenv.Prometheus) promSentCounts {
	m := scrape(t, prom.URL+"/metrics")
	var c promSentCounts
	c.sent, _ = m.Sum("prometheus_remote_storage_samples_total", nil)
	c.failed, _ = m.Sum("prometheus_remote_storage_samples_failed_total", nil)
	c.retried, _ = m.Sum("prometheus_remote_storage_samples_retried_total", nil)
	c.dropped, _ = m.Sum("prometheus_remote_storage_samples_dropped_total", nil)
	return c
}
