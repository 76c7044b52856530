package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Bounds that keep every load run finite whatever the flags say.
const (
	maxLoadDuration = 10 * time.Minute
	maxLoadRequests = 10_000_000
	defaultPoolSize = 2048
)

// LoadConfig says where and how hard to send; the bodies come from a Pool.
type LoadConfig struct {
	// URL is the remote-write endpoint; it must be on a loopback address.
	URL string
	// Concurrency is the number of senders, each with one request in flight.
	Concurrency int
	// Requests stops the run after this many requests; 0 means use Duration.
	Requests int64
	// Duration stops issuing requests after this long; in-flight requests
	// still finish so their outcome is known.
	Duration time.Duration
	// Timeout bounds one request.
	Timeout time.Duration
	// Progress, if set, receives a live "\r" status line every second.
	Progress io.Writer
}

// Validate checks the stop condition, the bounds and the loopback target.
func (c LoadConfig) Validate() error {
	if _, err := checkLoopbackURL(c.URL); err != nil {
		return err
	}
	switch {
	case c.Concurrency < 1 || c.Concurrency > 256:
		return fmt.Errorf("-concurrency %d: want 1..256", c.Concurrency)
	case (c.Requests > 0) == (c.Duration > 0):
		return errors.New("give exactly one of -requests N or -duration D")
	case c.Requests < 0 || c.Requests > maxLoadRequests:
		return fmt.Errorf("-requests %d: want 1..%d", c.Requests, maxLoadRequests)
	case c.Duration < 0 || c.Duration > maxLoadDuration:
		return fmt.Errorf("-duration %s: want at most %s", c.Duration, maxLoadDuration)
	case c.Timeout <= 0:
		return fmt.Errorf("-timeout %s: want > 0", c.Timeout)
	}
	return nil
}

