package remotewrite

import (
	"math"
	"strconv"
	"unicode/utf8"
)

// staleNaN is the Prometheus staleness marker, a NaN with its own bit
// pattern (model/value.StaleNaN).
const staleNaN uint64 = 0x7ff0000000000002

// importDrops counts what VictoriaMetrics JSON lines cannot carry.
type importDrops struct {
	histograms, exemplars, staleMarkers, metadata int
}

func (d importDrops) any() bool {
	return d.histograms+d.exemplars+d.staleMarkers+d.metadata > 0
}

// appendImportJSON appends one VictoriaMetrics JSON line per series of req
// that has float samples, in the format of /api/v1/export and /api/v1/import:
//
//	{"metric":{"__name__":"up","job":"node"},"values":[1,0.5],"timestamps":[1700000000000,1700000015000]}
//
// It returns the lines and the number of series and samples written; d
// counts what was left out. It does not allocate beyond growing dst.
func appendImportJSON(dst []byte, req *Request, d *importDrops) (out []byte, series, samples int) {
	d.metadata += len(req.Metadata)
	for i := range req.Series {
		s := &req.Series[i]
		d.histograms += s.Histograms
		d.exemplars += s.Exemplars
		if s.Samples == 0 {
			continue
		}
		n, stale := countWritable(s.Body)
		d.staleMarkers += stale
		if n == 0 {
			continue
		}
		dst = appendSeriesJSON(dst, s)
		series++
		samples += n
	}
	return dst, series, samples
}

// appendSeriesJSON appends the line of one series with at least one
// writable sample.
func appendSeriesJSON(dst []byte, s *Series) []byte {
	dst = append(dst, `{"metric":{`...)
	first := true
	for _, l := range s.Labels { // __name__ first, as VictoriaMetrics' export writes it
		if string(l.Name) == MetricNameLabel {
			dst = appendJSONLabel(dst, l, first)
			first = false
		}
	}
	for _, l := range s.Labels {
		if string(l.Name) != MetricNameLabel {
			dst = appendJSONLabel(dst, l, first)
			first = false
		}
	}
	dst = append(dst, `},"values":[`...)
	dst = appendSamplesJSON(dst, s.Body, false)
	dst = append(dst, `],"timestamps":[`...)
	dst = appendSamplesJSON(dst, s.Body, true)
	return append(dst, "]}\n"...)
}

func appendJSONLabel(dst []byte, l Label, first bool) []byte {
	if !first {
		dst = append(dst, ',')
	}
	dst = appendJSONString(dst, l.Name)
	dst = append(dst, ':')
	return appendJSONString(dst, l.Value)
}

// countWritable counts the samples of an encoded TimeSeries that go into
// JSON and the staleness markers that cannot.
func countWritable(body []byte) (n, stale int) {
	forEachSample(body, func(v float64, _ int64) {
		if math.Float64bits(v) == staleNaN {
			stale++
		} else {
			n++
		}
	})
	return n, stale
}

// appendSamplesJSON appends the comma-separated values (or timestamps) of
// the writable samples of an encoded TimeSeries.
func appendSamplesJSON(dst []byte, body []byte, timestamps bool) []byte {
	first := true
	forEachSample(body, func(v float64, ts int64) {
		if math.Float64bits(v) == staleNaN {
			return
		}
		if !first {
			dst = append(dst, ',')
		}
		first = false
		if timestamps {
			dst = strconv.AppendInt(dst, ts, 10)
		} else {
			dst = appendJSONFloat(dst, v)
		}
	})
	return dst
}

// forEachSample calls fn for every Sample (field 2) of an encoded
// TimeSeries, in order. The body was validated by DecodeWriteRequest, so
// malformed parts cannot occur; they would be skipped. fn does not escape,
// so the closures of the callers are not allocated.
func forEachSample(body []byte, fn func(v float64, ts int64)) {
	for i := 0; i < len(body); {
		f, next, err := readField(body, i)
		if err != nil {
			return
		}
		if f.num == fieldSeriesSamples && f.wire == wireBytes {
			fn(decodeSample(f.bytes))
		}
		i = next
	}
}

// decodeSample reads a prompb.Sample: value (field 1, double) and timestamp
// (field 2, int64); missing fields are 0 and the last occurrence wins, as in
// protobuf.
func decodeSample(b []byte) (v float64, ts int64) {
	for i := 0; i < len(b); {
		switch b[i] {
		case 1<<3 | wireFixed64:
			if i+9 > len(b) {
				return v, ts
			}
			v = math.Float64frombits(uint64(b[i+1]) | uint64(b[i+2])<<8 | uint64(b[i+3])<<16 | uint64(b[i+4])<<24 |
				uint64(b[i+5])<<32 | uint64(b[i+6])<<40 | uint64(b[i+7])<<48 | uint64(b[i+8])<<56)
			i += 9
		case 2<<3 | wireVarint:
			u, next, err := readVarint(b, i+1)
			if err != nil {
				return v, ts
			}
			ts, i = int64(u), next
		default:
			_, next, err := readFieldSlow(b, i)
			if err != nil {
				return v, ts
			}
			i = next
		}
	}
	return v, ts
}

// appendJSONFloat writes v as VictoriaMetrics' /api/v1/import reads it:
// finite numbers as encoding/json writes them (shortest form that reads
// back to the same float64), and the values JSON has no number for as
// VictoriaMetrics' own export writes them, bare NaN, +Inf and -Inf (quoted
// "NaN" is rejected by VictoriaMetrics 1.79, bare accepted by every version).
func appendJSONFloat(dst []byte, v float64) []byte {
	switch {
	case math.IsNaN(v):
		return append(dst, "NaN"...)
	case math.IsInf(v, 1):
		return append(dst, "+Inf"...)
	case math.IsInf(v, -1):
		return append(dst, "-Inf"...)
	}
	format := byte('f')
	if abs := math.Abs(v); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	dst = strconv.AppendFloat(dst, v, format, -1, 64)
	if format == 'e' { // 1e-07 -> 1e-7, as encoding/json does
		if n := len(dst); n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst
}

const hexDigits = "0123456789abcdef"

// appendJSONString writes s as a JSON string: quotes, backslashes and
// control characters escaped, other UTF-8 as is, and invalid UTF-8 bytes as
// U+FFFD (what encoding/json does; a JSON text must be UTF-8).
func appendJSONString(dst, s []byte) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRune(s[i:])
			if r != utf8.RuneError || size != 1 {
				i += size
				continue
			}
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		i++
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
