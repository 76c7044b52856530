package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/prometheus/prometheus/prompb"

	"github.com/scoreproxy/scoreproxy/config"
	"github.com/scoreproxy/scoreproxy/internal/app"
)

// The demo is the one place where bench imports the proxy: it runs
// scoreproxy in this process through internal/app, the same wiring and HTTP
// server as the binary (cmd/scoreproxy calls app.Serve, the demo
// app.ServeListener), so that a new user sees the product work with nothing
// but Go installed. load, sink and compare still only talk HTTP to
// separate processes.

// demoOptions are the flags of "bench demo".
type demoOptions struct {
	configPath  string
	requests    int64
	concurrency int
	lines       int
}

// demoCommand implements "bench demo".
func demoCommand(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stdout)
	var o demoOptions
	fs.StringVar(&o.configPath, "config", "examples/split-tenants.yaml",
		"scoreproxy config to run (its datasource_url and listen are replaced by in-process ones)")
	fs.Int64Var(&o.requests, "requests", 200, "remote-write requests the model runner sends (1..100000)")
	fs.IntVar(&o.concurrency, "concurrency", 4, "concurrent senders")
	fs.IntVar(&o.lines, "lines", 3, "series shown per tenant endpoint")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "usage: go run ./bench demo [flags]\n\n"+
			"Runs scoreproxy in this process with an example config, an in-process counting upstream\n"+
			"standing in for vminsert, and a model-runner load for three tenants plus a series without\n"+
			"tenant labels and one with an invalid tenant; prints what each tenant endpoint received,\n"+
			"the tenant warnings by case and the throughput.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case fs.NArg() > 0:
		return usageErrorf("unexpected argument %q", fs.Arg(0))
	case o.requests < 1 || o.requests > 100000:
		return usageErrorf("-requests %d: want 1..100000", o.requests)
	case o.concurrency < 1 || o.concurrency > 64:
		return usageErrorf("-concurrency %d: want 1..64", o.concurrency)
	case o.lines < 0 || o.lines > 100:
		return usageErrorf("-lines %d: want 0..100", o.lines)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return runDemo(ctx, o, stdout)
}

// demoWorkload is the model runner's regular output: the five outputs of
// input series spread over tenants 1, 2 and 3, with few labels so the
// printed series stay readable.
var demoWorkload = Workload{Preset: "anomaly", Series: 300, Samples: 2, Labels: 6, Tenants: 3, QueryKeys: 3}

// demoOddSeries are added to every request: one without tenant labels (case
// 3 of the writer docs in multitenant mode) and one whose vm_account_id is
// not a number. Both go to tenant 0:0, as vminsert would send them.
var demoOddSeries = [][]prompb.Label{
	{{Name: "__name__", Value: "anomaly_score"}, {Name: "for", Value: "batch_job_runtime"},
		{Name: "instance", Value: "batch-runner:9100"}, {Name: "job", Value: "cron"}},
	{{Name: "__name__", Value: "yhat"}, {Name: "for", Value: "checkout_latency"},
		{Name: "instance", Value: "shop-7:8080"}, {Name: "job", Value: "shop"}, {Name: "vm_account_id", Value: "abc"}},
}

// runDemo runs proxy, upstream and load, then prints the report. It fails
// when a request was not acknowledged or a sample did not arrive.
func runDemo(ctx context.Context, o demoOptions, out io.Writer) error {
	path, err := findUpwards(o.configPath)
	if err != nil {
		return err
	}
	cfg, cfgWarnings, err := config.Load(path)
	if err != nil {
		return fmt.Errorf("invalid config:\n%w", err)
	}
	upstream, err := startDemoUpstream(o.lines)
	if err != nil {
		return err
	}
	defer upstream.close()
	proxyLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	cfg.Writer.DatasourceURL, cfg.Listen = upstream.url, proxyLn.Addr().String()
	logs := newWarningLog()
	proxyURL := "http://" + cfg.Listen
	serveCtx, stopProxy := context.WithCancel(ctx)
	defer stopProxy()
	served := make(chan error, 1)
	go func() { served <- app.ServeListener(serveCtx, cfg, slog.New(logs), proxyLn) }()
	if err := waitReady(ctx, proxyURL, served); err != nil {
		return err
	}
	before, err := tenantWarnings(proxyURL)
	if err != nil {
		return err
	}
	pool, err := buildDemoPool(int(min(o.requests, 1000)))
	if err != nil {
		return err
	}
	load := LoadConfig{URL: proxyURL + "/api/v1/write", Concurrency: o.concurrency, Requests: o.requests, Timeout: 30 * time.Second}
	if err := load.Validate(); err != nil {
		return err
	}
	sum := RunLoad(ctx, load, pool)
	after, err := tenantWarnings(proxyURL)
	if err != nil {
		return err
	}
	stopProxy()
	if err := <-served; err != nil {
		return fmt.Errorf("scoreproxy: %w", err)
	}
	r := demoReport{configPath: o.configPath, cfg: cfg, cfgWarnings: cfgWarnings, proxyURL: proxyURL, upstream: upstream,
		summary: sum, pool: pool, warnings: diffCounts(before, after), logs: logs}
	r.write(out)
	return r.check()
}

// buildDemoPool builds n bodies of demoWorkload plus demoOddSeries.
func buildDemoPool(n int) (*Pool, error) {
	b := newBodyBuilder(demoWorkload, n, time.Now(), FormatRemoteWrite, newSeriesPlan(demoWorkload, n))
	for _, ls := range demoOddSeries {
		b.req.Timeseries = append(b.req.Timeseries, prompb.TimeSeries{Labels: ls, Samples: make([]prompb.Sample, demoWorkload.Samples)})
	}
	first, err := b.build(0)
	if err != nil {
		return nil, err
	}
	p := &Pool{Bodies: make([][]byte, n), SamplesPerBody: len(b.req.Timeseries) * demoWorkload.Samples,
		RawBytes: int64(first.raw), CompressedBytes: int64(len(first.body))}
	p.Bodies[0] = first.body
	return p, p.fill(b)
}

// waitReady polls /ready until the proxy answers 200, Serve fails, or 10 s pass.
func waitReady(ctx context.Context, proxyURL string, served <-chan error) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(proxyURL + "/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case err := <-served:
			return fmt.Errorf("scoreproxy did not start: %w", err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return errors.New("scoreproxy did not become ready within 10s (GET /ready)")
		}
	}
}

// findUpwards returns path if it exists, else the first match of a relative
// path in the parent directories, so the demo also runs from a subdirectory
// of the repository (go test runs in bench/).
func findUpwards(path string) (string, error) {
	if _, err := os.Stat(path); err == nil || filepath.IsAbs(path) {
		return path, err
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for range 5 {
		dir = filepath.Dir(dir)
		candidate := filepath.Join(dir, path)
		if _, err := os.Stat(candidate); err == nil {
			return candidate, nil
		}
	}
	return "", fmt.Errorf("config %q not found here or in the parent directories: run from the repository root or pass -config", path)
}
