package remotewrite

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"
)

const (
	defaultTimeout   = 5 * time.Second // vmanomaly writer's default timeout
	defaultUserAgent = "scoreproxy"
	// maxMessage bounds the part of an error response kept as SendResult.Message.
	maxMessage = 1 << 10
	// maxDrain bounds how much of a response is read to reuse the connection;
	// a larger body costs a new connection rather than unbounded reading.
	maxDrain = 64 << 10
)

// ClientConfig holds the upstream options of vmanomaly's VmWriter that apply
// to the remote-write path.
type ClientConfig struct {
	// Timeout bounds each request, response body included; 0 means 5s.
	Timeout time.Duration
	// User and Password are sent as basic auth when User != "".
	User, Password string
	// BearerToken is sent as `Authorization: Bearer <token>`.
	BearerToken string
	// BearerTokenFile holds the token; it is re-read when the file changes
	// (checked at most once per second), so rotated tokens are picked up.
	BearerTokenFile string
	// VerifyTLS false skips server certificate verification (vmanomaly's
	// verify_tls: false), unless CAFile is set.
	VerifyTLS bool
	// CAFile, when set, verifies the server against this CA bundle only,
	// whatever VerifyTLS says (vmanomaly's verify_tls: path/to/ca.crt).
	CAFile string
	// CertFile and KeyFile are the client certificate for mTLS; they are
	// re-read when they change, for new connections.
	CertFile, KeyFile string
	// UserAgent defaults to "scoreproxy".
	UserAgent string
	// Compression says whether remote write may go out as zstd (the
	// VictoriaMetrics remote-write protocol); "" means CompressionSnappy.
	Compression Compression
	// Logger receives the protocol negotiation events; nil means slog.Default().
	Logger *slog.Logger
}

// Client sends snappy-compressed remote-write bodies to upstream URLs. It is
// safe for concurrent use and keeps connections alive across requests, so
// one Client should serve every upstream of a process.
type Client struct {
	hc        *http.Client
	transport *http.Transport
	h1        *h1Client // remote-write POSTs where it can (h1.go); nil: net/http only
	timeout   time.Duration
	userAgent string
	auth      authenticator
	certs     *certFiles      // rotated client certificate; nil without mTLS
	zstd      *zstdNegotiator // nil with CompressionSnappy
}

// NewClient checks the configuration and loads every credential file once, so
// a typo fails at start-up rather than on the first request.
func NewClient(cfg ClientConfig) (*Client, error) {
	return newClient(cfg, defaultRecheck)
}

// newClient is NewClient with the credential-file re-check interval, which
// tests shorten.
func newClient(cfg ClientConfig, recheck time.Duration) (*Client, error) {
	if cfg.Timeout < 0 {
		return nil, fmt.Errorf("timeout must not be negative, got %s", cfg.Timeout)
	}
	auth, err := newAuthenticator(cfg, recheck)
	if err != nil {
		return nil, fmt.Errorf("upstream auth: %w", err)
	}
	tc, certs, err := newTLSConfig(cfg, recheck)
	if err != nil {
		return nil, fmt.Errorf("upstream TLS: %w", err)
	}
	negotiator, err := newZstdNegotiator(cfg.Compression, cfg.Logger)
	if err != nil {
		return nil, err
	}
	c := &Client{
		transport: newTransport(tc),
		timeout:   cfg.Timeout,
		userAgent: cfg.UserAgent,
		auth:      auth,
		certs:     certs,
		zstd:      negotiator,
	}
	if c.timeout == 0 {
		c.timeout = defaultTimeout
	}
	if c.userAgent == "" {
		c.userAgent = defaultUserAgent
	}
	c.hc = &http.Client{Transport: c.transport}
	if validHeaderValue(c.userAgent) {
		c.h1 = newH1Client(tc, c.transport.Proxy)
	}
	return c, nil
}

