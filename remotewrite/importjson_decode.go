package remotewrite

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// ImportTranscoder turns VictoriaMetrics' JSON-lines import, one
// {"metric":{...},"values":[...],"timestamps":[...]} object per line (what
// vmanomaly's writer POSTs to /api/v1/import), into the RW1 WriteRequest
// the rest of the pipeline takes: one TimeSeries per line, its labels as
// the metric object gives them (the decoder sorts them), its samples in
// line order. Unlike vminsert, which logs a bad line and drops it, a bad
// line rejects the whole request with an error naming the line: a 2xx
// must mean every sample was forwarded. Values are JSON numbers, null,
// or the strings VictoriaMetrics accepts ("NaN", "Inf", "-Infinity",
// ...); timestamps are integer milliseconds. Keys other than metric,
// values and timestamps are skipped. It keeps its buffers across
// requests and does not allocate per sample once warm.
type ImportTranscoder struct {
	labels  []Label
	values  []float64
	stamps  []int64
	strings []byte // unescaped strings of the current line (see line)
	// nonASCII is set when a string of the current line has a byte past
	// ASCII: only then can its labels be invalid UTF-8 (escapes unescape
	// to valid UTF-8, see unescape).
	nonASCII bool
	// hold, when set, is the request's byte budget, asked before the
	// output grows (per line, never per sample).
	hold *hold
	// cache, when set, holds the encoded labels of "metric" objects seen
	// before (see importLabelCache); it is not used with extra labels.
	cache *importLabelCache
	// hit is the current line's labels found in the cache, else nil;
	// metricKey the text of its object, to remember, else nil.
	hit, metricKey []byte
	// pending, hits and misses are this transcode's use of the cache.
	pending      []importCacheEntry
	hits, misses int
	// lines and start carry one transcode across the chunks of a body
	// transcoded as it arrives (see transcodeLines): the lines consumed so
	// far and where the output began.
	lines, start int
}

// ReasonBadImport is the rejection reason of a JSON import line that is not
// valid.
const ReasonBadImport = "bad_import"

// maxJSONDepth bounds the nesting of a skipped value.
const maxJSONDepth = 64

// importLineError is a bad line: 400 naming it.
func importLineError(line int, format string, args ...any) error {
	return &DecodeError{Reason: ReasonBadImport, Msg: fmt.Sprintf("JSON import line %d: ", line) + fmt.Sprintf(format, args...)}
}

// Transcode appends to dst the RW1 WriteRequest for the JSON lines in body,
// with the extra labels added to every series (replacing a label of the
// same name, as vminsert's extra_label does). It fails with 413 once the
// output would exceed limit bytes.
func (t *ImportTranscoder) Transcode(dst, body []byte, extra []Label, limit int) ([]byte, error) {
	t.begin(dst)
	return t.transcodeLines(dst, body, extra, limit)
}

// begin starts a transcode whose output is appended to dst.
func (t *ImportTranscoder) begin(dst []byte) { t.lines, t.start = 0, len(dst) }

// transcodeLines appends the lines of body to the transcode begun by
// begin: body is the whole rest of the request, or a part of it that ends
// with a newline; lines are numbered on from the parts before it.
func (t *ImportTranscoder) transcodeLines(dst, body []byte, extra []Label, limit int) ([]byte, error) {
	start := t.start
	extraASCII := true
	for _, x := range extra {
		extraASCII = extraASCII && isASCII(x.Name) && isASCII(x.Value)
	}
	cached := t.cache != nil && len(extra) == 0
	if cached {
		t.cache.mu.RLock()
		defer t.flushCache()
		defer t.cache.mu.RUnlock()
	}
	lineNo := t.lines + 1
	defer func() { t.lines = lineNo - 1 }()
	for n := 0; n < len(body); lineNo++ {
		end := bytes.IndexByte(body[n:], '\n')
		if end < 0 {
			end = len(body) - n
		}
		line := body[n : n+end]
		n += end + 1
		if isBlank(line) {
			continue
		}
		err := t.line(line, lineNo, cached)
		if err == errUncachedLine {
			err = t.line(line, lineNo, false)
		}
		if err != nil {
			return dst, err
		}
		if t.hit == nil {
			t.addExtra(extra)
			if _, err := validateLabels(0, t.labels, t.nonASCII || !extraASCII); err != nil {
				return dst, importLineError(lineNo, "%s", seriesProblem(err))
			}
		}
		size, labelsSize := t.seriesSize()
		if len(dst)-start+bytesFieldLen(size) > limit {
			return dst, tooLarge("JSON import converts to more than limits.max_decoded_bytes (%d bytes) of remote write", limit)
		}
		if dst, err = t.hold.room(dst, bytesFieldLen(size), start+limit); err != nil {
			return dst, err
		}
		dst = t.appendSeries(dst, size, labelsSize)
	}
	return dst, nil
}

