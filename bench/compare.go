package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"
	"time"
)

// compareConfig holds the flags of "bench compare".
type compareConfig struct {
	scoreproxy, vmagent string // binaries; an empty one is skipped
	rounds              int
	duration, warmup    time.Duration
	concurrency         int
	pool                int
	out                 string
	scenarios           []Scenario
	workload            Workload
	// points are the workloads to run: the workload flags' one, or with
	// sweep the points of -sweep-distinct and -sweep-churn.
	points          []sweepPoint
	sweep           bool
	sinkFast        bool // the sink decodes with the wire walker instead of prompb
	importGzip      bool // the import scenarios send gzip-compressed JSON lines
	startTimeout    time.Duration
	deliveryTimeout time.Duration
}

// defaultVmagent is where the project's scripts install vmagent v1.128.0.
func defaultVmagent() string {
	home, _ := os.UserHomeDir()
	p := filepath.Join(home, ".cache", "scoreproxy-tools", "bin", "vmagent")
	if _, err := os.Stat(p); err != nil {
		return ""
	}
	return p
}

// parseCompareFlags parses and validates the flags of "bench compare".
func parseCompareFlags(args []string) (*compareConfig, error) {
	fs := flag.NewFlagSet("compare", flag.ContinueOnError)
	c := &compareConfig{}
	var scen, decode, sweepDistinct, sweepChurn string
	wf := bindWorkloadFlags(fs)
	fs.BoolVar(&c.sweep, "sweep", false, "run the scenarios at each point of -sweep-distinct (no churn) and -sweep-churn (distinct = -series); "+
		"unless given, -scenarios is "+defaultSweepScenarios+" and -duration "+sweepDuration.String()+
		" (5 points x 4 scenarios x 2 proxies x 3 rounds: about 30 minutes on 2 cores; the plan is printed first); "+
		"the report adds a table by point and charts samples per CPU-second against distinct series")
	fs.StringVar(&sweepDistinct, "sweep-distinct", defaultSweepDistinct, "with -sweep: comma-separated distinct series counts, each at least -series")
	fs.StringVar(&sweepChurn, "sweep-churn", defaultSweepChurn, "with -sweep: comma-separated churn shares (0 < R <= 1) run with distinct = -series; empty = none")
	fs.StringVar(&c.scoreproxy, "scoreproxy", "", "scoreproxy binary (CGO_ENABLED=0 go build -o /tmp/scoreproxy ./cmd/scoreproxy); empty = skip")
	fs.StringVar(&c.vmagent, "vmagent", defaultVmagent(), "vmagent binary; empty = skip")
	fs.IntVar(&c.rounds, "rounds", 3, "rounds per scenario and proxy; the report shows medians")
	fs.DurationVar(&c.duration, "duration", 20*time.Second, "measured load per run")
	fs.DurationVar(&c.warmup, "warmup", 2*time.Second, "unmeasured load before each measured run (0 = none)")
	fs.IntVar(&c.concurrency, "concurrency", 4, "concurrent senders")
	fs.IntVar(&c.pool, "pool", defaultPoolSize, "distinct pre-built request bodies")
	fs.StringVar(&c.out, "out", "bench/results", "directory for results.md, results.svg and results.json")
	fs.StringVar(&scen, "scenarios", "all", "comma-separated, some of: "+scenarioNames()+" (split: vmagent splits with one "+
		"-remoteWrite.url per tenant; split_multitenant: vmagent forwards to /insert/multitenant and leaves the split to vminsert; "+
		"import, import_metric_format: the same load as JSON lines to /api/v1/import)")
	fs.BoolVar(&c.importGzip, "import-gzip", false, "the import scenarios send their JSON lines gzip-compressed (default: uncompressed, as vmanomaly does)")
	fs.StringVar(&decode, "sink-decode", "fast", "the in-process sink's protobuf decoder: fast (wire walker, tested against prompb) or prompb")
	fs.DurationVar(&c.startTimeout, "start-timeout", 20*time.Second, "how long a proxy may take to answer /health")
	fs.DurationVar(&c.deliveryTimeout, "delivery-timeout", 60*time.Second, "how long to wait for acknowledged samples to reach the sink")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if err := c.sweepDefaults(set, &scen); err != nil {
		return nil, err
	}
	var err error
	if c.scenarios, err = selectScenarios(scen); err != nil {
		return nil, usageErrorf("%v", err)
	}
	if c.workload, err = wf.Resolve(); err != nil {
		return nil, usageErrorf("%v", err)
	}
	c.points = []sweepPoint{{Distinct: c.workload.DistinctSeries(), Churn: c.workload.Churn}}
	if c.sweep {
		if c.points, err = parseSweep(sweepDistinct, sweepChurn, c.workload.Series); err != nil {
			return nil, usageErrorf("%v", err)
		}
	}
	if err := c.checkScenarios(); err != nil {
		return nil, err
	}
	return c, c.checkRun(decode)
}

