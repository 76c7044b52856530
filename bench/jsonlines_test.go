package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"
)

// importLine is one line of VictoriaMetrics' JSON-lines import.
type importLine struct {
	Metric     map[string]string `json:"metric"`
	Values     []any             `json:"values"`
	Timestamps []int64           `json:"timestamps"`
}

// decodeLines reads JSON lines with encoding/json, failing on unknown keys
// and on anything but one object per line.
func decodeLines(t *testing.T, body []byte) []importLine {
	t.Helper()
	var out []importLine
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.DisallowUnknownFields()
		dec.UseNumber()
		var l importLine
		if err := dec.Decode(&l); err != nil {
			t.Fatalf("line %d %q: %v", len(out)+1, sc.Text(), err)
		}
		if dec.More() {
			t.Fatalf("line %d: more than one value", len(out)+1)
		}
		out = append(out, l)
	}
	if !bytes.HasSuffix(body, []byte("\n")) {
		t.Fatal("the last line has no newline")
	}
	return out
}

// lineValue reads an item of "values": a number, or one of the strings
// VictoriaMetrics takes for NaN and the infinities.
func lineValue(t *testing.T, v any) float64 {
	t.Helper()
	switch x := v.(type) {
	case json.Number:
		f, err := x.Float64()
		if err != nil {
			t.Fatalf("value %v: %v", x, err)
		}
		return f
	case string:
		switch x {
		case "NaN":
			return math.NaN()
		case "Inf":
			return math.Inf(1)
		case "-Inf":
			return math.Inf(-1)
		}
	}
	t.Fatalf("value %#v is neither a number nor NaN/Inf/-Inf", v)
	return 0
}

// sameSeries checks that the JSON lines carry exactly the series of req:
// one line per series in order, the same labels, and bit for bit the same
// values with the same timestamps.
func sameSeries(t *testing.T, lines []importLine, req *prompb.WriteRequest) {
	t.Helper()
	if len(lines) != len(req.Timeseries) {
		t.Fatalf("%d lines, want one per series: %d", len(lines), len(req.Timeseries))
	}
	for i, ts := range req.Timeseries {
		l := lines[i]
		want := map[string]string{}
		for _, lb := range ts.Labels {
			want[lb.Name] = lb.Value
		}
		if len(l.Metric) != len(want) {
			t.Fatalf("line %d: labels %v, want %v", i+1, l.Metric, want)
		}
		for k, v := range want {
			if l.Metric[k] != v {
				t.Fatalf("line %d: labels %v, want %v", i+1, l.Metric, want)
			}
		}
		if len(l.Values) != len(ts.Samples) || len(l.Timestamps) != len(ts.Samples) {
			t.Fatalf("line %d: %d values, %d timestamps, want %d of each", i+1, len(l.Values), len(l.Timestamps), len(ts.Samples))
		}
		for j, s := range ts.Samples {
			v := lineValue(t, l.Values[j])
			if math.Float64bits(v) != math.Float64bits(s.Value) && !(math.IsNaN(v) && math.IsNaN(s.Value)) || l.Timestamps[j] != s.Timestamp {
				t.Fatalf("line %d sample %d: %v@%d, want %v@%d", i+1, j, v, l.Timestamps[j], s.Value, s.Timestamp)
			}
		}
	}
}

// Body i of an import pool is body i of the remote-write pool built with
// the same arguments, as JSON lines: same series, same samples.
func TestImportPoolMatchesRemoteWrite(t *testing.T) {
	w := Workload{Preset: "anomaly", Series: 60, Samples: 3, Labels: 9, Tenants: 4, QueryKeys: 3}
	end := time.Now()
	rw, err := BuildPool(w, 5, end)
	if err != nil {
		t.Fatal(err)
	}
	imp, err := BuildPoolFormat(w, 5, end, FormatImport)
	if err != nil {
		t.Fatal(err)
	}
	if imp.Format != FormatImport || imp.SamplesPerBody != rw.SamplesPerBody || len(imp.Bodies) != 5 {
		t.Fatalf("import pool: format %v, %d samples per body, %d bodies", imp.Format, imp.SamplesPerBody, len(imp.Bodies))
	}
	var raw int64
	for i, body := range imp.Bodies {
		sameSeries(t, decodeLines(t, body), decodeBody(t, rw.Bodies[i]))
		raw += int64(len(body))
	}
	if imp.RawBytes != raw || imp.CompressedBytes != raw {
		t.Fatalf("sizes raw %d, sent %d; want both %d (uncompressed)", imp.RawBytes, imp.CompressedBytes, raw)
	}
}

