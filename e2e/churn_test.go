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

// churnShape is what a churning exporter serves: series series per
// scrape, in an order that differs from scrape to scrape, the first fresh
// of them carrying the scrape number in their gen label (series no scrape
// had before), the others gen="0" (the same series every scrape). Every
// value is the scrape number, and churn_scrapes_total says which scrape a
// timestamp holds. After scrapes scrapes it serves an empty page, so that
// what VictoriaMetrics holds stops changing (but for the staleness markers
// vmagent sends once): an export made while scrapes still arrive sees the
// newest of them in part, and counters read one after the other while rows
// flow never agree.
type churnShape struct {
	series, fresh, scrapes int
}

// quarterFresh is a series set that outgrows the rewrite cache while a
// part of it keeps hitting: 20,000 series, a quarter of them new at every
// scrape, for 8 scrapes, all checked in full.
var quarterFresh = churnShape{series: 20000, fresh: 5000, scrapes: 8}

// exporter serves the shape's scrapes.
func (c churnShape) exporter(t *testing.T) *httptest.Server {
	var scrapes atomic.Int64
	srv := loopbackServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := scrapes.Add(1)
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		if n > int64(c.scrapes) {
			return
		}
		var b strings.Builder
		b.Grow(c.series * 64)
		b.WriteString("# TYPE churn_value gauge\n")
		// A stride coprime with the series count, different each
		// scrape, shuffles the order.
		stride := []int64{7919, 7927, 7933, 7937, 7949}[n%5]
		for j := range int64(c.series) {
			i := (j*stride + n) % int64(c.series)
			gen := int64(0)
			if i < int64(c.fresh) {
				gen = n
			}
			fmt.Fprintf(&b, "churn_value{series=\"%d\",gen=\"%d\",for=\"q%d\"} %d\n", i, gen, i%10, n)
		}
		fmt.Fprintf(&b, "# TYPE churn_scrapes_total counter\nchurn_scrapes_total %d\n", n)
		w.Write([]byte(b.String()))
	}))
	return srv
}

