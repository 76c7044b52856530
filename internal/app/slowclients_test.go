package app

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"
)

// slowClient is one attacker connection after another: each sends the
// headers of a write request announcing a bodyLen-byte body, then one byte
// every gap; when the server answers or closes, it connects again. It
// returns once ctx is done, its connection closed.
func slowClient(ctx context.Context, addr string, bodyLen int, gap time.Duration) {
	for ctx.Err() == nil {
		conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
		if err != nil {
			return
		}
		dribble(ctx, conn, bodyLen, gap)
		conn.Close()
	}
}

// dribble sends one slow request on conn until the server answers or
// closes, or ctx is done.
func dribble(ctx context.Context, conn net.Conn, bodyLen int, gap time.Duration) {
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	fmt.Fprintf(conn, "POST /api/v1/write HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"+
		"Content-Encoding: snappy\r\nContent-Length: %d\r\n\r\n", bodyLen)
	answered := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, conn) // until the server answers and closes, or ctx closes conn
		close(answered)
	}()
	tick := time.NewTicker(gap)
	defer tick.Stop()
	for range bodyLen {
		if _, err := conn.Write([]byte{0}); err != nil {
			break
		}
		select {
		case <-answered:
			return
		case <-ctx.Done():
		case <-tick.C:
			continue
		}
		break
	}
	conn.Close()
	<-answered
}

// countArrivals counts the requests that reach next (their headers read).
func countArrivals(n *atomic.Int64, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		next.ServeHTTP(w, r)
	})
}

// TestSlowClientsDoNotStarveProducers: with the default limits, 100
// connections that send their headers and then one body byte every 2 s
// (reconnecting whenever the server answers or closes) do not starve a
// well-behaved producer: sending 100 requests at 25 per second alongside,
// it gets at least 99% 2xx. A request takes its concurrency slot only once
// its body is read, so the slow bodies hold none.
func TestSlowClientsDoNotStarveProducers(t *testing.T) {
	_, upSrv := newUpstream(t)
	cfg := writeConfig(t, "writer:\n  datasource_url: "+upSrv.URL+"\n")
	p, err := New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.client.Close)
	var arrivals atomic.Int64
	srv := httptest.NewUnstartedServer(countArrivals(&arrivals, p.handler))
	srv.Config.ReadHeaderTimeout, srv.Config.ReadTimeout = cfg.Server.ReadHeaderTimeout, cfg.Server.ReadTimeout
	srv.Start()
	t.Cleanup(srv.Close)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var attackers sync.WaitGroup
	for range 100 {
		attackers.Go(func() { slowClient(ctx, srv.Listener.Addr().String(), 1000, 2*time.Second) })
	}
	defer attackers.Wait()
	defer cancel()
	waitFor(t, "100 slow requests at the proxy", func() bool { return arrivals.Load() >= 100 })

	const requests = 100
	statuses := map[int]int{}
	producer := &http.Client{Timeout: 5 * time.Second}
	tick := time.NewTicker(time.Second / 25)
	defer tick.Stop()
	for range requests {
		<-tick.C
		resp, err := producer.Do(newWriteRequest(t, srv.URL+"/api/v1/write", shapeRequest(10)))
		if err != nil {
			t.Fatalf("producer: %v", err)
		}
		resp.Body.Close()
		statuses[resp.StatusCode]++
	}
	ok := 0
	for code, n := range statuses {
		if code >= 200 && code < 300 {
			ok += n
		}
	}
	t.Logf("producer answers %v; %d requests reached the proxy", statuses, arrivals.Load())
	if ok*100 < requests*99 {
		t.Errorf("producer got %d of %d requests 2xx (%v) next to 100 slow clients, want at least 99%%", ok, requests, statuses)
	}
}

