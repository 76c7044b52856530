package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"

	"github.com/VictoriaMetrics/metrics"

	"github.com/scoreproxy/scoreproxy/config"
	"github.com/scoreproxy/scoreproxy/queue"
	"github.com/scoreproxy/scoreproxy/remotewrite"
	"github.com/scoreproxy/scoreproxy/tenantroute"
)

// Version is the scoreproxy version reported in the User-Agent and the
// start-up log; cmd/scoreproxy sets it from its build-time version.
var Version = "dev"

// DebugOutput is where `writer.debug: true` prints the requests it would
// send (remotewrite.DebugWriter); cmd/scoreproxy sets it to its stdout.
var DebugOutput io.Writer = os.Stdout

// Proxy is one configured instance: the pipeline and its HTTP routes.
type Proxy struct {
	cfg     *config.Config
	client  *remotewrite.Client
	router  *tenantroute.Router
	health  *remotewrite.HealthChecker
	queue   *queue.Queue // nil unless queue.path is set
	handler http.Handler
}

// New (formerly cmd/scoreproxy's newProxy) wires receiver -> router ->
// [queue ->] client from a validated config; with writer.debug the
// DebugWriter takes the client's place and there is no health check. With
// queue.path set it opens the durable queue, which starts delivering what a
// previous run left; the caller must close it (closeQueue).
func New(cfg *config.Config, logger *slog.Logger) (*Proxy, error) {
	w := cfg.Writer
	client, err := remotewrite.NewClient(remotewrite.ClientConfig{
		Timeout: w.Timeout, User: w.User, Password: w.Password,
		BearerToken: w.BearerToken, BearerTokenFile: w.BearerTokenFile,
		VerifyTLS: w.VerifyTLS, CAFile: w.CAFile, CertFile: w.TLSCertFile, KeyFile: w.TLSKeyFile,
		UserAgent: "scoreproxy/" + Version, Compression: remotewrite.Compression(w.Compression), Logger: logger,
	})
	if err != nil {
		return nil, fmt.Errorf("writer: %w", err)
	}
	format, err := cfg.CompileFormat()
	if err != nil {
		return nil, err
	}
	p := &Proxy{cfg: cfg, client: client}
	// upstream delivers the router's (or the queue's) batches: remote write,
	// or JSON lines with writer.output: import_json.
	var upstream tenantroute.Sender = client
	if w.Output == config.OutputImportJSON {
		if upstream, err = remotewrite.NewImportJSON(client, w.ImportJSONPath, logger); err != nil {
			return nil, err
		}
	}
	sender := upstream
	if w.Debug {
		sender = remotewrite.NewDebugWriter(DebugOutput)
	} else {
		p.health = remotewrite.NewHealthChecker(client, w.HealthURL(), cfg.Server.HealthCheckInterval, logger)
	}
	if q := cfg.Queue; q.Enabled() {
		p.queue, err = queue.Open(queue.Options{Dir: q.Path, MaxDiskBytes: q.MaxDiskBytes, SegmentBytes: q.SegmentBytes,
			MaxRejectedBytes: q.MaxRejectedBytes, RetryMinInterval: q.RetryMinInterval, RetryMaxInterval: q.RetryMaxInterval,
			DeliveryConcurrency: q.DeliveryConcurrency, MaxBatchBytes: q.MaxBatchBytes, Logger: logger}, upstream)
		if err != nil {
			return nil, fmt.Errorf("queue.path: %w", err)
		}
		sender = p.queue
	}
	p.router, err = tenantroute.New(tenantroute.Options{
		BaseURL: w.BaseURL(), TenantID: w.TenantID, SplitTenants: cfg.Routing.SplitTenants,
		MaxInflightPerEndpoint: cfg.Routing.MaxInflightPerEndpoint,
		Format:                 format, Logger: logger,
	}, sender)
	if err != nil {
		_ = p.closeQueue(context.Background())
		return nil, err
	}
	receiver := remotewrite.NewHandler(remotewrite.HandlerConfig{
		MaxRequestBytes: cfg.Limits.MaxRequestBytes, MaxDecodedBytes: cfg.Limits.MaxDecodedBytes, Logger: logger,
		Known: p.router,
	}, p.router)
	p.handler = p.routes(receiver)
	return p, nil
}

