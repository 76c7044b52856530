package e2e

import (
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/scoreproxy/scoreproxy/internal/testenv"
)

// vmagentScrapeConfig scrapes the model exporter and scoreproxy's own
// /metrics every second.
const vmagentScrapeConfig = `global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: model
    static_configs:
      - targets: ['%s']
  - job_name: scoreproxy
    static_configs:
      - targets: ['%s']
`

// passthroughConfig forwards every series unchanged to one upstream.
const passthroughConfig = `listen: {{LISTEN}}
writer:
  datasource_url: %s
server:
  health_check_interval: 1s
`

// TestVMAgentScrapesThroughScoreproxy runs a real vmagent v1.128.0 scraping
// the model exporter and scoreproxy every second and remote-writing through
// scoreproxy into VictoriaMetrics, once with vmagent's default flags (the
// VictoriaMetrics protocol: zstd, labels in scrape order, not sorted) and
// once with -remoteWrite.forcePromProto (snappy). A tap between vmagent and
// scoreproxy sees every request. Each run must hold:
//   - every request in the expected encoding and answered 2xx;
//   - vmagent's own counters: no dropped block, no non-2xx answer, no
//     error, no retry, and (default flags) no downgrade from zstd;
//   - VictoriaMetrics holding the exporter's series with their scrape labels
//     and the values of each scrape (yhat = 1.5 runs, anomaly_score =
//     (runs mod 7) / 4 at every timestamp), and scoreproxy's own series;
//   - the rows vmagent sent = what scoreproxy received and forwarded = what
//     VictoriaMetrics ingested.
func TestVMAgentScrapesThroughScoreproxy(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name, encoding string
		forcePromProto bool
	}{
		{"default_flags", "zstd", false},
		{"forcePromProto", "snappy", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			vm, proxy := scoreproxyBeforeVM(t, passthroughConfig)
			tap := newEncodingTap(t, proxy.URL)
			exporter := modelExporter(t)
			agent := testenv.StartVMAgentConfig(t, testenv.VMAgentConfig{
				RemoteWriteURL: tap.URL + "/api/v1/write",
				ScrapeConfig:   fmt.Sprintf(vmagentScrapeConfig, hostPort(exporter.URL), proxy.Addr),
				ForcePromProto: tt.forcePromProto,
			})
			// The sender's view is checked last, and also when reading
			// back fails: it says why.
			defer func() {
				wantVMAgentClean(t, agent)
				if !tt.forcePromProto && strings.Contains(agent.Logs(), "Downgrading protocol") {
					t.Error("vmagent downgraded from the VictoriaMetrics protocol to Prometheus remote write")
				}
				tap.want(t, tt.encoding)
				if v, _ := scrape(t, proxy.URL+"/metrics").Sum("scoreproxy_requests_rejected_total", nil); v != 0 {
					t.Errorf("scoreproxy rejected %v requests of vmagent", v)
				}
			}()
			wantScrapedSeries(t, vm, hostPort(exporter.URL), proxy.Addr, 5)
			wantVMAgentCountsAgree(t, agent, proxy, vm)
		})
	}
}

// wantScrapedSeries waits until VictoriaMetrics holds at least minScrapes
// scrapes of the model exporter at exporterAddr and of scoreproxy at
// proxyAddr, as vmagent labels them, with the exporter's values intact.
func wantScrapedSeries(t *testing.T, vm *testenv.VictoriaMetrics, exporterAddr, proxyAddr string, minScrapes int) {
	t.Helper()
	vm.WaitExport(t, `{job=~"model|scoreproxy"}`, 40*time.Second, func(got []testenv.Series) error {
		by := map[string]testenv.Series{}
		for _, s := range got {
			by[s.Key()] = s
		}
		model := func(name string, kv ...string) string {
			labels := map[string]string{"__name__": name, "job": "model", "instance": exporterAddr}
			for i := 0; i < len(kv); i += 2 {
				labels[kv[i]] = kv[i+1]
			}
			return testenv.LabelsKey(labels)
		}
		runs, ok := by[model("model_runs_total")]
		if !ok || len(runs.Values) < minScrapes {
			return fmt.Errorf("%s: %d samples, want %d or more (%d series in all)", model("model_runs_total"), len(runs.Values), minScrapes, len(got))
		}
		if err := increasingIntegers(runs.Values); err != nil {
			return fmt.Errorf("model_runs_total: %v", err)
		}
		for _, q := range []string{"cpu_rate", "ingestion_rate"} {
			for _, host := range []string{"host-a", "host-b"} {
				if err := sameScrapes(runs, by[model("yhat", "for", q, "host", host)], func(n float64) float64 { return 1.5 * n }); err != nil {
					return fmt.Errorf("yhat{for=%q,host=%q}: %v", q, host, err)
				}
				if err := sameScrapes(runs, by[model("anomaly_score", "for", q, "host", host)], func(n float64) float64 { return math.Mod(n, 7) / 4 }); err != nil {
					return fmt.Errorf("anomaly_score{for=%q,host=%q}: %v", q, host, err)
				}
			}
		}
		for _, job := range []struct{ name, addr string }{{"model", exporterAddr}, {"scoreproxy", proxyAddr}} {
			up := by[testenv.LabelsKey(map[string]string{"__name__": "up", "job": job.name, "instance": job.addr})]
			if len(up.Values) < minScrapes || up.Values[len(up.Values)-1] != 1 {
				return fmt.Errorf("up{job=%q}: %v, want %d or more samples, the last 1", job.name, up.Values, minScrapes)
			}
		}
		received := testenv.LabelsKey(map[string]string{"__name__": "scoreproxy_requests_received_total", "job": "scoreproxy", "instance": proxyAddr})
		if len(by[received].Values) == 0 {
			return fmt.Errorf("no %s", received)
		}
		return nil
	})
}

