package remotewrite

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/golang/snappy"
	"github.com/klauspost/compress/zstd"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
)

// rw2Headers are the spec's response headers, in the order written in the
// test tables: samples, histograms, exemplars ("" when absent).
var rw2Headers = []string{HeaderSamplesWritten, HeaderHistogramsWritten, HeaderExemplarsWritten}

func zstdEncode(t testing.TB, raw []byte) []byte {
	enc, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	return enc.EncodeAll(raw, nil)
}

// zstdStream compresses raw as a stream, whose frame header has no content size.
func zstdStream(t testing.TB, raw []byte) []byte {
	var buf bytes.Buffer
	enc, err := zstd.NewWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	enc.Write(raw)
	enc.Close()
	var h zstd.Header
	if err := h.Decode(buf.Bytes()); err != nil || h.HasFCS {
		t.Fatalf("stream frame: header %+v, %v; want no content size", h, err)
	}
	return buf.Bytes()
}

// TestHandlerRemoteWrite2 covers the status codes and response headers of
// the 2.0 spec, and zstd bodies, against what the processor receives.
func TestHandlerRemoteWrite2(t *testing.T) {
	rw2 := marshalRW2(t, sampleRW2()) // 1 sample, 1 histogram, 1 exemplar
	noName := marshalRW2(t, &writev2.Request{Symbols: []string{"", "job", "a"},
		Timeseries: []writev2.TimeSeries{{LabelsRefs: []uint32{1, 2}, Samples: []writev2.Sample{{Value: 1}}}}})
	rw1 := marshal(t, sampleRequest()) // 2 samples, 1 histogram, 1 exemplar
	cases := []struct {
		name        string
		contentType string
		encoding    string
		body        []byte
		procErr     error
		wantCode    int
		wantMsg     string
		wantHeaders []string // samples, histograms, exemplars written; nil: no headers
		wantSeries  []string // what the processor got
	}{
		{name: "rw2 snappy", contentType: ContentTypeRW2, encoding: "snappy", body: snappy.Encode(nil, rw2), wantCode: 204,
			wantHeaders: []string{"1", "1", "1"}, wantSeries: []string{`anomaly_score{for="cpu"}`, "latency{}"}},
		{name: "rw2 zstd", contentType: ContentTypeRW2, encoding: "zstd", body: zstdEncode(t, rw2), wantCode: 204,
			wantHeaders: []string{"1", "1", "1"}, wantSeries: []string{`anomaly_score{for="cpu"}`, "latency{}"}},
		{name: "rw2 no encoding header is snappy", contentType: ContentTypeRW2, body: snappy.Encode(nil, rw2), wantCode: 204,
			wantHeaders: []string{"1", "1", "1"}, wantSeries: []string{`anomaly_score{for="cpu"}`, "latency{}"}},
		{name: "rw2 invalid series: 400, nothing written", contentType: ContentTypeRW2, encoding: "snappy", body: snappy.Encode(nil, noName),
			wantCode: 400, wantMsg: "invalid series #0", wantHeaders: []string{"0", "0", "0"}},
		{name: "rw2 malformed: 400", contentType: ContentTypeRW2, encoding: "snappy", body: snappy.Encode(nil, []byte{0x2a, 0x09}),
			wantCode: 400, wantMsg: "invalid protobuf io.prometheus.write.v2.Request", wantHeaders: []string{"0", "0", "0"}},
		{name: "rw2 bad snappy: 400", contentType: ContentTypeRW2, encoding: "snappy", body: []byte("nope"),
			wantCode: 400, wantMsg: "snappy", wantHeaders: []string{"0", "0", "0"}},
		{name: "rw2 unsupported encoding: 415", contentType: ContentTypeRW2, encoding: "gzip", body: rw2,
			wantCode: 415, wantMsg: "accepts snappy", wantHeaders: []string{"0", "0", "0"}},
		{name: "rw2 upstream down: 503, nothing written", contentType: ContentTypeRW2, encoding: "snappy", body: snappy.Encode(nil, rw2),
			procErr: &StatusError{Code: 503, Msg: "unreachable"}, wantCode: 503, wantMsg: "unreachable", wantHeaders: []string{"0", "0", "0"},
			wantSeries: []string{`anomaly_score{for="cpu"}`, "latency{}"}},
		{name: "rw2 body sent as rw1: 400 naming the type", contentType: ContentTypeRW1, body: snappy.Encode(nil, rw2), wantCode: 400,
			wantMsg: "body is remote write 2.0 (io.prometheus.write.v2.Request) but Content-Type says remote write 1.0"},
		{name: "rw1 body sent as rw2: 400 naming the type, nothing written", contentType: ContentTypeRW2, body: snappy.Encode(nil, rw1), wantCode: 400,
			wantMsg: "body is remote write 1.0 (prometheus.WriteRequest) but Content-Type says remote write 2.0", wantHeaders: []string{"0", "0", "0"}},
		{name: "rw1 gets no rw2 headers", contentType: "application/x-protobuf", encoding: "snappy", body: snappy.Encode(nil, rw1), wantCode: 204,
			wantSeries: []string{`anomaly_score{for="cpu",instance="a:9100"}`, `latency{job="api"}`}},
		{name: "rw1 zstd", contentType: "application/x-protobuf", encoding: "zstd", body: zstdEncode(t, rw1), wantCode: 204,
			wantSeries: []string{`anomaly_score{for="cpu",instance="a:9100"}`, `latency{job="api"}`}},
		{name: "rw1 zstd stream without content size", encoding: "ZSTD", body: zstdStream(t, rw1), wantCode: 204,
			wantSeries: []string{`anomaly_score{for="cpu",instance="a:9100"}`, `latency{job="api"}`}},
		{name: "corrupt zstd", encoding: "zstd", body: []byte("not zstd"), wantCode: 400, wantMsg: "corrupt zstd body"},
		{name: "zstd bomb with content size: 413 from the frame header", encoding: "zstd", body: zstdEncode(t, make([]byte, 4<<20)),
			wantCode: 413, wantMsg: "(zstd frame header) exceeds limits.max_decoded_bytes (524288)"},
		{name: "zstd bomb without content size: 413 while decoding", encoding: "zstd", body: zstdStream(t, make([]byte, 4<<20)),
			wantCode: 413, wantMsg: "decoded zstd request exceeds limits.max_decoded_bytes (524288)"},
		{name: "zstd rw2 bomb", contentType: ContentTypeRW2, encoding: "zstd", body: zstdStream(t, make([]byte, 4<<20)),
			wantCode: 413, wantHeaders: []string{"0", "0", "0"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			var compressed []byte
			h := NewHandler(HandlerConfig{MaxRequestBytes: 64 << 10, MaxDecodedBytes: 512 << 10, Logger: quiet}, processorFunc(
				func(_ context.Context, req *Request, _ string) error {
					for i := range req.Series {
						got = append(got, FormatLabels(req.Series[i].Labels))
					}
					compressed = req.Compressed
					return tc.procErr
				}))
			r := httptest.NewRequest(http.MethodPost, "/api/v1/write", bytes.NewReader(tc.body))
			if tc.contentType != "" {
				r.Header.Set("Content-Type", tc.contentType)
			}
			if tc.encoding != "" {
				r.Header.Set("Content-Encoding", tc.encoding)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tc.wantCode || !strings.Contains(w.Body.String(), tc.wantMsg) {
				t.Errorf("got %d %q, want %d containing %q", w.Code, w.Body.String(), tc.wantCode, tc.wantMsg)
			}
			for i, name := range rw2Headers {
				want := ""
				if tc.wantHeaders != nil {
					want = tc.wantHeaders[i]
				}
				if v, ok := w.Header()[name]; (want == "") != !ok || (ok && v[0] != want) {
					t.Errorf("%s: %q, want %q", name, v, want)
				}
			}
			if strings.Join(got, " ") != strings.Join(tc.wantSeries, " ") {
				t.Errorf("processor got %q, want %q", got, tc.wantSeries)
			}
			if compressed != nil && (tc.encoding == "zstd" || tc.contentType == ContentTypeRW2) {
				t.Error("Request.Compressed is set for a body that is not snappy RW1: the router would forward it as is")
			}
		})
	}
}

// TestHandlerRW2Forwarded: the processor sees the RW2 request as the RW1
// request that carries the same data, byte for byte once decoded.
func TestHandlerRW2Forwarded(t *testing.T) {
	want, _, _ := rw2Reference(marshalRW2(t, sampleRW2()))
	var got []byte
	h := NewHandler(HandlerConfig{MaxRequestBytes: 1 << 20, MaxDecodedBytes: 1 << 20, Logger: quiet}, processorFunc(
		func(_ context.Context, req *Request, _ string) error {
			got = reencode(req, false)
			return nil
		}))
	r := httptest.NewRequest(http.MethodPost, "/api/v1/write", bytes.NewReader(snappy.Encode(nil, marshalRW2(t, sampleRW2()))))
	r.Header.Set("Content-Type", ContentTypeRW2)
	h.ServeHTTP(httptest.NewRecorder(), r)
	requireSame(t, "forwarded", got, want)
	if len(want.Metadata) != 1 || want.Metadata[0].MetricFamilyName != "anomaly_score" || len(want.Timeseries[1].Histograms) != 1 {
		t.Fatalf("reference lost data: %s", want.String())
	}
}

// TestHandlerVMProtoHandshake: vmagent before v1.116 asks before sending
// zstd; a write that carries the query is still a write.
func TestHandlerVMProtoHandshake(t *testing.T) {
	samples := 0
	h := NewHandler(HandlerConfig{MaxRequestBytes: 1 << 20, MaxDecodedBytes: 1 << 20, Logger: quiet}, processorFunc(
		func(_ context.Context, req *Request, _ string) error { _, samples, _, _ = req.Totals(); return nil }))
	const url = "/insert/0/prometheus/api/v1/write?get_vm_proto_version=1"
	for _, method := range []string{http.MethodGet, http.MethodPost} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(method, url, nil))
		if w.Code != 200 || w.Body.String() != "1" || samples != 0 {
			t.Errorf("%s: got %d %q, processor got %d samples; want 200 \"1\" and nothing processed", method, w.Code, w.Body.String(), samples)
		}
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, url, bytes.NewReader(validBody(t))))
	if w.Code != http.StatusNoContent || samples != 1 {
		t.Errorf("write with the handshake query: got %d %q, processor got %d samples; want 204 and 1", w.Code, w.Body.String(), samples)
	}
}

// TestHandlerRW1Unchanged: an RW1 snappy request is still forwardable as
// received (Request.Compressed) and its decoding allocates nothing more.
func TestHandlerRW1Unchanged(t *testing.T) {
	body := snappy.Encode(nil, marshal(t, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{series("__name__", "up")}}))
	var compressed []byte
	h := NewHandler(HandlerConfig{MaxRequestBytes: 1 << 20, MaxDecodedBytes: 1 << 20, Logger: quiet}, processorFunc(
		func(_ context.Context, req *Request, _ string) error {
			compressed = bytes.Clone(req.Compressed)
			return nil
		}))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/api/v1/write", bytes.NewReader(body)))
	if !bytes.Equal(compressed, body) {
		t.Error("Request.Compressed is not the body as received")
	}
}
