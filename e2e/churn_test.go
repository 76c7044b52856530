package e2e

import (
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/scoreproxy/scoreproxy/internal/testenv"
)

// The churning exporter serves churnSeries series per scrape, in an order
// that differs from scrape to scrape: the first churnNew of them carry the
// scrape number in their gen label (series no scrape had before), the
// others gen="0" (the same series every scrape). Every value is the scrape
// number, and churn_scrapes_total says which scrape a timestamp holds.
// After churnScrapes scrapes it serves an empty page, so that what
// VictoriaMetrics holds stops changing (but for the staleness markers
// vmagent sends once): an export made while scrapes still arrive sees the
// newest of them in part, and counters read one after the other while rows
// flow never agree.
const (
	churnSeries = 20000
	churnNew    = churnSeries / 4
	// churnScrapes is how many scrapes it serves, all checked in full.
	churnScrapes = 8
)

// churnExporter serves the churning exporter's scrapes.
func churnExporter(t *testing.T) *httptest.Server {
	var scrapes atomic.Int64
	srv := loopbackServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := scrapes.Add(1)
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		if n > churnScrapes {
			return
		}
		var b strings.Builder
		b.Grow(churnSeries * 64)
		b.WriteString("# TYPE churn_value gauge\n")
		// A stride coprime with churnSeries, different each scrape,
		// shuffles the order.
		stride := []int64{7919, 7927, 7933, 7937, 7949}[n%5]
		for j := range int64(churnSeries) {
			i := (j*stride + n) % churnSeries
			gen := int64(0)
			if i < churnNew {
				gen = n
			}
			fmt.Fprintf(&b, "churn_value{series=\"%d\",gen=\"%d\",for=\"q%d\"} %d\n", i, gen, i%10, n)
		}
		fmt.Fprintf(&b, "# TYPE churn_scrapes_total counter\nchurn_scrapes_total %d\n", n)
		w.Write([]byte(b.String()))
	}))
	return srv
}

// TestVMAgentChurningSeriesThroughTheCache runs a real vmagent at its
// default flags scraping 20,000 series a second, a quarter of them new at
// every scrape, through scoreproxy with the seed's metric_format into
// VictoriaMetrics. The series set outgrows the rewrite cache, so it
// admits only part of it: some series hit, most miss, and none may come
// out wrong. VictoriaMetrics must hold, for each
// of the exporter's scrapes, every series of it renamed and labelled as the
// metric_format says with the scrape's value at the scrape's timestamp,
// and the rows vmagent sent must equal what scoreproxy received and
// forwarded and VictoriaMetrics ingested.
func TestVMAgentChurningSeriesThroughTheCache(t *testing.T) {
	t.Parallel()
	vm, proxy := scoreproxyBeforeVM(t, seedWriterConfig)
	exporter := churnExporter(t)
	agent := testenv.StartVMAgentConfig(t, testenv.VMAgentConfig{
		RemoteWriteURL: proxy.URL + "/api/v1/write",
		ScrapeConfig:   fmt.Sprintf(churnScrapeConfig, hostPort(exporter.URL)),
	})
	defer wantVMAgentClean(t, agent)
	vm.WaitExport(t, `{__name__=~"churn_scrapes_total|vmanomaly_churn_value"}`, 60*time.Second, func(got []testenv.Series) error {
		return checkChurnScrapes(got, hostPort(exporter.URL))
	})
	wantVMAgentCountsAgree(t, agent, proxy, vm)
	m := scrape(t, proxy.URL+"/metrics")
	hits, _ := m.Sum("scoreproxy_rewrite_cache_hits_total", nil)
	misses, _ := m.Sum("scoreproxy_rewrite_cache_misses_total", nil)
	if hits == 0 || misses < churnScrapes*churnNew {
		t.Errorf("rewrite cache: %v hits, %v misses; want some hits and at least %d misses", hits, misses, churnScrapes*churnNew)
	}
	// The cache starts at a quarter of its 4 MiB and grows only for a
	// series set that the whole budget holds, which this one outgrows.
	budget, _ := m.Sum("scoreproxy_rewrite_cache_budget_bytes", nil)
	held, _ := m.Sum("scoreproxy_rewrite_cache_bytes", nil)
	if budget <= 0 || budget > 1<<20 || held > budget {
		t.Errorf("rewrite cache: budget %v bytes, holding %v; want at most 1 MiB and no more than the budget", budget, held)
	}
	t.Logf("rewrite cache: %v hits, %v misses; budget %v bytes, holding %v", hits, misses, budget, held)
}

