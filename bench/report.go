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

// PointInfo is what compare sent at one point: its workload and bodies.
type PointInfo struct {
	// Label names the point in the tables; empty outside a sweep.
	Label    string  `json:"label,omitempty"`
	Distinct int     `json:"distinct_series"`
	Churn    float64 `json:"churn"`
	// The remote-write and import bodies' mean sizes as sent and
	// uncompressed, and the bodies in the pool.
	BodySnappy    int64      `json:"body_snappy_bytes,omitempty"`
	BodyRaw       int64      `json:"body_raw_bytes,omitempty"`
	BodyImport    int64      `json:"body_import_bytes,omitempty"`
	BodyImportRaw int64      `json:"body_import_raw_bytes,omitempty"`
	ImportFormat  BodyFormat `json:"import_format,omitempty"`
	PoolBodies    int        `json:"pool_bodies"`
}

// pointInfo describes point pt, whose workload is w, from its pools.
func (c *compareConfig) pointInfo(pt sweepPoint, w Workload, pools map[BodyFormat]*Pool) PointInfo {
	info := PointInfo{Label: c.pointLabel(pt), Distinct: pt.Distinct, Churn: pt.Churn}
	if p := pools[FormatRemoteWrite]; p != nil {
		info.BodySnappy, info.BodyRaw, info.PoolBodies = p.AvgCompressed(), p.AvgRaw(), len(p.Bodies)
	}
	if p := pools[c.importFormat()]; p != nil {
		info.BodyImport, info.BodyImportRaw, info.PoolBodies = p.AvgCompressed(), p.AvgRaw(), len(p.Bodies)
		info.ImportFormat = p.Format
	}
	return info
}

// describe prints the point's workload before its runs.
func (pi PointInfo) describe(w io.Writer, wl Workload) {
	prefix := ""
	if pi.Label != "" {
		prefix = "point " + pi.Label + ": "
	}
	card := wl.describeCardinality()
	if card != "" {
		card = " (" + card + ")"
	}
	fmt.Fprintf(w, "%sworkload: %d series x %d samples, %d labels, %d tenants%s; %s; %d distinct bodies\n",
		prefix, wl.Series, wl.Samples, wl.Labels, wl.Tenants, card, pi.bodies(), pi.PoolBodies)
}

// bodies renders the point's body sizes.
func (pi PointInfo) bodies() string {
	var parts []string
	if pi.BodySnappy > 0 {
		parts = append(parts, FormatRemoteWrite.String()+": "+FormatRemoteWrite.describeBody(pi.BodySnappy, pi.BodyRaw)+" per request")
	}
	if pi.BodyImport > 0 {
		parts = append(parts, "import: "+pi.ImportFormat.describeBody(pi.BodyImport, pi.BodyImportRaw)+" per request")
	}
	return strings.Join(parts, ", ")
}

// Row is the median of the good rounds of one proxy in one scenario (at
// one point of a sweep).
type Row struct {
	Point               string  `json:"point,omitempty"`
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
	Delivered           float64 `json:"delivered_samples"`
}

// Ratio compares scoreproxy with vmagent in one scenario (scoreproxy / vmagent).
type Ratio struct {
	Point        string  `json:"point,omitempty"`
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
	ImportFormat  BodyFormat `json:"import_format,omitempty"`
	BodyImport    int64      `json:"body_import_bytes,omitempty"`
	BodyImportRaw int64      `json:"body_import_raw_bytes,omitempty"`
	Rounds        int        `json:"rounds"`
	Duration      string     `json:"duration"`
	Warmup        string     `json:"warmup"`
	Concurrency   int        `json:"concurrency"`
	// Points are the workloads of a sweep, in run order; nil outside one.
	Points    []PointInfo `json:"points,omitempty"`
	Rows      []Row       `json:"rows"`
	Ratios    []Ratio     `json:"ratios"`
	Runs      []RunResult `json:"runs"`
	scenarios []Scenario
}