// Connection limits shared by net/http's transport and h1 (h1.go): enough
// idle connections per host that concurrent senders do not re-dial.
const (
	maxIdlePerHost  = 64
	idleConnTimeout = 90 * time.Second
)

// newDialer returns the dialer of upstream connections; the dial is also
// bounded by the request's timeout.
func newDialer() *net.Dialer {
	return &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
}

// newTransport tunes net/http for a proxy that sends many concurrent requests
// to a few hosts: enough idle connections per host that concurrent senders do
// not re-dial, HTTP/1.1 (what vminsert is tuned for), and no gzip negotiation.
func newTransport(tc *tls.Config) *http.Transport {
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           newDialer().DialContext,
		TLSClientConfig:       tc,
		TLSHandshakeTimeout:   10 * time.Second,
		MaxIdleConns:          512,
		MaxIdleConnsPerHost:   maxIdlePerHost,
		IdleConnTimeout:       idleConnTimeout,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true,
		ForceAttemptHTTP2:     false,
		// A remote-write body is tens of KB: with the default 4 KiB buffer
		// net/http writes headers and body in several syscalls per request.
		WriteBufferSize: 64 << 10,
	}
}

// Close closes idle connections. In-flight requests are not interrupted.
func (c *Client) Close() {
	c.transport.CloseIdleConnections()
	if c.h1 != nil {
		c.h1.closeIdle()
	}
}

// CredentialsError returns the last failure to re-read a rotated credential
// file (bearer token or client certificate), or nil. The Client keeps using
// the last good credentials meanwhile; HealthChecker logs changes of it.
func (c *Client) CredentialsError() error {
	if err := c.auth.lastErr(); err != nil {
		return err
	}
	if c.certs != nil {
		return c.certs.lastErr()
	}
	return nil
}

// Send POSTs one snappy-compressed RW1 body, as zstd instead when
// ClientConfig.Compression allows and the upstream takes it (client_zstd.go).
// It never panics and never returns an error: the result says what
// happened, and the writer metrics of the URL are updated. Pass
// stats.SerializeSeconds 0 when re-sending an already serialized body, so
// serialization is not counted twice.
func (c *Client) Send(ctx context.Context, rawURL string, body []byte, stats BatchStats) SendResult {
	m, start := c.begin(rawURL, stats)
	res, reason, sent := c.postRemoteWrite(ctx, rawURL, body, start)
	return c.finish(m, start, res, reason, sent, stats)
}

// begin looks up the metrics of rawURL and starts timing one request.
func (c *Client) begin(rawURL string, stats BatchStats) (*urlMetrics, time.Time) {
	m := registry.get(rawURL)
	if stats.SerializeSeconds > 0 {
		m.serialize.Update(stats.SerializeSeconds)
	}
	return m, time.Now()
}

// finish records the outcome of one request in the URL's metrics; sent is
// the number of body bytes that went over the wire.
func (c *Client) finish(m *urlMetrics, start time.Time, res SendResult, reason errReason, sent int, stats BatchStats) SendResult {
	res.URL = m.safeURL
	m.duration.UpdateDuration(start)
	if res.StatusCode == 0 {
		m.transportError(reason)
		return res
	}
	m.responses(res.StatusCode).Inc()
	m.sentBytes.Add(sent)
	if res.OK() {
		m.countSent(stats)
	}
	return res
}

// wireFormat is how a request body is encoded: its content headers.
type wireFormat struct {
	contentType, contentEncoding string
	// versionHeader names the protocol version header ("" for none).
	versionHeader, version string
}

// formatSnappyRW is Prometheus remote write 1.0.
var formatSnappyRW = wireFormat{contentType: "application/x-protobuf", contentEncoding: "snappy",
	versionHeader: "X-Prometheus-Remote-Write-Version", version: "0.1.0"}

