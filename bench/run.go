package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"
)

// RunResult is the measurement of one proxy in one round of one scenario.
type RunResult struct {
	// Point names the sweep point; empty outside a sweep.
	Point    string `json:"point,omitempty"`
	Scenario string `json:"scenario"`
	Proxy    string `json:"proxy"`
	Round    int    `json:"round"`
	// CPUSeconds is the proxy's utime+stime from the start of the measured
	// load until every acknowledged sample had reached the sink.
	CPUSeconds    float64 `json:"cpu_seconds"`
	UserSeconds   float64 `json:"user_seconds"`
	SystemSeconds float64 `json:"system_seconds"`
	// WindowSeconds is the wall time of that same window.
	WindowSeconds float64 `json:"window_seconds"`
	AckedSamples  int64   `json:"acked_samples"`
	// Delivered is the number of samples the sink accepted in the window.
	Delivered           int64            `json:"delivered_samples"`
	SamplesPerCPUSecond float64          `json:"samples_per_cpu_second"`
	SamplesPerSecond    float64          `json:"samples_per_second"`
	PeakRSSBytes        int64            `json:"peak_rss_bytes"`
	P50Ms               float64          `json:"p50_ms"`
	P99Ms               float64          `json:"p99_ms"`
	Errors              map[string]int64 `json:"errors_by_status,omitempty"`
	// Failure says why the run does not count; empty for a good run.
	Failure string `json:"failure,omitempty"`
	// ackedTenants is the samples per tenant of the acknowledged requests.
	ackedTenants map[string]int64
}

// line renders the result as one progress line.
func (r RunResult) line() string {
	name := r.Scenario
	if r.Point != "" {
		name = r.Point + " " + name
	}
	if r.Failure != "" {
		return fmt.Sprintf("%-13s round %d %-10s FAILED: %s", name, r.Round, r.Proxy, r.Failure)
	}
	return fmt.Sprintf("%-13s round %d %-10s %s samples/CPU-s  %.2f CPU-s  %s samples/s  RSS %.0f MB  p50 %.2f ms  p99 %.2f ms  delivered %d/%d",
		name, r.Round, r.Proxy, humanCount(r.SamplesPerCPUSecond), r.CPUSeconds, humanCount(r.SamplesPerSecond),
		float64(r.PeakRSSBytes)/(1<<20), r.P50Ms, r.P99Ms, r.Delivered, r.AckedSamples)
}

// runEnv is what one run needs besides the flags.
type runEnv struct {
	tmp     string
	point   string
	sc      Scenario
	proxy   proxySpec
	round   int
	sink    *Sink
	sinkURL string
	w       Workload
	pool    *Pool
}

// runOne starts the proxy, warms it up, measures one load window and stops
// the proxy. Problems are reported in the result's Failure.
func (c *compareConfig) runOne(ctx context.Context, env runEnv) RunResult {
	res := RunResult{Point: env.point, Scenario: env.sc.Name, Proxy: env.proxy.name, Round: env.round}
	if err := c.measure(ctx, env, &res); err != nil {
		res.Failure = err.Error()
	}
	return res
}

