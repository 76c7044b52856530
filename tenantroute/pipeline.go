package tenantroute

import (
	"github.com/VictoriaMetrics/metrics"

	"github.com/scoreproxy/scoreproxy/relabel"
	"github.com/scoreproxy/scoreproxy/remotewrite"
)

// dropStage says which step dropped a series; dropNone keeps it.
type dropStage uint8

const (
	dropNone         dropStage = iota
	dropRelabel                // relabel_configs
	dropWriteRelabel           // write_relabel_configs
	numDropStages
)

// Counters of dropped series and their samples, per stage.
var (
	seriesDropped = [numDropStages]*metrics.Counter{
		dropRelabel:      metrics.NewCounter(`scoreproxy_series_dropped_total{stage="relabel"}`),
		dropWriteRelabel: metrics.NewCounter(`scoreproxy_series_dropped_total{stage="write_relabel"}`),
	}
	samplesDropped = [numDropStages]*metrics.Counter{
		dropRelabel:      metrics.NewCounter(`scoreproxy_samples_dropped_total{stage="relabel"}`),
		dropWriteRelabel: metrics.NewCounter(`scoreproxy_samples_dropped_total{stage="write_relabel"}`),
	}
)

// pipeline is the label rewriting of one series, in order:
//
//	relabel_configs -> metric_format (selected series only) -> write_relabel_configs
//
// then the tenant is read from the result (so either list may set or change
// vm_account_id / vm_project_id) and, in SplitMode, the tenant labels are
// removed from it. Everything here is deterministic per input label set,
// which is what lets the rewrite cache run it once per distinct series.
type pipeline struct {
	relabel      *relabel.Rules    // relabel_configs; nil when none
	writeRelabel *relabel.Rules    // write_relabel_configs; nil when none
	formatMatch  *relabel.Selector // the series metric_format applies to
	identity     *relabel.Format   // merges path tenant labels into unselected series
}

// newPipeline builds the pipeline of opts; format is the router's compiled
// metric_format (never nil), whose query key is the default selector's.
func newPipeline(opts Options, format *relabel.Format) (pipeline, error) {
	p := pipeline{relabel: opts.Relabel, writeRelabel: opts.WriteRelabel, formatMatch: opts.FormatMatch}
	if p.formatMatch == nil {
		p.formatMatch = relabel.QueryKeySelector(format.QueryKey())
	}
	var err error
	p.identity, err = relabel.Compile(nil, format.QueryKey())
	return p, err
}

// rewrites reports whether any relabeling is configured; without it and
// without metric_format the router may forward bodies unchanged.
func (p *pipeline) rewrites() bool { return p.relabel != nil || p.writeRelabel != nil }

// pipeScratch holds one series' intermediate label lists; their values live
// in work.values, which every step only appends to.
type pipeScratch struct {
	relabeled      []remotewrite.Label // output of relabel_configs
	writeRelabeled []remotewrite.Label // output of write_relabel_configs
	// dropped counts the series and samples dropped per stage in this
	// request, added to the counters once per request.
	droppedSeries, droppedSamples [numDropStages]int
}

// countDrop records one dropped series.
func (ps *pipeScratch) countDrop(stage dropStage, s *remotewrite.Series) {
	ps.droppedSeries[stage]++
	ps.droppedSamples[stage] += s.Samples + s.Histograms
}

// flushDrops adds this request's drops to the counters.
func (ps *pipeScratch) flushDrops() {
	for stage := dropRelabel; stage < numDropStages; stage++ {
		if n := ps.droppedSeries[stage]; n > 0 {
			seriesDropped[stage].Add(n)
			samplesDropped[stage].Add(ps.droppedSamples[stage])
			ps.droppedSeries[stage], ps.droppedSamples[stage] = 0, 0
		}
	}
}

// clearRefs drops references into request bodies.
func (ps *pipeScratch) clearRefs() {
	clear(ps.relabeled[:cap(ps.relabeled)])
	clear(ps.writeRelabeled[:cap(ps.writeRelabeled)])
}

// canSplice reports whether the pipeline may go straight to the encoding
// (see splice): without relabeling around metric_format, and when the
// format sets no tenant label, the output's tenant labels are the input's
// (AppendFields declines a series with an empty value, which the output
// would leave out), so the tenant checks read the input labels.
func (r *Router) canSplice() bool {
	return !r.pipe.rewrites() && !r.format.Defines(AccountLabel) && !r.format.Defines(ProjectLabel)
}

// splitOmits are the labels SplitMode takes out of a series' output.
var splitOmits = []string{AccountLabel, ProjectLabel}

// splice is the pipeline for a series canSplice holds for, without path
// tenant labels, whose label fields are in order: relabel.Format.AppendFields
// writes its output label fields into w.spliced (in SplitMode without the
// tenant labels). It returns false when the series takes the Label path
// (rewriteLabels) instead.
func (r *Router) splice(w *work, s *remotewrite.Series, in, override []remotewrite.Label) ([]byte, bool) {
	if !r.splices || override != nil || s.Reordered {
		return nil, false
	}
	key := s.LabelFields()
	if key == nil {
		return nil, false
	}
	format := r.format
	if !format.Identity() && !r.pipe.formatMatch.Matches(in) {
		format = r.pipe.identity
	}
	var omit []string
	if r.mode == SplitMode {
		omit = splitOmits
	}
	var ok bool
	w.spliced, ok = format.AppendFields(w.spliced[:0], in, key, omit...)
	return w.spliced, ok
}

// rewriteLabels runs the pipeline on the input labels in, merging override
// (the request path's tenant labels) into the metric_format step. It returns
// the output labels, whether they differ from in (false: in itself), and the
// stage that dropped the series, if any.
func (r *Router) rewriteLabels(w *work, in, override []remotewrite.Label) ([]remotewrite.Label, bool, dropStage) {
	p := &r.pipe
	labels, rewritten := in, false
	w.values = w.values[:0]
	if p.relabel != nil {
		var keep bool
		w.pipe.relabeled, w.values, keep = p.relabel.Apply(w.pipe.relabeled[:0], w.values, labels)
		if !keep {
			return nil, false, dropRelabel
		}
		labels, rewritten = w.pipe.relabeled, true
	}
	format := r.format
	if !format.Identity() && !p.formatMatch.Matches(labels) {
		format = p.identity
	}
	if override != nil || !format.Identity() {
		w.labels, w.values = format.Apply(w.labels[:0], w.values, labels, override)
		labels, rewritten = w.labels, true
	}
	if p.writeRelabel != nil {
		var keep bool
		w.pipe.writeRelabeled, w.values, keep = p.writeRelabel.Apply(w.pipe.writeRelabeled[:0], w.values, labels)
		if !keep {
			return nil, false, dropWriteRelabel
		}
		labels, rewritten = w.pipe.writeRelabeled, true
	}
	return labels, rewritten, dropNone
}