// The gzip pool holds the same JSON lines, compressed.
func TestImportGzipPool(t *testing.T) {
	end := time.Now()
	plain, err := BuildPoolFormat(smallWorkload, 3, end, FormatImport)
	if err != nil {
		t.Fatal(err)
	}
	gz, err := BuildPoolFormat(smallWorkload, 3, end, FormatImportGzip)
	if err != nil {
		t.Fatal(err)
	}
	for i, body := range gz.Bodies {
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(zr)
		if err != nil || !bytes.Equal(got, plain.Bodies[i]) {
			t.Fatalf("body %d: gunzip gives %d bytes (%v), want the %d bytes of the uncompressed pool", i, len(got), err, len(plain.Bodies[i]))
		}
	}
	if gz.RawBytes != plain.RawBytes || gz.CompressedBytes >= gz.RawBytes/3 {
		t.Fatalf("gzip sizes raw %d, sent %d; uncompressed %d", gz.RawBytes, gz.CompressedBytes, plain.RawBytes)
	}
}

// Label values that need escaping and values JSON has no number for
// survive the round trip through encoding/json.
func TestJSONLinesEscapesAndSpecialValues(t *testing.T) {
	req := &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
		Labels: []prompb.Label{{Name: "__name__", Value: "m"}, {Name: "v", Value: "q\"b\\s/\n\t\x01é\U0001F600"}},
		Samples: []prompb.Sample{{Value: math.NaN(), Timestamp: 1}, {Value: math.Inf(1), Timestamp: 2}, {Value: math.Inf(-1), Timestamp: 3},
			{Value: 1e-7, Timestamp: 4}, {Value: -0.5, Timestamp: 5}, {Value: 1.7976931348623157e308, Timestamp: 6}, {Value: 0, Timestamp: 0}},
	}}}
	body := appendJSONLines(nil, req)
	if strings.Count(string(body), "\n") != 1 {
		t.Fatalf("body %q: want one line", body)
	}
	sameSeries(t, decodeLines(t, body), req)
}

// A load of JSON lines goes out with the import's headers, not remote
// write's, and every body arrives whole.
func TestLoadSendsJSONLines(t *testing.T) {
	for _, f := range []BodyFormat{FormatImport, FormatImportGzip} {
		var mu sync.Mutex
		var problems []string
		var bodies [][]byte
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			defer mu.Unlock()
			wantEnc := map[BodyFormat]string{FormatImport: "", FormatImportGzip: "gzip"}[f]
			if r.URL.Path != "/api/v1/import" || r.Header.Get("Content-Type") != "application/json" ||
				r.Header.Get("Content-Encoding") != wantEnc || r.Header.Get("X-Prometheus-Remote-Write-Version") != "" {
				problems = append(problems, r.URL.Path+" "+strings.Join([]string{r.Header.Get("Content-Type"), r.Header.Get("Content-Encoding"),
					r.Header.Get("X-Prometheus-Remote-Write-Version")}, " "))
			}
			var body io.Reader = r.Body
			if wantEnc == "gzip" {
				zr, err := gzip.NewReader(r.Body)
				if err != nil {
					problems = append(problems, err.Error())
					return
				}
				body = zr
			}
			b, _ := io.ReadAll(body)
			bodies = append(bodies, b)
			w.WriteHeader(http.StatusNoContent)
		}))
		p, err := BuildPoolFormat(smallWorkload, 4, time.Now(), f)
		if err != nil {
			t.Fatal(err)
		}
		sum := RunLoad(context.Background(), LoadConfig{URL: srv.URL + "/api/v1/import", Concurrency: 2, Requests: 6, Timeout: 10 * time.Second}, p)
		srv.Close()
		if len(problems) > 0 {
			t.Fatalf("%v: wrong requests: %v", f, problems)
		}
		samples := 0
		for _, b := range bodies {
			for _, l := range decodeLines(t, b) {
				samples += len(l.Values)
			}
		}
		if sum.AckedSamples != 6*200 || int64(samples) != sum.AckedSamples {
			t.Fatalf("%v: acknowledged %d samples, server read %d, want %d", f, sum.AckedSamples, samples, 6*200)
		}
	}
}

// -format and -import-gzip of bench load.
func TestParseBodyFormat(t *testing.T) {
	for _, tc := range []struct {
		format string
		gzip   bool
		want   BodyFormat
		ok     bool
	}{
		{"rw", false, FormatRemoteWrite, true}, {"import", false, FormatImport, true}, {"import", true, FormatImportGzip, true},
		{"rw", true, 0, false}, {"json", false, 0, false},
	} {
		got, err := parseBodyFormat(tc.format, tc.gzip)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("-format %s -import-gzip=%v: %v, %v", tc.format, tc.gzip, got, err)
		}
	}
}
