package remotewrite

import "slices"

// Tags of the fields the encoder writes (field number << 3 | wire type 2).
const (
	tagWriteTimeseries = fieldWriteTimeseries<<3 | wireBytes
	tagWriteMetadata   = fieldWriteMetadata<<3 | wireBytes
	tagSeriesLabels    = fieldSeriesLabels<<3 | wireBytes
	tagLabelName       = fieldLabelName<<3 | wireBytes
	tagLabelValue      = fieldLabelValue<<3 | wireBytes
)

// AppendSeries appends to dst one WriteRequest.timeseries entry made of the
// given labels and every non-label field of s (samples, exemplars, histograms,
// unknown fields) copied verbatim. Labels with an empty value are written
// without their value field, as gogo's marshaller does.
func AppendSeries(dst []byte, labels []Label, s *Series) []byte {
	size := restLen(s)
	for _, l := range labels {
		size += bytesFieldLen(labelLen(l))
	}
	dst = slices.Grow(dst, 1+varintLen(uint64(size))+size)
	dst = append(dst, tagWriteTimeseries)
	dst = appendVarint(dst, uint64(size))
	for _, l := range labels {
		dst = appendLabelField(dst, l)
	}
	return appendRest(dst, s)
}

// appendLabelField appends one TimeSeries.labels field. A label whose name
// and value are shorter than 60 bytes, nearly every one, has one-byte
// lengths and is written without the varint loops.
func appendLabelField(dst []byte, l Label) []byte {
	n, v := len(l.Name), len(l.Value)
	switch {
	case n >= 60 || v >= 60:
		dst = append(dst, tagSeriesLabels)
		dst = appendVarint(dst, uint64(labelLen(l)))
		return appendLabelFields(dst, l)
	case v == 0:
		dst = append(dst, tagSeriesLabels, byte(2+n), tagLabelName, byte(n))
		return append(dst, l.Name...)
	}
	dst = append(dst, tagSeriesLabels, byte(4+n+v), tagLabelName, byte(n))
	dst = append(dst, l.Name...)
	dst = append(dst, tagLabelValue, byte(v))
	return append(dst, l.Value...)
}

// AppendSeriesVerbatim appends s unchanged: the fast path when no label
// changes. A series whose labels the decoder sorted (Reordered) has its
// labels encoded in their sorted order instead; it must have them parsed
// (a Known series has none: encode it with AppendSeries).
func AppendSeriesVerbatim(dst []byte, s *Series) []byte {
	if s.Reordered {
		return AppendSeries(dst, s.Labels, s)
	}
	return appendBytesField(dst, tagWriteTimeseries, s.Body)
}

// AppendMetadata appends one encoded MetricMetadata message as WriteRequest.metadata.
func AppendMetadata(dst []byte, md []byte) []byte {
	return appendBytesField(dst, tagWriteMetadata, md)
}

func labelLen(l Label) int {
	n := bytesFieldLen(len(l.Name))
	if len(l.Value) > 0 {
		n += bytesFieldLen(len(l.Value))
	}
	return n
}

func appendLabelFields(dst []byte, l Label) []byte {
	dst = appendBytesField(dst, tagLabelName, l.Name)
	if len(l.Value) > 0 {
		dst = appendBytesField(dst, tagLabelValue, l.Value)
	}
	return dst
}

// restLen returns the size of s's non-label fields.
func restLen(s *Series) int {
	if s.RestOffset >= 0 {
		return len(s.Body) - s.RestOffset
	}
	n := 0
	for i := 0; i < len(s.Body); {
		f, next, err := readField(s.Body, i)
		if err != nil {
			break // cannot happen: DecodeWriteRequest validated the body
		}
		if f.num != fieldSeriesLabels {
			n += next - i
		}
		i = next
	}
	return n
}

// appendRest copies s's non-label fields, in their original order.
func appendRest(dst []byte, s *Series) []byte {
	if s.RestOffset >= 0 {
		return append(dst, s.Body[s.RestOffset:]...)
	}
	for i := 0; i < len(s.Body); {
		f, next, err := readField(s.Body, i)
		if err != nil {
			break // cannot happen: DecodeWriteRequest validated the body
		}
		if f.num != fieldSeriesLabels {
			dst = append(dst, s.Body[i:next]...)
		}
		i = next
	}
	return dst
}
