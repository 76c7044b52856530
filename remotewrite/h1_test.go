package remotewrite

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// scripted is a raw TCP upstream on 127.0.0.1 that reads each HTTP/1.1
// request (head and Content-Length body) and writes the next answer of its
// script verbatim, so tests can send what net/http's server never would.
// An answer of "" closes the connection without a byte; "CLOSE-AFTER:"
// before an answer closes the connection after writing it.
type scripted struct {
	l       net.Listener
	mu      sync.Mutex
	answers []string
	next    int
	conns   atomic.Int32 // connections accepted
	bodies  []string     // request bodies received, in order
}

func newScripted(t *testing.T, answers ...string) *scripted {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &scripted{l: l, answers: answers}
	go s.serve()
	t.Cleanup(func() { l.Close() })
	return s
}

func (s *scripted) url() string { return "http://" + s.l.Addr().String() + "/api/v1/write" }

func (s *scripted) serve() {
	for {
		conn, err := s.l.Accept()
		if err != nil {
			return
		}
		s.conns.Add(1)
		go s.serveConn(conn)
	}
}

func (s *scripted) serveConn(conn net.Conn) {
	defer conn.Close()
	br := bufio.NewReader(conn)
	for {
		body, ok := readTestRequest(br)
		if !ok {
			return
		}
		s.mu.Lock()
		s.bodies = append(s.bodies, body)
		answer := "HTTP/1.1 204 No Content\r\n\r\n"
		if s.next < len(s.answers) {
			answer = s.answers[s.next]
		}
		s.next++
		s.mu.Unlock()
		closeAfter := strings.HasPrefix(answer, "CLOSE-AFTER:")
		answer = strings.TrimPrefix(answer, "CLOSE-AFTER:")
		if answer == "" {
			return
		}
		if _, err := io.WriteString(conn, answer); err != nil || closeAfter {
			return
		}
	}
}

// readTestRequest reads one request and returns its body.
func readTestRequest(br *bufio.Reader) (string, bool) {
	n := 0
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return "", false
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			break
		}
		if v, ok := strings.CutPrefix(strings.ToLower(line), "content-length: "); ok {
			n, _ = strconv.Atoi(v)
		}
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(br, body); err != nil {
		return "", false
	}
	return string(body), true
}

func TestH1ReadsEveryResponseFraming(t *testing.T) {
	tests := []struct {
		name, answer string
		wantCode     int
		wantMsg      string
		wantRA       string
		reuse        bool // the next request goes over the same connection
	}{
		{"204", "HTTP/1.1 204 No Content\r\n\r\n", 204, "", "", true},
		{"200 with a body", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", 200, "", "", true},
		{"400 with a message", "HTTP/1.1 400 Bad Request\r\ncontent-length: 13\r\n\r\n bad sample \n", 400, "bad sample", "", true},
		{"429 with Retry-After", "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 7\r\nContent-Length: 0\r\n\r\n", 429, "", "7", true},
		{"chunked error", "HTTP/1.1 500 Internal Server Error\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nstora\r\n7\r\nge full\r\n0\r\nX-Trailer: 1\r\n\r\n", 500, "storage full", "", true},
		{"informational first", "HTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n", 204, "", "", true},
		{"Connection: close", "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n", 204, "", "", false},
		{"HTTP/1.0", "HTTP/1.0 204 No Content\r\n\r\n", 204, "", "", false},
		{"body until close", "CLOSE-AFTER:HTTP/1.1 503 Service Unavailable\r\n\r\nbusy", 503, "busy", "", false},
		{"folded header line ignored", "HTTP/1.1 204 No Content\r\nX-Long: a\r\n b\r\n\r\n", 204, "", "", true},
		{"error body longer than kept", "HTTP/1.1 400 Bad Request\r\nContent-Length: 3000\r\n\r\n" + strings.Repeat("y", 3000), 400, strings.Repeat("y", maxMessage), "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := newScripted(t, tt.answer)
			c := newTestClient(t, ClientConfig{}, defaultRecheck)
			res := c.Send(context.Background(), up.url(), []byte("payload"), BatchStats{})
			if res.StatusCode != tt.wantCode || res.Message != tt.wantMsg || res.RetryAfter != tt.wantRA {
				t.Fatalf("got %d %q Retry-After %q, want %d %q %q", res.StatusCode, res.Message, res.RetryAfter, tt.wantCode, tt.wantMsg, tt.wantRA)
			}
			if res := c.Send(context.Background(), up.url(), []byte("second"), BatchStats{}); res.StatusCode != 204 {
				t.Fatalf("second request: %+v", res)
			}
			wantConns := int32(2)
			if tt.reuse {
				wantConns = 1
			}
			if n := up.conns.Load(); n != wantConns {
				t.Errorf("two requests used %d connections, want %d", n, wantConns)
			}
			if got := strings.Join(up.bodies, ","); got != "payload,second" {
				t.Errorf("upstream received %q", got)
			}
		})
	}
}

