package remotewrite

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
)

// fakeUpstream is a remote-write receiver with configurable support of the
// VictoriaMetrics protocol. It decodes what it accepts, so tests can compare
// the payload that arrived with the one sent.
type fakeUpstream struct {
	// handshake answers `?get_vm_proto_version=1`; "" treats it as an
	// ordinary (empty) write, as receivers without the protocol do.
	handshake string
	// handshakeCode is the status of the handshake answer (default 200).
	handshakeCode int
	// zstdCode answers zstd bodies (0: decode and accept).
	zstdCode int
	// snappyCode answers snappy bodies (0: decode and accept).
	snappyCode int

	mu       sync.Mutex
	log      []string // "probe", "zstd" or "snappy" per request, in order
	payloads [][]byte // decoded bodies accepted
}

func (f *fakeUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.URL.Query().Get("get_vm_proto_version") != "" && f.handshake != "" {
		f.log = append(f.log, "probe")
		code := f.handshakeCode
		if code == 0 {
			code = http.StatusOK
		}
		w.WriteHeader(code)
		io.WriteString(w, f.handshake)
		return
	}
	enc := r.Header.Get("Content-Encoding")
	if r.URL.Query().Get("get_vm_proto_version") != "" {
		enc = "probe"
	}
	f.log = append(f.log, enc)
	code, raw, err := f.decode(enc, body, r.Header)
	if err != nil {
		http.Error(w, err.Error(), code)
		return
	}
	if code != 0 {
		http.Error(w, "refused by test", code)
		return
	}
	if raw != nil {
		f.payloads = append(f.payloads, raw)
	}
	w.WriteHeader(http.StatusNoContent)
}

func (f *fakeUpstream) decode(enc string, body []byte, h http.Header) (int, []byte, error) {
	switch enc {
	case "probe":
		return 0, nil, nil
	case "zstd":
		if f.zstdCode != 0 {
			return f.zstdCode, nil, nil
		}
		if h.Get("X-VictoriaMetrics-Remote-Write-Version") != "1" {
			return http.StatusBadRequest, nil, io.ErrUnexpectedEOF
		}
		dec, _ := zstd.NewReader(nil)
		defer dec.Close()
		return decoded(dec.DecodeAll(body, nil))
	default:
		if f.snappyCode != 0 {
			return f.snappyCode, nil, nil
		}
		return decoded(s2.Decode(nil, body))
	}
}

// decoded answers 400 when a body does not decompress.
func decoded(raw []byte, err error) (int, []byte, error) {
	if err != nil {
		return http.StatusBadRequest, nil, err
	}
	return 0, raw, nil
}

// result returns the request log and the accepted payloads so far.
func (f *fakeUpstream) result() (string, [][]byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return strings.Join(f.log, ","), append([][]byte(nil), f.payloads...)
}

func (f *fakeUpstream) reset() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.log, f.payloads = nil, nil
}

// snappyWorkload is the guide's standard request, snappy-compressed, and its raw bytes.
func snappyWorkload(t testing.TB) (compressed, raw []byte) {
	raw = marshal(t, anomalyWorkload())
	return s2.EncodeSnappy(nil, raw), raw
}