// seriesProblem is what validateLabels says is wrong, without its series
// number (a JSON line has its own).
func seriesProblem(err error) string {
	msg := err.Error()
	if i := len("invalid series #0 "); len(msg) > i {
		return msg[i:]
	}
	return msg
}

func isBlank(b []byte) bool {
	for _, c := range b {
		if c != ' ' && c != '\t' && c != '\r' {
			return false
		}
	}
	return true
}

// addExtra replaces or appends the extra labels.
func (t *ImportTranscoder) addExtra(extra []Label) {
	for _, x := range extra {
		replaced := false
		for i := range t.labels {
			if string(t.labels[i].Name) == string(x.Name) {
				t.labels[i].Value, replaced = x.Value, true
			}
		}
		if !replaced {
			t.labels = append(t.labels, x)
		}
	}
}

// seriesSize is the encoded size of the current line's TimeSeries and of
// its labels, which come from the cache when the line found them there.
func (t *ImportTranscoder) seriesSize() (size, labelsSize int) {
	labelsSize = len(t.hit)
	if t.hit == nil {
		for _, l := range t.labels {
			labelsSize += bytesFieldLen(labelLen(l))
		}
	}
	size = labelsSize
	for _, ts := range t.stamps {
		size += bytesFieldLen(sampleLen(ts))
	}
	return size, labelsSize
}

// appendSeries appends the current line, of encoded size size, as a
// WriteRequest.timeseries entry, its labels from the cache when the line
// found them there; labels it encodes (labelsSize bytes) are queued for the
// cache when the line's object can be remembered.
func (t *ImportTranscoder) appendSeries(dst []byte, size, labelsSize int) []byte {
	dst = slices.Grow(dst, 1+varintLen(uint64(size))+size)
	dst = append(dst, tagWriteTimeseries)
	dst = appendVarint(dst, uint64(size))
	if t.hit != nil {
		dst = append(dst, t.hit...)
	} else {
		for _, l := range t.labels {
			dst = appendLabel(dst, l)
		}
		t.remember(dst[len(dst)-labelsSize:])
	}
	for i, v := range t.values {
		ts := t.stamps[i]
		dst = append(dst, fieldSeriesSamples<<3|wireBytes, byte(sampleLen(ts)))
		dst = append(dst, 1<<3|wireFixed64)
		dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(v))
		if ts != 0 {
			dst = append(dst, 2<<3|wireVarint)
			dst = appendVarint(dst, uint64(ts))
		}
	}
	return dst
}

// appendLabel appends l as a TimeSeries.labels field, with the one-byte
// lengths of a short label written directly.
func appendLabel(dst []byte, l Label) []byte {
	if nl, vl := len(l.Name), len(l.Value); nl+vl+4 < 0x80 && vl > 0 {
		k := len(dst)
		dst = slices.Grow(dst, nl+vl+6)[:k+nl+vl+6]
		dst[k], dst[k+1], dst[k+2], dst[k+3] = tagSeriesLabels, byte(nl+vl+4), tagLabelName, byte(nl)
		copy(dst[k+4:], l.Name)
		dst[k+4+nl], dst[k+5+nl] = tagLabelValue, byte(vl)
		copy(dst[k+6+nl:], l.Value)
		return dst
	}
	dst = append(dst, tagSeriesLabels)
	dst = appendVarint(dst, uint64(labelLen(l)))
	return appendLabelFields(dst, l)
}

// sampleLen is the encoded size of a prompb.Sample with timestamp ts (a
// zero timestamp is not written, as gogo's marshaller does).
func sampleLen(ts int64) int {
	if ts == 0 {
		return 9
	}
	return 10 + varintLen(uint64(ts))
}

// jsonScanner reads one JSON line.
type jsonScanner struct {
	b    []byte
	i    int
	line int
}

func (s *jsonScanner) skipSpace() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\r':
			s.i++
		default:
			return
		}
	}
}

// expect consumes c (after white space) or fails naming what is there.
func (s *jsonScanner) expect(c byte, what string) error {
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return nil
	}
	s.skipSpace()
	if s.i >= len(s.b) || s.b[s.i] != c {
		return s.errorf("%s: want %q, found %s", what, c, s.here())
	}
	s.i++
	return nil
}