// sweepDefaults refuses flags that -sweep sets per point or that need
// -sweep, and applies the sweep's defaults of the flags not given.
func (c *compareConfig) sweepDefaults(set map[string]bool, scen *string) error {
	switch {
	case !c.sweep && (set["sweep-distinct"] || set["sweep-churn"]):
		return usageErrorf("-sweep-distinct and -sweep-churn list the points of a sweep: add -sweep")
	case c.sweep && (set["distinct"] || set["churn"]):
		return usageErrorf("-sweep sets -distinct and -churn at each point: leave them out and list the points " +
			"with -sweep-distinct and -sweep-churn")
	case !c.sweep:
		return nil
	}
	if !set["scenarios"] {
		*scen = defaultSweepScenarios
	}
	if !set["duration"] {
		c.duration = sweepDuration
	}
	return nil
}

// checkScenarios refuses scenarios the workload cannot serve and names
// the split scenarios after the tenant count.
func (c *compareConfig) checkScenarios() error {
	for i := range c.scenarios {
		if c.scenarios[i].MetricFormat && !c.workload.hasLabel("for") {
			return usageErrorf("the metric_format scenario needs series with a for label (metric_format applies to " +
				"those by default, see routing.format_match): add -query-keys N, or leave metric_format out of -scenarios")
		}
		if !c.scenarios[i].Split {
			continue
		}
		if !c.workload.hasLabel("vm_account_id") {
			return usageErrorf("the split scenario needs series with tenant labels: add -tenants N, " +
				"or choose -scenarios passthrough,metric_format")
		}
		c.scenarios[i].Title = fmt.Sprintf(c.scenarios[i].Title, c.workload.Tenants)
	}
	return nil
}

// checkRun validates the flags of the runs themselves.
func (c *compareConfig) checkRun(decode string) error {
	c.sinkFast = decode == "fast"
	switch {
	case decode != "fast" && decode != "prompb":
		return usageErrorf("-sink-decode %q: want fast or prompb", decode)
	case c.scoreproxy == "" && c.vmagent == "":
		return usageErrorf("give -scoreproxy BIN and/or -vmagent BIN")
	case c.rounds < 1 || c.rounds > 20:
		return usageErrorf("-rounds %d: want 1..20", c.rounds)
	case c.duration <= 0 || c.duration > maxLoadDuration || c.warmup < 0 || c.warmup > time.Minute:
		return usageErrorf("-duration %s (want up to %s), -warmup %s (want up to 1m)", c.duration, maxLoadDuration, c.warmup)
	case c.concurrency < 1 || c.concurrency > 256 || c.pool < 1:
		return usageErrorf("-concurrency %d (want 1..256), -pool %d (want >= 1)", c.concurrency, c.pool)
	}
	return checkBinaries(c.scoreproxy, c.vmagent)
}

// checkBinaries fails early if a given binary is missing or not executable.
func checkBinaries(bins ...string) error {
	for _, b := range bins {
		if b == "" {
			continue
		}
		st, err := os.Stat(b)
		if err != nil {
			return usageErrorf("%v", err)
		}
		if st.IsDir() || st.Mode()&0o111 == 0 {
			return usageErrorf("%s is not an executable file", b)
		}
	}
	return nil
}

