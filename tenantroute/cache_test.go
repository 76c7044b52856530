package tenantroute

import (
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"sync"
	"testing"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"

	"github.com/scoreproxy/scoreproxy/remotewrite"
)

// processKnown decodes wr as the receive handler does (skipping the labels
// r knows) and routes it through r.
func processKnown(t testing.TB, r *Router, wr *prompb.WriteRequest) {
	t.Helper()
	raw, err := wr.Marshal()
	if err != nil {
		t.Error(err)
		return
	}
	var req remotewrite.Request
	if err := remotewrite.DecodeWriteRequestKnown(raw, &req, r); err != nil {
		t.Error(err)
		return
	}
	req.Compressed = snappy.Encode(nil, raw) // as the receive handler sets it
	if err := r.Process(context.Background(), &req, ""); err != nil {
		t.Error(err)
	}
}

// hintWorkload returns n series over 5 tenants, two of which differ from
// each other only in their last label value (the worst case for a wrong
// hint: a comparison that fails at the very end).
func hintWorkload(n int) []prompb.TimeSeries {
	out := make([]prompb.TimeSeries, 0, n)
	for i := range n {
		out = append(out, ts("__name__", "yhat", "for", fmt.Sprint("q", i%3), "instance", fmt.Sprint("host-", i/2),
			"vm_account_id", fmt.Sprint(i%5), "zz_last", fmt.Sprint(i%2)))
	}
	return out
}

// TestKnownHintsNeverMisroute: the rewrite cache checks the rewrite found
// last at the same position first (Router.Known). Requests with the same
// series in other orders, with new series, and with series that differ
// from the hinted one only in the last byte must be routed exactly as a
// router that has never seen a request routes them.
func TestKnownHintsNeverMisroute(t *testing.T) {
	opts := Options{BaseURL: base, TenantID: Multitenant, SplitTenants: true}
	warm := newRecorder()
	r := newTestRouter(t, opts, seedFormat, warm)
	series := hintWorkload(40)
	processKnown(t, r, &prompb.WriteRequest{Timeseries: series})

	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 20 {
		perm := append([]prompb.TimeSeries(nil), series...)
		rng.Shuffle(len(perm), func(i, j int) { perm[i], perm[j] = perm[j], perm[i] })
		if round%4 == 0 { // a series never seen, and some dropped
			perm = append(perm[:30], ts("__name__", "y", "vm_account_id", "7", "zz_last", fmt.Sprint(round)))
		}
		wr := &prompb.WriteRequest{Timeseries: perm}
		warm.byURL = map[string][]prompb.TimeSeries{}
		processKnown(t, r, wr)
		fresh := newRecorder()
		processKnown(t, newTestRouter(t, opts, seedFormat, fresh), wr)
		if got, want := warm.seriesByURL(), fresh.seriesByURL(); !reflect.DeepEqual(got, want) {
			t.Fatalf("round %d: a router with hints sent\n%v\nwant (a fresh router)\n%v", round, got, want)
		}
	}
}

// TestKnownHintsUnderConcurrentRequests: producers sending the same series
// in different orders at once keep overwriting each other's hints; every
// series must still reach its tenant with its own labels (run with -race).
func TestKnownHintsUnderConcurrentRequests(t *testing.T) {
	opts := Options{BaseURL: base, TenantID: Multitenant, SplitTenants: true}
	up := newRecorder()
	r := newTestRouter(t, opts, seedFormat, up)
	series := hintWorkload(60)
	const producers, rounds = 4, 25
	var wg sync.WaitGroup
	for p := range producers {
		perm := append([]prompb.TimeSeries(nil), series...)
		rand.New(rand.NewPCG(uint64(p), 9)).Shuffle(len(perm), func(i, j int) { perm[i], perm[j] = perm[j], perm[i] })
		wg.Go(func() {
			for range rounds {
				processKnown(t, r, &prompb.WriteRequest{Timeseries: perm})
			}
		})
	}
	wg.Wait()

	fresh := newRecorder()
	once := newTestRouter(t, opts, seedFormat, fresh)
	processKnown(t, once, &prompb.WriteRequest{Timeseries: series})
	want := map[string]map[string]int{} // url -> series text -> count
	for url, texts := range fresh.seriesByURL() {
		want[url] = map[string]int{}
		for _, s := range texts {
			want[url][s] = producers * rounds
		}
	}
	got := map[string]map[string]int{}
	for url, texts := range up.seriesByURL() {
		got[url] = map[string]int{}
		for _, s := range texts {
			got[url][s]++
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("concurrent producers: upstream got %v, want every series %d times at its tenant: %v", got, producers*rounds, want)
	}
}

// TestEveryCachedRewriteKnowsItsKey: a hint is taken only when the cached
// rewrite's key equals the series' label bytes, so a rewrite stored without
// its key would make every hint miss; and the presence record finds a key
// by the hash stored with it, so a wrong hash would make it a miss for
// ever. Every way of filling the cache (decoded with its lookups, whose
// hashes the decoder keeps, or without) must store the key and its hash.
func TestEveryCachedRewriteKnowsItsKey(t *testing.T) {
	modes := map[string]struct {
		opts   Options
		format map[string]string
	}{
		"pass-through":  {Options{BaseURL: base, TenantID: Multitenant}, nil},
		"metric_format": {Options{BaseURL: base, TenantID: Multitenant}, seedFormat},
		"split":         {Options{BaseURL: base, TenantID: Multitenant, SplitTenants: true}, seedFormat},
	}
	for name, m := range modes {
		t.Run(name, func(t *testing.T) {
			r := newTestRouter(t, m.opts, m.format, newRecorder())
			wr := &prompb.WriteRequest{Timeseries: hintWorkload(20)}
			// A series is stored at its second sighting (see
			// doorkeeper) and found by its hint at the third.
			for range 3 {
				processKnown(t, r, wr)
			}
			other := &prompb.WriteRequest{Timeseries: anomalyRequest(20, 3).Timeseries}
			for range 2 {
				if err := r.Process(context.Background(), decoded(t, other), ""); err != nil {
					t.Fatal(err)
				}
			}
			c := r.cache
			c.mu.RLock()
			defer c.mu.RUnlock()
			if len(c.cur) == 0 {
				t.Fatal("nothing was cached")
			}
			for k, e := range c.cur {
				if e.key != k {
					t.Fatalf("cached rewrite has key %q, stored under %q", e.key, k)
				}
				if e.hash != keyHash([]byte(k)) {
					t.Fatalf("cached rewrite of %q has hash %x, want %x", k, e.hash, keyHash([]byte(k)))
				}
			}
			for i := range 20 {
				if c.hints[i].Load() == nil {
					t.Errorf("series %d has no hint after three requests", i)
				}
			}
		})
	}
}
