package remotewrite

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"unicode/utf8"
)

// Reasons a request is rejected, used in error messages and as the `reason`
// label of scoreproxy_requests_rejected_total.
const (
	ReasonBadSnappy      = "bad_snappy"
	ReasonBadProtobuf    = "bad_protobuf"
	ReasonInvalidSeries  = "invalid_series"
	ReasonTooLarge       = "too_large"
	ReasonUnsupported    = "unsupported_media_type"
	ReasonMethod         = "method_not_allowed"
	ReasonBadTenant      = "bad_tenant"
	ReasonUpstreamReject = "upstream_rejected"
	ReasonUpstreamDown   = "upstream_unavailable"
)

// DecodeError is a request the proxy cannot accept (answered with 400).
type DecodeError struct {
	Reason string // one of the Reason* constants
	Msg    string
}

func (e *DecodeError) Error() string { return e.Msg }

func badProtobuf(format string, args ...any) error {
	return &DecodeError{Reason: ReasonBadProtobuf, Msg: "invalid protobuf WriteRequest: " + fmt.Sprintf(format, args...)}
}

func invalidSeries(index int, labels []Label, format string, args ...any) error {
	msg := fmt.Sprintf("invalid series #%d %s: ", index, FormatLabels(labels)) + fmt.Sprintf(format, args...)
	return &DecodeError{Reason: ReasonInvalidSeries, Msg: msg}
}

// Field numbers of prompb (remote.proto / types.proto).
const (
	fieldWriteTimeseries = 1
	fieldWriteMetadata   = 3

	fieldSeriesLabels     = 1
	fieldSeriesSamples    = 2
	fieldSeriesExemplars  = 3
	fieldSeriesHistograms = 4

	fieldLabelName  = 1
	fieldLabelValue = 2
)

// DecodeWriteRequest parses an uncompressed prompb.WriteRequest into req
// (which it resets first) without copying: labels and bodies point into body,
// which must stay untouched while req is in use. It accepts exactly the bodies
// that prompb's (gogo) Unmarshal accepts, nested messages included, and
// rejects the others with ReasonBadProtobuf. It then sorts the labels of
// every series that has them out of order (see validateLabels), validates
// every series as the remote-write spec requires (label names non-empty and
// unique; names and values valid UTF-8; a non-empty __name__; native
// histograms as Prometheus validates them, see validateHistogram) and
// rejects the request with ReasonInvalidSeries if one is not. In the steady
// state (req reused) it does not allocate.
func DecodeWriteRequest(body []byte, req *Request) error {
	req.resetFor(body)
	req.trimArena()
	req.total = len(body)
	defer func() { req.lastLabels = len(req.labels) }()
	// invalid is the first invalid series. It is reported only once the whole
	// body is known to be well formed, so that a malformed body is always
	// bad_protobuf, as it is for prompb.
	var invalid error
	for i := 0; i < len(body); {
		f, next, err := readField(body, i)
		if err != nil {
			return badProtobuf("at byte %d: %v", i, err)
		}
		req.done, i = i, next
		switch {
		case f.num == fieldWriteTimeseries && f.wire == wireBytes:
			bad, err := req.decodeSeries(f.bytes)
			if err != nil {
				return err
			}
			if invalid == nil {
				invalid = bad
			}
		case f.num == fieldWriteMetadata && f.wire == wireBytes:
			if err := checkMessage(f.bytes, &metadataSchema); err != nil {
				return badProtobuf("metadata #%d: %v", len(req.Metadata), err)
			}
			req.Metadata = append(req.Metadata, f.bytes)
		case f.num == fieldWriteTimeseries || f.num == fieldWriteMetadata:
			return badProtobuf("field %d has wire type %d, want length-delimited", f.num, f.wire)
		}
	}
	return invalid
}

// The fewest body bytes a valid label (a tag and a length for the label
// and for its name) and a series (a tag and a length) take: they bound
// grownCap's estimate. An invalid body of smaller items only grows again.
const (
	minLabelBytes  = 4
	minSeriesBytes = 2
)

// growSeries makes room in a full r.Series for the series the body
// suggests are still to come (see grownCap). Callers check for a full
// slice themselves, so that their append stays inlined.
func (r *Request) growSeries() {
	r.Series = slices.Grow(r.Series, grownCap(len(r.Series), r.done, r.total, minSeriesBytes)-len(r.Series))
}

