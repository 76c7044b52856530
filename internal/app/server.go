package app

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync/atomic"

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
	cfg    *config.Config
	client *remotewrite.Client
	router *tenantroute.Router
	health *remotewrite.HealthChecker
	queue  *queue.Queue   // nil unless queue.path is set
	auth   *authenticator // nil without auth:
	// budget bounds the memory of the requests in progress; a reload
	// keeps it, so requests on the old and the new pipeline share it.
	budget  *remotewrite.ByteBudget
	handler http.Handler
	// writers are every writer's pipes (see writers.go); client, router,
	// health and queue above are writers[0]'s.
	writers []*writerPipe
}

// New (formerly cmd/scoreproxy's newProxy) wires receiver -> router ->
// [queue ->] client from a validated config; with writer.debug the
// DebugWriter takes the client's place and there is no health check. With
// queue.path set it opens the durable queue, which starts delivering what a
// previous run left; the caller must close it (closeQueue).
func New(cfg *config.Config, logger *slog.Logger) (*Proxy, error) {
	return build(cfg, logger, nil)
}

// build is New for a reload: a queue that prev (the running pipeline, or
// nil) has open for the same writer is taken over, not opened again (see
// writers.go and reload.go).
func build(cfg *config.Config, logger *slog.Logger, prev *Proxy) (*Proxy, error) {
	pipes, err := newWriters(cfg, logger, prev)
	if err != nil {
		return nil, err
	}
	// client, router, health and queue are the first writer's.
	first := pipes[0]
	p := &Proxy{cfg: cfg, writers: pipes, client: first.client, router: first.router, health: first.health, queue: first.queue,
		budget: remotewrite.NewByteBudget(cfg.Limits.MaxInflightBytes)}
	if prev != nil {
		p.budget = prev.budget
	}
	proc, known := processor(pipes)
	receiver := remotewrite.NewHandler(receiverConfig(cfg, logger, known, p.budget), &shapeLimit{lim: cfg.Limits.RequestLimits, next: proc})
	if p.auth, err = newAuthenticator(cfg.Auth, logger); err != nil {
		_ = closeWriters(context.Background(), pipes, prev)
		return nil, err
	}
	p.handler = p.routes(p.auth.guard(receiver))
	p.budget.SetMax(cfg.Limits.MaxInflightBytes)
	liveBudget.Store(p.budget)
	return p, nil
}

// liveBudget is the byte budget of the pipeline built last, for
// scoreproxy_inflight_bytes.
var liveBudget atomic.Pointer[remotewrite.ByteBudget]

func init() {
	metrics.NewGauge("scoreproxy_inflight_bytes", func() float64 { return float64(liveBudget.Load().Used()) })
}

// receiverConfig is the receiver's share of cfg.
func receiverConfig(cfg *config.Config, logger *slog.Logger, known remotewrite.KnownLabelSets, budget *remotewrite.ByteBudget) remotewrite.HandlerConfig {
	return remotewrite.HandlerConfig{
		MaxRequestBytes: cfg.Limits.MaxRequestBytes, MaxDecodedBytes: cfg.Limits.MaxDecodedBytes, Budget: budget,
		MaxConcurrent: cfg.Limits.MaxConcurrentRequests,
		MinBodyRate:   cfg.Limits.MinBodyRate, BodyRateGrace: cfg.Limits.BodyRateGrace, ReadTimeout: cfg.Server.ReadTimeout,
		Logger: logger, Known: known,
	}
}

// routes is the HTTP surface: the write paths a producer already uses, and
// the operational endpoints.
func (p *Proxy) routes(receiver http.Handler) http.Handler {
	mux := http.NewServeMux()
	for _, path := range []string{"/api/v1/write", "/prometheus/api/v1/write", "/api/v1/push", "/insert/",
		"/api/v1/import", "/prometheus/api/v1/import"} {
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
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, r *http.Request) {
		if !metricsAccess(p.cfg, p.auth).allow(w, r) {
			return
		}
		metrics.WritePrometheus(w, true)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, fmt.Sprintf("no handler for %s: write to /api/v1/write or /insert/<tenant>/prometheus/api/v1/write "+
			"(remote write), or /api/v1/import or /insert/<tenant>/prometheus/api/v1/import (JSON lines); "+
			"see /health, /ready, /metrics", r.URL.Path), http.StatusNotFound)
	})
	return mux
}

