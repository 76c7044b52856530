package tenantroute

import (
	"context"
	"fmt"
	"testing"

	"github.com/prometheus/prometheus/prompb"

	"github.com/scoreproxy/scoreproxy/remotewrite"
)

// BenchmarkProcessNewSeries is the miss path: every series of every request
// is new to the rewrite cache (decoded in full, rewritten, routed, encoded
// and added to the cache), the cost of series churn. Requests are the
// standard 1,000-series anomaly request with the seed metric_format, each
// with its own pod label; the router is replaced (untimed) every 64
// requests, so that none of its series is known.
func BenchmarkProcessNewSeries(b *testing.B) {
	const distinct = 64
	bodies := make([][]byte, distinct)
	for k := range bodies {
		wr := anomalyRequest(1000, 10)
		for i := range wr.Timeseries {
			wr.Timeseries[i].Labels = append(wr.Timeseries[i].Labels, prompb.Label{Name: "zpod", Value: fmt.Sprint("pod-", k)})
		}
		var err error
		if bodies[k], err = wr.Marshal(); err != nil {
			b.Fatal(err)
		}
	}
	var r *Router
	var req remotewrite.Request
	cpu := processCPU(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i%distinct == 0 {
			b.StopTimer()
			r = newTestRouter(b, Options{BaseURL: base, TenantID: Multitenant}, seedFormat, discard{})
			b.StartTimer()
		}
		if err := remotewrite.DecodeWriteRequestKnown(bodies[i%distinct], &req, r); err != nil {
			b.Fatal(err)
		}
		if err := r.Process(context.Background(), &req, ""); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	reportPerSample(b, 2000, cpu)
}
