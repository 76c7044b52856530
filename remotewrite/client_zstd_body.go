package remotewrite

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
)

// maxPooledBody bounds the buffers kept for reuse: a rare huge batch should
// not pin its memory for the life of the process.
const maxPooledBody = 8 << 20

// outBody is a request body whose buffer the Client owns (a zstd re-encoding,
// JSON lines). http.RoundTripper may read and close a body after RoundTrip
// returns, so the buffer is reused only once the transport has closed it;
// otherwise it is left to the garbage collector.
type outBody struct {
	rd     bytes.Reader
	closed atomic.Bool
	// buf is the payload, built by the owner before the request.
	buf []byte
}

var outBodies = sync.Pool{New: func() any { return new(outBody) }}

// getOutBody returns an empty body with a reused buffer.
func getOutBody() *outBody {
	b := outBodies.Get().(*outBody)
	b.buf = b.buf[:0]
	b.closed.Store(false)
	return b
}

// release gives b back for reuse if the transport is done with it.
func (b *outBody) release() {
	if !b.closed.Load() || cap(b.buf) > maxPooledBody {
		return
	}
	b.rd.Reset(nil)
	outBodies.Put(b)
}

func (b *outBody) Read(p []byte) (int, error) { return b.rd.Read(p) }

// Close is called by the transport once it has stopped reading.
func (b *outBody) Close() error {
	b.closed.Store(true)
	return nil
}

// replay is http.Request.GetBody: a redirect re-sends a copy, made while
// the buffer is still ours (the Client calls it within Do).
func (b *outBody) replay() (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(bytes.Clone(b.buf))), nil
}

// newPostRequest builds a POST of payload, or of owned's buffer when owned
// is not nil.
func newPostRequest(ctx context.Context, rawURL string, payload []byte, owned *outBody) (*http.Request, error) {
	if owned == nil {
		return http.NewRequestWithContext(ctx, http.MethodPost, rawURL, bytes.NewReader(payload))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, rawURL, nil)
	if err != nil {
		return nil, err
	}
	if len(owned.buf) == 0 {
		owned.closed.Store(true) // never handed to the transport
		return req, nil
	}
	owned.rd.Reset(owned.buf)
	req.Body = owned
	req.ContentLength = int64(len(owned.buf))
	req.GetBody = owned.replay
	return req, nil
}
