package remotewrite

import (
	"log/slog"
	"sync"
	"time"
)

// LogLimiter lets through at most Burst log lines per Interval for each key and
// counts the rest, so that a flood of bad input cannot flood the log or slow
// the hot path: Allow costs one mutex and no allocation.
type LogLimiter struct {
	Interval time.Duration
	Burst    int

	mu    sync.Mutex
	state map[string]*logWindow // guarded by mu
}

type logWindow struct {
	start      time.Time
	logged     int
	suppressed int
}

// NewLogLimiter returns a limiter allowing burst lines per interval and key.
func NewLogLimiter(interval time.Duration, burst int) *LogLimiter {
	return &LogLimiter{Interval: interval, Burst: burst, state: map[string]*logWindow{}}
}

// Allow reports whether a line for key may be logged now, and how many lines
// for key were suppressed since the last one let through (to mention in it).
func (l *LogLimiter) Allow(key string) (ok bool, suppressed int) { return l.AllowN(key, 1) }

// AllowN is Allow for n occurrences of key at once: at most one line is let
// through, and the other occurrences count as suppressed.
func (l *LogLimiter) AllowN(key string, n int) (ok bool, suppressed int) {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	w := l.state[key]
	if w == nil {
		w = &logWindow{start: now}
		l.state[key] = w
	}
	if now.Sub(w.start) >= l.Interval {
		w.start, w.logged = now, 0
	}
	if w.logged >= l.Burst {
		w.suppressed += n
		return false, 0
	}
	w.logged++
	suppressed, w.suppressed = w.suppressed, n-1
	return true, suppressed
}

// Warn logs msg at warning level through the limiter.
func (l *LogLimiter) Warn(logger *slog.Logger, key, msg string, args ...any) {
	ok, suppressed := l.Allow(key)
	if !ok {
		return
	}
	if suppressed > 0 {
		args = append(args, "suppressed_since_last", suppressed)
	}
	logger.Warn(msg, args...)
}
