package tenantroute

import (
	"context"
	"errors"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/scoreproxy/scoreproxy/relabel"
	"github.com/scoreproxy/scoreproxy/remotewrite"
)

// Mode is how the writer addresses VictoriaMetrics.
type Mode int

const (
	// SingleNode writes to <datasource_url>/api/v1/write (no tenant_id).
	SingleNode Mode = iota
	// FixedTenant writes every series to /insert/<tenant_id>/prometheus/api/v1/write.
	FixedTenant
	// MultitenantMode writes to /insert/multitenant/... and vminsert picks the
	// tenant from each series' vm_account_id / vm_project_id labels.
	MultitenantMode
	// SplitMode splits each request into one request per tenant, sent to
	// /insert/<A:B>/..., with the tenant labels removed.
	SplitMode
)

func (m Mode) String() string {
	return [...]string{"single-node", "fixed-tenant", "multitenant", "split-tenants"}[m]
}

// Options configure a Router.
type Options struct {
	// BaseURL is writer.datasource_url.
	BaseURL string
	// TenantID is writer.tenant_id: "", "A", "A:B" or "multitenant".
	TenantID string
	// SplitTenants is routing.split_tenants (needs TenantID "multitenant").
	SplitTenants bool
	// Format is the compiled metric_format; nil passes labels unchanged.
	Format *relabel.Format
	// FormatMatch selects the series Format applies to (routing.format_match);
	// nil selects the series that carry Format's query key label.
	FormatMatch *relabel.Selector
	// Relabel and WriteRelabel are relabel_configs, applied before Format,
	// and write_relabel_configs, applied after it; nil when none.
	Relabel, WriteRelabel *relabel.Rules
	// MaxParallelSends bounds the upstream requests in flight for one
	// incoming request in split mode (default 16).
	MaxParallelSends int
	// MaxInflightPerEndpoint bounds the upstream requests in flight to one
	// endpoint; batches that arrive while that many are in flight are
	// coalesced into one request (see lane). 0 chooses: 1 per tenant
	// endpoint in SplitMode, where the tenants' endpoints send in parallel
	// and coalescing saves the most, else 2 x GOMAXPROCS (at least 4), as
	// vmagent's -remoteWrite.queues, so one busy endpoint still gets
	// several requests in flight.
	MaxInflightPerEndpoint int
	Logger                 *slog.Logger
	// TenantRate limits the samples per second per tenant; nil: no limit.
	TenantRate *TenantRate
	// TenantURLs maps tenants ("A" or "A:B") to the datasource_url their
	// requests go to in SplitMode instead of BaseURL (routing.tenant_urls).
	TenantURLs map[string]string
}

// Sender delivers one snappy-compressed RW1 body to an upstream URL.
// remotewrite.Client implements it; so does the durable queue.
type Sender interface {
	Send(ctx context.Context, url string, body []byte, stats remotewrite.BatchStats) remotewrite.SendResult
}

// Router implements remotewrite.Processor: it rewrites every series with
// metric_format, resolves its tenant, groups series into per-endpoint
// batches and hands the batches to a Sender. It is safe for concurrent use.
type Router struct {
	mode     Mode
	fixed    Tenant // the tenant of FixedTenant mode
	base     string // datasource_url without trailing slash
	format   *relabel.Format
	queryKey string     // the query key label of format (routing.query_key_label)
	keys     *queryKeys // the values of queryKey seen, interned
	pipe     pipeline   // relabeling around format; see rewriteLabels
	// splices is whether the metric_format of a selected series can go
	// straight to the encoding (see splice).
	splices  bool
	sender   Sender
	parallel int
	workers  *sendWorkers // goroutines for parallel sends, kept between requests
	inflight int          // upstream requests in flight per endpoint at most
	// checkBatches makes the multitenant tenant check and rate read the
	// encoded batches even when the rewrites noted every tenant: for the
	// tests that compare the two.
	checkBatches bool
	warn         *warner
	endpoints    endpointCache
	cache        *rewriteCache // rewrites of the label sets seen (the identity when unchanged)
	paths        pathCaches    // rewrites for requests to /insert/<tenant>/ (see pathcache.go)
	pool         sync.Pool     // of *work
	rate         *TenantRate   // nil: no per-tenant rate limit (see rate.go)

	// bases are the SplitMode tenants with a base URL of their own (see endpoints.go).
	bases map[Tenant]string
}

