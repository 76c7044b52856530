package remotewrite

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
)

// Compression is writer.compression: how remote write goes to the upstream.
//
// VictoriaMetrics components accept the VictoriaMetrics remote-write
// protocol: the same RW1 protobuf compressed with zstd (Content-Encoding:
// zstd, X-VictoriaMetrics-Remote-Write-Version: 1), 2-4x smaller than snappy.
// vmagent v1.128.0 negotiates it as follows (app/vmagent/remotewrite/client.go):
// it sends zstd from the start, and when the upstream answers a zstd block
// with 400 or 415 it re-packs that block as snappy, re-sends it, and uses
// snappy for every later request of that URL until it restarts. Before
// v1.116.0 it asked first instead: a request to the write URL with
// `?get_vm_proto_version=1`, which VictoriaMetrics (v1.88+) answers with 200
// and the body "1".
type Compression string

const (
	// CompressionSnappy sends Prometheus remote write 1.0 only (vmagent's
	// -remoteWrite.forcePromProto). The default: every upstream takes it.
	CompressionSnappy Compression = "snappy"
	// CompressionAuto asks each endpoint first (the get_vm_proto_version
	// handshake) and sends zstd only where it answers "1"; a rejected zstd
	// request falls back to snappy as in CompressionZstd.
	CompressionAuto Compression = "auto"
	// CompressionZstd is vmagent v1.116+'s default: zstd from the first
	// request, and snappy for an endpoint that rejects it with 400 or 415.
	CompressionZstd Compression = "zstd"
)

// Compressions lists the accepted values, for error messages.
const Compressions = "snappy, auto or zstd"

// ParseCompression checks a writer.compression value; "" is snappy.
func ParseCompression(s string) (Compression, error) {
	switch c := Compression(s); c {
	case "":
		return CompressionSnappy, nil
	case CompressionSnappy, CompressionAuto, CompressionZstd:
		return c, nil
	}
	return "", fmt.Errorf("unknown compression %q: use %s", s, Compressions)
}

// Re-check intervals of an endpoint that gets snappy. vmagent keeps snappy
// until restarted; scoreproxy tries again later, so an upgraded vminsert is
// used without a restart, and an upstream that was down during a probe is
// not stuck with snappy (VictoriaMetrics issue #7615).
const (
	zstdRecheckAfterRefusal = 15 * time.Minute // the upstream answered: no zstd
	zstdRecheckAfterError   = 30 * time.Second // the probe got no clear answer
	maxProbeAnswer          = 64
)

// Metrics of the negotiation, per write URL (with the url label of the
// writer metrics).
const (
	metricZstdActive    = "scoreproxy_upstream_zstd"                 // gauge{url}: 1 while requests go out as zstd
	metricZstdFallbacks = "scoreproxy_upstream_zstd_fallbacks_total" // counter{url}: zstd requests re-sent as snappy
)

// formatZstdRW is the VictoriaMetrics remote-write protocol.
var formatZstdRW = wireFormat{contentType: "application/x-protobuf", contentEncoding: "zstd",
	versionHeader: "X-VictoriaMetrics-Remote-Write-Version", version: "1"}

// zstdState is what a Client knows about one endpoint.
type zstdState int32

const (
	zstdUnknown zstdState = iota // not asked yet: snappy until a check says otherwise
	zstdYes                      // send zstd
	zstdNo                       // send snappy until retryAt
)

// zstdEndpoint is the negotiation state of one write URL.
type zstdEndpoint struct {
	state    atomic.Int32 // a zstdState
	retryAt  atomic.Int64 // unix nanoseconds; when zstdNo is checked again
	checking atomic.Bool  // one request checks; the others send snappy meanwhile
	safeURL  string
	fallback *metrics.Counter
}

// zstdNegotiator holds a Client's per-endpoint protocol state and the shared
// encoder. It is nil for CompressionSnappy.
type zstdNegotiator struct {
	mode      Compression
	logger    *slog.Logger
	endpoints sync.Map  // write URL -> *zstdEndpoint
	raw       sync.Pool // *[]byte, snappy-decoded bodies
	// recheckRefusal and recheckError are the re-check intervals
	// (zstdRecheckAfterRefusal and zstdRecheckAfterError).
	recheckRefusal, recheckError time.Duration
}

