package remotewrite

import (
	"bytes"
	"context"
	"errors"
	"runtime"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// ReasonBadZstd is the rejection reason of a body that is not valid zstd.
const ReasonBadZstd = "bad_zstd"

// streamWindow is the largest window a zstd frame whose header does not
// say its content size may use: the window of zstd's level 19 and of
// klauspost's stream encoder. A stream decoder holds a buffer of that size
// (and two blocks), and there are at most GOMAXPROCS of them.
const streamWindow = 8 << 20

// zstdReceiver decodes request bodies sent with Content-Encoding: zstd (the
// VictoriaMetrics remote-write protocol, which vmagent v1.116+ speaks by
// default) into a buffer of exactly the decoded size, reserved in the
// request's byte budget before it is allocated, and never larger than the
// decoded-size limit:
//   - a frame whose header announces its content size (what vmagent and
//     every one-shot encoder write) is checked against the limit and
//     decoded in one pass;
//   - a body whose size the header does not say (a stream, or several
//     frames) is first measured with a stream decoder that discards what
//     it decodes and stops at the limit, then decoded in one pass. A zstd
//     bomb without a content size thus costs CPU up to the limit and the
//     stream decoder's window, not the memory it expands to.
type zstdReceiver struct {
	maxDecoded int64
	once       sync.Once
	// dec is shared: DecodeAll is safe for concurrent use and keeps a pool
	// of block decoders (one per CPU) that are reused across requests. It
	// decodes only into the capacity it is given (WithDecodeAllCapLimit).
	dec *zstd.Decoder
	err error
	// streams holds the stream decoders for measuring, their decoders
	// created on first use: as many as there are CPUs, since measuring is
	// CPU work, so that their windows are a fixed amount of memory
	// whatever the load.
	streams chan *streamDecoder
}

// streamDecoder measures zstd bodies without allocating once warm.
type streamDecoder struct {
	dec   *zstd.Decoder
	src   bytes.Reader
	count sizeCounter
}

func newZstdReceiver(maxDecoded int64) *zstdReceiver {
	z := &zstdReceiver{maxDecoded: max(maxDecoded, 1), streams: make(chan *streamDecoder, runtime.GOMAXPROCS(0))}
	for range cap(z.streams) {
		z.streams <- &streamDecoder{}
	}
	return z
}

// decoder creates the shared decoder on the first zstd request.
func (z *zstdReceiver) decoder() (*zstd.Decoder, error) {
	z.once.Do(func() {
		z.dec, z.err = zstd.NewReader(nil, zstd.WithDecoderMaxMemory(uint64(z.maxDecoded)),
			zstd.WithDecoderConcurrency(0), zstd.WithDecoderLowmem(true), zstd.WithDecodeAllCapLimit(true))
	})
	return z.dec, z.err
}

// decode decompresses src into dst's memory (reused across requests),
// grown to the decoded size and reserved in held; a body that must be
// measured first waits for a stream decoder until ctx ends.
func (z *zstdReceiver) decode(ctx context.Context, dst, src []byte, held *hold) ([]byte, error) {
	dec, err := z.decoder()
	if err != nil {
		return dst, err
	}
	var h zstd.Header
	if h.Decode(src) == nil && h.HasFCS {
		if h.FrameContentSize > uint64(z.maxDecoded) {
			return dst, tooLarge("decoded request of %d bytes (zstd frame header) exceeds limits.max_decoded_bytes (%d)",
				h.FrameContentSize, z.maxDecoded)
		}
		out, err := z.decodeInto(dec, dst, src, int(h.FrameContentSize), held)
		if !errors.Is(err, zstd.ErrDecoderSizeExceeded) {
			return out, err
		}
		dst = out // the body holds more than its first frame: measure it
	}
	size, err := z.measure(ctx, src)
	if err != nil {
		return dst, err
	}
	out, err := z.decodeInto(dec, dst, src, size, held)
	if errors.Is(err, zstd.ErrDecoderSizeExceeded) {
		return out, badZstd(errors.New("frames decode to more than they measured"))
	}
	return out, err
}

// decodeInto decodes src into dst grown to size bytes; a body that decodes
// to more fails with zstd.ErrDecoderSizeExceeded.
func (z *zstdReceiver) decodeInto(dec *zstd.Decoder, dst, src []byte, size int, held *hold) ([]byte, error) {
	dst, err := held.exactly(dst[:0], size)
	if err != nil {
		return dst, err
	}
	out, err := dec.DecodeAll(src, dst[:0])
	switch {
	case errors.Is(err, zstd.ErrDecoderSizeExceeded):
		return dst, err
	case errors.Is(err, zstd.ErrWindowSizeExceeded):
		return dst, tooLarge("decoded zstd request exceeds limits.max_decoded_bytes (%d)", z.maxDecoded)
	case err != nil:
		return dst, badZstd(err)
	}
	return out, nil
}

// measure returns the decoded size of src by decoding it as a stream and
// discarding the output, stopping past the limit.
func (z *zstdReceiver) measure(ctx context.Context, src []byte) (int, error) {
	var d *streamDecoder
	select {
	case d = <-z.streams:
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	defer func() { z.streams <- d }()
	if d.dec == nil {
		var err error
		if d.dec, err = zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true),
			zstd.WithDecoderMaxWindow(streamWindow)); err != nil {
			return 0, err
		}
	}
	d.src.Reset(src)
	defer d.src.Reset(nil) // drop the reference to src
	if err := d.dec.Reset(&d.src); err != nil {
		return 0, badZstd(err)
	}
	d.count = sizeCounter{max: z.maxDecoded}
	_, err := d.dec.WriteTo(&d.count)
	switch {
	case d.count.over:
		return 0, tooLarge("decoded zstd request exceeds limits.max_decoded_bytes (%d)", z.maxDecoded)
	case errors.Is(err, zstd.ErrWindowSizeExceeded) || errors.Is(err, zstd.ErrDecoderSizeExceeded):
		return 0, tooLarge("zstd body without a content size in its frame header uses a window of more than %d bytes; "+
			"compress it with a smaller window (zstd level 19 or below) or with the content size (e.g. one-shot)", streamWindow)
	case err != nil:
		return 0, badZstd(err)
	}
	return int(d.count.n), nil
}

func badZstd(err error) error {
	return &DecodeError{Reason: ReasonBadZstd, Msg: "corrupt zstd body (Content-Encoding: zstd): " + err.Error()}
}

// errOverLimit stops a measuring decoder once the output passed the limit.
var errOverLimit = errors.New("decoded size over the limit")

// sizeCounter is an io.Writer that counts and discards, and fails once more
// than max bytes were written.
type sizeCounter struct {
	n, max int64
	over   bool
}

func (c *sizeCounter) Write(b []byte) (int, error) {
	c.n += int64(len(b))
	if c.n > c.max {
		c.over = true
		return 0, errOverLimit
	}
	return len(b), nil
}