// TestSlowBodyCutWith408: a body that arrives slower than
// limits.min_body_rate once limits.body_rate_grace has passed gets 408
// naming the limit and the connection is closed, with a Content-Length
// (cut at grace + length/rate) or chunked (cut at grace + received/rate);
// a body sent in pauses but on average faster than the rate is taken.
func TestSlowBodyCutWith408(t *testing.T) {
	up, upSrv := newUpstream(t)
	addr := freeAddr(t)
	cfg := writeConfig(t, fmt.Sprintf("listen: %s\nwriter:\n  datasource_url: %s\n"+
		"limits:\n  min_body_rate: 1KiB\n  body_rate_grace: 1s\n", addr, upSrv.URL))
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- Serve(ctx, cfg, slog.New(slog.DiscardHandler)) }()
	defer func() { cancel(); <-served }()
	waitFor(t, "the listener", func() bool { return accepting(addr) })

	for _, tc := range []struct {
		name, framing string
		cutAfter      time.Duration // at least
	}{
		{"content-length", "Content-Length: 2048\r\n", 3 * time.Second}, // 1 s + 2048 B / 1 KiB/s
		{"chunked", "Transfer-Encoding: chunked\r\n", time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			status, body := slowPost(t, addr, tc.framing, 5*time.Second)
			took := time.Since(start)
			if status != "408 Request Timeout" || !strings.Contains(body, "request body arrived slower than limits.min_body_rate (1024 bytes/s") {
				t.Errorf("got %q %q, want 408 naming limits.min_body_rate", status, body)
			}
			if took < tc.cutAfter || took > tc.cutAfter+2*time.Second {
				t.Errorf("cut after %s, want %s to %s", took, tc.cutAfter, tc.cutAfter+2*time.Second)
			}
		})
	}
	if n := len(up.forwarded()); n != 0 {
		t.Errorf("upstream received %v from the slow bodies", up.forwarded())
	}
	t.Run("paused but fast enough", func(t *testing.T) {
		if status := pausedPost(t, addr, modelOutputs(400, 10)); status != http.StatusNoContent {
			t.Errorf("got %d, want 204", status)
		}
	})
}

// slowPost sends a write whose body comes 10 bytes per second in the given
// framing (chunked bodies in 10-byte chunks) and returns the status line
// and the body of the answer, which must come within timeout.
func slowPost(t *testing.T, addr, framing string, timeout time.Duration) (string, string) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(timeout))
	fmt.Fprintf(conn, "POST /api/v1/write HTTP/1.1\r\nHost: x\r\nContent-Encoding: snappy\r\n%s\r\n", framing)
	go func() {
		piece := strings.Repeat("x", 10)
		if strings.Contains(framing, "chunked") {
			piece = "a\r\n" + piece + "\r\n"
		}
		for {
			if _, err := io.WriteString(conn, piece); err != nil {
				return
			}
			time.Sleep(time.Second) // the client's pace, not a wait for the server
		}
	}()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if !resp.Close {
		t.Error("the 408 keeps the connection open; want Connection: close")
	}
	return resp.Status, string(body)
}

// pausedReader returns half of its data, pauses, then the rest.
type pausedReader struct {
	data   []byte
	pause  time.Duration
	paused bool
}

func (p *pausedReader) Read(b []byte) (int, error) {
	if len(p.data) == 0 {
		return 0, io.EOF
	}
	if p.paused {
		n := copy(b, p.data)
		p.data = p.data[n:]
		return n, nil
	}
	n := copy(b, p.data[:len(p.data)/2])
	p.data = p.data[n:]
	p.paused = true
	time.Sleep(p.pause) // the client's pace
	return n, nil
}

// pausedPost sends wr with a Content-Length, half of the body, a pause of
// 1.5 s (past the 1 s grace), then the rest, and returns the status.
func pausedPost(t *testing.T, addr string, wr *prompb.WriteRequest) int {
	t.Helper()
	body := newWriteRequest(t, "http://"+addr+"/api/v1/write", wr)
	data, _ := io.ReadAll(body.Body)
	if len(data) < 1500 {
		t.Fatalf("body of %d bytes: too short to stay above 1 KiB/s past the pause", len(data))
	}
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/api/v1/write", &pausedReader{data: data, pause: 1500 * time.Millisecond})
	req.ContentLength = int64(len(data))
	req.Header = body.Header
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