// newReport aggregates the runs of the points into medians and ratios.
func newReport(c *compareConfig, points []PointInfo, runs []RunResult) *Report {
	r := &Report{
		Generated: time.Now().UTC().Format("2006-01-02 15:04 UTC"), Machine: machineDescription(),
		GoVersion: runtime.Version(), Workload: c.workload,
		Rounds: c.rounds, Duration: c.duration.String(), Warmup: c.warmup.String(), Concurrency: c.concurrency,
		Runs: runs, scenarios: c.scenarios,
	}
	if c.sweep {
		r.Points = points
	} else if len(points) == 1 {
		pi := points[0]
		r.BodySnappy, r.BodyRaw, r.BodyImport, r.BodyImportRaw = pi.BodySnappy, pi.BodyRaw, pi.BodyImport, pi.BodyImportRaw
		r.ImportFormat = pi.ImportFormat
	}
	for _, ps := range c.proxies(1) {
		r.Binaries = append(r.Binaries, ps.name+" "+binaryVersion(ps.bin))
	}
	for _, pi := range points {
		for _, sc := range c.scenarios {
			r.addScenario(c, pi.Label, sc, runs)
		}
	}
	return r
}

// addScenario adds the rows of one scenario at one point, and the ratio
// when both proxies have good rounds.
func (r *Report) addScenario(c *compareConfig, point string, sc Scenario, runs []RunResult) {
	byProxy := map[string]Row{}
	for _, ps := range c.proxies(1) {
		row := medianRow(point, sc, ps.name, runs)
		r.Rows = append(r.Rows, row)
		byProxy[ps.name] = row
	}
	sp, vm := byProxy["scoreproxy"], byProxy["vmagent"]
	if sp.GoodRounds > 0 && vm.GoodRounds > 0 {
		r.Ratios = append(r.Ratios, Ratio{Point: point, Scenario: sc.Name, PerCPUSecond: sp.SamplesPerCPUSecond / vm.SamplesPerCPUSecond,
			PeakRSS: sp.PeakRSSMB / vm.PeakRSSMB, P50: sp.P50Ms / vm.P50Ms, P99: sp.P99Ms / vm.P99Ms})
	}
}

// medianRow returns the medians of the good runs of proxy in scenario sc
// at point.
func medianRow(point string, sc Scenario, proxy string, runs []RunResult) Row {
	row := Row{Point: point, Scenario: sc.Name, Title: sc.Title, Proxy: proxy}
	var perCPU, perSec, cpu, rss, p50, p99, delivered []float64
	for _, r := range runs {
		if r.Point != point || r.Scenario != sc.Name || r.Proxy != proxy {
			continue
		}
		row.Rounds++
		if r.Failure != "" {
			continue
		}
		row.GoodRounds++
		perCPU, perSec, cpu = append(perCPU, r.SamplesPerCPUSecond), append(perSec, r.SamplesPerSecond), append(cpu, r.CPUSeconds)
		rss, p50, p99 = append(rss, float64(r.PeakRSSBytes)/(1<<20)), append(p50, r.P50Ms), append(p99, r.P99Ms)
		delivered = append(delivered, float64(r.Delivered))
	}
	row.SamplesPerCPUSecond, row.SamplesPerSecond, row.CPUSeconds = median(perCPU), median(perSec), median(cpu)
	row.PeakRSSMB, row.P50Ms, row.P99Ms, row.Delivered = median(rss), median(p50), median(p99), median(delivered)
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
	if c := w.describeCardinality(); c != "" {
		fmt.Fprintf(&b, "- series: %s\n", c)
	}
	r.describePoints(&b)
	fmt.Fprintf(&b, "- each run: %s warm-up, then %s measured; medians of %d rounds\n", r.Warmup, r.Duration, r.Rounds)
	r.describeVmagentSplits(&b)
	b.WriteString("\n")
	b.WriteString(r.markdownTables())
	return b.String()
}

