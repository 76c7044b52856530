package remotewrite

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/klauspost/compress/s2"
)

// HandlerConfig holds the receiver's limits.
type HandlerConfig struct {
	// MaxRequestBytes bounds the compressed body; larger requests get 413.
	MaxRequestBytes int64
	// MaxDecodedBytes bounds the body after snappy or zstd decoding, checked
	// from the snappy or zstd frame header before anything is allocated (a
	// zstd body without a size is measured up to it first, see
	// zstdReceiver), and the RW1 transcoding of an RW2 body or a JSON
	// import; larger requests get 413.
	MaxDecodedBytes int64
	// MaxConcurrent bounds the requests being decoded and processed at once
	// (limits.max_concurrent_requests): a request whose body has been read
	// while MaxConcurrent others are in progress gets 429. Reading a body
	// takes no slot, so clients that send slowly hold none. 0: no bound.
	MaxConcurrent int
	// Budget bounds the memory of the requests in progress, process-wide
	// (limits.max_inflight_bytes, see ByteBudget); nil: no bound.
	Budget *ByteBudget
	// MinBodyRate (bytes per second, limits.min_body_rate) and
	// BodyRateGrace (limits.body_rate_grace) cut off, with 408, a body
	// that arrives slower than MinBodyRate once BodyRateGrace has passed
	// (see bodyPace); ReadTimeout (server.read_timeout) bounds every body.
	// MinBodyRate 0: only ReadTimeout, as the HTTP server applies it.
	MinBodyRate   int64
	BodyRateGrace time.Duration
	ReadTimeout   time.Duration
	Logger        *slog.Logger
	// Known, when set, lets the decoder skip the labels of series the
	// processor has seen before (see DecodeWriteRequestKnown).
	Known KnownLabelSets
}

// Handler receives Prometheus remote write 1.0 and 2.0 (which it transcodes
// to 1.0, see RW2Transcoder), snappy- or zstd-compressed, and hands each
// valid request to a Processor. It answers 204 when the processor succeeds
// (see the package doc for what that promises) and otherwise a status and
// a message that say what was wrong, as the remote-write specs ask: 4xx for
// requests that must not be retried, 429/5xx for ones that may. RW2
// requests also get the X-Prometheus-Remote-Write-*-Written headers, on
// success and on failure.
type Handler struct {
	cfg     HandlerConfig
	proc    Processor
	log     *slog.Logger
	limit   *LogLimiter
	pool    sync.Pool // of *receiveBuffers
	readers sync.Pool // of *bodyReader
	bodies  bodyPools
	zstd    *zstdReceiver
	slots   chan struct{} // one per request being decoded and processed; nil: no bound
	// importLabels is shared by the JSON import transcoders (see
	// importLabelCache).
	importLabels *importLabelCache
}

// receiveBuffers are the buffers a request decodes its body with, reused
// across requests. A request takes them once its body is read (see
// bodyReader), so a slow client holds none.
type receiveBuffers struct {
	compressed []byte // the body as received: the bodyReader's buffer, not owned
	decoded    []byte
	rw1        []byte // the RW1 transcoding of an RW2 body or a JSON import
	rw2        RW2Transcoder
	importer   ImportTranscoder
	gz         *gunzipper // for gzip-compressed JSON imports, created on the first
	req        Request
}

// capacity is the memory the buffers hold, as the budget counts it.
func (b *receiveBuffers) capacity() int64 {
	return int64(cap(b.decoded) + cap(b.rw1) + b.rw2.capacity())
}

// bodyFormat is what the request headers say about the body.
type bodyFormat struct {
	rw2        bool // Content-Type names io.prometheus.write.v2.Request
	zstd       bool // Content-Encoding: zstd (else snappy)
	importJSON bool // a JSON-lines import path (see ImportPath)
}

// written is what a request delivered, for the RW2 response headers.
type written struct{ samples, histograms, exemplars int }

// maxPooledBuffer is the largest buffer kept for reuse: a rare huge request
// should not pin its memory for the life of the process.
const maxPooledBuffer = 16 << 20

