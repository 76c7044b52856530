package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
)

// Scenario is one proxy job measured by compare: the same workload and the
// same counting sink, each proxy configured to do the equivalent job.
type Scenario struct {
	// Name is the identifier used by -scenarios and in the results.
	Name string
	// Title describes the job in the results table; a split scenario's
	// has a %d for the workload's tenant count (see parseCompareFlags).
	Title string
	// MetricFormat applies the seed example's metric_format (scoreproxy) or
	// the equivalent relabel rules (vmagent).
	MetricFormat bool
	// Split routes every series to its own tenant's /insert/A:B path with the
	// tenant labels removed, instead of one /insert/multitenant path.
	Split bool
	// VmagentMultitenant gives vmagent, in a split scenario, the job it can
	// do without relabeling per tenant: forward whole requests to
	// /insert/multitenant and leave the split to vminsert (which compare does
	// not run). Without it vmagent does the split itself, with one
	// remote-write URL per tenant, each keeping that tenant's series.
	VmagentMultitenant bool
	// Import sends the workload as VictoriaMetrics JSON lines to both
	// proxies' /api/v1/import instead of remote write to /api/v1/write.
	Import bool
}

// allScenarios are the scenarios of compare, in report order.
var allScenarios = []Scenario{
	{Name: "passthrough", Title: "pass-through, multitenant"},
	{Name: "metric_format", Title: "metric_format (seed example), multitenant", MetricFormat: true},
	{Name: "split", Title: "split across %d tenants", Split: true},
	{Name: "split_multitenant", Title: "split across %d tenants (vmagent: multitenant, no split)", Split: true, VmagentMultitenant: true},
	{Name: "import", Title: "JSON-lines import, pass-through, multitenant", Import: true},
	{Name: "import_metric_format", Title: "JSON-lines import, metric_format (seed example), multitenant", Import: true, MetricFormat: true},
}

// writePath is the path of the proxy the scenario's load goes to.
func (s Scenario) writePath() string {
	if s.Import {
		return "/api/v1/import"
	}
	return "/api/v1/write"
}

// scenarioNames lists the names of allScenarios for messages.
func scenarioNames() string {
	names := make([]string, len(allScenarios))
	for i, s := range allScenarios {
		names[i] = s.Name
	}
	return strings.Join(names, ", ")
}

// seedMetricFormat is the metric_format of the seed's writer config example.
var seedMetricFormat = [][2]string{
	{"__name__", "vmanomaly_$VAR"},
	{"for", "$QUERY_KEY"},
	{"run", "test_metric_format"},
	{"config", "io_vm_single.yaml"},
}

// selectScenarios returns copies of the scenarios named in a
// comma-separated list (the caller sets their titles).
func selectScenarios(list string) ([]Scenario, error) {
	if list == "" || list == "all" {
		return slices.Clone(allScenarios), nil
	}
	var out []Scenario
	for _, name := range strings.Split(list, ",") {
		found := false
		for _, s := range allScenarios {
			if s.Name == strings.TrimSpace(name) {
				out, found = append(out, s), true
			}
		}
		if !found {
			return nil, fmt.Errorf("unknown scenario %q: want all or some of %s", name, scenarioNames())
		}
	}
	return out, nil
}

// scoreproxyConfig returns the YAML config of scoreproxy for the scenario.
func (s Scenario) scoreproxyConfig(listen, sinkURL string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "listen: %q\nwriter:\n  datasource_url: %q\n  tenant_id: multitenant\n", listen, sinkURL)
	if s.MetricFormat {
		b.WriteString("  metric_format:\n")
		for _, kv := range seedMetricFormat {
			fmt.Fprintf(&b, "    %s: %q\n", kv[0], kv[1])
		}
	}
	if s.Split {
		b.WriteString("routing:\n  split_tenants: true\n")
	}
	return b.String()
}

// metricFormatRelabel is vmagent's relabeling equivalent to seedMetricFormat:
// `for: $QUERY_KEY` keeps the `for` label as it is, so it needs no rule.
const metricFormatRelabel = `- action: replace
  source_labels: [__name__]
  regex: "(.+)"
  target_label: __name__
  replacement: "vmanomaly_$1"
- action: replace
  target_label: run
  replacement: test_metric_format
- action: replace
  target_label: config
  replacement: io_vm_single.yaml
`

// splitRelabel keeps one tenant's series and drops the tenant labels, so a
// vmagent remote-write URL per tenant does scoreproxy's split.
const splitRelabel = `- action: keep
  source_labels: [vm_account_id, vm_project_id]
  separator: ":"
  regex: %q
- action: labeldrop
  regex: "vm_account_id|vm_project_id"
`