// describePoints lists a sweep's points with what their requests were.
func (r *Report) describePoints(b *strings.Builder) {
	if len(r.Points) == 0 {
		return
	}
	fmt.Fprintf(b, "- sweep: at \"N distinct\" each request carries a pseudo-random selection of %d series out of N, "+
		"in shuffled order, and the pool carries all N; at \"churn R\" each request carries the preset's %d series in "+
		"their order, R x %d of them made never-seen (no earlier request carried them: a numbered instance label value)\n",
		r.Workload.Series, r.Workload.Series, r.Workload.Series)
	for _, pi := range r.Points {
		fmt.Fprintf(b, "  - %s: %s, %d distinct bodies\n", pi.Label, pi.bodies(), pi.PoolBodies)
	}
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

// markdownTables renders the medians table and, with both proxies, the
// ratios; a sweep's also the table by point.
func (r *Report) markdownTables() string {
	var b strings.Builder
	pointHead, pointRule := "", ""
	if len(r.Points) > 0 {
		pointHead, pointRule = "| point ", "|---"
	}
	b.WriteString(pointHead + "| scenario | proxy | samples per CPU-second | CPU s | samples/s | peak RSS MB | p50 ms | p99 ms | delivered | good rounds |\n")
	b.WriteString(pointRule + "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, row := range r.Rows {
		b.WriteString(r.pointCell(row.Point))
		if row.GoodRounds == 0 {
			fmt.Fprintf(&b, "| %s | %s | FAILED | | | | | | | 0/%d |\n", row.Title, row.Proxy, row.Rounds)
			continue
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %.2f | %s | %.0f | %.2f | %.2f | %s | %d/%d |\n", row.Title, row.Proxy,
			humanCount(row.SamplesPerCPUSecond), row.CPUSeconds, humanCount(row.SamplesPerSecond), row.PeakRSSMB,
			row.P50Ms, row.P99Ms, humanCount(row.Delivered), row.GoodRounds, row.Rounds)
	}
	if len(r.Ratios) == 0 {
		return b.String()
	}
	b.WriteString("\n" + pointHead + "| scenario | samples per CPU-second, scoreproxy / vmagent | peak RSS, scoreproxy / vmagent | p50, scoreproxy / vmagent | p99, scoreproxy / vmagent |\n")
	b.WriteString(pointRule + "|---|---:|---:|---:|---:|\n")
	for _, q := range r.Ratios {
		b.WriteString(r.pointCell(q.Point))
		fmt.Fprintf(&b, "| %s | %.2fx | %.2fx | %.2fx | %.2fx |\n", r.title(q.Scenario), q.PerCPUSecond, q.PeakRSS, q.P50, q.P99)
	}
	r.sweepTable(&b)
	return b.String()
}

// pointCell is the point column of a sweep's tables ("" outside a sweep).
func (r *Report) pointCell(point string) string {
	if len(r.Points) == 0 {
		return ""
	}
	return "| " + point + " "
}

// sweepTable renders a sweep's table by point: per scenario the samples
// per CPU-second of each proxy and the ratios scoreproxy / vmagent of
// samples per CPU-second and of peak RSS.
func (r *Report) sweepTable(b *strings.Builder) {
	if len(r.Points) == 0 {
		return
	}
	b.WriteString("\nSamples per CPU-second by point (sp = scoreproxy, vm = vmagent; medians):\n\n| point |")
	rule := "|---|"
	for _, sc := range r.scenarios {
		fmt.Fprintf(b, " %[1]s sp | %[1]s vm | %[1]s sp/vm | %[1]s RSS sp/vm |", sc.Name)
		rule += "---:|---:|---:|---:|"
	}
	b.WriteString("\n" + rule + "\n")
	for _, pi := range r.Points {
		b.WriteString("| " + pi.Label + " |")
		for _, sc := range r.scenarios {
			q, ok := r.ratio(pi.Label, sc.Name)
			fmt.Fprintf(b, " %s | %s | %s | %s |", r.cellPerCPU(pi.Label, sc.Name, "scoreproxy"), r.cellPerCPU(pi.Label, sc.Name, "vmagent"),
				ratioCell(q.PerCPUSecond, ok), ratioCell(q.PeakRSS, ok))
		}
		b.WriteString("\n")
	}
}

// cellPerCPU renders the median samples per CPU-second of one proxy in
// one scenario at one point: "FAILED" without a good round, "" if not run.
func (r *Report) cellPerCPU(point, scenario, proxy string) string {
	switch row := r.row(point, scenario, proxy); {
	case row.Rounds == 0:
		return ""
	case row.GoodRounds == 0:
		return "FAILED"
	default:
		return humanCount(row.SamplesPerCPUSecond)
	}
}

// ratio returns the ratios of one scenario at one point, if both proxies
// had good rounds.
func (r *Report) ratio(point, scenario string) (Ratio, bool) {
	for _, q := range r.Ratios {
		if q.Point == point && q.Scenario == scenario {
			return q, true
		}
	}
	return Ratio{}, false
}

// ratioCell renders a ratio, or "" when there is none.
func ratioCell(v float64, ok bool) string {
	if !ok {
		return ""
	}
	return fmt.Sprintf("%.2fx", v)
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
