package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"

	"github.com/scoreproxy/scoreproxy/internal/testenv"
)

// reloadConfig is a single-node scoreproxy config whose metric_format names
// outputs with prefix; the reload test rewrites it with another prefix.
// {{LISTEN}} is kept so the same text serves StartScoreproxy and the
// rewrites (which put the running address in its place).
const reloadConfig = `listen: {{LISTEN}}
writer:
  datasource_url: %s
  metric_format:
    __name__: "%s$VAR"
    for: "$QUERY_KEY"
server:
  health_check_interval: 1s
`

// reloadInvalidConfig breaks the rule of the writer docs that __name__ must
// contain $VAR: every output would get the same name.
const reloadInvalidConfig = `listen: {{LISTEN}}
writer:
  datasource_url: %s
  metric_format:
    __name__: "x"
    for: "$QUERY_KEY"
server:
  health_check_interval: 1s
`

// reloadRequest is one model output series of the reload test with a single
// sample at ts; value tells the pushes apart.
func reloadRequest(ts int64, value float64) *prompb.WriteRequest {
	return &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
		Labels:  testenv.Labels("__name__", "anomaly_score", "for", "cpu_rate", "host", "a", "test", "reload"),
		Samples: []prompb.Sample{{Timestamp: ts, Value: value}},
	}}}
}

// reloadStored is the series VictoriaMetrics must hold under name.
func reloadStored(name string, ts []int64, values []float64) testenv.Series {
	return testenv.Series{
		Labels:     map[string]string{"__name__": name, "for": "cpu_rate", "host": "a", "test": "reload"},
		Timestamps: ts,
		Values:     values,
	}
}

// rewriteConfig replaces the running scoreproxy's config file with text, in
// which {{LISTEN}} becomes the address it listens on (a changed listen key
// would be refused by the reload).
func rewriteConfig(t *testing.T, p *testenv.Scoreproxy, text string) {
	t.Helper()
	text = strings.ReplaceAll(text, "{{LISTEN}}", p.Addr)
	if err := os.WriteFile(p.ConfigPath, []byte(text), 0o644); err != nil {
		t.Fatalf("rewrite %s: %v", p.ConfigPath, err)
	}
}

// reloadCounts is the reload state /metrics reports.
type reloadCounts struct {
	successful, succeeded, failed float64
}

func scrapeReload(t *testing.T, p *testenv.Scoreproxy) reloadCounts {
	t.Helper()
	m := scrape(t, p.URL+"/metrics")
	var c reloadCounts
	var ok [3]bool
	c.successful, ok[0] = m.Sum("scoreproxy_config_last_reload_successful", nil)
	c.succeeded, ok[1] = m.Sum("scoreproxy_config_reloads_total", map[string]string{"result": "success"})
	c.failed, ok[2] = m.Sum("scoreproxy_config_reloads_total", map[string]string{"result": "failure"})
	if !ok[0] || !ok[1] || !ok[2] {
		t.Fatalf("/metrics lacks a reload metric (last_reload_successful, reloads_total{result=success|failure}): found %v", ok)
	}
	return c
}

