package e2e

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/scoreproxy/scoreproxy/internal/testenv"
)

// prom3SenderConfig scrapes the histogram exporter and Prometheus itself
// every second, native histograms included (protobuf first; the classic
// histogram converted to one with custom buckets), and remote-writes through
// scoreproxy with protobuf_message, marking what it sends with the external
// label remote_write.
const prom3SenderConfig = `global:
  scrape_interval: 1s
  scrape_timeout: 1s
  scrape_protocols: [PrometheusProto, OpenMetricsText1.0.0, PrometheusText0.0.4]
  external_labels:
    remote_write: %q
scrape_configs:
  - job_name: model
    scrape_native_histograms: true
    convert_classic_histograms_to_nhcb: true
    static_configs:
      - targets: ['%s']
  - job_name: prometheus
    scrape_native_histograms: true
    static_configs:
      - targets: ['{{PROMETHEUS_ADDR}}']
remote_write:
  - url: http://%s/api/v1/write
    protobuf_message: %s
    send_native_histograms: true
    queue_config:
      batch_send_deadline: 200ms
      min_backoff: 100ms
      max_backoff: 1s
`

// prom3ScoreproxyConfig forwards everything unchanged to two upstreams: the
// VictoriaMetrics cluster (tenant 0:0), which stores floats only, and a
// Prometheus 3 remote-write receiver, which stores native histograms too.
const prom3ScoreproxyConfig = `listen: {{LISTEN}}
writers:
  - name: vm
    datasource_url: %s
    tenant_id: "0:0"
    compression: auto
  - name: prometheus
    datasource_url: %s
    health_path: /-/healthy
server:
  health_check_interval: 1s
`

// TestPrometheus3RemoteWriteThroughScoreproxy runs a real Prometheus 3
// (v0.316.0) scraping native, float and custom-bucket histograms (the
// histogram exporter) and its own /metrics, remote-writing through scoreproxy
// with remote write 2.0 and with 1.0. scoreproxy writes to a real
// VictoriaMetrics cluster v1.129.1, which drops native histograms, and to a
// second Prometheus 3 that receives remote write and keeps them. Each run
// must hold:
//   - in the receiving Prometheus, every float and histogram sample the
//     sender stored, with its labels (and the external label), bucket by
//     bucket; the exporter's histograms with the values it served;
//   - in VictoriaMetrics, every float sample the sender stored;
//   - the sender's counts of samples and histograms sent = what scoreproxy
//     received and forwarded to each upstream, and nothing failed, retried
//     or dropped; scoreproxy rejected nothing.
func TestPrometheus3RemoteWriteThroughScoreproxy(t *testing.T) {
	t.Parallel()
	bin := scoreproxy(t)
	cluster := testenv.StartVMCluster(t)
	receiver := testenv.StartPrometheus3(t, "global: {}\n", "--web.enable-remote-write-receiver")
	for _, tt := range []struct {
		name, version, message string
		// sendsNHCB: remote write 1.0 has no custom buckets, and
		// Prometheus drops such histograms (counting them dropped with
		// reason nhcb_in_rw1_not_supported) instead of sending them.
		sendsNHCB bool
	}{
		{"rw2", "2.0", "io.prometheus.write.v2.Request", true},
		{"rw1", "1.0", "prometheus.WriteRequest", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			exporter := histogramExporter(t)
			proxy := testenv.StartScoreproxy(t, bin, fmt.Sprintf(prom3ScoreproxyConfig, cluster.InsertURL(), receiver.URL))
			proxy.WaitReady(t, 15*time.Second)
			sender := testenv.StartPrometheus3(t, fmt.Sprintf(prom3SenderConfig, tt.version, hostPort(exporter.URL), proxy.Addr, tt.message))

			floats, hists := prom3Snapshot(t, sender)
			sent := exponentialHistograms
			if tt.sendsNHCB {
				sent = append(sent, batchSizeHistogram)
			} else {
				hists = slices.DeleteFunc(hists, func(h testenv.HistogramSeries) bool { return h.Labels["__name__"] == batchSizeHistogram })
			}
			marked := map[string]string{"remote_write": tt.version}
			wantFloats, wantHists := withLabels(floats, marked), withHistogramLabels(hists, marked)
			selector := fmt.Sprintf(`{remote_write=%q}`, tt.version)
			waitPrometheus(t, receiver, selector, wantFloats, wantHists, sent)
			wantVM := withoutNaNs(wantFloats)
			cluster.WaitExport(t, "0:0", selector, 40*time.Second, func(got []testenv.Series) error {
				return diffSeries(wantVM, cutToSnapshot(got, byKey(wantVM)), 1e-11)
			})
			t.Logf("%d float and %d histogram series up to the snapshot in the receiver, the floats in VictoriaMetrics",
				len(wantFloats), len(wantHists))
			wantProm3CountsAgree(t, sender, proxy, !tt.sendsNHCB, cluster.WriteURL("0:0"), receiver.URL+"/api/v1/write")
			m := scrape(t, proxy.URL+"/metrics")
			wantMetric(t, m, "scoreproxy_requests_rejected_total", nil, 0)
			wantMetric(t, m, "scoreproxy_upstream_zstd", map[string]string{"url": cluster.WriteURL("0:0")}, 1)
		})
	}
}

