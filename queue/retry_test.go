package queue

import (
	"net/http"
	"testing"
	"time"

	"github.com/scoreproxy/scoreproxy/remotewrite"
)

func TestClassify(t *testing.T) {
	tests := []struct {
		code int
		want outcome
	}{
		{0, retry}, // connection refused, timeout
		{200, delivered},
		{204, delivered},
		{301, retry},
		{400, reject},
		{401, reject},
		{403, reject},
		{404, reject},
		{413, reject},
		{429, retry},
		{500, retry},
		{502, retry},
		{503, retry},
		{504, retry},
	}
	for _, tt := range tests {
		if got := classify(remotewrite.SendResult{StatusCode: tt.code}); got != tt.want {
			t.Errorf("classify(%d) = %v, want %v", tt.code, got, tt.want)
		}
	}
}

func TestBackoff(t *testing.T) {
	now := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	b := func(r float64) backoff {
		return backoff{min: time.Second, max: time.Minute, rand: func() float64 { return r }}
	}
	tests := []struct {
		name       string
		rand       float64
		attempt    int
		retryAfter string
		want       time.Duration
	}{
		{"first retry, lowest jitter: never below min", 0, 0, "", time.Second},
		{"first retry, highest jitter", 0.999999, 0, "", time.Second},
		{"third retry, lowest jitter is half of 4s", 0, 2, "", 2 * time.Second},
		{"third retry, middle jitter", 0.5, 2, "", 3 * time.Second},
		{"capped at max", 0, 20, "", 30 * time.Second},
		{"capped at max, highest jitter", 0.999999, 20, "", time.Minute - 60*time.Microsecond},
		{"huge attempt does not overflow", 0, 1000, "", 30 * time.Second},
		{"Retry-After seconds longer than backoff", 0, 0, "7", 7 * time.Second},
		{"Retry-After shorter than backoff", 0, 4, "1", 8 * time.Second},
		{"Retry-After HTTP date", 0, 0, now.Add(10 * time.Second).Format(http.TimeFormat), 10 * time.Second},
		{"Retry-After past date", 0, 0, now.Add(-time.Hour).Format(http.TimeFormat), time.Second},
		{"Retry-After beyond max is cut to max", 0, 0, "3600", time.Minute},
		{"Retry-After garbage is ignored", 0, 0, "soon", time.Second},
		{"Retry-After negative is ignored", 0, 0, "-5", time.Second},
	}
	for _, tt := range tests {
		got := b(tt.rand).delay(tt.attempt, tt.retryAfter, now)
		if got.Round(time.Millisecond) != tt.want.Round(time.Millisecond) {
			t.Errorf("%s: delay = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// The default jitter stays within [min, max] whatever the attempt.
func TestBackoffBounds(t *testing.T) {
	b := backoff{min: 100 * time.Millisecond, max: 2 * time.Second}
	for attempt := range 40 {
		for range 50 {
			if d := b.delay(attempt, "", time.Now()); d < b.min || d > b.max {
				t.Fatalf("attempt %d: delay %v outside [%v, %v]", attempt, d, b.min, b.max)
			}
		}
	}
}
