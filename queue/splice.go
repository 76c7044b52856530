package queue

import (
	"encoding/binary"
	"iter"
	"math"
)

// Grouping consecutive blocks into one upstream request.
//
// A queued block is a snappy block (the format remote write requires) of a
// serialized RW1 WriteRequest. Two facts make a group cheap to build:
//
//   - Protobuf: the concatenation of two serialized WriteRequests is the
//     serialized WriteRequest holding the time series (and metadata) of both,
//     since repeated fields concatenate.
//   - Snappy: a block is [uvarint decoded length][elements], and every copy
//     element refers back by a distance from the current output position, never
//     to an absolute place. The elements of block B, placed after those of block
//     A, therefore decode to B's bytes after A's: one header holding the sum of
//     the decoded lengths, followed by the element streams of the blocks in
//     order, is a valid snappy block of the concatenated requests.
//
// So a group costs one memory copy of the compressed bytes, not a snappy
// decode and re-encode (about 100 ns per sample on the machines measured).
// A block whose header is not a valid snappy header is never spliced: it is
// sent alone, as it was acknowledged, and the upstream decides.

// maxSnappyLen is the largest decoded length a snappy header may announce.
const maxSnappyLen = math.MaxUint32

// snappyHeader returns the decoded length a snappy block announces and the
// size of its header; ok is false when body does not start with a valid one.
func snappyHeader(body []byte) (decoded uint64, headerLen int, ok bool) {
	n, w := binary.Uvarint(body)
	if w <= 0 || n > maxSnappyLen {
		return 0, 0, false
	}
	return n, w, true
}

// spliceSnappy appends to dst one snappy block decoding to the concatenation
// of what bodies decode to. It returns false (and dst unchanged) when a body
// has no valid snappy header or the total would exceed what a header can say.
func spliceSnappy(dst []byte, bodies iter.Seq[[]byte]) ([]byte, bool) {
	var total uint64
	size, ok := 0, true
	for b := range bodies {
		n, w, valid := snappyHeader(b)
		if !valid {
			ok = false
			break
		}
		total += n
		size += len(b) - w
	}
	if !ok || total > maxSnappyLen {
		return dst, false
	}
	dst = grow(dst, binary.MaxVarintLen64+size)
	dst = binary.AppendUvarint(dst, total)
	for b := range bodies {
		_, w, _ := snappyHeader(b)
		dst = append(dst, b[w:]...)
	}
	return dst, true
}

// grow makes sure dst has room for n more bytes, so the appends that follow
// copy once.
func grow(dst []byte, n int) []byte {
	if cap(dst)-len(dst) >= n {
		return dst
	}
	bigger := make([]byte, len(dst), len(dst)+n)
	copy(bigger, dst)
	return bigger
}
