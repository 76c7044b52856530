package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/scoreproxy/scoreproxy/internal/testenv"
)

// vmanomalyWriter writes model outputs as vmanomaly's VmWriter does: its
// own metric_format applied (__name__: $VAR, for: $QUERY_KEY, its default),
// one JSON object per series and line, POSTed to datasource_url +
// /api/v1/import, or + /insert/<tenant_id>/prometheus/api/v1/import when
// tenant_id is set.
type vmanomalyWriter struct {
	datasourceURL, tenantID string
}

// importLine is one line of the JSON import, as vmanomaly builds it.
type importLine struct {
	Metric     map[string]string `json:"metric"`
	Values     []float64         `json:"values"`
	Timestamps []int64           `json:"timestamps"`
}

// modelOutput is one series a model produced for a query: the inherited
// labels of the queried series, and its values.
type modelOutput struct {
	variable, queryKey string
	labels             map[string]string
	values             []float64
	timestamps         []int64
}

func (w vmanomalyWriter) url() string {
	base := strings.TrimRight(w.datasourceURL, "/")
	if w.tenantID == "" {
		return base + "/api/v1/import"
	}
	return base + "/insert/" + w.tenantID + "/prometheus/api/v1/import"
}

// write POSTs the outputs and fails the test unless the answer is 204.
func (w vmanomalyWriter) write(t *testing.T, outputs []modelOutput) {
	t.Helper()
	var body bytes.Buffer
	enc := json.NewEncoder(&body)
	for _, o := range outputs {
		metric := map[string]string{"__name__": o.variable, "for": o.queryKey}
		for k, v := range o.labels {
			metric[k] = v
		}
		if err := enc.Encode(importLine{Metric: metric, Values: o.values, Timestamps: o.timestamps}); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := http.Post(w.url(), "application/json", &body)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		var msg bytes.Buffer
		_, _ = msg.ReadFrom(resp.Body)
		t.Fatalf("POST %s: %d %s", w.url(), resp.StatusCode, msg.String())
	}
}

// vmanomalyRun is the five outputs of every query for every series given by
// its inherited labels, with two timestamps.
func vmanomalyRun(mode string, ts int64, inherited []map[string]string, queries ...string) []modelOutput {
	var out []modelOutput
	for qi, q := range queries {
		for si, labels := range inherited {
			l := map[string]string{"mode": mode}
			for k, v := range labels {
				l[k] = v
			}
			for vi, v := range []string{"anomaly_score", "y", "yhat", "yhat_lower", "yhat_upper"} {
				base := float64(100*qi + 10*si + vi)
				out = append(out, modelOutput{variable: v, queryKey: q, labels: l,
					values: []float64{base, base + 0.5}, timestamps: []int64{ts, ts + 60_000}})
			}
		}
	}
	return out
}

// storedAs is what the cluster holds for outputs under scoreproxy's
// metric_format (vmanomaly_$VAR, for, run), per tenant.
func storedAs(outputs []modelOutput, tenantOf func(map[string]string) string) map[string][]testenv.Series {
	want := map[string][]testenv.Series{}
	for _, o := range outputs {
		labels := map[string]string{"__name__": "vmanomaly_" + o.variable, "for": o.queryKey, "run": "e2e"}
		for k, v := range o.labels {
			if k != "vm_account_id" && k != "vm_project_id" {
				labels[k] = v
			}
		}
		tenant := tenantOf(o.labels)
		want[tenant] = append(want[tenant], testenv.Series{Labels: labels, Timestamps: o.timestamps, Values: o.values})
	}
	return want
}

const vmanomalyScoreproxyConfig = `listen: {{LISTEN}}
writer:
  datasource_url: %s
  tenant_id: %q
  metric_format:
    __name__: vmanomaly_$VAR
    for: $QUERY_KEY
    run: e2e
routing:
  split_tenants: %t
server:
  health_check_interval: 1s
`

// samplesByQueryKey counts the samples of the outputs by query key.
func samplesByQueryKey(outputs []modelOutput) map[string]int {
	out := map[string]int{}
	for _, o := range outputs {
		out[o.queryKey] += len(o.values)
	}
	return out
}

// TestVmanomalyImportThroughVMCluster: a model runner writing exactly as
// vmanomaly's writer does (JSON lines on the import paths) through
// scoreproxy into a real VictoriaMetrics cluster: with the writer's
// tenant_id multitenant the series land in the tenants their labels name,
// with scoreproxy forwarding to vminsert's multitenant endpoint or
// splitting itself; with a fixed tenant_id, all in that tenant. Names and
// labels are read back through vmselect exactly as metric_format makes
// them.
func TestVmanomalyImportThroughVMCluster(t *testing.T) {
	t.Parallel()
	bin := scoreproxy(t)
	cluster := testenv.StartVMCluster(t)
	ts := recentMinute(20 * time.Minute)
	inherited := []map[string]string{
		{"instance": "node-1:9100", "vm_account_id": "1", "vm_project_id": "0"},
		{"instance": "node-2:9100", "vm_account_id": "2", "vm_project_id": "5"},
	}
	ownTenant := func(l map[string]string) string { return l["vm_account_id"] + ":" + l["vm_project_id"] }
	for _, split := range []bool{false, true} {
		t.Run(fmt.Sprintf("multitenant_split_%t", split), func(t *testing.T) {
			p := testenv.StartScoreproxy(t, bin, fmt.Sprintf(vmanomalyScoreproxyConfig, cluster.InsertURL(), "multitenant", split))
			p.WaitReady(t, 15*time.Second)
			mode := fmt.Sprintf("import_multitenant_%t", split)
			outputs := vmanomalyRun(mode, ts, inherited, "cpu", "mem")
			vmanomalyWriter{datasourceURL: p.URL, tenantID: "multitenant"}.write(t, outputs)
			wantInTenants(t, cluster, mode, storedAs(outputs, ownTenant))
			m := scrape(t, p.URL+"/metrics")
			wantMetric(t, m, "scoreproxy_samples_received_total", nil, float64(2*len(outputs)))
			for key, n := range samplesByQueryKey(outputs) { // vmanomaly's dashboard reads them by query_key
				wantMetric(t, m, "vmanomaly_writer_datapoints_sent_total", map[string]string{"query_key": key}, float64(n))
			}
		})
	}
	t.Run("fixed_tenant", func(t *testing.T) {
		p := testenv.StartScoreproxy(t, bin, fmt.Sprintf(vmanomalyScoreproxyConfig, cluster.InsertURL(), "multitenant", false))
		p.WaitReady(t, 15*time.Second)
		mode := "import_fixed"
		outputs := vmanomalyRun(mode, ts, []map[string]string{{"instance": "node-3:9100"}}, "disk")
		vmanomalyWriter{datasourceURL: p.URL, tenantID: "3:0"}.write(t, outputs)
		wantInTenants(t, cluster, mode, storedAs(outputs, func(map[string]string) string { return "3:0" }))
		wantMetric(t, scrape(t, p.URL+"/metrics"), "vmanomaly_writer_datapoints_sent_total",
			map[string]string{"url": cluster.WriteURL("multitenant")}, float64(2*len(outputs)))
	})
}
