package tenantroute

import (
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/VictoriaMetrics/metrics"

	"github.com/scoreproxy/scoreproxy/remotewrite"
)

// endpoint is one upstream write URL and its forwarding counters.
type endpoint struct {
	url              string
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
	byKey  sync.Map // Tenant -> *endpoint
	size   atomic.Int64
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
		seriesForwarded:  metrics.GetOrCreateCounter(`scoreproxy_series_forwarded_total{url=` + label + `}`),
		samplesForwarded: metrics.GetOrCreateCounter(`scoreproxy_samples_forwarded_total{url=` + label + `}`),
	}
	if c.size.Load() < maxCachedEndpoints {
		if _, loaded := c.byKey.LoadOrStore(t, ep); !loaded {
			c.size.Add(1)
		}
	}
	return ep
}
