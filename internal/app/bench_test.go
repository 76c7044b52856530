package app

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/golang/snappy"
)

// BenchmarkProxyEndToEnd measures the whole proxy path over real HTTP on
// loopback: receive, decode, rewrite, route, encode, forward to a discarding
// upstream. Profile it with -cpuprofile to see where a sample's CPU goes.
func BenchmarkProxyEndToEnd(b *testing.B) {
	for _, bc := range []struct{ name, writer, routing string }{
		{"multitenant-passthrough", "tenant_id: multitenant", ""},
		{"multitenant-metric_format", "tenant_id: multitenant\n  metric_format: {__name__: vmanomaly_$VAR, for: $QUERY_KEY, run: test_metric_format, config: io_vm_single.yaml}", ""},
		{"split-10-tenants", "tenant_id: multitenant\n  metric_format: {__name__: vmanomaly_$VAR, for: $QUERY_KEY, run: test_metric_format, config: io_vm_single.yaml}", "routing: {split_tenants: true}"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)
				w.WriteHeader(http.StatusNoContent)
			}))
			defer up.Close()
			cfg := writeConfigB(b, fmt.Sprintf("writer:\n  datasource_url: %s\n  %s\n%s\n", up.URL, bc.writer, bc.routing))
			proxy := startProxyB(b, cfg)
			raw, _ := modelOutputs(1000, 10).Marshal()
			body := snappy.Encode(nil, raw)
			client := &http.Client{}
			b.SetParallelism(2)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req, _ := http.NewRequest(http.MethodPost, proxy.URL+"/api/v1/write", bytes.NewReader(body))
					req.Header.Set("Content-Encoding", "snappy")
					resp, err := client.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusNoContent {
						b.Errorf("status %d", resp.StatusCode)
						return
					}
				}
			})
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/2000, "ns/sample")
		})
	}
}