func TestH1RejectsMalformedResponses(t *testing.T) {
	tests := []struct{ name, answer, wantMsg string }{
		{"garbage", "hello there\r\n\r\n", "malformed status line"},
		{"bad code", "HTTP/1.1 2x4 OK\r\n\r\n", "malformed status code"},
		{"bad Content-Length", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "invalid Content-Length"},
		{"two Content-Lengths", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", "invalid Content-Length"},
		{"gzip transfer coding", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", "unsupported Transfer-Encoding"},
		{"header without colon", "HTTP/1.1 204 No Content\r\nnonsense\r\n\r\n", "malformed header line"},
		{"switching protocols", "HTTP/1.1 101 Switching Protocols\r\n\r\n", "101"},
		{"line too long", "HTTP/1.1 204 No Content\r\nX: " + strings.Repeat("a", 5000) + "\r\n\r\n", "longer than"},
		{"closed mid-head", "CLOSE-AFTER:HTTP/1.1 204 No Con", "EOF"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := newScripted(t, tt.answer)
			c := newTestClient(t, ClientConfig{}, defaultRecheck)
			res := c.Send(context.Background(), up.url(), []byte("payload"), BatchStats{})
			if res.StatusCode != 0 || !strings.Contains(res.Message, tt.wantMsg) {
				t.Fatalf("got %+v, want status 0 and a message with %q", res, tt.wantMsg)
			}
			// The connection is not reused after a broken answer.
			if res := c.Send(context.Background(), up.url(), []byte("again"), BatchStats{}); res.StatusCode != 204 {
				t.Fatalf("next request: %+v", res)
			}
			if n := up.conns.Load(); n != 2 {
				t.Errorf("%d connections, want 2", n)
			}
		})
	}
}

// TestH1SendsAgainWhenAReusedConnectionWasClosed: an upstream that closes
// an idle keep-alive connection (its idle timeout) must not fail the next
// request, whether the close is seen before the request (peek) or only when
// no answer comes.
func TestH1SendsAgainWhenAReusedConnectionWasClosed(t *testing.T) {
	for _, idle := range []time.Duration{0, h1CheckAfter + 50*time.Millisecond} {
		t.Run(idle.String(), func(t *testing.T) {
			// First answer keeps the connection open on the client's side but
			// the server closes it right after writing.
			up := newScripted(t, "CLOSE-AFTER:HTTP/1.1 204 No Content\r\n\r\n")
			c := newTestClient(t, ClientConfig{}, defaultRecheck)
			if res := c.Send(context.Background(), up.url(), []byte("one"), BatchStats{}); res.StatusCode != 204 {
				t.Fatalf("first: %+v", res)
			}
			time.Sleep(idle + 20*time.Millisecond) // let the FIN arrive
			if res := c.Send(context.Background(), up.url(), []byte("two"), BatchStats{}); res.StatusCode != 204 {
				t.Fatalf("second request after the upstream closed the connection: %+v", res)
			}
			if got := strings.Join(up.bodies, ","); got != "one,two" {
				t.Errorf("upstream received %q, want one,two", got)
			}
		})
	}
}

// TestH1NoSecondTryOnANewConnection: a fresh connection that gets no answer
// is an error, not a loop.
func TestH1NoSecondTryOnANewConnection(t *testing.T) {
	up := newScripted(t, "", "")
	c := newTestClient(t, ClientConfig{}, defaultRecheck)
	res := c.Send(context.Background(), up.url(), []byte("x"), BatchStats{})
	if res.StatusCode != 0 || !strings.Contains(res.Message, "EOF") {
		t.Fatalf("got %+v, want a transport error", res)
	}
	if n := up.conns.Load(); n != 1 {
		t.Errorf("%d connections, want 1", n)
	}
}

func TestH1TimeoutAndCancellation(t *testing.T) {
	hang := make(chan struct{})
	defer close(hang)
	srv := newRecorderFunc(t, func(w http.ResponseWriter, r *http.Request) { <-hang })
	t.Run("timeout", func(t *testing.T) {
		c := newTestClient(t, ClientConfig{Timeout: 100 * time.Millisecond}, defaultRecheck)
		start := time.Now()
		res := c.Send(context.Background(), srv.URL+"/t", []byte("x"), BatchStats{})
		if res.StatusCode != 0 || !strings.Contains(res.Message, "deadline exceeded") || !strings.Contains(res.Message, "100ms") {
			t.Fatalf("got %+v, want a timeout naming the 100ms timeout", res)
		}
		if !strings.Contains(metricsText(), `scoreproxy_upstream_errors_total{url="`+srv.URL+`/t",reason="timeout"} 1`) {
			t.Error("timeout not counted as reason=timeout")
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("took %s", d)
		}
	})
	t.Run("cancelled while waiting", func(t *testing.T) {
		c := newTestClient(t, ClientConfig{Timeout: time.Minute}, defaultRecheck)
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(50*time.Millisecond, cancel)
		res := c.Send(ctx, srv.URL+"/c", []byte("x"), BatchStats{})
		if res.StatusCode != 0 || !strings.Contains(res.Message, "canceled") {
			t.Fatalf("got %+v, want a cancellation", res)
		}
		if !strings.Contains(metricsText(), `scoreproxy_upstream_errors_total{url="`+srv.URL+`/c",reason="canceled"} 1`) {
			t.Error("cancellation not counted as reason=canceled")
		}
	})
}

func newRecorderFunc(t *testing.T, f http.HandlerFunc) *struct{ URL string } {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: f}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return &struct{ URL string }{"http://" + l.Addr().String()}
}

