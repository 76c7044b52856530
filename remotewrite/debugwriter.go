package remotewrite

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"

	"github.com/golang/snappy"
)

// DebugWriter is the upstream sender of `writer.debug: true`: instead of
// sending a request it prints it, so a user can check metric_format and
// tenant routing before pointing scoreproxy at a real cluster. It takes the
// place of Client behind the router (or the queue) and answers every request
// like an upstream that accepted it (204), so the rest of the proxy runs
// exactly as it would in production.
//
// Each request is printed as one block (see AppendDebugText for the format):
//
//	# POST http://localhost:8480/insert/5:0/prometheus/api/v1/write (2 series, 2 samples)
//	vmanomaly_anomaly_score{for="cpu",instance="a:9100"} 0.25 1700000000000
//	vmanomaly_yhat{for="cpu",instance="a:9100"} 41.5 1700000000000
//
// The URL is the one Client would have posted to (credentials removed), so
// its path shows the tenant: /insert/5:0/..., /insert/multitenant/... or
// /api/v1/write. Printing is not a hot path: it allocates freely.
type DebugWriter struct {
	// mu makes each request's block one write, so that concurrent requests
	// (several tenants at once, several producers) never interleave lines.
	mu  sync.Mutex
	out io.Writer // guarded by mu
}

// NewDebugWriter returns a DebugWriter printing to out (os.Stdout in the binary).
func NewDebugWriter(out io.Writer) *DebugWriter { return &DebugWriter{out: out} }

// Send prints the request and answers 204. A body that is not snappy remote
// write 1.0 (it always is when it comes from the router) is answered 400,
// as VictoriaMetrics would; a failed write to out is answered like a
// connection error (status 0), so the producer retries.
func (d *DebugWriter) Send(_ context.Context, url string, body []byte, _ BatchStats) SendResult {
	url = redactURL(url)
	text, err := debugText(url, body)
	if err != nil {
		text = fmt.Appendf(nil, "# POST %s: cannot decode the body: %v\n\n", url, err)
	}
	d.mu.Lock()
	_, werr := d.out.Write(text)
	d.mu.Unlock()
	switch {
	case err != nil:
		return SendResult{StatusCode: http.StatusBadRequest, Message: "debug writer: " + err.Error(), URL: url}
	case werr != nil:
		return SendResult{Message: "debug writer: printing the request: " + werr.Error(), URL: url}
	}
	return SendResult{StatusCode: http.StatusNoContent, URL: url}
}

// debugText decodes a snappy RW1 body and renders it as one block.
func debugText(url string, body []byte) ([]byte, error) {
	raw, err := snappy.Decode(nil, body)
	if err != nil {
		return nil, fmt.Errorf("snappy: %w", err)
	}
	var req Request
	if err := DecodeWriteRequest(raw, &req); err != nil {
		return nil, err
	}
	series, samples, exemplars, histograms := req.Totals()
	out := fmt.Appendf(nil, "# POST %s (%s)\n", url, plural(series, "series", "series"))
	out = out[:len(out)-2]
	for _, c := range []struct {
		n         int
		one, many string
	}{{samples, "sample", "samples"}, {histograms, "histogram", "histograms"}, {exemplars, "exemplar", "exemplars"},
		{len(req.Metadata), "metadata", "metadata"}} {
		if c.n > 0 {
			out = append(out, ", "...)
			out = append(out, plural(c.n, c.one, c.many)...)
		}
	}
	out = append(out, ")\n"...)
	out = AppendDebugText(out, &req)
	return append(out, '\n'), nil
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
