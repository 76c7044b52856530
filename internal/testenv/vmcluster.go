package testenv

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"sort"
	"strconv"
	"testing"
	"time"
)

// VMCluster is a running one-node VictoriaMetrics cluster: a vmstorage, and a
// vminsert and a vmselect connected to it.
type VMCluster struct {
	Storage, Insert, Select *Process
}

// StartVMCluster starts vmstorage (data in a t.TempDir(), a retention long
// enough for any timestamp a test writes), then vminsert and vmselect
// pointed at it, each on free 127.0.0.1 ports, and waits until vminsert
// reaches vmstorage. All three are stopped in t.Cleanup.
func StartVMCluster(t testing.TB) *VMCluster {
	t.Helper()
	storageBin, insertBin, selectBin := VMStorageTool.Require(t), VMInsertTool.Require(t), VMSelectTool.Require(t)
	data := t.TempDir()
	// vmstorage listens on two more ports, for vminsert's and vmselect's
	// RPC; they are picked anew on every start attempt.
	var insertRPC, selectRPC string
	storage := Start(t, Spec{
		Name: "vmstorage",
		Path: storageBin,
		Args: func(addr string) []string {
			insertRPC, selectRPC = freeAddr(t), freeAddr(t)
			return []string{
				"-httpListenAddr=" + addr,
				"-vminsertAddr=" + insertRPC,
				"-vmselectAddr=" + selectRPC,
				"-storageDataPath=" + data,
				"-retentionPeriod=100y",
				"-loggerLevel=INFO",
			}
		},
		ReadyPath: "/health",
	})
	c := &VMCluster{Storage: storage}
	c.Insert = Start(t, Spec{
		Name: "vminsert",
		Path: insertBin,
		Args: func(addr string) []string {
			return []string{"-httpListenAddr=" + addr, "-storageNode=" + insertRPC, "-loggerLevel=INFO"}
		},
		ReadyPath: "/health",
	})
	cache := t.TempDir()
	c.Select = Start(t, Spec{
		Name: "vmselect",
		Path: selectBin,
		Args: func(addr string) []string {
			return []string{
				"-httpListenAddr=" + addr,
				"-storageNode=" + selectRPC,
				"-cacheDataPath=" + cache,
				// Answer queries up to now, not only up to now-30s.
				"-search.latencyOffset=0s",
				// /select/multitenant/ sees a tenant created a moment ago.
				"-search.tenantCacheExpireDuration=0",
				"-loggerLevel=INFO",
			}
		},
		ReadyPath: "/health",
	})
	c.waitInsertConnected(t, 30*time.Second)
	return c
}

// waitInsertConnected waits until vminsert reports its vmstorage reachable:
// before that, a write is answered 503.
func (c *VMCluster) waitInsertConnected(t testing.TB, timeout time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var last string
	for {
		m, err := ScrapeMetrics(ctx, c.Insert.URL+"/metrics")
		if err == nil {
			v, ok := m.Sum("vm_rpc_vmstorage_is_reachable", nil)
			if ok && v == 1 {
				return
			}
			last = fmt.Sprintf("vm_rpc_vmstorage_is_reachable = %v (found: %t)", v, ok)
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			t.Fatalf("vminsert did not reach vmstorage within %v: %s", timeout, last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// InsertURL is vminsert's base URL, a scoreproxy writer.datasource_url.
func (c *VMCluster) InsertURL() string { return c.Insert.URL }

// WriteURL is vminsert's Prometheus remote-write endpoint for tenant ("A",
// "A:B" or "multitenant").
func (c *VMCluster) WriteURL(tenant string) string {
	return c.Insert.URL + "/insert/" + tenant + "/prometheus/api/v1/write"
}

// ForceFlush makes the data vmstorage has received searchable.
func (c *VMCluster) ForceFlush(ctx context.Context) error {
	_, err := httpGet(ctx, c.Storage.URL+"/internal/force_flush")
	return err
}

// ExportTenant returns every raw sample tenant ("A" or "A:B") holds of the
// series matching match, through vmselect's /select/<tenant>/ export over
// all time; sorted as Export sorts. Tenant "multitenant" reads every tenant,
// each series labelled with its vm_account_id and vm_project_id.
func (c *VMCluster) ExportTenant(ctx context.Context, tenant, match string) ([]Series, error) {
	form := url.Values{"match[]": {match}, "start": {"0"}}
	body, err := httpGet(ctx, c.Select.URL+"/select/"+tenant+"/prometheus/api/v1/export?"+form.Encode())
	if err != nil {
		return nil, err
	}
	return parseExport(body)
}

// WaitExport is VictoriaMetrics.WaitExport for one tenant of the cluster:
// it flushes vmstorage and exports match from tenant until check accepts
// the result or timeout passes (the test fails then).
func (c *VMCluster) WaitExport(t testing.TB, tenant, match string, timeout time.Duration, check func([]Series) error) []Series {
	t.Helper()
	return waitExport(t, fmt.Sprintf("vmselect at %s, tenant %s", c.Select.URL, tenant), match, timeout,
		c.ForceFlush, func(ctx context.Context) ([]Series, error) { return c.ExportTenant(ctx, tenant, match) }, check)
}

// Tenants returns the tenants ("A:B") that hold data, as vmselect's
// /admin/tenants lists them.
func (c *VMCluster) Tenants(ctx context.Context) ([]string, error) {
	body, err := httpGet(ctx, c.Select.URL+"/admin/tenants?start=0")
	if err != nil {
		return nil, err
	}
	var resp struct {
		Status string   `json:"status"`
		Data   []string `json:"data"`
	}
	if err := json.Unmarshal(body, &resp); err != nil || resp.Status != "success" {
		return nil, fmt.Errorf("/admin/tenants: unexpected answer %.200q (%v)", body, err)
	}
	sort.Strings(resp.Data)
	return resp.Data, nil
}

// freeAddr returns 127.0.0.1:PORT with a port that was free a moment ago.
func freeAddr(t testing.TB) string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(FreePort(t)))
}
