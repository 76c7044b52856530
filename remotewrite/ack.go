package remotewrite

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// maxAckMessage bounds StatusError.Msg: one failed upstream per tenant could
// otherwise make the answer to the producer arbitrarily large.
const maxAckMessage = 4 << 10

// Ack maps the results of all upstream requests made for one producer request
// to the answer the producer gets; nil when every upstream accepted the data.
//
// Producers follow the remote-write spec: they retry on 5xx and 429 and drop
// the data on other 4xx. One producer request may fan out to several tenants,
// so a single retryable failure makes the whole request retryable (some
// tenants then receive duplicates, which VictoriaMetrics deduplicates) rather
// than letting the producer drop a tenant's data:
//   - any failure without a response, 5xx, 429, or other non-4xx status:
//     429 when every retryable failure is a 429, else 503; Retry-After passed on;
//   - only 4xx other than 429: 400, so the producer drops the bad data.
func Ack(results []SendResult) *StatusError {
	var (
		failed, retryable, tooMany int
		retryAfter                 string
	)
	for _, r := range results {
		if r.OK() {
			continue
		}
		failed++
		if !isRetryable(r.StatusCode) {
			continue
		}
		retryable++
		if r.StatusCode == http.StatusTooManyRequests {
			tooMany++
		}
		retryAfter = laterRetryAfter(retryAfter, r.RetryAfter)
	}
	if failed == 0 {
		return nil
	}
	e := &StatusError{Code: http.StatusBadRequest, Msg: ackMessage(results)}
	switch {
	case retryable > 0 && tooMany == retryable:
		e.Code = http.StatusTooManyRequests
		e.RetryAfter = retryAfter
	case retryable > 0:
		e.Code = http.StatusServiceUnavailable
		e.RetryAfter = retryAfter
	}
	return e
}

// isRetryable reports whether the producer should retry after a non-2xx
// status: everything but the 4xx that mean "this data is bad".
func isRetryable(code int) bool {
	return code == http.StatusTooManyRequests || code < 400 || code >= 500
}

// ackMessage names each failed upstream, joined with "; " and bounded to
// maxAckMessage bytes; the ones that do not fit are counted at the end.
func ackMessage(results []SendResult) string {
	const tailRoom = 64 // room kept for "; and N more failed upstream(s)"
	limit := maxAckMessage - tailRoom
	var b strings.Builder
	left := countFailures(results)
	for _, r := range results {
		if r.OK() {
			continue
		}
		part := describeFailure(r)
		if b.Len() > 0 {
			part = "; " + part
		}
		if b.Len()+len(part) > limit {
			if b.Len() > 0 {
				break
			}
			part = truncateUTF8(part, limit)
		}
		b.WriteString(part)
		left--
	}
	if left > 0 {
		b.WriteString("; and " + strconv.Itoa(left) + " more failed upstream(s)")
	}
	return b.String()
}

// describeFailure renders one failed result, e.g.
// `upstream http://h/insert/5:0/prometheus/api/v1/write answered 400 Bad Request: <body>`;
// a Local one is its message, which names the URL itself.
func describeFailure(r SendResult) string {
	var s string
	switch {
	case r.Local:
		return truncateUTF8(r.Message, maxMessage)
	case r.StatusCode == 0:
		s = "upstream " + r.URL + " unreachable"
	default:
		s = "upstream " + r.URL + " answered " + strconv.Itoa(r.StatusCode)
		if text := http.StatusText(r.StatusCode); text != "" {
			s += " " + text
		}
	}
	if r.Message != "" {
		s += ": " + truncateUTF8(r.Message, maxMessage)
	}
	return s
}

// countFailures counts the non-2xx results.
func countFailures(results []SendResult) int {
	n := 0
	for _, r := range results {
		if !r.OK() {
			n++
		}
	}
	return n
}

// laterRetryAfter returns whichever Retry-After asks the producer to wait
// longer, so no upstream is retried before it said it can take data. A value
// that cannot be parsed loses to one that can; between two such, the first wins.
func laterRetryAfter(a, b string) string {
	if b == "" {
		return a
	}
	if a == "" {
		return b
	}
	now := time.Now()
	ta, okA := retryAfterTime(a, now)
	tb, okB := retryAfterTime(b, now)
	switch {
	case okA && okB && tb.After(ta), !okA && okB:
		return b
	}
	return a
}

// retryAfterTime parses Retry-After as delay seconds or an HTTP date.
func retryAfterTime(v string, now time.Time) (time.Time, bool) {
	v = strings.TrimSpace(v)
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil && secs >= 0 {
		return now.Add(time.Duration(secs) * time.Second), true
	}
	if t, err := http.ParseTime(v); err == nil {
		return t, true
	}
	return time.Time{}, false
}
