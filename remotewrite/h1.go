package remotewrite

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// h1 is the Client's own HTTP/1.1 client for remote-write POSTs, used
// instead of net/http's Transport where it can be (see h1Client.target).
//
// Why: in split mode every producer request becomes one upstream request per
// tenant, and a CPU profile of the bench's split run put a quarter of the
// proxy's CPU in net/http's client outside the syscalls: a read and a write
// goroutine per connection with channel hand-offs between them and the
// caller, a context timer, a header map and a dozen allocations per request.
// h1 does one request per connection at a time on the caller's goroutine:
// the head rendered into the connection's reused buffer, one writev of head
// and body, the response parsed from the connection's bufio.Reader, and the
// timeout as the connection's deadline. It allocates nothing per request.
//
// What it leaves to net/http, per URL or per answer: proxies (from the
// environment), credentials in the URL, header values net/http would refuse,
// and redirects (a 3xx answer is sent again through net/http, which follows
// it as before). Health probes and the zstd handshake stay on net/http.
type h1Client struct {
	tls     *tls.Config // the writer's TLS options; nil: defaults
	proxy   func(*http.Request) (*url.URL, error)
	dialer  *net.Dialer
	targets sync.Map // raw URL -> *h1Target; nil *h1Target: not for h1

	mu    sync.Mutex
	pools map[string]*h1Pool // "scheme://host:port" -> its connections
}

// h1Target is what h1 keeps per upstream URL: the connections to its host
// and the first lines of every request to it.
type h1Target struct {
	pool *h1Pool
	head string // "POST <request-uri> HTTP/1.1\r\nHost: <host>\r\n"
}

// Idle connections: at most maxIdlePerHost per host, closed after
// idleConnTimeout unused (the limits of net/http's transport, client.go),
// and checked for a close by the server before reuse once idle for
// h1CheckAfter (a server's idle timeout closes them; net/http notices it
// with its always-reading goroutine, h1 with one non-blocking peek).
const h1CheckAfter = 200 * time.Millisecond

func newH1Client(tc *tls.Config, proxy func(*http.Request) (*url.URL, error)) *h1Client {
	return &h1Client{
		tls:    tc,
		proxy:  proxy,
		dialer: newDialer(),
		pools:  map[string]*h1Pool{},
	}
}

// target returns the h1 target of rawURL, or nil when the URL is left to
// net/http: not http(s), credentials in it, or a proxy from the environment
// applies to it.
func (h *h1Client) target(rawURL string) *h1Target {
	if t, ok := h.targets.Load(rawURL); ok {
		return t.(*h1Target)
	}
	t := h.newTarget(rawURL)
	actual, _ := h.targets.LoadOrStore(rawURL, t)
	return actual.(*h1Target)
}

func (h *h1Client) newTarget(rawURL string) *h1Target {
	u, err := url.Parse(rawURL)
	// An IPv6 zone (%25eth0) is kept out of the Host header by net/http: left to it.
	if err != nil || u.User != nil || u.Opaque != "" || u.Host == "" || !validHeaderValue(u.Host) ||
		strings.Contains(u.Host, "%") {
		return nil
	}
	port := u.Port()
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil
	case port == "" && u.Scheme == "http":
		port = "80"
	case port == "":
		port = "443"
	}
	if h.proxy != nil {
		req, err := http.NewRequest(http.MethodPost, rawURL, nil)
		if err != nil {
			return nil
		}
		if p, err := h.proxy(req); err != nil || p != nil {
			return nil
		}
	}
	uri := u.RequestURI()
	if !validHeaderValue(uri) || strings.ContainsRune(uri, ' ') {
		return nil
	}
	addr := net.JoinHostPort(u.Hostname(), port)
	return &h1Target{
		pool: h.pool(u.Scheme, addr, u.Hostname()),
		head: "POST " + uri + " HTTP/1.1\r\nHost: " + u.Host + "\r\n",
	}
}

