package main

import (
	"errors"
	"fmt"
)

// The sink's fast decoder: it walks the protobuf wire format of a
// prompb.WriteRequest without building structs, reading label names and
// values as sub-slices of the decoded body. It rejects malformed input
// (bad varints, lengths past the end, group wire types) and is checked
// against prompb.WriteRequest.Unmarshal by the tests, so compare can use it
// to keep the sink's CPU share small on a 2-core machine.

// Protobuf wire types.
const (
	wireVarint = 0
	wireI64    = 1
	wireLen    = 2
	wireStart  = 3 // start of a (deprecated) group
	wireEnd    = 4 // end of a group
	wireI32    = 5
)

// errWire reports malformed protobuf input.
var errWire = errors.New("malformed protobuf")

// seriesFunc receives one series: its metric name, tenant label values,
// whether it carries a tenant label, and its number of float samples.
type seriesFunc func(name, acct, proj []byte, labelled bool, samples int64)

// walkWriteRequest calls fn for every time series of a marshalled
// prompb.WriteRequest.
func walkWriteRequest(b []byte, fn seriesFunc) error {
	for len(b) > 0 {
		field, wt, val, rest, err := nextField(b)
		if err != nil {
			return err
		}
		if field == 1 && wt == wireLen {
			if err := walkTimeSeries(val, fn); err != nil {
				return err
			}
		}
		b = rest
	}
	return nil
}

// walkTimeSeries reads one TimeSeries message and reports it to fn.
func walkTimeSeries(b []byte, fn seriesFunc) error {
	var name, acct, proj []byte
	var labelled bool
	var samples int64
	for len(b) > 0 {
		field, wt, val, rest, err := nextField(b)
		if err != nil {
			return err
		}
		switch {
		case field == 1 && wt == wireLen:
			n, v, err := readLabel(val)
			if err != nil {
				return err
			}
			switch string(n) {
			case "__name__":
				name = v
			case "vm_account_id":
				acct, labelled = v, true
			case "vm_project_id":
				proj, labelled = v, true
			}
		case field == 2 && wt == wireLen:
			if err := checkMessage(val); err != nil {
				return err
			}
			samples++
		case wt == wireLen && field >= 3 && field <= 4:
			if err := checkMessage(val); err != nil {
				return err
			}
		}
		b = rest
	}
	fn(name, acct, proj, labelled, samples)
	return nil
}

// readLabel returns the name and value of a Label message.
func readLabel(b []byte) (name, value []byte, err error) {
	for len(b) > 0 {
		field, wt, val, rest, err := nextField(b)
		if err != nil {
			return nil, nil, err
		}
		if wt == wireLen && field == 1 {
			name = val
		} else if wt == wireLen && field == 2 {
			value = val
		}
		b = rest
	}
	return name, value, nil
}

// checkMessage verifies that b is a well-formed sequence of fields.
func checkMessage(b []byte) error {
	for len(b) > 0 {
		_, _, _, rest, err := nextField(b)
		if err != nil {
			return err
		}
		b = rest
	}
	return nil
}

// nextField splits off the first field of b: its number, wire type, the
// payload of a length-delimited field, and the rest of b.
func nextField(b []byte) (field uint64, wt int, val, rest []byte, err error) {
	key, n := readUvarint(b)
	if n <= 0 {
		return 0, 0, nil, nil, fmt.Errorf("%w: bad field key", errWire)
	}
	field, wt = key>>3, int(key&7)
	if field == 0 {
		return 0, 0, nil, nil, fmt.Errorf("%w: field number 0", errWire)
	}
	val, rest, err = skipValue(b[n:], wt)
	return field, wt, val, rest, err
}

// skipValue splits off the value of wire type wt at the start of b and
// returns the payload of a length-delimited value and the rest. A group
// is skipped up to its end marker; like gogo/protobuf, the fields inside
// a group are not checked beyond their wire format.
func skipValue(b []byte, wt int) (val, rest []byte, err error) {
	switch wt {
	case wireVarint:
		if _, n := readUvarint(b); n > 0 {
			return nil, b[n:], nil
		}
		return nil, nil, fmt.Errorf("%w: bad varint", errWire)
	case wireI64, wireI32:
		size := 4
		if wt == wireI64 {
			size = 8
		}
		if len(b) < size {
			return nil, nil, fmt.Errorf("%w: truncated fixed field", errWire)
		}
		return nil, b[size:], nil
	case wireLen:
		l, n := readUvarint(b)
		if n <= 0 || l > uint64(len(b)-n) {
			return nil, nil, fmt.Errorf("%w: length past the end", errWire)
		}
		return b[n : n+int(l)], b[n+int(l):], nil
	case wireStart:
		rest, err := skipGroup(b)
		return nil, rest, err
	}
	return nil, nil, fmt.Errorf("%w: wire type %d", errWire, wt)
}

// skipGroup skips the fields of a group (wire type 3) up to and including
// its end marker; gogo does not compare the field numbers either.
func skipGroup(b []byte) ([]byte, error) {
	for len(b) > 0 {
		key, n := readUvarint(b)
		if n <= 0 {
			return nil, fmt.Errorf("%w: bad field key in group", errWire)
		}
		if key&7 == wireEnd {
			return b[n:], nil
		}
		_, rest, err := skipValue(b[n:], int(key&7))
		if err != nil {
			return nil, err
		}
		b = rest
	}
	return nil, fmt.Errorf("%w: unterminated group", errWire)
}

// readUvarint decodes a base-128 varint of at most 10 bytes, dropping bits
// past 64 as gogo/protobuf does; n <= 0 on truncated or longer input.
func readUvarint(b []byte) (v uint64, n int) {
	for i := 0; i < len(b) && i < 10; i++ {
		c := b[i]
		v |= uint64(c&0x7f) << (7 * i)
		if c < 0x80 {
			return v, i + 1
		}
	}
	return 0, 0
}
