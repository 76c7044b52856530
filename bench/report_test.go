package main

import (
	"encoding/xml"
	"io"
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
	w, _ := Presets("anomaly")
	return newReport(cfg, w, map[BodyFormat]*Pool{FormatRemoteWrite: {Bodies: make([][]byte, 1), RawBytes: 261000, CompressedBytes: 44000}}, runs)
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
	dec := xml.NewDecoder(strings.NewReader(svg))
	var texts []string
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("SVG is not well-formed XML: %v\n%s", err, svg)
		}
		if cd, ok := tok.(xml.CharData); ok {
			texts = append(texts, string(cd))
		}
	}
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
