package relabel

import (
	"github.com/prometheus/prometheus/model/labels"
	promrelabel "github.com/prometheus/prometheus/model/relabel"

	"github.com/scoreproxy/scoreproxy/remotewrite"
)

// Rules is a compiled list of Prometheus relabel_configs (replace, keep,
// drop, labeldrop, labelkeep, labelmap, hashmod, lowercase, uppercase,
// keepequal, dropequal), applied with Prometheus' own model/relabel so that
// a rule means here exactly what it means in Prometheus and vmagent.
//
// Unlike Format.Apply, Apply allocates (model/relabel works on
// labels.Labels): callers run it once per distinct label set and cache the
// outcome (see tenantroute's rewrite cache), never once per sample.
// Safe for concurrent use: Apply only reads the rules.
type Rules struct {
	cfgs []*promrelabel.Config
}

// NewRules wraps validated relabel configs (see ValidateRule). It returns nil
// for an empty list, so that "no rules" costs a nil check.
func NewRules(cfgs []*promrelabel.Config) *Rules {
	if len(cfgs) == 0 {
		return nil
	}
	return &Rules{cfgs: cfgs}
}

// Len is the number of rules; 0 for nil.
func (r *Rules) Len() int {
	if r == nil {
		return 0
	}
	return len(r.cfgs)
}

// Apply runs the rules on src (sorted, unique) and appends the resulting
// labels to dst and their names and values to buf, returning both and
// whether the series is kept (false: a keep, drop, keepequal or dropequal
// rule dropped it, or no label is left). The output is sorted and unique and
// has no empty values. Output labels point into buf, which is only appended
// to, so labels produced earlier into the same buf stay valid.
func (r *Rules) Apply(dst []remotewrite.Label, buf []byte, src []remotewrite.Label) ([]remotewrite.Label, []byte, bool) {
	lb := labels.NewBuilder(toLabels(src))
	if !promrelabel.ProcessBuilder(lb, r.cfgs...) {
		return dst, buf, false
	}
	out := lb.Labels()
	if out.IsEmpty() {
		return dst, buf, false
	}
	out.Range(func(l labels.Label) {
		start := len(buf)
		buf = append(buf, l.Name...)
		mid := len(buf)
		buf = append(buf, l.Value...)
		dst = append(dst, remotewrite.Label{Name: buf[start:mid:mid], Value: buf[mid:len(buf):len(buf)]})
	})
	return dst, buf, true
}

// toLabels converts decoded labels to labels.Labels, leaving out empty values
// (which mean "no label" in Prometheus).
func toLabels(src []remotewrite.Label) labels.Labels {
	b := labels.NewScratchBuilder(len(src))
	for _, l := range src {
		if len(l.Value) > 0 {
			b.Add(string(l.Name), string(l.Value))
		}
	}
	b.Sort()
	return b.Labels()
}
