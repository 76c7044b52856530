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
	w.hits = r.cache.lookupAll(w.hits[:0], req.Series)
	for i := range req.Series {
		s := &req.Series[i]
		if e := w.hits[i]; e != nil {
			if e.warnings != nil {
				w.repeats.note(e)
			}
			continue
		}
		in := w.inputLabels(s)
		w.warns = w.warns[:0]
		if r.mode == MultitenantMode {
			r.checkMultitenant(w, in, in)
		} else {
			r.checkNoTenantLabels(w, in, in)
		}
		if key := s.LabelFields(); key != nil {
			k, fields := sameBytes(key)
			r.remember(w, r.cache, k, fields, in, Tenant{})
		}
	}
	w.repeats.flush(r.warn)
	r.cache.storeFresh(w)
	series, samples, _, histograms := req.Totals()
	w.batches = append(w.batches[:0], batch{})
	b := &w.batches[0]
	b.series, b.samples = series, samples+histograms
	return r.sendBody(ctx, w, b, req.Compressed, time.Since(start))
}
