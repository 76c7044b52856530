package relabel

import (
	"bytes"

	"github.com/scoreproxy/scoreproxy/remotewrite"
)

// Apply appends the output labels of one series to dst and rendered values to buf, returning both.
// src is sorted by name and unique (the decoder guarantees it). override is a sorted, unique list
// of labels that replace incoming labels of the same name (used for the tenant from a request URL,
// i.e. vm_account_id / vm_project_id); may be nil.
//
// A name present in several places takes its value from metric_format first,
// then override, then src. The output is sorted and unique, and a label whose
// final value is empty is left out (an empty value means "no label" in
// Prometheus, so a template rendering to "" removes the label).
//
// Output labels point into src, override, the Format's constants or buf; buf
// is only appended to, so values rendered earlier (even into an array that a
// later append replaced) are never overwritten. Once dst and buf have enough
// capacity, Apply does not allocate.
func (f *Format) Apply(dst []remotewrite.Label, buf []byte, src, override []remotewrite.Label) ([]remotewrite.Label, []byte) {
	varValue, queryValue := f.placeholderValues(src)
	outs := f.outputs
	for {
		if len(outs) == 0 && len(override) == 0 {
			return appendNonEmpty(dst, src), buf // the usual tail: inherited labels only
		}
		name, from := lowestName(outs, override, src)
		var value []byte
		switch {
		case from&fromFormat != 0:
			value, buf = outs[0].render(buf, varValue, queryValue)
		case from&fromOverride != 0:
			value = override[0].Value
		default:
			value = src[0].Value
		}
		if len(value) > 0 {
			dst = append(dst, remotewrite.Label{Name: name, Value: value})
		}
		if from&fromFormat != 0 {
			outs = outs[1:]
		}
		if from&fromOverride != 0 {
			override = override[1:]
		}
		if from&fromSrc != 0 {
			src = src[1:]
		}
	}
}

// The sources of a label name, in order of precedence.
const (
	fromFormat uint8 = 1 << iota
	fromOverride
	fromSrc
)

// appendNonEmpty appends the labels that have a value.
func appendNonEmpty(dst, src []remotewrite.Label) []remotewrite.Label {
	for _, l := range src {
		if len(l.Value) > 0 {
			dst = append(dst, l)
		}
	}
	return dst
}

// placeholderValues finds the incoming __name__ and query key values, or nil
// for one that is absent or that no template needs.
func (f *Format) placeholderValues(src []remotewrite.Label) (varValue, queryValue []byte) {
	needVar, needQuery := f.needVar, f.needQuery
	for i := 0; i < len(src) && (needVar || needQuery); i++ {
		// string(l.Name) in a comparison does not allocate. Names are
		// unique, so a value found is the one.
		l := &src[i]
		if needVar && string(l.Name) == metricName {
			varValue, needVar = l.Value, false
		}
		if needQuery && string(l.Name) == f.queryKey {
			queryValue, needQuery = l.Value, false
		}
	}
	return varValue, queryValue
}

// render returns the value of one output for this series. A constant is
// returned as is; a template is appended to buf and returned as a slice of it
// whose capacity ends at its length, so appends by a consumer cannot clobber
// the next value.
func (o *output) render(buf, varValue, queryValue []byte) ([]byte, []byte) {
	if o.segs == nil {
		return o.constant, buf
	}
	start := len(buf)
	for i := range o.segs {
		buf = append(buf, o.segs[i].value(varValue, queryValue)...)
	}
	return buf[start:len(buf):len(buf)], buf
}

// lowestName returns the smallest name among the heads of the three sorted
// lists and the set of lists whose head has that name (0 when all are empty),
// comparing each head once.
func lowestName(outs []output, override, src []remotewrite.Label) (name []byte, from uint8) {
	if len(outs) > 0 {
		name, from = outs[0].name, fromFormat
	}
	if len(override) > 0 {
		name, from = lower(name, from, override[0].Name, fromOverride)
	}
	if len(src) > 0 {
		name, from = lower(name, from, src[0].Name, fromSrc)
	}
	return name, from
}

// lower folds one more head into the running minimum.
func lower(name []byte, from uint8, head []byte, source uint8) ([]byte, uint8) {
	if from == 0 {
		return head, source
	}
	switch c := bytes.Compare(head, name); {
	case c < 0:
		return head, source
	case c == 0:
		return name, from | source
	}
	return name, from
}
