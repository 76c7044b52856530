package remotewrite_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/prometheus/prompb"

	"github.com/scoreproxy/scoreproxy/remotewrite"
	"github.com/scoreproxy/scoreproxy/tenantroute"
)

// TestImportJSONRoutingModes sends one request through the real router in
// every routing mode with the ImportJSON sender and checks the URL each
// tenant's lines went to: vmanomaly's <datasource_url><import_json_path>
// (single node) and <datasource_url>/insert/<tenant>/prometheus<import_json_path>
// (cluster), against an httptest VictoriaMetrics cluster.
func TestImportJSONRoutingModes(t *testing.T) {
	tests := []struct {
		name     string
		tenantID string
		split    bool
		want     []string // "path: lines" per request, sorted
	}{
		{"single node", "", false, []string{
			`/api/v1/import: {"metric":{"__name__":"s","vm_account_id":"1"},"values":[1],"timestamps":[1000]}|{"metric":{"__name__":"s","vm_account_id":"2","vm_project_id":"3"},"values":[2],"timestamps":[1000]}`}},
		{"fixed tenant", "7:8", false, []string{
			`/insert/7:8/prometheus/api/v1/import: {"metric":{"__name__":"s","vm_account_id":"1"},"values":[1],"timestamps":[1000]}|{"metric":{"__name__":"s","vm_account_id":"2","vm_project_id":"3"},"values":[2],"timestamps":[1000]}`}},
		{"multitenant", "multitenant", false, []string{
			`/insert/multitenant/prometheus/api/v1/import: {"metric":{"__name__":"s","vm_account_id":"1"},"values":[1],"timestamps":[1000]}|{"metric":{"__name__":"s","vm_account_id":"2","vm_project_id":"3"},"values":[2],"timestamps":[1000]}`}},
		{"split tenants", "multitenant", true, []string{
			`/insert/1:0/prometheus/api/v1/import: {"metric":{"__name__":"s"},"values":[1],"timestamps":[1000]}`,
			`/insert/2:3/prometheus/api/v1/import: {"metric":{"__name__":"s"},"values":[2],"timestamps":[1000]}`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			var got []string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				mu.Lock()
				got = append(got, r.URL.Path+": "+strings.ReplaceAll(strings.TrimSuffix(string(body), "\n"), "\n", "|"))
				mu.Unlock()
				w.WriteHeader(http.StatusNoContent)
			}))
			defer srv.Close()
			quiet := slog.New(slog.DiscardHandler)
			client, err := remotewrite.NewClient(remotewrite.ClientConfig{})
			if err != nil {
				t.Fatal(err)
			}
			defer client.Close()
			sender, err := remotewrite.NewImportJSON(client, "/api/v1/import", quiet)
			if err != nil {
				t.Fatal(err)
			}
			router, err := tenantroute.New(tenantroute.Options{BaseURL: srv.URL + "/", TenantID: tt.tenantID,
				SplitTenants: tt.split, Logger: quiet}, sender)
			if err != nil {
				t.Fatal(err)
			}
			wr := &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{
				{Labels: []prompb.Label{{Name: "__name__", Value: "s"}, {Name: "vm_account_id", Value: "1"}},
					Samples: []prompb.Sample{{Value: 1, Timestamp: 1000}}},
				{Labels: []prompb.Label{{Name: "__name__", Value: "s"}, {Name: "vm_account_id", Value: "2"}, {Name: "vm_project_id", Value: "3"}},
					Samples: []prompb.Sample{{Value: 2, Timestamp: 1000}}},
			}}
			raw, err := wr.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			var req remotewrite.Request
			if err := remotewrite.DecodeWriteRequest(raw, &req); err != nil {
				t.Fatal(err)
			}
			if err := router.Process(context.Background(), &req, ""); err != nil {
				t.Fatalf("Process: %v", err)
			}
			sort.Strings(got)
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("upstream got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}
