package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"
)

// neverSeen matches the instance value of a never-seen series once its
// request number is written.
var neverSeen = regexp.MustCompile(`-g[0-9]{12}$`)

// sentRequests returns the first n requests a sender sends from p, decoded.
func sentRequests(t *testing.T, p *Pool, n int) []*prompb.WriteRequest {
	t.Helper()
	var sb sendBuf
	out := make([]*prompb.WriteRequest, n)
	for k := range out {
		body, err := p.body(k%len(p.Bodies), &sb)
		if err != nil {
			t.Fatal(err)
		}
		out[k] = decodeBody(t, body)
	}
	return out
}

// instanceOf returns the value of the instance label.
func instanceOf(ls []prompb.Label) string {
	for _, l := range ls {
		if l.Name == "instance" {
			return l.Value
		}
	}
	return ""
}

// cardinalityCases are workloads of distinct series and churn, small
// enough to decode every body.
var cardinalityCases = []struct {
	name              string
	series, distinct  int
	churn             float64
	wantSteadyOfTotal int // distinct steady series over the pool
}{
	{"same series", 100, 0, 0, 100},
	{"10x distinct", 100, 1000, 0, 1000},
	{"1.5x distinct (bodies span two permutations)", 100, 150, 0, 150},
	{"distinct + 1", 100, 101, 0, 101},
	{"10x distinct, 30% churn", 100, 1000, 0.3, 1000},
	{"same series, 50% churn", 100, 0, 0.5, 100},
	{"same series, 3% churn", 100, 0, 0.03, 100},
	{"100% churn", 100, 0, 1, 0},
	{"2x distinct, 100% churn", 100, 200, 1, 0},
}

// cardinalityWorkload is the anomaly preset with a case's cardinality.
func cardinalityWorkload(series, distinct int, churn float64) Workload {
	return Workload{Preset: "anomaly", Series: series, Samples: 2, Labels: 9, Tenants: 10, QueryKeys: 3, Distinct: distinct, Churn: churn}
}