func TestZstdNegotiation(t *testing.T) {
	tests := []struct {
		name     string
		mode     Compression
		upstream *fakeUpstream
		// wantLog is what the upstream sees over two sends.
		wantLog string
		// wantZstd is scoreproxy_upstream_zstd after the sends.
		wantZstd bool
	}{
		{"snappy mode never asks", CompressionSnappy, &fakeUpstream{handshake: "1"}, "snappy,snappy", false},
		{"auto: VictoriaMetrics answers the handshake", CompressionAuto, &fakeUpstream{handshake: "1"}, "probe,zstd,zstd", true},
		{"auto: handshake version 2 is fine", CompressionAuto, &fakeUpstream{handshake: "2\n"}, "probe,zstd,zstd", true},
		{"auto: receiver without the protocol", CompressionAuto, &fakeUpstream{}, "probe,snappy,snappy", false},
		{"auto: handshake answered 404", CompressionAuto, &fakeUpstream{handshake: "not found", handshakeCode: 404}, "probe,snappy,snappy", false},
		{"auto: says 1 but rejects zstd (400)", CompressionAuto, &fakeUpstream{handshake: "1", zstdCode: 400},
			"probe,zstd,snappy,snappy", false},
		{"zstd: VictoriaMetrics", CompressionZstd, &fakeUpstream{handshake: "1"}, "zstd,zstd", true},
		{"zstd: old VictoriaMetrics answers 400", CompressionZstd, &fakeUpstream{zstdCode: 400}, "zstd,snappy,snappy", false},
		{"zstd: Prometheus-like answers 415", CompressionZstd, &fakeUpstream{zstdCode: 415}, "zstd,snappy,snappy", false},
	}
	compressed, raw := snappyWorkload(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := tt.upstream
			srv := httptest.NewServer(up)
			defer srv.Close()
			c := newTestClient(t, ClientConfig{Compression: tt.mode, Logger: quiet}, defaultRecheck)
			url := srv.URL + "/api/v1/write"
			for i := 0; i < 2; i++ {
				if res := c.Send(context.Background(), url, compressed, BatchStats{Series: 1000, Samples: 2000}); !res.OK() {
					t.Fatalf("send %d: %+v", i, res)
				}
			}
			log, payloads := up.result()
			if log != tt.wantLog {
				t.Errorf("upstream saw %q, want %q", log, tt.wantLog)
			}
			if len(payloads) != 2 {
				t.Fatalf("upstream accepted %d payloads, want 2", len(payloads))
			}
			for i, p := range payloads {
				if !bytes.Equal(p, raw) {
					t.Errorf("payload %d differs from the WriteRequest sent (%d vs %d bytes)", i, len(p), len(raw))
				}
			}
			if got := c.zstdActive(url); got != tt.wantZstd {
				t.Errorf("zstd active %v, want %v", got, tt.wantZstd)
			}
		})
	}
}

// zstdActive reports the negotiated protocol of url (false in snappy mode).
func (c *Client) zstdActive(url string) bool {
	if c.zstd == nil {
		return false
	}
	return zstdState(c.zstd.endpoint(url).state.Load()) == zstdYes
}

func TestZstdRecheck(t *testing.T) {
	compressed, _ := snappyWorkload(t)
	tests := []struct {
		name     string
		mode     Compression
		upstream *fakeUpstream
		// before is what the upstream sees over two sends; after, over one
		// send once the re-check is due, the upstream having been upgraded.
		before, after string
		// recheck is when the endpoint is checked again.
		recheck time.Duration
	}{
		{"zstd mode tries zstd again", CompressionZstd, &fakeUpstream{zstdCode: 400}, "zstd,snappy,snappy", "zstd", zstdRecheckAfterRefusal},
		{"auto mode asks again", CompressionAuto, &fakeUpstream{}, "probe,snappy,snappy", "probe,zstd", zstdRecheckAfterRefusal},
		{"auto mode asks soon after a failed handshake", CompressionAuto,
			&fakeUpstream{handshake: "overloaded", handshakeCode: 503}, "probe,snappy,snappy", "probe,zstd", zstdRecheckAfterError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(tt.upstream)
			defer srv.Close()
			c := newTestClient(t, ClientConfig{Compression: tt.mode, Logger: quiet}, defaultRecheck)
			url := srv.URL + "/api/v1/write"
			send := func() {
				t.Helper()
				if res := c.Send(context.Background(), url, compressed, BatchStats{}); !res.OK() {
					t.Fatalf("send: %+v", res)
				}
			}
			send()
			send()
			if log, _ := tt.upstream.result(); log != tt.before {
				t.Errorf("before the re-check the upstream saw %q, want %q", log, tt.before)
			}
			ep := c.zstd.endpoint(url)
			if wait := time.Until(time.Unix(0, ep.retryAt.Load())); wait > tt.recheck || wait < tt.recheck-time.Minute/2 {
				t.Errorf("re-check in %s, want about %s", wait, tt.recheck)
			}
			tt.upstream.mu.Lock()
			tt.upstream.zstdCode, tt.upstream.handshake, tt.upstream.handshakeCode = 0, "1", 0 // upgraded
			tt.upstream.mu.Unlock()
			tt.upstream.reset()
			ep.retryAt.Store(time.Now().Add(-time.Second).UnixNano()) // the re-check is due
			send()
			if log, _ := tt.upstream.result(); log != tt.after {
				t.Errorf("after the re-check the upstream saw %q, want %q", log, tt.after)
			}
		})
	}
}

