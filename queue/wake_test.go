package queue

import (
	"testing"
	"testing/synctest"
	"time"
)

// Wake cuts a delivery worker's retry backoff short: with a minute between
// retries, a block queued while the upstream is down is delivered as soon
// as Wake is called once the upstream is back, not when the backoff ends.
func TestQueueWakeEndsBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		up, down := downUntil()
		q := openTestQueue(t, t.TempDir(), up, func(o *Options) {
			o.RetryMinInterval, o.RetryMaxInterval = time.Minute, 10*time.Minute
		})
		const url = "http://a/write"
		mustSend(t, q, url, "queued while down")
		synctest.Wait() // the first attempt failed; the worker waits out its backoff
		down.Store(false)
		time.Sleep(30 * time.Second)
		synctest.Wait()
		if got := up.got(url); len(got) != 0 {
			t.Fatalf("delivered %v before the backoff ended without a Wake", got)
		}
		woken := time.Now()
		q.Wake()
		synctest.Wait()
		if got := up.got(url); len(got) != 1 || time.Since(woken) != 0 {
			t.Fatalf("after Wake delivered %v in %v, want the block at once", got, time.Since(woken))
		}
		// A Wake with nothing waiting changes nothing; the next outage backs off again.
		q.Wake()
		down.Store(true)
		mustSend(t, q, url, "second")
		synctest.Wait()
		if calls := up.calls[url]; calls != 3 {
			t.Fatalf("%d upstream calls, want 3 (down, delivered, down)", calls)
		}
	})
}
