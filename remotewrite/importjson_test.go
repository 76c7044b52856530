package remotewrite

import (
	"context"
	"encoding/json"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/klauspost/compress/s2"
	"github.com/prometheus/prometheus/prompb"
)

// staleMarker is the Prometheus staleness marker as a float64.
var staleMarker = math.Float64frombits(staleNaN)

func TestImportJSONLines(t *testing.T) {
	const ts = 1_700_000_000_000
	tests := []struct {
		name      string
		series    []prompb.TimeSeries
		metadata  int
		want      string // the lines, "" for none
		wantDrops importDrops
	}{
		{"two samples",
			[]prompb.TimeSeries{{Labels: testLabels("__name__", "up", "job", "node"),
				Samples: []prompb.Sample{{Value: 1, Timestamp: ts}, {Value: 0.5, Timestamp: ts + 15000}}}},
			0, `{"metric":{"__name__":"up","job":"node"},"values":[1,0.5],"timestamps":[1700000000000,1700000015000]}` + "\n",
			importDrops{}},
		{"__name__ first even when a label sorts before it",
			[]prompb.TimeSeries{{Labels: testLabels("A", "x", "__name__", "m", "z", "y"), Samples: []prompb.Sample{{Value: 2, Timestamp: ts}}}},
			0, `{"metric":{"__name__":"m","A":"x","z":"y"},"values":[2],"timestamps":[1700000000000]}` + "\n",
			importDrops{}},
		{"escaping",
			[]prompb.TimeSeries{{Labels: testLabels("__name__", "m", "v", "q\"b\\s\nn\tt\rr\x01\x1f é€ <&>."),
				Samples: []prompb.Sample{{Value: 3, Timestamp: ts}}}},
			0, `{"metric":{"__name__":"m","v":"q\"b\\s\nn\tt\rr\u0001\u001f é€ <&>."},"values":[3],"timestamps":[1700000000000]}` + "\n",
			importDrops{}},
		{"special and extreme floats",
			[]prompb.TimeSeries{{Labels: testLabels("__name__", "f"), Samples: []prompb.Sample{
				{Value: math.NaN(), Timestamp: 1}, {Value: math.Inf(1), Timestamp: 2}, {Value: math.Inf(-1), Timestamp: 3},
				{Value: 1e21, Timestamp: 4}, {Value: 1e-7, Timestamp: 5}, {Value: 0, Timestamp: 6}, // (gogo does not marshal -0)
				{Value: 5e-324, Timestamp: 7}, {Value: 0.1, Timestamp: 8}, {Value: 1.7e12, Timestamp: 9}, {Value: -2.5e-300, Timestamp: -10}}}},
			0, `{"metric":{"__name__":"f"},"values":[NaN,+Inf,-Inf,1e+21,1e-7,0,5e-324,0.1,1700000000000,-2.5e-300],"timestamps":[1,2,3,4,5,6,7,8,9,-10]}` + "\n",
			importDrops{}},
		{"staleness markers are left out",
			[]prompb.TimeSeries{
				{Labels: testLabels("__name__", "a"), Samples: []prompb.Sample{{Value: 1, Timestamp: 1}, {Value: staleMarker, Timestamp: 2}}},
				{Labels: testLabels("__name__", "b"), Samples: []prompb.Sample{{Value: staleMarker, Timestamp: 3}}}},
			0, `{"metric":{"__name__":"a"},"values":[1],"timestamps":[1]}` + "\n",
			importDrops{staleMarkers: 2}},
		{"histograms, exemplars and metadata are counted, samples kept",
			[]prompb.TimeSeries{
				{Labels: testLabels("__name__", "h"), Histograms: []prompb.Histogram{oneBucketHistogram}},
				{Labels: testLabels("__name__", "e"), Samples: []prompb.Sample{{Value: 4, Timestamp: 1}},
					Exemplars: []prompb.Exemplar{{Labels: testLabels("trace_id", "t"), Value: 4, Timestamp: 1}}}},
			2, `{"metric":{"__name__":"e"},"values":[4],"timestamps":[1]}` + "\n",
			importDrops{histograms: 1, exemplars: 1, metadata: 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wr := &prompb.WriteRequest{Timeseries: tt.series}
			for i := 0; i < tt.metadata; i++ {
				wr.Metadata = append(wr.Metadata, prompb.MetricMetadata{MetricFamilyName: "m", Help: "h"})
			}
			var req Request
			if err := DecodeWriteRequest(marshal(t, wr), &req); err != nil {
				t.Fatal(err)
			}
			var drops importDrops
			got, _, _ := appendImportJSON(nil, &req, &drops)
			if string(got) != tt.want {
				t.Errorf("lines\n got %s\nwant %s", got, tt.want)
			}
			if drops != tt.wantDrops {
				t.Errorf("drops %+v, want %+v", drops, tt.wantDrops)
			}
		})
	}
}

