package main

import (
	"flag"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/prometheus/prometheus/prompb"
)

// Workload describes the shape of every remote-write request the load
// generator sends. The same Workload always yields the same series, so two
// runs against different proxies see identical input.
type Workload struct {
	// Preset names the label scheme: "anomaly" (model outputs with tenant
	// labels) or "scrape" (typical Prometheus scrape series).
	Preset string `json:"preset"`
	// Series is the number of time series per request.
	Series int `json:"series"`
	// Samples is the number of samples per series per request.
	Samples int `json:"samples"`
	// Labels is the number of labels per series, __name__ included.
	Labels int `json:"labels"`
	// Tenants spreads vm_account_id over this many accounts (1..Tenants);
	// 0 means the series carry no tenant labels.
	Tenants int `json:"tenants"`
	// QueryKeys is the number of distinct values of the `for` label; 0 means
	// the series carry no `for` label.
	QueryKeys int `json:"query_keys"`
	// Distinct is the number of distinct series the requests draw their
	// series from; 0 means Series (every request carries the same series,
	// in the same order).
	Distinct int `json:"distinct_series,omitempty"`
	// Churn is the share of each request's series that no earlier request
	// carried (0..1); see seriesPlan.
	Churn float64 `json:"churn,omitempty"`
}

// maxDistinct bounds -distinct: the pool must carry every series once
// within its memory cap (about 24 M series of the anomaly preset).
const maxDistinct = 10_000_000

// anomalyOutputs are the model output variables vmanomaly writes.
var anomalyOutputs = []string{"anomaly_score", "y", "yhat", "yhat_lower", "yhat_upper"}

// scrapeNames are metric names of a typical node/app scrape.
var scrapeNames = []string{
	"node_cpu_seconds_total", "node_memory_MemAvailable_bytes", "node_network_receive_bytes_total",
	"http_requests_total", "http_request_duration_seconds_bucket", "process_resident_memory_bytes",
	"go_goroutines", "node_filesystem_avail_bytes",
}

// Presets returns the default Workload of a preset name.
func Presets(name string) (Workload, error) {
	switch name {
	case "anomaly":
		return Workload{Preset: name, Series: 1000, Samples: 2, Labels: 9, Tenants: 10, QueryKeys: 10}, nil
	case "scrape":
		return Workload{Preset: name, Series: 2000, Samples: 1, Labels: 7}, nil
	}
	return Workload{}, fmt.Errorf("unknown preset %q: use anomaly or scrape", name)
}

// workloadFlags binds the workload flags of a subcommand; Resolve applies the
// preset first and then every flag the user set explicitly.
type workloadFlags struct {
	fs                                                *flag.FlagSet
	preset                                            string
	series, samples, labels, tenants, query, distinct int
	churn                                             float64
}

// bindWorkloadFlags registers -preset, -series, -samples, -labels,
// -tenants, -query-keys, -distinct and -churn on fs.
func bindWorkloadFlags(fs *flag.FlagSet) *workloadFlags {
	w := &workloadFlags{fs: fs}
	fs.StringVar(&w.preset, "preset", "anomaly", "workload preset: anomaly (model outputs with tenant labels) or scrape")
	fs.IntVar(&w.series, "series", 0, "series per request (default: from preset)")
	fs.IntVar(&w.samples, "samples", 0, "samples per series per request (default: from preset)")
	fs.IntVar(&w.labels, "labels", 0, "labels per series including __name__ (default: from preset)")
	fs.IntVar(&w.tenants, "tenants", 0, "spread vm_account_id over N tenants, 0 = no tenant labels (default: from preset)")
	fs.IntVar(&w.query, "query-keys", 0, "distinct values of the `for` label, 0 = none (default: from preset)")
	fs.IntVar(&w.distinct, "distinct", 0, "distinct series the requests draw from: each request carries a pseudo-random selection "+
		"of -series of them in shuffled order, and the pool carries every one (default: -series, the same series in every request)")
	fs.Float64Var(&w.churn, "churn", 0, "share 0..1 of each request's series that no earlier request carried (a numbered instance "+
		"label value; the sender patches and compresses each such request just before sending it)")
	return w
}

// Resolve returns the preset overridden by the explicitly set flags, validated.
func (w *workloadFlags) Resolve() (Workload, error) {
	wl, err := Presets(w.preset)
	if err != nil {
		return wl, err
	}
	w.fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "series":
			wl.Series = w.series
		case "samples":
			wl.Samples = w.samples
		case "labels":
			wl.Labels = w.labels
		case "tenants":
			wl.Tenants = w.tenants
		case "query-keys":
			wl.QueryKeys = w.query
		case "distinct":
			wl.Distinct = w.distinct
		case "churn":
			wl.Churn = w.churn
		}
	})
	return wl, wl.Validate()
}

