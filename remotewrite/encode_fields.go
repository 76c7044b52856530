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

// ShortLabelFieldEnd returns where the label field that starts at i in
// labelFields (the LabelFields of a decoded series) ends, when l is the
// label decoded from it and the field is exactly what AppendLabelFields
// writes for l in one byte per length (a label field of 127 bytes or
// fewer, a non-empty name then a non-empty value), so that an encoder may
// copy it as it is; for any other field it returns 0. Given l, the field's
// tag, its length and the name's tag and length decide it: any other
// encoding of the same label takes more bytes.
func ShortLabelFieldEnd(labelFields []byte, i int, l *Label) int {
	f, n := labelFields, len(l.Name)
	size := 4 + n + len(l.Value)
	if n == 0 || len(l.Value) == 0 || size > 127 || i+2+size > len(f) ||
		f[i] != tagSeriesLabels || f[i+1] != byte(size) || f[i+2] != tagLabelName || f[i+3] != byte(n) {
		return 0
	}
	return i + 2 + size
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