var (
	requestsReceived = metrics.NewCounter("scoreproxy_requests_received_total")
	seriesReceived   = metrics.NewCounter("scoreproxy_series_received_total")
	samplesReceived  = metrics.NewCounter("scoreproxy_samples_received_total")
	requestDuration  = metrics.NewHistogram("scoreproxy_request_duration_seconds")
	rejectedByReason = map[string]*metrics.Counter{}
	// concurrencyRejections is the concurrency limit's share of
	// scoreproxy_limit_rejections_total, with the shape and rate limits'.
	concurrencyRejections = metrics.GetOrCreateCounter(`scoreproxy_limit_rejections_total{limit="` + ReasonConcurrency + `"}`)
)

// ReasonConcurrency is the rejection reason of a request refused because
// limits.max_concurrent_requests were in progress.
const ReasonConcurrency = "too_many_concurrent_requests"

func init() {
	for _, r := range []string{ReasonBadSnappy, ReasonBadZstd, ReasonBadImport, ReasonBadProtobuf, ReasonInvalidSymbols,
		ReasonInvalidSeries, ReasonContentTypeMismatch, ReasonTooLarge, ReasonUnsupported, ReasonMethod,
		ReasonBadTenant, ReasonUpstreamReject, ReasonUpstreamDown, ReasonConcurrency, ReasonInflightBytes, ReasonSlowBody, "internal"} {
		rejectedByReason[r] = metrics.NewCounter(`scoreproxy_requests_rejected_total{reason="` + r + `"}`)
	}
}

// NewHandler returns a remote-write receiver that delivers to proc.
func NewHandler(cfg HandlerConfig, proc Processor) *Handler {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	h := &Handler{cfg: cfg, proc: proc, log: cfg.Logger, limit: NewLogLimiter(10*time.Second, 5),
		zstd: newZstdReceiver(cfg.MaxDecodedBytes), importLabels: newImportLabelCache(defaultImportCacheBytes)}
	h.pool.New = func() any { return &receiveBuffers{} }
	h.readers.New = func() any { return &bodyReader{pools: &h.bodies} }
	if cfg.MaxConcurrent > 0 {
		h.slots = make(chan struct{}, cfg.MaxConcurrent)
	}
	return h
}