// here describes the input at the scanner's position for an error.
func (s *jsonScanner) here() string {
	if s.i >= len(s.b) {
		return "end of line"
	}
	rest := s.b[s.i:]
	if len(rest) > 20 {
		rest = rest[:20]
	}
	return fmt.Sprintf("%q at column %d", rest, s.i+1)
}

func (s *jsonScanner) errorf(format string, args ...any) error {
	return importLineError(s.line, format, args...)
}

// line parses one JSON object into t.labels (or t.hit, with useCache),
// t.values and t.stamps.
func (t *ImportTranscoder) line(b []byte, lineNo int, useCache bool) error {
	t.labels, t.values, t.stamps, t.nonASCII = t.labels[:0], t.values[:0], t.stamps[:0], false
	t.hit, t.metricKey = nil, nil
	// Unescaped strings are never longer than the line: with this much
	// room, labels pointing into t.strings stay valid while it grows.
	if cap(t.strings) < len(b) {
		t.strings = make([]byte, 0, len(b))
	}
	t.strings = t.strings[:0]
	s := &jsonScanner{b: b, line: lineNo}
	if err := s.expect('{', "a line must be a JSON object"); err != nil {
		return err
	}
	var seenMetric, seenValues, seenStamps bool
	for first := true; ; first = false {
		s.skipSpace()
		if s.i < len(s.b) && s.b[s.i] == '}' && first {
			s.i++
			break
		}
		key, err := t.str(s, "an object key (a string)")
		if err != nil {
			return err
		}
		if err := s.expect(':', "after an object key"); err != nil {
			return err
		}
		switch string(key) {
		case "metric":
			err = t.metricOf(s, useCache, seenMetric)
			seenMetric = true
		case "values":
			seenValues, err = true, t.valueArray(s)
		case "timestamps":
			seenStamps, err = true, t.stampArray(s)
		default:
			err = skipJSON(s, 0)
		}
		if err != nil {
			return err
		}
		s.skipSpace()
		if s.i < len(s.b) && s.b[s.i] == ',' {
			s.i++
			continue
		}
		if err := s.expect('}', "after a value in the line's object"); err != nil {
			return err
		}
		break
	}
	if s.skipSpace(); s.i < len(s.b) {
		return s.errorf("text after the JSON object: %s", s.here())
	}
	switch {
	case !seenMetric || len(t.labels) == 0 && t.hit == nil:
		return s.errorf(`no "metric" object with labels`)
	case !seenValues || len(t.values) == 0:
		return s.errorf(`no "values" array, or it is empty`)
	case !seenStamps || len(t.stamps) == 0:
		return s.errorf(`no "timestamps" array, or it is empty`)
	case len(t.values) != len(t.stamps):
		return s.errorf(`"values" has %d items but "timestamps" has %d: they must have the same length`, len(t.values), len(t.stamps))
	}
	return nil
}

// metricOf reads a "metric" object: from the cache when useCache is set
// and it is there, else by parsing it. again says the line had one
// before: it makes the labels of the two together, which the cache does
// not hold.
func (t *ImportTranscoder) metricOf(s *jsonScanner, useCache, again bool) error {
	if t.hit != nil {
		return errUncachedLine
	}
	if again {
		t.metricKey = nil
	} else if useCache && t.cachedMetric(s) {
		return nil
	}
	start := s.i
	err := t.metric(s)
	if t.metricKey != nil && s.i-start != len(t.metricKey) {
		t.metricKey = nil // a '}' inside a string: the object does not end at the first '}'
	}
	return err
}

// metric parses the "metric" object into t.labels.
func (t *ImportTranscoder) metric(s *jsonScanner) error {
	if t.compactMetric(s) {
		return nil
	}
	if err := s.expect('{', `"metric"`); err != nil {
		return err
	}
	s.skipSpace()
	if s.i < len(s.b) && s.b[s.i] == '}' {
		s.i++
		return nil
	}
	for {
		if err := t.label(s); err != nil {
			return err
		}
		s.skipSpace()
		if s.i < len(s.b) && s.b[s.i] == ',' {
			s.i++
			continue
		}
		return s.expect('}', `after a label in "metric"`)
	}
}

