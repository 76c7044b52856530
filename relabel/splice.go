package relabel

import (
	"bytes"

	"github.com/scoreproxy/scoreproxy/remotewrite"
)

// AppendFields is Apply without override, straight to the encoding: it
// appends to dst the label fields of Apply's output for src, less the
// labels named in omit, byte for byte what remotewrite.AppendLabelFields
// writes for them. fields must be the encoding src was decoded from, one
// field per label in src's order (the LabelFields of a series that was
// not Reordered). An inherited label's field is copied as it is, with its
// neighbours in one run, and only the format's own labels are encoded, so
// no Label is built.
//
// ok is false, with dst returned unchanged, when a field of fields is not
// in the short encoding (see remotewrite.ShortLabelFieldEnd; an empty
// value is one such case, as Apply leaves such a label out) or fields
// holds more than src's labels; the caller then uses Apply.
func (f *Format) AppendFields(dst []byte, src []remotewrite.Label, fields []byte, omit ...string) ([]byte, bool) {
	varValue, queryValue := f.placeholderValues(src)
	base := len(dst)
	outs := f.outputs
	omitFirst := firstBytes(omit)
	run, i := 0, 0 // the start of the inherited fields not yet copied, of src[k]'s field
	for k := range src {
		next := remotewrite.ShortLabelFieldEnd(fields, i, &src[k])
		if next == 0 {
			return dst[:base], false
		}
		name := src[k].Name
		for len(outs) > 0 {
			// Names are not empty (ShortLabelFieldEnd, Compile); most
			// pairs differ in the first byte.
			c := int(outs[0].name[0]) - int(name[0])
			if c == 0 {
				c = bytes.Compare(outs[0].name, name)
			}
			if c > 0 {
				break
			}
			dst = append(dst, fields[run:i]...)
			run = i
			if c == 0 { // the format's label replaces the series' own
				run = next
			}
			if len(omit) == 0 || !omitted(outs[0].name, omit) {
				dst = outs[0].appendField(dst, varValue, queryValue)
			}
			outs = outs[1:]
		}
		if omitFirst&(1<<(name[0]&63)) != 0 && run <= i && omitted(name, omit) {
			dst = append(dst, fields[run:i]...)
			run = next
		}
		i = next
	}
	if i != len(fields) {
		return dst[:base], false
	}
	dst = append(dst, fields[run:]...)
	for k := range outs {
		if len(omit) == 0 || !omitted(outs[k].name, omit) {
			dst = outs[k].appendField(dst, varValue, queryValue)
		}
	}
	return dst, true
}

// firstBytes is a filter of the first bytes of names: bit b&63 is set for
// each first byte b. A name whose bit is clear is none of names, which
// tells most names apart without a comparison.
func firstBytes(names []string) uint64 {
	var mask uint64
	for _, n := range names {
		if len(n) > 0 {
			mask |= 1 << (n[0] & 63)
		}
	}
	return mask
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
		return append(dst, o.field...)
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
