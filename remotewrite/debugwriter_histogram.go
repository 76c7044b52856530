package remotewrite

import (
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
)

// debugHistogram is a prompb.Histogram read for printing. Counts keep the
// integer or float form they were sent in.
type debugHistogram struct {
	count, zeroCount   []byte // rendered, "" when absent
	sum, zeroThreshold float64
	schema             int32
	resetHint          uint64
	timestamp          int64
	spans              [2][]string  // negative, positive: "offset:length"
	deltas             [2][]int64   // integer histograms
	counts             [2][]float64 // float histograms
	customValues       []float64
}

// resetHints are prompb.Histogram_ResetHint's names.
var resetHints = []string{"unknown", "yes", "no", "gauge"}

// appendHistogramText appends one native histogram line; see AppendDebugText.
func appendHistogramText(dst []byte, series string, b []byte) ([]byte, error) {
	var h debugHistogram
	if err := eachField(b, h.field); err != nil {
		return dst, fmt.Errorf("histogram: %w", err)
	}
	dst = append(dst, series...)
	dst = append(dst, " histogram{count="...)
	dst = append(dst, orZero(h.count)...)
	dst = append(dst, " sum="...)
	dst = appendFloat(dst, h.sum)
	dst = append(dst, " schema="...)
	dst = strconv.AppendInt(dst, int64(h.schema), 10)
	if h.zeroThreshold != 0 {
		dst = append(dst, " zero_threshold="...)
		dst = appendFloat(dst, h.zeroThreshold)
	}
	if len(h.zeroCount) > 0 {
		dst = append(dst, " zero_count="...)
		dst = append(dst, h.zeroCount...)
	}
	for side, name := range []string{"negative", "positive"} {
		dst = appendList(dst, name+"_spans", h.spans[side], func(d []byte, s string) []byte { return append(d, s...) })
		dst = appendList(dst, name+"_deltas", h.deltas[side], func(d []byte, v int64) []byte { return strconv.AppendInt(d, v, 10) })
		dst = appendList(dst, name+"_counts", h.counts[side], appendFloat)
	}
	if h.resetHint != 0 {
		dst = append(dst, " reset_hint="...)
		if h.resetHint < uint64(len(resetHints)) {
			dst = append(dst, resetHints[h.resetHint]...)
		} else {
			dst = strconv.AppendUint(dst, h.resetHint, 10)
		}
	}
	dst = appendList(dst, "custom_values", h.customValues, appendFloat)
	dst = append(dst, "} "...)
	dst = strconv.AppendInt(dst, h.timestamp, 10)
	return append(dst, '\n'), nil
}

func orZero(b []byte) []byte {
	if len(b) == 0 {
		return []byte("0")
	}
	return b
}

// appendList appends ` name=[a b c]`, or nothing for an empty list.
func appendList[T any](dst []byte, name string, list []T, appendOne func([]byte, T) []byte) []byte {
	if len(list) == 0 {
		return dst
	}
	dst = append(dst, ' ')
	dst = append(dst, name...)
	dst = append(dst, "=["...)
	for i, v := range list {
		if i > 0 {
			dst = append(dst, ' ')
		}
		dst = appendOne(dst, v)
	}
	return append(dst, ']')
}

// field reads one field of a prompb.Histogram (types.proto field numbers).
func (h *debugHistogram) field(f pbField) error {
	side := 0 // negative
	if f.num >= 11 && f.num <= 13 {
		side = 1 // positive
	}
	switch {
	case f.num == 1 && f.wire == wireVarint:
		h.count = strconv.AppendUint(nil, f.u, 10)
	case f.num == 2 && f.wire == wireFixed64:
		h.count = appendFloat(nil, math.Float64frombits(f.u))
	case f.num == 3 && f.wire == wireFixed64:
		h.sum = math.Float64frombits(f.u)
	case f.num == 4 && f.wire == wireVarint:
		h.schema = int32(unzigzag(f.u))
	case f.num == 5 && f.wire == wireFixed64:
		h.zeroThreshold = math.Float64frombits(f.u)
	case f.num == 6 && f.wire == wireVarint:
		h.zeroCount = strconv.AppendUint(nil, f.u, 10)
	case f.num == 7 && f.wire == wireFixed64:
		h.zeroCount = appendFloat(nil, math.Float64frombits(f.u))
	case (f.num == 8 || f.num == 11) && f.wire == wireBytes:
		span, err := spanText(f.bytes)
		h.spans[side] = append(h.spans[side], span)
		return err
	case f.num == 9 || f.num == 12:
		return repeated(f, false, func(v uint64) { h.deltas[side] = append(h.deltas[side], unzigzag(v)) })
	case f.num == 10 || f.num == 13:
		return repeated(f, true, func(v uint64) { h.counts[side] = append(h.counts[side], math.Float64frombits(v)) })
	case f.num == 14 && f.wire == wireVarint:
		h.resetHint = f.u
	case f.num == 15 && f.wire == wireVarint:
		h.timestamp = int64(f.u)
	case f.num == 16:
		return repeated(f, true, func(v uint64) { h.customValues = append(h.customValues, math.Float64frombits(v)) })
	}
	return nil
}

// spanText renders a BucketSpan as offset:length.
func spanText(b []byte) (string, error) {
	var offset int64
	var length uint64
	err := eachField(b, func(f pbField) error {
		switch {
		case f.num == 1 && f.wire == wireVarint:
			offset = int64(int32(unzigzag(f.u)))
		case f.num == 2 && f.wire == wireVarint:
			length = uint64(uint32(f.u))
		}
		return nil
	})
	return fmt.Sprintf("%d:%d", offset, length), err
}

// repeated reads a repeated varint or double field, packed or not, and
// calls add for each element.
func repeated(f pbField, fixed64 bool, add func(uint64)) error {
	switch {
	case f.wire == wireBytes:
		for i := 0; i < len(f.bytes); {
			var v uint64
			var err error
			if fixed64 {
				if i, err = skipFixed(f.bytes, i, 8); err == nil {
					v = binary.LittleEndian.Uint64(f.bytes[i-8:])
				}
			} else {
				v, i, err = readVarint(f.bytes, i)
			}
			if err != nil {
				return fmt.Errorf("packed field %d: %w", f.num, err)
			}
			add(v)
		}
	case fixed64 && f.wire == wireFixed64, !fixed64 && f.wire == wireVarint:
		add(f.u)
	}
	return nil
}

// unzigzag decodes a sint32/sint64 varint.
func unzigzag(v uint64) int64 { return int64(v>>1) ^ -int64(v&1) }