// prom3Snapshot waits until the sender has scraped the exporter five times
// and its own /metrics three, then returns what it stored of both jobs:
// float series, and native histogram series, which must include the
// exporter's three and the request-duration histogram of Prometheus' own
// /metrics.
func prom3Snapshot(t *testing.T, sender *testenv.Prometheus) ([]testenv.Series, []testenv.HistogramSeries) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sel := `{job=~"model|prometheus"}`
	floats := waitForScrapes(ctx, t, sender, sel, map[string]int{runsCounter: 5, "prometheus_build_info": 3})
	hists, err := sender.RawHistograms(ctx, sel, 10*time.Minute, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := wantHistogramValues(hists, append(exponentialHistograms, batchSizeHistogram)...); err != nil {
		t.Fatalf("the sender's own histograms: %v", err)
	}
	names := map[string]bool{}
	for _, h := range hists {
		names[h.Labels["__name__"]] = true
	}
	if !names["prometheus_http_request_duration_seconds"] {
		t.Fatalf("the sender stored no native prometheus_http_request_duration_seconds; it has %v", names)
	}
	return floats, hists
}

// waitPrometheus polls the receiving Prometheus until it holds, of the series
// matching selector, every float and histogram series of want with their
// samples up to the snapshot, and the exporter's histograms named in
// exported with the values served.
func waitPrometheus(t *testing.T, p *testenv.Prometheus, selector string, wantFloats []testenv.Series, wantHists []testenv.HistogramSeries, exported []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	floatsBy, histsBy := byKey(wantFloats), histogramsByKey(wantHists)
	var last error
	for {
		floats, err := p.RawSamples(ctx, selector, 10*time.Minute, time.Now())
		if err == nil {
			err = diffSeries(wantFloats, cutToSnapshotNaN(floats, floatsBy, true), 0)
		}
		if err == nil {
			var hists []testenv.HistogramSeries
			if hists, err = p.RawHistograms(ctx, selector, 10*time.Minute, time.Now()); err == nil {
				hists = cutHistogramsToSnapshot(hists, histsBy)
				if err = diffHistograms(wantHists, hists); err == nil {
					err = wantHistogramValues(hists, exported...)
				}
			}
		}
		if err == nil {
			return
		}
		if ctx.Err() == nil {
			last = err
		}
		select {
		case <-ctx.Done():
			t.Fatalf("receiving Prometheus, %s: not as expected after 40s: %v", selector, last)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// wantProm3CountsAgree waits until the sender's counts of samples and
// histograms sent equal what scoreproxy received and forwarded to each of
// urls, read between two batches, then checks that the sender counts no
// failed, retried or dropped sample, histogram, metadata entry or exemplar
// (but histograms with custom buckets dropped as unsupported when
// nhcbDropped).
func wantProm3CountsAgree(t *testing.T, sender *testenv.Prometheus, proxy *testenv.Scoreproxy, nhcbDropped bool, urls ...string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		s1 := scrape(t, sender.URL+"/metrics")
		m := scrape(t, proxy.URL+"/metrics")
		s2 := scrape(t, sender.URL+"/metrics")
		sent1, sent2 := sentCount(s1), sentCount(s2)
		received, _ := m.Sum("scoreproxy_samples_received_total", nil)
		agree := sent1 == sent2 && sent1 > 0 && sent1 == received
		last := fmt.Sprintf("sender sent %v then %v, scoreproxy received %v", sent1, sent2, received)
		for _, u := range urls {
			forwarded, _ := m.Sum("scoreproxy_samples_forwarded_total", map[string]string{"url": u})
			agree = agree && forwarded == received
			last += fmt.Sprintf(", forwarded %v to %s", forwarded, u)
		}
		if agree {
			t.Log(last)
			wantSenderClean(t, s2, nhcbDropped)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("counts never agreed within 30s; last: %s", last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// wantSenderClean fails the test if the sender's /metrics m counts any
// failed, retried or dropped sample, histogram, metadata entry or exemplar,
// except, with nhcbDropped, histograms dropped with reason
// nhcb_in_rw1_not_supported.
func wantSenderClean(t *testing.T, m testenv.Metrics, nhcbDropped bool) {
	t.Helper()
	for _, s := range m {
		kind, ok := strings.CutPrefix(s.Name, "prometheus_remote_storage_")
		if !ok || s.Value == 0 || !(strings.HasSuffix(kind, "_failed_total") ||
			strings.HasSuffix(kind, "_retried_total") || strings.HasSuffix(kind, "_dropped_total")) {
			continue
		}
		if nhcbDropped && kind == "histograms_dropped_total" && s.Labels["reason"] == "nhcb_in_rw1_not_supported" {
			continue
		}
		t.Errorf("sender: %s = %v, want 0", testenv.LabelsKey(mergeLabels(s.Labels, map[string]string{"__name__": s.Name})), s.Value)
	}
}

// sentCount is what a Prometheus sender has sent: samples plus histograms,
// the two scoreproxy counts as samples.
func sentCount(m testenv.Metrics) float64 {
	samples, _ := m.Sum("prometheus_remote_storage_samples_total", nil)
	hists, _ := m.Sum("prometheus_remote_storage_histograms_total", nil)
	return samples + hists
}

func withLabels(in []testenv.Series, extra map[string]string) []testenv.Series {
	out := make([]testenv.Series, len(in))
	for i, s := range in {
		out[i] = testenv.Series{Labels: mergeLabels(s.Labels, extra), Timestamps: s.Timestamps, Values: s.Values}
	}
	return out
}

func withHistogramLabels(in []testenv.HistogramSeries, extra map[string]string) []testenv.HistogramSeries {
	out := make([]testenv.HistogramSeries, len(in))
	for i, s := range in {
		out[i] = testenv.HistogramSeries{Labels: mergeLabels(s.Labels, extra), Samples: s.Samples}
	}
	return out
}

func mergeLabels(a, b map[string]string) map[string]string {
	out := make(map[string]string, len(a)+len(b))
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

// withoutNaNs drops the NaN samples (VictoriaMetrics drops them on
// ingestion) and the series left empty.
func withoutNaNs(in []testenv.Series) []testenv.Series {
	var out []testenv.Series
	for _, s := range in {
		if x := withoutNaN(s.Labels, s); len(x.Timestamps) > 0 {
			out = append(out, x)
		}
	}
	return out
}

func byKey(ss []testenv.Series) map[string]testenv.Series {
	out := make(map[string]testenv.Series, len(ss))
	for _, s := range ss {
		out[s.Key()] = s
	}
	return out
}

func histogramsByKey(hs []testenv.HistogramSeries) map[string]testenv.HistogramSeries {
	out := make(map[string]testenv.HistogramSeries, len(hs))
	for _, h := range hs {
		out[h.Key()] = h
	}
	return out
}

// cutHistogramsToSnapshot is cutToSnapshot for histogram series: of each
// series the snapshot has, the samples up to the snapshot's last one.
func cutHistogramsToSnapshot(got []testenv.HistogramSeries, wantBy map[string]testenv.HistogramSeries) []testenv.HistogramSeries {
	var cut []testenv.HistogramSeries
	for _, g := range got {
		w, ok := wantBy[g.Key()]
		if !ok {
			continue
		}
		last := w.Samples[len(w.Samples)-1].Timestamp
		c := testenv.HistogramSeries{Labels: g.Labels}
		for _, s := range g.Samples {
			if s.Timestamp <= last {
				c.Samples = append(c.Samples, s)
			}
		}
		cut = append(cut, c)
	}
	return cut
}

// diffHistograms is diffSeries for histogram series: same series, and
// sample by sample the same timestamp, count, sum and buckets.
func diffHistograms(want, got []testenv.HistogramSeries) error {
	gotBy := histogramsByKey(got)
	var problems []string
	for _, w := range want {
		g, ok := gotBy[w.Key()]
		if !ok {
			problems = append(problems, "missing histogram series "+w.Key())
			continue
		}
		if p := diffHistogramSamples(w.Samples, g.Samples); p != "" {
			problems = append(problems, w.Key()+": "+p)
		}
	}
	if len(got) != len(want) {
		problems = append(problems, fmt.Sprintf("%d histogram series, want %d", len(got), len(want)))
	}
	if len(problems) == 0 {
		return nil
	}
	sort.Strings(problems)
	if len(problems) > 10 {
		problems = append(problems[:10], fmt.Sprintf("... and %d more", len(problems)-10))
	}
	return fmt.Errorf("histograms differ:\n%s", strings.Join(problems, "\n"))
}

func diffHistogramSamples(want, got []testenv.HistogramSample) string {
	if len(want) != len(got) {
		return fmt.Sprintf("%d samples, want %d", len(got), len(want))
	}
	for i := range want {
		w, g := want[i], got[i]
		same := w.Timestamp == g.Timestamp && sameValue(w.Count, g.Count, 0) && sameValue(w.Sum, g.Sum, 0) &&
			fmt.Sprint(w.Buckets) == fmt.Sprint(g.Buckets)
		if !same {
			return fmt.Sprintf("sample %d is %+v, want %+v", i, g, w)
		}
	}
	return ""
}
