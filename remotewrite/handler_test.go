package remotewrite

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
)

var quiet = slog.New(slog.DiscardHandler)

// processorFunc adapts a function to Processor.
type processorFunc func(ctx context.Context, req *Request, tenant string) error

func (f processorFunc) Process(ctx context.Context, req *Request, tenant string) error {
	return f(ctx, req, tenant)
}

func validBody(t testing.TB) []byte {
	return snappy.Encode(nil, marshal(t, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{series("__name__", "up", "job", "a")}}))
}

func TestHandlerStatuses(t *testing.T) {
	okBody := validBody(t)
	bomb := snappy.Encode(nil, make([]byte, 1<<20)) // 1 MiB of zeros: ~50 KB compressed
	cases := []struct {
		name        string
		method      string
		path        string
		headers     map[string]string
		body        []byte
		procErr     error
		wantCode    int
		wantMsg     string
		wantTenant  string
		wantProcess bool
	}{
		{name: "accepted", path: "/api/v1/write", body: okBody, wantCode: 204, wantProcess: true},
		{name: "prometheus prefix", path: "/prometheus/api/v1/write", body: okBody, wantCode: 204, wantProcess: true},
		{name: "cortex-style push path", path: "/api/v1/push", body: okBody, wantCode: 204, wantProcess: true},
		{name: "vminsert path with tenant", path: "/insert/5:1/prometheus/api/v1/write", body: okBody, wantCode: 204, wantProcess: true, wantTenant: "5:1"},
		{name: "vminsert short path", path: "/insert/7/prometheus", body: okBody, wantCode: 204, wantProcess: true, wantTenant: "7"},
		{name: "vminsert multitenant path", path: "/insert/multitenant/prometheus/api/v1/write", body: okBody, wantCode: 204, wantProcess: true, wantTenant: "multitenant"},
		{name: "unknown insert path", path: "/insert/5/influx/write", body: okBody, wantCode: 404},
		{name: "GET", method: http.MethodGet, path: "/api/v1/write", wantCode: 405, wantMsg: "uses POST"},
		{name: "gzip", path: "/api/v1/write", headers: map[string]string{"Content-Encoding": "gzip"}, body: okBody, wantCode: 415, wantMsg: `Content-Encoding "gzip": this proxy accepts snappy (remote write 1.0 and 2.0) and zstd`},
		{name: "json", path: "/api/v1/write", headers: map[string]string{"Content-Type": "application/json"}, body: okBody, wantCode: 415, wantMsg: `Content-Type "application/json"`},
		{name: "unknown proto", path: "/api/v1/write", headers: map[string]string{"Content-Type": "application/x-protobuf;proto=io.prometheus.write.v3.Request"}, body: okBody, wantCode: 415,
			wantMsg: `unsupported remote-write message "io.prometheus.write.v3.Request": this proxy accepts prometheus.WriteRequest (remote write 1.0) and io.prometheus.write.v2.Request (remote write 2.0)`},
		{name: "rw1 proto param", path: "/api/v1/write", headers: map[string]string{"Content-Type": "application/x-protobuf;proto=prometheus.WriteRequest"}, body: okBody, wantCode: 204, wantProcess: true},
		{name: "corrupt snappy", path: "/api/v1/write", body: []byte("not snappy at all"), wantCode: 400, wantMsg: "snappy"},
		{name: "framed snappy", path: "/api/v1/write", body: framed(t), wantCode: 400, wantMsg: "framed (stream) format"},
		{name: "bad protobuf", path: "/api/v1/write", body: snappy.Encode(nil, []byte{0xff, 0xff}), wantCode: 400, wantMsg: "invalid protobuf"},
		{name: "invalid series", path: "/api/v1/write", body: snappy.Encode(nil, marshal(t, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{series("job", "a")}})), wantCode: 400, wantMsg: "__name__"},
		{name: "compressed too large", path: "/api/v1/write", body: bytes.Repeat([]byte{1}, 70_000), wantCode: 413, wantMsg: "max_request_bytes"},
		{name: "decompression bomb rejected from header", path: "/api/v1/write", body: bomb, wantCode: 413, wantMsg: "max_decoded_bytes"},
		{name: "upstream rejected", path: "/api/v1/write", body: okBody, procErr: &StatusError{Code: 400, Msg: "upstream said no"}, wantCode: 400, wantMsg: "upstream said no", wantProcess: true},
		{name: "upstream down", path: "/api/v1/write", body: okBody, procErr: &StatusError{Code: 503, Msg: "unreachable"}, wantCode: 503, wantProcess: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			processed, tenant := false, ""
			h := NewHandler(HandlerConfig{MaxRequestBytes: 64 << 10, MaxDecodedBytes: 512 << 10, Logger: quiet}, processorFunc(
				func(_ context.Context, req *Request, pt string) error {
					processed, tenant = true, pt
					return tc.procErr
				}))
			method := tc.method
			if method == "" {
				method = http.MethodPost
			}
			r := httptest.NewRequest(method, tc.path, bytes.NewReader(tc.body))
			r.Header.Set("Content-Encoding", "snappy")
			r.Header.Set("Content-Type", "application/x-protobuf")
			for k, v := range tc.headers {
				r.Header.Set(k, v)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tc.wantCode || !strings.Contains(w.Body.String(), tc.wantMsg) {
				t.Errorf("got %d %q, want %d containing %q", w.Code, w.Body.String(), tc.wantCode, tc.wantMsg)
			}
			if processed != tc.wantProcess || tenant != tc.wantTenant {
				t.Errorf("processed=%v tenant=%q, want %v %q", processed, tenant, tc.wantProcess, tc.wantTenant)
			}
		})
	}
}

