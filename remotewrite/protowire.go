package remotewrite

import "errors"

// Protobuf wire types (https://protobuf.dev/programming-guides/encoding/).
const (
	wireVarint  = 0
	wireFixed64 = 1
	wireBytes   = 2
	wireFixed32 = 5
)

var (
	errTruncated = errors.New("message truncated")
	errOverflow  = errors.New("varint overflows 64 bits")
)

// readVarint decodes a varint at b[i:], returning the value and the index after it.
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
			if shift == 63 && c > 1 {
				return 0, i, errOverflow
			}
			return v, i, nil
		}
	}
	return 0, i, errOverflow
}

// field is one decoded protobuf field: its number and wire type, and for
// length-delimited fields the payload.
type field struct {
	num   uint64
	wire  uint8
	bytes []byte // payload of a wireBytes field
}

// readField decodes the field starting at b[i:] and returns the index after it.
// It understands every wire type a proto3 message may carry (groups are
// rejected, as proto3 has none).
func readField(b []byte, i int) (field, int, error) {
	// Fast path, small enough to inline: a one-byte tag of a length-delimited
	// field with a one-byte length, which is almost every label and sample.
	if i+1 < len(b) && b[i] < 0x80 && b[i]&7 == wireBytes && b[i] >= 8 && b[i+1] < 0x80 {
		if end := i + 2 + int(b[i+1]); end <= len(b) {
			return field{num: uint64(b[i] >> 3), wire: wireBytes, bytes: b[i+2 : end]}, end, nil
		}
	}
	return readFieldSlow(b, i)
}

// readFieldSlow is readField for any encoding.
func readFieldSlow(b []byte, i int) (field, int, error) {
	tag, i, err := readVarint(b, i)
	if err != nil {
		return field{}, i, err
	}
	f := field{num: tag >> 3, wire: uint8(tag & 7)}
	if f.num == 0 || f.num > 1<<29-1 {
		return f, i, errors.New("invalid field number")
	}
	switch f.wire {
	case wireVarint:
		_, i, err = readVarint(b, i)
	case wireFixed64:
		if len(b)-i < 8 {
			return f, i, errTruncated
		}
		i += 8
	case wireFixed32:
		if len(b)-i < 4 {
			return f, i, errTruncated
		}
		i += 4
	case wireBytes:
		var n uint64
		n, i, err = readVarint(b, i)
		if err == nil && n > uint64(len(b)-i) {
			err = errTruncated
		}
		if err == nil {
			f.bytes = b[i : i+int(n)]
			i += int(n)
		}
	default:
		err = errors.New("unsupported wire type (groups are not valid in remote write)")
	}
	return f, i, err
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
