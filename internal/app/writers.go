package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/scoreproxy/scoreproxy/config"
	"github.com/scoreproxy/scoreproxy/queue"
	"github.com/scoreproxy/scoreproxy/remotewrite"
	"github.com/scoreproxy/scoreproxy/tenantroute"
)

// writerPipe is one writer's delivery path, router -> [queue ->] upstream:
// with writers: every writer gets one, and so a full copy of the data, with
// its own client, credentials, metric_format, retries and queue.
type writerPipe struct {
	key    string // how the config names it: "writer" or "writers[i]"
	name   string // writers[i].name; "" for writer:
	cfg    config.Writer
	client *remotewrite.Client
	health *remotewrite.HealthChecker // nil with writer.debug
	router *tenantroute.Router
	// queue is the durable queue (nil unless queue.path is set), in queueDir.
	// It outlives a reload that keeps the writer (see reload.go): its
	// upstream is then switched to the new client, and the queued data stays.
	queue    *queue.Queue
	queueDir string
	upstream *switchSender // the queue's upstream; nil without a queue
}

// label is the writer as logs and error messages name it.
func (wp *writerPipe) label() string {
	if wp.name == "" {
		return wp.key
	}
	return wp.key + " (" + wp.name + ")"
}

// queueDir is where writer w keeps its queue: queue.path itself for a
// single writer: section, <queue.path>/<name> for each entry of writers:.
func queueDir(cfg *config.Config, w config.Writer) string {
	if len(cfg.Writers) == 0 {
		return cfg.Queue.Path
	}
	return filepath.Join(cfg.Queue.Path, w.Name)
}

// newWriters builds every writer's pipe. A writer whose queue directory a
// writer of prev (the pipeline being replaced, or nil) already has open
// takes that queue over instead of opening it again. On error it closes
// what it opened, and nothing of prev.
func newWriters(cfg *config.Config, logger *slog.Logger, prev *Proxy) ([]*writerPipe, error) {
	var pipes []*writerPipe
	for i, w := range cfg.WriterList() {
		wp, err := newWriterPipe(cfg, i, w, logger, prev)
		if err != nil {
			closeWriters(context.Background(), pipes, prev)
			return nil, err
		}
		pipes = append(pipes, wp)
	}
	return pipes, nil
}

// newWriterPipe wires client -> [queue ->] router for writer i.
func newWriterPipe(cfg *config.Config, i int, w config.Writer, logger *slog.Logger, prev *Proxy) (*writerPipe, error) {
	wp := &writerPipe{key: cfg.WriterKey(i), name: w.Name, cfg: w}
	if wp.name != "" {
		logger = logger.With("writer", wp.name)
	}
	client, err := remotewrite.NewClient(remotewrite.ClientConfig{
		Timeout: w.Timeout, User: w.User, Password: w.Password,
		BearerToken: w.BearerToken, BearerTokenFile: w.BearerTokenFile,
		VerifyTLS: w.VerifyTLS, CAFile: w.CAFile, CertFile: w.TLSCertFile, KeyFile: w.TLSKeyFile,
		UserAgent: "scoreproxy/" + Version, Compression: remotewrite.Compression(w.Compression), Logger: logger,
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", wp.key, err)
	}
	wp.client = client
	opts, err := routerOptions(cfg, i, w, logger)
	if err != nil {
		return nil, err
	}
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
		wp.health = remotewrite.NewHealthChecker(client, w.HealthURL(), cfg.Server.HealthCheckInterval, logger)
	}
	if cfg.Queue.Enabled() {
		if err := wp.openQueue(cfg, upstream, logger, prev); err != nil {
			return nil, err
		}
		sender = wp.queue
		if wp.health != nil {
			// Delivery resumes within a probe of the upstream's recovery,
			// not when the workers' backoff ends.
			wp.health.OnReady(wp.queue.Wake)
		}
	}
	if wp.router, err = tenantroute.New(opts, sender); err != nil {
		closeWriters(context.Background(), []*writerPipe{wp}, prev)
		return nil, err
	}
	return wp, nil
}

// routerOptions are the router settings of writer i: its own URL, tenant
// and metric_format, the shared routing, relabeling and limits.
func routerOptions(cfg *config.Config, i int, w config.Writer, logger *slog.Logger) (tenantroute.Options, error) {
	format, err := cfg.CompileWriterFormat(i, w)
	if err != nil {
		return tenantroute.Options{}, err
	}
	formatMatch, err := cfg.FormatSelector()
	if err != nil {
		return tenantroute.Options{}, err
	}
	relabelRules, writeRelabelRules := cfg.RelabelRules()
	return tenantroute.Options{
		BaseURL: w.BaseURL(), TenantID: w.TenantID, SplitTenants: cfg.Routing.SplitTenants,
		MaxInflightPerEndpoint: cfg.Routing.MaxInflightPerEndpoint, TenantURLs: cfg.Routing.TenantURLs,
		Format: format, Logger: logger, TenantRate: tenantroute.NewTenantRate(cfg.Limits.MaxSamplesPerSecondPerTenant),
		FormatMatch: formatMatch, Relabel: relabelRules, WriteRelabel: writeRelabelRules,
	}, nil
}