// measure fills res; it returns the reason the run failed.
func (c *compareConfig) measure(ctx context.Context, env runEnv, res *RunResult) error {
	dir, err := os.MkdirTemp(env.tmp, fmt.Sprintf("%s-%s-%d-", env.sc.Name, env.proxy.name, env.round))
	if err != nil {
		return err
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	listen := "127.0.0.1:" + strconv.Itoa(port)
	args, err := c.proxyArgs(env, listen, dir)
	if err != nil {
		return err
	}
	ch, err := startChild(env.proxy.name, env.proxy.bin, args, dir)
	if err != nil {
		return err
	}
	defer ch.stop(10 * time.Second)
	if err := ch.waitReady("http://"+listen+"/health", c.startTimeout); err != nil {
		return err
	}
	err = c.window(ctx, env, ch, "http://"+listen+env.sc.writePath(), res)
	if err == nil {
		err = c.verify(env, res)
	}
	if err != nil {
		return fmt.Errorf("%w\n  last lines of the %s log:\n%s", err, env.proxy.name, ch.logTail(10))
	}
	return nil
}

// proxyArgs writes the proxy's config into dir and returns its arguments.
func (c *compareConfig) proxyArgs(env runEnv, listen, dir string) ([]string, error) {
	if env.proxy.name == "vmagent" {
		return env.sc.vmagentArgs(listen, env.sinkURL, dir, env.pool.TenantKeys())
	}
	cfgPath := filepath.Join(dir, "scoreproxy.yaml")
	if err := os.WriteFile(cfgPath, []byte(env.sc.scoreproxyConfig(listen, env.sinkURL)), 0o644); err != nil {
		return nil, err
	}
	return []string{"-config", cfgPath}, nil
}

// window runs the warm-up, then the measured load, waits for delivery and
// reads the proxy's CPU time and peak RSS.
func (c *compareConfig) window(ctx context.Context, env runEnv, ch *child, url string, res *RunResult) error {
	lc := LoadConfig{URL: url, Concurrency: c.concurrency, Timeout: 30 * time.Second}
	if c.warmup > 0 {
		env.sink.Reset()
		lc.Duration = c.warmup
		warm := RunLoad(ctx, lc, env.pool)
		if _, err := waitDelivered(ctx, env.sink, warm.AckedSamples, c.deliveryTimeout); err != nil {
			return fmt.Errorf("warm-up: %w", err)
		}
	}
	env.sink.Reset()
	cpu0, err := readProcCPU(ch.pid())
	if err != nil {
		return err
	}
	t0 := time.Now()
	lc.Duration = c.duration
	sum := RunLoad(ctx, lc, env.pool)
	res.AckedSamples, res.P50Ms, res.P99Ms, res.Errors = sum.AckedSamples, sum.LatencyP50Ms, sum.LatencyP99Ms, sum.ErrorsByStatus
	res.ackedTenants = env.pool.AckedTenantSamples(sum.ackedBodies)
	res.SamplesPerSecond = sum.SamplesPerSecond
	res.Delivered, err = waitDelivered(ctx, env.sink, sum.AckedSamples, c.deliveryTimeout)
	cpu1, errCPU := readProcCPU(ch.pid())
	res.WindowSeconds = time.Since(t0).Seconds()
	if errCPU != nil {
		return errCPU
	}
	used := cpu1.Sub(cpu0)
	res.CPUSeconds = used.Seconds()
	res.UserSeconds = ProcCPU{UserTicks: used.UserTicks}.Seconds()
	res.SystemSeconds = ProcCPU{SystemTicks: used.SystemTicks}.Seconds()
	if res.CPUSeconds > 0 {
		res.SamplesPerCPUSecond = float64(res.Delivered) / res.CPUSeconds
	}
	if res.PeakRSSBytes, errCPU = readPeakRSS(ch.pid()); errCPU != nil {
		return errCPU
	}
	return err
}

// settleTime is how long verify waits after delivery before it reads the
// sink, so late duplicates are caught too (outside the CPU window).
const settleTime = 500 * time.Millisecond

// verify checks the sink against the acknowledged samples and the scenario.
func (c *compareConfig) verify(env runEnv, res *RunResult) error {
	time.Sleep(settleTime)
	counts := env.sink.Counts()
	noErrors := len(res.Errors) == 0
	switch {
	case res.AckedSamples == 0:
		return fmt.Errorf("no sample acknowledged; load errors: %v", res.Errors)
	case counts.Samples < res.AckedSamples:
		return fmt.Errorf("sink received %d of %d acknowledged samples", counts.Samples, res.AckedSamples)
	case counts.Samples > res.AckedSamples && noErrors:
		return fmt.Errorf("sink received %d samples, more than the %d acknowledged: duplicated delivery", counts.Samples, res.AckedSamples)
	case counts.DecodeErrors > 0:
		return fmt.Errorf("sink refused %d malformed requests", counts.DecodeErrors)
	}
	exact := noErrors && counts.Samples == res.AckedSamples
	return env.sc.expect(env.proxy.name, env.w.hasLabel("vm_account_id")).check(counts, res.ackedTenants, exact)
}

// waitDelivered polls the sink until it has accepted at least want samples
// or timeout passes, and returns the samples accepted.
func waitDelivered(ctx context.Context, sink *Sink, want int64, timeout time.Duration) (int64, error) {
	deadline := time.Now().Add(timeout)
	for {
		got := sink.Samples()
		if got >= want {
			return got, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return got, fmt.Errorf("sink received %d of %d acknowledged samples within %s", got, want, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// sortedKeys returns the keys of m in order.
func sortedKeys(m map[string]int64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