// Over the pool the steady series are exactly the N distinct ones, every
// request has -series distinct series, and the pool is raised to the
// bodies that carry them all.
func TestDistinctSeriesCoverThePool(t *testing.T) {
	for _, tc := range cardinalityCases {
		t.Run(tc.name, func(t *testing.T) {
			w := cardinalityWorkload(tc.series, tc.distinct, tc.churn)
			if err := w.Validate(); err != nil {
				t.Fatal(err)
			}
			p, err := BuildPool(w, 1, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			if len(p.Bodies) != minBodies(w) {
				t.Fatalf("%d bodies, want the %d that carry every series", len(p.Bodies), minBodies(w))
			}
			steady := map[string]bool{}
			for k, req := range sentRequests(t, p, len(p.Bodies)) {
				inRequest := map[string]bool{}
				for _, ts := range req.Timeseries {
					key := seriesKey(ts.Labels)
					if inRequest[key] {
						t.Fatalf("request %d carries %s twice", k, key)
					}
					inRequest[key] = true
					if !neverSeen.MatchString(instanceOf(ts.Labels)) {
						steady[key] = true
					}
				}
				if len(inRequest) != tc.series {
					t.Fatalf("request %d: %d series, want %d", k, len(inRequest), tc.series)
				}
			}
			if len(steady) != tc.wantSteadyOfTotal {
				t.Fatalf("%d distinct steady series over the pool, want %d", len(steady), tc.wantSteadyOfTotal)
			}
		})
	}
}

// planOf returns, for each of n bodies of w, the distinct series at each
// position (never-seen ones as -1).
func planOf(w Workload, n int) [][]int32 {
	plan := newSeriesPlan(w, n)
	out := make([][]int32, n)
	churned := make([]bool, w.Series)
	for i := range out {
		out[i] = make([]int32, w.Series)
		plan.fill(i, out[i], churned)
		for pos, c := range churned {
			if c {
				out[i][pos] = -1
			}
		}
	}
	return out
}

// From a larger set, consecutive bodies differ in composition and in the
// order of the series they share, and no body lists its series in the
// set's order; with the default set every body is the set in order.
func TestConsecutiveBodiesDiffer(t *testing.T) {
	for _, tc := range []struct {
		series, distinct int
	}{{100, 150}, {100, 101}, {100, 1000}, {1000, 32000}} {
		bodies := planOf(cardinalityWorkload(tc.series, tc.distinct, 0), 40)
		for i := 0; i+1 < len(bodies); i++ {
			a, b := bodies[i], bodies[i+1]
			if sameSet(a, b) {
				t.Fatalf("%d of %d: bodies %d and %d carry the same series", tc.series, tc.distinct, i, i+1)
			}
			if common := sharedInOrder(a, b); len(common) > 2 && slices.Equal(common, sharedInOrder(b, a)) {
				t.Fatalf("%d of %d: bodies %d and %d list their %d shared series in the same order", tc.series, tc.distinct, i, i+1, len(common))
			}
			if slices.IsSorted(a) {
				t.Fatalf("%d of %d: body %d is in the set's order", tc.series, tc.distinct, i)
			}
		}
	}
	for i, body := range planOf(cardinalityWorkload(100, 0, 0), 5) {
		for pos, s := range body {
			if int(s) != pos {
				t.Fatalf("default workload: body %d carries series %d at position %d", i, s, pos)
			}
		}
	}
}

// sameSet reports whether a and b hold the same values.
func sameSet(a, b []int32) bool {
	x, y := slices.Clone(a), slices.Clone(b)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(x, y)
}

// sharedInOrder returns the values of a that b holds too, in a's order.
func sharedInOrder(a, b []int32) []int32 {
	var out []int32
	for _, v := range a {
		if slices.Contains(b, v) {
			out = append(out, v)
		}
	}
	return out
}

// With churn R every request carries round(R x series) series no earlier
// request carried: exactly that many once a cycle through the pool has
// sent every steady series, at least that many before.
func TestChurnNeverSeenPerRequest(t *testing.T) {
	for _, tc := range cardinalityCases {
		t.Run(tc.name, func(t *testing.T) {
			w := cardinalityWorkload(tc.series, tc.distinct, tc.churn)
			p, err := BuildPool(w, 8, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			want := w.ChurnedPerRequest()
			if tc.churn > 0 && want == 0 {
				t.Fatal("no never-seen series at churn > 0")
			}
			seen := map[string]bool{}
			for k, req := range sentRequests(t, p, 2*len(p.Bodies)+3) {
				fresh := 0
				for _, ts := range req.Timeseries {
					if key := seriesKey(ts.Labels); !seen[key] {
						seen[key] = true
						fresh++
					}
				}
				if fresh < want || (k >= len(p.Bodies) && fresh != want) {
					t.Fatalf("request %d (pool %d): %d never-seen series, want %d", k, len(p.Bodies), fresh, want)
				}
			}
		})
	}
}

// Senders emit the labels in the presets' order (sorted by name, as
// Prometheus does), churned series included; a never-seen series is a
// pool series with a numbered instance value.
func TestLabelOrderIsThePresets(t *testing.T) {
	for _, tc := range []struct {
		preset string
		names  string
	}{
		{"anomaly", "__name__,for,instance,job,mode,model_alias,scheduler_alias,vm_account_id,vm_project_id"},
		{"scrape", "__name__,cpu,env,instance,job,mode,region"},
	} {
		w, _ := Presets(tc.preset)
		w.Series = 50
		for _, card := range []struct {
			distinct int
			churn    float64
		}{{0, 0}, {400, 0}, {400, 0.5}, {0, 1}} {
			w.Distinct, w.Churn = card.distinct, card.churn
			p, err := BuildPool(w, 4, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			for _, req := range sentRequests(t, p, 4) {
				for _, ts := range req.Timeseries {
					names := make([]string, len(ts.Labels))
					for i, l := range ts.Labels {
						names[i] = l.Name
					}
					if got := strings.Join(names, ","); got != tc.names {
						t.Fatalf("%s %+v: labels %s, want %s", tc.preset, card, got, tc.names)
					}
				}
			}
		}
	}
}

// The steady series of the default workload are the preset's, in order,
// and its never-seen ones are those series with a numbered instance.
func TestDefaultBodiesAreThePresets(t *testing.T) {
	w := cardinalityWorkload(100, 0, 0.5)
	want := w.SeriesLabels()
	p, err := BuildPool(w, 3, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for k, req := range sentRequests(t, p, 3) {
		for pos, ts := range req.Timeseries {
			ls := slices.Clone(ts.Labels)
			for i := range ls {
				if ls[i].Name == "instance" && neverSeen.MatchString(ls[i].Value) {
					ls[i].Value = neverSeen.ReplaceAllString(ls[i].Value, "")
					if !strings.HasSuffix(ts.Labels[i].Value, fmt.Sprintf("%012d", k+1)) {
						t.Fatalf("request %d: never-seen instance %s, want request number %d", k, ts.Labels[i].Value, k+1)
					}
				}
			}
			if seriesKey(ls) != seriesKey(want[pos]) {
				t.Fatalf("request %d position %d: %s, want %s", k, pos, seriesKey(ls), seriesKey(want[pos]))
			}
		}
	}
}

// Series stay distinct past the range the presets' label values repeat
// in (scrape: 375,000 with every label, 125,000 with two).
func TestLargeDistinctSetsStayDistinct(t *testing.T) {
	for _, preset := range []string{"anomaly", "scrape"} {
		w, _ := Presets(preset)
		w.Series, w.Labels = 400_000, 2
		gens := w.sortedGenerators()
		seen := make(map[string]bool, w.Series)
		ls := make([]prompb.Label, len(gens))
		for s := 0; s < w.Series; s++ {
			key := seriesKey(fillLabels(ls, gens, s))
			if seen[key] {
				t.Fatalf("%s: series %d repeats %s", preset, s, key)
			}
			seen[key] = true
		}
	}
}

// Loads with distinct series and churn deliver every acknowledged sample
// to the sink under the tenants the acknowledged bodies carried; those
// are the preset's per request only when every request has its series.
func TestCardinalityLoadToSink(t *testing.T) {
	for _, w := range []Workload{cardinalityWorkload(100, 1000, 0), cardinalityWorkload(100, 0, 1), smallWorkload} {
		sink := NewSink(204, 0, true)
		srv := httptest.NewServer(sink)
		p, err := BuildPool(w, 4, time.Now()) // 25 requests: not whole cycles through the pool
		if err != nil {
			t.Fatal(err)
		}
		sum := RunLoad(context.Background(), LoadConfig{URL: srv.URL + "/insert/multitenant/prometheus/api/v1/write",
			Concurrency: 3, Requests: 25, Timeout: 10 * time.Second}, p)
		srv.Close()
		got := sink.Counts()
		if sum.AckedRequests != 25 || got.Samples != sum.AckedSamples || got.Series != 25*100 {
			t.Fatalf("%+v: acknowledged %d requests, %d samples; sink %d samples, %d series", w, sum.AckedRequests, sum.AckedSamples, got.Samples, got.Series)
		}
		acked := p.AckedTenantSamples(sum.ackedBodies)
		if problems := tenantProblems(got.Tenants, acked); len(problems) > 0 {
			t.Fatalf("%+v: %v", w, problems)
		}
		problems := tenantProblems(got.Tenants, scaled(w.TenantSamples(), 25))
		if sameTenants := w.DistinctSeries() == w.Series; sameTenants != (len(problems) == 0) {
			t.Fatalf("%+v: every request carries the preset's tenants: %v, want %v (%v)", w, len(problems) == 0, sameTenants, problems)
		}
	}
}

// scaled returns m with every value times n.
func scaled(m map[string]int64, n int64) map[string]int64 {
	out := map[string]int64{}
	for k, v := range m {
		out[k] = v * n
	}
	return out
}

// A JSON-lines pool with churn numbers each request's never-seen series
// too, gzip-compressed or not.
func TestImportChurn(t *testing.T) {
	for _, f := range []BodyFormat{FormatImport, FormatImportGzip} {
		w := cardinalityWorkload(20, 0, 1)
		p, err := BuildPoolFormat(w, 2, time.Now(), f)
		if err != nil {
			t.Fatal(err)
		}
		var sb sendBuf
		for k := 0; k < 3; k++ {
			body, err := p.body(k%len(p.Bodies), &sb)
			if err != nil {
				t.Fatal(err)
			}
			if f == FormatImportGzip {
				body = gunzip(t, body)
			}
			lines := decodeLines(t, body)
			for _, l := range lines {
				if !strings.HasSuffix(l.Metric["instance"], fmt.Sprintf("-g%012d", k+1)) {
					t.Fatalf("%v request %d: instance %q", f, k, l.Metric["instance"])
				}
			}
			if len(lines) != 20 {
				t.Fatalf("%v request %d: %d lines", f, k, len(lines))
			}
		}
	}
}

// Bad -distinct and -churn values are refused naming the flag.
func TestCardinalityValidate(t *testing.T) {
	for _, tc := range []struct {
		distinct int
		churn    float64
		want     string
	}{
		{50, 0, "-distinct 50: want -series (100) up to 10000000"},
		{maxDistinct + 1, 0, "-distinct 10000001"},
		{0, -0.1, "-churn -0.1: want a share from 0 to 1"},
		{0, 1.5, "-churn 1.5"},
	} {
		err := cardinalityWorkload(100, tc.distinct, tc.churn).Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("distinct %d churn %v: %v, want %q", tc.distinct, tc.churn, err, tc.want)
		}
	}
}

// gunzip decompresses a gzip body.
func gunzip(t *testing.T, body []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
