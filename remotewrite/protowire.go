package remotewrite

import "errors"

// Protobuf wire types (https://protobuf.dev/programming-guides/encoding/).
const (
	wireVarint     = 0
	wireFixed64    = 1
	wireBytes      = 2
	wireStartGroup = 3
	wireEndGroup   = 4
	wireFixed32    = 5
)

// The reading functions below accept and reject exactly what the
// gogo-generated Unmarshal methods of prompb do (v0.316.0, types.pb.go and
// remote.pb.go), quirks included: prompb is the reference decoder of remote
// write 1.0 (Prometheus' own receiver uses it), so a producer sees the same
// accept/reject decision through the proxy as without it.
// FuzzDecodeDifferential holds them to that.
var (
	errTruncated    = errors.New("message truncated")
	errOverflow     = errors.New("varint longer than 10 bytes")
	errFieldNumber  = errors.New("invalid field number")
	errEndGroup     = errors.New("end-group tag without a group")
	errWireType     = errors.New("invalid wire type 6 or 7")
	errNegativeSize = errors.New("length overflows int64")
)

// readVarint decodes a varint at b[i:], returning the value and the index
// after it. Like gogo it reads at most 10 bytes and silently drops the bits
// of the 10th byte that do not fit in 64 bits (the official decoders reject
// them, but a proxy that did so would refuse requests Prometheus accepts).
func readVarint(b []byte, i int) (uint64, int, error) {
	var v uint64
	for shift := uint(0); shift < 64; shift += 7 {
		if i >= len(b) {
			return 0, i, errTruncated
		}
		c := b[i]
		i++
		v |= uint64(c&0x7f) << shift
		if c < 0x80 {
			return v, i, nil
		}
	}
	return 0, i, errOverflow
}

// field is one decoded protobuf field: its number and wire type, and for
// length-delimited fields the payload.
type field struct {
	// num is the field number as gogo computes it, int32(tag>>3): numbers
	// past 2^31 wrap around, so a 10-byte tag can name field 1. Always > 0.
	num   uint32
	wire  uint8
	bytes []byte // payload of a wireBytes field
}

// readField decodes the field starting at b[i:] and returns the index after
// it. Groups (wire types 3/4, gone from proto3 but still skipped by gogo as
// unknown fields) are read as one field, nested groups included; the caller
// rejects them where the field number is known.
func readField(b []byte, i int) (field, int, error) {
	if end := shortField(b, i); end > 0 {
		return field{num: uint32(b[i] >> 3), wire: wireBytes, bytes: b[i+2 : end]}, end, nil
	}
	return readFieldSlow(b, i)
}

// shortField returns the end of the field at b[i:] when it is
// length-delimited with a one-byte tag (field 1 to 15) and a one-byte length,
// and 0 otherwise. Unlike readField it is inlined, which matters in the loops
// over labels and samples.
func shortField(b []byte, i int) int {
	if i+1 < len(b) {
		if t, n := b[i], b[i+1]; t&0x87 == wireBytes && t >= 8 && n < 0x80 && i+2+int(n) <= len(b) {
			return i + 2 + int(n)
		}
	}
	return 0
}

// readFieldSlow is readField for any encoding.
func readFieldSlow(b []byte, i int) (field, int, error) {
	tag, i, err := readVarint(b, i)
	if err != nil {
		return field{}, i, err
	}
	f := field{wire: uint8(tag & 7)}
	if f.wire == wireEndGroup {
		return f, i, errEndGroup
	}
	num := int32(tag >> 3) // gogo's truncation, see field.num
	if num <= 0 {
		return f, i, errFieldNumber
	}
	f.num = uint32(num)
	if f.wire == wireBytes {
		f.bytes, i, err = readBytes(b, i)
		return f, i, err
	}
	i, err = skipValue(b, i, f.wire)
	return f, i, err
}

// readBytes reads a length-prefixed payload at b[i:].
func readBytes(b []byte, i int) ([]byte, int, error) {
	n, i, err := readVarint(b, i)
	if err != nil {
		return nil, i, err
	}
	if n > uint64(len(b)-i) {
		// gogo distinguishes a length that is negative as int64 from one that
		// runs past the end; both are rejections.
		if int64(n) < 0 {
			return nil, i, errNegativeSize
		}
		return nil, i, errTruncated
	}
	return b[i : i+int(n)], i + int(n), nil
}

// skipValue skips the value of a field of the given wire type (not 2 or 4)
// that starts at b[i:].
func skipValue(b []byte, i int, wire uint8) (int, error) {
	var err error
	switch wire {
	case wireVarint:
		_, i, err = readVarint(b, i)
	case wireFixed64:
		i, err = skipFixed(b, i, 8)
	case wireFixed32:
		i, err = skipFixed(b, i, 4)
	case wireStartGroup:
		i, err = skipGroup(b, i)
	default:
		err = errWireType
	}
	return i, err
}

// skipFixed skips n bytes at b[i:].
func skipFixed(b []byte, i, n int) (int, error) {
	if len(b)-i < n {
		return i, errTruncated
	}
	return i + n, nil
}

// skipGroup skips the body of a group whose start tag ends at b[i:], and its
// end tag, the way gogo's skipTypes does: inner groups nest, an end tag need
// not repeat the start tag's field number, and inner field numbers (even 0)
// are not checked.
func skipGroup(b []byte, i int) (int, error) {
	for depth := 1; depth > 0; {
		tag, next, err := readVarint(b, i)
		if err != nil {
			return next, err
		}
		i = next
		switch wire := uint8(tag & 7); wire {
		case wireStartGroup:
			depth++
		case wireEndGroup:
			depth--
		case wireBytes:
			_, i, err = readBytes(b, i)
		default:
			i, err = skipValue(b, i, wire)
		}
		if err != nil {
			return i, err
		}
	}
	return i, nil
}

// varintLen is the encoded size of v.
func varintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

// appendVarint appends the varint encoding of v.
func appendVarint(dst []byte, v uint64) []byte {
	for v >= 0x80 {
		dst = append(dst, byte(v)|0x80)
		v >>= 7
	}
	return append(dst, byte(v))
}

// appendBytesField appends a length-delimited field with a one-byte tag.
func appendBytesField(dst []byte, tag byte, payload []byte) []byte {
	dst = append(dst, tag)
	dst = appendVarint(dst, uint64(len(payload)))
	return append(dst, payload...)
}

// bytesFieldLen is the encoded size of a length-delimited field with a one-byte tag.
func bytesFieldLen(payloadLen int) int {
	return 1 + varintLen(uint64(payloadLen)) + payloadLen
}