// Validate checks that the workload is sendable and bounded.
func (w Workload) Validate() error {
	switch {
	case w.Series < 1 || w.Series > 100000:
		return fmt.Errorf("-series %d: want 1..100000", w.Series)
	case w.Samples < 1 || w.Samples > 1000:
		return fmt.Errorf("-samples %d: want 1..1000", w.Samples)
	case w.Labels < 2 || w.Labels > 64:
		return fmt.Errorf("-labels %d: want 2..64 (__name__ and one identifying label at least)", w.Labels)
	case w.Tenants < 0 || w.Tenants > 100000:
		return fmt.Errorf("-tenants %d: want 0..100000", w.Tenants)
	case w.QueryKeys < 0 || w.QueryKeys > 100000:
		return fmt.Errorf("-query-keys %d: want 0..100000", w.QueryKeys)
	case w.Distinct != 0 && (w.Distinct < w.Series || w.Distinct > maxDistinct):
		return fmt.Errorf("-distinct %d: want -series (%d) up to %d, or 0 for -series", w.Distinct, w.Series, maxDistinct)
	case !(w.Churn >= 0 && w.Churn <= 1):
		return fmt.Errorf("-churn %v: want a share from 0 to 1 (1 = every series of every request is new)", w.Churn)
	}
	return nil
}

// SamplesPerRequest is the number of samples in one request.
func (w Workload) SamplesPerRequest() int { return w.Series * w.Samples }

// DistinctSeries is the number of distinct series the requests draw from.
func (w Workload) DistinctSeries() int { return max(w.Distinct, w.Series) }

// ChurnedPerRequest is the number of never-seen series in every request:
// Churn x Series, rounded.
func (w Workload) ChurnedPerRequest() int { return int(math.Round(w.Churn * float64(w.Series))) }

// universe is the workload whose Series are the distinct series the
// requests draw from; its series s is series s of the pool's plan.
func (w Workload) universe() Workload {
	u := w
	u.Series, u.Distinct, u.Churn = w.DistinctSeries(), 0, 0
	return u
}

// describeCardinality renders the distinct series and churn for
// summaries, or "" for the default (the same series in every request).
func (w Workload) describeCardinality() string {
	var parts []string
	if w.DistinctSeries() > w.Series {
		parts = append(parts, fmt.Sprintf("drawn from %d distinct series", w.DistinctSeries()))
	}
	if w.Churn > 0 {
		parts = append(parts, fmt.Sprintf("churn %g (%d never-seen series per request)", w.Churn, w.ChurnedPerRequest()))
	}
	return strings.Join(parts, ", ")
}

// labelGen produces the value of one label for the series with index s.
type labelGen struct {
	name  string
	value func(s int) string
}

// generators lists the label generators of the workload in priority order:
// Labels picks the first n of them, so the identifying labels always stay.
func (w Workload) generators() []labelGen {
	var gens []labelGen
	if w.Preset == "scrape" {
		gens = w.scrapeGenerators()
	} else {
		gens = w.anomalyGenerators()
	}
	for i := 0; len(gens) < w.Labels; i++ {
		k := i
		gens = append(gens, labelGen{fmt.Sprintf("extra_label_%02d", k), func(s int) string {
			return fmt.Sprintf("extra_value_%02d_%d", k, s%97)
		}})
	}
	return gens[:w.Labels]
}

// anomalyGenerators describes a vmanomaly output series: five output
// variables per input series, the query key, the tenant, and the labels
// inherited from the queried series.
func (w Workload) anomalyGenerators() []labelGen {
	in := w.inputOf
	gens := []labelGen{
		{"__name__", func(s int) string { return anomalyOutputs[w.outputOf(s)] }},
		{"instance", func(s int) string { return fmt.Sprintf("node-%05d.prod:9100", in(s)) }},
	}
	if w.QueryKeys > 0 {
		gens = append(gens, labelGen{"for", func(s int) string { return fmt.Sprintf("cpu_usage_query_%d", in(s)%w.QueryKeys) }})
	}
	if w.Tenants > 0 {
		gens = append(gens,
			labelGen{"vm_account_id", func(s int) string { return strconv.Itoa(w.tenantOf(s)) }},
			labelGen{"vm_project_id", func(int) string { return "0" }})
	}
	return append(gens,
		labelGen{"job", func(s int) string { return []string{"node_exporter", "kube_state_metrics", "app"}[in(s)%3] }},
		labelGen{"model_alias", func(s int) string { return []string{"prophet_seasonal", "zscore_online"}[in(s)%2] }},
		labelGen{"scheduler_alias", func(int) string { return "periodic_5m" }},
		labelGen{"mode", func(s int) string { return []string{"user", "system", "iowait", "idle"}[in(s)%4] }},
	)
}

