package remotewrite

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/prometheus/prometheus/model/histogram"
)

// Native histograms are validated as Prometheus' remote-write receiver
// (v0.316.0) validates them, for 1.0 and 2.0 alike: a histogram of schema 9
// to 52 is first reduced to schema 8, and then the rules of
// histogram.(*Histogram).Validate or (*FloatHistogram).Validate apply,
// chosen as prompb chooses them (a float histogram is one whose count is
// count_float). The rules are, in Validate's order:
//
//   - the schema is -4 to 8 (exponential buckets) or -53 (custom buckets);
//   - per side, the span lengths add up to the number of buckets, only the
//     first span has a negative offset, and the bucket indexes fit in int32;
//   - no bucket count is negative (integer buckets are delta-encoded: the
//     running sum is the count), nor a float histogram's zero count or count;
//   - custom buckets: bounds strictly increasing, not NaN, the last not
//     +Inf, enough of them for the spans, offsets not negative, and no zero
//     bucket, zero threshold or negative side; exponential buckets: no
//     custom bounds;
//   - an integer histogram's count equals the sum of its buckets and zero
//     count (is at least that sum when the sum of observations is NaN).
//     Float histograms have no count rule.
//
// The remote-write 2.0 spec says a receiver MUST reject such histograms;
// Prometheus answers 400, so the proxy does the same (naming the series,
// with Prometheus' message) instead of forwarding what the upstream may
// store or reject. The check reads the encoded message, which the decoder
// has already found well formed, in one pass, and does not allocate unless
// the histogram is invalid or of schema 9 to 52 (which Prometheus itself
// never stores or sends).

// Field numbers of prompb.Histogram and prompb.BucketSpan.
const (
	fieldHistCountInt       = 1
	fieldHistCountFloat     = 2
	fieldHistSum            = 3
	fieldHistSchema         = 4
	fieldHistZeroThreshold  = 5
	fieldHistZeroCountInt   = 6
	fieldHistZeroCountFloat = 7
	fieldHistNegativeSpans  = 8
	fieldHistNegativeDeltas = 9
	fieldHistNegativeCounts = 10
	fieldHistPositiveSpans  = 11
	fieldHistPositiveDeltas = 12
	fieldHistPositiveCounts = 13
	fieldHistTimestamp      = 15
	fieldHistCustomValues   = 16

	fieldSpanOffset = 1
	fieldSpanLength = 2
)

// histogramError is a well-formed histogram that Prometheus rejects.
// decodeSeries reports it as an invalid series.
type histogramError struct {
	index     int // among the series' histograms
	timestamp int64
	err       error // Prometheus' error
}

func (e *histogramError) Error() string {
	return fmt.Sprintf("histogram #%d at timestamp %d: %v", e.index, e.timestamp, e.err)
}

func (e *histogramError) Unwrap() error { return e.err }

// validateHistogram checks the well-formed Histogram message b, the
// series' histogram number index, and returns a *histogramError if
// Prometheus rejects it.
func validateHistogram(index int, b []byte) error {
	var h histogramFields
	h.read(b)
	var err error
	switch {
	case histogram.IsExponentialSchemaReserved(h.schema) && h.schema > histogram.ExponentialSchemaMax:
		err = h.validateReduced()
	case h.float:
		err = h.validateFloat()
	default:
		err = h.validateInt()
	}
	if err != nil {
		return &histogramError{index: index, timestamp: h.timestamp, err: err}
	}
	return nil
}

// histogramFields is what Validate looks at in a Histogram message,
// gathered in one pass: the scalar fields as gogo decodes them (the last
// occurrence wins; a oneof's getter is zero for the other member), and for
// each side and the custom bounds, totals and the first element that
// breaks a rule.
type histogramFields struct {
	b              []byte // the message
	float          bool   // count is count_float
	countInt       uint64
	countFloat     float64
	sum            float64
	schema         int32
	zeroThreshold  float64
	zeroCountInt   uint64
	zeroCountFloat float64
	timestamp      int64
	neg, pos       histogramSide
	bounds         customBounds
}