// compactMetric parses a "metric" object as JSON writers send it, without
// white space, escapes or bytes past ASCII, in one loop over the line; it
// reports false, having consumed and kept nothing, for any other object,
// which metric then parses (and reports on) in full.
func (t *ImportTranscoder) compactMetric(s *jsonScanner) bool {
	b, i, n := s.b, s.i, len(t.labels)
	if i >= len(b) || b[i] != '{' {
		return false
	}
	for i++; i < len(b) && b[i] == '"'; i++ {
		nameStart := i + 1
		nameEnd := plainEnd(b, nameStart)
		if nameEnd+2 >= len(b) || b[nameEnd] != '"' || b[nameEnd+1] != ':' || b[nameEnd+2] != '"' {
			break
		}
		valueStart := nameEnd + 3
		if i = plainEnd(b, valueStart); i+1 >= len(b) || b[i] != '"' {
			break
		}
		t.appendLabel(b[nameStart:nameEnd], b[valueStart:i])
		switch b[i+1] {
		case ',':
			i++
			continue
		case '}':
			s.i = i + 2
			return true
		}
		break
	}
	t.labels = t.labels[:n]
	return false
}

// plainEnd returns the index of the first byte from i on that is not
// plainASCII, eight bytes at a time.
func plainEnd(b []byte, i int) int {
	for ; i+8 <= len(b); i += 8 {
		if m := notPlainASCII8(binary.LittleEndian.Uint64(b[i:])); m != 0 {
			return i + bits.TrailingZeros64(m)/8
		}
	}
	for ; i < len(b) && plainASCII[b[i]]; i++ {
	}
	return i
}

// appendLabel adds a label to t.labels. Growing first and setting the
// fields in place stores each word once, instead of building the Label on
// the stack and copying it.
func (t *ImportTranscoder) appendLabel(name, value []byte) {
	if len(t.labels) == cap(t.labels) {
		t.labels = slices.Grow(t.labels, 1)
	}
	t.labels = t.labels[:len(t.labels)+1]
	l := &t.labels[len(t.labels)-1]
	l.Name, l.Value = name, value
}

// label parses one "name":"value" pair of "metric" into t.labels.
func (t *ImportTranscoder) label(s *jsonScanner) error {
	name, err := t.str(s, `a label name in "metric" (a string)`)
	if err != nil {
		return err
	}
	if err := s.expect(':', "after a label name"); err != nil {
		return err
	}
	value, err := t.str(s, "a label value (a string)")
	if err != nil {
		return err
	}
	t.appendLabel(name, value)
	return nil
}

// valueArray parses "values" into t.values.
func (t *ImportTranscoder) valueArray(s *jsonScanner) error {
	more, err := arrayStart(s, `"values" must be an array`)
	for ; more && err == nil; more, err = arrayNext(s, `after an item of "values"`) {
		var v float64
		if v, err = t.value(s, len(t.values)); err != nil {
			return err
		}
		t.values = append(t.values, v)
	}
	return err
}

// stampArray parses "timestamps" into t.stamps.
func (t *ImportTranscoder) stampArray(s *jsonScanner) error {
	more, err := arrayStart(s, `"timestamps" must be an array`)
	for ; more && err == nil; more, err = arrayNext(s, `after an item of "timestamps"`) {
		if ts, end, ok := shortInteger(s.b, s.i); ok {
			s.i = end
			t.stamps = append(t.stamps, ts)
			continue
		}
		tok := scanNumber(s)
		ts, ok := tok.int()
		if !ok {
			var perr error
			if ts, perr = strconv.ParseInt(unsafeString(tok.text), 10, 64); perr != nil {
				return s.errorf("timestamp #%d is not an integer number of milliseconds: %s", len(t.stamps), describe(s, tok.text))
			}
		}
		t.stamps = append(t.stamps, ts)
	}
	return err
}

// shortInteger reads the JSON integer of 1 to 18 digits (which cannot
// overflow) at b[i:], when no fraction or exponent follows it, and returns
// it and the index past it: the timestamps of every line, read without
// building a numberToken.
func shortInteger(b []byte, i int) (int64, int, bool) {
	neg := i < len(b) && b[i] == '-'
	if neg {
		i++
	}
	end, m := digits(b, i, 0)
	if n := end - i; n == 0 || n > 18 || end < len(b) && (b[end] == '.' || b[end]|0x20 == 'e') {
		return 0, 0, false
	}
	if neg {
		return -int64(m), end, true
	}
	return int64(m), end, true
}

// shortDecimal reads the JSON number at b[i:] when it has no exponent and
// decimalFloat converts it, and returns it and the index past it: the
// values of every line, read without building a numberToken.
func shortDecimal(b []byte, i int) (float64, int, bool) {
	neg := i < len(b) && b[i] == '-'
	if neg {
		i++
	}
	end, m := digits(b, i, 0)
	n, e := end-i, 0
	if n == 0 {
		return 0, 0, false
	}
	if end < len(b) && b[end] == '.' {
		fracEnd, fm := digits(b, end+1, m)
		if fracEnd == end+1 {
			return 0, 0, false
		}
		m, e, n, end = fm, end+1-fracEnd, n+fracEnd-end-1, fracEnd
	}
	if end < len(b) && b[end]|0x20 == 'e' {
		return 0, 0, false
	}
	f, ok := decimalFloat(m, n, e, neg)
	return f, end, ok
}

