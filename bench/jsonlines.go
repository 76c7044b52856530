package main

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"math"
	"net/http"
	"strconv"

	"github.com/prometheus/prometheus/prompb"
)

// BodyFormat is how a pool's bodies are encoded and which headers carry them.
type BodyFormat int

const (
	// FormatRemoteWrite is Prometheus remote write 1.0: a snappy-compressed
	// prompb.WriteRequest.
	FormatRemoteWrite BodyFormat = iota
	// FormatImport is VictoriaMetrics' JSON-lines import, one
	// {"metric":{...},"values":[...],"timestamps":[...]} line per series,
	// uncompressed as vmanomaly's writer sends it.
	FormatImport
	// FormatImportGzip is FormatImport compressed with gzip.
	FormatImportGzip
)

// String names the format in summaries.
func (f BodyFormat) String() string {
	switch f {
	case FormatImport:
		return "JSON lines"
	case FormatImportGzip:
		return "JSON lines, gzip"
	}
	return "remote write 1.0"
}

// MarshalText writes the format's name in JSON results.
func (f BodyFormat) MarshalText() ([]byte, error) { return []byte(f.String()), nil }

// setHeaders sets the request headers of a body in format f: remote
// write's three, or for JSON lines the content type (and gzip encoding).
func (f BodyFormat) setHeaders(h http.Header) {
	switch f {
	case FormatRemoteWrite:
		h.Set("Content-Encoding", "snappy")
		h.Set("Content-Type", "application/x-protobuf")
		h.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	case FormatImportGzip:
		h.Set("Content-Encoding", "gzip")
		h.Set("Content-Type", "application/json")
	default:
		h.Set("Content-Type", "application/json")
	}
}

// describeBody renders the mean body size of a format for summaries.
func (f BodyFormat) describeBody(sent, raw int64) string {
	switch f {
	case FormatImport:
		return fmt.Sprintf("%.1f KB JSON lines (uncompressed)", float64(raw)/1000)
	case FormatImportGzip:
		return fmt.Sprintf("%.1f KB gzip / %.1f KB JSON lines", float64(sent)/1000, float64(raw)/1000)
	}
	return fmt.Sprintf("%.1f KB snappy / %.1f KB raw", float64(sent)/1000, float64(raw)/1000)
}

// appendJSONLines appends the series of req as JSON lines, labels in
// their order in req, values in Go's shortest round-trip form (as
// Python's json module writes floats) and timestamps in milliseconds.
func appendJSONLines(dst []byte, req *prompb.WriteRequest) []byte {
	for _, ts := range req.Timeseries {
		dst = append(dst, `{"metric":{`...)
		for i, l := range ts.Labels {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendJSONString(dst, l.Name)
			dst = append(dst, ':')
			dst = appendJSONString(dst, l.Value)
		}
		dst = append(dst, `},"values":[`...)
		for i, s := range ts.Samples {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendJSONNumber(dst, s.Value)
		}
		dst = append(dst, `],"timestamps":[`...)
		for i, s := range ts.Samples {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = strconv.AppendInt(dst, s.Timestamp, 10)
		}
		dst = append(dst, "]}\n"...)
	}
	return dst
}

// appendJSONNumber appends v as a JSON number, or as the strings
// VictoriaMetrics' import reads for the values JSON has no number for.
func appendJSONNumber(dst []byte, v float64) []byte {
	switch {
	case math.IsNaN(v):
		return append(dst, `"NaN"`...)
	case math.IsInf(v, 1):
		return append(dst, `"Inf"`...)
	case math.IsInf(v, -1):
		return append(dst, `"-Inf"`...)
	}
	return strconv.AppendFloat(dst, v, 'g', -1, 64)
}

// appendJSONString appends s as a JSON string: quotes, backslashes and
// control characters escaped, everything else (UTF-8) as it is.
func appendJSONString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c < 0x20:
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			dst = append(dst, c)
		}
	}
	return append(dst, '"')
}

// gzipBody compresses b with gzip at the default level.
func gzipBody(b []byte) ([]byte, error) {
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	if _, err := zw.Write(b); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}