// TestH1LeavesToNetHTTP: URLs h1 does not take go through net/http, which
// must still work for them.
func TestH1LeavesToNetHTTP(t *testing.T) {
	proxyOf := func(u string) func(*http.Request) (*url.URL, error) {
		return func(*http.Request) (*url.URL, error) { return url.Parse(u) }
	}
	tests := []struct {
		name   string
		rawURL string
		proxy  func(*http.Request) (*url.URL, error)
		want   bool
	}{
		{"plain http", "http://127.0.0.1:8428/api/v1/write", nil, true},
		{"https, default port", "https://vm.example/insert/0/prometheus/api/v1/write?extra_label=a", nil, true},
		{"credentials in the URL", "http://u:p@127.0.0.1:8428/api/v1/write", nil, false},
		{"a proxy applies", "http://10.0.0.1:8428/api/v1/write", proxyOf("http://proxy:3128"), false},
		{"no proxy for it", "http://10.0.0.1:8428/api/v1/write", proxyOf(""), true},
		{"unix scheme", "unix:///tmp/x.sock", nil, false},
		{"IPv6 zone", "http://[fe80::1%25eth0]:8428/api/v1/write", nil, false},
		{"control character", "http://127.0.0.1:8428/a%0d%0aX:%20y", nil, true}, // escaped: stays escaped on the wire
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := tt.proxy
			if p != nil {
				p = func(r *http.Request) (*url.URL, error) {
					u, err := tt.proxy(r)
					if u != nil && u.String() == "" {
						return nil, err
					}
					return u, err
				}
			}
			h := newH1Client(nil, p)
			tgt := h.target(tt.rawURL)
			if (tgt != nil) != tt.want {
				t.Fatalf("h1 target = %v, want h1: %v", tgt, tt.want)
			}
			if tgt != nil && (strings.Count(tgt.head, "\r\n") != 2 || strings.Count(tgt.head, "\n") != 2) {
				t.Errorf("head %q is not exactly two lines", tgt.head)
			}
		})
	}
}

