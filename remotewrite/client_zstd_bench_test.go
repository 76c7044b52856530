package remotewrite

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkZstdRecompress is the CPU price of the VictoriaMetrics protocol:
// snappy-decode the router's body and zstd-encode it, per sample of the
// guide's workload (1,000 series x 2 samples, 9 labels). It also reports
// the body sizes, the network side of the trade.
func BenchmarkZstdRecompress(b *testing.B) {
	compressed, raw := snappyWorkload(b)
	n, err := newZstdNegotiator(CompressionZstd, quiet)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(raw)))
	var zlen int
	for i := 0; i < b.N; i++ {
		ob := getOutBody()
		if err := n.recompress(ob, compressed); err != nil {
			b.Fatal(err)
		}
		zlen = len(ob.buf)
		ob.closed.Store(true)
		ob.release()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/2000, "ns/sample")
	b.ReportMetric(float64(len(compressed)), "snappy-bytes")
	b.ReportMetric(float64(zlen), "zstd-bytes")
}

// BenchmarkClientSendZstd is a whole Send over loopback with and without
// zstd: on loopback the network is free, so this shows the cost only.
func BenchmarkClientSendZstd(b *testing.B) {
	compressed, _ := snappyWorkload(b)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		drain(r.Body)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	for _, mode := range []Compression{CompressionSnappy, CompressionZstd} {
		b.Run(string(mode), func(b *testing.B) {
			c, err := NewClient(ClientConfig{Compression: mode, Logger: quiet})
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			url := srv.URL + "/api/v1/write"
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if res := c.Send(context.Background(), url, compressed, BatchStats{}); !res.OK() {
					b.Fatal(res)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/2000, "ns/sample")
		})
	}
}
