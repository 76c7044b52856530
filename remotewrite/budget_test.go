package remotewrite

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/golang/snappy"
	"github.com/klauspost/compress/gzip"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
)

// zstdZeros is a zstd frame without a content size decoding to size zero
// bytes (a multiple of 128 KiB), 4 bytes per 128 KiB: RLE blocks.
func zstdZeros(size int) []byte {
	const block = 128 << 10
	frame := []byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, 13 << 3} // no content size, 8 MiB window
	for n := 0; n < size; n += block {
		last := 0
		if n+block >= size {
			last = 1
		}
		h := last | 1<<1 | block<<3
		frame = append(frame, byte(h), byte(h>>8), byte(h>>16), 0)
	}
	return frame
}

// amplifiedRW2 is a snappy RW2 body whose series each reference one
// valueLen-byte symbol from labels labels: about series*labels*valueLen
// bytes as RW1.
func amplifiedRW2(t testing.TB, series, labels, valueLen int) []byte {
	symbols := []string{"", "__name__", "amplified", strings.Repeat("v", valueLen)}
	refs := []uint32{1, 2}
	for i := range labels {
		symbols = append(symbols, "l"+strconv.Itoa(i))
		refs = append(refs, uint32(len(symbols)-1), 3)
	}
	req := &writev2.Request{Symbols: symbols}
	for i := range series {
		req.Timeseries = append(req.Timeseries, writev2.TimeSeries{LabelsRefs: refs, Samples: []writev2.Sample{{Value: float64(i), Timestamp: 1}}})
	}
	return snappy.Encode(nil, marshalRW2(t, req))
}

func gzipped(t testing.TB, raw []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(raw)
	zw.Close()
	return buf.Bytes()
}

// budgetCase is one request to a handler with a byte budget.
type budgetCase struct {
	name, path, contentType, encoding string
	body                              []byte
	wantCode                          int
	wantMsg                           string
	maxAlloc                          uint64 // bytes the request may allocate at most; 0: unchecked
}

func (c budgetCase) request() *http.Request {
	path := c.path
	if path == "" {
		path = "/api/v1/write"
	}
	r := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(c.body))
	if c.contentType != "" {
		r.Header.Set("Content-Type", c.contentType)
	}
	if c.encoding != "" {
		r.Header.Set("Content-Encoding", c.encoding)
	}
	return r
}

// allocated runs f and returns the bytes it allocated.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestByteBudgetBoundsHostileBodies: with a budget of 16 MiB and a decoded
// limit of 128 MiB, a zstd frame of 1 GiB of zeros without a content size,
// a remote write 2.0 body of a few KB that transcodes to 64 MiB and a gzip
// import of 64 MiB of blanks are refused (413) having allocated at most a
// few MiB (the budget, the zstd stream decoder's window), not what they
// expand to; valid bodies of every kind pass; and after each request the
// budget is back to zero. The same handler takes a valid zstd stream
// after the bomb, on the stream decoder the bomb used.
func TestByteBudgetBoundsHostileBodies(t *testing.T) {
	budget := NewByteBudget(16 << 20)
	h := NewHandler(HandlerConfig{MaxRequestBytes: 1 << 20, MaxDecodedBytes: 128 << 20, Budget: budget, Logger: quiet},
		processorFunc(func(context.Context, *Request, string) error { return nil }))
	rw1 := marshal(t, sampleRequest())
	rw2 := marshalRW2(t, sampleRW2())
	importLine := `{"metric":{"__name__":"a"},"values":[1],"timestamps":[1]}` + "\n"
	cases := []budgetCase{
		{name: "rw1 snappy", body: snappy.Encode(nil, rw1), wantCode: 204},
		{name: "rw2 snappy", contentType: ContentTypeRW2, body: snappy.Encode(nil, rw2), wantCode: 204},
		{name: "rw1 zstd", encoding: "zstd", body: zstdEncode(t, rw1), wantCode: 204},
		{name: "zstd bomb without content size", encoding: "zstd", body: zstdZeros(1 << 30), wantCode: 413,
			wantMsg: "decoded zstd request exceeds limits.max_decoded_bytes (134217728)", maxAlloc: 12 << 20},
		{name: "rw1 zstd stream after the bomb", encoding: "zstd", body: zstdStream(t, rw1), wantCode: 204},
		{name: "rw2 amplifier", contentType: ContentTypeRW2, body: amplifiedRW2(t, 512, 32, 4096), wantCode: 413,
			wantMsg: "request needs more than limits.max_inflight_bytes (16777216 bytes)", maxAlloc: 20 << 20},
		{name: "gzip import bomb", path: "/api/v1/import", encoding: "gzip", body: gzipped(t, bytes.Repeat([]byte(" "), 64<<20)), wantCode: 413,
			wantMsg: "request needs more than limits.max_inflight_bytes", maxAlloc: 20 << 20},
		{name: "gzip import", path: "/api/v1/import", encoding: "gzip", body: gzipped(t, []byte(importLine)), wantCode: 204},
		{name: "corrupt zstd", encoding: "zstd", body: []byte("not zstd"), wantCode: 400},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			r := c.request()
			n := allocated(func() { h.ServeHTTP(w, r) })
			if w.Code != c.wantCode || !strings.Contains(w.Body.String(), c.wantMsg) {
				t.Errorf("got %d %q, want %d containing %q", w.Code, w.Body.String(), c.wantCode, c.wantMsg)
			}
			if c.maxAlloc > 0 && n > c.maxAlloc {
				t.Errorf("allocated %d MiB, want at most %d MiB", n>>20, c.maxAlloc>>20)
			}
			if used := budget.Used(); used != 0 {
				t.Errorf("budget holds %d bytes after the request, want 0", used)
			}
		})
	}
}

