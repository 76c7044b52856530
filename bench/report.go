package main

import (
	"crypto/sha256"
	"debug/buildinfo"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"
)

// Row is the median of the good rounds of one proxy in one scenario.
type Row struct {
	Scenario            string  `json:"scenario"`
	Title               string  `json:"title"`
	Proxy               string  `json:"proxy"`
	GoodRounds          int     `json:"good_rounds"`
	Rounds              int     `json:"rounds"`
	SamplesPerCPUSecond float64 `json:"samples_per_cpu_second"`
	SamplesPerSecond    float64 `json:"samples_per_second"`
	CPUSeconds          float64 `json:"cpu_seconds"`
	PeakRSSMB           float64 `json:"peak_rss_mb"`
	P50Ms               float64 `json:"p50_ms"`
	P99Ms               float64 `json:"p99_ms"`
}

// Ratio compares scoreproxy with vmagent in one scenario (scoreproxy / vmagent).
type Ratio struct {
	Scenario     string  `json:"scenario"`
	PerCPUSecond float64 `json:"samples_per_cpu_second"`
	PeakRSS      float64 `json:"peak_rss"`
	P50          float64 `json:"p50"`
	P99          float64 `json:"p99"`
}

// Report is everything compare writes: the setting, the medians, the
// ratios and every individual run.
type Report struct {
	Generated  string   `json:"generated"`
	Machine    string   `json:"machine"`
	GoVersion  string   `json:"go_version"`
	Binaries   []string `json:"binaries"`
	Workload   Workload `json:"workload"`
	BodySnappy int64    `json:"body_snappy_bytes,omitempty"`
	BodyRaw    int64    `json:"body_raw_bytes,omitempty"`
	// ImportFormat and the import body sizes (as sent, and uncompressed)
	// describe the load of the import scenarios, when there are any.
	ImportFormat  BodyFormat  `json:"import_format,omitempty"`
	BodyImport    int64       `json:"body_import_bytes,omitempty"`
	BodyImportRaw int64       `json:"body_import_raw_bytes,omitempty"`
	Rounds        int         `json:"rounds"`
	Duration      string      `json:"duration"`
	Warmup        string      `json:"warmup"`
	Concurrency   int         `json:"concurrency"`
	Rows          []Row       `json:"rows"`
	Ratios        []Ratio     `json:"ratios"`
	Runs          []RunResult `json:"runs"`
	scenarios     []Scenario
}

// newReport aggregates the runs into medians and ratios.
func newReport(c *compareConfig, w Workload, pools map[BodyFormat]*Pool, runs []RunResult) *Report {
	r := &Report{
		Generated: time.Now().UTC().Format("2006-01-02 15:04 UTC"), Machine: machineDescription(),
		GoVersion: runtime.Version(), Workload: w,
		Rounds: c.rounds, Duration: c.duration.String(), Warmup: c.warmup.String(), Concurrency: c.concurrency,
		Runs: runs, scenarios: c.scenarios,
	}
	if p := pools[FormatRemoteWrite]; p != nil {
		r.BodySnappy, r.BodyRaw = p.AvgCompressed(), p.AvgRaw()
	}
	if p := pools[c.importFormat()]; p != nil {
		r.ImportFormat, r.BodyImport, r.BodyImportRaw = p.Format, p.AvgCompressed(), p.AvgRaw()
	}
	for _, ps := range c.proxies(1) {
		r.Binaries = append(r.Binaries, ps.name+" "+binaryVersion(ps.bin))
	}
	for _, sc := range c.scenarios {
		byProxy := map[string]Row{}
		for _, ps := range c.proxies(1) {
			row := medianRow(sc, ps.name, runs)
			r.Rows = append(r.Rows, row)
			byProxy[ps.name] = row
		}
		sp, vm := byProxy["scoreproxy"], byProxy["vmagent"]
		if sp.GoodRounds > 0 && vm.GoodRounds > 0 {
			r.Ratios = append(r.Ratios, Ratio{Scenario: sc.Name, PerCPUSecond: sp.SamplesPerCPUSecond / vm.SamplesPerCPUSecond,
				PeakRSS: sp.PeakRSSMB / vm.PeakRSSMB, P50: sp.P50Ms / vm.P50Ms, P99: sp.P99Ms / vm.P99Ms})
		}
	}
	return r
}

// medianRow returns the medians of the good runs of proxy in scenario sc.
func medianRow(sc Scenario, proxy string, runs []RunResult) Row {
	row := Row{Scenario: sc.Name, Title: sc.Title, Proxy: proxy}
	var perCPU, perSec, cpu, rss, p50, p99 []float64
	for _, r := range runs {
		if r.Scenario != sc.Name || r.Proxy != proxy {
			continue
		}
		row.Rounds++
		if r.Failure != "" {
			continue
		}
		row.GoodRounds++
		perCPU, perSec, cpu = append(perCPU, r.SamplesPerCPUSecond), append(perSec, r.SamplesPerSecond), append(cpu, r.CPUSeconds)
		rss, p50, p99 = append(rss, float64(r.PeakRSSBytes)/(1<<20)), append(p50, r.P50Ms), append(p99, r.P99Ms)
	}
	row.SamplesPerCPUSecond, row.SamplesPerSecond, row.CPUSeconds = median(perCPU), median(perSec), median(cpu)
	row.PeakRSSMB, row.P50Ms, row.P99Ms = median(rss), median(p50), median(p99)
	return row
}

