package tenantroute

import (
	"context"
	"time"

	"github.com/scoreproxy/scoreproxy/remotewrite"
)

// unchanged reports whether the router leaves every series as it is: no
// metric_format, no relabeling and a single destination. Then the producer's compressed
// body is forwarded as received, which saves re-encoding and re-compressing
// it (about a third of the proxy's CPU).
func (r *Router) unchanged() bool {
	return r.format.Identity() && !r.pipe.rewrites() && r.mode != SplitMode
}

// forwardUnchanged checks every series for the tenant warnings of the mode,
// then sends the request's original compressed body. A series checked
// before is in the rewrite cache (as its own, identity rewrite, with the
// warnings it raised), so the decoder did not even parse its labels
// (Series.Known): its warnings are raised again from the cache; the others
// are checked and remembered. A request of known series allocates nothing.
func (r *Router) forwardUnchanged(ctx context.Context, w *work, req *remotewrite.Request) error {
	start := time.Now()
	// The cache is consulted here too, not only by the decoder: a caller
	// may decode without it (several writers share one decoded request).
	w.hits, w.storing = r.cache.lookupAll(w.hits[:0], req, r.consulted(req, r.cache))
	b := w.batchOf(r.endpoints.get(Tenant{}), Tenant{})
	for i := range req.Series {
		s := &req.Series[i]
		if e := w.hits[i]; e != nil {
			if e.warnings != nil {
				w.repeats.note(e)
			}
			b.count(s, e.queryKey)
			continue
		}
		b.count(s, r.checkUnchanged(w, s))
	}
	w.repeats.flush(r.warn)
	r.cache.storeFresh(w)
	return r.sendBody(ctx, w, b, req.Compressed, time.Since(start))
}

// checkUnchanged raises the tenant warnings of a series the cache does not
// know, remembers it as its own rewrite and returns its query key.
func (r *Router) checkUnchanged(w *work, s *remotewrite.Series) queryKey {
	in := w.inputLabels(s)
	w.warns = w.warns[:0]
	if r.mode == MultitenantMode {
		r.checkMultitenant(w, in, in)
	} else {
		r.checkNoTenantLabels(w, in, in)
	}
	id := r.queryKeyOf(w, in)
	if key := s.LabelFields(); key != nil && w.storing {
		if h := seriesKeyHash(s, key); r.cache.admitsNew(w, h, len(key)) {
			k, fields := sameBytes(key)
			r.remember(w, r.cache, k, h, fields, in, Tenant{}).queryKey = id
		}
	}
	return id
}