// TestH1SendAllocatesNothing: a steady-state Send over a kept connection
// allocates nothing. The upstream reads requests of the known size into one
// buffer and answers 204, allocating nothing itself.
func TestH1SendAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector")
	}
	c := newTestClient(t, ClientConfig{BearerToken: "tok"}, defaultRecheck)
	body := make([]byte, 4096)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	u := "http://" + l.Addr().String() + "/api/v1/write"
	size := len(c.appendHead(nil, c.h1.target(u), formatSnappyRW, "Bearer tok", len(body))) + len(body)
	go func() {
		conn, err := l.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		buf, answer := make([]byte, size), []byte("HTTP/1.1 204 No Content\r\n\r\n")
		for {
			if _, err := io.ReadFull(conn, buf); err != nil {
				return
			}
			if _, err := conn.Write(answer); err != nil {
				return
			}
		}
	}()
	for range 3 {
		c.Send(context.Background(), u, body, BatchStats{})
	}
	allocs := testing.AllocsPerRun(200, func() {
		if res := c.Send(context.Background(), u, body, BatchStats{Series: 1, Samples: 1}); res.StatusCode != 204 {
			t.Fatal(res)
		}
	})
	if allocs != 0 {
		t.Errorf("%.1f allocations per Send, want 0", allocs)
	}
}

// FuzzH1Response feeds arbitrary bytes to h1 as an upstream's answer: it
// must never panic, and what it reports must be sane.
func FuzzH1Response(f *testing.F) {
	for _, seed := range []string{
		"HTTP/1.1 204 No Content\r\n\r\n",
		"HTTP/1.1 400 Bad Request\r\nContent-Length: 3\r\n\r\nbad",
		"HTTP/1.1 500 Internal Server Error\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nstora\r\n0\r\n\r\n",
		"HTTP/1.1 103 Early Hints\r\n\r\nHTTP/1.1 429 Too Many Requests\r\nRetry-After: 7\r\n\r\n",
		"HTTP/1.0 503 Service Unavailable\r\n\r\nbusy",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, answer []byte) {
		client, server := net.Pipe()
		defer client.Close()
		go func() {
			_, _ = server.Write(answer)
			server.Close()
		}()
		c := &h1Conn{Conn: client, br: newH1Reader(client)}
		h, _, err := c.readHead()
		if err != nil {
			return
		}
		if h.status < 200 || h.status > 999 {
			t.Fatalf("final status %d", h.status)
		}
		msg, _ := c.readBody(h, true)
		if len(msg) > maxMessage {
			t.Fatalf("message of %d bytes", len(msg))
		}
	})
}

// closedForWrites is a connection whose writes fail (the server closed it)
// but whose reads return what the server answered before closing.
type closedForWrites struct {
	net.Conn
	answer *strings.Reader
}

func (f *closedForWrites) Write([]byte) (int, error)  { return 0, syscall.EPIPE }
func (f *closedForWrites) Read(p []byte) (int, error) { return f.answer.Read(p) }

// TestH1ReadsAnAnswerSentBeforeTheBodyWasRead: an upstream that refuses a
// body early and closes fails the write; its status must still reach the
// caller (a 413 is not retried, a connection error would be forever).
func TestH1ReadsAnAnswerSentBeforeTheBodyWasRead(t *testing.T) {
	for _, tt := range []struct {
		answer   string
		wantCode int
	}{
		{"HTTP/1.1 413 Request Entity Too Large\r\nContent-Length: 8\r\nConnection: close\r\n\r\ntoo big\n", 413},
		{"", 0}, // nothing arrived: the write error
	} {
		fw := &closedForWrites{answer: strings.NewReader(tt.answer)}
		c := &h1Conn{Conn: fw, tls: true, br: newH1Reader(fw)}
		res, keep, _, err := c.roundTrip([]byte("body"))
		if res.StatusCode != tt.wantCode || keep {
			t.Errorf("answer %q: got %+v keep=%v err=%v, want status %d, not kept", tt.answer, res, keep, err, tt.wantCode)
		}
		if tt.wantCode == 413 && res.Message != "too big" {
			t.Errorf("message %q, want the upstream's", res.Message)
		}
		if tt.wantCode == 0 && (err == nil || !strings.Contains(err.Error(), "writing request")) {
			t.Errorf("error %v, want the write error", err)
		}
	}
}