// post makes the request and reads the answer. Without a response it returns
// StatusCode 0, the error text and its reason for the metrics. The body is
// payload, or owned's buffer when owned is not nil: a buffer the Client
// reuses once the transport has closed it (see outBody).
func (c *Client) post(ctx context.Context, rawURL string, payload []byte, owned *outBody, f wireFormat, now time.Time) (SendResult, errReason) {
	if ctx == nil {
		ctx = context.Background()
	}
	if res, reason, done := c.postWithH1(ctx, rawURL, payload, owned, f, now); done {
		return res, reason
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := newPostRequest(ctx, rawURL, payload, owned)
	if err != nil {
		return SendResult{Message: "invalid upstream URL"}, reasonConnection
	}
	h := req.Header
	h.Set("Content-Type", f.contentType)
	if f.contentEncoding != "" {
		h.Set("Content-Encoding", f.contentEncoding)
	}
	if f.versionHeader != "" {
		h.Set(f.versionHeader, f.version)
	}
	c.setCommonHeaders(h, now)
	resp, err := c.hc.Do(req)
	if err != nil {
		return SendResult{Message: transportMessage(err)}, classify(ctx, err)
	}
	defer resp.Body.Close()
	res := SendResult{StatusCode: resp.StatusCode, RetryAfter: resp.Header.Get("Retry-After")}
	if res.OK() {
		drain(resp.Body)
		return res, 0
	}
	res.Message = readMessage(resp.Body)
	return res, 0
}

// postWithH1 sends through h1 when the URL and the answer allow it (see
// h1.go); done false leaves the request to net/http.
func (c *Client) postWithH1(ctx context.Context, rawURL string, payload []byte, owned *outBody, f wireFormat, now time.Time) (SendResult, errReason, bool) {
	if c.h1 == nil {
		return SendResult{}, 0, false
	}
	t := c.h1.target(rawURL)
	if t == nil {
		return SendResult{}, 0, false
	}
	if owned != nil {
		payload = owned.buf
	}
	res, reason, done := c.postH1(ctx, t, payload, f, now)
	if done && owned != nil {
		owned.closed.Store(true) // h1 is done with the buffer
	}
	return res, reason, done
}

// setCommonHeaders sets the headers shared by writes and health probes.
func (c *Client) setCommonHeaders(h http.Header, now time.Time) {
	h.Set("User-Agent", c.userAgent)
	if v := c.auth.header(now); v != "" {
		h.Set("Authorization", v)
	}
}

// drain reads what is left of a response (bounded), so the connection goes
// back to the idle pool instead of being closed.
func drain(r io.Reader) {
	_, _ = io.Copy(io.Discard, io.LimitReader(r, maxDrain))
}

// readMessage keeps the first maxMessage bytes of an error response as valid,
// trimmed text, and drains the rest.
func readMessage(r io.Reader) string {
	buf := make([]byte, maxMessage)
	n, _ := io.ReadFull(r, buf)
	drain(r)
	return messageText(buf[:n])
}

// messageText is the start of an error response as SendResult.Message:
// trimmed, valid UTF-8, at most maxMessage bytes (each invalid byte becomes
// a 3-byte replacement character, so the valid text is cut again).
func messageText(b []byte) string {
	return truncateUTF8(strings.ToValidUTF8(strings.TrimSpace(string(b)), "\uFFFD"), maxMessage)
}

// transportMessage is the text of a transport error without the URL that
// *url.Error adds: the URL may carry credentials and SendResult has it anyway.
func transportMessage(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return err.Error()
}

// classify names the reason a request got no response. The caller's own
// cancellation is told apart from timeouts, which point at a slow upstream.
func classify(ctx context.Context, err error) errReason {
	if errors.Is(ctx.Err(), context.Canceled) || errors.Is(err, context.Canceled) {
		return reasonCanceled
	}
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return reasonTimeout
	}
	return reasonConnection
}

// redactURL returns rawURL without userinfo, for results, logs and metric
// labels. An unparsable URL is replaced entirely, since any part of it could
// be a secret.
func redactURL(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "invalid-url"
	}
	u.User = nil
	return u.String()
}

// truncateUTF8 cuts s to at most n bytes without splitting a character.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
