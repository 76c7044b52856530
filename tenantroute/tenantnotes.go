package tenantroute

import "github.com/scoreproxy/scoreproxy/remotewrite"

// In multitenant mode vminsert reads each series' tenant from its labels,
// so the tenant check of a restricted credential and the per-tenant rate
// need the tenant of every series that goes upstream. A series routed
// through a cached rewrite has it in the rewrite (upTenants, read once when
// the rewrite was made); the router notes those while it routes a guarded
// request, and only a request with a series routed otherwise (a path
// tenant beyond those with a cache, labels the cache cannot key) falls back
// to reading its encoded batches again (authorizeBatch, countByTenant),
// which costs about as much as routing them.

// noted is one tenant pair (see labelTenants) of the series of a request:
// the first rewrite that had it, for the 403's message, and the samples of
// the series that had it, for the rate.
type noted struct {
	tenants [2]Tenant
	first   *rewrite
	samples int
}

// tenantNotes is the work's record of one guarded multitenant request.
type tenantNotes struct {
	on         bool // noting: a guarded request in MultitenantMode
	incomplete bool // a series went upstream without a rewrite: read the batches
	seen       []noted
	last       int // index in seen of the previous series' pair
	// index finds a pair in seen once there are many (a request spread
	// over many tenants); a scan finds it while there are few.
	index map[[2]Tenant]int
}

// notesScanned is how many pairs are found by a scan of seen.
const notesScanned = 16

func (n *tenantNotes) reset(on bool) {
	clear(n.seen)
	clear(n.index)
	*n = tenantNotes{on: on, seen: n.seen[:0], index: n.index}
}

// note records the tenants of series s, routed with rewrite e.
func (n *tenantNotes) note(e *rewrite, s *remotewrite.Series) {
	samples := s.Samples + s.Histograms
	if len(n.seen) > 0 && n.seen[n.last].tenants == e.upTenants {
		n.seen[n.last].samples += samples
		return
	}
	if i, ok := n.find(e.upTenants); ok {
		n.seen[i].samples += samples
		n.last = i
		return
	}
	n.seen = append(n.seen, noted{tenants: e.upTenants, first: e, samples: samples})
	n.last = len(n.seen) - 1
	if len(n.seen) > notesScanned {
		if n.index == nil {
			n.index = map[[2]Tenant]int{}
		}
		if len(n.index) == 0 { // just past notesScanned: index what was scanned so far
			for i := range n.seen {
				n.index[n.seen[i].tenants] = i
			}
		}
		n.index[e.upTenants] = n.last
	}
}

// find returns the index in seen of the pair t.
func (n *tenantNotes) find(t [2]Tenant) (int, bool) {
	if len(n.seen) > notesScanned {
		i, ok := n.index[t]
		return i, ok
	}
	for i := range n.seen {
		if n.seen[i].tenants == t {
			return i, true
		}
	}
	return 0, false
}

// complete reports whether the notes cover every series of the request.
func (n *tenantNotes) complete() bool { return n.on && !n.incomplete }

// upTenants returns the two readings of the tenant labels (labelTenants)
// of a multitenant series whose output labels are labels.
func upTenants(labels []remotewrite.Label) [2]Tenant {
	account, _, project, _ := findTenantLabels(labels)
	t, alt := labelTenants(account, project)
	return [2]Tenant{t, alt}
}

// checkNoted is the tenant check of authorizeBatch on the notes: the first
// pair, in the order the series came, that p does not allow is refused.
func checkNoted(p *Permit, seen []noted) error {
	for _, s := range seen {
		for _, t := range s.tenants {
			if !p.Allows(t) {
				labels := remotewrite.AppendLabels(nil, s.first.labelFields)
				return forbidden(p, t.String(), "the labels of series "+truncate(remotewrite.FormatLabels(labels), 200))
			}
		}
	}
	return nil
}

// countNoted is countByTenant on the notes: samples by the tenant as
// vminsert reads it (the second reading).
func countNoted(counts []tenantCount, seen []noted) []tenantCount {
next:
	for _, s := range seen {
		t := s.tenants[1]
		for j := range counts {
			if counts[j].tenant == t {
				counts[j].samples += s.samples
				continue next
			}
		}
		counts = append(counts, tenantCount{t, s.samples})
	}
	return counts
}