// arrayStart consumes the '[' of an array and reports whether an item
// follows (false for []); what names the array in an error.
func arrayStart(s *jsonScanner, what string) (bool, error) {
	if err := s.expect('[', what); err != nil {
		return false, err
	}
	s.skipSpace()
	if s.i < len(s.b) && s.b[s.i] == ']' {
		s.i++
		return false, nil
	}
	return true, nil
}

// arrayNext consumes what follows an item: ',' (another item follows) or
// the closing ']'; what says where in an error.
func arrayNext(s *jsonScanner, what string) (bool, error) {
	s.skipSpace()
	if s.i < len(s.b) && s.b[s.i] == ',' {
		s.i++
		s.skipSpace()
		return true, nil
	}
	return false, s.expect(']', what)
}

// value parses one item of "values": a number, null (NaN), or a string
// VictoriaMetrics reads as a special value.
func (t *ImportTranscoder) value(s *jsonScanner, index int) (float64, error) {
	switch {
	case s.i < len(s.b) && s.b[s.i] == '"':
		str, err := t.str(s, "a value")
		if err != nil {
			return 0, err
		}
		if v, ok := specialValue(str); ok {
			return v, nil
		}
		return 0, s.errorf("value #%d is the string %q: values are numbers, null, or one of the strings NaN, Inf, Infinity, -Inf, -Infinity", index, str)
	case hasWord(s, "null"):
		return math.NaN(), nil
	}
	if v, end, ok := shortDecimal(s.b, s.i); ok {
		s.i = end
		return v, nil
	}
	if word := bareWord(s); word != nil {
		if v, ok := specialValue(word); ok {
			return v, nil
		}
		return 0, s.errorf("value #%d is %q: values are numbers, null, or one of NaN, Inf, Infinity, -Inf, -Infinity", index, word)
	}
	tok := scanNumber(s)
	if v, ok := tok.float(); ok && tok.text != nil { // a nil text is no number, not 0
		return v, nil
	}
	v, err := strconv.ParseFloat(unsafeString(tok.text), 64)
	if err != nil && !isRangeError(err) {
		return 0, s.errorf("value #%d is not a number: %s", index, describe(s, tok.text))
	}
	return v, nil
}

func isRangeError(err error) bool {
	ne, ok := err.(*strconv.NumError)
	return ok && ne.Err == strconv.ErrRange
}

// hasWord consumes the literal w when it is next.
func hasWord(s *jsonScanner, w string) bool {
	if len(s.b)-s.i >= len(w) && string(s.b[s.i:s.i+len(w)]) == w {
		s.i += len(w)
		return true
	}
	return false
}

// bareWord consumes an unquoted word such as NaN or -Infinity, which
// Python's json module writes for special floats and VictoriaMetrics reads;
// nil when none is next.
func bareWord(s *jsonScanner) []byte {
	start, i := s.i, s.i
	if i < len(s.b) && (s.b[i] == '-' || s.b[i] == '+') {
		i++
	}
	letters := i
	for i < len(s.b) && (s.b[i]|0x20 >= 'a' && s.b[i]|0x20 <= 'z') {
		i++
	}
	if i == letters {
		return nil
	}
	s.i = i
	return s.b[start:i]
}

// specialValue reads the strings VictoriaMetrics' import takes for values.
func specialValue(b []byte) (float64, bool) {
	sign := 1.0
	switch {
	case len(b) > 0 && b[0] == '-':
		sign, b = -1, b[1:]
	case len(b) > 0 && b[0] == '+':
		b = b[1:]
	}
	switch string(b) {
	case "infinity", "Infinity", "Inf", "inf":
		return math.Inf(int(sign)), true
	case "null", "Null", "nan", "NaN":
		return math.NaN(), true
	}
	return 0, false
}

// numberToken is a JSON number read by scanNumber.
type numberToken struct {
	text []byte // the token; nil when the input is not a number
	// mantissa is the integer the digits spell (point removed), exact
	// when digits <= 19; the number is ±mantissa x 10^exp10.
	mantissa uint64
	digits   int
	exp10    int
	neg      bool
	integer  bool // no fraction and no exponent
}

// maxExactMantissa and exactPow10 bound the numbers one float64 operation
// converts correctly rounded: an integer of at most 53 bits times or
// divided by an exactly representable power of ten (as strconv's fast
// path does).
const maxExactMantissa = 1 << 53

var exactPow10 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
	1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}

