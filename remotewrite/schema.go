package remotewrite

import "fmt"

// The messages nested in a TimeSeries or WriteRequest are forwarded verbatim,
// never decoded, but gogo's prompb Unmarshal (what Prometheus, VictoriaMetrics
// and vmagent run) rejects a request when a known field of any nested message
// has the wrong wire type. The tables below say, per message, which wire
// types gogo accepts for each field number, so checkMessage can validate a
// message without allocating. Field numbers not listed are unknown fields,
// which gogo skips (groups included).

// fieldKind says how gogo reads one known field.
type fieldKind uint8

const (
	kindUnknown         fieldKind = iota // skipped like any unknown field
	kindVarint                           // wire type 0 only
	kindFixed64                          // wire type 1 only
	kindBytes                            // wire type 2, payload unchecked (gogo does not check UTF-8)
	kindMessage                          // wire type 2, payload checked against a nested schema
	kindRepeatedVarint                   // wire type 0, or 2 packed
	kindRepeatedFixed64                  // wire type 1, or 2 packed
)

// fieldRule is the rule for one field number.
type fieldRule struct {
	kind fieldKind
	msg  *msgSchema // the nested message, for kindMessage
}

// msgSchema lists the known fields of one message type.
type msgSchema struct {
	name   string      // for error messages
	fields []fieldRule // indexed by field number; numbers past the end are unknown
}

var (
	varintRule         = fieldRule{kind: kindVarint}
	fixed64Rule        = fieldRule{kind: kindFixed64}
	bytesRule          = fieldRule{kind: kindBytes}
	repeatedVarintRule = fieldRule{kind: kindRepeatedVarint}
	repeatedFixedRule  = fieldRule{kind: kindRepeatedFixed64}
)

// Schemas of prompb's types.proto (v0.316.0).
var (
	labelSchema  = msgSchema{name: "label", fields: []fieldRule{1: bytesRule, 2: bytesRule}}
	sampleSchema = msgSchema{name: "sample", fields: []fieldRule{1: fixed64Rule, 2: varintRule}}
	// exemplarSchema: labels, value, timestamp.
	exemplarSchema = msgSchema{name: "exemplar", fields: []fieldRule{
		1: {kind: kindMessage, msg: &labelSchema}, 2: fixed64Rule, 3: varintRule}}
	// spanSchema: BucketSpan offset (sint32) and length (uint32).
	spanSchema = msgSchema{name: "bucket span", fields: []fieldRule{1: varintRule, 2: varintRule}}
	// histogramSchema: count_int|count_float, sum, schema, zero_threshold,
	// zero_count_int|zero_count_float, negative spans/deltas/counts, positive
	// spans/deltas/counts, reset_hint, timestamp, custom_values.
	histogramSchema = msgSchema{name: "histogram", fields: []fieldRule{
		1: varintRule, 2: fixed64Rule, 3: fixed64Rule, 4: varintRule, 5: fixed64Rule,
		6: varintRule, 7: fixed64Rule,
		8: {kind: kindMessage, msg: &spanSchema}, 9: repeatedVarintRule, 10: repeatedFixedRule,
		11: {kind: kindMessage, msg: &spanSchema}, 12: repeatedVarintRule, 13: repeatedFixedRule,
		14: varintRule, 15: varintRule, 16: repeatedFixedRule}}
	// metadataSchema: MetricMetadata type, metric_family_name, help, unit (3 is unused).
	metadataSchema = msgSchema{name: "metadata", fields: []fieldRule{
		1: varintRule, 2: bytesRule, 4: bytesRule, 5: bytesRule}}
)

// rule returns the rule for field number num.
func (s *msgSchema) rule(num uint32) fieldRule {
	if uint64(num) < uint64(len(s.fields)) {
		return s.fields[num]
	}
	return fieldRule{}
}

// checkMessage reports whether gogo would unmarshal b as a message of schema
// s, nested messages included.
func checkMessage(b []byte, s *msgSchema) error {
	for i := 0; i < len(b); {
		f, next, err := readField(b, i)
		if err != nil {
			return fmt.Errorf("%s at byte %d: %w", s.name, i, err)
		}
		if r := s.rule(f.num); r.kind != kindUnknown {
			if next, err = r.check(b, f, next); err != nil {
				return fmt.Errorf("%s field %d: %w", s.name, f.num, err)
			}
		}
		i = next
	}
	return nil
}

// check validates a known field f of the message b that readField read up to
// next, and returns where the following field starts (not always next: see
// skipPacked).
func (r fieldRule) check(b []byte, f field, next int) (int, error) {
	ok := false
	switch r.kind {
	case kindVarint:
		ok = f.wire == wireVarint
	case kindFixed64:
		ok = f.wire == wireFixed64
	case kindBytes:
		ok = f.wire == wireBytes
	case kindMessage:
		if f.wire == wireBytes {
			return next, checkMessage(f.bytes, r.msg)
		}
	case kindRepeatedVarint, kindRepeatedFixed64:
		if f.wire == wireBytes {
			return skipPacked(b, next-len(f.bytes), next, r.kind == kindRepeatedFixed64)
		}
		ok = f.wire == wireVarint && r.kind == kindRepeatedVarint ||
			f.wire == wireFixed64 && r.kind == kindRepeatedFixed64
	}
	if !ok {
		return next, fmt.Errorf("wrong wire type %d", f.wire)
	}
	return next, nil
}

// skipPacked walks the elements of a packed repeated field whose payload is
// b[i:end] and returns where gogo resumes parsing. gogo bounds each element by
// the end of the enclosing message b, not by the end of the field: an element
// may straddle end, and parsing then resumes after that element, inside what
// the length prefix said was the next field.
func skipPacked(b []byte, i, end int, fixed64 bool) (int, error) {
	var err error
	for i < end && err == nil {
		if fixed64 {
			i, err = skipFixed(b, i, 8)
		} else {
			_, i, err = readVarint(b, i)
		}
	}
	return i, err
}