// vmagentArgs returns vmagent's flags for the scenario, writing relabel
// files into dir. A split scenario gets one remote-write URL per tenant
// (tenants lists them) unless VmagentMultitenant is set; then vmagent
// forwards to /insert/multitenant and leaves the split to vminsert.
func (s Scenario) vmagentArgs(listen, sinkURL, dir string, tenants []string) ([]string, error) {
	args := []string{
		"-httpListenAddr=" + listen,
		"-remoteWrite.tmpDataPath=" + filepath.Join(dir, "vmagent-data"),
		"-loggerLevel=WARN",
	}
	if s.Split {
		args = append(args, "-enableMultitenantHandlers")
	}
	if s.Split && !s.VmagentMultitenant {
		for i, t := range tenants {
			f := filepath.Join(dir, fmt.Sprintf("split-%d.yml", i))
			if err := os.WriteFile(f, fmt.Appendf(nil, splitRelabel, t), 0o644); err != nil {
				return nil, err
			}
			args = append(args, "-remoteWrite.url="+sinkURL+"/insert/"+t+"/prometheus/api/v1/write",
				"-remoteWrite.urlRelabelConfig="+f, "-remoteWrite.forcePromProto=true")
		}
		return args, nil
	}
	args = append(args, "-remoteWrite.url="+sinkURL+"/insert/multitenant/prometheus/api/v1/write",
		"-remoteWrite.forcePromProto=true")
	if s.MetricFormat {
		f := filepath.Join(dir, "metric_format.yml")
		if err := os.WriteFile(f, []byte(metricFormatRelabel), 0o644); err != nil {
			return nil, err
		}
		args = append(args, "-remoteWrite.urlRelabelConfig="+f)
	}
	return args, nil
}

// expectation is what the sink must have seen after a correct run.
type expectation struct {
	multitenantPath bool   // everything on /insert/multitenant/..., else on /insert/A:B/...
	tenantLabels    bool   // series keep vm_account_id/vm_project_id
	namePrefix      string // every metric name starts with this
}

// expect returns what the sink must see from proxy in the scenario;
// tenantLabelled says whether the workload's series carry tenant labels.
func (s Scenario) expect(proxy string, tenantLabelled bool) expectation {
	e := expectation{multitenantPath: !s.Split || (proxy == "vmagent" && s.VmagentMultitenant)}
	e.tenantLabels = e.multitenantPath && tenantLabelled
	if s.MetricFormat {
		e.namePrefix = "vmanomaly_"
	}
	return e
}

// check compares the sink's counts with the expectation. acked is the
// samples per tenant of the requests the proxy acknowledged (nil without
// tenant labels); it is compared exactly only when exact is set (every
// sent request was acknowledged and every acknowledged sample arrived once).
func (e expectation) check(c Counts, acked map[string]int64, exact bool) error {
	var problems []string
	for path := range c.Paths {
		tenant, err := tenantFromPath(path)
		if err != nil || (tenant == "multitenant") != e.multitenantPath || tenant == singleTenant {
			problems = append(problems, fmt.Sprintf("unexpected write path %s", path))
		}
	}
	if want := map[bool]int64{true: c.Series, false: 0}[e.tenantLabels]; c.TenantLabelled != want {
		problems = append(problems, fmt.Sprintf("%d of %d series carry tenant labels, want %d", c.TenantLabelled, c.Series, want))
	}
	for name := range c.Names {
		if !strings.HasPrefix(name, e.namePrefix) {
			problems = append(problems, fmt.Sprintf("metric name %q lacks prefix %q", name, e.namePrefix))
			break
		}
	}
	if exact && acked != nil {
		problems = append(problems, tenantProblems(c.Tenants, acked)...)
	}
	if len(problems) > 0 {
		return fmt.Errorf("sink contents wrong: %s", strings.Join(problems, "; "))
	}
	return nil
}

// tenantProblems compares the samples per tenant with want.
func tenantProblems(got map[string]*Counter, want map[string]int64) []string {
	var out []string
	keys := make([]string, 0, len(got)+len(want))
	for k := range want {
		keys = append(keys, k)
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		var n int64
		if c := got[k]; c != nil {
			n = c.Samples
		}
		if n != want[k] {
			out = append(out, fmt.Sprintf("tenant %s got %d samples, want %d", k, n, want[k]))
		}
	}
	return out
}