// pow10Uint64 are the powers of ten a uint64 holds.
var pow10Uint64 = func() (p [20]uint64) {
	p[0] = 1
	for i := 1; i < len(p); i++ {
		p[i] = p[i-1] * 10
	}
	return p
}()

// float returns the number's value, correctly rounded, when its digits
// fit a uint64 and its power of ten is small: a float64 operation on
// exact operands where that is exact, else integer arithmetic (a model's
// outputs have 17 significant digits, more than a float64 holds
// exactly). It reports false for the other numbers, which strconv reads.
func (n *numberToken) float() (float64, bool) {
	return decimalFloat(n.mantissa, n.digits, n.exp10, n.neg)
}

// decimalFloat is ±m x 10^e, m having the given number of digits, when
// float can convert it (see there).
func decimalFloat(m uint64, digits, e int, neg bool) (float64, bool) {
	if digits > 19 {
		return 0, false
	}
	var f float64
	switch {
	case m == 0:
	case m <= maxExactMantissa && -22 <= e && e < 0:
		f = float64(m) / exactPow10[-e]
	case -19 <= e && e < 0:
		f = divPow10(m, -e)
	case 0 <= e && e <= 19:
		hi, lo := bits.Mul64(m, pow10Uint64[e])
		if hi != 0 {
			return 0, false
		}
		f = float64(lo) // Go rounds integer conversions to nearest even
	default:
		return 0, false
	}
	if neg {
		f = -f
	}
	return f, true
}

// divPow10 returns m / 10^k correctly rounded to nearest even, for m > 0
// and k <= 19: the 64-bit quotient of m shifted left by s and 10^k, with
// the bits it drops and the remainder deciding the rounding.
func divPow10(m uint64, k int) float64 {
	d := pow10Uint64[k]
	// N = m << s has 63 + len(d) bits, so N/d has 63 or 64 bits and N's
	// high word is below d, as bits.Div64 needs.
	s := 63 + bits.Len64(d) - bits.Len64(m)
	var hi, lo uint64
	if s >= 64 {
		hi = m << (s - 64)
	} else {
		hi, lo = m>>(64-s), m<<s
	}
	q, r := bits.Div64(hi, lo, d)
	if q < 1<<63 {
		q, s = q<<1, s+1 // the bit shifted in counts in r
	}
	mant := q >> 11
	if q&(1<<10) != 0 && (q&(1<<10-1) != 0 || r != 0 || mant&1 != 0) {
		mant++
	}
	exp := 63 - s // the value is mant x 2^(exp-52)
	if mant == 1<<53 {
		mant, exp = mant>>1, exp+1
	}
	return math.Float64frombits(uint64(exp+1023)<<52 | mant&(1<<52-1))
}

// int returns the number as an int64 when it is an integer of at most 18
// digits (which cannot overflow).
func (n *numberToken) int() (int64, bool) {
	if !n.integer || n.digits > 18 {
		return 0, false
	}
	if n.neg {
		return -int64(n.mantissa), true
	}
	return int64(n.mantissa), true
}

// scanNumber consumes a JSON number token (strict grammar) and returns
// it, with its digits read as it goes so the common numbers need no
// second pass; an empty or partial token has a nil text and makes the
// caller's parse fail.
func scanNumber(s *jsonScanner) numberToken {
	b, i := s.b, s.i
	var n numberToken
	if i < len(b) && b[i] == '-' {
		n.neg = true
		i++
	}
	intStart := i
	i, n.mantissa = digits(b, i, 0)
	if i == intStart {
		return numberToken{}
	}
	n.digits, n.integer = i-intStart, true
	if i < len(b) && b[i] == '.' {
		i++
		fracStart := i
		i, n.mantissa = digits(b, i, n.mantissa)
		if i == fracStart {
			return numberToken{}
		}
		n.digits += i - fracStart
		n.exp10, n.integer = fracStart-i, false
	}
	if i < len(b) && b[i]|0x20 == 'e' {
		var ok bool
		if i, ok = n.exponent(b, i+1); !ok {
			return numberToken{}
		}
	}
	n.text = b[s.i:i]
	s.i = i
	return n
}

// digits reads the decimal digits at b[i:] onto m (wrapping past 19
// digits, where the caller does not use m) and returns the index past
// them. It takes eight digits at a time where it can: one multiplication
// per digit is a chain of dependent multiplications, the bulk of the cost
// of a 17-digit number.
func digits(b []byte, i int, m uint64) (int, uint64) {
	for i+8 <= len(b) {
		v := binary.LittleEndian.Uint64(b[i:])
		if !eightDigits(v) {
			break
		}
		m = m*100_000_000 + eightDigitsValue(v)
		i += 8
	}
	for ; i < len(b) && b[i]-'0' < 10; i++ {
		m = m*10 + uint64(b[i]-'0')
	}
	return i, m
}