// read reads the well-formed Histogram message b into the zero h.
func (h *histogramFields) read(b []byte) {
	h.b = b
	w := histogramWalker{b: b}
	for w.next() {
		h.add(&w.f)
	}
}

// add records one field (or one element of a packed field).
func (h *histogramFields) add(f *histField) {
	switch f.num {
	case fieldHistCountInt:
		h.float, h.countInt, h.countFloat = false, f.value, 0
	case fieldHistCountFloat:
		h.float, h.countInt, h.countFloat = true, 0, math.Float64frombits(f.value)
	case fieldHistSum:
		h.sum = math.Float64frombits(f.value)
	case fieldHistSchema:
		h.schema = zigzag32(f.value)
	case fieldHistZeroThreshold:
		h.zeroThreshold = math.Float64frombits(f.value)
	case fieldHistZeroCountInt:
		h.zeroCountInt, h.zeroCountFloat = f.value, 0
	case fieldHistZeroCountFloat:
		h.zeroCountInt, h.zeroCountFloat = 0, math.Float64frombits(f.value)
	case fieldHistTimestamp:
		h.timestamp = int64(f.value)
	case fieldHistNegativeSpans:
		h.neg.addSpan(decodeSpan(h.b[f.start:f.end]))
	case fieldHistNegativeDeltas:
		h.neg.addDelta(zigzag64(f.value))
	case fieldHistNegativeCounts:
		h.neg.addCount(math.Float64frombits(f.value))
	case fieldHistPositiveSpans:
		h.pos.addSpan(decodeSpan(h.b[f.start:f.end]))
	case fieldHistPositiveDeltas:
		h.pos.addDelta(zigzag64(f.value))
	case fieldHistPositiveCounts:
		h.pos.addCount(math.Float64frombits(f.value))
	case fieldHistCustomValues:
		h.bounds.add(math.Float64frombits(f.value))
	}
}

// validateInt is (*histogram.Histogram).Validate.
func (h *histogramFields) validateInt() error {
	switch {
	case h.schema == histogram.CustomBucketsSchema:
		if err := h.checkCustomBuckets(h.zeroCountInt != 0, h.neg.deltas, h.pos.deltas); err != nil {
			return err
		}
	case histogram.IsExponentialSchema(h.schema):
		if err := h.checkBothSpans(h.neg.deltas, h.pos.deltas); err != nil {
			return err
		}
		if h.neg.negativeDelta.n > 0 {
			return fmt.Errorf("negative side: %w", h.neg.negativeDelta.err())
		}
		if h.bounds.n > 0 {
			return histogram.ErrHistogramExpSchemaCustomBounds
		}
	default:
		return histogram.InvalidSchemaError(h.schema)
	}
	if h.pos.negativeDelta.n > 0 {
		return fmt.Errorf("positive side: %w", h.pos.negativeDelta.err())
	}
	// Custom buckets have no negative side by now.
	return h.checkIntCount(h.neg.total + h.pos.total + h.zeroCountInt)
}

// checkIntCount applies the count rule to the sum of the buckets (uint64
// arithmetic, wrapping as Prometheus' does).
func (h *histogramFields) checkIntCount(sumOfBuckets uint64) error {
	if math.IsNaN(h.sum) {
		if sumOfBuckets > h.countInt {
			return fmt.Errorf("%d observations found in buckets, but the Count field is %d: %w", sumOfBuckets, h.countInt, histogram.ErrHistogramCountNotBigEnough)
		}
	} else if sumOfBuckets != h.countInt {
		return fmt.Errorf("%d observations found in buckets, but the Count field is %d: %w", sumOfBuckets, h.countInt, histogram.ErrHistogramCountMismatch)
	}
	return nil
}