func testLabels(kv ...string) []prompb.Label {
	var ls []prompb.Label
	for i := 0; i+1 < len(kv); i += 2 {
		ls = append(ls, prompb.Label{Name: kv[i], Value: kv[i+1]})
	}
	return ls
}

// Every finite float reads back bit for bit, and the line is valid JSON
// that encoding/json decodes to the same labels.
func TestImportJSONRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 2000; i++ {
		v := math.Float64frombits(rng.Uint64())
		if math.IsNaN(v) || math.IsInf(v, 0) {
			continue
		}
		s := string(appendJSONFloat(nil, v))
		back, err := strconv.ParseFloat(s, 64)
		if err != nil || math.Float64bits(back) != math.Float64bits(v) {
			t.Fatalf("%v written as %q reads back as %v (%v)", v, s, back, err)
		}
		var viaJSON float64
		if err := json.Unmarshal([]byte(s), &viaJSON); err != nil {
			t.Fatalf("%q is not a JSON number: %v", s, err)
		}
	}
	value := "a\"b\\c\n\x00\x7f é 😀"
	var req Request
	wr := &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{Labels: testLabels("__name__", "m", "v", value),
		Samples: []prompb.Sample{{Value: 1.25, Timestamp: 7}}}}}
	if err := DecodeWriteRequest(marshal(t, wr), &req); err != nil {
		t.Fatal(err)
	}
	line, _, _ := appendImportJSON(nil, &req, &importDrops{})
	var got struct {
		Metric     map[string]string
		Values     []float64
		Timestamps []int64
	}
	if err := json.Unmarshal(line, &got); err != nil {
		t.Fatalf("line %s: %v", line, err)
	}
	if got.Metric["v"] != value || got.Metric["__name__"] != "m" || got.Values[0] != 1.25 || got.Timestamps[0] != 7 {
		t.Errorf("decoded %+v from %s", got, line)
	}
}

func TestImportJSONDoesNotAllocate(t *testing.T) {
	var req Request
	if err := DecodeWriteRequest(marshal(t, anomalyWorkload()), &req); err != nil {
		t.Fatal(err)
	}
	var drops importDrops
	buf, _, samples := appendImportJSON(nil, &req, &drops)
	if samples != 2000 {
		t.Fatalf("wrote %d samples, want 2000", samples)
	}
	if n := testing.AllocsPerRun(20, func() { buf, _, _ = appendImportJSON(buf[:0], &req, &drops) }); n != 0 {
		t.Errorf("appendImportJSON allocates %v times per request, want 0", n)
	}
}

func TestImportURL(t *testing.T) {
	tests := []struct{ write, path, want string }{
		// single node: <datasource_url><import_json_path>
		{"http://vm:8428/api/v1/write", "/api/v1/import", "http://vm:8428/api/v1/import"},
		// cluster: <datasource_url>/insert/<tenant>/prometheus<import_json_path>
		{"http://vminsert:8480/insert/5/prometheus/api/v1/write", "/api/v1/import", "http://vminsert:8480/insert/5/prometheus/api/v1/import"},
		{"http://vminsert:8480/insert/5:7/prometheus/api/v1/write", "/api/v1/import", "http://vminsert:8480/insert/5:7/prometheus/api/v1/import"},
		{"http://vminsert:8480/insert/multitenant/prometheus/api/v1/write", "/api/v1/import", "http://vminsert:8480/insert/multitenant/prometheus/api/v1/import"},
		// a path prefix in datasource_url (vmauth) and a custom path
		{"https://u:p@gw/vm/insert/1:2/prometheus/api/v1/write", "/custom/import", "https://u:p@gw/vm/insert/1:2/prometheus/custom/import"},
		{"http://vm:8428/api/v1/write", "api/v1/import", "http://vm:8428/api/v1/import"},
	}
	for _, tt := range tests {
		if got, err := ImportURL(tt.write, tt.path); err != nil || got != tt.want {
			t.Errorf("ImportURL(%q, %q) = %q, %v; want %q", tt.write, tt.path, got, err, tt.want)
		}
	}
	if _, err := ImportURL("http://u:secret@vm:8428/write", "/api/v1/import"); err == nil || strings.Contains(err.Error(), "secret") {
		t.Errorf("unmappable URL: error %v, want one without credentials", err)
	}
}