// decodeSeries parses one TimeSeries message and appends it to r.Series. It
// returns a bad_protobuf error when the message is malformed, and otherwise
// invalid, an invalid_series error, when the labels break the spec's rules
// or, the labels being valid, a histogram is invalid.
func (r *Request) decodeSeries(b []byte) (invalid, err error) {
	var knownHash uint64
	knownEnd := 0
	if r.known != nil {
		var ok bool
		if ok, knownHash, knownEnd = r.appendKnownSeries(b); ok {
			return nil, nil
		}
	}
	index := len(r.Series)
	start := len(r.labels)
	s := Series{Body: b, RestOffset: -1}
	contiguous := true // all label fields before any other field
	var badHistogram error
	// The usual labels are checked as they are parsed: names non-empty
	// and in strictly increasing order, a non-empty __name__. plain stays
	// true while they are; validateLabels, which sorts, reports what is
	// wrong and checks UTF-8, runs only when they are not or the label
	// fields hold a byte outside ASCII.
	plain, hasName := true, false
	var prevName []byte
	for i := 0; i < len(b); {
		// readField and decodeLabel with their fast paths inlined by hand:
		// this loop runs for every label and sample.
		var f field
		next := shortField(b, i)
		if next > 0 {
			f = field{num: uint32(b[i] >> 3), wire: wireBytes, bytes: b[i+2 : next]}
		} else if f, next, err = readFieldSlow(b, i); err != nil {
			return nil, badProtobuf("series #%d at byte %d: %v", index, i, err)
		}
		if f.num == fieldSeriesLabels {
			if f.wire != wireBytes {
				return nil, badProtobuf("series #%d: label field has wire type %d", index, f.wire)
			}
			if s.RestOffset >= 0 {
				contiguous = false
			}
			if len(r.labels) == cap(r.labels) {
				r.labels = slices.Grow(r.labels, grownCap(len(r.labels), r.done, r.total, minLabelBytes)-len(r.labels))
			}
			// Written in its arena slot (see shortLabelValue).
			n := len(r.labels)
			r.labels = r.labels[:n+1]
			l := &r.labels[n]
			if v := shortLabelValue(f.bytes); v > 0 {
				l.Name, l.Value = f.bytes[2:v], f.bytes[v+2:]
			} else if *l, err = decodeLabel(f.bytes); err != nil {
				r.labels = r.labels[:n]
				return nil, badProtobuf("series #%d label #%d: %v", index, n-start, err)
			}
			if len(l.Name) == 0 || (n > start && !namesOrdered(prevName, l.Name) && bytes.Compare(prevName, l.Name) >= 0) {
				plain = false
			}
			if string(l.Name) == MetricNameLabel {
				hasName = len(l.Value) > 0
			}
			prevName = l.Name
		} else {
			if s.RestOffset < 0 {
				s.RestOffset = i
			}
			if err := s.addField(f); err != nil {
				if _, ok := err.(*histogramError); !ok {
					return nil, badProtobuf("series #%d: %v", index, err)
				}
				if badHistogram == nil {
					badHistogram = err
				}
			}
		}
		i = next
	}
	switch {
	case s.RestOffset < 0:
		s.RestOffset = len(b) // labels only
	case !contiguous:
		s.RestOffset = -1
	}
	if s.RestOffset == knownEnd { // the label fields that were looked up
		s.KnownHash = knownHash
	}
	s.Labels = r.labels[start:len(r.labels):len(r.labels)]
	// Label fields that are ASCII throughout (tags and short lengths are)
	// hold ASCII names and values: one pass over them instead of a UTF-8
	// check per name and value.
	ascii := s.RestOffset >= 0 && isASCII(b[:s.RestOffset])
	if !plain || !hasName || !ascii {
		s.Reordered, invalid = validateLabels(index, s.Labels, !ascii)
	}
	if invalid == nil && badHistogram != nil {
		invalid = invalidSeries(index, s.Labels, "%v", badHistogram)
	}
	r.Reordered = r.Reordered || s.Reordered
	if len(r.Series) == cap(r.Series) {
		r.growSeries()
	}
	r.Series = append(r.Series, s)
	return invalid, nil
}

// addField counts one non-label TimeSeries field, with the fast path for a
// sample in the usual encoding.
func (s *Series) addField(f field) error {
	if f.num == fieldSeriesSamples && f.wire == wireBytes && shortSample(f.bytes) {
		s.Samples++
		return nil
	}
	return s.countField(f)
}

// countField counts one non-label TimeSeries field, checking that the known
// repeated messages are well formed so that a broken one is rejected here
// rather than by the upstream, and that a histogram is valid (a
// *histogramError when not). (decodeSeries counts the samples in the usual
// encoding itself.)
func (s *Series) countField(f field) error {
	if f.num < fieldSeriesSamples || f.num > fieldSeriesHistograms {
		return nil // unknown field: forwarded verbatim
	}
	if f.wire != wireBytes {
		return fmt.Errorf("field %d has wire type %d, want length-delimited", f.num, f.wire)
	}
	switch f.num {
	case fieldSeriesSamples:
		s.Samples++
		return checkMessage(f.bytes, &sampleSchema)
	case fieldSeriesExemplars:
		s.Exemplars++
		return checkMessage(f.bytes, &exemplarSchema)
	default:
		s.Histograms++
		if err := checkMessage(f.bytes, &histogramSchema); err != nil {
			return err
		}
		return validateHistogram(s.Histograms-1, f.bytes)
	}
}