// routes is the HTTP surface: the write paths a producer already uses, and
// the operational endpoints.
func (p *Proxy) routes(receiver http.Handler) http.Handler {
	mux := http.NewServeMux()
	for _, path := range []string{"/api/v1/write", "/prometheus/api/v1/write", "/api/v1/push", "/insert/"} {
		mux.Handle(path, receiver)
	}
	mux.HandleFunc("/health", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "OK")
	})
	mux.HandleFunc("/ready", func(w http.ResponseWriter, _ *http.Request) {
		if ok, why := p.ready(); !ok {
			http.Error(w, why, http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "OK")
	})
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, _ *http.Request) {
		metrics.WritePrometheus(w, true)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, fmt.Sprintf("no handler for %s: write to /api/v1/write or /insert/<tenant>/prometheus/api/v1/write; "+
			"see /health, /ready, /metrics", r.URL.Path), http.StatusNotFound)
	})
	return mux
}

// ready says whether producers should send here. Without a queue that is
// whether the upstream answers its health_path; with one, whether the queue
// takes data (not full): an upstream outage is what the queue is for, and
// stays visible in scoreproxy_upstream_ready and the queue metrics.
func (p *Proxy) ready() (bool, string) {
	if p.queue != nil {
		return p.queue.Ready()
	}
	if p.health == nil { // writer.debug: printing is always possible
		return true, ""
	}
	if !p.health.Ready() {
		return false, "upstream " + p.cfg.Writer.HealthURL() + " is not healthy (see the log)"
	}
	return true, ""
}

// closeQueue stops the queue's workers and closes its files within ctx;
// undelivered data stays on disk for the next start. No-op without a queue.
func (p *Proxy) closeQueue(ctx context.Context) error {
	if p.queue == nil {
		return nil
	}
	return p.queue.Close(ctx)
}

// Serve runs the proxy on cfg.Listen until ctx is done, then shuts down
// gracefully: stop accepting, let in-flight requests finish, then close the
// queue, all within shutdown_timeout. It is what the binary runs.
func Serve(ctx context.Context, cfg *config.Config, logger *slog.Logger) error {
	return ServeListener(ctx, cfg, logger, nil)
}

// ServeListener is Serve on a listener the caller opened (nil: listen on
// cfg.Listen), so an in-process user such as `go run ./bench demo` runs the
// binary's exact server on a port it picked. It closes ln.
func ServeListener(ctx context.Context, cfg *config.Config, logger *slog.Logger, ln net.Listener) error {
	p, err := New(cfg, logger)
	if err != nil {
		if ln != nil {
			ln.Close()
		}
		return err
	}
	defer p.client.Close()
	defer func() { // on the early returns; after a clean shutdown it is a no-op
		closeCtx, cancel := context.WithTimeout(context.Background(), cfg.Server.ShutdownTimeout)
		defer cancel()
		_ = p.closeQueue(closeCtx)
	}()
	if ln == nil {
		if ln, err = net.Listen("tcp", cfg.Listen); err != nil {
			return fmt.Errorf("listen: %w", err)
		}
	}
	srv := &http.Server{
		Handler:           p.handler,
		ReadHeaderTimeout: cfg.Server.ReadHeaderTimeout,
		ReadTimeout:       cfg.Server.ReadTimeout,
		IdleTimeout:       cfg.Server.IdleTimeout,
		MaxHeaderBytes:    1 << 20,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	healthCtx, stopHealth := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	if p.health != nil {
		wg.Go(func() { p.health.Run(healthCtx) })
	}
	defer func() { stopHealth(); wg.Wait() }()

	logger.Info("scoreproxy started", "version", Version, "listen", ln.Addr().String(),
		"mode", p.router.Mode().String(), "upstream", redactedBase(cfg), "metric_format", len(cfg.Writer.MetricFormat) > 0,
		"queue", cfg.Queue.Path, "debug", cfg.Writer.Debug, "output", cfg.Writer.Output, "compression", cfg.Writer.Compression)
	if cfg.Writer.Debug {
		logger.Warn("writer.debug is true: upstream requests are printed to stdout, not sent; remove it to send for real")
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	logger.Info("shutting down: no new connections, finishing in-flight requests", "timeout", cfg.Server.ShutdownTimeout)
	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.Server.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("graceful shutdown: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	if err := p.closeQueue(shutdownCtx); err != nil {
		return fmt.Errorf("closing the queue: %w", err)
	}
	logger.Info("scoreproxy stopped")
	return nil
}

// redactedBase is datasource_url without credentials, for logs.
func redactedBase(cfg *config.Config) string {
	return remotewrite.RedactURL(cfg.Writer.BaseURL())
}