// zstdEncoder is shared by every Client: EncodeAll is safe for concurrent use
// and keeps one encoder state per CPU. SpeedFastest is zstd level 1, what
// vmagent uses by default; the checksum is left out (TCP and TLS carry the
// body intact) to save CPU.
var zstdEncoder = sync.OnceValues(func() (*zstd.Encoder, error) {
	return zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderCRC(false))
})

func newZstdNegotiator(mode Compression, logger *slog.Logger) (*zstdNegotiator, error) {
	mode, err := ParseCompression(string(mode))
	if err != nil {
		return nil, err
	}
	if mode == CompressionSnappy {
		return nil, nil
	}
	if logger == nil {
		logger = slog.Default()
	}
	return &zstdNegotiator{mode: mode, logger: logger,
		recheckRefusal: zstdRecheckAfterRefusal, recheckError: zstdRecheckAfterError}, nil
}

// endpoint returns the state of rawURL, creating it on first use.
func (n *zstdNegotiator) endpoint(rawURL string) *zstdEndpoint {
	if ep, ok := n.endpoints.Load(rawURL); ok {
		return ep.(*zstdEndpoint)
	}
	m := registry.get(rawURL)
	ep := &zstdEndpoint{safeURL: m.safeURL, fallback: metrics.GetOrCreateCounter(m.name(metricZstdFallbacks, ""))}
	actual, loaded := n.endpoints.LoadOrStore(rawURL, ep)
	if !loaded {
		metrics.GetOrCreateGauge(m.name(metricZstdActive, ""), func() float64 {
			if zstdState(ep.state.Load()) == zstdYes {
				return 1
			}
			return 0
		})
	}
	return actual.(*zstdEndpoint)
}

// postRemoteWrite sends one snappy RW1 body as the endpoint's protocol
// allows and returns the result and the bytes that went over the wire.
func (c *Client) postRemoteWrite(ctx context.Context, rawURL string, body []byte, now time.Time) (SendResult, errReason, int) {
	n := c.zstd
	if n == nil {
		res, reason := c.post(ctx, rawURL, body, nil, formatSnappyRW, now)
		return res, reason, len(body)
	}
	ep := n.endpoint(rawURL)
	if !c.wantZstd(ctx, n, ep, rawURL, now) {
		res, reason := c.post(ctx, rawURL, body, nil, formatSnappyRW, now)
		return res, reason, len(body)
	}
	zb := getOutBody()
	if err := n.recompress(zb, body); err != nil {
		// Not a valid snappy block: let the upstream judge it as it is.
		zb.closed.Store(true) // never sent
		zb.release()
		res, reason := c.post(ctx, rawURL, body, nil, formatSnappyRW, now)
		return res, reason, len(body)
	}
	res, reason := c.post(ctx, rawURL, nil, zb, formatZstdRW, now)
	sent := len(zb.buf)
	zb.release()
	if res.StatusCode != http.StatusBadRequest && res.StatusCode != http.StatusUnsupportedMediaType {
		return res, reason, sent
	}
	// vmagent's rule: 400 or 415 to a zstd block means "no zstd here" (RW1
	// receivers answer an unknown encoding with either). Re-send as snappy.
	zstdMsg := res.Message
	res, reason = c.post(ctx, rawURL, body, nil, formatSnappyRW, time.Now())
	ep.fallback.Inc()
	if res.OK() { // snappy taken: the rejection was about zstd, not the data
		n.refuse(ep, n.recheckRefusal, "upstream rejected zstd and accepted snappy", zstdMsg)
	}
	return res, reason, sent + len(body) // both requests went over the wire
}

