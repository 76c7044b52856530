package remotewrite

import (
	"encoding/binary"
	"fmt"
	"math"
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
	// hold, when set, is the request's byte budget, asked before the
	// output grows (per line, never per sample).
	hold *hold
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
	start := len(dst)
	for n, lineNo := 0, 1; n < len(body); lineNo++ {
		end := n
		for end < len(body) && body[end] != '\n' {
			end++
		}
		line := body[n:end]
		n = end + 1
		if isBlank(line) {
			continue
		}
		if err := t.line(line, lineNo); err != nil {
			return dst, err
		}
		t.addExtra(extra)
		if _, err := validateLabels(0, t.labels, true); err != nil {
			return dst, importLineError(lineNo, "%s", seriesProblem(err))
		}
		size := t.seriesSize()
		if len(dst)-start+bytesFieldLen(size) > limit {
			return dst, tooLarge("JSON import converts to more than limits.max_decoded_bytes (%d bytes) of remote write", limit)
		}
		var err error
		if dst, err = t.hold.room(dst, bytesFieldLen(size), start+limit); err != nil {
			return dst, err
		}
		dst = t.appendSeries(dst, size)
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

// seriesSize is the encoded size of the current line's TimeSeries.
func (t *ImportTranscoder) seriesSize() int {
	size := 0
	for _, l := range t.labels {
		size += bytesFieldLen(labelLen(l))
	}
	for _, ts := range t.stamps {
		size += bytesFieldLen(sampleLen(ts))
	}
	return size
}

// appendSeries appends the current line, of encoded size size, as a
// WriteRequest.timeseries entry.
func (t *ImportTranscoder) appendSeries(dst []byte, size int) []byte {
	dst = append(dst, tagWriteTimeseries)
	dst = appendVarint(dst, uint64(size))
	for _, l := range t.labels {
		dst = append(dst, tagSeriesLabels)
		dst = appendVarint(dst, uint64(labelLen(l)))
		dst = appendLabelFields(dst, l)
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

// line parses one JSON object into t.labels, t.values and t.stamps.
func (t *ImportTranscoder) line(b []byte, lineNo int) error {
	t.labels, t.values, t.stamps = t.labels[:0], t.values[:0], t.stamps[:0]
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
			seenMetric, err = true, t.metric(s)
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
	case !seenMetric || len(t.labels) == 0:
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

// metric parses the "metric" object into t.labels.
func (t *ImportTranscoder) metric(s *jsonScanner) error {
	if err := s.expect('{', `"metric"`); err != nil {
		return err
	}
	s.skipSpace()
	if s.i < len(s.b) && s.b[s.i] == '}' {
		s.i++
		return nil
	}
	for {
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
		t.labels = append(t.labels, Label{Name: name, Value: value})
		s.skipSpace()
		if s.i < len(s.b) && s.b[s.i] == ',' {
			s.i++
			continue
		}
		return s.expect('}', `after a label in "metric"`)
	}
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
		tok := number(s)
		ts, perr := strconv.ParseInt(unsafeString(tok), 10, 64)
		if perr != nil {
			return s.errorf("timestamp #%d is not an integer number of milliseconds: %s", len(t.stamps), describe(s, tok))
		}
		t.stamps = append(t.stamps, ts)
	}
	return err
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
	if word := bareWord(s); word != nil {
		if v, ok := specialValue(word); ok {
			return v, nil
		}
		return 0, s.errorf("value #%d is %q: values are numbers, null, or one of NaN, Inf, Infinity, -Inf, -Infinity", index, word)
	}
	tok := number(s)
	v, err := strconv.ParseFloat(unsafeString(tok), 64)
	if err != nil && !isRangeError(err) {
		return 0, s.errorf("value #%d is not a number: %s", index, describe(s, tok))
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

// number consumes a JSON number token (strict grammar) and returns it; an
// empty or partial token makes the caller's parse fail.
func number(s *jsonScanner) []byte {
	start := s.i
	if s.i < len(s.b) && s.b[s.i] == '-' {
		s.i++
	}
	digits := func() int {
		n := 0
		for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
			s.i++
			n++
		}
		return n
	}
	if digits() == 0 {
		s.i = start
		return nil
	}
	if s.i < len(s.b) && s.b[s.i] == '.' {
		s.i++
		if digits() == 0 {
			s.i = start
			return nil
		}
	}
	if s.i < len(s.b) && (s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		s.i++
		if s.i < len(s.b) && (s.b[s.i] == '+' || s.b[s.i] == '-') {
			s.i++
		}
		if digits() == 0 {
			s.i = start
			return nil
		}
	}
	return s.b[start:s.i]
}

// describe names a bad number token, or what stands where one should.
func describe(s *jsonScanner, tok []byte) string {
	if len(tok) > 0 {
		return strconv.Quote(string(tok))
	}
	return s.here()
}

// str parses a JSON string and returns its bytes: a sub-slice of the line
// when it has no escapes, else its unescaped form in t.strings. what names
// the string in an error, e.g. "an object key (a string)".
func (t *ImportTranscoder) str(s *jsonScanner, what string) ([]byte, error) {
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
		}
		s.i++
	}
	return nil, s.errorf("%s: string not terminated", what)
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
