package remotewrite

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/prompb"
)

// transcodeImport runs the JSON lines through ImportTranscoder and the RW1
// decoder, as the handler does, and returns prompb's reading of the result.
func transcodeImport(t *testing.T, body string, extra ...Label) (*prompb.WriteRequest, error) {
	t.Helper()
	var tr ImportTranscoder
	rw1, err := tr.Transcode(nil, []byte(body), extra, 1<<20)
	if err != nil {
		return nil, err
	}
	var req Request
	if err := DecodeWriteRequest(rw1, &req); err != nil {
		t.Fatalf("the decoder rejects the transcoding: %v", err)
	}
	var wr prompb.WriteRequest
	if err := wr.Unmarshal(reencode(&req, true)); err != nil {
		t.Fatal(err)
	}
	return &wr, nil
}

func TestImportTranscodes(t *testing.T) {
	tests := []struct {
		name, body string
		extra      []Label
		want       []prompb.TimeSeries
	}{
		{"vmanomaly's line",
			`{"metric":{"__name__":"anomaly_score","for":"q1","vm_account_id":"3"},"values":[0.5,1.25],"timestamps":[1700000000000,1700000060000]}`,
			nil, []prompb.TimeSeries{{Labels: labelsOf("__name__", "anomaly_score", "for", "q1", "vm_account_id", "3"),
				Samples: []prompb.Sample{{Value: 0.5, Timestamp: 1700000000000}, {Value: 1.25, Timestamp: 1700000060000}}}}},
		{"several lines, CRLF, blank lines, labels unsorted, keys in any order",
			"{\"values\":[1],\"metric\":{\"job\":\"a\",\"__name__\":\"up\"},\"timestamps\":[5]}\r\n\n  \n{\"metric\":{\"__name__\":\"y\"},\"timestamps\":[6],\"values\":[-2e3]}\n",
			nil, []prompb.TimeSeries{
				{Labels: labelsOf("__name__", "up", "job", "a"), Samples: []prompb.Sample{{Value: 1, Timestamp: 5}}},
				{Labels: labelsOf("__name__", "y"), Samples: []prompb.Sample{{Value: -2000, Timestamp: 6}}}}},
		{"escapes in names and values",
			`{"metric":{"__name__":"m","v":"q\"b\\s\/\n\t\u00e9\ud83d\ude00\ud800"},"values":[1],"timestamps":[1]}`,
			nil, []prompb.TimeSeries{{Labels: labelsOf("__name__", "m", "v", "q\"b\\s/\n\té\U0001F600\uFFFD"), Samples: []prompb.Sample{{Value: 1, Timestamp: 1}}}}},
		{"unknown keys skipped",
			`{"metric":{"__name__":"m"},"extra":{"a":[1,{"b":null}],"c":"\u0041"},"values":[1],"timestamps":[0],"z":true}`,
			nil, []prompb.TimeSeries{{Labels: labelsOf("__name__", "m"), Samples: []prompb.Sample{{Value: 1}}}}},
		{"extra_label replaces and adds",
			`{"metric":{"__name__":"m","env":"dev"},"values":[1],"timestamps":[1]}`,
			[]Label{{Name: []byte("env"), Value: []byte("prod")}, {Name: []byte("team"), Value: []byte("db")}},
			[]prompb.TimeSeries{{Labels: labelsOf("__name__", "m", "env", "prod", "team", "db"), Samples: []prompb.Sample{{Value: 1, Timestamp: 1}}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := transcodeImport(t, tt.body, tt.extra...)
			if err != nil {
				t.Fatal(err)
			}
			want := &prompb.WriteRequest{Timeseries: tt.want}
			if got.String() != want.String() {
				t.Errorf("got  %s\nwant %s", got, want)
			}
		})
	}
}

func TestImportSpecialValues(t *testing.T) {
	got, err := transcodeImport(t, `{"metric":{"__name__":"m"},"values":[null,"NaN","Inf","-Infinity","inf",1e400,-0,NaN,-Infinity,Infinity],"timestamps":[1,2,3,4,5,6,7,8,9,10]}`)
	if err != nil {
		t.Fatal(err)
	}
	var vs []float64
	for _, s := range got.Timeseries[0].Samples {
		vs = append(vs, s.Value)
	}
	if !math.IsNaN(vs[0]) || !math.IsNaN(vs[1]) || !math.IsInf(vs[2], 1) || !math.IsInf(vs[3], -1) || !math.IsInf(vs[4], 1) || !math.IsInf(vs[5], 1) || vs[6] != 0 ||
		!math.IsNaN(vs[7]) || !math.IsInf(vs[8], -1) || !math.IsInf(vs[9], 1) {
		t.Errorf("values %v", vs)
	}
}

func TestImportRejectsBadLines(t *testing.T) {
	ok := `{"metric":{"__name__":"m"},"values":[1],"timestamps":[1]}`
	tests := []struct{ name, body, want string }{
		{"not JSON", ok + "\nhello", `line 2: a line must be a JSON object: want '{', found "hello" at column 1`},
		{"no metric", `{"values":[1],"timestamps":[1]}`, `line 1: no "metric" object with labels`},
		{"empty metric", `{"metric":{},"values":[1],"timestamps":[1]}`, `line 1: no "metric" object with labels`},
		{"no values", `{"metric":{"__name__":"m"},"timestamps":[1]}`, `line 1: no "values" array`},
		{"no timestamps", `{"metric":{"__name__":"m"},"values":[1]}`, `line 1: no "timestamps" array`},
		{"lengths differ", ok + "\n" + ok + "\n" + `{"metric":{"__name__":"m"},"values":[1,2],"timestamps":[1]}`,
			`line 3: "values" has 2 items but "timestamps" has 1: they must have the same length`},
		{"value not a number", `{"metric":{"__name__":"m"},"values":[1,"abc"],"timestamps":[1,2]}`,
			`line 1: value #1 is the string "abc": values are numbers, null, or one of the strings NaN, Inf`},
		{"value true", `{"metric":{"__name__":"m"},"values":[true],"timestamps":[1]}`, `line 1: value #0 is "true": values are numbers, null, or one of NaN`},
		{"hex value", `{"metric":{"__name__":"m"},"values":[0x10],"timestamps":[1]}`, `line 1: after an item of "values": want ']'`},
		{"fractional timestamp", `{"metric":{"__name__":"m"},"values":[1],"timestamps":[1.5]}`, `line 1: timestamp #0 is not an integer number of milliseconds: "1.5"`},
		{"label value a number", `{"metric":{"__name__":"m","a":1},"values":[1],"timestamps":[1]}`, `line 1: a label value (a string): want '"', found "1},`},
		{"no metric name", `{"metric":{"job":"a"},"values":[1],"timestamps":[1]}`, `line 1: {job="a"}: no metric name`},
		{"duplicate label", `{"metric":{"__name__":"m","a":"1","a":"2"},"values":[1],"timestamps":[1]}`, `line 1: m{a="1",a="2"}: duplicate label name "a"`},
		{"invalid UTF-8", "{\"metric\":{\"__name__\":\"m\",\"a\":\"\xff\"},\"values\":[1],\"timestamps\":[1]}", `line 1: m{a="\xff"}: label a has a value that is not valid UTF-8`},
		{"unterminated", `{"metric":{"__name__":"m`, `line 1: a label value (a string): string not terminated`},
		{"trailing text", ok + ` x`, `line 1: text after the JSON object: "x" at column`},
		{"bad escape", `{"metric":{"__name__":"m\q"},"values":[1],"timestamps":[1]}`, `line 1: bad escape \q`},
		{"too deep", `{"x":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}`, `nested deeper than 64 levels`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var tr ImportTranscoder
			_, err := tr.Transcode(nil, []byte(tt.body), nil, 1<<20)
			var de *DecodeError
			if !errors.As(err, &de) || de.Reason != ReasonBadImport {
				t.Fatalf("got %v, want a %s DecodeError", err, ReasonBadImport)
			}
			if !strings.Contains(de.Msg, tt.want) {
				t.Errorf("message %q does not contain %q", de.Msg, tt.want)
			}
		})
	}
}