// ServeHTTP implements http.Handler for every write path (see PathTenant)
// and every JSON-lines import path (see ImportPath).
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	defer requestDuration.UpdateDuration(start)
	requestsReceived.Inc()
	var f bodyFormat
	tenant, ok := PathTenant(r.URL.Path)
	if !ok {
		tenant, f.importJSON = ImportPath(r.URL.Path)
		ok = f.importJSON
	}
	if !ok {
		http.NotFound(w, r)
		return
	}
	if !f.importJSON && vmProtoHandshake(w, r) {
		return
	}
	n, err := h.serve(w, r, tenant, &f)
	if f.rw2 {
		setWritten(w.Header(), n)
	}
	if err != nil {
		h.reject(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// serve reads, decodes and processes one request. It returns what was
// written: all of the request once the processor took it, else nothing (a
// request is forwarded as a whole, so a failed one wrote nothing, and a
// producer that retries it duplicates nothing).
//
// The body is read before the request takes one of the MaxConcurrent
// slots: a slot is held only while the request is decoded and processed,
// which takes as long as the proxy's own work, never as long as the client
// takes to send. An uncompressed JSON import is transcoded as it is read
// (see importStream): its receive buffers are taken before the body, and
// the body buffer holds a read's worth of lines, not the whole body.
//
// Every buffer the request holds counts in the byte budget from the moment
// it takes it until the request ends (see ByteBudget).
func (h *Handler) serve(w http.ResponseWriter, r *http.Request, tenant string, f *bodyFormat) (written, error) {
	rd := h.readers.Get().(*bodyReader)
	defer h.readers.Put(rd)
	defer rd.done()
	rd.hold.start(h.cfg.Budget)
	var bufs *receiveBuffers
	if f.importJSON && plainImport(r) {
		bufs = h.buffers(&rd.hold) // transcoded into as it arrives
	}
	n, err := h.serveWith(w, r, tenant, f, rd, &bufs)
	if bufs != nil {
		h.release(bufs, err)
	}
	return n, err
}

// serveWith reads, decodes and processes a request, taking *bufs when it
// has none yet.
func (h *Handler) serveWith(w http.ResponseWriter, r *http.Request, tenant string, f *bodyFormat, rd *bodyReader, bufs **receiveBuffers) (written, error) {
	body, err := h.readRequest(w, r, rd, f, *bufs)
	if err != nil {
		return written{}, err
	}
	if !h.enter() {
		return written{}, h.busy()
	}
	defer h.leave()
	if *bufs == nil {
		*bufs = h.buffers(&rd.hold)
	}
	(*bufs).compressed = body
	return h.process(r, tenant, f, *bufs, rd)
}

// process decodes the body read into bufs.compressed and hands it to the
// processor.
func (h *Handler) process(r *http.Request, tenant string, f *bodyFormat, bufs *receiveBuffers, rd *bodyReader) (written, error) {
	var body []byte
	var err error
	if f.importJSON {
		bufs.rw1, err = h.importBody(r, bufs, rd)
		body = bufs.rw1
		bufs.compressed = nil
		rd.releaseBody()
	} else {
		body, err = h.protobufBody(r.Context(), bufs, f, &rd.hold)
	}
	if err != nil {
		return written{}, err
	}
	known := h.cfg.Known
	if pk, ok := known.(PathKnownLabelSets); ok && tenant != "" {
		known = pk.KnownForPath(tenant)
	}
	if err := DecodeWriteRequestKnown(body, &bufs.req, known); err != nil {
		return written{}, err
	}
	if !f.importJSON && carriesNothing(&bufs.req) && len(bufs.decoded) > 0 {
		return written{}, nothingDecoded(bufs.decoded, f.rw2, bufs)
	}
	if !f.importJSON && !f.rw2 && !f.zstd && !bufs.req.Reordered {
		bufs.req.Compressed = bufs.compressed // forwardable as is
	}
	series, samples, exemplars, histograms := bufs.req.Totals()
	seriesReceived.Add(series)
	samplesReceived.Add(samples + histograms)
	if err := h.proc.Process(r.Context(), &bufs.req, tenant); err != nil {
		return written{}, err
	}
	return written{samples: samples, histograms: histograms, exemplars: exemplars}, nil
}

// readRequest checks the headers of a write or import request, setting *f
// from them, and returns its body, read into rd's buffer and held to the
// body rate and time limits. With bufs, an import is transcoded into them
// as it is read, and the body returned is its last, incomplete part.
func (h *Handler) readRequest(w http.ResponseWriter, r *http.Request, rd *bodyReader, f *bodyFormat, bufs *receiveBuffers) ([]byte, error) {
	var err error
	if f.importJSON {
		rd.extra, err = h.checkImport(r)
		if err == nil && bufs != nil {
			h.streamImport(rd, bufs)
		}
	} else {
		*f, err = checkRequest(r, h.cfg.MaxRequestBytes)
	}
	if err != nil {
		return nil, err
	}
	rd.want = int(min(r.ContentLength, maxInt))
	rd.pace.begin(w, r, &h.cfg)
	return readBody(rd, h.cfg.MaxRequestBytes, &h.cfg)
}

// buffers returns decoding buffers for a request whose budget share is
// held: pooled ones, their capacity reserved, or, when the budget cannot
// take that, fresh empty ones (the pooled ones are left to the garbage
// collector), which reserve as they grow.
func (h *Handler) buffers(held *hold) *receiveBuffers {
	bufs := h.pool.Get().(*receiveBuffers)
	if held.reserve(bufs.capacity()) != nil {
		bufs = &receiveBuffers{}
	}
	bufs.rw2.hold, bufs.importer.hold = held, held
	return bufs
}

// enter takes a slot for decoding and processing, if one is free.
func (h *Handler) enter() bool {
	if h.slots == nil {
		return true
	}
	select {
	case h.slots <- struct{}{}:
		return true
	default:
		return false
	}
}

func (h *Handler) leave() {
	if h.slots != nil {
		<-h.slots
	}
}

// busy is the answer to a request that found every slot taken.
func (h *Handler) busy() error {
	concurrencyRejections.Inc()
	return &StatusError{Code: http.StatusTooManyRequests, Reason: ReasonConcurrency, RetryAfter: "1", Msg: fmt.Sprintf(
		"too many concurrent write requests: %d are in progress, the limit (limits.max_concurrent_requests); retry later", cap(h.slots))}
}

// protobufBody decodes the remote-write body in bufs.compressed (RW1 or
// RW2, snappy or zstd, as f says) and returns the RW1 WriteRequest it
// carries.
func (h *Handler) protobufBody(ctx context.Context, bufs *receiveBuffers, f *bodyFormat, held *hold) ([]byte, error) {
	var err error
	if f.zstd {
		bufs.decoded, err = h.zstd.decode(ctx, bufs.decoded, bufs.compressed, held)
	} else {
		bufs.decoded, err = decodeSnappy(bufs.decoded, bufs.compressed, h.cfg.MaxDecodedBytes, held)
	}
	if err != nil || !f.rw2 {
		return bufs.decoded, err
	}
	bufs.rw1, err = bufs.rw2.Transcode(bufs.rw1[:0], bufs.decoded, int(min(h.cfg.MaxDecodedBytes, maxInt)))
	return bufs.rw1, err
}

const maxInt = int64(^uint(0) >> 1)

// setWritten sets the response headers the remote write 2.0 spec requires.
func setWritten(h http.Header, n written) {
	h.Set(HeaderSamplesWritten, strconv.Itoa(n.samples))
	h.Set(HeaderHistogramsWritten, strconv.Itoa(n.histograms))
	h.Set(HeaderExemplarsWritten, strconv.Itoa(n.exemplars))
}

// vmProtoHandshake answers the VictoriaMetrics remote-write protocol
// handshake (`?get_vm_proto_version=1` on a write path, which vmagent before
// v1.116 sends before using zstd) with "1": zstd bodies are accepted. A
// request with a body is a write whatever its query: answering it 200
// would drop its samples.
func vmProtoHandshake(w http.ResponseWriter, r *http.Request) bool {
	if r.URL.RawQuery == "" || r.ContentLength != 0 || r.URL.Query().Get("get_vm_proto_version") == "" {
		return false
	}
	_, _ = io.WriteString(w, "1")
	return true
}

// release pools the buffers of a request that ended with err, unless they
// are too large to keep: above maxPooledBuffer, or above
// maxPooledAfterRefusal for a request refused for its size or its body (a
// hostile body grows them as far as the limits let it, and pooled buffers
// are memory the budget does not see while they are idle).
func (h *Handler) release(b *receiveBuffers, err error) {
	b.req.ResetKeepingArena(b.decoded, b.rw1)
	b.compressed = nil
	b.rw2.hold, b.importer.hold = nil, nil
	if cap(b.decoded) > maxPooledBuffer || cap(b.rw1) > maxPooledBuffer || b.rw2.capacity() > maxPooledBuffer {
		return
	}
	if b.capacity() > maxPooledAfterRefusal && refusedBody(err) {
		return
	}
	h.pool.Put(b)
}

// maxPooledAfterRefusal is the most a refused request's buffers may hold
// and still be pooled.
const maxPooledAfterRefusal = 1 << 20

// refusedBody reports whether err refuses a request for what its body is
// or needs (invalid, too large, over the byte budget), not for what
// happened upstream.
func refusedBody(err error) bool {
	var de *DecodeError
	var se *StatusError
	switch {
	case errors.As(err, &de):
		return true
	case errors.As(err, &se):
		return se.Reason == ReasonTooLarge || se.Reason == ReasonInflightBytes
	}
	return false
}

// checkRequest validates method, content type, encoding and declared size,
// and says which message and compression the body is in.
func checkRequest(r *http.Request, maxBytes int64) (bodyFormat, error) {
	var f bodyFormat
	if r.Method != http.MethodPost {
		return f, &StatusError{Code: http.StatusMethodNotAllowed, Reason: ReasonMethod,
			Msg: fmt.Sprintf("method %s not allowed: remote write uses POST", r.Method)}
	}
	var err error
	if f.rw2, err = checkContentType(r.Header.Get("Content-Type")); err != nil {
		return f, err
	}
	if f.zstd, err = checkEncoding(r.Header.Get("Content-Encoding")); err != nil {
		return f, err
	}
	if r.ContentLength > maxBytes {
		return f, tooLarge("request body of %d bytes exceeds limits.max_request_bytes (%d)", r.ContentLength, maxBytes)
	}
	return f, nil
}

// checkEncoding accepts snappy (the remote-write specs) and zstd (the
// VictoriaMetrics remote-write protocol) and reports whether it is zstd.
func checkEncoding(enc string) (zstd bool, err error) {
	switch strings.ToLower(strings.TrimSpace(enc)) {
	case "snappy", "": // an empty encoding is taken as snappy, as vmagent and vminsert do
		return false, nil
	case "zstd":
		return true, nil
	}
	return false, &StatusError{Code: http.StatusUnsupportedMediaType, Reason: ReasonUnsupported,
		Msg: fmt.Sprintf("unsupported Content-Encoding %q: this proxy accepts snappy (remote write 1.0 and 2.0) and zstd (VictoriaMetrics remote write)", enc)}
}

// checkContentType accepts the RW1 and RW2 content types and reports
// whether it is RW2.
func checkContentType(ct string) (rw2 bool, err error) {
	switch ct {
	case "":
		return false, nil // many producers omit it; RW1, as the 2.0 spec says
	case "application/x-protobuf", ContentTypeRW1:
		return false, nil // what producers send, without ParseMediaType's map per request
	case ContentTypeRW2:
		return true, nil
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err == nil && mt == "application/x-protobuf" {
		switch proto := params["proto"]; proto {
		case "", protoRW1:
			return false, nil
		case protoRW2:
			return true, nil
		default:
			return false, &StatusError{Code: http.StatusUnsupportedMediaType, Reason: ReasonUnsupported,
				Msg: fmt.Sprintf("unsupported remote-write message %q: this proxy accepts %s (remote write 1.0) and %s (remote write 2.0)", proto, protoRW1, protoRW2)}
		}
	}
	return false, &StatusError{Code: http.StatusUnsupportedMediaType, Reason: ReasonUnsupported,
		Msg: fmt.Sprintf("unsupported Content-Type %q: remote write uses %s or %s", ct, ContentTypeRW1, ContentTypeRW2)}
}

func tooLarge(format string, args ...any) error {
	return &StatusError{Code: http.StatusRequestEntityTooLarge, Reason: ReasonTooLarge, Msg: fmt.Sprintf(format, args...)}
}

// readBody reads the body through rd.pace into rd's buffer, at most
// maxBytes: 413 past that, 408 when it arrives too slowly (see bodyPace),
// 429 or 413 when the byte budget cannot take it, 400 when it cannot be
// read.
func readBody(rd *bodyReader, maxBytes int64, cfg *HandlerConfig) ([]byte, error) {
	var dst []byte
	if rd.buf != nil {
		dst = (*rd.buf)[:0]
	}
	dst, over, err := readAtMost(&rd.pace, dst, maxBytes, rd)
	switch {
	case over:
		err = tooLarge("request body exceeds limits.max_request_bytes (%d bytes)", maxBytes)
	case err != nil && !isStatus(err) && !isDecodeError(err):
		err = rd.pace.readError(err, cfg)
	}
	rd.pace.finish(err == nil)
	return dst, err
}

// isDecodeError reports whether err is a bad body (a streamed JSON
// import's bad line), an answer already.
func isDecodeError(err error) bool {
	var de *DecodeError
	return errors.As(err, &de)
}

// isStatus reports whether err is already an answer (a *StatusError, such
// as the byte budget's), not a read error to turn into one.
func isStatus(err error) bool {
	var se *StatusError
	return errors.As(err, &se)
}

// grower gives a full buffer room to grow: dst's bytes in a buffer of
// larger capacity, at most limit unless more is needed.
type grower interface {
	grow(dst []byte, limit int) ([]byte, error)
}

// readAtMost appends r's bytes to dst until EOF, stopping as soon as more
// than max bytes were read (over), so that memory never grows past max;
// g makes room when dst is full, and its error ends the read.
func readAtMost(r io.Reader, dst []byte, max int64, g grower) (out []byte, over bool, err error) {
	lr := io.LimitedReader{R: r, N: max + 1}
	for {
		if len(dst) == cap(dst) {
			if dst, err = g.grow(dst, int(min(max+1, maxInt))); err != nil {
				return dst, false, err
			}
		}
		n, err := lr.Read(dst[len(dst):cap(dst)])
		dst = dst[:len(dst)+n]
		if lr.N == 0 { // more than max bytes read, whatever g did with them
			return dst, true, nil
		}
		if errors.Is(err, io.EOF) {
			return dst, false, nil
		}
		if err != nil {
			return dst, false, err
		}
	}
}

// snappyStreamMagic starts every body in the snappy framed format.
var snappyStreamMagic = []byte("\xff\x06\x00\x00sNaPpY")

// decodeSnappy checks the decoded length announced in the snappy header
// against the limit before allocating, then decodes into dst's memory,
// growing it to exactly that length, reserved in held.
func decodeSnappy(dst, src []byte, maxDecoded int64, held *hold) ([]byte, error) {
	if bytes.HasPrefix(src, snappyStreamMagic) {
		return dst, &DecodeError{Reason: ReasonBadSnappy, Msg: "body is in the snappy framed (stream) format; remote write needs the snappy block format"}
	}
	n, err := s2.DecodedLen(src)
	if err != nil {
		return dst, &DecodeError{Reason: ReasonBadSnappy, Msg: "corrupt snappy block (remote write needs the snappy block format, not framed): " + err.Error()}
	}
	if int64(n) > maxDecoded {
		return dst, tooLarge("decoded request of %d bytes exceeds limits.max_decoded_bytes (%d)", n, maxDecoded)
	}
	dst, err = held.exactly(dst, n)
	if err != nil {
		return dst, err
	}
	out, err := s2.Decode(dst[:cap(dst)], src) // s2 reads every snappy block, about 3x faster
	if err != nil {
		return dst, &DecodeError{Reason: ReasonBadSnappy, Msg: "corrupt snappy block: " + err.Error()}
	}
	return out, nil
}

// reject answers the producer and counts the rejection.
func (h *Handler) reject(w http.ResponseWriter, r *http.Request, err error) {
	code, reason, retryAfter, msg := http.StatusInternalServerError, "internal", "", err.Error()
	var de *DecodeError
	var se *StatusError
	switch {
	case errors.As(err, &de):
		code, reason = http.StatusBadRequest, de.Reason
	case errors.As(err, &se):
		code, reason, retryAfter, msg = se.Code, se.Reason, se.RetryAfter, se.Msg
		if reason == "" {
			reason = reasonForCode(code)
		}
	}
	if c := rejectedByReason[reason]; c != nil {
		c.Inc()
	}
	if ok, suppressed := h.limit.Allow(reason); ok {
		h.log.Warn("rejected remote-write request", "path", r.URL.Path, "remote", r.RemoteAddr,
			"status", code, "reason", reason, "error", msg, "suppressed_since_last", suppressed)
	}
	if retryAfter != "" {
		w.Header().Set("Retry-After", retryAfter)
	}
	switch code {
	case http.StatusMethodNotAllowed:
		w.Header().Set("Allow", http.MethodPost)
	case http.StatusRequestTimeout:
		w.Header().Set("Connection", "close") // the rest of the body is not read
	}
	http.Error(w, msg, code)
}

func reasonForCode(code int) string {
	if code >= 400 && code < 500 && code != http.StatusTooManyRequests {
		return ReasonUpstreamReject
	}
	return ReasonUpstreamDown
}

// PathTenant tells whether path is a write path and returns the tenant it
// names: "" for /api/v1/write and /prometheus/api/v1/write, and the <tenant>
// segment, verbatim, of /insert/<tenant>/prometheus[/api/v1/write] (the paths
// vminsert serves), which the Processor parses.
func PathTenant(path string) (string, bool) {
	switch path {
	case "/api/v1/write", "/prometheus/api/v1/write", "/api/v1/push":
		return "", true
	}
	rest, ok := strings.CutPrefix(path, "/insert/")
	if !ok {
		return "", false
	}
	tenant, suffix, ok := strings.Cut(rest, "/")
	if !ok || tenant == "" {
		return "", false
	}
	switch suffix {
	case "prometheus", "prometheus/", "prometheus/api/v1/write", "prometheus/api/v1/push":
		return tenant, true
	}
	return "", false
}
