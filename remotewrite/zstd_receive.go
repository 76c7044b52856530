package remotewrite

import (
	"errors"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// ReasonBadZstd is the rejection reason of a body that is not valid zstd.
const ReasonBadZstd = "bad_zstd"

// zstdReceiver decodes request bodies sent with Content-Encoding: zstd (the
// VictoriaMetrics remote-write protocol, which vmagent v1.116+ speaks by
// default) without ever holding more than the decoded-size limit: a frame
// whose header announces a larger content size is rejected before anything
// is allocated, and a frame without a size is decoded only up to the limit.
type zstdReceiver struct {
	maxDecoded int64
	once       sync.Once
	// dec is shared: DecodeAll is safe for concurrent use and keeps a pool
	// of block decoders (one per CPU) that are reused across requests.
	dec *zstd.Decoder
	err error
}

func newZstdReceiver(maxDecoded int64) *zstdReceiver {
	return &zstdReceiver{maxDecoded: max(maxDecoded, 1)}
}

// decoder creates the shared decoder on the first zstd request.
func (z *zstdReceiver) decoder() (*zstd.Decoder, error) {
	z.once.Do(func() {
		z.dec, z.err = zstd.NewReader(nil, zstd.WithDecoderMaxMemory(uint64(z.maxDecoded)),
			zstd.WithDecoderConcurrency(0), zstd.WithDecoderLowmem(true))
	})
	return z.dec, z.err
}

// decode decompresses src into dst's memory (reused across requests).
func (z *zstdReceiver) decode(dst, src []byte) ([]byte, error) {
	var h zstd.Header
	if h.Decode(src) == nil && h.HasFCS && h.FrameContentSize > uint64(z.maxDecoded) {
		return dst, tooLarge("decoded request of %d bytes (zstd frame header) exceeds limits.max_decoded_bytes (%d)",
			h.FrameContentSize, z.maxDecoded)
	}
	dec, err := z.decoder()
	if err != nil {
		return dst, err
	}
	out, err := dec.DecodeAll(src, dst[:0])
	switch {
	case errors.Is(err, zstd.ErrDecoderSizeExceeded) || errors.Is(err, zstd.ErrWindowSizeExceeded):
		return dst, tooLarge("decoded zstd request exceeds limits.max_decoded_bytes (%d)", z.maxDecoded)
	case err != nil:
		return dst, &DecodeError{Reason: ReasonBadZstd, Msg: "corrupt zstd body (Content-Encoding: zstd): " + err.Error()}
	}
	return out, nil
}