// increasingIntegers checks that vs are whole numbers, each above the last.
func increasingIntegers(vs []float64) error {
	for i, v := range vs {
		if v != math.Trunc(v) || v < 1 || (i > 0 && v <= vs[i-1]) {
			return fmt.Errorf("sample %d is %v after %v; want whole numbers counting up", i, v, vs[:i])
		}
	}
	return nil
}

// sameScrapes checks that s has a sample at every timestamp of runs, whose
// value is f of the scrape number runs has there: both came from one scrape.
func sameScrapes(runs, s testenv.Series, f func(n float64) float64) error {
	at := map[int64]float64{}
	for i, ts := range s.Timestamps {
		at[ts] = s.Values[i]
	}
	for i, ts := range runs.Timestamps {
		v, ok := at[ts]
		if !ok {
			return fmt.Errorf("no sample at %d, where model_runs_total has one", ts)
		}
		if want := f(runs.Values[i]); v != want {
			return fmt.Errorf("%v at %d (scrape %v), want %v", v, ts, runs.Values[i], want)
		}
	}
	return nil
}

// wantVMAgentCountsAgree waits until the rows vmagent put into the blocks
// it sends (vmagent_remotewrite_block_size_rows_sum; it holds scraped rows
// for a second or so before it makes a block of them) equal the samples
// scoreproxy received and forwarded and the rows VictoriaMetrics ingested.
// vmagent and VictoriaMetrics render /metrics at most once a second, so the
// pages are read more than a second apart, each time a fresh page.
func wantVMAgentCountsAgree(t *testing.T, agent *testenv.Process, proxy *testenv.Scoreproxy, vm *testenv.VictoriaMetrics) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		blocked, _ := scrape(t, agent.URL+"/metrics").Sum("vmagent_remotewrite_block_size_rows_sum", nil)
		m := scrape(t, proxy.URL+"/metrics")
		ingested, _ := scrape(t, vm.URL+"/metrics").Sum("vm_rows_inserted_total", map[string]string{"type": "promremotewrite"})
		received, _ := m.Sum("scoreproxy_samples_received_total", nil)
		forwarded, _ := m.Sum("scoreproxy_samples_forwarded_total", map[string]string{"url": vm.WriteURL()})
		if blocked > 0 && blocked == received && received == forwarded && forwarded == ingested {
			t.Logf("vmagent sent %v rows in blocks; scoreproxy received and forwarded them, VictoriaMetrics ingested them", blocked)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("counts never agreed within 30s; last: vmagent sent %v rows in blocks, scoreproxy received %v and forwarded %v, VictoriaMetrics ingested %v",
				blocked, received, forwarded, ingested)
		}
		time.Sleep(1100 * time.Millisecond)
	}
}

// wantVMAgentClean checks vmagent's own remote-write counters: requests
// answered 2xx, and none dropped, answered otherwise, failed or retried
// (vmagent counts a zstd request it re-sends as snappy as a retry).
func wantVMAgentClean(t *testing.T, agent *testenv.Process) {
	t.Helper()
	m := scrape(t, agent.URL+"/metrics")
	if ok, _ := m.Sum("vmagent_remotewrite_requests_total", map[string]string{"status_code": "2XX"}); ok == 0 {
		t.Error("vmagent_remotewrite_requests_total{status_code=\"2XX\"} = 0, want > 0")
	}
	for _, s := range m {
		if s.Name == "vmagent_remotewrite_requests_total" && s.Labels["status_code"] != "2XX" && s.Value != 0 {
			t.Errorf("vmagent_remotewrite_requests_total%v = %v, want none", testenv.LabelsKey(s.Labels), s.Value)
		}
	}
	for _, name := range []string{"vmagent_remotewrite_packets_dropped_total", "vmagent_remotewrite_errors_total",
		"vmagent_remotewrite_retries_count_total", "vmagent_remotewrite_samples_dropped_total"} {
		if v, found := m.Sum(name, nil); !found || v != 0 {
			t.Errorf("vmagent %s = %v (found: %t), want 0", name, v, found)
		}
	}
}

// encodingTap is a reverse proxy in front of scoreproxy that records the
// Content-Encoding and the answer of every request passing through.
type encodingTap struct {
	*httptest.Server
	mu       sync.Mutex
	requests map[string]int // by "Content-Encoding -> status"
}

func newEncodingTap(t *testing.T, target string) *encodingTap {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	tap := &encodingTap{requests: map[string]int{}}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ModifyResponse = func(resp *http.Response) error {
		tap.mu.Lock()
		defer tap.mu.Unlock()
		tap.requests[fmt.Sprintf("%s -> %d", resp.Request.Header.Get("Content-Encoding"), resp.StatusCode)]++
		return nil
	}
	tap.Server = loopbackServer(t, rp)
	return tap
}

// want fails the test unless every request had Content-Encoding encoding
// and was answered 204 (and there was one at least).
func (tap *encodingTap) want(t *testing.T, encoding string) {
	t.Helper()
	tap.mu.Lock()
	defer tap.mu.Unlock()
	good := encoding + " -> 204"
	for k, n := range tap.requests {
		if k != good {
			t.Errorf("%d requests %q, want only %q", n, k, good)
		}
	}
	if tap.requests[good] == 0 {
		t.Errorf("no request %q; requests: %v", good, tap.requests)
	}
	t.Logf("requests through the tap: %v", tap.requests)
}

// hostPort strips the scheme of an httptest URL.
func hostPort(u string) string { return strings.TrimPrefix(u, "http://") }
