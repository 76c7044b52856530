package tenantroute

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/scoreproxy/scoreproxy/remotewrite"
)

// ReasonRateLimited is the reason of a request refused by TenantRate.
const ReasonRateLimited = "tenant_rate_limited"

var rateLimited = metrics.GetOrCreateCounter(`scoreproxy_limit_rejections_total{limit="tenant_samples_per_second"}`)

// maxRateTenants bounds the buckets a TenantRate keeps: a producer that
// invents tenants cannot grow its memory without bound.
const maxRateTenants = 100_000

// overflowTenant is the bucket shared by the tenants that find the map full.
var overflowTenant = Tenant{AccountID: math.MaxUint32, ProjectID: math.MaxUint32}

// TenantRate limits the samples per second each destination tenant
// receives (limits.max_samples_per_second_per_tenant): a token bucket per
// tenant holding at most one second's worth. A request that needs more
// tokens than its tenant has is refused whole with 429 and a Retry-After
// saying when it would fit; a request larger than one second's worth passes
// when the bucket is full and leaves it in debt, so large requests are
// slowed, not refused forever. Safe for concurrent use.
type TenantRate struct {
	perSecond float64
	now       func() time.Time

	mu      sync.Mutex
	buckets map[Tenant]*bucket // guarded by mu; at most maxRateTenants
}

type bucket struct {
	tokens float64   // may be negative: debt of an oversized request
	last   time.Time // when tokens was last refilled
}

// NewTenantRate returns a limiter of perSecond samples per tenant, or nil
// (no limit) for perSecond <= 0.
func NewTenantRate(perSecond int) *TenantRate {
	if perSecond <= 0 {
		return nil
	}
	return &TenantRate{perSecond: float64(perSecond), now: time.Now, buckets: map[Tenant]*bucket{}}
}

// tenantCount is the samples of one request for one tenant.
type tenantCount struct {
	tenant  Tenant
	samples int
}

// admit takes the samples of every tenant of a request, or none of them
// when one tenant lacks the tokens.
func (tr *TenantRate) admit(counts []tenantCount) error {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	now := tr.now()
	for _, c := range counts {
		b := tr.bucket(c.tenant, now)
		need := min(float64(c.samples), tr.perSecond)
		if b.tokens < need {
			rateLimited.Inc()
			wait := max(1, int(math.Ceil((need-b.tokens)/tr.perSecond)))
			return &remotewrite.StatusError{Code: http.StatusTooManyRequests, Reason: ReasonRateLimited, RetryAfter: strconv.Itoa(wait),
				Msg: fmt.Sprintf("tenant %s is over limits.max_samples_per_second_per_tenant (%g): this request has %d samples for it; retry in %ds",
					c.tenant, tr.perSecond, c.samples, wait)}
		}
	}
	for _, c := range counts {
		tr.buckets[tr.key(c.tenant)].tokens -= float64(c.samples)
	}
	return nil
}

// key is the bucket key of t: t itself, or the overflow bucket when the map
// is full of other tenants.
func (tr *TenantRate) key(t Tenant) Tenant {
	if _, ok := tr.buckets[t]; ok || len(tr.buckets) < maxRateTenants {
		return t
	}
	return overflowTenant
}

// bucket returns t's bucket refilled to now, creating it full. When the map
// is full it first forgets the buckets that are full again (they hold no
// state), then falls back to the overflow bucket.
func (tr *TenantRate) bucket(t Tenant, now time.Time) *bucket {
	if _, ok := tr.buckets[t]; !ok && len(tr.buckets) >= maxRateTenants {
		for k, b := range tr.buckets {
			if b.tokens+now.Sub(b.last).Seconds()*tr.perSecond >= tr.perSecond {
				delete(tr.buckets, k)
			}
		}
	}
	t = tr.key(t)
	b := tr.buckets[t]
	if b == nil {
		b = &bucket{tokens: tr.perSecond, last: now}
		tr.buckets[t] = b
	}
	b.tokens = min(tr.perSecond, b.tokens+now.Sub(b.last).Seconds()*tr.perSecond)
	b.last = now
	return b
}

// admitRate applies the router's TenantRate to a routed request: the
// tenant of each batch (split mode), writer.tenant_id, one bucket for a
// single node, or in multitenant mode each series' tenant labels as
// vminsert reads them (the batch is read again, as for the permit check).
func (r *Router) admitRate(w *work) error {
	if r.rate == nil {
		return nil
	}
	var counts []tenantCount
	switch r.mode {
	case SingleNode, FixedTenant:
		n := 0
		for i := range w.batches {
			n += w.batches[i].samples
		}
		counts = append(counts, tenantCount{r.fixed, n})
	case SplitMode:
		for i := range w.batches {
			counts = append(counts, tenantCount{w.batches[i].tenant, w.batches[i].samples})
		}
	case MultitenantMode:
		if w.tenants.complete() && !r.checkBatches {
			counts = countNoted(counts, w.tenants.seen)
			break
		}
		var err error
		for i := range w.batches {
			if counts, err = countByTenant(counts, w.batches[i].buf); err != nil {
				return err
			}
		}
	}
	return r.rate.admit(counts)
}

// countByTenant adds the samples of an encoded multitenant batch to counts,
// by the tenant vminsert will read from each series' labels.
func countByTenant(counts []tenantCount, buf []byte) ([]tenantCount, error) {
	req := decodePool.Get().(*remotewrite.Request)
	defer func() { req.Reset(); decodePool.Put(req) }()
	if err := remotewrite.DecodeWriteRequest(buf, req); err != nil {
		return counts, fmt.Errorf("tenantroute: re-reading a routed batch for the tenant rate: %w", err)
	}
next:
	for i := range req.Series {
		s := &req.Series[i]
		account, _, project, _ := findTenantLabels(s.Labels)
		_, t := labelTenants(account, project) // as vminsert reads them
		for j := range counts {
			if counts[j].tenant == t {
				counts[j].samples += s.Samples + s.Histograms
				continue next
			}
		}
		counts = append(counts, tenantCount{t, s.Samples + s.Histograms})
	}
	return counts, nil
}