// churnScrapeConfig scrapes the churning exporter every second.
const churnScrapeConfig = `global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: churn
    static_configs:
      - targets: ['%s']
`

// checkChurnScrapes checks the scrapes of the churning exporter at addr
// in what VictoriaMetrics exported: at the timestamp of
// each, every one of its series with the scrape's number as value, and no
// series labelled otherwise. Staleness markers (NaN) of the series a
// scrape no longer has are left out.
func checkChurnScrapes(got []testenv.Series, addr string) error {
	scrapeAt := map[int64]int64{} // timestamp -> scrape number
	var values []testenv.Series
	for _, s := range got {
		if s.Labels["__name__"] == "churn_scrapes_total" {
			for i, ts := range s.Timestamps {
				if !math.IsNaN(s.Values[i]) {
					scrapeAt[ts] = int64(s.Values[i])
				}
			}
			continue
		}
		values = append(values, s)
	}
	seen := make([][churnSeries]bool, churnScrapes+1) // [scrape][series]
	for _, s := range values {
		i, gen, err := churnLabels(s.Labels, addr)
		if err != nil {
			return err
		}
		for j, ts := range s.Timestamps {
			v := s.Values[j]
			if math.IsNaN(v) {
				continue
			}
			n, ok := scrapeAt[ts]
			switch {
			case !ok:
				return fmt.Errorf("%s has a sample at %d, where no scrape was", s.Key(), ts)
			case float64(n) != v:
				return fmt.Errorf("%s is %v at the timestamp of scrape %d", s.Key(), v, n)
			case gen != 0 && gen != n:
				return fmt.Errorf("%s has a sample of scrape %d", s.Key(), n)
			case n <= churnScrapes:
				seen[n][i] = true
			}
		}
	}
	var errs []string
	for n := 1; n <= churnScrapes; n++ {
		missing, firstMissing := 0, -1
		for i := range churnSeries {
			if !seen[n][i] {
				if missing == 0 {
					firstMissing = i
				}
				missing++
			}
		}
		if missing > 0 {
			errs = append(errs, fmt.Sprintf("scrape %d: %d of %d series are missing, the first series=\"%d\"", n, missing, churnSeries, firstMissing))
		}
	}
	if errs != nil {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

// churnLabels checks the labels of an output series of the churning
// exporter at addr (the metric_format of seedWriterConfig applied) and
// returns its series number and gen.
func churnLabels(labels map[string]string, addr string) (series int, gen int64, err error) {
	series, err1 := strconv.Atoi(labels["series"])
	gen, err2 := strconv.ParseInt(labels["gen"], 10, 64)
	want := map[string]string{"__name__": "vmanomaly_churn_value", "series": labels["series"], "gen": labels["gen"],
		"for": fmt.Sprintf("q%d", series%10), "run": "test_metric_format", "config": "io_vm_single.yaml",
		"job": "churn", "instance": addr}
	if err1 != nil || err2 != nil || series < 0 || series >= churnSeries || testenv.LabelsKey(labels) != testenv.LabelsKey(want) {
		return 0, 0, fmt.Errorf("series %s, want %s", testenv.LabelsKey(labels), testenv.LabelsKey(want))
	}
	if (series < churnNew) != (gen != 0) {
		return 0, 0, fmt.Errorf("series %s: gen %d for series %d", testenv.LabelsKey(labels), gen, series)
	}
	return series, gen, nil
}