// scrapeGenerators describes series as Prometheus scrapes them from
// exporters: no tenant or query labels.
func (w Workload) scrapeGenerators() []labelGen {
	gens := []labelGen{
		{"__name__", func(s int) string { return scrapeNames[s%len(scrapeNames)] }},
		{"instance", func(s int) string { return fmt.Sprintf("10.%d.%d.%d:9100", 1+s/62500, s/250%250, s%250) }},
		{"job", func(s int) string { return []string{"node", "api", "worker"}[s%3] }},
		{"cpu", func(s int) string { return strconv.Itoa(s % 8) }},
		{"mode", func(s int) string { return []string{"user", "system", "iowait", "idle"}[s%4] }},
		{"env", func(int) string { return "production" }},
		{"region", func(s int) string { return []string{"eu-west-1", "us-east-1"}[s%2] }},
	}
	if w.Tenants > 0 {
		gens = append(gens[:2], append([]labelGen{
			{"vm_account_id", func(s int) string { return strconv.Itoa(w.tenantOf(s)) }},
			{"vm_project_id", func(int) string { return "0" }},
		}, gens[2:]...)...)
	}
	if w.QueryKeys > 0 {
		gens = append(gens[:2], append([]labelGen{
			{"for", func(s int) string { return fmt.Sprintf("query_%d", s%w.QueryKeys) }},
		}, gens[2:]...)...)
	}
	return gens
}

// tenantOf returns the vm_account_id of series s (1..Tenants). All outputs
// of one input series belong to the same tenant, as in vmanomaly.
func (w Workload) tenantOf(s int) int {
	if w.Preset != "scrape" {
		s = w.inputOf(s)
	}
	return 1 + s%w.Tenants
}

// inputs is the number of input series of an anomaly request: each yields
// one series per output variable.
func (w Workload) inputs() int {
	return (w.Series + len(anomalyOutputs) - 1) / len(anomalyOutputs)
}

// inputOf returns the input series of anomaly series s. A request lists the
// outputs variable by variable (all anomaly_score series, then all y, ...),
// the way a model's output frame is written column by column.
func (w Workload) inputOf(s int) int { return s % w.inputs() }

// outputOf returns the index in anomalyOutputs of anomaly series s.
func (w Workload) outputOf(s int) int { return s / w.inputs() % len(anomalyOutputs) }

// SeriesLabels returns the sorted label sets of the workload's series.
func (w Workload) SeriesLabels() [][]prompb.Label {
	gens := w.sortedGenerators()
	out := make([][]prompb.Label, w.Series)
	for s := range out {
		out[s] = fillLabels(make([]prompb.Label, len(gens)), gens, s)
	}
	return out
}

// sortedGenerators returns the generators in the order senders emit the
// labels: sorted by name, as Prometheus does.
func (w Workload) sortedGenerators() []labelGen {
	gens := w.generators()
	sort.Slice(gens, func(i, j int) bool { return gens[i].name < gens[j].name })
	return gens
}

// fillLabels sets dst (one entry per generator) to the labels of series s.
func fillLabels(dst []prompb.Label, gens []labelGen, s int) []prompb.Label {
	for i, g := range gens {
		dst[i] = prompb.Label{Name: g.name, Value: g.value(s)}
	}
	return dst
}

// TenantSamples returns, for one request, the number of samples per tenant
// key "account:project" as a counting sink derives it from the labels; nil
// when the workload has no tenant labels.
func (w Workload) TenantSamples() map[string]int64 {
	if !w.hasLabel("vm_account_id") {
		return nil
	}
	m := map[string]int64{}
	for s := 0; s < w.Series; s++ {
		m[strconv.Itoa(w.tenantOf(s))+":0"] += int64(w.Samples)
	}
	return m
}

// hasLabel reports whether the workload's series carry the label name.
func (w Workload) hasLabel(name string) bool {
	for _, g := range w.generators() {
		if g.name == name {
			return true
		}
	}
	return false
}
