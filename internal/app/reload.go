package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/scoreproxy/scoreproxy/config"
)

// ReloadOptions say where a running server re-reads its config from.
type ReloadOptions struct {
	// ConfigPath is the config file; "" makes every reload fail (nothing to read).
	ConfigPath string
	// Listen, when set, overrides the listen key of every config read
	// (cmd/scoreproxy's -listen flag), as it did at start.
	Listen string
	// Signals triggers a reload per value received (cmd/scoreproxy sends SIGHUP).
	Signals <-chan os.Signal
}

// Reload metrics, as Prometheus and vmagent name them.
var (
	reloadSuccessful  = metrics.GetOrCreateGauge("scoreproxy_config_last_reload_successful", nil)
	reloadSuccessTime = metrics.GetOrCreateGauge("scoreproxy_config_last_reload_success_timestamp_seconds", nil)
	reloadsSucceeded  = metrics.GetOrCreateCounter(`scoreproxy_config_reloads_total{result="success"}`)
	reloadsFailed     = metrics.GetOrCreateCounter(`scoreproxy_config_reloads_total{result="failure"}`)
)

// reloader serves HTTP through the current pipeline and replaces it on a
// reload. A request loads the pipeline once and finishes on it; a replaced
// pipeline is closed once its last request is done (retire). Durable queues
// are the exception: a writer whose queue directory stays the same keeps the
// same open queue across reloads (see writers.go), so queued data is neither
// dropped nor reopened, and only the queue's upstream client changes.
type reloader struct {
	logger *slog.Logger
	opts   ReloadOptions
	cur    atomic.Pointer[live]

	mu         sync.Mutex    // one reload at a time; guards lastRetire
	lastRetire chan struct{} // closed when the latest retire is done; nil before any
	closed     bool          // guarded by mu: close ran, reloads are refused
}

// live is one running pipeline with its health checks and the requests in
// flight on it: each request holds gate for reading, retire takes it for
// writing to wait for them all.
type live struct {
	p          *Proxy
	gate       sync.RWMutex
	stopHealth context.CancelFunc
	health     sync.WaitGroup
}

func newLive(p *Proxy) *live {
	ctx, cancel := context.WithCancel(context.Background())
	l := &live{p: p, stopHealth: cancel}
	for _, wp := range p.writers {
		if wp.health != nil {
			l.health.Go(func() { wp.health.Run(ctx) })
		}
	}
	return l
}

// newReloader builds the first pipeline from cfg.
func newReloader(cfg *config.Config, logger *slog.Logger, opts ReloadOptions) (*reloader, error) {
	p, err := New(cfg, logger)
	if err != nil {
		return nil, err
	}
	rl := &reloader{logger: logger, opts: opts}
	rl.cur.Store(newLive(p))
	reloadSuccessful.Set(1)
	reloadSuccessTime.Set(float64(time.Now().Unix()))
	return rl, nil
}

// current is the pipeline new requests go to.
func (rl *reloader) current() *Proxy { return rl.cur.Load().p }

func (rl *reloader) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/-/reload" {
		rl.serveReload(w, r)
		return
	}
	l := rl.acquire()
	defer l.gate.RUnlock()
	l.p.handler.ServeHTTP(w, r)
}

// acquire returns the current pipeline with its gate held for reading. The
// second load makes sure that the pipeline was still current once the gate
// was held, so a retire that has seen the gate free never misses a request.
func (rl *reloader) acquire() *live {
	for {
		l := rl.cur.Load()
		l.gate.RLock()
		if rl.cur.Load() == l {
			return l
		}
		l.gate.RUnlock()
	}
}

// serveReload is POST /-/reload: 200 when the new config runs, else 400
// with the reasons (the old config keeps running).
func (rl *reloader) serveReload(w http.ResponseWriter, r *http.Request) {
	if p := rl.current(); !reloadAccess(p.cfg, p.auth).allow(w, r) {
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "use POST /-/reload to reload the config file", http.StatusMethodNotAllowed)
		return
	}
	warnings, err := rl.reload("POST /-/reload")
	if err != nil {
		http.Error(w, "config not reloaded, the previous one keeps running:\n"+err.Error(), http.StatusBadRequest)
		return
	}
	fmt.Fprintln(w, "config reloaded")
	for _, warning := range warnings {
		fmt.Fprintln(w, "warning: "+warning)
	}
}

// watch reloads on every signal of opts.Signals until ctx is done.
func (rl *reloader) watch(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case sig, ok := <-rl.opts.Signals:
			if !ok {
				return
			}
			_, _ = rl.reload(sig.String())
		}
	}
}

