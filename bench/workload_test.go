package main

import (
	"flag"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
)

// decodeBody snappy-decodes and unmarshals a pool body with prompb.
func decodeBody(t *testing.T, body []byte) *prompb.WriteRequest {
	t.Helper()
	raw, err := snappy.Decode(nil, body)
	if err != nil {
		t.Fatalf("snappy: %v", err)
	}
	var req prompb.WriteRequest
	if err := req.Unmarshal(raw); err != nil {
		t.Fatalf("protobuf: %v", err)
	}
	return &req
}

// seriesKey renders a label set as one string.
func seriesKey(ls []prompb.Label) string {
	var b strings.Builder
	for _, l := range ls {
		b.WriteString(l.Name + "=" + l.Value + ",")
	}
	return b.String()
}

// The anomaly preset is the guide's standard workload: 1,000 series x 2
// samples, 9 labels, about 44 KB snappy / 261 KB raw per request.
func TestAnomalyPresetMatchesTheGuide(t *testing.T) {
	w, err := Presets("anomaly")
	if err != nil {
		t.Fatal(err)
	}
	p, err := BuildPool(w, 8, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if raw := p.AvgRaw(); raw < 245_000 || raw > 275_000 {
		t.Errorf("raw body %d bytes, want about 261 KB", raw)
	}
	if comp := p.AvgCompressed(); comp < 40_000 || comp > 48_000 {
		t.Errorf("snappy body %d bytes, want about 44 KB", comp)
	}
	req := decodeBody(t, p.Bodies[0])
	if len(req.Timeseries) != 1000 {
		t.Fatalf("%d series, want 1000", len(req.Timeseries))
	}
	names := map[string]int{}
	for _, ts := range req.Timeseries {
		if len(ts.Labels) != 9 || len(ts.Samples) != 2 {
			t.Fatalf("series %v: %d labels, %d samples; want 9 and 2", ts.Labels, len(ts.Labels), len(ts.Samples))
		}
		if !sort.SliceIsSorted(ts.Labels, func(i, j int) bool { return ts.Labels[i].Name < ts.Labels[j].Name }) {
			t.Fatalf("labels not sorted: %v", ts.Labels)
		}
		names[ts.Labels[0].Value]++
	}
	for _, out := range anomalyOutputs {
		if names[out] != 200 {
			t.Errorf("%d series named %s, want 200", names[out], out)
		}
	}
}

// Every (series, timestamp) pair of a pool is unique, so a deduplicating
// store keeps every sample of a run that does not outlast the pool.
func TestPoolSamplesAreUnique(t *testing.T) {
	w := Workload{Preset: "anomaly", Series: 50, Samples: 3, Labels: 9, Tenants: 4, QueryKeys: 3}
	p, err := BuildPool(w, 20, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, body := range p.Bodies {
		for _, ts := range decodeBody(t, body).Timeseries {
			key := seriesKey(ts.Labels)
			for _, s := range ts.Samples {
				k := key + "@" + time.UnixMilli(s.Timestamp).String()
				if seen[k] {
					t.Fatalf("sample %s repeats", k)
				}
				seen[k] = true
			}
		}
	}
	if want := 20 * 50 * 3; len(seen) != want {
		t.Fatalf("%d unique samples, want %d", len(seen), want)
	}
}

// vm_account_id spreads evenly over 1..Tenants and all outputs of one
// input series share a tenant.
func TestTenantsAreSpread(t *testing.T) {
	w, _ := Presets("anomaly")
	got := w.TenantSamples()
	if len(got) != 10 {
		t.Fatalf("%d tenants, want 10: %v", len(got), got)
	}
	for k, n := range got {
		if n != 200 {
			t.Errorf("tenant %s: %d samples per request, want 200", k, n)
		}
	}
	perInstance := map[string]string{}
	for _, ls := range w.SeriesLabels() {
		var inst, acct string
		for _, l := range ls {
			switch l.Name {
			case "instance":
				inst = l.Value
			case "vm_account_id":
				acct = l.Value
			}
		}
		if prev, ok := perInstance[inst]; ok && prev != acct {
			t.Fatalf("instance %s in tenants %s and %s", inst, prev, acct)
		}
		perInstance[inst] = acct
	}
}

// The scrape preset has no tenant or query labels unless asked for.
func TestScrapePresetHasNoTenantLabels(t *testing.T) {
	w, _ := Presets("scrape")
	if w.TenantSamples() != nil {
		t.Fatal("scrape preset has tenant labels")
	}
	for _, ls := range w.SeriesLabels() {
		for _, l := range ls {
			if l.Name == "vm_account_id" || l.Name == "for" {
				t.Fatalf("scrape series carries %s", l.Name)
			}
		}
	}
	w.Tenants = 3
	if got := len(w.TenantSamples()); got != 3 {
		t.Fatalf("scrape with -tenants 3: %d tenants", got)
	}
}

// Explicit flags override the preset; label counts above the preset's
// scheme are filled with extra labels and series stay distinct.
func TestWorkloadFlags(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	wf := bindWorkloadFlags(fs)
	if err := fs.Parse([]string{"-series", "30", "-labels", "14", "-tenants", "0"}); err != nil {
		t.Fatal(err)
	}
	w, err := wf.Resolve()
	if err != nil {
		t.Fatal(err)
	}
	if w.Series != 30 || w.Labels != 14 || w.Tenants != 0 || w.Samples != 2 || w.QueryKeys != 10 {
		t.Fatalf("resolved %+v", w)
	}
	keys := map[string]bool{}
	for _, ls := range w.SeriesLabels() {
		if len(ls) != 14 {
			t.Fatalf("%d labels, want 14", len(ls))
		}
		keys[seriesKey(ls)] = true
	}
	if len(keys) != 30 {
		t.Fatalf("%d distinct series, want 30", len(keys))
	}
	for _, bad := range [][]string{{"-series", "0"}, {"-labels", "1"}, {"-preset", "nope"}, {"-samples", "-1"}} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		wf := bindWorkloadFlags(fs)
		if err := fs.Parse(bad); err != nil {
			t.Fatal(err)
		}
		if _, err := wf.Resolve(); err == nil {
			t.Errorf("%v: no error", bad)
		}
	}
}
