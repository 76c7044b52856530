package tenantroute

import (
	"github.com/scoreproxy/scoreproxy/remotewrite"
)

// route rewrites one series, resolves its tenant and appends it to its batch.
func (r *Router) route(w *work, s *remotewrite.Series, override []remotewrite.Label) {
	labels, rewritten := s.Labels, false
	if override != nil || !r.format.Identity() {
		w.labels, w.values = r.format.Apply(w.labels[:0], w.values[:0], s.Labels, override)
		labels, rewritten = w.labels, true
	}
	var b *batch
	switch r.mode {
	case SplitMode:
		var t Tenant
		t, labels = r.splitTenant(w, s, labels)
		b, rewritten = w.batchFor(t), true
	case MultitenantMode:
		r.checkMultitenant(s, labels)
		b = w.batchFor(Tenant{})
	default:
		if _, ok := remotewrite.LabelValue(labels, AccountLabel); ok {
			r.warn.tenantLabels(s.Labels)
		}
		b = w.batchFor(Tenant{})
	}
	if rewritten {
		b.buf = remotewrite.AppendSeries(b.buf, labels, s)
	} else {
		b.buf = remotewrite.AppendSeriesVerbatim(b.buf, s)
	}
	b.series++
	b.samples += s.Samples + s.Histograms
}

// splitTenant resolves the tenant of a series in SplitMode and returns its
// labels without vm_account_id / vm_project_id, in one pass over the labels.
// A missing or unparsable id becomes 0, as vminsert would make it.
func (r *Router) splitTenant(w *work, s *remotewrite.Series, labels []remotewrite.Label) (Tenant, []remotewrite.Label) {
	var t Tenant
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
	var accountOK, projectOK bool
	t.AccountID, accountOK = parseLabelID(account)
	t.ProjectID, projectOK = parseLabelID(project)
	switch {
	case !hasAccount:
		r.warn.missingAccount(s.Labels)
	case !accountOK:
		r.warn.invalidTenant(s.Labels, AccountLabel, account, t)
	}
	if hasProject && !projectOK {
		r.warn.invalidTenant(s.Labels, ProjectLabel, project, t)
	}
	return t, w.stripped
}

// checkMultitenant raises the warnings of MultitenantMode; the labels go
// upstream unchanged and vminsert resolves the tenant.
func (r *Router) checkMultitenant(s *remotewrite.Series, labels []remotewrite.Label) {
	account, hasAccount := remotewrite.LabelValue(labels, AccountLabel)
	if !hasAccount {
		r.warn.missingAccount(s.Labels)
		return
	}
	project, hasProject := remotewrite.LabelValue(labels, ProjectLabel)
	accountID, accountOK := parseLabelID(account)
	projectID, projectOK := parseLabelID(project)
	t := Tenant{AccountID: accountID, ProjectID: projectID}
	if !accountOK {
		r.warn.invalidTenant(s.Labels, AccountLabel, account, t)
	}
	if hasProject && !projectOK {
		r.warn.invalidTenant(s.Labels, ProjectLabel, project, t)
	}
}
