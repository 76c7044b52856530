package queue

import (
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/scoreproxy/scoreproxy/remotewrite"
)

// outcome is what the delivery worker does after one upstream attempt.
type outcome int

const (
	delivered outcome = iota // 2xx: done
	retry                    // no answer, 429, 5xx (or an unexpected 1xx/3xx): try again later
	reject                   // other 4xx: the data is bad; set it aside
)

func (o outcome) String() string { return [...]string{"delivered", "retry", "reject"}[o] }

// classify maps an upstream result to an outcome, as the remote-write spec
// asks of a sender and as remotewrite.Ack answers producers: only a 4xx
// other than 429 says the data itself will never be accepted.
func classify(r remotewrite.SendResult) outcome {
	switch {
	case r.OK():
		return delivered
	case r.StatusCode == http.StatusTooManyRequests, r.StatusCode < 400, r.StatusCode >= 500:
		return retry
	}
	return reject
}

// backoff computes the wait before a retry: exponential from min, doubling
// per failed attempt up to max, with "equal jitter" (a random point in the
// upper half) so that endpoints failing together do not retry in lockstep,
// and never below min. A Retry-After from the upstream is honoured, up to
// max, so a wrong header cannot stall delivery for hours.
type backoff struct {
	min, max time.Duration
	rand     func() float64 // in [0, 1); rand.Float64 unless a test replaces it
}

// delay returns the wait after the failed attempt number attempt (0 for the
// first) whose answer carried retryAfter ("" if none).
func (b backoff) delay(attempt int, retryAfter string, now time.Time) time.Duration {
	d := b.max
	if attempt < 62 && b.min<<attempt > 0 && b.min<<attempt < b.max {
		d = b.min << attempt
	}
	rnd := b.rand
	if rnd == nil {
		rnd = rand.Float64
	}
	d = d/2 + time.Duration(rnd()*float64(d/2))
	d = max(d, b.min)
	if ra, ok := parseRetryAfter(retryAfter, now); ok {
		d = max(d, min(ra, b.max))
	}
	return d
}

// parseRetryAfter reads Retry-After as delay seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs < 0 {
			return 0, false
		}
		return time.Duration(min(secs, int64(24*time.Hour/time.Second))) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}
