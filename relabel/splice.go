package relabel

import (
	"bytes"

	"github.com/scoreproxy/scoreproxy/remotewrite"
)

// AppendFields is Apply without override, straight to the encoding: it
// appends to dst the label fields of Apply's output for src, less the
// labels named in omit, byte for byte what remotewrite.AppendLabelFields
// writes for them. fields must be src encoded (the LabelFields of a series
// that was not Reordered). An inherited label's field is copied as it is,
// with its neighbours in one run, and only the format's own labels are
// encoded, so no Label is built.
//
// ok is false, with dst returned unchanged, when a field of fields is not
// in the canonical encoding (see remotewrite.LabelFieldAt; an empty value
// is one such case, as Apply leaves such a label out); the caller then
// uses Apply.
func (f *Format) AppendFields(dst []byte, src []remotewrite.Label, fields []byte, omit ...string) ([]byte, bool) {
	varValue, queryValue := f.placeholderValues(src)
	base := len(dst)
	outs := f.outputs
	run := 0 // start of the inherited fields not yet copied
	for i := 0; i < len(fields); {
		name, _, next, ok := remotewrite.LabelFieldAt(fields, i)
		if !ok {
			return dst[:base], false
		}
		for len(outs) > 0 {
			c := bytes.Compare(outs[0].name, name)
			if c > 0 {
				break
			}
			dst = append(dst, fields[run:i]...)
			run = i
			if c == 0 { // the format's label replaces the series' own
				run = next
			}
			if !omitted(outs[0].name, omit) {
				dst = outs[0].appendField(dst, varValue, queryValue)
			}
			outs = outs[1:]
		}
		if run <= i && omitted(name, omit) {
			dst = append(dst, fields[run:i]...)
			run = next
		}
		i = next
	}
	dst = append(dst, fields[run:]...)
	for k := range outs {
		if !omitted(outs[k].name, omit) {
			dst = outs[k].appendField(dst, varValue, queryValue)
		}
	}
	return dst, true
}

// omitted reports whether name is one of omit.
func omitted(name []byte, omit []string) bool {
	for _, o := range omit {
		if string(name) == o {
			return true
		}
	}
	return false
}

// appendField appends the encoded label of o for a series, nothing when
// its value is empty (as Apply leaves such a label out).
func (o *output) appendField(dst, varValue, queryValue []byte) []byte {
	if o.segs == nil {
		if len(o.constant) == 0 {
			return dst
		}
		dst = remotewrite.AppendLabelFieldStart(dst, o.name, len(o.constant))
		return append(dst, o.constant...)
	}
	n := 0
	for i := range o.segs {
		n += len(o.segs[i].value(varValue, queryValue))
	}
	if n == 0 {
		return dst
	}
	dst = remotewrite.AppendLabelFieldStart(dst, o.name, n)
	for i := range o.segs {
		dst = append(dst, o.segs[i].value(varValue, queryValue)...)
	}
	return dst
}

// value is the text a segment renders to for a series.
func (s *segment) value(varValue, queryValue []byte) []byte {
	switch s.kind {
	case segVar:
		return varValue
	case segQueryKey:
		return queryValue
	}
	return s.lit
}

// Defines reports whether the format has an output label of that name.
func (f *Format) Defines(name string) bool {
	for _, o := range f.outputs {
		if string(o.name) == name {
			return true
		}
	}
	return false
}