// eightDigits reports whether the eight bytes of v (little endian) are all
// ASCII digits: every byte is 0x30..0x39, and stays below 0x40 with 6 added.
func eightDigits(v uint64) bool {
	return (v&0xF0F0F0F0F0F0F0F0)|(((v+0x0606060606060606)&0xF0F0F0F0F0F0F0F0)>>4) == 0x3333333333333333
}

// eightDigitsValue is the number eight ASCII digits spell, first digit in
// the lowest byte: pairs, then fours, then the eight are combined with one
// multiplication each.
func eightDigitsValue(v uint64) uint64 {
	v = (v & 0x0F0F0F0F0F0F0F0F) * 2561 >> 8
	v = (v & 0x00FF00FF00FF00FF) * 6553601 >> 16
	return (v & 0x0000FFFF0000FFFF) * 42949672960001 >> 32
}

// exponent reads the exponent digits of a number from b[i:], adding them
// to n.exp10, and returns the index past them.
func (n *numberToken) exponent(b []byte, i int) (int, bool) {
	n.integer = false
	neg := i < len(b) && b[i] == '-'
	if i < len(b) && (b[i] == '+' || b[i] == '-') {
		i++
	}
	start, e := i, 0
	for ; i < len(b) && b[i]-'0' < 10; i++ {
		if e < 1e6 { // beyond any float64; keeps e from overflowing
			e = e*10 + int(b[i]-'0')
		}
	}
	if neg {
		e = -e
	}
	n.exp10 += e
	return i, i > start
}

// number consumes a JSON number token (see scanNumber) and returns it.
func number(s *jsonScanner) []byte { return scanNumber(s).text }

// describe names a bad number token, or what stands where one should.
func describe(s *jsonScanner, tok []byte) string {
	if len(tok) > 0 {
		return strconv.Quote(string(tok))
	}
	return s.here()
}

// str parses a JSON string and returns its bytes: a sub-slice of the line
// when it has no escapes, else its unescaped form in t.strings. what names
// the string in an error, e.g. "an object key (a string)". Plain ASCII
// strings, the common case, are scanned eight bytes at a time.
func (t *ImportTranscoder) str(s *jsonScanner, what string) ([]byte, error) {
	if b, i := s.b, s.i; i < len(b) && b[i] == '"' {
		start := i + 1
		if i = plainEnd(b, start); i < len(b) && b[i] == '"' {
			s.i = i + 1
			return b[start:i], nil
		}
	}
	return t.strSlow(s, what)
}

// strSlow is str for a string after white space, with escapes or bytes
// past ASCII, or invalid.
func (t *ImportTranscoder) strSlow(s *jsonScanner, what string) ([]byte, error) {
	if err := s.expect('"', what); err != nil {
		return nil, err
	}
	start := s.i
	for s.i < len(s.b) {
		switch c := s.b[s.i]; {
		case c == '"':
			s.i++
			return s.b[start : s.i-1], nil
		case c == '\\':
			return t.unescape(s, start)
		case c < 0x20:
			return nil, s.errorf("%s: control character %q inside a string", what, c)
		case c >= 0x80:
			t.nonASCII = true
		}
		s.i++
	}
	return nil, s.errorf("%s: string not terminated", what)
}

// plainASCII marks the bytes str takes on its fast path: ASCII but the
// quote, the backslash and the control characters.
var plainASCII = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// notPlainASCII8 returns the high bit of each of the eight bytes of v
// (little endian) that is not plainASCII, exact up to the first one: a
// byte below 0x20 or past 0x7f leaves its high bit set in v-0x20.. or v,
// a quote or backslash is a zero byte of v xor its repetition, and the
// borrows of these subtractions only reach the bytes after a flagged one.
func notPlainASCII8(v uint64) uint64 {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	hasZero := func(x uint64) uint64 { return (x - ones) & ^x }
	return ((v - 0x20*ones) | v | hasZero(v^'"'*ones) | hasZero(v^'\\'*ones)) & highs
}

