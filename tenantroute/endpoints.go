package tenantroute

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/VictoriaMetrics/metrics"

	"github.com/scoreproxy/scoreproxy/remotewrite"
)

// endpoint is one upstream write URL and its forwarding counters.
type endpoint struct {
	url string
	// id is the endpoint's dense index, 0, 1, 2... in order of creation, or
	// -1 when the cache was full: per-request state is kept in slices
	// indexed by it, which is cheaper than a map lookup per series.
	id               int
	lane             lane // coalesces concurrent sends to url
	seriesForwarded  *metrics.Counter
	samplesForwarded *metrics.Counter
}

// maxCachedEndpoints bounds the endpoint cache: tenants come from labels a
// producer controls, and an unbounded cache would let it exhaust memory.
const maxCachedEndpoints = 100_000

// endpointCache maps tenants to endpoints so that URLs and metric names are
// built once per tenant, not once per request.
type endpointCache struct {
	router *Router
	byKey  sync.Map   // Tenant -> *endpoint
	mu     sync.Mutex // serializes inserts, so that ids are dense and unique
	size   int        // guarded by mu: endpoints stored in byKey
}

func (c *endpointCache) init(r *Router) { c.router = r }

// get returns the endpoint of tenant t (ignored outside SplitMode).
func (c *endpointCache) get(t Tenant) *endpoint {
	if c.router.mode != SplitMode {
		t = Tenant{}
	}
	if ep, ok := c.byKey.Load(t); ok {
		return ep.(*endpoint)
	}
	url := c.router.buildURL(t)
	label := strconv.Quote(remotewrite.RedactURL(url))
	ep := &endpoint{
		url:              url,
		lane:             lane{limit: c.router.inflight},
		seriesForwarded:  metrics.GetOrCreateCounter(`scoreproxy_series_forwarded_total{url=` + label + `}`),
		samplesForwarded: metrics.GetOrCreateCounter(`scoreproxy_samples_forwarded_total{url=` + label + `}`),
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.byKey.Load(t); ok {
		return old.(*endpoint)
	}
	ep.id = -1
	if c.size < maxCachedEndpoints {
		ep.id = c.size
		c.size++
		c.byKey.Store(t, ep)
	}
	return ep
}

// tenantBases parses routing.tenant_urls into the base URL per tenant. The
// URLs are looked up once per tenant, when its endpoint is created, so the
// map costs nothing per request.
func tenantBases(urls map[string]string, mode Mode) (map[Tenant]string, error) {
	if len(urls) == 0 {
		return nil, nil
	}
	if mode != SplitMode {
		return nil, errors.New("routing.tenant_urls needs routing.split_tenants: true")
	}
	bases := make(map[Tenant]string, len(urls))
	for key, base := range urls {
		t, err := ParseTenant(key)
		if err != nil {
			return nil, fmt.Errorf("routing.tenant_urls: %w", err)
		}
		if base = strings.TrimRight(base, "/"); base == "" {
			return nil, fmt.Errorf("routing.tenant_urls: tenant %s has an empty URL", key)
		}
		bases[t] = base
	}
	return bases, nil
}

// tenantBase is the base URL tenant t's requests go to: its own from
// routing.tenant_urls, else datasource_url.
func (r *Router) tenantBase(t Tenant) string {
	if base, ok := r.bases[t]; ok {
		return base
	}
	return r.base
}