// compareCommand implements "bench compare".
func compareCommand(args []string, stdout io.Writer) error {
	cfg, err := parseCompareFlags(args)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	tmp, err := os.MkdirTemp("", "scoreproxy-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	fmt.Fprintln(stdout, cfg.describeEstimate())
	results, points, err := cfg.runAll(ctx, tmp, stdout)
	if err != nil {
		return err
	}
	rep := newReport(cfg, points, results)
	if err := rep.write(cfg.out); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\n%s\nwrote %s/results.md, results.svg, results.json\n", rep.markdownTables(), cfg.out)
	return failures(results)
}

// importFormat is the body format of the import scenarios.
func (c *compareConfig) importFormat() BodyFormat {
	if c.importGzip {
		return FormatImportGzip
	}
	return FormatImport
}

// bodyFormat is the format of the load of scenario sc.
func (c *compareConfig) bodyFormat(sc Scenario) BodyFormat {
	if sc.Import {
		return c.importFormat()
	}
	return FormatRemoteWrite
}

// buildPools builds a pool of workload w in each format the scenarios
// send, all with the same series and samples (see BuildPoolFormat).
func (c *compareConfig) buildPools(w Workload, end time.Time) (map[BodyFormat]*Pool, error) {
	pools := map[BodyFormat]*Pool{}
	for _, sc := range c.scenarios {
		f := c.bodyFormat(sc)
		if pools[f] != nil {
			continue
		}
		p, err := BuildPoolFormat(w, c.pool, end, f)
		if err != nil {
			return nil, err
		}
		pools[f] = p
	}
	return pools, nil
}

// proxySpec is one proxy under test.
type proxySpec struct{ name, bin string }

// proxies lists the proxies to run, in the order of the given round: the
// order alternates so neither proxy always runs on a cooler machine.
func (c *compareConfig) proxies(round int) []proxySpec {
	var ps []proxySpec
	if c.scoreproxy != "" {
		ps = append(ps, proxySpec{"scoreproxy", c.scoreproxy})
	}
	if c.vmagent != "" {
		ps = append(ps, proxySpec{"vmagent", c.vmagent})
	}
	if round%2 == 0 && len(ps) == 2 {
		ps[0], ps[1] = ps[1], ps[0]
	}
	return ps
}

// runAll runs every point, scenario, round and proxy, and returns the
// results in run order and what each point sent. Each point has its own
// pools, freed before the next point's are built.
func (c *compareConfig) runAll(ctx context.Context, tmp string, stdout io.Writer) ([]RunResult, []PointInfo, error) {
	var results []RunResult
	var infos []PointInfo
	for _, pt := range c.points {
		w := c.workloadAt(pt)
		pools, err := c.buildPools(w, time.Now())
		if err != nil {
			return nil, nil, err
		}
		info := c.pointInfo(pt, w, pools)
		info.describe(stdout, w)
		rs, err := c.runPoint(ctx, pointEnv{tmp: tmp, point: info.Label, w: w, pools: pools}, stdout)
		if err != nil {
			return nil, nil, err
		}
		results, infos = append(results, rs...), append(infos, info)
		clear(pools)
		debug.FreeOSMemory()
	}
	return results, infos, nil
}

// pointEnv is what the runs of one point share.
type pointEnv struct {
	tmp, point string
	w          Workload
	pools      map[BodyFormat]*Pool
}

// runPoint runs every scenario, round and proxy at one point, each
// scenario with its own in-process sink.
func (c *compareConfig) runPoint(ctx context.Context, pe pointEnv, stdout io.Writer) ([]RunResult, error) {
	var results []RunResult
	for _, sc := range c.scenarios {
		sinkCtx, cancel := context.WithCancel(ctx)
		sink := NewSink(204, 0, c.sinkFast)
		sinkURL, err := serveSink(sinkCtx, sink)
		if err != nil {
			cancel()
			return nil, err
		}
		for round := 1; round <= c.rounds; round++ {
			for _, p := range c.proxies(round) {
				if ctx.Err() != nil {
					cancel()
					return nil, ctx.Err()
				}
				r := c.runOne(ctx, runEnv{tmp: pe.tmp, point: pe.point, sc: sc, proxy: p, round: round, sink: sink, sinkURL: sinkURL,
					w: pe.w, pool: pe.pools[c.bodyFormat(sc)]})
				fmt.Fprintln(stdout, r.line())
				results = append(results, r)
			}
		}
		cancel()
	}
	return results, nil
}

// failures returns an error naming every failed run, or nil.
func failures(results []RunResult) error {
	var msgs []string
	for _, r := range results {
		if r.Failure != "" {
			msgs = append(msgs, fmt.Sprintf("%s/%s round %d: %s", r.Scenario, r.Proxy, r.Round, r.Failure))
		}
	}
	if len(msgs) == 0 {
		return nil
	}
	return errors.New("FAILED runs (their numbers are excluded from the medians):\n  " + strings.Join(msgs, "\n  "))
}
