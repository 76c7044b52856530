package remotewrite

import (
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
)

// AppendDebugText appends req in the debug writer's text form, one line per
// item, in the order of the request:
//
//   - a sample, in Prometheus text form:
//     name{labels} value timestamp_ms
//   - an exemplar of the series:
//     name{labels} # exemplar {exemplar_labels} value timestamp_ms
//   - a native histogram, with the fields of prompb.Histogram that are set
//     (count, sum and schema always; counts of a float histogram printed as
//     floats; spans as offset:length):
//     name{labels} histogram{count=5 sum=9.5 schema=0 zero_threshold=0.001 zero_count=1
//     positive_spans=[0:2] positive_deltas=[2 0]} timestamp_ms
//   - metadata, after the series, as in the text exposition format:
//     # TYPE family counter, # HELP family text, # UNIT family unit
//
// Values are Go's shortest float form, NaN, +Inf or -Inf (a staleness
// marker is a NaN). Labels are in the order received, __name__ first. A
// part that cannot be parsed is printed as <malformed ...> instead of
// stopping: the debug output must show whatever is there.
func AppendDebugText(dst []byte, req *Request) []byte {
	var scratch []Label
	for i := range req.Series {
		s := &req.Series[i]
		labels := s.Labels
		if s.Known != nil {
			scratch = AppendLabels(scratch[:0], s.LabelFields())
			labels = scratch
		}
		dst = appendSeriesText(dst, FormatLabels(labels), s.Body)
	}
	for _, m := range req.Metadata {
		dst = appendMetadataText(dst, m)
	}
	return dst
}

// appendSeriesText appends the lines of one encoded TimeSeries.
func appendSeriesText(dst []byte, series string, body []byte) []byte {
	err := eachField(body, func(f pbField) error {
		var err error
		switch {
		case f.num == fieldSeriesSamples && f.wire == wireBytes:
			dst, err = appendSampleText(dst, series, f.bytes)
		case f.num == fieldSeriesExemplars && f.wire == wireBytes:
			dst, err = appendExemplarText(dst, series, f.bytes)
		case f.num == fieldSeriesHistograms && f.wire == wireBytes:
			dst, err = appendHistogramText(dst, series, f.bytes)
		}
		return err
	})
	if err != nil {
		dst = fmt.Appendf(dst, "%s <malformed series: %v>\n", series, err)
	}
	return dst
}

func appendSampleText(dst []byte, series string, b []byte) ([]byte, error) {
	var value float64
	var ts int64
	err := eachField(b, func(f pbField) error {
		switch {
		case f.num == 1 && f.wire == wireFixed64:
			value = math.Float64frombits(f.u)
		case f.num == 2 && f.wire == wireVarint:
			ts = int64(f.u)
		}
		return nil
	})
	if err != nil {
		return dst, fmt.Errorf("sample: %w", err)
	}
	dst = append(dst, series...)
	return appendValueTimestamp(dst, value, ts), nil
}

func appendExemplarText(dst []byte, series string, b []byte) ([]byte, error) {
	var labels []Label
	var value float64
	var ts int64
	err := eachField(b, func(f pbField) error {
		switch {
		case f.num == 1 && f.wire == wireBytes:
			l, err := decodeLabel(f.bytes)
			labels = append(labels, l)
			return err
		case f.num == 2 && f.wire == wireFixed64:
			value = math.Float64frombits(f.u)
		case f.num == 3 && f.wire == wireVarint:
			ts = int64(f.u)
		}
		return nil
	})
	if err != nil {
		return dst, fmt.Errorf("exemplar: %w", err)
	}
	dst = append(dst, series...)
	dst = append(dst, " # exemplar "...)
	dst = append(dst, FormatLabels(labels)...)
	return appendValueTimestamp(dst, value, ts), nil
}

func appendValueTimestamp(dst []byte, value float64, ts int64) []byte {
	dst = append(dst, ' ')
	dst = appendFloat(dst, value)
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, ts, 10)
	return append(dst, '\n')
}

// appendFloat writes v as the text format does: shortest form, NaN, +Inf, -Inf.
func appendFloat(dst []byte, v float64) []byte {
	return strconv.AppendFloat(dst, v, 'g', -1, 64)
}

// metricTypes are prompb.MetricMetadata_MetricType's values, as the text
// exposition format writes them.
var metricTypes = []string{"unknown", "counter", "gauge", "histogram", "gaugehistogram", "summary", "info", "stateset"}

// appendMetadataText appends one MetricMetadata as # TYPE, # HELP and # UNIT
// lines (each only when set).
func appendMetadataText(dst []byte, b []byte) []byte {
	var typ uint64
	var family, help, unit []byte
	err := eachField(b, func(f pbField) error {
		switch {
		case f.num == 1 && f.wire == wireVarint:
			typ = f.u
		case f.num == 2 && f.wire == wireBytes:
			family = f.bytes
		case f.num == 4 && f.wire == wireBytes:
			help = f.bytes
		case f.num == 5 && f.wire == wireBytes:
			unit = f.bytes
		}
		return nil
	})
	if err != nil {
		return fmt.Appendf(dst, "# <malformed metadata: %v>\n", err)
	}
	if typ != 0 {
		name := strconv.FormatUint(typ, 10)
		if typ < uint64(len(metricTypes)) {
			name = metricTypes[typ]
		}
		dst = fmt.Appendf(dst, "# TYPE %s %s\n", family, name)
	}
	if len(help) > 0 {
		dst = fmt.Appendf(dst, "# HELP %s %s\n", family, strconv.Quote(string(help)))
	}
	if len(unit) > 0 {
		dst = fmt.Appendf(dst, "# UNIT %s %s\n", family, unit)
	}
	return dst
}

// pbField is one protobuf field with its value: u for varint and fixed
// wire types, bytes for length-delimited ones.
type pbField struct {
	num   uint32
	wire  uint8
	u     uint64
	bytes []byte
}

// eachField calls fn for every field of the message b, in order; groups are
// skipped. It stops at the first error of fn or of the encoding.
func eachField(b []byte, fn func(pbField) error) error {
	for i := 0; i < len(b); {
		tag, next, err := readVarint(b, i)
		if err != nil {
			return fmt.Errorf("at byte %d: %w", i, err)
		}
		f := pbField{num: uint32(tag >> 3), wire: uint8(tag & 7)}
		switch f.wire {
		case wireVarint:
			f.u, next, err = readVarint(b, next)
		case wireFixed64:
			if next, err = skipFixed(b, next, 8); err == nil {
				f.u = binary.LittleEndian.Uint64(b[next-8:])
			}
		case wireFixed32:
			if next, err = skipFixed(b, next, 4); err == nil {
				f.u = uint64(binary.LittleEndian.Uint32(b[next-4:]))
			}
		case wireBytes:
			f.bytes, next, err = readBytes(b, next)
		default:
			next, err = skipValue(b, next, f.wire)
		}
		if err != nil {
			return fmt.Errorf("at byte %d: %w", i, err)
		}
		if f.wire != wireStartGroup {
			if err := fn(f); err != nil {
				return err
			}
		}
		i = next
	}
	return nil
}