// validateFloat is (*histogram.FloatHistogram).Validate.
func (h *histogramFields) validateFloat() error {
	switch {
	case h.schema == histogram.CustomBucketsSchema:
		if err := h.checkCustomBuckets(h.zeroCountFloat != 0, h.neg.counts, h.pos.counts); err != nil {
			return err
		}
	case histogram.IsExponentialSchema(h.schema):
		if err := h.checkBothSpans(h.neg.counts, h.pos.counts); err != nil {
			return err
		}
		if h.neg.negativeCount.n > 0 {
			return fmt.Errorf("negative side: %w", h.neg.negativeCount.err())
		}
		if h.zeroCountFloat < 0 {
			return fmt.Errorf("zero bucket has observation count of %v: %w", h.zeroCountFloat, histogram.ErrHistogramNegativeBucketCount)
		}
		if h.bounds.n > 0 {
			return histogram.ErrHistogramExpSchemaCustomBounds
		}
	default:
		return histogram.InvalidSchemaError(h.schema)
	}
	if h.countFloat < 0 {
		// Two spaces, as Prometheus writes it.
		return fmt.Errorf("observation count is  %v: %w", h.countFloat, histogram.ErrHistogramNegativeCount)
	}
	if h.pos.negativeCount.n > 0 {
		return fmt.Errorf("positive side: %w", h.pos.negativeCount.err())
	}
	return nil
}

// checkBothSpans checks the spans of an exponential histogram against its
// number of buckets per side, positive side first.
func (h *histogramFields) checkBothSpans(negBuckets, posBuckets int) error {
	if err := h.pos.checkSpans(posBuckets); err != nil {
		return fmt.Errorf("positive side: %w", err)
	}
	if err := h.neg.checkSpans(negBuckets); err != nil {
		return fmt.Errorf("negative side: %w", err)
	}
	return nil
}

// checkCustomBuckets applies the rules of the custom-buckets schema but the
// bucket counts'.
func (h *histogramFields) checkCustomBuckets(zeroCount bool, negBuckets, posBuckets int) error {
	if err := h.checkCustomBounds(posBuckets); err != nil {
		return fmt.Errorf("custom buckets: %w", err)
	}
	switch {
	case zeroCount:
		return histogram.ErrHistogramCustomBucketsZeroCount
	case h.zeroThreshold != 0:
		return histogram.ErrHistogramCustomBucketsZeroThresh
	case h.neg.spans > 0:
		return histogram.ErrHistogramCustomBucketsNegSpans
	case negBuckets > 0:
		return histogram.ErrHistogramCustomBucketsNegBuckets
	}
	return nil
}

// checkCustomBounds checks the custom bounds and the positive spans of a
// custom-buckets histogram with numBuckets positive buckets.
func (h *histogramFields) checkCustomBounds(numBuckets int) error {
	c, p := &h.bounds, &h.pos
	switch {
	case c.nan:
		return histogram.ErrHistogramCustomBucketsNaN
	case c.notIncreasing:
		return fmt.Errorf("previous bound is %f and current is %f: %w", c.prev, c.curr, histogram.ErrHistogramCustomBucketsInvalid)
	case c.n > 0 && c.curr == math.Inf(1):
		return fmt.Errorf("last +Inf bound must not be explicitly defined: %w", histogram.ErrHistogramCustomBucketsInfinite)
	case p.negativeOffset.n > 0:
		return p.negativeOffset.err()
	case p.spanBuckets != numBuckets:
		return fmt.Errorf("spans need %d buckets, have %d buckets: %w", p.spanBuckets, numBuckets, histogram.ErrHistogramSpansBucketsMismatch)
	case c.n+1 < p.spanLength:
		return fmt.Errorf("only %d custom bounds defined which is insufficient to cover total span length of %d: %w", c.n, p.spanLength, histogram.ErrHistogramCustomBucketsMismatch)
	}
	return nil
}

