package tenantroute

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/scoreproxy/scoreproxy/remotewrite"
)

// The tenant cases of the vmanomaly writer docs that raise a warning, plus
// the one the docs do not cover: a tenant label vminsert cannot parse.
const (
	caseMissingAccount = "3"       // multitenant, series without vm_account_id
	caseTenantLabels   = "4"       // fixed tenant (or single-node), series with vm_account_id
	caseInvalidTenant  = "invalid" // vm_account_id / vm_project_id not a uint32
)

var warningsByCase = map[string]*metrics.Counter{
	caseMissingAccount: metrics.NewCounter(`scoreproxy_tenant_warnings_total{case="3"}`),
	caseTenantLabels:   metrics.NewCounter(`scoreproxy_tenant_warnings_total{case="4"}`),
	caseInvalidTenant:  metrics.NewCounter(`scoreproxy_tenant_warnings_total{case="invalid"}`),
}

// The warning texts of the writer docs; %s is the offending series (and, in
// textMissingAccount, then the tenant written: see missingAccountTenant).
const (
	textMissingAccount = "The label `vm_account_id` was not found in the label set of %s, " +
		"but tenant_id='multitenant' is set in writer. The data will be written to %s. " +
		"Ensure that the query retains the necessary multi-tenant labels, " +
		"or adjust the aggregation settings to preserve `vm_account_id` key in the label set."
	textTenantLabels = "The label set for the metric %s contains multi-tenancy labels, " +
		"but the write endpoint is configured for single-tenant mode (tenant_id != 'multitenant'). " +
		"Either adjust the query in the reader to avoid multi-tenancy labels " +
		"or ensure that reserved key `vm_account_id` is not explicitly set for single-tenant environments."
	textInvalidTenant = "The label %s=%q of %s is not a valid tenant number (0..4294967295); " +
		"vminsert would treat it as 0, so the data will be written to tenant %s. " +
		"Fix the producer so that the label holds the numeric account or project id."
	textPathTenant = "The request path names tenant %q, but the writer sends every series to %s " +
		"(tenant_id != 'multitenant'); the path tenant is ignored. " +
		"Point the producer at /api/v1/write, or set writer.tenant_id: multitenant to honour path tenants."
)

// warner counts every tenant warning and logs a rate-limited few of them.
// Counting is a single atomic add; the series is formatted only when a line
// is actually logged, so a flood of bad series costs almost nothing.
type warner struct {
	log   *slog.Logger
	limit *remotewrite.LogLimiter
}

func newWarner(log *slog.Logger) *warner {
	return &warner{log: log, limit: remotewrite.NewLogLimiter(time.Minute, 10)}
}

// allow counts a warning of case c and reports whether to log it.
func (w *warner) allow(c string) (bool, int) {
	warningsByCase[c].Inc()
	return w.limit.Allow(c)
}

func (w *warner) emit(c string, suppressed int, msg string) {
	w.log.Warn(msg, "case", c, "suppressed_since_last", suppressed)
}

// warning is a tenant warning one series raises. It is kept with the
// series' cached rewrite, so that every later occurrence raises it again
// (counted, and logged within the limiter) without the series being
// parsed and routed again: a producer that keeps sending such series
// would otherwise run every one of them through the slow path.
type warning struct {
	kind warningKind
	// kindInvalidTenant: the label and its value. Both kinds that say where
	// the data goes (kindMissingAccount, kindInvalidTenant): the tenant
	// vminsert reads from the series' labels.
	label, value string
	tenant       Tenant
}

// warningKind is the writer docs' case of a series warning.
type warningKind uint8

const (
	kindMissingAccount warningKind = iota // case 3
	kindTenantLabels                      // case 4
	kindInvalidTenant                     // invalid
	numWarningKinds
)

// warningCases are the cases of the warning kinds, by kind.
var warningCases = [numWarningKinds]string{caseMissingAccount, caseTenantLabels, caseInvalidTenant}

// name is the case of k, as in scoreproxy_tenant_warnings_total{case}.
func (k warningKind) name() string { return warningCases[k] }

// text is the log line of w for the series whose labels are in.
func (w warning) text(in []remotewrite.Label) string {
	switch w.kind {
	case kindMissingAccount:
		return fmt.Sprintf(textMissingAccount, remotewrite.FormatLabels(in), missingAccountTenant(w.tenant))
	case kindTenantLabels:
		return fmt.Sprintf(textTenantLabels, remotewrite.FormatLabels(in))
	default:
		return fmt.Sprintf(textInvalidTenant, w.label, w.value, remotewrite.FormatLabels(in), w.tenant)
	}
}

// missingAccountTenant names where a series without vm_account_id goes:
// the writer docs' "the default tenant 0:0", or, when the series carries
// vm_project_id, the default account with that project, as vminsert and
// split mode write it.
func missingAccountTenant(t Tenant) string {
	if t == (Tenant{}) {
		return "the default tenant 0:0"
	}
	return "tenant " + t.String() + " (the default account 0 with the series' vm_project_id)"
}

// raise counts wn, raised by the series whose labels are in, and logs it
// when the limiter lets it through.
func (w *warner) raise(wn warning, in []remotewrite.Label) {
	if ok, n := w.allow(wn.kind.name()); ok {
		w.emit(wn.kind.name(), n, wn.text(in))
	}
}

func (w *warner) pathTenant(pathTenant, destination string) {
	if ok, n := w.allow(caseTenantLabels); ok {
		w.emit(caseTenantLabels, n, fmt.Sprintf(textPathTenant, pathTenant, destination))
	}
}

// repeats gathers, over one request, the warnings of series whose cached
// rewrite carries them: each kind is counted once per request with the
// number of occurrences, and logged (the first occurrence) within the
// limiter, which counts the others as suppressed. Per occurrence that is
// an increment, not a lock.
type repeats struct {
	n     [numWarningKinds]int
	first [numWarningKinds]*rewrite
}

// note records the warnings of e, a cached rewrite that carries some.
func (rp *repeats) note(e *rewrite) {
	for _, wn := range e.warnings {
		if rp.n[wn.kind]++; rp.first[wn.kind] == nil {
			rp.first[wn.kind] = e
		}
	}
}

// flush counts and logs what the request repeated, and empties rp.
func (rp *repeats) flush(w *warner) {
	for k, n := range rp.n {
		if n == 0 {
			continue
		}
		kind := warningKind(k)
		warningsByCase[kind.name()].Add(n)
		if ok, suppressed := w.limit.AllowN(kind.name(), n); ok {
			e := rp.first[k]
			for _, wn := range e.warnings {
				if wn.kind == kind {
					w.emit(kind.name(), suppressed, wn.text(remotewrite.AppendLabels(nil, []byte(e.key))))
					break
				}
			}
		}
	}
	*rp = repeats{}
}