// openQueue opens the writer's queue, or takes over prev's queue of the
// same directory and points its upstream at this writer's client.
func (wp *writerPipe) openQueue(cfg *config.Config, upstream tenantroute.Sender, logger *slog.Logger, prev *Proxy) error {
	wp.queueDir = queueDir(cfg, wp.cfg)
	if old := prev.writerByQueue(wp.queueDir); old != nil {
		wp.queue, wp.upstream = old.queue, old.upstream
		wp.upstream.set(upstream)
		return nil
	}
	wp.upstream = newSwitchSender(upstream)
	q := cfg.Queue
	var err error
	wp.queue, err = queue.Open(queue.Options{Dir: wp.queueDir, MaxDiskBytes: q.MaxDiskBytes, SegmentBytes: q.SegmentBytes,
		MaxRejectedBytes: q.MaxRejectedBytes, RetryMinInterval: q.RetryMinInterval, RetryMaxInterval: q.RetryMaxInterval,
		DeliveryConcurrency: q.DeliveryConcurrency, MaxBatchBytes: q.MaxBatchBytes, Logger: logger}, wp.upstream)
	if err != nil && wp.name != "" {
		return fmt.Errorf("queue.path: %s, in %s: %w", wp.label(), wp.queueDir, err)
	}
	if err != nil {
		return fmt.Errorf("queue.path: %w", err)
	}
	return nil
}

// writerByQueue returns p's writer whose queue is in dir, or nil (also for
// a nil p).
func (p *Proxy) writerByQueue(dir string) *writerPipe {
	if p == nil {
		return nil
	}
	for _, wp := range p.writers {
		if wp.queue != nil && wp.queueDir == dir {
			return wp
		}
	}
	return nil
}

// closeWriters closes the clients of pipes and the queues that keep (the
// pipeline taking over or staying, or nil) does not use. Undelivered data
// stays on disk.
func closeWriters(ctx context.Context, pipes []*writerPipe, keep *Proxy) error {
	var errs []error
	for _, wp := range pipes {
		wp.client.Close()
		if wp.queue != nil && keep.writerByQueue(wp.queueDir) == nil {
			if err := wp.queue.Close(ctx); err != nil {
				errs = append(errs, fmt.Errorf("closing the queue of %s: %w", wp.label(), err))
			}
		}
	}
	return errors.Join(errs...)
}

// switchSender is a queue's upstream that a reload can replace while the
// queue keeps running (new credentials, TLS or output for the same queue).
type switchSender struct {
	cur atomic.Pointer[tenantroute.Sender]
}

func newSwitchSender(s tenantroute.Sender) *switchSender {
	sw := &switchSender{}
	sw.set(s)
	return sw
}

func (s *switchSender) set(to tenantroute.Sender) { s.cur.Store(&to) }

func (s *switchSender) Send(ctx context.Context, url string, body []byte, stats remotewrite.BatchStats) remotewrite.SendResult {
	return (*s.cur.Load()).Send(ctx, url, body, stats)
}

// fanout is the processor with several writers: every writer's router
// processes the whole request, in parallel. The producer gets 2xx only when
// every writer accepted its copy (with queue.path: queued it), so nothing is
// acknowledged that a writer lost; otherwise the most retryable failure, so
// that the producer retries (the writers that accepted then get the data
// again: VictoriaMetrics deduplicates identical samples only with
// -dedup.minScrapeInterval). With queue.path a writer whose upstream is down
// does not hold back the others until its queue is full (max_disk_bytes).
type fanout struct{ writers []*writerPipe }

func (f *fanout) Process(ctx context.Context, req *remotewrite.Request, pathTenant string) error {
	if !tenantroute.PermitFrom(ctx).All() {
		// A restricted credential: no writer may send until every writer
		// has checked the request's tenants (403 forwards nothing).
		ctx = tenantroute.WithSendGate(ctx, tenantroute.NewSendGate(len(f.writers)))
	}
	errs := make([]error, len(f.writers))
	var wg sync.WaitGroup
	for i, wp := range f.writers[1:] {
		wg.Go(func() { errs[i+1] = wp.router.Process(ctx, req, pathTenant) })
	}
	errs[0] = f.writers[0].router.Process(ctx, req, pathTenant)
	wg.Wait()
	return f.combine(errs)
}

// combine picks the error the producer gets: the first retryable one (no
// status, 429 or 5xx), else the first one; its message names the writer.
func (f *fanout) combine(errs []error) error {
	pick := -1
	for i, err := range errs {
		if err == nil || errors.Is(err, tenantroute.ErrRefusedElsewhere) {
			continue // the refusal itself is another writer's error
		}
		if pick < 0 {
			pick = i
		}
		if retryable(err) {
			pick = i
			break
		}
	}
	if pick < 0 {
		return nil
	}
	err, label := errs[pick], f.writers[pick].label()
	var se *remotewrite.StatusError
	if errors.As(err, &se) {
		named := *se
		named.Msg = label + ": " + se.Msg
		return &named
	}
	return fmt.Errorf("%s: %w", label, err)
}

// retryable reports whether the producer should send err's request again.
func retryable(err error) bool {
	var se *remotewrite.StatusError
	if !errors.As(err, &se) {
		var de *remotewrite.DecodeError
		return !errors.As(err, &de) // a bad request stays bad
	}
	return se.Code == 429 || se.Code >= 500
}

// processor is what the receive handler hands requests to, and known what
// it may use to skip the labels of known series: the router itself with one
// writer; with several, the first writer's router. Its rewrite cache knows
// the series every writer has seen (each writer gets every series), so the
// decoder skips their labels; each other router finds its own rewrites by
// position hint and map (a rewrite carries its cache, so none takes the
// first writer's for its own) and parses the labels of a series it does not
// know from their bytes.
func processor(pipes []*writerPipe) (remotewrite.Processor, remotewrite.KnownLabelSets) {
	if len(pipes) == 1 {
		return pipes[0].router, pipes[0].router
	}
	return &fanout{writers: pipes}, pipes[0].router
}
