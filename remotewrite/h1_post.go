package remotewrite

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"
)

// postH1 sends one remote-write body through h1 (see h1.go). done false
// means the request is left to net/http: a header value h1 does not send
// as it is, or a redirect, which net/http follows.
func (c *Client) postH1(ctx context.Context, t *h1Target, body []byte, f wireFormat, now time.Time) (res SendResult, reason errReason, done bool) {
	auth := c.auth.header(now)
	if !validHeaderValue(auth) {
		return res, 0, false
	}
	if err := ctx.Err(); err != nil {
		return SendResult{Message: err.Error()}, classify(ctx, err), true
	}
	deadline := time.Now().Add(c.timeout)
	for attempt := 0; ; attempt++ {
		conn, reused, err := t.pool.get(ctx, deadline)
		if err != nil {
			return SendResult{Message: c.h1Message(ctx, err)}, classify(ctx, err), true
		}
		conn.head = c.appendHead(conn.head[:0], t, f, auth, len(body))
		res, keep, answered, err := roundTripBounded(ctx, conn, body, deadline)
		if err == nil {
			if keep {
				t.pool.put(conn)
			} else {
				conn.close()
			}
			return res, 0, res.StatusCode < 300 || res.StatusCode >= 400
		}
		conn.close()
		// A reused connection the server closed meanwhile fails before any
		// answer: send again once on a new connection, as net/http does.
		// The other idle connections are dropped first: when the upstream
		// restarted they are all dead, and each would fail a request.
		if reused && !answered && attempt == 0 && ctx.Err() == nil && !isTimeout(err) {
			t.pool.closeIdle()
			continue
		}
		return SendResult{Message: c.h1Message(ctx, err)}, classify(ctx, err), true
	}
}

// h1Message is the text of a transport error of h1. A timeout says which
// timeout ran out, in the words net/http's path uses ("context deadline
// exceeded"), so logs read the same whichever path sent the request.
func (c *Client) h1Message(ctx context.Context, err error) string {
	if ctx.Err() == nil && isTimeout(err) {
		return fmt.Sprintf("context deadline exceeded: no answer within the %s timeout (%v)", c.timeout, err)
	}
	return err.Error()
}

// roundTripBounded runs one round trip within deadline, and stops it when
// ctx is cancelled (sends from the router have no cancellation: nothing is
// registered for them).
func roundTripBounded(ctx context.Context, conn *h1Conn, body []byte, deadline time.Time) (res SendResult, keep, answered bool, err error) {
	if err := conn.SetDeadline(deadline); err != nil {
		return res, false, false, err
	}
	if ctx.Done() == nil {
		return conn.roundTrip(body)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	res, keep, answered, err = conn.roundTrip(body)
	if !stop() {
		keep = false // the deadline may have been cut: do not reuse
		if err != nil && ctx.Err() != nil {
			err = ctx.Err()
		}
	}
	return res, keep, answered, err
}

// appendHead renders the request head: the same header fields as the
// net/http path of post sends.
func (c *Client) appendHead(dst []byte, t *h1Target, f wireFormat, auth string, n int) []byte {
	dst = append(dst, t.head...)
	dst = appendField(dst, "User-Agent", c.userAgent)
	dst = appendField(dst, "Content-Type", f.contentType)
	if f.contentEncoding != "" {
		dst = appendField(dst, "Content-Encoding", f.contentEncoding)
	}
	if f.versionHeader != "" {
		dst = appendField(dst, f.versionHeader, f.version)
	}
	if auth != "" {
		dst = appendField(dst, "Authorization", auth)
	}
	dst = append(dst, "Content-Length: "...)
	dst = strconv.AppendInt(dst, int64(n), 10)
	return append(dst, "\r\n\r\n"...)
}

func appendField(dst []byte, name, value string) []byte {
	dst = append(dst, name...)
	dst = append(dst, ": "...)
	dst = append(dst, value...)
	return append(dst, "\r\n"...)
}

// isTimeout reports a deadline or timeout error.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}
