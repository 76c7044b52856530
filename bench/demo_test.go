package main

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// demoSections splits the demo's output into the block of each tenant
// endpoint: path -> the lines under it.
func demoSections(out string) map[string][]string {
	sections := map[string][]string{}
	var current string
	for _, line := range strings.Split(out, "\n") {
		switch {
		case strings.HasPrefix(line, "  /insert/") || strings.HasPrefix(line, "  /api/"):
			current = strings.Fields(line)[0]
			sections[current] = append(sections[current], line)
		case strings.HasPrefix(line, "    ") && current != "":
			sections[current] = append(sections[current], strings.TrimSpace(line))
		default:
			current = ""
		}
	}
	return sections
}

// checkDemoOutput asserts what a user must see after requests requests:
// each tenant's endpoint with its renamed series (tenant labels removed),
// the two odd series at tenant 0:0, one warning per request for case 3 and
// for the invalid tenant, the throughput, and the verdict.
func checkDemoOutput(t *testing.T, out string, requests int) {
	t.Helper()
	sections := demoSections(out)
	seriesPerTenant := demoWorkload.Series / 3 * demoWorkload.Samples * requests
	for tenant, want := range map[string][]string{
		"1:0": {fmt.Sprintf("%d samples", seriesPerTenant),
			`vmanomaly_anomaly_score{for="cpu_usage_query_0",instance="node-00000.prod:9100",job="node_exporter"}`,
			`vmanomaly_y{for="cpu_usage_query_0",instance="node-00000.prod:9100",job="node_exporter"}`},
		"2:0": {fmt.Sprintf("%d samples", seriesPerTenant), `vmanomaly_yhat{for="cpu_usage_query_1",instance="node-00001.prod:9100",job="kube_state_metrics"}`},
		"3:0": {fmt.Sprintf("%d samples", seriesPerTenant), `vmanomaly_anomaly_score{for="cpu_usage_query_2",instance="node-00002.prod:9100",job="app"}`},
		"0:0": {fmt.Sprintf("%d samples", 2*demoWorkload.Samples*requests),
			`vmanomaly_anomaly_score{for="batch_job_runtime",instance="batch-runner:9100",job="cron"}`,
			`vmanomaly_yhat{for="checkout_latency",instance="shop-7:8080",job="shop"}`},
	} {
		path := "/insert/" + tenant + "/prometheus/api/v1/write"
		got := strings.Join(sections[path], "\n")
		for _, w := range want {
			if !strings.Contains(got, w) {
				t.Errorf("%s: missing %q in\n%s", path, w, got)
			}
		}
		if strings.Contains(got, "vm_account_id") || strings.Contains(got, "vm_project_id") {
			t.Errorf("%s: tenant labels left in split mode:\n%s", path, got)
		}
	}
	if len(sections) != 4 {
		t.Errorf("%d endpoints, want 4 (tenants 0:0, 1:0, 2:0, 3:0):\n%s", len(sections), out)
	}
	samples := requests * (demoWorkload.Series + 2) * demoWorkload.Samples
	for _, re := range []string{
		fmt.Sprintf(`(?m)^  case 3 +%d  \(multitenant, series without vm_account_id\)\n +The label .vm_account_id. was not found in the label set of anomaly_score\{for="batch_job_runtime"`, requests),
		fmt.Sprintf(`(?m)^  case invalid +%d  \(tenant label is not a number\)\n +The label vm_account_id="abc" of yhat\{`, requests),
		`(?m)^  case 4 +0 `,
		fmt.Sprintf(`(?m)^Throughput: %d samples in %d requests \(%d acknowledged\) in [0-9.]+ s: [0-9.]+[kMG]? samples/s end to end$`, samples, requests, requests),
		`(?m)^OK: every acknowledged sample reached its tenant endpoint\.$`,
	} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("output does not match %s:\n%s", re, out)
		}
	}
}

// TestDemo runs the demo in this process, as `go run ./bench demo` does.
func TestDemo(t *testing.T) {
	var out bytes.Buffer
	err := runDemo(context.Background(), demoOptions{configPath: "examples/split-tenants.yaml", requests: 20, concurrency: 2, lines: 3}, &out)
	if err != nil {
		t.Fatalf("demo failed: %v\n%s", err, out.String())
	}
	checkDemoOutput(t, out.String(), 20)
}

// TestDemoCommand runs the README's first command, `go run ./bench demo`,
// as a user would (from the repository root), and checks its exit code and
// output.
func TestDemoCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the demo binary")
	}
	cmd := exec.Command("go", "run", "./bench", "demo", "-requests", "30")
	cmd.Dir = ".."
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go run ./bench demo: %v\n%s", err, out)
	}
	checkDemoOutput(t, string(out), 30)
}

func TestDemoUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"demo", "-requests", "0"}, 2, "-requests 0: want 1..100000"},
		{[]string{"demo", "extra"}, 2, `unexpected argument "extra"`},
		{[]string{"demo", "-config", "no/such.yaml"}, 1, `config "no/such.yaml" not found`},
		{[]string{"demo", "-help"}, 0, "usage: go run ./bench demo"},
	} {
		var out bytes.Buffer
		if code := run(tc.args, &out, &out); code != tc.code || !strings.Contains(out.String(), tc.want) {
			t.Errorf("%v: exit %d, output %q; want %d containing %q", tc.args, code, out.String(), tc.code, tc.want)
		}
	}
}
