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