// histogramSide sums up the spans and buckets of one side of a histogram,
// as Prometheus' checks go through them.
type histogramSide struct {
	spans, spanBuckets int
	endIdx             int64     // where the spans end, until badSpan
	spanLength         int       // offsets plus lengths (custom buckets)
	badSpan            spanFault // the first span checkHistogramSpans rejects
	negativeOffset     spanFault // the first span with a negative offset (custom buckets)

	deltas, counts int    // integer and float buckets
	last           int64  // the last integer bucket's count: the deltas' sum
	total          uint64 // the integer buckets' counts summed
	negativeDelta  bucketFault[int64]
	negativeCount  bucketFault[float64]
}

// addSpan adds a span as checkHistogramSpans and the custom-buckets check
// (checkHistogramCustomBounds) see it.
func (s *histogramSide) addSpan(offset int32, length uint32) {
	s.spans++
	s.spanBuckets += int(length)
	s.spanLength += int(length) + int(offset)
	if offset < 0 && s.negativeOffset.n == 0 {
		s.negativeOffset = spanFault{n: s.spans, index: int64(offset)}
	}
	if s.badSpan.n > 0 {
		return
	}
	switch {
	case s.spans > 1 && offset < 0:
		s.badSpan = spanFault{n: s.spans, index: int64(offset)}
	case s.spans == 1 && offset == math.MinInt32:
		s.badSpan = spanFault{n: s.spans, kind: spanStartsOutOfRange, index: int64(offset)}
	default:
		s.endIdx += int64(offset) + int64(length)
		if s.endIdx-1 > math.MaxInt32 {
			s.badSpan = spanFault{n: s.spans, kind: spanEndsOutOfRange, index: s.endIdx - 1}
		}
	}
}

// checkSpans is checkHistogramSpans.
func (s *histogramSide) checkSpans(numBuckets int) error {
	if s.badSpan.n > 0 {
		return s.badSpan.err()
	}
	if s.spanBuckets != numBuckets {
		return fmt.Errorf("spans need %d buckets, have %d buckets: %w", s.spanBuckets, numBuckets, histogram.ErrHistogramSpansBucketsMismatch)
	}
	return nil
}

// addDelta adds a delta-encoded integer bucket (int64 and uint64
// arithmetic, wrapping as Prometheus' does).
func (s *histogramSide) addDelta(delta int64) {
	s.deltas++
	c := s.last + delta
	if c < 0 && s.negativeDelta.n == 0 {
		s.negativeDelta = bucketFault[int64]{n: s.deltas, count: c}
	}
	s.last = c
	s.total += uint64(c)
}

// addCount adds a float bucket.
func (s *histogramSide) addCount(c float64) {
	s.counts++
	if c < 0 && s.negativeCount.n == 0 {
		s.negativeCount = bucketFault[float64]{n: s.counts, count: c}
	}
}

// spanFault is a span that breaks a rule: its number (from 1; 0 for none),
// and its offset or the bucket index out of range.
type spanFault struct {
	n     int
	kind  uint8
	index int64
}

const (
	spanNegativeOffset = iota
	spanStartsOutOfRange
	spanEndsOutOfRange
)

func (f spanFault) err() error {
	switch f.kind {
	case spanStartsOutOfRange:
		return fmt.Errorf("span number %d starts at bucket index %d: %w", f.n, f.index, histogram.ErrHistogramSpanIndexOutOfRange)
	case spanEndsOutOfRange:
		return fmt.Errorf("span number %d ends at bucket index %d: %w", f.n, f.index, histogram.ErrHistogramSpanIndexOutOfRange)
	}
	return fmt.Errorf("span number %d with offset %d: %w", f.n, f.index, histogram.ErrHistogramSpanNegativeOffset)
}

// bucketFault is a negative bucket: its number (from 1; 0 for none) and
// its count.
type bucketFault[T int64 | float64] struct {
	n     int
	count T
}