func framed(t testing.TB) []byte {
	var buf bytes.Buffer
	w := snappy.NewBufferedWriter(&buf)
	w.Write(marshal(t, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{series("__name__", "up")}}))
	w.Close()
	return buf.Bytes()
}

func TestHandlerPassesRetryAfter(t *testing.T) {
	h := NewHandler(HandlerConfig{MaxRequestBytes: 1 << 20, MaxDecodedBytes: 1 << 20, Logger: quiet}, processorFunc(
		func(context.Context, *Request, string) error {
			return &StatusError{Code: 429, RetryAfter: "7", Msg: "slow down"}
		}))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/api/v1/write", bytes.NewReader(validBody(t))))
	if w.Code != 429 || w.Header().Get("Retry-After") != "7" {
		t.Errorf("got %d Retry-After %q", w.Code, w.Header().Get("Retry-After"))
	}
}

// The Content-Types producers send are recognised without allocating; any
// other spelling goes through mime.ParseMediaType and means the same.
func TestCheckContentType(t *testing.T) {
	for _, tc := range []struct {
		ct      string
		rw2     bool
		wantErr string
	}{
		{"", false, ""},
		{"application/x-protobuf", false, ""},
		{ContentTypeRW1, false, ""},
		{ContentTypeRW2, true, ""},
		{"application/x-protobuf; proto=prometheus.WriteRequest", false, ""},
		{"Application/X-Protobuf; proto=io.prometheus.write.v2.Request", true, ""},
		{"application/x-protobuf;proto=io.prometheus.write.v3.Request", false, `unsupported remote-write message "io.prometheus.write.v3.Request"`},
		{"application/json", false, `unsupported Content-Type "application/json"`},
		{"application/x-protobuf;proto", false, "unsupported Content-Type"},
	} {
		rw2, err := checkContentType(tc.ct)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%q: err %v, want one containing %q", tc.ct, err, tc.wantErr)
			}
			continue
		}
		if err != nil || rw2 != tc.rw2 {
			t.Errorf("%q: rw2 %v, err %v; want rw2 %v", tc.ct, rw2, err, tc.rw2)
		}
	}
	for _, ct := range []string{"application/x-protobuf", ContentTypeRW1, ContentTypeRW2} {
		if n := testing.AllocsPerRun(100, func() { _, _ = checkContentType(ct) }); n != 0 {
			t.Errorf("%q: %.0f allocations per call, want 0", ct, n)
		}
	}
}
