package remotewrite

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"time"
)

// ReasonSlowBody is the rejection reason of a request whose body did not
// arrive in time (408): slower than limits.min_body_rate, or not complete
// within server.read_timeout.
const ReasonSlowBody = "slow_body"

// deadliner is the part of net/http's ResponseWriter that sets the
// connection's read deadline (what http.ResponseController uses).
type deadliner interface{ SetReadDeadline(time.Time) error }

// bodyPace reads a request body and holds it to the minimum rate: once the
// grace period has passed, the bytes received must keep up with the rate
// counted from the start of the body, i.e. the body of n bytes must be
// complete by start + grace + n/rate, and never later than start +
// read_timeout. It enforces that with the connection's read deadline, set
// once for a body with a Content-Length and moved on as a chunked body
// arrives, so a client that sends nothing is cut off as well as one that
// dribbles. It is reused across requests and allocates nothing.
type bodyPace struct {
	body     io.Reader
	conn     deadliner // nil: no deadline of its own (rate off, or not a net/http connection)
	rate     int64     // bytes per second
	grace    time.Duration
	start    time.Time
	limit    time.Time // start + read_timeout
	deadline time.Time // the read deadline set now
	length   int64     // Content-Length, -1 for chunked
	read     int64
}

// begin starts reading r's body through p with the handler's limits.
func (p *bodyPace) begin(w http.ResponseWriter, r *http.Request, cfg *HandlerConfig) {
	*p = bodyPace{body: r.Body, length: r.ContentLength, rate: cfg.MinBodyRate, grace: cfg.BodyRateGrace}
	conn, ok := w.(deadliner)
	if !ok || p.rate <= 0 {
		return
	}
	p.conn, p.start = conn, time.Now()
	p.limit = p.start.Add(cfg.ReadTimeout)
	if cfg.ReadTimeout <= 0 {
		p.limit = p.start.Add(24 * time.Hour)
	}
	p.setDeadline(max(p.length, 0))
}

// setDeadline sets the read deadline by which n bytes must have arrived.
func (p *bodyPace) setDeadline(n int64) {
	d := p.start.Add(p.grace + time.Duration(float64(n)/float64(p.rate)*float64(time.Second)))
	if d.After(p.limit) {
		d = p.limit
	}
	p.deadline = d
	_ = p.conn.SetReadDeadline(d)
}

// Read implements io.Reader; a chunked body moves the deadline on with
// every read.
func (p *bodyPace) Read(b []byte) (int, error) {
	n, err := p.body.Read(b)
	p.read += int64(n)
	if n > 0 && p.conn != nil && p.length < 0 && p.deadline.Before(p.limit) {
		p.setDeadline(p.read)
	}
	return n, err
}

// finish ends reading the body. After a complete body it lifts the
// deadline: the request's context is cancelled when a read of the
// connection fails, and net/http keeps one read pending while the request
// is processed. After an error the deadline stays, so that net/http, which
// reads what is left of a small body before it answers, gives up on a slow
// client at once.
func (p *bodyPace) finish(complete bool) {
	if complete && p.conn != nil {
		_ = p.conn.SetReadDeadline(time.Time{})
	}
	p.conn, p.body = nil, nil
}

// readError is the answer to a body whose read failed with err: 408 saying
// which limit it missed when the read hit the deadline, else 400.
func (p *bodyPace) readError(err error, cfg *HandlerConfig) error {
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		return &StatusError{Code: http.StatusBadRequest, Reason: ReasonBadProtobuf, Msg: "cannot read request body: " + err.Error()}
	}
	of := "of a chunked body"
	if p.length >= 0 {
		of = "of " + strconv.FormatInt(p.length, 10)
	}
	msg := fmt.Sprintf("request body not complete within server.read_timeout (%s): %d bytes received %s", cfg.ReadTimeout, p.read, of)
	if p.conn != nil && p.deadline.Before(p.limit) {
		msg = fmt.Sprintf("request body arrived slower than limits.min_body_rate (%d bytes/s, counted from the start of the body "+
			"once limits.body_rate_grace of %s has passed): %d bytes received %s in %s",
			p.rate, p.grace, p.read, of, time.Since(p.start).Round(time.Millisecond))
	}
	return &StatusError{Code: http.StatusRequestTimeout, Reason: ReasonSlowBody, Msg: msg}
}