// A 400 that snappy gets too is about the data, not the encoding: the
// endpoint keeps zstd and the caller gets the 400.
func TestZstdDataRejectedInBothEncodings(t *testing.T) {
	up := &fakeUpstream{zstdCode: 400, snappyCode: 400}
	srv := httptest.NewServer(up)
	defer srv.Close()
	c := newTestClient(t, ClientConfig{Compression: CompressionZstd, Logger: quiet}, defaultRecheck)
	compressed, _ := snappyWorkload(t)
	url := srv.URL + "/api/v1/write"
	res := c.Send(context.Background(), url, compressed, BatchStats{})
	if res.StatusCode != 400 || !strings.Contains(res.Message, "refused by test") {
		t.Errorf("result %+v, want the upstream's 400", res)
	}
	if log, _ := up.result(); log != "zstd,snappy" {
		t.Errorf("upstream saw %q, want zstd then snappy", log)
	}
	if !c.zstdActive(url) {
		t.Error("endpoint fell back to snappy although snappy was rejected too")
	}
	if got := metricsText(); !strings.Contains(got, metricZstdFallbacks+`{url="`+url+`"} 1`) {
		t.Errorf("fallback counter missing from:\n%s", grepLines(got, metricZstdFallbacks))
	}
}

// The transport error of a failed handshake is not a refusal: the request
// still goes out (as snappy) and the endpoint is asked again soon.
func TestZstdHandshakeTransportError(t *testing.T) {
	c := newTestClient(t, ClientConfig{Compression: CompressionAuto, Timeout: time.Second, Logger: quiet}, defaultRecheck)
	url := closedURL(t) + "/api/v1/write"
	res := c.Send(context.Background(), url, []byte("x"), BatchStats{})
	if res.StatusCode != 0 {
		t.Fatalf("result %+v, want a transport error", res)
	}
	ep := c.zstd.endpoint(url)
	if zstdState(ep.state.Load()) != zstdNo {
		t.Fatalf("state %d, want snappy meanwhile", ep.state.Load())
	}
	if wait := time.Until(time.Unix(0, ep.retryAt.Load())); wait > zstdRecheckAfterError {
		t.Errorf("re-check in %s, want at most %s", wait, zstdRecheckAfterError)
	}
}

func TestParseCompression(t *testing.T) {
	for in, want := range map[string]Compression{"": CompressionSnappy, "snappy": CompressionSnappy,
		"auto": CompressionAuto, "zstd": CompressionZstd} {
		if got, err := ParseCompression(in); err != nil || got != want {
			t.Errorf("ParseCompression(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := ParseCompression("gzip"); err == nil || !strings.Contains(err.Error(), Compressions) {
		t.Errorf("ParseCompression(gzip) error %v, want one listing %s", err, Compressions)
	}
	if _, err := NewClient(ClientConfig{Compression: "lz4"}); err == nil {
		t.Error("NewClient accepted compression lz4")
	}
}

// grepLines keeps the lines of text containing s, for failure messages.
func grepLines(text, s string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// Concurrent first sends: one of them asks, the others go out as snappy
// meanwhile; every payload arrives intact and the handshake happens once.
func TestZstdConcurrentSends(t *testing.T) {
	up := &fakeUpstream{handshake: "1"}
	srv := httptest.NewServer(up)
	defer srv.Close()
	c := newTestClient(t, ClientConfig{Compression: CompressionAuto, Logger: quiet}, defaultRecheck)
	compressed, raw := snappyWorkload(t)
	url := srv.URL + "/api/v1/write"
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Go(func() {
			for i := 0; i < 5; i++ {
				if res := c.Send(context.Background(), url, compressed, BatchStats{}); !res.OK() {
					t.Errorf("send: %+v", res)
				}
			}
		})
	}
	wg.Wait()
	log, payloads := up.result()
	if n := strings.Count(log, "probe"); n != 1 {
		t.Errorf("%d handshakes, want 1 (log %s)", n, log)
	}
	if len(payloads) != 40 {
		t.Fatalf("%d payloads, want 40", len(payloads))
	}
	for i, p := range payloads {
		if !bytes.Equal(p, raw) {
			t.Fatalf("payload %d differs from the one sent", i)
		}
	}
	if !strings.Contains(log, "zstd") || !c.zstdActive(url) {
		t.Errorf("no zstd after the handshake said 1 (log %s)", log)
	}
}
