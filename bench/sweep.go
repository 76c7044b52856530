package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// A sweep runs the scenarios at several workloads: each -sweep-distinct
// count with no churn, then each -sweep-churn share with the series of
// -series (distinct = series), the way the proxies meet a producer whose
// series repeat, one whose series do not fit a cache, and one whose series
// are new every request.
const (
	defaultSweepDistinct  = "1000,32000,256000,1000000"
	defaultSweepChurn     = "1"
	defaultSweepScenarios = "passthrough,metric_format,split,split_multitenant"
	// sweepDuration is the measured load per run of a sweep unless
	// -duration says otherwise: 5 points x 4 scenarios x 2 proxies x 3
	// rounds of it take about half an hour on 2 cores.
	sweepDuration = 10 * time.Second
)

// runOverhead is the time a run takes besides its load: starting the
// proxy, waiting for delivery, the settle time and the stop.
const runOverhead = 3 * time.Second

// sweepPoint is one workload of a compare run: the distinct series the
// requests draw from and the share of never-seen series per request.
type sweepPoint struct {
	Distinct int
	Churn    float64
}

// isChurn reports whether the point is a churn point (drawn apart from
// the distinct counts in the chart).
func (p sweepPoint) isChurn() bool { return p.Churn > 0 }

// label names the point in tables and charts: "32K distinct",
// "churn 100%", or both for a point with both.
func (p sweepPoint) label(series int) string {
	var parts []string
	if !p.isChurn() || p.Distinct > series {
		parts = append(parts, countLabel(p.Distinct)+" distinct")
	}
	if p.isChurn() {
		parts = append(parts, "churn "+strconv.FormatFloat(100*p.Churn, 'g', 4, 64)+"%")
	}
	return strings.Join(parts, ", ")
}

// countLabel renders a count as 1K, 32K, 1M, 1.5M.
func countLabel(n int) string {
	switch {
	case n >= 1e6:
		return strconv.FormatFloat(float64(n)/1e6, 'g', 4, 64) + "M"
	case n >= 1e3:
		return strconv.FormatFloat(float64(n)/1e3, 'g', 4, 64) + "K"
	}
	return strconv.Itoa(n)
}

// parseSweep returns the points of -sweep-distinct and -sweep-churn for
// requests of series series.
func parseSweep(distinct, churn string, series int) ([]sweepPoint, error) {
	var points []sweepPoint
	for _, f := range listItems(distinct) {
		n, err := strconv.Atoi(f)
		switch {
		case err != nil:
			return nil, fmt.Errorf("-sweep-distinct %q: %q is not a whole number; give counts like %s", distinct, f, defaultSweepDistinct)
		case n < series || n > maxDistinct:
			return nil, fmt.Errorf("-sweep-distinct %d: want counts from -series (%d) up to %d", n, series, maxDistinct)
		}
		points = append(points, sweepPoint{Distinct: n})
	}
	for _, f := range listItems(churn) {
		r, err := strconv.ParseFloat(f, 64)
		if err != nil || !(r > 0 && r <= 1) {
			return nil, fmt.Errorf("-sweep-churn %q: %q is not a share above 0 up to 1; give shares like 1 or 0.1,1 "+
				"(churn 0 is the -sweep-distinct point %d)", churn, f, series)
		}
		points = append(points, sweepPoint{Distinct: series, Churn: r})
	}
	if len(points) == 0 {
		return nil, fmt.Errorf("-sweep-distinct and -sweep-churn are both empty: give at least one point")
	}
	return points, nil
}

// listItems splits a comma-separated list, dropping blanks.
func listItems(list string) []string {
	var out []string
	for _, f := range strings.Split(list, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// workloadAt is the compare workload at point p.
func (c *compareConfig) workloadAt(p sweepPoint) Workload {
	w := c.workload
	w.Distinct, w.Churn = p.Distinct, p.Churn
	if w.Distinct == w.Series {
		w.Distinct = 0
	}
	return w
}

// pointLabel names point p in the report: "" for a single point, whose
// report looks as it did before sweeps.
func (c *compareConfig) pointLabel(p sweepPoint) string {
	if !c.sweep {
		return ""
	}
	return p.label(c.workload.Series)
}

// estimate returns the number of runs and about how long they take
// (building the pools not included).
func (c *compareConfig) estimate() (runs int, total time.Duration) {
	runs = len(c.points) * len(c.scenarios) * len(c.proxies(1)) * c.rounds
	return runs, time.Duration(runs) * (c.warmup + c.duration + runOverhead)
}

// describeEstimate renders estimate for the start of a run.
func (c *compareConfig) describeEstimate() string {
	runs, total := c.estimate()
	return fmt.Sprintf("plan: %d points x %d scenarios x %d proxies x %d rounds = %d runs of %s warm-up + %s + about %s "+
		"(start, delivery, stop): about %s", len(c.points), len(c.scenarios), len(c.proxies(1)), c.rounds, runs,
		c.warmup, c.duration, runOverhead, total.Round(time.Second))
}
