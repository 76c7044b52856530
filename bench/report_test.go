package main

import (
	"encoding/xml"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// fakeReport builds a report from made-up runs: three good rounds each,
// one failed vmagent round in split, and a scenario title that needs
// escaping in XML.
func fakeReport(t *testing.T) *Report {
	t.Helper()
	cfg := &compareConfig{scoreproxy: "/nonexistent/scoreproxy", vmagent: "/nonexistent/vmagent", rounds: 3,
		duration: 20 * time.Second, warmup: 2 * time.Second, concurrency: 4,
		scenarios: append(allScenarios[:2:2], Scenario{Name: "split", Title: "split <10 tenants> & more", Split: true})}
	var runs []RunResult
	for _, sc := range cfg.scenarios {
		for round := 1; round <= 3; round++ {
			runs = append(runs,
				RunResult{Scenario: sc.Name, Proxy: "scoreproxy", Round: round, SamplesPerCPUSecond: float64(4e6 + round*1e5),
					PeakRSSBytes: 40 << 20, P50Ms: 1, P99Ms: 3, CPUSeconds: 10, SamplesPerSecond: 2e6},
				RunResult{Scenario: sc.Name, Proxy: "vmagent", Round: round, SamplesPerCPUSecond: 2e6,
					PeakRSSBytes: 140 << 20, P50Ms: 2, P99Ms: 6, CPUSeconds: 20, SamplesPerSecond: 2e6})
		}
	}
	runs[len(runs)-1].Failure = "sink received 1 of 2 acknowledged samples"
	cfg.workload, _ = Presets("anomaly")
	return newReport(cfg, []PointInfo{{Distinct: 1000, BodySnappy: 44000, BodyRaw: 261000, PoolBodies: 1}}, runs)
}

// Medians skip failed rounds and the ratios divide scoreproxy by vmagent.
func TestReportMediansAndRatios(t *testing.T) {
	r := fakeReport(t)
	if len(r.Rows) != 6 || len(r.Ratios) != 3 {
		t.Fatalf("%d rows, %d ratios", len(r.Rows), len(r.Ratios))
	}
	sp := r.Rows[0]
	if sp.Proxy != "scoreproxy" || sp.SamplesPerCPUSecond != 4.2e6 || sp.GoodRounds != 3 {
		t.Fatalf("scoreproxy row %+v", sp)
	}
	if vm := r.Rows[5]; vm.GoodRounds != 2 || vm.Rounds != 3 {
		t.Fatalf("failed round counted: %+v", vm)
	}
	q := r.Ratios[0]
	if q.PerCPUSecond != 2.1 || q.PeakRSS != 40.0/140 || q.P50 != 0.5 {
		t.Fatalf("ratio %+v", q)
	}
	if median([]float64{3, 1, 2, 10}) != 2.5 || median(nil) != 0 {
		t.Fatal("median")
	}
}

// The Markdown has the table rows and the ratios; the SVG is well-formed
// XML with the escaped titles; all three files are written.
func TestReportWriters(t *testing.T) {
	r := fakeReport(t)
	md := r.markdown()
	for _, want := range []string{"| pass-through, multitenant | scoreproxy | 4.20M |", "| 2.10x | 0.29x |", "2/3 |", "Measured ",
		"- split: vmagent does the split, one -remoteWrite.url per tenant"} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	withImport := fakeReport(t)
	withImport.ImportFormat, withImport.BodyImport, withImport.BodyImportRaw = FormatImport, 324000, 324000
	if md := withImport.markdown(); !strings.Contains(md, "- import scenarios: the same series and samples as JSON lines, one line per series, "+
		"324.0 KB JSON lines (uncompressed) per request to /api/v1/import\n") || !strings.Contains(md, "44.0 KB snappy / 261.0 KB raw per request, 4 concurrent") {
		t.Errorf("markdown does not describe both bodies:\n%s", md)
	}
	alone := fakeReport(t)
	alone.Rows = slices.DeleteFunc(alone.Rows, func(row Row) bool { return row.Proxy == "vmagent" })
	if md := alone.markdown(); strings.Contains(md, "vmagent does the split") {
		t.Errorf("a run without vmagent describes what vmagent did:\n%s", md)
	}
	svg := r.svg()
	texts, _ := parseSVG(t, svg)
	if all := strings.Join(texts, "|"); !strings.Contains(all, "split <10 tenants> & more") || !strings.Contains(all, "4.20M") {
		t.Errorf("SVG text lacks the title or a value: %s", all)
	}
	dir := t.TempDir()
	if err := r.write(dir); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"results.md", "results.svg", "results.json"} {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
}

// niceCeil gives round axis maxima.
func TestNiceCeil(t *testing.T) {
	for in, want := range map[float64]float64{0: 1, 0.7: 1, 3.3e6: 5e6, 2.2e6: 2.5e6, 140: 200, 100: 100} {
		if got := niceCeil(in); got != want {
			t.Errorf("niceCeil(%v) = %v, want %v", in, got, want)
		}
	}
}

// Group labels wrap at spaces to the group's width, so long scenario titles
// of neighbouring groups do not overlap, and stop at the lines that fit.
func TestWrapLabel(t *testing.T) {
	for _, tc := range []struct {
		label      string
		width, max int
		want       []string
	}{
		{"split", 20, 3, []string{"split"}},
		{"pass-through, multitenant", 20, 3, []string{"pass-through,", "multitenant"}},
		{"split across 10 tenants; vmagent: /insert/multitenant, no split", 25, 3,
			[]string{"split across 10 tenants;", "vmagent:", "/insert/multitenant, no…"}},
		{"a verylongwordthatdoesnotfit b", 8, 3, []string{"a", "verylongwordthatdoesnotfit", "b"}},
		{"", 10, 3, nil},
	} {
		got := wrapLabel(tc.label, tc.width, tc.max)
		if strings.Join(got, "|") != strings.Join(tc.want, "|") {
			t.Errorf("wrapLabel(%q, %d) = %q, want %q", tc.label, tc.width, got, tc.want)
		}
	}
}

// fakeSweepReport builds a sweep report of the default sweep points from
// made-up runs: samples per CPU-second falling with distinct series, and
// every vmagent round of split at 1M distinct failed.
func fakeSweepReport(t *testing.T) *Report {
	t.Helper()
	cfg, err := parseCompareFlags([]string{"-scoreproxy", "/bin/true", "-vmagent", "/bin/true", "-sweep"})
	if err != nil {
		t.Fatal(err)
	}
	var points []PointInfo
	var runs []RunResult
	for i, pt := range cfg.points {
		pi := PointInfo{Label: cfg.pointLabel(pt), Distinct: pt.Distinct, Churn: pt.Churn, BodySnappy: 44000, BodyRaw: 261000, PoolBodies: 2048}
		points = append(points, pi)
		for _, sc := range cfg.scenarios {
			for round := 1; round <= 3; round++ {
				r := RunResult{Point: pi.Label, Scenario: sc.Name, Round: round, PeakRSSBytes: 40 << 20, Delivered: 1000}
				sp, vm := r, r
				sp.Proxy, sp.SamplesPerCPUSecond = "scoreproxy", float64(10e6/(i+1))
				vm.Proxy, vm.SamplesPerCPUSecond, vm.PeakRSSBytes = "vmagent", 2e6, 80<<20
				if pt.Distinct == 1e6 && sc.Name == "split" {
					vm.Failure = "sink received 1 of 2 acknowledged samples"
				}
				runs = append(runs, sp, vm)
			}
		}
	}
	return newReport(cfg, points, runs)
}

// A sweep's Markdown has a point column, and a table by point with each
// scenario's samples per CPU-second of both proxies and the ratios.
func TestSweepReportTables(t *testing.T) {
	r := fakeSweepReport(t)
	if len(r.Rows) != 5*4*2 || len(r.Ratios) != 5*4-1 {
		t.Fatalf("%d rows, %d ratios; want 40 and 19", len(r.Rows), len(r.Ratios))
	}
	md := r.markdown()
	for _, want := range []string{
		"| point | scenario | proxy | samples per CPU-second |",
		"| 32K distinct | pass-through, multitenant | scoreproxy | 5.00M |",
		"| point | passthrough sp | passthrough vm | passthrough sp/vm | passthrough RSS sp/vm | metric_format sp |",
		"| 1K distinct | 10.00M | 2.00M | 5.00x | 0.50x |",
		"| 1M distinct | 2.50M | 2.00M | 1.25x | 0.50x | 2.50M | 2.00M | 1.25x | 0.50x | 2.50M | FAILED |  |  |",
		"| churn 100% | 2.00M |",
		"  - 256K distinct: remote write 1.0: 44.0 KB snappy / 261.0 KB raw per request, 2048 distinct bodies",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	if n := strings.Count(md, "\n| churn 100% |"); n != 8+4+1 {
		t.Errorf("churn point in %d table rows, want the medians' 8 + the ratios' 4 + the sweep table's 1", n)
	}
}

// The sweep chart is well-formed SVG with a line per scenario and proxy
// in each of its two panels, the distinct counts on a log x axis and the
// churn point to their right.
func TestSweepChart(t *testing.T) {
	r := fakeSweepReport(t)
	svg := r.svg()
	_, elements := parseSVG(t, svg)
	polylines, circles := elements["polyline"], elements["circle"]
	if want := 2 * 4 * 2; polylines != want {
		t.Errorf("%d lines, want %d (2 panels x 4 scenarios x 2 proxies)", polylines, want)
	}
	if want := 2 * (5*4*2 - 1); circles != want {
		t.Errorf("%d markers, want %d (a value per point, scenario and proxy but the failed one, in 2 panels)", circles, want)
	}
	xs := linePanel{points: []sweepPoint{{Distinct: 1000}, {Distinct: 32000}, {Distinct: 256000}, {Distinct: 1000000}, {Distinct: 1000, Churn: 1}}}.xPositions()
	if !slices.IsSorted(xs) {
		t.Fatalf("x positions %v not left to right", xs)
	}
	if got, want := (xs[1]-xs[0])/(xs[3]-xs[2]), math.Log(32)/math.Log(1e6/256e3); math.Abs(got-want) > 0.01 {
		t.Errorf("x spacing ratio %.3f, want %.3f (log scale)", got, want)
	}
	if !strings.Contains(svg, ">churn 100%</text>") || !strings.Contains(svg, ">1M</text>") {
		t.Errorf("x labels missing:\n%s", svg)
	}
}

// parseSVG decodes an SVG image as XML, failing the test unless it is
// well-formed, and returns its texts and how many elements of each name
// it has.
func parseSVG(t *testing.T, svg string) ([]string, map[string]int) {
	t.Helper()
	dec := xml.NewDecoder(strings.NewReader(svg))
	var texts []string
	elements := map[string]int{}
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return texts, elements
		}
		if err != nil {
			t.Fatalf("SVG is not well-formed XML: %v\n%s", err, svg)
		}
		switch tok := tok.(type) {
		case xml.CharData:
			texts = append(texts, string(tok))
		case xml.StartElement:
			elements[tok.Name.Local]++
		}
	}
}
