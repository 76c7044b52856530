package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// sinkCommand implements "bench sink": serve a Sink until interrupted or
// until -max-run has passed, then print the final counts.
func sinkCommand(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("sink", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:8428", "loopback address to listen on")
	status := fs.Int("status", http.StatusNoContent, "status to answer decodable requests with (e.g. 204, 400, 429, 503)")
	failEvery := fs.Int("fail-every", 0, "answer every Nth decodable request with 503 (0 = never)")
	maxRun := fs.Duration("max-run", time.Hour, "exit after this long")
	decode := fs.String("decode", "prompb", "protobuf decoder: prompb (reference) or fast (wire walker, same counts, less CPU)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := checkLoopbackListen(*listen); err != nil {
		return usageErrorf("%v", err)
	}
	if *status < 200 || *status > 599 || *failEvery < 0 || *maxRun <= 0 {
		return usageErrorf("-status %d (want 200..599), -fail-every %d (want >= 0), -max-run %s (want > 0)",
			*status, *failEvery, *maxRun)
	}
	if *decode != "prompb" && *decode != "fast" {
		return usageErrorf("-decode %q: want prompb or fast", *decode)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	sink := NewSink(*status, *failEvery, *decode == "fast")
	srv := &http.Server{Handler: sink, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(stdout, "sink listening on http://%s (write: /api/v1/write, /insert/<tenant>/prometheus/api/v1/write; GET /counts, POST /reset, GET /health)\n", ln.Addr())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *maxRun)
	defer cancel()
	go func() {
		<-ctx.Done()
		shut, c := context.WithTimeout(context.Background(), 5*time.Second)
		defer c()
		srv.Shutdown(shut)
	}()
	if err := srv.Serve(ln); err != nil && err != http.ErrServerClosed {
		return err
	}
	c := sink.Counts()
	fmt.Fprintf(stdout, "sink stopped: %d requests, %d series, %d samples, %d rejected, %d decode errors\n",
		c.Requests, c.Series, c.Samples, c.Rejected, c.DecodeErrors)
	return nil
}
