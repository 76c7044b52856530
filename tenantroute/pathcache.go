package tenantroute

import (
	"sync"

	"github.com/scoreproxy/scoreproxy/remotewrite"
)

// A request to a vminsert-shaped path (/insert/<tenant>/...) in multitenant
// or split mode has its series' tenant labels set to the path's tenant
// before metric_format and relabeling (see pathOverride), so its rewrites
// differ from those of the same series sent to /api/v1/write, and from
// those for another path tenant. Each path tenant therefore gets a rewrite
// cache of its own, made on first use, so that producers that write to
// /insert/<tenant>/ (as they would to vminsert) get the same cached path as
// the others. Their number and memory are bounded: they share
// pathCacheBytes, each with an equal part (at least minPathCacheBytes), and
// requests for path tenants beyond maxPathCaches are routed without a cache
// (correct, about 7x the CPU per sample).

const (
	// pathCacheBytes bounds the memory of all path tenants' caches together.
	pathCacheBytes = 4 * defaultCacheBytes
	// minPathCacheBytes is the least a path tenant's cache may hold, so
	// that one of many tenants still keeps most of a request's series
	// (about 500 of the standard ones with the seed metric_format).
	minPathCacheBytes = 256 << 10
	// maxPathCaches is how many path tenants get a rewrite cache: as many
	// as pathCacheBytes holds at minPathCacheBytes each.
	maxPathCaches = pathCacheBytes / minPathCacheBytes
	// pathHintSlots is how many series positions of a request to a path
	// tenant have a position hint (the rest are found in the maps).
	pathHintSlots = 1 << 11
)

// pathCaches holds the rewrite caches of the path tenants.
type pathCaches struct {
	mu sync.Mutex
	m  map[Tenant]*rewriteCache // guarded by mu
}

// get returns the cache of path tenant t, making it on first use, or nil
// when maxPathCaches tenants have one already. Making one shrinks the
// others' share of pathCacheBytes (they start a new generation sooner).
func (p *pathCaches) get(t Tenant) *rewriteCache {
	p.mu.Lock()
	defer p.mu.Unlock()
	if c := p.m[t]; c != nil {
		return c
	}
	if len(p.m) >= maxPathCaches {
		return nil
	}
	if p.m == nil {
		p.m = map[Tenant]*rewriteCache{}
	}
	share := max(minPathCacheBytes, pathCacheBytes/(len(p.m)+1))
	c := newRewriteCache(share, pathHintSlots)
	for _, other := range p.m {
		other.resize(share)
	}
	p.m[t] = c
	return c
}

// cacheForPath returns the rewrite cache for requests to the path tenant
// pathTenant: the router's own when the path does not change the labels
// (no path tenant, multitenant, or a mode that ignores it), a path tenant's
// otherwise, nil when the path tenant is invalid or has no cache.
func (r *Router) cacheForPath(pathTenant string) *rewriteCache {
	if pathTenant == "" || pathTenant == Multitenant || (r.mode != MultitenantMode && r.mode != SplitMode) {
		return r.cache
	}
	t, err := ParseTenant(pathTenant)
	if err != nil {
		return nil
	}
	return r.paths.get(t)
}

// KnownForPath implements remotewrite.PathKnownLabelSets: the decoder of a
// request to a vminsert-shaped path skips the labels of the series the
// path tenant's cache knows.
func (r *Router) KnownForPath(pathTenant string) remotewrite.KnownLabelSets {
	c := r.cacheForPath(pathTenant)
	if c == nil {
		return nil
	}
	return c
}

// BeginKnown, Known and EndKnown make a rewriteCache a
// remotewrite.KnownLabelSets (see Router.Known). BeginKnown declines the
// request while caching is futile (see admission.futile): the decoder then
// spends no lookup on series the cache almost never holds.
func (c *rewriteCache) BeginKnown() bool {
	if c.admit.futile() {
		return false
	}
	c.mu.RLock()
	return true
}

// EndKnown ends the lookups begun by BeginKnown.
func (c *rewriteCache) EndKnown() { c.mu.RUnlock() }

// Known returns the cached rewrite of labelFields, or nil, whether those
// labels are out of order, and the keyHash it computed (0 when a position
// hint answered); between BeginKnown and EndKnown.
func (c *rewriteCache) Known(index int, labelFields []byte) (any, bool, uint64) {
	e, h := c.lookupLocked(index, labelFields)
	if e != nil {
		return e, e.reordered, h
	}
	return nil, false, h // a nil interface, not a nil *rewrite
}
