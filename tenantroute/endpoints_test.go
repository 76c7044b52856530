package tenantroute

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/prompb"
)

// routing.tenant_urls: in split mode the tenants in the map go to their own
// cluster, all others to datasource_url; "5" and "5:0" are one tenant.
func TestTenantURLs(t *testing.T) {
	rec := newRecorder()
	r, err := New(Options{BaseURL: "http://a:8480/", TenantID: Multitenant, SplitTenants: true,
		TenantURLs: map[string]string{"5": "http://b:8480/", "6:7": "http://c:8480"}}, rec)
	if err != nil {
		t.Fatal(err)
	}
	wr := &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{
		ts("__name__", "y", "vm_account_id", "5"),
		ts("__name__", "y", "vm_account_id", "6", "vm_project_id", "7"),
		ts("__name__", "y", "vm_account_id", "6"),
		ts("__name__", "y", "vm_account_id", "5", "vm_project_id", "1"),
	}}
	if err := r.Process(context.Background(), decoded(t, wr), ""); err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"http://b:8480/insert/5:0/prometheus/api/v1/write": {"{__name__=y}"},
		"http://c:8480/insert/6:7/prometheus/api/v1/write": {"{__name__=y}"},
		"http://a:8480/insert/6:0/prometheus/api/v1/write": {"{__name__=y}"},
		"http://a:8480/insert/5:1/prometheus/api/v1/write": {"{__name__=y}"},
	}
	if got := rec.seriesByURL(); !reflect.DeepEqual(got, want) {
		t.Errorf("sent\n%v\nwant\n%v", got, want)
	}
}

func TestTenantURLsErrors(t *testing.T) {
	for _, tt := range []struct {
		name string
		opts Options
		want string
	}{
		{"needs split mode", Options{BaseURL: "http://a/", TenantID: Multitenant, TenantURLs: map[string]string{"1": "http://b/"}},
			"routing.tenant_urls needs routing.split_tenants: true"},
		{"bad tenant", Options{BaseURL: "http://a/", TenantID: Multitenant, SplitTenants: true, TenantURLs: map[string]string{"x": "http://b/"}},
			"routing.tenant_urls:"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New(tt.opts, newRecorder()); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New: %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

// The endpoints a work remembers by slot never give one tenant another's:
// tenants that share a slot (1:0 and 9:0) and tenants of other slots, in
// any order, each get the endpoint of their own URL, the one the endpoint
// cache has.
func TestRecentEndpointsPerSlot(t *testing.T) {
	r := newTestRouter(t, Options{BaseURL: base, TenantID: Multitenant, SplitTenants: true}, nil, discard{})
	w := r.pool.Get().(*work)
	defer r.pool.Put(w)
	if tenantSlot(Tenant{1, 0}) != tenantSlot(Tenant{9, 0}) {
		t.Fatal("the test's colliding tenants do not share a slot")
	}
	for _, tn := range []Tenant{{1, 0}, {9, 0}, {1, 0}, {0, 1}, {2, 3}, {9, 0}, {1, 0}, {0, 0}} {
		ep := w.endpointOf(tn)
		if want := r.endpoints.get(tn); ep != want || ep.url != r.buildURL(tn) {
			t.Fatalf("endpoint of %v: %s, want %s", tn, ep.url, r.buildURL(tn))
		}
	}
}
