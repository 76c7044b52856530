package remotewrite

import (
	"math/bits"
	"sync"
)

// Body buffers come in capacity classes, powers of two from 4 KiB to
// 16 MiB, each with its own pool: a request reading its body holds a
// buffer about the size of what it has received so far, whatever requests
// before it left in the pools, and a client that sends slowly holds little
// memory and little of the budget (see ByteBudget).
const (
	minBodyClassBits = 12 // 4 KiB
	maxBodyClassBits = 24 // 16 MiB
	// firstBodyBuffer is the most a body buffer starts with, whatever the
	// Content-Length announces: a body grows past it by doubling as it
	// arrives, so holding n bytes costs a client about n/2 bytes sent.
	firstBodyBuffer = 64 << 10
)

// bodyPools are the pools of body buffers, one per class, of *[]byte (a
// pointer, so that Get and Put do not allocate).
type bodyPools [maxBodyClassBits - minBodyClassBits + 1]sync.Pool

// bodyClass returns the class of the smallest pooled buffer holding n bytes,
// or -1 when n is larger than the largest class.
func bodyClass(n int) int {
	if n <= 1<<minBodyClassBits {
		return 0
	}
	b := bits.Len(uint(n - 1))
	if b > maxBodyClassBits {
		return -1
	}
	return b - minBodyClassBits
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
	b := make([]byte, 0, 1<<(c+minBodyClassBits))
	return &b
}

// put returns a buffer that get gave; one beyond the largest class is
// dropped.
func (p *bodyPools) put(b *[]byte) {
	n := cap(*b)
	if c := bodyClass(n); c >= 0 && n == 1<<(c+minBodyClassBits) {
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
}

// grow implements grower for the body: a buffer of the next class (double
// the capacity, at most the Content-Length or limit), reserved in the
// budget, with dst's bytes copied into it; the old one goes back to its
// pool.
func (rd *bodyReader) grow(dst []byte, limit int) ([]byte, error) {
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

// done returns the body buffer and the budget share.
func (rd *bodyReader) done() {
	if rd.buf != nil {
		rd.pools.put(rd.buf)
		rd.buf = nil
	}
	rd.hold.end()
	rd.extra = nil
}
