package e2e

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"

	"github.com/scoreproxy/scoreproxy/internal/testenv"
)

// tenantSeries is one input series of the tenant test: the tenant labels it
// carries and the tenant vminsert's multitenant endpoint puts it in ("missing
// or invalid vm_account_id / vm_project_id is 0", per component).
type tenantSeries struct {
	id     string   // value of the `series` label
	labels []string // tenant labels as name, value pairs
	tenant string   // where vminsert stores it, "A:B"
}

var tenantInputs = []tenantSeries{
	{"both", []string{"vm_account_id", "1", "vm_project_id", "2"}, "1:2"},
	{"account_only", []string{"vm_account_id", "1"}, "1:0"},
	{"other_tenant", []string{"vm_account_id", "42", "vm_project_id", "7"}, "42:7"},
	{"none", nil, "0:0"}, // case 3
	{"project_only", []string{"vm_project_id", "9"}, "0:9"},                        // case 3
	{"bad_account", []string{"vm_account_id", "abc", "vm_project_id", "5"}, "0:5"}, // invalid
	{"huge_account", []string{"vm_account_id", "4294967296", "vm_project_id", "1"}, "0:1"},
	{"bad_project", []string{"vm_account_id", "3", "vm_project_id", "-1"}, "3:0"},
}

// tenantOutputs are the outputs written for every input series.
var tenantOutputs = []string{"anomaly_score", "yhat"}

const tenantScoreproxyConfig = `listen: {{LISTEN}}
writer:
  datasource_url: %s
  tenant_id: %q
  metric_format:
    __name__: "vmanomaly_$VAR"
    for: "$QUERY_KEY"
routing:
  split_tenants: %t
server:
  health_check_interval: 1s
`

// tenantRequest builds one request with every input series, marked with
// mode, under query key "q", at ts and ts+60s.
func tenantRequest(mode string, ts int64) *prompb.WriteRequest {
	req := &prompb.WriteRequest{}
	for i, in := range tenantInputs {
		for j, out := range tenantOutputs {
			kv := append([]string{"__name__", out, "for", "q", "series", in.id, "mode", mode}, in.labels...)
			req.Timeseries = append(req.Timeseries, prompb.TimeSeries{
				Labels: testenv.Labels(kv...),
				Samples: []prompb.Sample{
					{Timestamp: ts, Value: float64(i*10 + j)},
					{Timestamp: ts + 60_000, Value: float64(i*10+j) + 0.5},
				},
			})
		}
	}
	return req
}

// stored is what VictoriaMetrics behind vmagent holds for req after
// metric_format, given how the tenant labels are expected to look there.
func stored(req *prompb.WriteRequest, tenantLabels func(in tenantSeries) map[string]string) []testenv.Series {
	out := fromPrompb(req.Timeseries)
	for i := range out {
		l := out[i].Labels
		in := inputByID(l["series"])
		delete(l, "vm_account_id")
		delete(l, "vm_project_id")
		for k, v := range tenantLabels(in) {
			l[k] = v
		}
		l["__name__"] = "vmanomaly_" + l["__name__"]
	}
	return out
}

func inputByID(id string) tenantSeries {
	for _, in := range tenantInputs {
		if in.id == id {
			return in
		}
	}
	panic("unknown series " + id)
}

// asWritten keeps the tenant labels the series carried.
func asWritten(in tenantSeries) map[string]string {
	m := map[string]string{}
	for i := 0; i < len(in.labels); i += 2 {
		m[in.labels[i]] = in.labels[i+1]
	}
	return m
}

// tenantLabelsOf returns the labels vmagent adds for tenant "A:B".
func tenantLabelsOf(tenant string) map[string]string {
	acc, proj := splitTenant(tenant)
	return map[string]string{"vm_account_id": acc, "vm_project_id": proj}
}

func splitTenant(tenant string) (string, string) {
	for i := 0; i < len(tenant); i++ {
		if tenant[i] == ':' {
			return tenant[:i], tenant[i+1:]
		}
	}
	return tenant, "0"
}

// vminsertTenant applies vminsert's rule to stored labels: the tenant a
// series sent to /insert/multitenant/ lands in.
func vminsertTenant(labels map[string]string) string {
	id := func(name string) uint64 {
		v, err := strconv.ParseUint(labels[name], 10, 32)
		if err != nil {
			return 0
		}
		return v
	}
	return fmt.Sprintf("%d:%d", id("vm_account_id"), id("vm_project_id"))
}

