package remotewrite

import (
	"bytes"
	"math/bits"
	"sync"
)

// Body buffers come in capacity classes, from 4 KiB to 16 MiB, each with
// its own pool: powers of two and the sizes half-way between them (6, 12,
// 24 KiB...), so that a body of known length wastes at most a third of its
// buffer. A request reading its body holds a buffer about the size of what
// it has received so far, whatever requests before it left in the pools,
// and a client that sends slowly holds little memory and little of the
// budget (see ByteBudget).
const (
	minBodyClassBits = 12 // 4 KiB
	maxBodyClassBits = 24 // 16 MiB
	// firstBodyBuffer is the most a body buffer starts with, whatever the
	// Content-Length announces: a body grows past it by doubling as it
	// arrives, so holding n bytes costs a client about n/2 bytes sent.
	firstBodyBuffer = 64 << 10
	numBodyClasses  = 2*(maxBodyClassBits-minBodyClassBits) + 1
)

// bodyPools are the pools of body buffers, one per class, of *[]byte (a
// pointer, so that Get and Put do not allocate).
type bodyPools [numBodyClasses]sync.Pool

// bodyClass returns the class of the smallest pooled buffer holding n
// bytes, or -1 when n is larger than the largest class. Class 2i is
// 1<<(minBodyClassBits+i) bytes, class 2i-1 three quarters of that.
func bodyClass(n int) int {
	if n <= 1<<minBodyClassBits {
		return 0
	}
	b := bits.Len(uint(n - 1)) // 1<<b is the power of two at or above n
	if b > maxBodyClassBits {
		return -1
	}
	c := 2 * (b - minBodyClassBits)
	if n <= 3<<(b-2) {
		c--
	}
	return c
}

// bodyClassSize is the capacity of the buffers of class c.
func bodyClassSize(c int) int {
	size := 1 << (minBodyClassBits + (c+1)/2)
	if c%2 == 1 {
		size = size / 4 * 3
	}
	return size
}

// get returns a buffer of capacity at least n: a pooled one of n's class,
// or, beyond the largest class, one of exactly n bytes.
func (p *bodyPools) get(n int) *[]byte {
	c := bodyClass(n)
	if c < 0 {
		b := make([]byte, 0, n)
		return &b
	}
	if b, ok := p[c].Get().(*[]byte); ok {
		return b
	}
	b := make([]byte, 0, bodyClassSize(c))
	return &b
}

// put returns a buffer that get gave; one beyond the largest class is
// dropped.
func (p *bodyPools) put(b *[]byte) {
	n := cap(*b)
	if c := bodyClass(n); c >= 0 && n == bodyClassSize(c) {
		*b = (*b)[:0]
		p[c].Put(b)
	}
}

// bodyReader is one request's state while its body is read: the pace, the
// body buffer, and the request's share of the byte budget, which it keeps
// until the request ends. It is pooled and allocates nothing.
type bodyReader struct {
	pace  bodyPace
	hold  hold
	buf   *[]byte // from pools; nil until the body needs one
	pools *bodyPools
	want  int     // the Content-Length, -1 when unknown
	extra []Label // a JSON import's extra_label arguments
	// stream, when set, transcodes an uncompressed JSON import's complete
	// lines as they arrive (see importStream); it points to streamState.
	stream      *importStream
	streamState importStream
}

// importStream is an uncompressed JSON import transcoded as it is read:
// each time the body buffer fills, its complete lines are transcoded into
// out and the incomplete last one moves to the front, so the buffer holds
// about a read's worth of the body, or one line, not all of it. What the
// read leaves at its end is transcoded by importBody.
type importStream struct {
	t     *ImportTranscoder
	out   *[]byte // the transcoding so far: the request's rw1 buffer
	extra []Label
	limit int   // limits.max_decoded_bytes of output
	done  int64 // body bytes transcoded so far
}

// consume transcodes the complete lines of dst, a full body buffer, and
// returns what is left of it at its start.
func (s *importStream) consume(dst []byte) ([]byte, error) {
	nl := bytes.LastIndexByte(dst, '\n')
	if nl < 0 {
		return dst, nil
	}
	out, err := s.t.transcodeLines(*s.out, dst[:nl+1], s.extra, s.limit)
	*s.out = out
	if err != nil {
		return dst, err
	}
	s.done += int64(nl + 1)
	return dst[:copy(dst, dst[nl+1:])], nil
}

// grow implements grower for the body: a buffer of the next class (double
// the capacity, at most the Content-Length or limit), reserved in the
// budget, with dst's bytes copied into it; the old one goes back to its
// pool. A stream first makes room by transcoding the buffer's complete
// lines, and keeps the buffer while that frees at least half of it.
func (rd *bodyReader) grow(dst []byte, limit int) ([]byte, error) {
	if rd.stream != nil && cap(dst) > 0 {
		var err error
		if dst, err = rd.stream.consume(dst); err != nil || len(dst) <= cap(dst)/2 {
			return dst, err
		}
	}
	if rd.want >= 0 && rd.want < limit && len(dst) < rd.want {
		limit = rd.want
	}
	n := min(max(2*cap(dst), len(dst)+1), limit)
	if cap(dst) == 0 {
		n = min(max(limit, 1), firstBodyBuffer)
	}
	next := rd.pools.get(n)
	if err := rd.hold.reserve(int64(cap(*next) - cap(dst))); err != nil {
		rd.pools.put(next)
		return dst, err
	}
	*next = append((*next)[:0], dst...)
	if rd.buf != nil {
		rd.pools.put(rd.buf)
	}
	rd.buf = next
	return *next, nil
}

// releaseBody returns the body buffer, and its part of the budget share,
// before the request ends: a JSON import's body is spent once it is
// transcoded, and another request can read into it while this one is
// routed and sent.
func (rd *bodyReader) releaseBody() {
	if rd.buf != nil {
		rd.hold.give(int64(cap(*rd.buf)))
		rd.pools.put(rd.buf)
		rd.buf = nil
	}
}

// done returns the body buffer and the budget share.
func (rd *bodyReader) done() {
	if rd.buf != nil {
		rd.pools.put(rd.buf)
		rd.buf = nil
	}
	rd.hold.end()
	rd.extra, rd.stream = nil, nil
}
