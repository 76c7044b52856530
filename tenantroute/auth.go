package tenantroute

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/VictoriaMetrics/metrics"

	"github.com/scoreproxy/scoreproxy/remotewrite"
)

// TenantPattern is one entry of a credential's tenants list: "*" (any
// tenant), "A:*" (every project of account A), "A" (tenant A:0, as vminsert
// reads a path tenant without a project) or "A:B".
type TenantPattern struct {
	Tenant     Tenant
	AnyAccount bool // "*": Tenant is ignored
	AnyProject bool // "A:*": only Tenant.AccountID counts
}

// ParseTenantPattern parses one tenants entry of an auth credential.
func ParseTenantPattern(s string) (TenantPattern, error) {
	if s == "*" {
		return TenantPattern{AnyAccount: true}, nil
	}
	if account, ok := strings.CutSuffix(s, ":*"); ok {
		t, err := ParseTenant(account)
		if err != nil || strings.Contains(account, ":") {
			return TenantPattern{}, patternSyntaxError(s)
		}
		return TenantPattern{Tenant: t, AnyProject: true}, nil
	}
	t, err := ParseTenant(s)
	if err != nil {
		return TenantPattern{}, patternSyntaxError(s)
	}
	return TenantPattern{Tenant: t}, nil
}

func patternSyntaxError(s string) error {
	return fmt.Errorf(`%q is not a tenant pattern: write "*" (any tenant), "<accountID>:*" (every project of an account), `+
		`"<accountID>" or "<accountID>:<projectID>", with numbers 0..4294967295 (e.g. "5:0" or "5:*")`, s)
}

// Match reports whether t is one of the tenants p stands for.
func (p TenantPattern) Match(t Tenant) bool {
	switch {
	case p.AnyAccount:
		return true
	case p.AnyProject:
		return p.Tenant.AccountID == t.AccountID
	}
	return p.Tenant == t
}

// String is the pattern as it is written in the config.
func (p TenantPattern) String() string {
	switch {
	case p.AnyAccount:
		return "*"
	case p.AnyProject:
		return strconv.FormatUint(uint64(p.Tenant.AccountID), 10) + ":*"
	}
	return p.Tenant.String()
}

// Permit is the set of tenants an authenticated producer may write to. It
// travels in the request context (WithPermit) from the inbound
// authentication to the router, which refuses a request with 403 when any of
// its series resolves to a tenant outside the permit (see authorize). A
// context without a permit (no auth configured) may write anywhere.
type Permit struct {
	// Name identifies the credential in errors and logs; never a secret.
	Name     string
	patterns []TenantPattern
	all      bool // one pattern is "*"
}

// NewPermit returns the permit of a credential named name.
func NewPermit(name string, patterns []TenantPattern) *Permit {
	p := &Permit{Name: name, patterns: patterns}
	for _, pt := range patterns {
		p.all = p.all || pt.AnyAccount
	}
	return p
}

// All reports whether the permit allows every tenant.
func (p *Permit) All() bool { return p == nil || p.all }

// Allows reports whether the permit allows tenant t.
func (p *Permit) Allows(t Tenant) bool {
	if p.All() {
		return true
	}
	for _, pt := range p.patterns {
		if pt.Match(t) {
			return true
		}
	}
	return false
}

// String lists the permitted patterns, e.g. "5:0, 7:*".
func (p *Permit) String() string {
	s := make([]string, len(p.patterns))
	for i, pt := range p.patterns {
		s[i] = pt.String()
	}
	return strings.Join(s, ", ")
}

type permitKey struct{}

// WithPermit returns ctx carrying the producer's permit.
func WithPermit(ctx context.Context, p *Permit) context.Context {
	return context.WithValue(ctx, permitKey{}, p)
}

// PermitFrom returns the permit in ctx, or nil (every tenant allowed).
func PermitFrom(ctx context.Context) *Permit {
	p, _ := ctx.Value(permitKey{}).(*Permit)
	return p
}

// guarded reports whether authorize has work to do for this request: ctx
// carries a permit that does not allow every tenant, or a per-tenant rate
// applies. The router then routes every series (no unchanged fast path) so
// that authorize sees each series' destination.
func (r *Router) guarded(ctx context.Context) bool { return r.rate != nil || !PermitFrom(ctx).All() }

// ReasonForbidden is the scoreproxy_requests_rejected_total reason of a
// request refused because it writes to a tenant its credential may not.
const ReasonForbidden = "forbidden_tenant"

var forbiddenTenant = metrics.GetOrCreateCounter(`scoreproxy_auth_failures_total{reason="forbidden_tenant"}`)