// TestByteBudgetBusy: a request that finds the budget held by others gets
// 429 with Retry-After naming limits.max_inflight_bytes, one that alone
// needs more than the budget gets 413 (retrying cannot help), and once the
// others are done the first passes.
func TestByteBudgetBusy(t *testing.T) {
	budget := NewByteBudget(8 << 20)
	h := NewHandler(HandlerConfig{MaxRequestBytes: 1 << 20, MaxDecodedBytes: 16 << 20, Budget: budget, Logger: quiet},
		processorFunc(func(context.Context, *Request, string) error { return nil }))
	big := snappy.Encode(nil, marshal(t, sampleRequest())) // decodes to less than 1 MiB
	if !budget.take(budget.Max() - 1<<10) {                // others hold all but 1 KiB
		t.Fatal("cannot take the budget")
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, budgetCase{body: big}.request())
	if w.Code != 429 || w.Header().Get("Retry-After") != "1" ||
		!strings.Contains(w.Body.String(), "the requests in progress hold limits.max_inflight_bytes (8388608 bytes) of request data in memory; retry later") {
		t.Errorf("with the budget held: %d %q (Retry-After %q), want 429 naming limits.max_inflight_bytes", w.Code, w.Body.String(), w.Header().Get("Retry-After"))
	}
	budget.used.Add(-(budget.Max() - 1<<10))
	w = httptest.NewRecorder()
	h.ServeHTTP(w, budgetCase{body: big}.request())
	if w.Code != 204 {
		t.Errorf("with the budget free: %d %q, want 204", w.Code, w.Body.String())
	}
	w = httptest.NewRecorder()
	h.ServeHTTP(w, budgetCase{body: snappy.Encode(nil, make([]byte, 12<<20))}.request())
	if w.Code != 413 || !strings.Contains(w.Body.String(), "request needs more than limits.max_inflight_bytes (8388608 bytes)") {
		t.Errorf("a request larger than the budget: %d %q, want 413", w.Code, w.Body.String())
	}
	if used := budget.Used(); used != 0 {
		t.Errorf("budget holds %d bytes after the requests, want 0", used)
	}
}

// TestBodyBuffersFollowWhatArrived: a body buffer starts at the smaller of
// the Content-Length and 64 KiB and doubles as the body arrives, up to the
// Content-Length, so a request announcing 1 MiB that sent 10 KB holds a
// small buffer; buffers go back to their class pool.
func TestBodyBuffersFollowWhatArrived(t *testing.T) {
	budget := NewByteBudget(64 << 20)
	rd := &bodyReader{pools: &bodyPools{}, want: 1 << 20}
	rd.hold.start(budget)
	dst, err := rd.grow(nil, 32<<20)
	if err != nil || cap(dst) != firstBodyBuffer || budget.Used() != firstBodyBuffer {
		t.Fatalf("first buffer: cap %d, budget %d, %v; want %d reserved", cap(dst), budget.Used(), err, firstBodyBuffer)
	}
	for cap(dst) < 1<<20 {
		before := cap(dst)
		dst = append(dst, make([]byte, cap(dst)-len(dst))...)
		if dst, err = rd.grow(dst, 32<<20); err != nil || cap(dst) != min(2*before, 1<<20) {
			t.Fatalf("grown from %d to %d (%v), want %d", before, cap(dst), err, min(2*before, 1<<20))
		}
	}
	if budget.Used() != 1<<20 {
		t.Errorf("budget holds %d for a 1 MiB buffer, want %d (the smaller buffers went back to their pools)", budget.Used(), 1<<20)
	}
	rd.done()
	if budget.Used() != 0 || rd.buf != nil {
		t.Errorf("after done: budget %d, buffer %v; want 0 and none", budget.Used(), rd.buf != nil)
	}
	small := &bodyReader{pools: &bodyPools{}, want: 3000}
	if dst, _ := small.grow(nil, 32<<20); cap(dst) != 4<<10 {
		t.Errorf("a 3000-byte body starts with %d bytes, want 4096", cap(dst))
	}
}