func TestCheckImportPath(t *testing.T) {
	for _, ok := range []string{"/api/v1/import", "/custom"} {
		if err := CheckImportPath(ok); err != nil {
			t.Errorf("CheckImportPath(%q): %v", ok, err)
		}
	}
	for bad, want := range map[string]string{"": "empty", "api/v1/import": "start with /",
		"http://vm/api/v1/import": "not a path", "/api/v1/import?x=1": "plain path", "/a#b": "plain path"} {
		if err := CheckImportPath(bad); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("CheckImportPath(%q) = %v, want an error containing %q", bad, err, want)
		}
	}
}

// importRecorder is a test VictoriaMetrics import endpoint: it keeps each
// request's path, content type and body.
type importRecorder struct {
	mu   sync.Mutex
	reqs []seenRequest
}

func (r *importRecorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	r.reqs = append(r.reqs, seenRequest{req.Method, req.URL.Path, req.Header.Clone(), body})
	r.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func TestImportJSONSend(t *testing.T) {
	rec := &importRecorder{}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	c := newTestClient(t, ClientConfig{}, defaultRecheck)
	s, err := NewImportJSON(c, "/api/v1/import", quiet)
	if err != nil {
		t.Fatal(err)
	}
	wr := &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{Labels: testLabels("__name__", "up", "job", "a"),
		Samples: []prompb.Sample{{Value: 1, Timestamp: 1000}}}}}
	body := s2.EncodeSnappy(nil, marshal(t, wr))
	url := srv.URL + "/insert/3:4/prometheus/api/v1/write"
	res := s.Send(context.Background(), url, body, BatchStats{Series: 1, Samples: 1})
	if !res.OK() || res.URL != srv.URL+"/insert/3:4/prometheus/api/v1/import" {
		t.Fatalf("result %+v", res)
	}
	got := rec.reqs[0]
	want := `{"metric":{"__name__":"up","job":"a"},"values":[1],"timestamps":[1000]}` + "\n"
	if got.Method != http.MethodPost || got.Path != "/insert/3:4/prometheus/api/v1/import" || string(got.Body) != want ||
		got.Header.Get("Content-Encoding") != "" || got.Header.Get("Content-Type") != "application/json" {
		t.Errorf("upstream got %s %s %q (type %q, encoding %q)", got.Method, got.Path, got.Body,
			got.Header.Get("Content-Type"), got.Header.Get("Content-Encoding"))
	}
	if m := metricsText(); !strings.Contains(m, `vmanomaly_writer_datapoints_sent_total{url="`+res.URL+`",query_key=""} 1`) {
		t.Errorf("datapoints of the import URL missing:\n%s", grepLines(m, res.URL))
	}

	// A body that is not snappy is rejected without a request: re-sending cannot fix it.
	bad := s.Send(context.Background(), url, []byte("not snappy"), BatchStats{})
	if bad.StatusCode != http.StatusBadRequest || !strings.Contains(bad.Message, "snappy") || len(rec.reqs) != 1 {
		t.Errorf("bad body: result %+v after %d requests", bad, len(rec.reqs))
	}
	// Nothing JSON can carry: no request, counted.
	hist := &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{Labels: testLabels("__name__", "h"),
		Histograms: []prompb.Histogram{oneBucketHistogram}}}}
	if res := s.Send(context.Background(), url, s2.EncodeSnappy(nil, marshal(t, hist)), BatchStats{}); !res.OK() || len(rec.reqs) != 1 {
		t.Errorf("histogram-only batch: result %+v after %d requests", res, len(rec.reqs))
	}
	if m := metricsText(); !strings.Contains(m, metricImportDropped+`{kind="histogram"}`) {
		t.Errorf("no histogram drop counted:\n%s", grepLines(m, metricImportDropped))
	}
}

func BenchmarkImportJSONEncode(b *testing.B) {
	var req Request
	if err := DecodeWriteRequest(marshal(b, anomalyWorkload()), &req); err != nil {
		b.Fatal(err)
	}
	var drops importDrops
	buf, _, _ := appendImportJSON(nil, &req, &drops) // grow the buffer once, as the pool does
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		buf, _, _ = appendImportJSON(buf[:0], &req, &drops)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/2000, "ns/sample")
	b.ReportMetric(float64(len(buf)), "json-bytes")
}

// oneBucketHistogram is a valid integer native histogram.
var oneBucketHistogram = prompb.Histogram{Count: &prompb.Histogram_CountInt{CountInt: 1},
	PositiveSpans: []prompb.BucketSpan{{Length: 1}}, PositiveDeltas: []int64{1}, Timestamp: 1}
