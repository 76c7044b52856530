package main

import (
	"fmt"
	"io"
	"runtime"
	"strings"

	"github.com/scoreproxy/scoreproxy/config"
)

// demoReport is everything "bench demo" prints once the load is over.
type demoReport struct {
	configPath  string
	cfg         *config.Config
	cfgWarnings []string
	proxyURL    string
	upstream    *demoUpstream
	summary     *Summary
	pool        *Pool
	warnings    map[string]int64 // tenant warnings by case raised during the load
	logs        *warningLog
}

// demoCaseNames say what each warning case of tenantroute means.
var demoCaseNames = map[string]string{
	"3":       "multitenant, series without vm_account_id",
	"4":       "fixed tenant or single node, series with vm_account_id",
	"invalid": "tenant label is not a number",
}

func (r *demoReport) write(out io.Writer) {
	w := r.cfg.Writer
	fmt.Fprintf(out, "scoreproxy demo: %s (writer.tenant_id: %q, routing.split_tenants: %v, metric_format: {%s})\n",
		r.configPath, w.TenantID, r.cfg.Routing.SplitTenants, formatMap(w.MetricFormat))
	fmt.Fprintf(out, "  scoreproxy  %s/api/v1/write (in this process: internal/app, the binary's wiring and HTTP server)\n", r.proxyURL)
	fmt.Fprintf(out, "  upstream    %s (in-process counting sink standing in for vminsert)\n", r.upstream.url)
	fmt.Fprintf(out, "  load        %d requests of %d series x %d samples from a model runner, %d senders: outputs of tenants 1, 2 and 3,\n"+
		"              one series without vm_account_id, one with vm_account_id=\"abc\"\n",
		r.summary.Requests, r.pool.SamplesPerBody/demoWorkload.Samples, demoWorkload.Samples, r.summary.Concurrency)
	for _, cw := range r.cfgWarnings {
		fmt.Fprintf(out, "  config warning: %s\n", cw)
	}
	r.writeEndpoints(out)
	r.writeWarnings(out)
	s := r.summary
	fmt.Fprintf(out, "\nThroughput: %d samples in %d requests (%d acknowledged) in %.2f s: %s samples/s end to end\n",
		s.AckedSamples, s.Requests, s.AckedRequests, s.DurationSeconds, humanCount(s.SamplesPerSecond))
	fmt.Fprintf(out, "  (proxy, model runner and sink share this process and its %d CPUs; BENCHMARKS.md compares scoreproxy with vmagent)\n",
		runtime.GOMAXPROCS(0))
	if err := r.check(); err != nil {
		fmt.Fprintf(out, "FAILED: %v\n", err)
		return
	}
	fmt.Fprintf(out, "OK: every acknowledged sample reached its tenant endpoint.\n")
}

// formatMap renders metric_format as YAML flow mapping entries, __name__ first.
func formatMap(m map[string]string) string {
	var parts []string
	if v, ok := m["__name__"]; ok {
		parts = append(parts, fmt.Sprintf("__name__: %q", v))
	}
	for _, k := range sortedMapKeys(m) {
		if k != "__name__" {
			parts = append(parts, fmt.Sprintf("%s: %q", k, m[k]))
		}
	}
	return strings.Join(parts, ", ")
}

// writeEndpoints prints what each upstream path received.
func (r *demoReport) writeEndpoints(out io.Writer) {
	counts := r.upstream.sink.Counts()
	fmt.Fprintf(out, "\nWhat each tenant endpoint of the upstream received (names from metric_format")
	if r.cfg.Routing.SplitTenants {
		fmt.Fprint(out, ", tenant labels removed")
	}
	fmt.Fprintln(out, "):")
	for _, path := range sortedMapKeys(counts.Paths) {
		c := counts.Paths[path]
		fmt.Fprintf(out, "  %s  %d requests, %d series, %d samples\n", path, c.Requests, c.Series, c.Samples)
		for _, s := range r.upstream.keptSeries(path) {
			fmt.Fprintf(out, "    %s\n", s)
		}
	}
}

// writeWarnings prints the tenant warnings by case and other log warnings.
func (r *demoReport) writeWarnings(out io.Writer) {
	fmt.Fprintln(out, "\nTenant warnings raised (scoreproxy_tenant_warnings_total from /metrics; first log line of each case):")
	for _, c := range sortedKeys(r.warnings) {
		fmt.Fprintf(out, "  case %-8s %6d  (%s)\n", c, r.warnings[c], demoCaseNames[c])
		if msg := r.logs.firstMessage(c); msg != "" && r.warnings[c] > 0 {
			fmt.Fprintf(out, "      %s\n", msg)
		}
	}
	if others := r.logs.others(); len(others) > 0 {
		fmt.Fprintln(out, "Other log warnings:")
		for _, o := range others {
			fmt.Fprintf(out, "  %s\n", o)
		}
	}
}

// check is the demo's own verdict: every request acknowledged and every
// acknowledged sample counted by the upstream.
func (r *demoReport) check() error {
	s := r.summary
	var problems []string
	if s.AckedRequests != s.Requests {
		problems = append(problems, fmt.Sprintf("%d of %d requests were not acknowledged: %s",
			s.Requests-s.AckedRequests, s.Requests, s.errorsText()))
	}
	if got := r.upstream.sink.Samples(); got != s.AckedSamples {
		problems = append(problems, fmt.Sprintf("the upstream counted %d samples, the proxy acknowledged %d", got, s.AckedSamples))
	}
	if len(problems) > 0 {
		return fmt.Errorf("%s", strings.Join(problems, "; "))
	}
	return nil
}
