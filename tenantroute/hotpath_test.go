package tenantroute

import (
	"bytes"
	"io"
	"net/http"
	"slices"
	"testing"

	"github.com/golang/snappy"

	"github.com/scoreproxy/scoreproxy/remotewrite"
)

// nopResponse is an http.ResponseWriter that keeps the status only, so the
// benchmark measures the handler, not a recorder.
type nopResponse struct {
	h      http.Header
	status int
}

func (w *nopResponse) Header() http.Header         { return w.h }
func (w *nopResponse) Write(p []byte) (int, error) { return len(p), nil }
func (w *nopResponse) WriteHeader(status int)      { w.status = status }

// BenchmarkHotPath runs the whole hot path of the proxy as the brief names
// it (decode, relabel, route, encode) on one request as it arrives: the
// snappy body goes through remotewrite.Handler (snappy decoding, the
// decoder that skips labels the router knows) and the Router (seed
// metric_format, split by tenant, snappy encoding per tenant), to a
// discarding sender. Only the network is left out: a real upstream request
// per tenant costs what the HTTP client costs (see BENCHMARKS.md).
// cpu-ns/sample is CPU time per sample (getrusage), the number the
// 1,000-tenant target is judged on; BenchmarkProcess is the same without
// the decoding.
func BenchmarkHotPath(b *testing.B) {
	split := Options{BaseURL: base, TenantID: "multitenant", SplitTenants: true}
	for _, bc := range []struct {
		name   string
		series int
		// tenantOf is series i's tenant: for 1,000 tenants either
		// interleaved (i mod 1,000, the worst order for memory locality)
		// or grouped (ten consecutive series per tenant, as a producer
		// that writes each tenant's series together sends them).
		tenantOf func(i int) int
		// sequential sends the batches one after another on the
		// request's goroutine (MaxParallelSends 1) instead of handing
		// them to the default 16 send workers: decode, relabel, route and
		// encode without the hand-off, whose cost depends most on what
		// else the host's CPUs are doing (see BENCHMARKS.md).
		sequential bool
		// unsorted sends every series' labels in reverse order, as a
		// producer that does not sort them may (vmagent without
		// -sortLabels).
		unsorted bool
	}{
		{"split-10k-series-1-tenant", 10000, func(int) int { return 0 }, false, false},
		{"split-10k-series-1-tenant-unsorted", 10000, func(int) int { return 0 }, false, true},
		{"split-10k-series-1000-tenants", 10000, func(i int) int { return i % 1000 }, false, false},
		{"split-10k-series-1000-tenants-grouped", 10000, func(i int) int { return i / 10 }, false, false},
		{"split-10k-series-1000-tenants-sequential-sends", 10000, func(i int) int { return i % 1000 }, true, false},
	} {
		b.Run(bc.name, func(b *testing.B) {
			opts := split
			if bc.sequential {
				opts.MaxParallelSends = 1
			}
			r := newTestRouter(b, opts, seedFormat, discard{})
			h := remotewrite.NewHandler(remotewrite.HandlerConfig{MaxRequestBytes: 64 << 20, MaxDecodedBytes: 256 << 20, Known: r}, r)
			wr := anomalyRequestBy(bc.series, bc.tenantOf)
			for i := range wr.Timeseries {
				if bc.unsorted {
					slices.Reverse(wr.Timeseries[i].Labels)
				}
			}
			raw, err := wr.Marshal()
			if err != nil {
				b.Fatal(err)
			}
			compressed := snappy.Encode(nil, raw)
			samples := float64(bc.series * 2)
			body := bytes.NewReader(compressed)
			req, err := http.NewRequest(http.MethodPost, "http://proxy/api/v1/write", io.NopCloser(body))
			if err != nil {
				b.Fatal(err)
			}
			req.Header.Set("Content-Encoding", "snappy")
			req.Header.Set("Content-Type", "application/x-protobuf")
			req.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
			req.ContentLength = int64(len(compressed))
			w := &nopResponse{h: http.Header{}}
			serve := func() {
				body.Reset(compressed)
				h.ServeHTTP(w, req)
				if w.status != http.StatusNoContent {
					b.Fatalf("status %d", w.status)
				}
			}
			b.ReportAllocs()
			benchPerSample(b, samples, serve) // its first request fills the rewrite cache
		})
	}
}