// New validates opts and returns a Router that sends through sender.
func New(opts Options, sender Sender) (*Router, error) {
	r := &Router{base: strings.TrimRight(opts.BaseURL, "/"), format: opts.Format, sender: sender,
		parallel: opts.MaxParallelSends, workers: newSendWorkers(workerIdle), warn: newWarner(opts.Logger), rate: opts.TenantRate}
	if r.base == "" {
		return nil, errors.New("tenantroute: datasource_url is empty")
	}
	if opts.Logger == nil {
		r.warn.log = slog.Default()
	}
	if r.parallel <= 0 {
		r.parallel = 16
	}
	r.inflight = opts.MaxInflightPerEndpoint
	if r.format == nil {
		f, err := relabel.Compile(nil, "for")
		if err != nil {
			return nil, err
		}
		r.format = f
	}
	r.queryKey, r.keys = r.format.QueryKey(), newQueryKeys()
	var err error
	if r.pipe, err = newPipeline(opts, r.format); err != nil {
		return nil, err
	}
	if err := r.setMode(opts); err != nil {
		return nil, err
	}
	r.splices = r.canSplice()
	if r.inflight <= 0 {
		r.inflight = defaultInflight(r.mode)
	}
	if r.bases, err = tenantBases(opts.TenantURLs, r.mode); err != nil {
		return nil, err
	}
	r.endpoints.init(r)
	r.cache = newRewriteCache(defaultCacheBytes, hintSlots)
	r.pool.New = func() any { return &work{endpoints: &r.endpoints, index: map[Tenant]int{}} }
	return r, nil
}

// defaultInflight is the default of Options.MaxInflightPerEndpoint.
func defaultInflight(m Mode) int {
	if m == SplitMode {
		return 1
	}
	return max(4, 2*runtime.GOMAXPROCS(0))
}

func (r *Router) setMode(opts Options) error {
	switch opts.TenantID {
	case "":
		r.mode = SingleNode
	case Multitenant:
		r.mode = MultitenantMode
		if opts.SplitTenants {
			r.mode = SplitMode
		}
	default:
		t, err := ParseTenant(opts.TenantID)
		if err != nil {
			return errors.New("writer.tenant_id: " + err.Error())
		}
		r.mode, r.fixed = FixedTenant, t
	}
	if opts.SplitTenants && r.mode != SplitMode {
		return errors.New("routing.split_tenants needs writer.tenant_id: multitenant")
	}
	return nil
}

// Mode returns the routing mode.
func (r *Router) Mode() Mode { return r.mode }

// buildURL formats the write URL of tenant t for the router's mode.
func (r *Router) buildURL(t Tenant) string {
	switch r.mode {
	case SingleNode:
		return r.base + "/api/v1/write"
	case FixedTenant:
		return r.base + "/insert/" + r.fixed.String() + "/prometheus/api/v1/write"
	case MultitenantMode:
		return r.base + "/insert/multitenant/prometheus/api/v1/write"
	default:
		return r.tenantBase(t) + "/insert/" + t.String() + "/prometheus/api/v1/write"
	}
}

// Process implements remotewrite.Processor.
func (r *Router) Process(ctx context.Context, req *remotewrite.Request, pathTenant string) (err error) {
	vote := gateVote{gate: sendGateFrom(ctx)}
	defer func() { vote.finish(err) }()
	if len(req.Series) == 0 && len(req.Metadata) == 0 {
		return nil
	}
	started := time.Now()
	w := r.pool.Get().(*work)
	defer r.release(w)
	w.reset()
	override, defaultTenant, err := r.pathOverride(w, pathTenant)
	if err != nil {
		return err
	}
	if r.unchanged() && override == nil && req.Compressed != nil && !r.guarded(ctx) {
		if !vote.pass() {
			return ErrRefusedElsewhere
		}
		return r.forwardUnchanged(sendContext(ctx), w, req)
	}
	w.tenants.reset(r.mode == MultitenantMode && r.guarded(ctx))
	if c := r.cacheForPath(pathTenant); c != nil {
		r.routeAllCached(w, c, req, override)
	} else {
		for i := range req.Series {
			r.route(w, &req.Series[i], override)
		}
	}
	w.pipe.flushDrops()
	w.repeats.flush(r.warn)
	w.addMetadata(req.Metadata, defaultTenant)
	if err := r.authorize(ctx, w, pathTenant); err != nil { // before anything is sent: see auth.go
		return err
	}
	if !vote.pass() { // another writer refused the request (see SendGate)
		return ErrRefusedElsewhere
	}
	return r.send(sendContext(ctx), w, started)
}

// pathOverride turns the tenant of a vminsert-shaped request path into the
// tenant labels every series of the request gets (multitenant and split
// modes), as vmagent's multitenant handlers do. In the modes with a single
// destination the path tenant cannot be honoured: it is warned about.
func (r *Router) pathOverride(w *work, pathTenant string) ([]remotewrite.Label, Tenant, error) {
	if pathTenant == "" || pathTenant == Multitenant {
		return nil, Tenant{}, nil
	}
	t, err := ParseTenant(pathTenant)
	if err != nil {
		return nil, Tenant{}, &remotewrite.DecodeError{Reason: remotewrite.ReasonBadTenant,
			Msg: "bad tenant in request path /insert/" + pathTenant + "/: " + err.Error()}
	}
	switch r.mode {
	case SingleNode:
		r.warn.pathTenant(pathTenant, "a single-node VictoriaMetrics")
		return nil, t, nil
	case FixedTenant:
		if t != r.fixed {
			r.warn.pathTenant(pathTenant, "tenant "+r.fixed.String())
		}
		return nil, t, nil
	}
	return w.tenantLabels(t), t, nil
}

func (r *Router) release(w *work) {
	w.clearRefs()
	if w.retainedBytes() <= maxRetainedWork {
		r.pool.Put(w)
	}
}