// TestTenantRoutingThroughVMAgent is end-to-end test C. Behind scoreproxy is
// vmagent v1.128.0 with -enableMultitenantHandlers, which accepts vminsert's
// /insert/<tenant>/ and /insert/multitenant/ paths and writes to a
// VictoriaMetrics single node, where the tenant becomes vm_account_id and
// vm_project_id labels. Every series must land in the tenant vminsert would
// give it, in the multitenant, split and fixed-tenant modes.
func TestTenantRoutingThroughVMAgent(t *testing.T) {
	t.Parallel()
	bin := scoreproxy(t)
	vm := testenv.StartVictoriaMetrics(t)
	agent := testenv.StartVMAgent(t, vm.WriteURL())
	ts := recentMinute(20 * time.Minute)

	start := func(t *testing.T, tenantID string, split bool) *testenv.Scoreproxy {
		p := testenv.StartScoreproxy(t, bin, fmt.Sprintf(tenantScoreproxyConfig, agent.URL, tenantID, split))
		p.WaitReady(t, 15*time.Second)
		return p
	}
	check := func(t *testing.T, mode string, want []testenv.Series) []testenv.Series {
		t.Helper()
		return vm.WaitExport(t, fmt.Sprintf(`{mode=%q}`, mode), 30*time.Second, func(got []testenv.Series) error {
			return diffSeries(want, got, 0)
		})
	}
	wantWarnings := func(t *testing.T, m testenv.Metrics, cases ...string) {
		t.Helper()
		for _, c := range cases {
			if v, _ := m.Sum("scoreproxy_tenant_warnings_total", map[string]string{"case": c}); v == 0 {
				t.Errorf("scoreproxy_tenant_warnings_total{case=%q} = 0, want > 0", c)
			}
		}
	}

	t.Run("multitenant", func(t *testing.T) {
		// tenant_id: multitenant sends everything to /insert/multitenant/ with
		// the tenant labels as written; vminsert resolves them.
		p := start(t, "multitenant", false)
		req := tenantRequest("multitenant", ts)
		push(t, p.URL+"/api/v1/write", req)
		got := check(t, "multitenant", stored(req, asWritten))
		for _, s := range got {
			if in := inputByID(s.Labels["series"]); vminsertTenant(s.Labels) != in.tenant {
				t.Errorf("%s: vminsert would store it in %s, want %s", s.Key(), vminsertTenant(s.Labels), in.tenant)
			}
		}
		m := scrape(t, p.URL+"/metrics")
		wantMetric(t, m, "scoreproxy_series_forwarded_total",
			map[string]string{"url": agent.URL + "/insert/multitenant/prometheus/api/v1/write"}, float64(len(req.Timeseries)))
		wantWarnings(t, m, "3", "invalid")
	})

	t.Run("split", func(t *testing.T) {
		// split_tenants: one request per tenant to /insert/A:B/, tenant labels
		// removed by scoreproxy and set again by vmagent from the path.
		p := start(t, "multitenant", true)
		req := tenantRequest("split", ts)
		push(t, p.URL+"/api/v1/write", req)
		check(t, "split", stored(req, func(in tenantSeries) map[string]string { return tenantLabelsOf(in.tenant) }))
		m := scrape(t, p.URL+"/metrics")
		perTenant := map[string]int{}
		for _, in := range tenantInputs {
			perTenant[in.tenant] += len(tenantOutputs)
		}
		for tenant, n := range perTenant {
			url := agent.URL + "/insert/" + tenant + "/prometheus/api/v1/write"
			wantMetric(t, m, "scoreproxy_series_forwarded_total", map[string]string{"url": url}, float64(n))
			wantMetric(t, m, "vmanomaly_writer_responses_total", map[string]string{"url": url, "code": "204"}, 1)
		}
		wantWarnings(t, m, "3", "invalid")
	})

	t.Run("fixed_tenant", func(t *testing.T) {
		// tenant_id: "3:4": everything to /insert/3:4/; series carrying
		// vm_account_id raise the case-4 warning and are written anyway.
		p := start(t, "3:4", false)
		req := tenantRequest("fixed", ts)
		push(t, p.URL+"/api/v1/write", req)
		check(t, "fixed", stored(req, func(tenantSeries) map[string]string { return tenantLabelsOf("3:4") }))
		wantWarnings(t, scrape(t, p.URL+"/metrics"), "4")
	})

	t.Run("path_tenant", func(t *testing.T) {
		// A producer pointed at vminsert's /insert/5:6/ path: the path's
		// tenant applies to every series of the request, as in vmagent, in
		// both the multitenant and the split mode.
		for _, split := range []bool{false, true} {
			mode := fmt.Sprintf("path_split_%t", split)
			p := start(t, "multitenant", split)
			req := tenantRequest(mode, ts)
			push(t, p.URL+"/insert/5:6/prometheus/api/v1/write", req)
			check(t, mode, stored(req, func(tenantSeries) map[string]string { return tenantLabelsOf("5:6") }))
			// The vminsert-shaped multitenant path behaves as /api/v1/write.
			mode2 := fmt.Sprintf("path_multitenant_split_%t", split)
			req2 := tenantRequest(mode2, ts)
			push(t, p.URL+"/insert/multitenant/prometheus", req2)
			if split {
				check(t, mode2, stored(req2, func(in tenantSeries) map[string]string { return tenantLabelsOf(in.tenant) }))
			} else {
				check(t, mode2, stored(req2, asWritten))
			}
		}
	})
}