// wantZstd says whether this request goes out as zstd, checking the
// endpoint first when its state is unknown or due for a re-check.
func (c *Client) wantZstd(ctx context.Context, n *zstdNegotiator, ep *zstdEndpoint, rawURL string, now time.Time) bool {
	switch zstdState(ep.state.Load()) {
	case zstdYes:
		return true
	case zstdNo:
		if now.UnixNano() < ep.retryAt.Load() {
			return false
		}
	}
	if !ep.checking.CompareAndSwap(false, true) {
		return false
	}
	defer ep.checking.Store(false)
	if n.mode == CompressionZstd {
		n.accept(ep, "trying the VictoriaMetrics remote-write protocol (zstd)")
		return true
	}
	ok, definite, why := c.probeZstd(ctx, rawURL, now)
	switch {
	case ok:
		n.accept(ep, "upstream supports the VictoriaMetrics remote-write protocol: sending zstd")
		return true
	case definite:
		n.refuse(ep, n.recheckRefusal, "upstream does not support the VictoriaMetrics remote-write protocol: sending snappy", why)
	default:
		n.refuse(ep, n.recheckError, "could not ask the upstream about the VictoriaMetrics remote-write protocol: sending snappy meanwhile", why)
	}
	return false
}

// accept switches ep to zstd, logging the change.
func (n *zstdNegotiator) accept(ep *zstdEndpoint, msg string) {
	if zstdState(ep.state.Swap(int32(zstdYes))) != zstdYes {
		n.logger.Info(msg, "url", ep.safeURL)
	}
}

// refuse switches ep to snappy until after, logging the change.
func (n *zstdNegotiator) refuse(ep *zstdEndpoint, after time.Duration, msg, why string) {
	ep.retryAt.Store(time.Now().Add(after).UnixNano())
	if zstdState(ep.state.Swap(int32(zstdNo))) != zstdNo {
		n.logger.Info(msg, "url", ep.safeURL, "reason", why, "recheck_in", after.String())
	}
}

// probeZstd is the get_vm_proto_version handshake: a POST with an empty
// body to the write URL plus `get_vm_proto_version=1`, which VictoriaMetrics
// answers with 200 and "1" (or a higher version). Any other answer means no
// zstd (definite); no answer, 5xx, 408 or 429 says nothing (definite false).
func (c *Client) probeZstd(ctx context.Context, rawURL string, now time.Time) (ok, definite bool, why string) {
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	sep := "?"
	if strings.Contains(rawURL, "?") {
		sep = "&"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, rawURL+sep+"get_vm_proto_version=1", http.NoBody)
	if err != nil {
		return false, true, "invalid upstream URL"
	}
	h := req.Header
	h.Set("Content-Type", formatSnappyRW.contentType)
	h.Set("Content-Encoding", formatSnappyRW.contentEncoding)
	h.Set(formatSnappyRW.versionHeader, formatSnappyRW.version)
	c.setCommonHeaders(h, now)
	resp, err := c.hc.Do(req)
	if err != nil {
		return false, false, transportMessage(err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, maxProbeAnswer))
	drain(resp.Body)
	if resp.StatusCode == http.StatusOK {
		if v, err := strconv.Atoi(strings.TrimSpace(string(answer))); err == nil && v >= 1 {
			return true, true, ""
		}
	}
	why = fmt.Sprintf("handshake answered %d %q", resp.StatusCode, truncateUTF8(string(answer), maxProbeAnswer))
	transient := resp.StatusCode >= 500 || resp.StatusCode == http.StatusRequestTimeout ||
		resp.StatusCode == http.StatusTooManyRequests
	return false, !transient, why
}

// recompress turns a snappy RW1 body into zstd in dst.buf: snappy-decode
// into a pooled buffer, then zstd-encode.
func (n *zstdNegotiator) recompress(dst *outBody, snappyBody []byte) error {
	size, err := s2.DecodedLen(snappyBody)
	if err != nil {
		return err
	}
	rp, _ := n.raw.Get().(*[]byte)
	if rp == nil {
		rp = new([]byte)
	}
	defer func() {
		if cap(*rp) <= maxPooledBody {
			n.raw.Put(rp)
		}
	}()
	if cap(*rp) < size {
		*rp = make([]byte, size)
	}
	raw, err := s2.Decode((*rp)[:cap(*rp)], snappyBody)
	if err != nil {
		return err
	}
	enc, err := zstdEncoder()
	if err != nil {
		return err
	}
	dst.buf = enc.EncodeAll(raw, dst.buf[:0])
	return nil
}
