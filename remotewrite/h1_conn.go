package remotewrite

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http/httputil"
	"strconv"
	"time"
)

// h1Conn is one upstream connection of h1 (see h1.go), used by one request
// at a time.
type h1Conn struct {
	net.Conn               // the TLS connection for https
	tcp       *net.TCPConn // the TCP connection under it
	tls       bool
	br        *bufio.Reader
	head      []byte    // request head, rebuilt per request
	vec       [2][]byte // backing array of bufs
	bufs      net.Buffers
	body      io.LimitedReader
	scratch   []byte // for discarding response bodies; made on first use
	idleSince time.Time
}

// Limits of a response head: a line must fit the reader's buffer, and the
// whole head h1MaxHead bytes (net/http's default MaxResponseHeaderBytes is
// 1 MB; an upstream's answer to a remote write is a few lines).
const (
	h1ReadBuffer = 4 << 10
	h1MaxHead    = 64 << 10
)

var errH1HeadTooLong = errors.New("response head longer than 64 KiB")

func newH1Reader(c net.Conn) *bufio.Reader { return bufio.NewReaderSize(c, h1ReadBuffer) }

func (c *h1Conn) close() { _ = c.Conn.Close() }

// h1Head is what h1 reads of a response head.
type h1Head struct {
	status        int
	contentLength int64 // -1: not given
	chunked       bool
	close         bool // the server closes the connection after the body
	retryAfter    string
}

// roundTrip writes the request and reads the answer. keep says whether the
// connection can serve another request; answered whether any byte of a
// response arrived (a request on a reused connection that got none may be
// sent again on a new one, as net/http does).
func (c *h1Conn) roundTrip(body []byte) (res SendResult, keep, answered bool, err error) {
	if werr := c.write(body); werr != nil {
		// A server may answer before it has read the whole body (a 413, or
		// a 400 for a body over its limit) and close the connection, which
		// fails the write: its answer, if it arrived, says more than the
		// write error (net/http reads it too).
		if res, _, answered, err := c.readAnswer(); err == nil {
			return res, false, answered, nil
		}
		return res, false, false, fmt.Errorf("writing request: %w", werr)
	}
	res, keep, answered, err = c.readAnswer()
	if err != nil {
		err = fmt.Errorf("reading response: %w", err)
	}
	return res, keep, answered, err
}

// readAnswer reads a response: its status, Retry-After and, for a non-2xx
// status, the start of its body as the message.
func (c *h1Conn) readAnswer() (res SendResult, keep, answered bool, err error) {
	h, answered, err := c.readHead()
	if err != nil {
		return res, false, answered, err
	}
	res.StatusCode, res.RetryAfter = h.status, h.retryAfter
	res.Message, keep = c.readBody(h, !res.OK())
	return res, keep, true, nil
}

// h1JoinLimit bounds the head-plus-body copy of a TLS request; a larger body
// goes in a second Write, so a connection does not keep a buffer the size
// of the largest body it ever sent.
const h1JoinLimit = 64 << 10

// write sends c.head and body: one writev on plain TCP; on TLS one Write of
// both when small (fewer records), else two.
func (c *h1Conn) write(body []byte) error {
	if c.tls {
		if len(c.head)+len(body) > h1JoinLimit {
			if _, err := c.Conn.Write(c.head); err != nil {
				return err
			}
			_, err := c.Conn.Write(body)
			return err
		}
		c.head = append(c.head, body...)
		_, err := c.Conn.Write(c.head)
		return err
	}
	c.vec[0], c.vec[1] = c.head, body
	c.bufs = c.vec[:]
	_, err := c.bufs.WriteTo(c.tcp)
	c.vec[1] = nil // the body is the caller's
	return err
}

// readHead reads a response head, skipping informational (1xx) responses.
func (c *h1Conn) readHead() (h h1Head, answered bool, err error) {
	for {
		line, err := c.br.ReadSlice('\n')
		answered = answered || len(line) > 0
		if err != nil {
			return h, answered, lineError(err)
		}
		if h, err = parseStatusLine(line); err != nil {
			return h, true, err
		}
		if err = c.readFields(&h); err != nil {
			return h, true, err
		}
		switch {
		case h.status == 101:
			return h, true, errors.New("unexpected 101 Switching Protocols")
		case h.status >= 200:
			return h, true, nil
		}
	}
}

// lineError names a line that does not fit the reader's buffer.
func lineError(err error) error {
	if errors.Is(err, bufio.ErrBufferFull) {
		return fmt.Errorf("response line longer than %d bytes", h1ReadBuffer)
	}
	return err
}