// loadCommand implements "bench load".
func loadCommand(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	wf := bindWorkloadFlags(fs)
	var cfg LoadConfig
	var asJSON, importGzip bool
	var pool int
	var format string
	fs.StringVar(&cfg.URL, "url", "", "remote-write or import URL on a loopback address, e.g. http://127.0.0.1:8490/api/v1/write")
	fs.StringVar(&format, "format", "rw", "body format: rw (snappy remote write 1.0) or import (VictoriaMetrics JSON lines, "+
		"uncompressed as vmanomaly sends them; point -url at /api/v1/import)")
	fs.BoolVar(&importGzip, "import-gzip", false, "with -format import: gzip the JSON lines (Content-Encoding: gzip)")
	fs.IntVar(&cfg.Concurrency, "concurrency", 4, "concurrent senders")
	fs.Int64Var(&cfg.Requests, "requests", 0, "stop after N requests (give -requests or -duration)")
	fs.DurationVar(&cfg.Duration, "duration", 0, "stop after D, at most 10m (give -requests or -duration)")
	fs.DurationVar(&cfg.Timeout, "timeout", 30*time.Second, "timeout of one request")
	fs.IntVar(&pool, "pool", 0, "distinct pre-built bodies (default: -requests if given, else 2048; capped at 1 GiB)")
	fs.BoolVar(&asJSON, "json", false, "print the summary as JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	w, err := wf.Resolve()
	if err != nil {
		return usageErrorf("%v", err)
	}
	if err := cfg.Validate(); err != nil {
		return usageErrorf("%v", err)
	}
	f, err := parseBodyFormat(format, importGzip)
	if err != nil {
		return usageErrorf("%v", err)
	}
	p, err := BuildPoolFormat(w, poolSize(pool, cfg.Requests), time.Now(), f)
	if err != nil {
		return err
	}
	if isTerminal(os.Stdout) && !asJSON {
		cfg.Progress = stdout
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	sum := RunLoad(ctx, cfg, p)
	sum.Workload = w
	if asJSON {
		return sum.WriteJSON(stdout)
	}
	sum.WriteText(stdout)
	return nil
}

// parseBodyFormat reads -format and -import-gzip.
func parseBodyFormat(format string, importGzip bool) (BodyFormat, error) {
	switch {
	case format == "rw" && !importGzip:
		return FormatRemoteWrite, nil
	case format == "rw":
		return 0, errors.New("-import-gzip needs -format import")
	case format == "import" && importGzip:
		return FormatImportGzip, nil
	case format == "import":
		return FormatImport, nil
	}
	return 0, fmt.Errorf("-format %q: want rw or import", format)
}

// poolSize picks the number of distinct bodies: the explicit -pool, else
// one per request up to the default, so short runs never repeat a sample.
func poolSize(explicit int, requests int64) int {
	switch {
	case explicit > 0:
		return explicit
	case requests > 0:
		return int(min(requests, 32768))
	}
	return defaultPoolSize
}

// isTerminal reports whether f is a character device (a terminal).
func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// loadRun is the shared state of one RunLoad call.
type loadRun struct {
	cfg    LoadConfig
	pool   *Pool
	client *http.Client
	next   atomic.Int64 // index of the next body to send
	stopAt time.Time    // zero when the run stops by request count
	// live counters for the progress line
	sent, acked, ackedSamples, failed atomic.Int64
}

// RunLoad sends the pool's bodies in turn, cycling if the run outlasts the
// pool, and returns the summary. It stops at the request count or the
// duration, at maxLoadDuration, or when ctx is done.
func RunLoad(ctx context.Context, cfg LoadConfig, p *Pool) *Summary {
	ctx, cancel := context.WithTimeout(ctx, maxLoadDuration+cfg.Timeout)
	defer cancel()
	r := &loadRun{cfg: cfg, pool: p, client: loopbackClient(cfg.Concurrency, cfg.Timeout)}
	defer r.client.CloseIdleConnections()
	start := time.Now()
	if cfg.Duration > 0 {
		r.stopAt = start.Add(cfg.Duration)
	}
	recs := make([]*recorder, cfg.Concurrency)
	var wg sync.WaitGroup
	for i := range recs {
		recs[i] = newRecorder(len(p.Bodies))
		wg.Add(1)
		go func(rec *recorder) {
			defer wg.Done()
			r.worker(ctx, rec)
		}(recs[i])
	}
	done := make(chan struct{})
	if cfg.Progress != nil {
		go r.progress(start, done)
	}
	wg.Wait()
	close(done)
	if cfg.Progress != nil {
		fmt.Fprintln(cfg.Progress)
	}
	return summarize(cfg, p, time.Since(start), recs)
}

// worker sends bodies until the run is over.
func (r *loadRun) worker(ctx context.Context, rec *recorder) {
	var sb sendBuf
	for ctx.Err() == nil {
		if !r.stopAt.IsZero() && !time.Now().Before(r.stopAt) {
			return
		}
		i := r.next.Add(1) - 1
		if r.cfg.Requests > 0 && i >= r.cfg.Requests {
			return
		}
		bi := int(i % int64(len(r.pool.Bodies)))
		body, err := r.pool.body(bi, &sb)
		status, msg, lat := 0, "", time.Duration(0)
		if err == nil {
			t0 := time.Now()
			status, msg, err = r.send(ctx, body)
			lat = time.Since(t0)
		}
		rec.record(lat, status, msg, err, bi, r.pool.SamplesPerBody)
		r.sent.Add(1)
		if err == nil && status/100 == 2 {
			r.acked.Add(1)
			r.ackedSamples.Add(int64(r.pool.SamplesPerBody))
		} else {
			r.failed.Add(1)
			sb.drop()
		}
	}
}

// send POSTs one body with the headers of the pool's format and returns the
// status and, for a non-2xx answer, the start of the response body.
func (r *loadRun) send(ctx context.Context, body []byte) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	r.pool.Format.setHeaders(req.Header)
	req.Header.Set("User-Agent", "scoreproxy-bench")
	resp, err := r.client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	var msg string
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
		msg = string(bytes.TrimSpace(b))
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, msg, nil
}

// progress prints the live status line every second until done closes.
func (r *loadRun) progress(start time.Time, done <-chan struct{}) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
			el := time.Since(start).Seconds()
			fmt.Fprintf(r.cfg.Progress, "\r%6.1fs  requests %d  acknowledged samples %d  %s samples/s  errors %d   ",
				el, r.sent.Load(), r.ackedSamples.Load(), humanCount(float64(r.ackedSamples.Load())/el), r.failed.Load())
		}
	}
}

// errorClass names a transport error for the errors-by-status table.
func errorClass(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection reset"
	}
	return "transport error"
}