// sighupAndWait sends SIGHUP to the scoreproxy process (by pid) and waits,
// bounded, until /metrics shows the reload done: done says when.
func sighupAndWait(t *testing.T, p *testenv.Scoreproxy, done func(reloadCounts) bool) reloadCounts {
	t.Helper()
	if err := syscall.Kill(p.Pid(), syscall.SIGHUP); err != nil {
		t.Fatalf("SIGHUP to scoreproxy (pid %d): %v", p.Pid(), err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		c := scrapeReload(t, p)
		if done(c) {
			return c
		}
		if p.Exited() {
			t.Fatalf("scoreproxy exited after SIGHUP")
		}
		if time.Now().After(deadline) {
			t.Fatalf("no reload seen on /metrics within 15s of SIGHUP: %+v", c)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// postReload sends POST /-/reload and returns the status and body.
func postReload(t *testing.T, p *testenv.Scoreproxy) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.URL+"/-/reload", nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST /-/reload: %v", err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(res.Body, 64<<10))
	return res.StatusCode, string(body)
}

// TestReloadOnSIGHUP runs the real binary in front of a real VictoriaMetrics
// and changes metric_format while it runs: SIGHUP with a valid file renames
// the next push, SIGHUP with an invalid file is refused (logged with the bad
// key, counted, and the previous naming keeps running), and POST /-/reload
// answers 400 for an invalid file and 200 for a valid one.
func TestReloadOnSIGHUP(t *testing.T) {
	t.Parallel()
	bin := scoreproxy(t)
	vm := testenv.StartVictoriaMetrics(t)
	p := testenv.StartScoreproxy(t, bin, fmt.Sprintf(reloadConfig, vm.URL, "old_"))
	p.WaitReady(t, 15*time.Second)
	ts := recentMinute(30 * time.Minute)
	at := func(i int) int64 { return ts + int64(i)*60_000 }
	write := p.URL + "/api/v1/write"
	check := func(want ...testenv.Series) {
		t.Helper()
		vm.WaitExport(t, `{test="reload"}`, 30*time.Second, func(got []testenv.Series) error {
			return diffSeries(want, got, 0)
		})
	}

	push(t, write, reloadRequest(at(0), 1))
	start := scrapeReload(t, p)
	if start.successful != 1 {
		t.Fatalf("scoreproxy_config_last_reload_successful = %v at start, want 1", start.successful)
	}

	// A valid file: the next push is named new_*, the first one stays old_*.
	rewriteConfig(t, p, fmt.Sprintf(reloadConfig, vm.URL, "new_"))
	c := sighupAndWait(t, p, func(c reloadCounts) bool { return c.succeeded > start.succeeded })
	if c.successful != 1 || c.failed != start.failed {
		t.Fatalf("after a valid reload: %+v, want successful 1 and no new failure (start %+v)", c, start)
	}
	push(t, write, reloadRequest(at(1), 2))
	check(reloadStored("old_anomaly_score", []int64{at(0)}, []float64{1}),
		reloadStored("new_anomaly_score", []int64{at(1)}, []float64{2}))

	// An invalid file: refused, logged naming the key, the process keeps
	// running with new_*.
	rewriteConfig(t, p, fmt.Sprintf(reloadInvalidConfig, vm.URL))
	bad := sighupAndWait(t, p, func(x reloadCounts) bool { return x.failed > c.failed })
	if bad.successful != 0 || bad.succeeded != c.succeeded {
		t.Errorf("after an invalid reload: %+v, want successful 0 and no new success (before %+v)", bad, c)
	}
	if p.Exited() {
		t.Fatal("scoreproxy exited after an invalid reload")
	}
	if logs, ok := p.WaitLogs(5*time.Second, "config reload failed", "writer.metric_format.__name__", "has no $VAR"); !ok {
		t.Errorf("the log does not say %q, naming %q (%q), after an invalid reload; log:\n%s",
			"config reload failed", "writer.metric_format.__name__", "has no $VAR", logs)
	}
	push(t, write, reloadRequest(at(2), 3))
	check(reloadStored("old_anomaly_score", []int64{at(0)}, []float64{1}),
		reloadStored("new_anomaly_score", []int64{at(1), at(2)}, []float64{2, 3}))

	// POST /-/reload: 400 naming the key for the invalid file, 200 once valid.
	if code, body := postReload(t, p); code != http.StatusBadRequest || !strings.Contains(body, "writer.metric_format.__name__") {
		t.Errorf("POST /-/reload with an invalid file: %d %q, want 400 naming writer.metric_format.__name__", code, body)
	}
	rewriteConfig(t, p, fmt.Sprintf(reloadConfig, vm.URL, "post_"))
	if code, body := postReload(t, p); code != http.StatusOK {
		t.Fatalf("POST /-/reload with a valid file: %d %q, want 200", code, body)
	}
	if c := scrapeReload(t, p); c.successful != 1 {
		t.Errorf("scoreproxy_config_last_reload_successful = %v after POST /-/reload, want 1", c.successful)
	}
	push(t, write, reloadRequest(at(3), 4))
	check(reloadStored("old_anomaly_score", []int64{at(0)}, []float64{1}),
		reloadStored("new_anomaly_score", []int64{at(1), at(2)}, []float64{2, 3}),
		reloadStored("post_anomaly_score", []int64{at(3)}, []float64{4}))
}

// mixedConfig is one proxy for model outputs and ordinary scrape traffic:
// metric_format as in the writer docs, applied by the default format_match
// to series carrying `for`; relabel_configs drop job="noise" and add
// env="prod" to everything; write_relabel_configs remove `instance`.
const mixedConfig = `listen: {{LISTEN}}
writer:
  datasource_url: %s
  metric_format:
    __name__: "vmanomaly_$VAR"
    for: "$QUERY_KEY"
relabel_configs:
  - action: drop
    source_labels: [job]
    regex: noise
  - target_label: env
    replacement: prod
write_relabel_configs:
  - action: labeldrop
    regex: instance
server:
  health_check_interval: 1s
`

// mixedSeries is one input series of the mixed-traffic test and what
// VictoriaMetrics must hold for it (nil: dropped).
type mixedSeries struct {
	in, out []string // labels as name, value pairs
}

var mixedInputs = []mixedSeries{
	{ // model outputs: renamed, `for` kept
		in:  []string{"__name__", "anomaly_score", "for", "cpu_rate", "job", "vmanomaly", "instance", "model:8490", "host", "a"},
		out: []string{"__name__", "vmanomaly_anomaly_score", "for", "cpu_rate", "job", "vmanomaly", "host", "a", "env", "prod"},
	},
	{
		in:  []string{"__name__", "yhat", "for", "cpu_rate", "job", "vmanomaly", "instance", "model:8490", "host", "a"},
		out: []string{"__name__", "vmanomaly_yhat", "for", "cpu_rate", "job", "vmanomaly", "host", "a", "env", "prod"},
	},
	{
		in:  []string{"__name__", "anomaly_score", "for", "ingestion_rate", "host", "b"},
		out: []string{"__name__", "vmanomaly_anomaly_score", "for", "ingestion_rate", "host", "b", "env", "prod"},
	},
	{ // scrape series: names kept
		in:  []string{"__name__", "up", "job", "node", "instance", "node-a:9100"},
		out: []string{"__name__", "up", "job", "node", "env", "prod"},
	},
	{
		in:  []string{"__name__", "node_load1", "job", "node", "instance", "node-a:9100"},
		out: []string{"__name__", "node_load1", "job", "node", "env", "prod"},
	},
	{ // dropped by relabel_configs, with and without `for`
		in: []string{"__name__", "noise_total", "job", "noise", "instance", "noise:1"},
	},
	{
		in: []string{"__name__", "anomaly_score", "for", "noisy_query", "job", "noise"},
	},
}

// mixedRequest builds one request with every input series, two samples each.
func mixedRequest(ts int64) *prompb.WriteRequest {
	req := &prompb.WriteRequest{}
	for i, s := range mixedInputs {
		req.Timeseries = append(req.Timeseries, prompb.TimeSeries{
			Labels: testenv.Labels(s.in...),
			Samples: []prompb.Sample{
				{Timestamp: ts, Value: float64(i) + 0.25},
				{Timestamp: ts + 15_000, Value: -float64(i)*1.5 - 0.125},
			},
		})
	}
	return req
}

// mixedStored is what VictoriaMetrics must hold after req: the output labels
// of every kept input with its samples unchanged.
func mixedStored(req *prompb.WriteRequest) []testenv.Series {
	var want []testenv.Series
	for i, s := range mixedInputs {
		if s.out == nil {
			continue
		}
		x := fromPrompb(req.Timeseries[i : i+1])[0]
		x.Labels = map[string]string{}
		for j := 0; j < len(s.out); j += 2 {
			x.Labels[s.out[j]] = s.out[j+1]
		}
		want = append(want, x)
	}
	return want
}

// TestRelabelAndFormatMatchMixedTraffic sends one request mixing model
// outputs and scrape series through relabel_configs, metric_format (default
// format_match: series with `for`) and write_relabel_configs into a real
// VictoriaMetrics, and reads back exactly what each stage promises.
func TestRelabelAndFormatMatchMixedTraffic(t *testing.T) {
	t.Parallel()
	vm, p := scoreproxyBeforeVM(t, mixedConfig)

	// The same series twice: the first request computes every rewrite, the
	// second takes them (and the drops) from the rewrite cache.
	ts := recentMinute(25 * time.Minute)
	var want []testenv.Series
	for _, at := range []int64{ts, ts + 60_000} {
		req := mixedRequest(at)
		push(t, p.URL+"/api/v1/write", req)
		want = append(want, mixedStored(req)...)
	}
	// Everything VictoriaMetrics holds: nothing more (noise, instance) and
	// nothing less.
	vm.WaitExport(t, `{__name__=~".+"}`, 30*time.Second, func(got []testenv.Series) error {
		return diffSeries(mergeSeries(want), got, 0)
	})

	dropped := 0 // per request; two requests of two samples per series
	for _, s := range mixedInputs {
		if s.out == nil {
			dropped++
		}
	}
	m := scrape(t, p.URL+"/metrics")
	wantMetric(t, m, "scoreproxy_series_dropped_total", map[string]string{"stage": "relabel"}, float64(2*dropped))
	wantMetric(t, m, "scoreproxy_samples_dropped_total", map[string]string{"stage": "relabel"}, float64(4*dropped))
	wantMetric(t, m, "scoreproxy_series_dropped_total", map[string]string{"stage": "write_relabel"}, 0)
}