// pool returns the connection pool of scheme://addr, made on first use.
func (h *h1Client) pool(scheme, addr, serverName string) *h1Pool {
	key := scheme + "://" + addr
	h.mu.Lock()
	defer h.mu.Unlock()
	if p := h.pools[key]; p != nil {
		return p
	}
	p := &h1Pool{addr: addr, dialer: h.dialer, idleTimeout: idleConnTimeout}
	if scheme == "https" {
		p.tls = &tls.Config{}
		if h.tls != nil {
			p.tls = h.tls.Clone()
		}
		if p.tls.ServerName == "" {
			p.tls.ServerName = serverName
		}
	}
	h.pools[key] = p
	return p
}

// closeIdle closes every idle connection; requests in flight go on.
func (h *h1Client) closeIdle() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, p := range h.pools {
		p.closeIdle()
	}
}

// h1Pool holds the idle connections to one host, most recently used last
// (so they are in the order they became idle).
type h1Pool struct {
	addr        string
	tls         *tls.Config // nil for plain HTTP
	dialer      *net.Dialer
	idleTimeout time.Duration

	mu       sync.Mutex
	idle     []*h1Conn
	sweeping bool // a sweep is scheduled
}

// get returns an idle connection that is still open, or dials a new one;
// reused says which.
func (p *h1Pool) get(ctx context.Context, deadline time.Time) (c *h1Conn, reused bool, err error) {
	now := time.Now()
	for {
		c = p.takeIdle()
		if c == nil {
			break
		}
		idle := now.Sub(c.idleSince)
		if idle < h1CheckAfter || (idle < p.idleTimeout && c.stillOpen()) {
			return c, true, nil
		}
		c.close()
	}
	c, err = p.dial(ctx, deadline)
	return c, false, err
}

func (p *h1Pool) takeIdle() *h1Conn {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(p.idle)
	if n == 0 {
		return nil
	}
	c := p.idle[n-1]
	p.idle[n-1] = nil
	p.idle = p.idle[:n-1]
	return c
}

// put keeps c for the next request, or closes it when enough are idle.
func (p *h1Pool) put(c *h1Conn) {
	c.idleSince = time.Now()
	p.mu.Lock()
	if len(p.idle) < maxIdlePerHost {
		p.idle = append(p.idle, c)
		c = nil
		if !p.sweeping {
			p.sweeping = true
			time.AfterFunc(p.idleTimeout, p.sweep)
		}
	}
	p.mu.Unlock()
	if c != nil {
		c.close()
	}
}

// sweep closes the connections idle for idleTimeout, so that a host no
// longer written to does not keep them (and the server's half-closed ends)
// open, and schedules itself again while any stay idle.
func (p *h1Pool) sweep() {
	now := time.Now()
	p.mu.Lock()
	n := 0
	for n < len(p.idle) && now.Sub(p.idle[n].idleSince) >= p.idleTimeout {
		n++
	}
	expired := make([]*h1Conn, n)
	copy(expired, p.idle)
	rest := copy(p.idle, p.idle[n:])
	clear(p.idle[rest:])
	p.idle = p.idle[:rest]
	p.sweeping = rest > 0
	if p.sweeping {
		time.AfterFunc(p.idleTimeout-now.Sub(p.idle[0].idleSince), p.sweep)
	}
	p.mu.Unlock()
	for _, c := range expired {
		c.close()
	}
}

func (p *h1Pool) closeIdle() {
	p.mu.Lock()
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	for _, c := range idle {
		c.close()
	}
}

// dial opens a connection (TLS included) within the request's deadline.
func (p *h1Pool) dial(ctx context.Context, deadline time.Time) (*h1Conn, error) {
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	raw, err := p.dialer.DialContext(ctx, "tcp", p.addr)
	if err != nil {
		return nil, err
	}
	tcp, ok := raw.(*net.TCPConn)
	if !ok {
		raw.Close()
		return nil, fmt.Errorf("dialed a %T, not a TCP connection", raw)
	}
	c := &h1Conn{Conn: raw, tcp: tcp}
	if p.tls != nil {
		tc := tls.Client(raw, p.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			raw.Close()
			return nil, err
		}
		c.Conn, c.tls = tc, true
	}
	c.br = newH1Reader(c.Conn)
	return c, nil
}

// validHeaderValue reports whether s can go into a request head as it is:
// no control characters but tab (net/http refuses such values too).
func validHeaderValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if b := s[i]; (b < ' ' && b != '\t') || b == 0x7f {
			return false
		}
	}
	return true
}