func (f bucketFault[T]) err() error {
	return fmt.Errorf("bucket number %d has observation count of %v: %w", f.n, f.count, histogram.ErrHistogramNegativeBucketCount)
}

// customBounds sums up the custom bounds as checkHistogramCustomBounds goes
// through them: up to the first that is NaN or not above the one before.
type customBounds struct {
	n                  int
	nan, notIncreasing bool
	prev, curr         float64 // the last two bounds looked at
}

func (c *customBounds) add(v float64) {
	c.n++
	if c.nan || c.notIncreasing {
		return
	}
	c.prev, c.curr = c.curr, v
	c.nan = math.IsNaN(v)
	c.notIncreasing = !c.nan && c.n > 1 && v <= c.prev
}

// validateReduced validates a histogram of schema 9 to 52 as Prometheus'
// receiver does: it reduces the histogram to schema 8 and validates the
// result. It decodes the histogram into Prometheus' types, as prompb's
// ToIntHistogram and ToFloatHistogram do, and runs Prometheus' code.
func (h *histogramFields) validateReduced() error {
	if h.float {
		fh := &histogram.FloatHistogram{
			Schema: h.schema, ZeroThreshold: h.zeroThreshold, ZeroCount: h.zeroCountFloat, Count: h.countFloat, Sum: h.sum,
			PositiveSpans: h.spans(fieldHistPositiveSpans), PositiveBuckets: h.floats(fieldHistPositiveCounts),
			NegativeSpans: h.spans(fieldHistNegativeSpans), NegativeBuckets: h.floats(fieldHistNegativeCounts),
			CustomValues: h.floats(fieldHistCustomValues),
		}
		if err := fh.ReduceResolution(histogram.ExponentialSchemaMax); err != nil {
			return err
		}
		return fh.Validate()
	}
	ih := &histogram.Histogram{
		Schema: h.schema, ZeroThreshold: h.zeroThreshold, ZeroCount: h.zeroCountInt, Count: h.countInt, Sum: h.sum,
		PositiveSpans: h.spans(fieldHistPositiveSpans), PositiveBuckets: h.deltas(fieldHistPositiveDeltas),
		NegativeSpans: h.spans(fieldHistNegativeSpans), NegativeBuckets: h.deltas(fieldHistNegativeDeltas),
		CustomValues: h.floats(fieldHistCustomValues),
	}
	if err := ih.ReduceResolution(histogram.ExponentialSchemaMax); err != nil {
		return err
	}
	return ih.Validate()
}

// spans returns the spans of field num.
func (h *histogramFields) spans(num uint32) []histogram.Span {
	var out []histogram.Span
	w := histogramWalker{b: h.b}
	for w.next() {
		if w.f.num == num {
			offset, length := decodeSpan(h.b[w.f.start:w.f.end])
			out = append(out, histogram.Span{Offset: offset, Length: length})
		}
	}
	return out
}

// deltas returns the elements of the sint64 field num (nil for none).
func (h *histogramFields) deltas(num uint32) []int64 {
	var out []int64
	w := histogramWalker{b: h.b}
	for w.next() {
		if w.f.num == num {
			out = append(out, zigzag64(w.f.value))
		}
	}
	return out
}

// floats returns the elements of the double field num (nil for none, as
// gogo leaves a field without elements).
func (h *histogramFields) floats(num uint32) []float64 {
	var out []float64
	w := histogramWalker{b: h.b}
	for w.next() {
		if w.f.num == num {
			out = append(out, math.Float64frombits(w.f.value))
		}
	}
	return out
}

// histField is one field of a Histogram or BucketSpan message, or one
// element of a packed repeated field.
type histField struct {
	num        uint32
	wire       uint8
	value      uint64 // of a varint, or a fixed64's bits
	start, end int    // the payload of a length-delimited field
}

