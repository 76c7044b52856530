package tenantroute

import (
	"bytes"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"testing"

	"github.com/golang/snappy"
	"github.com/klauspost/compress/gzip"
	"github.com/prometheus/prometheus/prompb"

	"github.com/scoreproxy/scoreproxy/remotewrite"
)

// importRequest is the bench workload's shape (1,000 series x 2 samples,
// 10 tenants) with the values and timestamps a model writes: random
// floats with all their digits and millisecond timestamps of today.
func importRequest() *prompb.WriteRequest {
	wr := anomalyRequest(1000, 10)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range wr.Timeseries {
		for j := range wr.Timeseries[i].Samples {
			wr.Timeseries[i].Samples[j] = prompb.Sample{Value: rng.Float64() * 100, Timestamp: 1_763_900_000_000 + int64(j)*1000}
		}
	}
	return wr
}

// jsonLines renders wr as VictoriaMetrics' JSON-lines import, one line per
// series, as vmanomaly's writer sends it.
func jsonLines(wr *prompb.WriteRequest) []byte {
	var b []byte
	for _, ts := range wr.Timeseries {
		b = append(b, `{"metric":{`...)
		for i, l := range ts.Labels {
			if i > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendQuote(b, l.Name)
			b = append(b, ':')
			b = strconv.AppendQuote(b, l.Value)
		}
		b = append(b, `},"values":[`...)
		for i, s := range ts.Samples {
			if i > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendFloat(b, s.Value, 'g', -1, 64)
		}
		b = append(b, `],"timestamps":[`...)
		for i, s := range ts.Samples {
			if i > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendInt(b, s.Timestamp, 10)
		}
		b = append(b, "]}\n"...)
	}
	return b
}

func gzipped(tb testing.TB, b []byte) []byte {
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	if _, err := zw.Write(b); err != nil {
		tb.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		tb.Fatal(err)
	}
	return out.Bytes()
}

// importCase is one request of the import benchmarks: a path, its body
// and encoding, and the metric_format of the router.
type importCase struct {
	name, path, encoding string
	body                 []byte
	format               map[string]string
}

// importCases are the bench workload as JSON lines (plain, gzip, with
// metric_format) and as snappy remote write, for comparison.
func importCases(tb testing.TB, wr *prompb.WriteRequest) []importCase {
	raw, err := wr.Marshal()
	if err != nil {
		tb.Fatal(err)
	}
	lines := jsonLines(wr)
	return []importCase{
		{"import", "/api/v1/import", "", lines, nil},
		{"import-gzip", "/api/v1/import", "gzip", gzipped(tb, lines), nil},
		{"import-metric_format", "/api/v1/import", "", lines, seedFormat},
		{"rw", "/api/v1/write", "snappy", snappy.Encode(nil, raw), nil},
		{"rw-metric_format", "/api/v1/write", "snappy", snappy.Encode(nil, raw), seedFormat},
	}
}

// serveImportCase returns a function that sends the case's request
// through remotewrite.Handler and a multitenant Router (as bench compare's
// import scenarios configure scoreproxy) to a discarding sender.
func serveImportCase(tb testing.TB, c importCase) func() {
	r := newTestRouter(tb, Options{BaseURL: base, TenantID: "multitenant"}, c.format, discard{})
	h := remotewrite.NewHandler(remotewrite.HandlerConfig{MaxRequestBytes: 64 << 20, MaxDecodedBytes: 256 << 20, Known: r}, r)
	body := bytes.NewReader(c.body)
	req, err := http.NewRequest(http.MethodPost, "http://proxy"+c.path, io.NopCloser(body))
	if err != nil {
		tb.Fatal(err)
	}
	if c.encoding == "snappy" {
		req.Header.Set("Content-Type", "application/x-protobuf")
		req.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	} else {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.encoding != "" {
		req.Header.Set("Content-Encoding", c.encoding)
	}
	req.ContentLength = int64(len(c.body))
	w := &nopResponse{h: http.Header{}}
	return func() {
		body.Reset(c.body)
		h.ServeHTTP(w, req)
		if w.status != http.StatusNoContent {
			tb.Fatalf("%s: status %d", c.name, w.status)
		}
	}
}

// BenchmarkImportHotPath runs one JSON-lines import request of the bench
// workload (1,000 lines, 2,000 samples) through remotewrite.Handler
// (reading the body, transcoding the lines to RW1, decoding) and the
// Router to a discarding sender, next to the same request as snappy
// remote write: the difference is what the JSON costs. allocs/op is per
// request.
func BenchmarkImportHotPath(b *testing.B) {
	wr := importRequest()
	for _, c := range importCases(b, wr) {
		b.Run(c.name, func(b *testing.B) {
			serve := serveImportCase(b, c)
			b.ReportAllocs()
			b.SetBytes(int64(len(c.body)))
			benchPerSample(b, float64(len(wr.Timeseries)*2), serve)
		})
	}
}

// TestImportHandlerDoesNotAllocateOnceWarm: once the router knows the series, a
// JSON-lines import request, plain or gzip, allocates nothing from the
// handler to the sender, as remote write does not.
func TestImportHandlerDoesNotAllocateOnceWarm(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector")
	}
	for _, c := range importCases(t, importRequest()) {
		serve := serveImportCase(t, c)
		serve()
		if allocs := testing.AllocsPerRun(20, serve); allocs != 0 {
			t.Errorf("%s: %.1f allocations per request of 1,000 series, want 0", c.name, allocs)
		}
	}
}