// TestH1ClosesConnectionsLeftIdle: connections to a host no longer written
// to are closed after the idle timeout, without another request.
func TestH1ClosesConnectionsLeftIdle(t *testing.T) {
	up := newScripted(t)
	c := newTestClient(t, ClientConfig{}, defaultRecheck)
	pool := c.h1.target(up.url()).pool
	pool.idleTimeout = 50 * time.Millisecond
	if res := c.Send(context.Background(), up.url(), []byte("x"), BatchStats{}); res.StatusCode != 204 {
		t.Fatal(res)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		pool.mu.Lock()
		idle, sweeping := len(pool.idle), pool.sweeping
		pool.mu.Unlock()
		if idle == 0 && !sweeping {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d connections still idle after the idle timeout", idle)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if res := c.Send(context.Background(), up.url(), []byte("y"), BatchStats{}); res.StatusCode != 204 {
		t.Fatalf("request after the sweep: %+v", res)
	}
	if n := up.conns.Load(); n != 2 {
		t.Errorf("%d connections, want 2 (the idle one was closed)", n)
	}
}

// TestH1OverTLSKeepsBodiesIntact: over TLS a small request is one Write of
// head and body and a large one two; both arrive whole, on one connection.
func TestH1OverTLSKeepsBodiesIntact(t *testing.T) {
	var conns atomic.Int32
	var mu sync.Mutex
	var got [][]byte
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, b)
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.StartTLS()
	defer srv.Close()
	c := newTestClient(t, ClientConfig{VerifyTLS: false}, defaultRecheck)
	if c.h1.target(srv.URL) == nil {
		t.Fatal("an https URL should go through h1")
	}
	small, large := []byte("small body"), make([]byte, 3*h1JoinLimit)
	for i := range large {
		large[i] = byte(i * 7)
	}
	for _, body := range [][]byte{small, large, small} {
		if res := c.Send(context.Background(), srv.URL+"/api/v1/write", body, BatchStats{}); res.StatusCode != 204 {
			t.Fatalf("send of %d bytes: %+v", len(body), res)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 3 || !bytes.Equal(got[0], small) || !bytes.Equal(got[1], large) || !bytes.Equal(got[2], small) {
		t.Fatalf("upstream received %d bodies, not the ones sent", len(got))
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d TLS connections, want 1", n)
	}
}

// TestH1UpstreamRestartFailsNoRequest: when the upstream restarts, every
// idle connection is dead at once. The first request to find that out
// drops them all and sends on a new connection, so no request fails.
func TestH1UpstreamRestartFailsNoRequest(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		time.Sleep(20 * time.Millisecond) // so that concurrent sends need their own connections
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	c := newTestClient(t, ClientConfig{}, defaultRecheck)
	u := srv.URL + "/api/v1/write"
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() { c.Send(context.Background(), u, []byte("x"), BatchStats{}) })
	}
	wg.Wait()
	pool := c.h1.target(u).pool
	pool.mu.Lock()
	idle := len(pool.idle)
	pool.mu.Unlock()
	if idle < 2 {
		t.Fatalf("%d idle connections, want several for this test", idle)
	}
	srv.CloseClientConnections() // the restart, as the client sees it
	time.Sleep(20 * time.Millisecond)
	for i := range 4 {
		if res := c.Send(context.Background(), u, []byte("y"), BatchStats{}); res.StatusCode != 204 {
			t.Fatalf("request %d after the restart: %+v", i, res)
		}
	}
}