// ready says whether producers should send here. Without a queue that is
// whether the upstream answers its health_path; with one, whether the queue
// takes data (not full): an upstream outage is what the queue is for, and
// stays visible in scoreproxy_upstream_ready and the queue metrics.
// With writers:, every writer must be ready, since each must take its copy.
func (p *Proxy) ready() (bool, string) {
	for _, wp := range p.writers {
		if ok, why := wp.ready(); !ok {
			if len(p.writers) > 1 {
				why = wp.label() + ": " + why
			}
			return false, why
		}
	}
	return true, ""
}

// ready is Proxy.ready for one writer.
func (wp *writerPipe) ready() (bool, string) {
	if wp.queue != nil {
		return wp.queue.Ready()
	}
	if wp.health == nil { // writer.debug: printing is always possible
		return true, ""
	}
	if !wp.health.Ready() {
		return false, "upstream " + wp.cfg.HealthURL() + " is not healthy (see the log)"
	}
	return true, ""
}

// closeQueue stops the queue's workers and closes its files within ctx;
// undelivered data stays on disk for the next start. No-op without a queue.
func (p *Proxy) closeQueue(ctx context.Context) error {
	var errs []error
	for _, wp := range p.writers {
		if wp.queue != nil {
			errs = append(errs, wp.queue.Close(ctx))
		}
	}
	return errors.Join(errs...)
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
	return ServeReloadable(ctx, cfg, logger, ln, ReloadOptions{})
}

// ServeReloadable is ServeListener with hot reload: on POST /-/reload and
// on every value of ro.Signals, the config is read again from ro.ConfigPath
// and swapped in without a restart (see reload.go).
func ServeReloadable(ctx context.Context, cfg *config.Config, logger *slog.Logger, ln net.Listener, ro ReloadOptions) error {
	rl, err := newReloader(cfg, logger, ro)
	if err != nil {
		if ln != nil {
			ln.Close()
		}
		return err
	}
	p := rl.current()
	defer func() { // on the early returns; after a clean shutdown it is a no-op
		closeCtx, cancel := context.WithTimeout(context.Background(), cfg.Server.ShutdownTimeout)
		defer cancel()
		_ = rl.close(closeCtx)
	}()
	if ln == nil {
		if ln, err = net.Listen("tcp", cfg.Listen); err != nil {
			return fmt.Errorf("listen: %w", err)
		}
	}
	if cfg.Server.ServerTLS.Enabled() { // HTTPS, see tls.go
		tc, err := serverTLSConfig(cfg.Server.ServerTLS, logger)
		if err != nil {
			ln.Close()
			return err
		}
		ln = tls.NewListener(ln, tc)
	}
	srv := &http.Server{
		Handler:           rl,
		ReadHeaderTimeout: cfg.Server.ReadHeaderTimeout,
		ReadTimeout:       cfg.Server.ReadTimeout,
		IdleTimeout:       cfg.Server.IdleTimeout,
		MaxHeaderBytes:    1 << 20,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	go rl.watch(ctx) // reload on SIGHUP

	logger.Info("scoreproxy started", "version", Version, "listen", ln.Addr().String(),
		"mode", p.router.Mode().String(), "upstream", redactedBase(cfg), "metric_format", len(cfg.Writer.MetricFormat) > 0,
		"relabel_configs", len(cfg.RelabelConfigs), "write_relabel_configs", len(cfg.WriteRelabelConfigs),
		"queue", cfg.Queue.Path, "debug", cfg.Writer.Debug, "output", cfg.Writer.Output, "compression", cfg.Writer.Compression,
		"tls", cfg.Server.ServerTLS.Enabled(), "mtls", cfg.Server.TLSClientCAFile != "", "auth_credentials", len(cfg.Auth))
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
	if err := rl.close(shutdownCtx); err != nil {
		return fmt.Errorf("closing the queue: %w", err)
	}
	logger.Info("scoreproxy stopped")
	return nil
}

// redactedBase is datasource_url without credentials, for logs.
func redactedBase(cfg *config.Config) string {
	return remotewrite.RedactURL(cfg.Writer.BaseURL())
}