// median returns the median of vs (mean of the middle two for even
// counts), or 0 for none.
func median(vs []float64) float64 {
	if len(vs) == 0 {
		return 0
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	if n := len(s); n%2 == 0 {
		return (s[n/2-1] + s[n/2]) / 2
	}
	return s[len(s)/2]
}

// machineDescription names the cores, CPU model and kernel.
func machineDescription() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				model = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	kernel := "unknown kernel"
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		kernel = "Linux " + strings.TrimSpace(string(b))
	}
	return fmt.Sprintf("%d cores (%s), %s", runtime.NumCPU(), model, kernel)
}

// binaryVersion reads the module version a Go binary was built from.
func binaryVersion(bin string) string {
	bi, err := buildinfo.ReadFile(bin)
	if err != nil {
		return "(version unknown)"
	}
	v := bi.Main.Version
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			v += " " + s.Value[:12]
		}
	}
	return fmt.Sprintf("%s (%s, %s, sha256 %s)", v, bi.Main.Path, bi.GoVersion, fileDigest(bin))
}

// fileDigest returns the first 12 hex digits of the file's SHA-256, to tell
// builds apart when the binary carries no version.
func fileDigest(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "unknown"
	}
	return hex.EncodeToString(h.Sum(nil))[:12]
}

// write stores results.md, results.svg and results.json in dir.
func (r *Report) write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	files := map[string][]byte{
		"results.md":   []byte(r.markdown()),
		"results.svg":  []byte(r.svg()),
		"results.json": append(js, '\n'),
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// markdown renders the whole results page: the setting and the tables.
func (r *Report) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Measured %s on %s, %s.\n\n", r.Generated, r.Machine, r.GoVersion)
	for _, bin := range r.Binaries {
		fmt.Fprintf(&b, "- %s\n", bin)
	}
	w := r.Workload
	fmt.Fprintf(&b, "- workload: %s preset, %d series x %d samples per request, %d labels, %d tenants, %s%d concurrent senders\n",
		w.Preset, w.Series, w.Samples, w.Labels, w.Tenants, r.remoteWriteBody(), r.Concurrency)
	if r.BodyImport > 0 {
		fmt.Fprintf(&b, "- import scenarios: the same series and samples as JSON lines, one line per series, %s per request to /api/v1/import\n",
			r.ImportFormat.describeBody(r.BodyImport, r.BodyImportRaw))
	}
	fmt.Fprintf(&b, "- each run: %s warm-up, then %s measured; medians of %d rounds\n", r.Warmup, r.Duration, r.Rounds)
	r.describeVmagentSplits(&b)
	b.WriteString("\n")
	b.WriteString(r.markdownTables())
	return b.String()
}

// remoteWriteBody describes the remote-write bodies for the workload
// line, if a scenario sent any.
func (r *Report) remoteWriteBody() string {
	if r.BodySnappy == 0 {
		return ""
	}
	return FormatRemoteWrite.describeBody(r.BodySnappy, r.BodyRaw) + " per request, "
}

// describeVmagentSplits says, for each split scenario in the report, what
// vmagent was given to do: the split itself, or the multitenant forward
// that leaves it to vminsert. Nothing when vmagent did not run.
func (r *Report) describeVmagentSplits(b *strings.Builder) {
	if !slices.ContainsFunc(r.Rows, func(row Row) bool { return row.Proxy == "vmagent" }) {
		return
	}
	for _, sc := range r.scenarios {
		switch {
		case !sc.Split:
		case sc.VmagentMultitenant:
			fmt.Fprintf(b, "- %s: vmagent forwards whole requests to /insert/multitenant (no split; vminsert would do it, and is not measured)\n", sc.Name)
		default:
			fmt.Fprintf(b, "- %s: vmagent does the split, one -remoteWrite.url per tenant keeping that tenant's series and dropping the tenant labels\n", sc.Name)
		}
	}
}

// markdownTables renders the medians table and, with both proxies, the ratios.
func (r *Report) markdownTables() string {
	var b strings.Builder
	b.WriteString("| scenario | proxy | samples per CPU-second | CPU s | samples/s | peak RSS MB | p50 ms | p99 ms | good rounds |\n")
	b.WriteString("|---|---|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, row := range r.Rows {
		if row.GoodRounds == 0 {
			fmt.Fprintf(&b, "| %s | %s | FAILED | | | | | | 0/%d |\n", row.Title, row.Proxy, row.Rounds)
			continue
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %.2f | %s | %.0f | %.2f | %.2f | %d/%d |\n", row.Title, row.Proxy,
			humanCount(row.SamplesPerCPUSecond), row.CPUSeconds, humanCount(row.SamplesPerSecond), row.PeakRSSMB,
			row.P50Ms, row.P99Ms, row.GoodRounds, row.Rounds)
	}
	if len(r.Ratios) == 0 {
		return b.String()
	}
	b.WriteString("\n| scenario | samples per CPU-second, scoreproxy / vmagent | peak RSS, scoreproxy / vmagent | p50, scoreproxy / vmagent | p99, scoreproxy / vmagent |\n")
	b.WriteString("|---|---:|---:|---:|---:|\n")
	for _, q := range r.Ratios {
		fmt.Fprintf(&b, "| %s | %.2fx | %.2fx | %.2fx | %.2fx |\n", r.title(q.Scenario), q.PerCPUSecond, q.PeakRSS, q.P50, q.P99)
	}
	return b.String()
}

// title returns the table title of a scenario name.
func (r *Report) title(name string) string {
	for _, s := range r.scenarios {
		if s.Name == name {
			return s.Title
		}
	}
	return name
}