// shortSample reports whether b is the usual encoding of a prompb.Sample:
// value, then a timestamp of at most 10 bytes, nothing else. It is small
// enough to be inlined.
func shortSample(b []byte) bool {
	if len(b) < 11 || len(b) > 20 || b[0] != 1<<3|wireFixed64 || b[9] != 2<<3|wireVarint || b[len(b)-1] >= 0x80 {
		return false
	}
	for _, c := range b[10 : len(b)-1] {
		if c < 0x80 {
			return false
		}
	}
	return true
}

// shortLabelValue recognises the usual encoding of a prompb.Label, name
// then value, each shorter than 128 bytes: it returns the index of the
// value's tag in b (the name is b[2:v], the value b[v+2:]), or 0 for any
// other encoding. It is small enough to be inlined; callers write the
// Label in place, since one returned by value goes through the stack and
// reading it back stalls on the stores just made.
func shortLabelValue(b []byte) int {
	if len(b) >= 4 && b[0] == tagLabelName && b[1] < 0x80 {
		v := 2 + int(b[1])
		if v+2 <= len(b) && b[v] == tagLabelValue && b[v+1] < 0x80 && v+2+int(b[v+1]) == len(b) {
			return v
		}
	}
	return 0
}

// decodeLabel parses a prompb.Label message in any encoding: the last name
// and value win, unknown fields (groups included) are skipped.
func decodeLabel(b []byte) (Label, error) {
	var l Label
	for i := 0; i < len(b); {
		f, next, err := readField(b, i)
		if err != nil {
			return l, err
		}
		if f.num == fieldLabelName || f.num == fieldLabelValue {
			if f.wire != wireBytes {
				return l, fmt.Errorf("field %d has wire type %d, want length-delimited", f.num, f.wire)
			}
			if f.num == fieldLabelName {
				l.Name = f.bytes
			} else {
				l.Value = f.bytes
			}
		}
		i = next
	}
	return l, nil
}

// validateLabels applies the remote-write spec's rules to one series: label
// names non-empty and unique, names and values valid UTF-8, a non-empty
// __name__. Labels that arrive out of order are sorted by name in place
// first, as vminsert and Prometheus do: vmagent sends labels in the order
// it holds them unless -sortLabels is set. It reports whether it sorted
// them. Sorted input costs one comparison per label, as the check alone did.
// checkUTF8 is false when the caller knows the labels are ASCII.
func validateLabels(index int, labels []Label, checkUTF8 bool) (reordered bool, err error) {
	hasName := false
	for j, l := range labels {
		if len(l.Name) == 0 {
			return false, invalidSeries(index, labels, "label #%d has an empty name", j)
		}
		if j > 0 && !namesOrdered(labels[j-1].Name, l.Name) {
			switch c := bytes.Compare(labels[j-1].Name, l.Name); {
			case c == 0:
				return false, invalidSeries(index, labels, "duplicate label name %q", l.Name)
			case c > 0:
				slices.SortFunc(labels, compareNames)
				_, err := validateLabels(index, labels, checkUTF8)
				return true, err
			}
		}
		if checkUTF8 {
			if err := checkLabelUTF8(index, labels, l); err != nil {
				return false, err
			}
		}
		if string(l.Name) == MetricNameLabel {
			hasName = len(l.Value) > 0
		}
	}
	if !hasName {
		return false, invalidSeries(index, labels, "no metric name: every series needs a non-empty __name__ label")
	}
	return false, nil
}

// namesOrdered reports, without a call, the usual case of two consecutive
// label names: their first bytes differ and are in order. False means
// bytes.Compare has to tell.
func namesOrdered(a, b []byte) bool {
	return len(a) > 0 && len(b) > 0 && a[0] < b[0]
}

// checkLabelUTF8 rejects a label whose name or value is not valid UTF-8.
func checkLabelUTF8(index int, labels []Label, l Label) error {
	if !utf8.Valid(l.Name) {
		return invalidSeries(index, labels, "label name %q is not valid UTF-8", l.Name)
	}
	if !utf8.Valid(l.Value) {
		return invalidSeries(index, labels, "label %s has a value that is not valid UTF-8: %q", l.Name, l.Value)
	}
	return nil
}

// isASCII reports whether every byte of b is below 0x80, 32 and then
// eight at a time.
func isASCII(b []byte) bool {
	var acc uint64
	for len(b) >= 32 {
		acc |= binary.LittleEndian.Uint64(b) | binary.LittleEndian.Uint64(b[8:]) |
			binary.LittleEndian.Uint64(b[16:]) | binary.LittleEndian.Uint64(b[24:])
		b = b[32:]
	}
	for len(b) >= 8 {
		acc |= binary.LittleEndian.Uint64(b)
		b = b[8:]
	}
	for _, c := range b {
		acc |= uint64(c)
	}
	return acc&0x8080808080808080 == 0
}

// compareNames orders labels by name, in byte order.
func compareNames(a, b Label) int { return bytes.Compare(a.Name, b.Name) }
