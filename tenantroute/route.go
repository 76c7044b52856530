package tenantroute

import (
	"bytes"

	"github.com/scoreproxy/scoreproxy/remotewrite"
)

// resolved is the outcome of rewriting and routing one series.
type resolved struct {
	tenant Tenant              // destination (SplitMode), zero otherwise
	labels []remotewrite.Label // output labels; may point into the work's scratch
	// fields, when not nil, are the output labels encoded (see splice),
	// and labels are then the input labels, whose tenant labels are the
	// output's. It points into the work's scratch.
	fields []byte
	// rewritten is false when labels are the series' own, unchanged.
	rewritten bool
	// drop is the relabeling stage that dropped the series (dropNone: kept);
	// a dropped series has no labels and no tenant.
	drop dropStage
	// queryKey is the series' query key (see queryKeyOf); not set for a
	// dropped series.
	queryKey queryKey
}

// route rewrites one series, resolves its tenant and appends it to its batch.
func (r *Router) route(w *work, s *remotewrite.Series, override []remotewrite.Label) {
	w.tenants.incomplete = true // no rewrite to note the tenant of
	res := r.resolve(w, s, override)
	if res.drop != dropNone {
		w.pipe.countDrop(res.drop, s)
		return
	}
	w.appendResolved(s, &res)
}

// appendResolved appends s, rewritten and routed as res, to its batch.
func (w *work) appendResolved(s *remotewrite.Series, res *resolved) {
	b := w.batchFor(res.tenant)
	if res.fields != nil {
		b.buf = remotewrite.AppendSeriesLabelFields(b.buf, res.fields, s)
	} else if res.rewritten || s.Reordered { // res.labels are sorted; a Known series has no Labels
		b.buf = remotewrite.AppendSeries(b.buf, res.labels, s)
	} else {
		b.buf = remotewrite.AppendSeriesVerbatim(b.buf, s)
	}
	b.count(s, res.queryKey)
}

// resolve rewrites one series' labels (relabel_configs, metric_format with
// the path tenant's labels, write_relabel_configs: see pipeline), finds its
// tenant for the router's mode from the result and its query key, and
// raises the mode's tenant warnings (left in w.warns, for the series'
// cached rewrite).
func (r *Router) resolve(w *work, s *remotewrite.Series, override []remotewrite.Label) resolved {
	in := w.inputLabels(s)
	res := resolved{}
	if fields, ok := r.splice(w, s, in, override); ok {
		res.fields, res.labels, res.rewritten = fields, in, true
	} else if res.labels, res.rewritten, res.drop = r.rewriteLabels(w, in, override); res.drop != dropNone {
		return res
	}
	res.queryKey = r.queryKeyOf(w, in)
	w.warns = w.warns[:0]
	switch r.mode {
	case SplitMode:
		if res.fields != nil { // the output's tenant labels are the input's
			account, hasAccount, project, hasProject := findTenantLabels(in)
			res.tenant = r.tenantOf(w, in, account, hasAccount, project, hasProject)
		} else {
			res.tenant, res.labels = r.splitTenant(w, in, res.labels)
		}
		res.rewritten = true
	case MultitenantMode:
		r.checkMultitenant(w, in, res.labels)
	default:
		r.checkNoTenantLabels(w, in, res.labels)
	}
	return res
}

// checkNoTenantLabels raises case 4 of the writer docs (a fixed tenant or a
// single node, and tenant labels on the series) for the series in whose
// output labels are labels.
func (r *Router) checkNoTenantLabels(w *work, in, labels []remotewrite.Label) {
	if _, ok, _, _ := findTenantLabels(labels); ok {
		r.raise(w, in, warning{kind: kindTenantLabels})
	}
}

// raise raises wn for the series whose input labels are in, and keeps it
// in w.warns for the series' cached rewrite.
func (r *Router) raise(w *work, in []remotewrite.Label, wn warning) {
	r.warn.raise(wn, in)
	w.warns = append(w.warns, wn)
}

// splitTenant resolves the tenant of a series in SplitMode and returns its
// labels without vm_account_id / vm_project_id, in one pass over the labels.
// A missing or unparsable id becomes 0, as vminsert would make it.
func (r *Router) splitTenant(w *work, in, labels []remotewrite.Label) (Tenant, []remotewrite.Label) {
	var account, project []byte
	hasAccount, hasProject := false, false
	w.stripped = w.stripped[:0]
	for _, l := range labels {
		switch string(l.Name) {
		case AccountLabel:
			account, hasAccount = l.Value, true
		case ProjectLabel:
			project, hasProject = l.Value, true
		default:
			w.stripped = append(w.stripped, l)
		}
	}
	return r.tenantOf(w, in, account, hasAccount, project, hasProject), w.stripped
}

// checkMultitenant raises the warnings of MultitenantMode; the labels go
// upstream unchanged and vminsert resolves the tenant.
func (r *Router) checkMultitenant(w *work, in, labels []remotewrite.Label) {
	account, hasAccount, project, hasProject := findTenantLabels(labels)
	r.tenantOf(w, in, account, hasAccount, project, hasProject)
}

var accountLabelBytes = []byte(AccountLabel)

// findTenantLabels finds vm_account_id and vm_project_id in sorted labels.
// It scans from the end and stops at the first name that sorts before
// vm_account_id: the tenant labels sort after almost every other label, so
// this usually takes two or three comparisons instead of a full scan.
func findTenantLabels(labels []remotewrite.Label) (account []byte, hasAccount bool, project []byte, hasProject bool) {
	for i := len(labels) - 1; i >= 0; i-- {
		switch name := labels[i].Name; {
		case string(name) == ProjectLabel:
			project, hasProject = labels[i].Value, true
		case string(name) == AccountLabel:
			return labels[i].Value, true, project, hasProject
		case bytes.Compare(name, accountLabelBytes) < 0:
			return nil, false, project, hasProject
		}
	}
	return nil, false, project, hasProject
}

// tenantOf reads the tenant labels as vminsert does and raises the warnings
// of a missing account (case 3) and of unparsable ids.
func (r *Router) tenantOf(w *work, in []remotewrite.Label, account []byte, hasAccount bool, project []byte, hasProject bool) Tenant {
	var t Tenant
	var accountOK, projectOK bool
	t.AccountID, accountOK = parseLabelID(account)
	t.ProjectID, projectOK = parseLabelID(project)
	switch {
	case !hasAccount:
		r.raise(w, in, warning{kind: kindMissingAccount, tenant: t})
	case !accountOK:
		r.raise(w, in, warning{kind: kindInvalidTenant, label: AccountLabel, value: string(account), tenant: t})
	}
	if hasProject && !projectOK {
		r.raise(w, in, warning{kind: kindInvalidTenant, label: ProjectLabel, value: string(project), tenant: t})
	}
	return t
}