// authorize runs after routing and before anything is sent: it refuses the
// whole request with 403 when the path or any series' destination tenant is
// outside the producer's permit, then applies the per-tenant sample rate
// (rate.go), so nothing of a refused request is forwarded. The tenant is
// the one the upstream will store under: the path tenant,
// writer.tenant_id, the split tenant, or in multitenant mode each series'
// vm_account_id / vm_project_id as vminsert reads them (missing or invalid
// = 0; see labelTenants). A single-node upstream has no tenants: only a
// permit of "*" may write to it.
func (r *Router) authorize(ctx context.Context, w *work, pathTenant string) error {
	if err := r.checkPermit(ctx, w, pathTenant); err != nil {
		return err
	}
	return r.admitRate(w)
}

// checkPermit is the tenant check of authorize.
func (r *Router) checkPermit(ctx context.Context, w *work, pathTenant string) error {
	p := PermitFrom(ctx)
	if p.All() {
		return nil
	}
	if pathTenant != "" && pathTenant != Multitenant {
		if t, err := ParseTenant(pathTenant); err == nil && !p.Allows(t) {
			return forbidden(p, t.String(), "the request path /insert/"+pathTenant+"/")
		}
	}
	switch r.mode {
	case SingleNode:
		return forbidden(p, "single-node", "the upstream (a single-node VictoriaMetrics has no tenants; only credentials with tenants: [\"*\"] may write)")
	case FixedTenant:
		if !p.Allows(r.fixed) {
			return forbidden(p, r.fixed.String(), "writer.tenant_id")
		}
	case SplitMode:
		for i := range w.batches {
			if t := w.batches[i].tenant; !p.Allows(t) {
				return forbidden(p, t.String(), "a series' vm_account_id / vm_project_id labels")
			}
		}
	case MultitenantMode:
		if w.tenants.complete() && !r.checkBatches {
			return checkNoted(p, w.tenants.seen)
		}
		for i := range w.batches {
			if err := authorizeBatch(p, w.batches[i].buf); err != nil {
				return err
			}
		}
	}
	return nil
}

// decodePool holds the Requests authorizeBatch decodes output batches into.
var decodePool = sync.Pool{New: func() any { return new(remotewrite.Request) }}

// authorizeBatch reads the tenant of every series of an encoded multitenant
// batch the way vminsert will, and refuses the first one p does not allow.
// Decoding the batch again costs about as much as routing it; it is paid
// only for restricted credentials in multitenant mode, and checks exactly
// what goes upstream whatever metric_format did to the labels.
func authorizeBatch(p *Permit, buf []byte) error {
	req := decodePool.Get().(*remotewrite.Request)
	defer func() { req.Reset(); decodePool.Put(req) }()
	if err := remotewrite.DecodeWriteRequest(buf, req); err != nil {
		return fmt.Errorf("tenantroute: re-reading a routed batch for the tenant check: %w", err)
	}
	for i := range req.Series {
		labels := req.Series[i].Labels
		account, _, project, _ := findTenantLabels(labels)
		t, alt := labelTenants(account, project)
		for _, t := range []Tenant{t, alt} {
			if !p.Allows(t) {
				return forbidden(p, t.String(), "the labels of series "+truncate(remotewrite.FormatLabels(labels), 200))
			}
		}
	}
	return nil
}

// labelTenants reads a series' tenant labels two ways: as the router does
// (parseLabelID) and as strconv.ParseUint does (which vminsert uses, e.g.
// for "00000000005", 11 digits, which parseLabelID takes for 0). Where they
// differ, the tenant check requires both to be allowed, so a spelling the
// two read differently cannot slip past it.
func labelTenants(account, project []byte) (Tenant, Tenant) {
	a, _ := parseLabelID(account)
	p, _ := parseLabelID(project)
	return Tenant{a, p}, Tenant{strconvID(account), strconvID(project)}
}

// strconvID is a tenant label value read with strconv.ParseUint; 0 if invalid.
func strconvID(v []byte) uint32 {
	n, err := strconv.ParseUint(string(v), 10, 32)
	if err != nil {
		return 0
	}
	return uint32(n)
}

// forbidden is the 403 for a tenant outside the permit; it names the
// credential and the tenants it may write, never a secret.
func forbidden(p *Permit, tenant, where string) error {
	forbiddenTenant.Inc()
	return &remotewrite.StatusError{Code: http.StatusForbidden, Reason: ReasonForbidden,
		Msg: fmt.Sprintf("tenant %s (from %s) is not allowed for credential %q, which may write to tenants [%s]; nothing of this request was forwarded",
			tenant, where, p.Name, p.String())}
}

// truncate shortens s to at most n bytes for an error message.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