// unescape finishes a string with escapes from start (just past its
// opening quote), writing it to t.strings.
func (t *ImportTranscoder) unescape(s *jsonScanner, start int) ([]byte, error) {
	out := len(t.strings)
	t.strings = append(t.strings, s.b[start:s.i]...)
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			return t.strings[out:len(t.strings):len(t.strings)], nil
		case c < 0x20:
			return nil, s.errorf("control character %q inside a string", c)
		case c != '\\':
			t.nonASCII = t.nonASCII || c >= 0x80
			t.strings = append(t.strings, c)
			s.i++
			continue
		}
		if s.i+1 >= len(s.b) {
			break
		}
		e := s.b[s.i+1]
		s.i += 2
		switch e {
		case '"', '\\', '/':
			t.strings = append(t.strings, e)
		case 'b':
			t.strings = append(t.strings, '\b')
		case 'f':
			t.strings = append(t.strings, '\f')
		case 'n':
			t.strings = append(t.strings, '\n')
		case 'r':
			t.strings = append(t.strings, '\r')
		case 't':
			t.strings = append(t.strings, '\t')
		case 'u':
			r, ok := s.hexRune()
			if !ok {
				return nil, s.errorf("bad \\u escape in a string: %s", s.here())
			}
			t.strings = utf8.AppendRune(t.strings, r)
		default:
			return nil, s.errorf("bad escape \\%c in a string", e)
		}
	}
	return nil, s.errorf("string not terminated")
}

// hexRune reads the four hex digits after \u, and a second \uXXXX when the
// first is a high surrogate; an unpaired surrogate becomes U+FFFD, as Go's
// encoding/json makes it.
func (s *jsonScanner) hexRune() (rune, bool) {
	r, ok := s.hex4()
	if !ok {
		return 0, false
	}
	if !utf16.IsSurrogate(r) {
		return r, true
	}
	if s.i+6 <= len(s.b) && s.b[s.i] == '\\' && s.b[s.i+1] == 'u' {
		save := s.i
		s.i += 2
		if r2, ok := s.hex4(); ok {
			if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
				return dec, true
			}
		}
		s.i = save
	}
	return utf8.RuneError, true
}

func (s *jsonScanner) hex4() (rune, bool) {
	if s.i+4 > len(s.b) {
		return 0, false
	}
	var r rune
	for _, c := range s.b[s.i : s.i+4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	s.i += 4
	return r, true
}

// skipJSON skips one JSON value of a key the import does not use.
func skipJSON(s *jsonScanner, depth int) error {
	if depth > maxJSONDepth {
		return s.errorf("value nested deeper than %d levels", maxJSONDepth)
	}
	s.skipSpace()
	if s.i >= len(s.b) {
		return s.errorf("a value is missing at the end of the line")
	}
	switch c := s.b[s.i]; {
	case c == '"':
		return skipString(s)
	case c == '{', c == '[':
		return skipContainer(s, depth)
	case hasWord(s, "true"), hasWord(s, "false"), hasWord(s, "null"):
		return nil
	}
	if number(s) == nil {
		return s.errorf("not a JSON value: %s", s.here())
	}
	return nil
}

// skipContainer skips an object or an array.
func skipContainer(s *jsonScanner, depth int) error {
	obj := s.b[s.i] == '{'
	s.i++
	closer := byte(']')
	if obj {
		closer = '}'
	}
	s.skipSpace()
	if s.i < len(s.b) && s.b[s.i] == closer {
		s.i++
		return nil
	}
	for {
		if obj {
			s.skipSpace()
			if err := skipString(s); err != nil {
				return err
			}
			if err := s.expect(':', "after an object key"); err != nil {
				return err
			}
		}
		if err := skipJSON(s, depth+1); err != nil {
			return err
		}
		s.skipSpace()
		if s.i < len(s.b) && s.b[s.i] == ',' {
			s.i++
			continue
		}
		return s.expect(closer, "after an item")
	}
}

// skipString skips a JSON string, checking its escapes.
func skipString(s *jsonScanner) error {
	if err := s.expect('"', "a string"); err != nil {
		return err
	}
	for s.i < len(s.b) {
		switch c := s.b[s.i]; {
		case c == '"':
			s.i++
			return nil
		case c < 0x20:
			return s.errorf("control character %q inside a string", c)
		case c == '\\':
			s.i++
			if s.i < len(s.b) && s.b[s.i] == 'u' {
				s.i++
				if _, ok := s.hex4(); !ok {
					return s.errorf("bad \\u escape in a string: %s", s.here())
				}
				continue
			}
			if s.i >= len(s.b) || !isEscape(s.b[s.i]) {
				return s.errorf("bad escape in a string: %s", s.here())
			}
		}
		s.i++
	}
	return s.errorf("string not terminated")
}

// isEscape reports whether \c is a JSON escape other than \u.
func isEscape(c byte) bool {
	switch c {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		return true
	}
	return false
}

// unsafeString views b as a string for parsing, without copying.
func unsafeString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}
