package remotewrite

import (
	"fmt"
	"net/http"
	"sync/atomic"

	"github.com/VictoriaMetrics/metrics"
)

// ReasonInflightBytes is the rejection reason of a request refused because
// the requests in progress hold limits.max_inflight_bytes already (429),
// and the limit's label in scoreproxy_limit_rejections_total.
const ReasonInflightBytes = "too_many_inflight_bytes"

var budgetRejections = metrics.GetOrCreateCounter(`scoreproxy_limit_rejections_total{limit="` + ReasonInflightBytes + `"}`)

// ByteBudget bounds, process-wide, the memory that requests in progress
// hold in their receive buffers: the body as read, its decoding (snappy,
// zstd, gzip), its RW1 transcoding (remote write 2.0, JSON import) and the
// transcoders' scratch. A request reserves capacity before it allocates it
// (one atomic add when it starts, one per buffer growth, one when it ends;
// never per sample) and gives it all back when it ends. A request that
// finds the budget used up by others gets 429 with Retry-After; one that
// alone would need more than the whole budget gets 413, since retrying it
// cannot help. The zero value is not usable; a nil *ByteBudget bounds
// nothing.
type ByteBudget struct {
	max  atomic.Int64
	used atomic.Int64
}

// NewByteBudget returns a budget of max bytes.
func NewByteBudget(max int64) *ByteBudget {
	b := &ByteBudget{}
	b.max.Store(max)
	return b
}

// SetMax changes the budget (on a reload); reservations already made stay.
func (b *ByteBudget) SetMax(max int64) { b.max.Store(max) }

// Max is the budget in bytes.
func (b *ByteBudget) Max() int64 { return b.max.Load() }

// Used is the number of bytes reserved now.
func (b *ByteBudget) Used() int64 {
	if b == nil {
		return 0
	}
	return b.used.Load()
}

// take reserves n bytes if they fit.
func (b *ByteBudget) take(n int64) bool {
	if b.used.Add(n) > b.max.Load() {
		b.used.Add(-n)
		return false
	}
	return true
}

// hold is one request's share of the budget: the capacity of the receive
// buffers it uses, reserved before they grow.
type hold struct {
	budget *ByteBudget // nil: no bound
	n      int64
}

// start begins a request's share of budget.
func (h *hold) start(budget *ByteBudget) { h.budget, h.n = budget, 0 }

// reserve adds n bytes to the request's share. A nil hold (a transcoder
// used on its own) bounds nothing.
func (h *hold) reserve(n int64) error {
	if h == nil || h.budget == nil || n <= 0 {
		return nil
	}
	if !h.budget.take(n) {
		return h.refusal(n)
	}
	h.n += n
	return nil
}

// refusal is the answer to a request whose next n bytes do not fit.
func (h *hold) refusal(n int64) error {
	budgetRejections.Inc()
	max := h.budget.Max()
	if h.n+n > max {
		return tooLarge("request needs more than limits.max_inflight_bytes (%d bytes) in memory to be read, decoded and "+
			"transcoded; send smaller requests", max)
	}
	return &StatusError{Code: http.StatusTooManyRequests, Reason: ReasonInflightBytes, RetryAfter: "1", Msg: fmt.Sprintf(
		"the requests in progress hold limits.max_inflight_bytes (%d bytes) of request data in memory; retry later", max)}
}

// give returns n bytes of the request's share early, once it no longer
// holds them.
func (h *hold) give(n int64) {
	if h != nil && h.budget != nil && n > 0 {
		h.budget.used.Add(-n)
		h.n -= n
	}
}

// grow implements grower for buffers that grow with the output (a gzip
// stream's): see room.
func (h *hold) grow(dst []byte, limit int) ([]byte, error) { return h.room(dst, 1, limit) }

// end gives the request's share back.
func (h *hold) end() {
	if h.budget != nil && h.n > 0 {
		h.budget.used.Add(-h.n)
	}
	h.budget, h.n = nil, 0
}

// exactly returns buf with a capacity of at least n, for a size known in
// advance (a snappy or zstd header): an allocation of exactly n, reserved.
// The buffer it replaces stays counted until the request ends: it is
// garbage, and memory, until the collector runs.
func (h *hold) exactly(buf []byte, n int) ([]byte, error) {
	if cap(buf) >= n {
		return buf, nil
	}
	if err := h.reserve(int64(n)); err != nil {
		return buf, err
	}
	grown := make([]byte, len(buf), n)
	copy(grown, buf)
	return grown, nil
}

// room returns buf with room for n more bytes: for output whose final size
// is not known, the capacity at least doubles (so that a request grows its
// buffer a few times, not per append), up to limit when that is larger
// than what is needed.
func (h *hold) room(buf []byte, n, limit int) ([]byte, error) {
	need := len(buf) + n
	if need <= cap(buf) {
		return buf, nil
	}
	size := max(need, 2*cap(buf), minGrowth)
	if size > limit {
		size = max(limit, need)
	}
	return h.exactly(buf, size)
}

// minGrowth is the smallest capacity a growing buffer gets.
const minGrowth = 4 << 10
