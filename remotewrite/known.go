package remotewrite

import "slices"

// KnownLabelSets lets a processor that remembers the label sets it has seen
// (the router's rewrite cache) spare the decoder from parsing and validating
// them again: producers send the same series over and over, and their
// encoded labels are byte for byte the same each time.
type KnownLabelSets interface {
	// BeginKnown and EndKnown bracket the lookups of one request, so that
	// an implementation can take a read lock once per request. BeginKnown
	// reports whether there are lookups at all: an implementation that
	// finds they do not pay (its label sets hardly ever recur) returns
	// false, and then the request is decoded in full, without Known or
	// EndKnown being called, and KnownBy stays nil.
	BeginKnown() bool
	EndKnown()
	// Known returns a non-nil value when labelFields (the encoded label
	// fields of a series, see Series.LabelFields) were seen before in a
	// series that passed validation, and nil otherwise; reordered is true
	// when those labels are out of order (the decoder sorted them when it
	// first saw them), so that the series is marked Reordered. index is
	// the series' position in the request, which an implementation may
	// use as a hint: producers tend to send the same series in the same
	// order. hash is what the implementation hashed labelFields to, if it
	// did (else 0); the decoder keeps it in Series.KnownHash.
	Known(index int, labelFields []byte) (known any, reordered bool, hash uint64)
}

// PathKnownLabelSets is a KnownLabelSets whose label sets depend on the
// tenant of a vminsert-shaped request path (/insert/<tenant>/...): the
// handler decodes such a request with KnownForPath(tenant), which may be nil.
type PathKnownLabelSets interface {
	KnownLabelSets
	KnownForPath(tenant string) KnownLabelSets
}

// DecodeWriteRequestKnown is DecodeWriteRequest, except that a series whose
// encoded labels known recognizes is not parsed label by label: its Labels
// stay nil and Known holds what known returned. Everything else (samples,
// exemplars, histograms, metadata) is checked exactly as DecodeWriteRequest
// does, so the request is accepted or rejected the same way: bytes already
// validated once are valid again. known may be nil; when it is, or when it
// declines the request (BeginKnown), the request is decoded by
// DecodeWriteRequest and KnownBy is nil.
func DecodeWriteRequestKnown(body []byte, req *Request, known KnownLabelSets) error {
	if known == nil || !known.BeginKnown() {
		return DecodeWriteRequest(body, req)
	}
	defer known.EndKnown()
	req.known = known
	defer func() { req.known = nil }()
	err := DecodeWriteRequest(body, req)
	req.KnownBy = known
	return err
}

// appendKnownSeries appends the series encoded in b without parsing its
// labels when they come first, in the usual short encoding, and are known.
// It returns false, having appended nothing, in every other case (including
// a malformed series or an invalid histogram), and the caller then decodes
// the series in full; hash is then the lookup's hash of b[:end] (see
// Series.KnownHash), or 0 when there was none.
func (r *Request) appendKnownSeries(b []byte) (ok bool, hash uint64, end int) {
	end = labelRegionEnd(b)
	if end == 0 {
		return false, 0, 0
	}
	v, reordered, hash := r.known.Known(len(r.Series), b[:end])
	if v == nil {
		return false, hash, end
	}
	s := Series{Body: b, RestOffset: end, Known: v, Reordered: reordered}
	for i := end; i < len(b); {
		f, next, err := readField(b, i)
		if err != nil || f.num == fieldSeriesLabels || s.addField(f) != nil {
			return false, 0, 0 // malformed, invalid, or labels after other fields: decode in full
		}
		i = next
	}
	if len(r.Series) == cap(r.Series) {
		r.growSeries()
	}
	r.Series = append(r.Series, s)
	r.Reordered = r.Reordered || reordered
	return true, 0, 0
}

// labelRegionEnd returns the end of the leading run of label fields of a
// TimeSeries when each is a one-byte tag with a one-byte length, or 0.
func labelRegionEnd(b []byte) int {
	i := 0
	for i < len(b) && b[i] == tagSeriesLabels {
		next := shortField(b, i)
		if next == 0 {
			return 0
		}
		i = next
	}
	return i
}

// AppendLabels appends the labels encoded in labelFields (Series.LabelFields
// of a series the decoder accepted) to dst, sorted by name as the decoder
// sorts them. It is how a processor gets the labels of a series whose
// Labels the decoder skipped because they were Known; the bytes were
// validated when first seen, so nothing can fail.
func AppendLabels(dst []Label, labelFields []byte) []Label {
	start := len(dst)
	dst = appendLabelsAsEncoded(dst, labelFields)
	if added := dst[start:]; !slices.IsSortedFunc(added, compareNames) {
		slices.SortFunc(added, compareNames)
	}
	return dst
}

// appendLabelsAsEncoded is AppendLabels in the order of labelFields.
func appendLabelsAsEncoded(dst []Label, labelFields []byte) []Label {
	for i := 0; i < len(labelFields); {
		f, next, err := readField(labelFields, i)
		if err != nil {
			break // cannot happen for fields the decoder accepted
		}
		if f.num == fieldSeriesLabels {
			// Written in place (see shortLabelValue).
			dst = append(dst, Label{})
			l := &dst[len(dst)-1]
			if v := shortLabelValue(f.bytes); v > 0 {
				l.Name, l.Value = f.bytes[2:v], f.bytes[v+2:]
			} else {
				*l, _ = decodeLabel(f.bytes)
			}
		}
		i = next
	}
	return dst
}