// parseStatusLine reads "HTTP/1.x NNN reason". An HTTP/1.0 answer closes
// the connection (scoreproxy does not ask 1.0 servers to keep it).
func parseStatusLine(line []byte) (h1Head, error) {
	h := h1Head{contentLength: -1}
	line = bytes.TrimRight(line, "\r\n")
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' ||
		(len(line) > 12 && line[12] != ' ') {
		return h, fmt.Errorf("malformed status line %q", truncateUTF8(string(line), 80))
	}
	code, err := strconv.Atoi(string(line[9:12]))
	if err != nil || code < 100 {
		return h, fmt.Errorf("malformed status code in %q", truncateUTF8(string(line), 80))
	}
	h.status = code
	h.close = line[7] == '0'
	return h, nil
}

// readFields reads header fields up to the empty line and keeps the ones h1
// needs.
func (c *h1Conn) readFields(h *h1Head) error {
	total := 0
	for {
		line, err := c.br.ReadSlice('\n')
		if err != nil {
			return lineError(err)
		}
		if total += len(line); total > h1MaxHead {
			return errH1HeadTooLong
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			return nil
		}
		if line[0] == ' ' || line[0] == '\t' {
			continue // obsolete line folding: a continuation of a field h1 ignores
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return fmt.Errorf("malformed header line %q", truncateUTF8(string(line), 80))
		}
		if err := h.field(name, bytes.Trim(value, " \t")); err != nil {
			return err
		}
	}
}

// field applies one header field to h.
func (h *h1Head) field(name, value []byte) error {
	switch {
	case asciiEqualFold(name, "Content-Length"):
		n, err := strconv.ParseInt(string(value), 10, 64)
		if err != nil || n < 0 || (h.contentLength >= 0 && n != h.contentLength) {
			return fmt.Errorf("invalid Content-Length %q", truncateUTF8(string(value), 40))
		}
		h.contentLength = n
	case asciiEqualFold(name, "Transfer-Encoding"):
		if !asciiEqualFold(value, "chunked") {
			return fmt.Errorf("unsupported Transfer-Encoding %q", truncateUTF8(string(value), 40))
		}
		h.chunked = true
	case asciiEqualFold(name, "Connection"):
		if hasToken(value, "close") {
			h.close = true
		}
	case asciiEqualFold(name, "Retry-After"):
		h.retryAfter = string(value)
	}
	return nil
}

// readBody reads the body of a final response: its first maxMessage bytes
// as the message when wantMessage, the rest discarded up to maxDrain bytes.
// keep says the body was read to its end and the server keeps the
// connection open: it can serve another request.
func (c *h1Conn) readBody(h h1Head, wantMessage bool) (msg string, keep bool) {
	var r io.Reader
	switch {
	case h.status == 204 || h.status == 304:
		return "", !h.close
	case h.chunked:
		// A chunked body with a Content-Length is a framing error on the
		// server's side: read it as chunked and do not reuse the connection.
		h.close = h.close || h.contentLength >= 0
		r = httputil.NewChunkedReader(c.br)
	case h.contentLength == 0:
		return "", !h.close
	case h.contentLength > 0:
		c.body = io.LimitedReader{R: c.br, N: h.contentLength}
		r = &c.body
	default: // the body ends when the server closes the connection
		r, h.close = c.br, true
	}
	if wantMessage {
		buf := make([]byte, maxMessage)
		n, _ := io.ReadFull(r, buf)
		msg = messageText(buf[:n])
	}
	complete := c.discard(r, maxDrain)
	if complete && h.chunked {
		complete = c.skipTrailer()
	}
	return msg, complete && !h.close
}

// discard reads r to its end, at most limit bytes, and says whether it got
// there.
func (c *h1Conn) discard(r io.Reader, limit int64) bool {
	if c.scratch == nil {
		c.scratch = make([]byte, 4<<10)
	}
	for limit >= 0 {
		n, err := r.Read(c.scratch)
		limit -= int64(n)
		if err == io.EOF {
			return limit >= 0
		}
		if err != nil {
			return false
		}
	}
	return false
}

// skipTrailer reads the trailer fields after the last chunk, up to the
// empty line.
func (c *h1Conn) skipTrailer() bool {
	for total := 0; total <= h1MaxHead; {
		line, err := c.br.ReadSlice('\n')
		if err != nil {
			return false
		}
		total += len(line)
		if len(bytes.TrimRight(line, "\r\n")) == 0 {
			return true
		}
	}
	return false
}

// asciiEqualFold compares b with the ASCII string s, ignoring case.
func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		if lower(b[i]) != lower(s[i]) {
			return false
		}
	}
	return true
}

func lower(b byte) byte {
	if 'A' <= b && b <= 'Z' {
		return b + 'a' - 'A'
	}
	return b
}

// hasToken reports whether the comma-separated list v holds token.
func hasToken(v []byte, token string) bool {
	for len(v) > 0 {
		var item []byte
		item, v, _ = bytes.Cut(v, []byte(","))
		if asciiEqualFold(bytes.Trim(item, " \t"), token) {
			return true
		}
	}
	return false
}
