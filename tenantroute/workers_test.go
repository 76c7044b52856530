package tenantroute

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestSendWorkersRunEveryJobAndExitWhenIdle: every job runs, idle workers
// take later jobs instead of new goroutines starting, and all workers are
// gone once idle for the idle time.
func TestSendWorkersRunEveryJobAndExitWhenIdle(t *testing.T) {
	before := runtime.NumGoroutine()
	p := newSendWorkers(50 * time.Millisecond)
	var ran atomic.Int64
	for round := 0; round < 20; round++ {
		var wg sync.WaitGroup
		wg.Add(8)
		for range 8 {
			p.run(func() { defer wg.Done(); ran.Add(1) })
		}
		wg.Wait()
	}
	if got := ran.Load(); got != 160 {
		t.Fatalf("%d jobs ran, want 160", got)
	}
	// A worker that has just finished a job may not be waiting for the
	// next one yet, so a round can start a few new workers; without reuse
	// every one of the 160 jobs would have started its own.
	if n := runtime.NumGoroutine() - before; n >= 80 {
		t.Errorf("%d workers alive after 20 rounds of 8 jobs; idle workers should have been reused", n)
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			t.Fatalf("%d workers still alive long after the idle time", runtime.NumGoroutine()-before)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
