package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"

	"github.com/VictoriaMetrics/metrics"

	"github.com/scoreproxy/scoreproxy/config"
	"github.com/scoreproxy/scoreproxy/remotewrite"
	"github.com/scoreproxy/scoreproxy/tenantroute"
)

// proxy is one configured instance: the pipeline and its HTTP routes.
type proxy struct {
	cfg     *config.Config
	client  *remotewrite.Client
	router  *tenantroute.Router
	health  *remotewrite.HealthChecker
	handler http.Handler
}

// newProxy wires receiver -> router -> client from a validated config.
func newProxy(cfg *config.Config, logger *slog.Logger) (*proxy, error) {
	w := cfg.Writer
	client, err := remotewrite.NewClient(remotewrite.ClientConfig{
		Timeout: w.Timeout, User: w.User, Password: w.Password,
		BearerToken: w.BearerToken, BearerTokenFile: w.BearerTokenFile,
		VerifyTLS: w.VerifyTLS, CAFile: w.CAFile, CertFile: w.TLSCertFile, KeyFile: w.TLSKeyFile,
		UserAgent: "scoreproxy/" + version,
	})
	if err != nil {
		return nil, fmt.Errorf("writer: %w", err)
	}
	format, err := cfg.CompileFormat()
	if err != nil {
		return nil, err
	}
	router, err := tenantroute.New(tenantroute.Options{
		BaseURL: w.BaseURL(), TenantID: w.TenantID, SplitTenants: cfg.Routing.SplitTenants,
		Format: format, Logger: logger,
	}, client)
	if err != nil {
		return nil, err
	}
	p := &proxy{cfg: cfg, client: client, router: router,
		health: remotewrite.NewHealthChecker(client, w.HealthURL(), cfg.Server.HealthCheckInterval, logger)}
	receiver := remotewrite.NewHandler(remotewrite.HandlerConfig{
		MaxRequestBytes: cfg.Limits.MaxRequestBytes, MaxDecodedBytes: cfg.Limits.MaxDecodedBytes, Logger: logger,
	}, router)
	p.handler = p.routes(receiver)
	return p, nil
}

// routes is the HTTP surface: the write paths a producer already uses, and
// the operational endpoints.
func (p *proxy) routes(receiver http.Handler) http.Handler {
	mux := http.NewServeMux()
	for _, path := range []string{"/api/v1/write", "/prometheus/api/v1/write", "/api/v1/push", "/insert/"} {
		mux.Handle(path, receiver)
	}
	mux.HandleFunc("/health", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "OK")
	})
	mux.HandleFunc("/ready", func(w http.ResponseWriter, _ *http.Request) {
		if !p.health.Ready() {
			http.Error(w, "upstream "+p.cfg.Writer.HealthURL()+" is not healthy (see the log)", http.StatusServiceUnavailable)
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

// serve runs the proxy until ctx is done, then shuts down gracefully: stop
// accepting, let in-flight requests finish (bounded by shutdown_timeout).
func serve(ctx context.Context, cfg *config.Config, logger *slog.Logger) error {
	p, err := newProxy(cfg, logger)
	if err != nil {
		return err
	}
	defer p.client.Close()
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
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
	wg.Go(func() { p.health.Run(healthCtx) })
	defer func() { stopHealth(); wg.Wait() }()

	logger.Info("scoreproxy started", "version", version, "listen", ln.Addr().String(),
		"mode", p.router.Mode().String(), "upstream", redactedBase(cfg), "metric_format", len(cfg.Writer.MetricFormat) > 0)
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
	logger.Info("scoreproxy stopped")
	return nil
}

// redactedBase is datasource_url without credentials, for logs.
func redactedBase(cfg *config.Config) string {
	return remotewrite.RedactURL(cfg.Writer.BaseURL())
}