func TestImportOutputLimit(t *testing.T) {
	line := `{"metric":{"__name__":"m"},"values":[1,2,3],"timestamps":[1,2,3]}` + "\n"
	var tr ImportTranscoder
	_, err := tr.Transcode(nil, []byte(strings.Repeat(line, 100)), nil, 500)
	var se *StatusError
	if !errors.As(err, &se) || se.Code != 413 {
		t.Fatalf("got %v, want 413", err)
	}
}

func TestImportDoesNotAllocateOnceWarm(t *testing.T) {
	body := []byte(strings.Repeat(`{"metric":{"__name__":"anomaly_score","for":"q\u00e9","job":"a"},"values":[0.5,1,null],"timestamps":[1,2,3]}`+"\n", 50))
	var tr ImportTranscoder
	var out []byte
	allocs := testing.AllocsPerRun(50, func() {
		var err error
		if out, err = tr.Transcode(out[:0], body, nil, 1<<20); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("%.1f allocations per request of 50 lines, want 0", allocs)
	}
}

func labelsOf(kv ...string) []prompb.Label {
	var ls []prompb.Label
	for i := 0; i+1 < len(kv); i += 2 {
		ls = append(ls, prompb.Label{Name: kv[i], Value: kv[i+1]})
	}
	return ls
}

// FuzzImportTranscode: whatever the bytes, the transcoder does not panic,
// and what it accepts is a WriteRequest that prompb and the decoder read,
// with as many series as the body has non-blank lines.
func FuzzImportTranscode(f *testing.F) {
	f.Add([]byte(`{"metric":{"__name__":"m","a":"\u00e9"},"values":[1,null,"Inf"],"timestamps":[1,2,3]}` + "\n\n" + `{"metric":{"b":"x","__name__":"y"},"values":[-1e3],"timestamps":[-5],"k":[{}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var tr ImportTranscoder
		out, err := tr.Transcode(nil, body, nil, 1<<20)
		cache := newImportLabelCache(1 << 20)
		for pass := 0; pass < 2; pass++ { // the second finds the first's labels
			ct := ImportTranscoder{cache: cache}
			cout, cerr := ct.Transcode(nil, body, nil, 1<<20)
			if fmt.Sprint(cerr) != fmt.Sprint(err) || err == nil && string(cout) != string(out) {
				t.Fatalf("pass %d with the label cache: %v, %d bytes; without: %v, %d bytes", pass, cerr, len(cout), err, len(out))
			}
		}
		if cout, cerr := transcodeInParts(body); fmt.Sprint(cerr) != fmt.Sprint(err) || err == nil && string(cout) != string(out) {
			t.Fatalf("in parts split at newlines: %v, %d bytes; whole: %v, %d bytes", cerr, len(cout), err, len(out))
		}
		if err != nil {
			return
		}
		var wr prompb.WriteRequest
		if err := wr.Unmarshal(out); err != nil {
			t.Fatalf("prompb cannot read the transcoding: %v", err)
		}
		var req Request
		if err := DecodeWriteRequest(out, &req); err != nil {
			t.Fatalf("the decoder rejects the transcoding: %v", err)
		}
		lines := 0
		for _, l := range strings.Split(string(body), "\n") {
			if !isBlank([]byte(l)) {
				lines++
			}
		}
		if len(wr.Timeseries) != lines {
			t.Fatalf("%d series from %d lines", len(wr.Timeseries), lines)
		}
	})
}

// benchImportBody is bench compare's import workload: 1,000 lines of nine
// labels, two random values with all their digits and two timestamps.
func benchImportBody() []byte {
	outputs := []string{"anomaly_score", "y", "yhat", "yhat_lower", "yhat_upper"}
	rng := rand.New(rand.NewPCG(1, 2))
	var b []byte
	for i := 0; i < 1000; i++ {
		b = fmt.Appendf(b, `{"metric":{"__name__":%q,"for":"cpu_usage_query_%d","instance":"node-%05d.prod:9100","job":"node_exporter",`+
			`"mode":"user","model_alias":"prophet_seasonal","scheduler_alias":"periodic_5m","vm_account_id":"%d","vm_project_id":"0"},`+
			`"values":[%s,%s],"timestamps":[1763900000000,1763900001000]}`+"\n",
			outputs[i/200], i%10, i%200, 1+i%10,
			strconv.FormatFloat(rng.Float64()*100, 'g', -1, 64), strconv.FormatFloat(rng.Float64()*100, 'g', -1, 64))
	}
	return b
}

// BenchmarkImportTranscode is the transcoder alone on bench compare's
// import body (see BenchmarkImportHotPath in tenantroute for the handler).
func BenchmarkImportTranscode(b *testing.B) {
	body := benchImportBody()
	var tr ImportTranscoder
	var out []byte
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if out, err = tr.Transcode(out[:0], body, nil, 1<<30); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*2000), "ns/sample")
}

// parseImportValue reads text as one item of "values", all of it.
func parseImportValue(text string) (float64, error) {
	var tr ImportTranscoder
	s := &jsonScanner{b: []byte(text), line: 1}
	v, err := tr.value(s, 0)
	if err == nil && s.i != len(s.b) {
		return v, fmt.Errorf("%q: stopped at %d", text, s.i)
	}
	return v, err
}

// randomDecimal is a JSON number of up to 21 digits with the point
// anywhere, an optional exponent and sign.
func randomDecimal(rng *rand.Rand) string {
	digits := make([]byte, 1+rng.IntN(21))
	for i := range digits {
		digits[i] = byte('0' + rng.IntN(10))
	}
	if rng.IntN(4) > 0 && digits[0] == '0' && len(digits) > 1 {
		digits[0] = byte('1' + rng.IntN(9))
	}
	text := string(digits)
	if p := rng.IntN(len(digits) + 1); p > 0 && p < len(digits) {
		text = text[:p] + "." + text[p:]
	}
	if rng.IntN(3) == 0 {
		text += "e" + strconv.Itoa(rng.IntN(61)-30)
	}
	if rng.IntN(2) == 0 {
		text = "-" + text
	}
	return text
}

// The transcoder's values are strconv.ParseFloat's, bit for bit, whatever
// path reads them: decimals of every length and exponent, and floats as
// Python, Go and printf print them.
func TestImportValuesMatchStrconv(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	var texts []string
	for i := 0; i < 200000; i++ {
		f := math.Float64frombits(rng.Uint64())
		if math.IsNaN(f) || math.IsInf(f, 0) {
			continue
		}
		u := rng.Float64() * math.Pow(10, float64(rng.IntN(40)-20))
		texts = append(texts, randomDecimal(rng), strconv.FormatFloat(f, 'g', -1, 64), strconv.FormatFloat(u, 'g', -1, 64),
			strconv.FormatFloat(u, 'e', rng.IntN(20), 64), strconv.FormatFloat(u, 'f', rng.IntN(20), 64))
	}
	texts = append(texts, "0", "-0", "0.0", "9007199254740993", "9007199254740992.5", "18446744073709551615",
		"18446744073709551616", "9999999999999999999", "0.1", "0.30000000000000004", "1e19", "1e-19", "1e22", "1e23",
		"4.9406564584124654e-324", "1.7976931348623157e308", "2.2250738585072011e-308", "0.00000000000000000001",
		"9.999999999999999999e-1", "3.9999999999999999", "7.99999999999999999e-19", "1.00000000000000011102230246251565404236316680908203125",
		"4503599627370496.5", "4503599627370497.5", "2251799813685248.25", "2251799813685248.75")
	for _, text := range texts {
		want, werr := strconv.ParseFloat(text, 64)
		got, err := parseImportValue(text)
		if err != nil || math.Float64bits(got) != math.Float64bits(want) && !(werr != nil && math.IsInf(want, 0)) {
			t.Fatalf("%q: got %v (%x, %v), strconv %v (%x, %v)", text, got, math.Float64bits(got), err, want, math.Float64bits(want), werr)
		}
	}
}

// Timestamps are strconv.ParseInt's; what it refuses is refused.
func TestImportTimestampsMatchStrconv(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	texts := []string{"0", "-0", "007", "9223372036854775807", "-9223372036854775808", "9223372036854775808", "1.5", "1e3", "-"}
	for i := 0; i < 100000; i++ {
		texts = append(texts, strconv.FormatInt(rng.Int64()>>rng.IntN(64), 10), strconv.FormatInt(-rng.Int64()>>rng.IntN(64), 10))
	}
	for _, text := range texts {
		want, werr := strconv.ParseInt(text, 10, 64)
		var tr ImportTranscoder
		body := `{"metric":{"__name__":"m"},"values":[1],"timestamps":[` + text + `]}`
		out, err := tr.Transcode(nil, []byte(body), nil, 1<<20)
		if (err != nil) != (werr != nil) {
			t.Fatalf("%q: transcoder %v, strconv %v", text, err, werr)
		}
		if err == nil && (len(tr.stamps) != 1 || tr.stamps[0] != want || len(out) == 0) {
			t.Fatalf("%q: %v, want %d", text, tr.stamps, want)
		}
	}
}

// The compact fast paths (labels without white space, short integers) and
// the general parser agree byte for byte: the same lines with white space
// everywhere JSON allows it transcode to the same WriteRequest.
func TestImportCompactAndSpacedLinesAgree(t *testing.T) {
	body := benchImportBody()
	spaced := strings.NewReplacer(`":"`, `" : "`, `","`, `" , "`, `{"`, `{ "`, `"}`, `" }`, `[`, `[ `, `,1`, ` , 1`).Replace(string(body))
	var a, b ImportTranscoder
	want, err := a.Transcode(nil, body, nil, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	got, err := b.Transcode(nil, []byte(spaced), nil, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) || len(want) == 0 {
		t.Fatalf("spaced lines transcode to %d bytes, compact ones to %d, or they differ", len(got), len(want))
	}
}

// An extra label that is not valid UTF-8 is refused on an ASCII line too.
func TestImportExtraLabelUTF8(t *testing.T) {
	var tr ImportTranscoder
	_, err := tr.Transcode(nil, []byte(`{"metric":{"__name__":"m"},"values":[1],"timestamps":[1]}`), []Label{{Name: []byte("a"), Value: []byte("\xff")}}, 1<<20)
	if err == nil || !strings.Contains(err.Error(), "not valid UTF-8") {
		t.Fatalf("got %v, want a UTF-8 error", err)
	}
}

// transcodeInParts transcodes body as a stream does, with the label
// cache: in parts of 2, 3, 1, 2... lines ending after a newline, then the
// rest.
func transcodeInParts(body []byte) ([]byte, error) {
	tr := ImportTranscoder{cache: newImportLabelCache(1 << 20)}
	var out []byte
	tr.begin(out)
	for part := 1; ; part++ {
		end := 0
		for range part%3 + 1 {
			i := bytes.IndexByte(body[end:], '\n')
			if i < 0 {
				return tr.transcodeLines(out, body, nil, 1<<20)
			}
			end += i + 1
		}
		var err error
		if out, err = tr.transcodeLines(out, body[:end], nil, 1<<20); err != nil {
			return out, err
		}
		body = body[end:]
	}
}
