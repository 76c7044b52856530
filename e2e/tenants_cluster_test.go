package e2e

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"

	"github.com/scoreproxy/scoreproxy/internal/testenv"
)

// clusterStored is what a VictoriaMetrics cluster holds for req after
// metric_format, per tenant: each series in the tenant tenantOf gives it,
// with the labels keep returns (the tenant labels it keeps, if any).
func clusterStored(req *prompb.WriteRequest, tenantOf func(in tenantSeries) string,
	keep func(in tenantSeries) map[string]string) map[string][]testenv.Series {
	out := map[string][]testenv.Series{}
	for _, s := range stored(req, keep) {
		tenant := tenantOf(inputByID(s.Labels["series"]))
		out[tenant] = append(out[tenant], s)
	}
	return out
}

// ownTenant is the tenant vminsert gives an input series on
// /insert/multitenant/.
func ownTenant(in tenantSeries) string { return in.tenant }

// noTenantLabels: vminsert drops vm_account_id and vm_project_id on
// /insert/multitenant/, and split mode removes them before sending.
func noTenantLabels(tenantSeries) map[string]string { return nil }

// wantInTenants reads mode's series back from every tenant of want through
// vmselect's /select/<tenant>/ and compares them with want's, then checks
// through /select/multitenant/ that no other tenant holds any of them.
func wantInTenants(t *testing.T, c *testenv.VMCluster, mode string, want map[string][]testenv.Series) {
	t.Helper()
	match := fmt.Sprintf(`{mode=%q}`, mode)
	tenants := make([]string, 0, len(want))
	total := 0
	for tenant, series := range want {
		tenants = append(tenants, tenant)
		total += len(series)
	}
	sort.Strings(tenants)
	for _, tenant := range tenants {
		c.WaitExport(t, tenant, match, 30*time.Second, func(got []testenv.Series) error {
			return diffSeries(want[tenant], got, 0)
		})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	all, err := c.ExportTenant(ctx, "multitenant", match)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range all {
		tenant := s.Labels["vm_account_id"] + ":" + s.Labels["vm_project_id"]
		if _, ok := want[tenant]; !ok {
			t.Errorf("tenant %s holds %s, which belongs elsewhere", tenant, s.Key())
		}
	}
	if len(all) != total {
		t.Errorf("the cluster holds %d series of mode %s in all tenants, want %d (in %v)", len(all), mode, total, tenants)
	}
}

// TestTenantRoutingThroughVMCluster is TestTenantRoutingThroughVMAgent
// against a real VictoriaMetrics cluster v1.129.1: scoreproxy writes to
// vminsert, and every series is read back from the tenant it must land in
// through vmselect, in the multitenant, split, fixed-tenant and path-tenant
// modes. In the multitenant mode vminsert resolves the tenant labels; in the
// split mode scoreproxy does and vminsert takes the tenant from the path: the
// cluster must hold the same in both.
func TestTenantRoutingThroughVMCluster(t *testing.T) {
	t.Parallel()
	bin := scoreproxy(t)
	cluster := testenv.StartVMCluster(t)
	ts := recentMinute(20 * time.Minute)
	start := func(t *testing.T, tenantID string, split bool) *testenv.Scoreproxy {
		p := testenv.StartScoreproxy(t, bin, fmt.Sprintf(tenantScoreproxyConfig, cluster.InsertURL(), tenantID, split))
		p.WaitReady(t, 15*time.Second)
		return p
	}

	t.Run("multitenant", func(t *testing.T) {
		p := start(t, "multitenant", false)
		req := tenantRequest("cluster_multitenant", ts)
		push(t, p.URL+"/api/v1/write", req)
		wantInTenants(t, cluster, "cluster_multitenant", clusterStored(req, ownTenant, noTenantLabels))
		wantMetric(t, scrape(t, p.URL+"/metrics"), "scoreproxy_series_forwarded_total",
			map[string]string{"url": cluster.WriteURL("multitenant")}, float64(len(req.Timeseries)))
	})

	t.Run("split", func(t *testing.T) {
		p := start(t, "multitenant", true)
		req := tenantRequest("cluster_split", ts)
		push(t, p.URL+"/api/v1/write", req)
		want := clusterStored(req, ownTenant, noTenantLabels)
		wantInTenants(t, cluster, "cluster_split", want)
		m := scrape(t, p.URL+"/metrics")
		for tenant, series := range want {
			url := map[string]string{"url": cluster.WriteURL(tenant)}
			wantMetric(t, m, "scoreproxy_series_forwarded_total", url, float64(len(series)))
			wantMetric(t, m, "vmanomaly_writer_responses_total", map[string]string{"url": url["url"], "code": "204"}, 1)
		}
	})

	t.Run("fixed_tenant", func(t *testing.T) {
		// Everything in 3:4; the tenant labels a series carries are plain
		// labels there.
		p := start(t, "3:4", false)
		req := tenantRequest("cluster_fixed", ts)
		push(t, p.URL+"/api/v1/write", req)
		wantInTenants(t, cluster, "cluster_fixed",
			clusterStored(req, func(tenantSeries) string { return "3:4" }, asWritten))
	})

	t.Run("path_tenant", func(t *testing.T) {
		// A producer pointed at /insert/5:6/: every series in 5:6, in both
		// multitenant modes; /insert/multitenant/prometheus is /api/v1/write.
		for _, split := range []bool{false, true} {
			p := start(t, "multitenant", split)
			mode := fmt.Sprintf("cluster_path_split_%t", split)
			req := tenantRequest(mode, ts)
			push(t, p.URL+"/insert/5:6/prometheus/api/v1/write", req)
			wantInTenants(t, cluster, mode, clusterStored(req, func(tenantSeries) string { return "5:6" }, noTenantLabels))
			mode2 := fmt.Sprintf("cluster_path_multitenant_split_%t", split)
			req2 := tenantRequest(mode2, ts)
			push(t, p.URL+"/insert/multitenant/prometheus", req2)
			wantInTenants(t, cluster, mode2, clusterStored(req2, ownTenant, noTenantLabels))
		}
	})
}
