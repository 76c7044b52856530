package remotewrite

import "slices"

// LabelFields returns the encoded label fields of s (the bytes of its
// TimeSeries before the first non-label field) when all labels come first,
// as every known producer writes them, or nil. Two series with equal
// LabelFields have equal label sets, so the bytes can key a cache of
// per-series work.
func (s *Series) LabelFields() []byte {
	if s.RestOffset < 0 {
		return nil
	}
	return s.Body[:s.RestOffset]
}

// AppendLabelFields appends labels encoded as TimeSeries label fields,
// exactly as AppendSeries writes them. It grows dst once, to the size
// needed: the rewrite cache builds each new entry's fields from nil.
func AppendLabelFields(dst []byte, labels []Label) []byte {
	dst = slices.Grow(dst, LabelFieldsLen(labels))
	for _, l := range labels {
		dst = appendLabelField(dst, l)
	}
	return dst
}

// LabelFieldsLen is the length AppendLabelFields appends for labels.
func LabelFieldsLen(labels []Label) int {
	size := 0
	for _, l := range labels {
		size += bytesFieldLen(labelLen(l))
	}
	return size
}

// AppendSeriesLabelFields appends to dst one WriteRequest.timeseries entry
// made of pre-encoded label fields (from AppendLabelFields) and every
// non-label field of s, verbatim.
func AppendSeriesLabelFields(dst []byte, labelFields []byte, s *Series) []byte {
	dst = append(dst, tagWriteTimeseries)
	dst = appendVarint(dst, uint64(len(labelFields)+restLen(s)))
	dst = append(dst, labelFields...)
	return appendRest(dst, s)
}

// LabelFieldAt reads the label field that starts at i in labelFields (the
// LabelFields of a decoded series): the label's name and value and where
// the next field starts. canonical is true when the field is exactly what
// AppendLabelFields writes for that label (a label of 127 bytes or fewer,
// name then non-empty value), so that an encoder may copy it as it is;
// for any other field it is false and the rest is unset.
func LabelFieldAt(labelFields []byte, i int) (name, value []byte, next int, canonical bool) {
	f := labelFields
	if i+6 > len(f) || f[i] != tagSeriesLabels || f[i+1] >= 0x80 || f[i+2] != tagLabelName || f[i+3] >= 0x80 {
		return nil, nil, 0, false
	}
	v := i + 4 + int(f[i+3]) // the value's tag
	if v+2 > len(f) || f[v] != tagLabelValue || f[v+1] == 0 || f[v+1] >= 0x80 {
		return nil, nil, 0, false
	}
	next = v + 2 + int(f[v+1])
	if next != i+2+int(f[i+1]) || next > len(f) {
		return nil, nil, 0, false
	}
	return f[i+4 : v], f[v+2 : next], next, true
}

// AppendLabelFieldStart appends the label field of a label named name
// whose value, valueLen bytes long (at least one), the caller appends
// next: the field is then exactly what AppendLabelFields writes for it.
func AppendLabelFieldStart(dst, name []byte, valueLen int) []byte {
	n := len(name)
	if n < 60 && valueLen < 60 {
		dst = append(dst, tagSeriesLabels, byte(4+n+valueLen), tagLabelName, byte(n))
		dst = append(dst, name...)
		return append(dst, tagLabelValue, byte(valueLen))
	}
	dst = append(dst, tagSeriesLabels)
	dst = appendVarint(dst, uint64(bytesFieldLen(n)+bytesFieldLen(valueLen)))
	dst = appendBytesField(dst, tagLabelName, name)
	dst = append(dst, tagLabelValue)
	return appendVarint(dst, uint64(valueLen))
}