// histogramWalker reads the fields of a well-formed Histogram message in
// order, yielding the elements of a packed field (deltas, counts, custom
// values) one by one as if they were not packed. Like gogo (see
// skipPacked), it reads the last element of a packed field to its end even
// when that is past the field's, and goes on from there.
type histogramWalker struct {
	b        []byte
	f        histField // the current field or element
	i        int       // where the next field or element starts
	runEnd   int       // the end of the packed field being read
	runFixed bool      // whose elements are doubles, not varints
}

// next reads the next field or element into w.f; it is false at the end.
func (w *histogramWalker) next() bool {
	for {
		if w.i < w.runEnd {
			return w.element()
		}
		next, ok := readHistField(w.b, w.i, &w.f)
		if !ok {
			return false
		}
		w.i = next
		if w.f.wire != wireBytes || !packedFixed(w.f.num) && !packedVarint(w.f.num) {
			return true
		}
		w.i, w.runEnd, w.runFixed = w.f.start, w.f.end, packedFixed(w.f.num) // read its elements
	}
}

// element reads one element of the packed field w.f.num.
func (w *histogramWalker) element() bool {
	var err error
	if w.runFixed {
		w.f.wire = wireFixed64
		if len(w.b)-w.i < 8 {
			err = errTruncated
		} else {
			w.f.value, w.i = binary.LittleEndian.Uint64(w.b[w.i:]), w.i+8
		}
	} else {
		w.f.wire = wireVarint
		w.f.value, w.i, err = readVarint(w.b, w.i)
	}
	if err != nil {
		w.i, w.runEnd = len(w.b), 0 // cannot happen: the message is well formed
		return false
	}
	return true
}

// packedFixed and packedVarint tell the repeated numeric fields of a
// Histogram, whose length-delimited form is packed.
func packedFixed(num uint32) bool {
	return num == fieldHistNegativeCounts || num == fieldHistPositiveCounts || num == fieldHistCustomValues
}

func packedVarint(num uint32) bool {
	return num == fieldHistNegativeDeltas || num == fieldHistPositiveDeltas
}

// decodeSpan decodes a well-formed BucketSpan as gogo does: the last
// offset and length win, and both keep only the low 32 bits of their
// varint.
func decodeSpan(b []byte) (offset int32, length uint32) {
	var f histField
	for i := 0; i < len(b); {
		next, ok := readHistField(b, i, &f)
		if !ok {
			break
		}
		switch {
		case f.num == fieldSpanOffset && f.wire == wireVarint:
			offset = zigzag32(f.value)
		case f.num == fieldSpanLength && f.wire == wireVarint:
			length = uint32(f.value)
		}
		i = next
	}
	return offset, length
}

// readHistField reads the field at b[i:] into f (its payload's bounds
// only for a length-delimited field) and returns the index after it; ok is
// false at the end of b or on a malformed field.
func readHistField(b []byte, i int, f *histField) (next int, ok bool) {
	if i >= len(b) {
		return i, false
	}
	tag, i, err := readVarint(b, i)
	num := int32(tag >> 3) // gogo's truncation, see field.num
	f.num, f.wire = uint32(num), uint8(tag&7)
	if err != nil || num <= 0 || f.wire == wireEndGroup {
		return i, false
	}
	switch f.wire {
	case wireVarint:
		f.value, i, err = readVarint(b, i)
	case wireFixed64:
		if len(b)-i < 8 {
			return i, false
		}
		f.value, i = binary.LittleEndian.Uint64(b[i:]), i+8
	case wireBytes:
		var p []byte
		p, i, err = readBytes(b, i)
		f.start, f.end = i-len(p), i
	default:
		i, err = skipValue(b, i, f.wire)
	}
	return i, err == nil
}

// zigzag32 decodes a sint32 as gogo does, from the low 32 bits of a varint.
func zigzag32(v uint64) int32 {
	u := uint32(v)
	return int32(u>>1) ^ -int32(u&1)
}

// zigzag64 decodes a sint64.
func zigzag64(v uint64) int64 {
	return int64(v>>1) ^ -int64(v&1)
}