// throughVMAgent has a real vmagent at its default flags scrape the
// shape's exporter every second and write through scoreproxy, with the
// seed's metric_format, into VictoriaMetrics. It waits up to within for
// VictoriaMetrics to hold every scrape as check wants it and for the rows
// vmagent sent to equal what scoreproxy received and forwarded and
// VictoriaMetrics ingested, and returns scoreproxy's metrics then.
func (c churnShape) throughVMAgent(t *testing.T, within time.Duration) testenv.Metrics {
	t.Helper()
	vm, proxy := scoreproxyBeforeVM(t, seedWriterConfig)
	exporter := c.exporter(t)
	agent := testenv.StartVMAgentConfig(t, testenv.VMAgentConfig{
		RemoteWriteURL: proxy.URL + "/api/v1/write",
		ScrapeConfig:   fmt.Sprintf(churnScrapeConfig, hostPort(exporter.URL)),
	})
	defer wantVMAgentClean(t, agent)
	vm.WaitExport(t, `{__name__=~"churn_scrapes_total|vmanomaly_churn_value"}`, within, func(got []testenv.Series) error {
		return c.check(got, hostPort(exporter.URL))
	})
	wantVMAgentCountsAgree(t, agent, proxy, vm)
	return scrape(t, proxy.URL+"/metrics")
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
	m := quarterFresh.throughVMAgent(t, 60*time.Second)
	hits, _ := m.Sum("scoreproxy_rewrite_cache_hits_total", nil)
	misses, _ := m.Sum("scoreproxy_rewrite_cache_misses_total", nil)
	if want := quarterFresh.scrapes * quarterFresh.fresh; hits == 0 || misses < float64(want) {
		t.Errorf("rewrite cache: %v hits, %v misses; want some hits and at least %d misses", hits, misses, want)
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

// allFresh is a series set in which no series ever comes back: 20,000
// new series at every scrape, for 20 scrapes. Storing them in the rewrite
// cache never pays, and the cache finds that out once its admitted
// fraction and budget have shrunk as far as they go (see admission).
// With vmagent's staleness marker for every series of the scrape before,
// 800,000 rows go through, and the cache is skipped for about half of
// them.
var allFresh = churnShape{series: 20000, fresh: 20000, scrapes: 20}

// TestVMAgentAllNewSeriesSkipTheCache runs a real vmagent at its default
// flags scraping a series set in which every series is new, through
// scoreproxy with the seed's metric_format into VictoriaMetrics. The
// rewrite cache must find caching futile (its admitted fraction and budget
// at their smallest, and then scoreproxy_rewrite_cache_skipped_total
// growing), and what the series skipping the cache turn into must be what
// the cache would have made of them: VictoriaMetrics holds every series of
// every scrape renamed and labelled as the metric_format says, and the
// rows vmagent sent equal what scoreproxy received and forwarded and
// VictoriaMetrics ingested.
func TestVMAgentAllNewSeriesSkipTheCache(t *testing.T) {
	t.Parallel()
	m := allFresh.throughVMAgent(t, 90*time.Second)
	skipped, _ := m.Sum("scoreproxy_rewrite_cache_skipped_total", nil)
	misses, _ := m.Sum("scoreproxy_rewrite_cache_misses_total", nil)
	if total := float64(allFresh.series * allFresh.scrapes); skipped == 0 || misses < total {
		t.Errorf("rewrite cache: %v series skipped it, %v misses; want some skipped and at least %v misses (skipped ones count as misses)",
			skipped, misses, total)
	}
	// Futile means the budget is at its smallest: 4 MiB halved four times.
	budget, _ := m.Sum("scoreproxy_rewrite_cache_budget_bytes", nil)
	held, _ := m.Sum("scoreproxy_rewrite_cache_bytes", nil)
	if budget != 256<<10 || held > budget {
		t.Errorf("rewrite cache: budget %v bytes, holding %v; want 256 KiB and no more than that", budget, held)
	}
	t.Logf("rewrite cache: %v series skipped it, %v misses; budget %v bytes, holding %v", skipped, misses, budget, held)
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

// check checks the scrapes of the shape's exporter at addr in what
// VictoriaMetrics exported: at the timestamp of
// each, every one of its series with the scrape's number as value, and no
// series labelled otherwise. Staleness markers (NaN) of the series a
// scrape no longer has are left out.
func (c churnShape) check(got []testenv.Series, addr string) error {
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
	seen := make([][]bool, c.scrapes+1) // [scrape][series]
	for n := range seen {
		seen[n] = make([]bool, c.series)
	}
	for _, s := range values {
		i, gen, err := c.labels(s.Labels, addr)
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
			case n <= int64(c.scrapes):
				seen[n][i] = true
			}
		}
	}
	var errs []string
	for n := 1; n <= c.scrapes; n++ {
		missing, firstMissing := 0, -1
		for i := range c.series {
			if !seen[n][i] {
				if missing == 0 {
					firstMissing = i
				}
				missing++
			}
		}
		if missing > 0 {
			errs = append(errs, fmt.Sprintf("scrape %d: %d of %d series are missing, the first series=\"%d\"", n, missing, c.series, firstMissing))
		}
	}
	if errs != nil {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

// labels checks the labels of an output series of the shape's exporter at
// addr (the metric_format of seedWriterConfig applied) and
// returns its series number and gen.
func (c churnShape) labels(labels map[string]string, addr string) (series int, gen int64, err error) {
	series, err1 := strconv.Atoi(labels["series"])
	gen, err2 := strconv.ParseInt(labels["gen"], 10, 64)
	want := map[string]string{"__name__": "vmanomaly_churn_value", "series": labels["series"], "gen": labels["gen"],
		"for": fmt.Sprintf("q%d", series%10), "run": "test_metric_format", "config": "io_vm_single.yaml",
		"job": "churn", "instance": addr}
	if err1 != nil || err2 != nil || series < 0 || series >= c.series || testenv.LabelsKey(labels) != testenv.LabelsKey(want) {
		return 0, 0, fmt.Errorf("series %s, want %s", testenv.LabelsKey(labels), testenv.LabelsKey(want))
	}
	if (series < c.fresh) != (gen != 0) {
		return 0, 0, fmt.Errorf("series %s: gen %d for series %d", testenv.LabelsKey(labels), gen, series)
	}
	return series, gen, nil
}