// reload reads the config file and, when it is valid and can be applied
// without a restart, swaps in a pipeline built from it. It logs and
// counts the outcome either way.
func (rl *reloader) reload(trigger string) ([]string, error) {
	rl.mu.Lock()
	defer rl.mu.Unlock()
	warnings, err := rl.reloadLocked()
	if err != nil {
		reloadsFailed.Inc()
		reloadSuccessful.Set(0)
		rl.logger.Error("config reload failed; the previous config keeps running", "trigger", trigger,
			"config", rl.opts.ConfigPath, "error", err)
		return nil, err
	}
	reloadsSucceeded.Inc()
	reloadSuccessful.Set(1)
	reloadSuccessTime.Set(float64(time.Now().Unix()))
	for _, w := range warnings {
		rl.logger.Warn("config: " + w)
	}
	p := rl.current()
	rl.logger.Info("config reloaded", "trigger", trigger, "config", rl.opts.ConfigPath, "writers", len(p.writers),
		"mode", p.router.Mode().String(), "metric_format", len(p.cfg.Writer.MetricFormat) > 0)
	return warnings, nil
}

func (rl *reloader) reloadLocked() ([]string, error) {
	if rl.closed {
		return nil, errors.New("scoreproxy is shutting down")
	}
	if rl.opts.ConfigPath == "" {
		return nil, errors.New("no config file to reload: this server was started from a config in memory")
	}
	cfg, warnings, err := config.Load(rl.opts.ConfigPath)
	if err != nil {
		return nil, err
	}
	if rl.opts.Listen != "" {
		cfg.Listen = rl.opts.Listen
	}
	old := rl.cur.Load()
	if err := needsRestart(old.p.cfg, cfg); err != nil {
		return nil, err
	}
	p, err := build(cfg, rl.logger, old.p)
	if err != nil {
		return nil, err
	}
	rl.cur.Store(newLive(p))
	prev, done := rl.lastRetire, make(chan struct{})
	rl.lastRetire = done
	go rl.retire(old, p, prev, done)
	return warnings, nil
}

// retire closes old once its last request is done, after the retire before
// it (prev), so that a queue is closed only when no older pipeline can
// still send to it. Queues that next took over stay open.
func (rl *reloader) retire(old *live, next *Proxy, prev <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	old.gate.Lock() // every request on old has finished
	old.gate.Unlock()
	if prev != nil {
		<-prev
	}
	old.stopHealth()
	old.health.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), old.p.cfg.Server.ShutdownTimeout)
	defer cancel()
	if err := closeWriters(ctx, old.p.writers, next); err != nil {
		rl.logger.Error("closing the replaced pipeline", "error", err)
	}
}

// close refuses further reloads, waits for the retiring pipelines and
// closes the current one (clients, health checks, queues) within ctx. The
// HTTP server must have stopped sending requests to it.
func (rl *reloader) close(ctx context.Context) error {
	rl.mu.Lock()
	if rl.closed {
		rl.mu.Unlock()
		return nil
	}
	rl.closed = true
	last := rl.lastRetire
	rl.mu.Unlock()
	if last != nil {
		select {
		case <-last:
		case <-ctx.Done():
			return errors.New("closing the pipelines replaced by a reload: " + ctx.Err().Error())
		}
	}
	l := rl.cur.Load()
	l.stopHealth()
	l.health.Wait()
	return closeWriters(ctx, l.p.writers, nil)
}

// needsRestart refuses a config whose changes a reload cannot apply: the
// listener and the server's timeouts and TLS belong to the HTTP server,
// which stays up, and the queue settings to the open durable queues.
func needsRestart(old, cfg *config.Config) error {
	var changed []string
	if old.Listen != cfg.Listen {
		changed = append(changed, fmt.Sprintf("listen (%q -> %q)", old.Listen, cfg.Listen))
	}
	o, n := old.Server, cfg.Server
	for _, d := range []struct {
		key      string
		old, new time.Duration
	}{
		{"server.read_header_timeout", o.ReadHeaderTimeout, n.ReadHeaderTimeout},
		{"server.read_timeout", o.ReadTimeout, n.ReadTimeout},
		{"server.idle_timeout", o.IdleTimeout, n.IdleTimeout},
		{"server.shutdown_timeout", o.ShutdownTimeout, n.ShutdownTimeout},
	} {
		if d.old != d.new {
			changed = append(changed, fmt.Sprintf("%s (%s -> %s)", d.key, d.old, d.new))
		}
	}
	if !reflect.DeepEqual(o.ServerTLS, n.ServerTLS) {
		changed = append(changed, "the server's TLS keys")
	}
	if !reflect.DeepEqual(old.Queue, cfg.Queue) {
		changed = append(changed, "queue: (the durable queues stay open across reloads)")
	}
	if len(changed) == 0 {
		return nil
	}
	return fmt.Errorf("these settings cannot change while scoreproxy runs: %s; restart scoreproxy to apply them, "+
		"or put them back as they are to reload the rest", strings.Join(changed, ", "))
}
