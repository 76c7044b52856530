package tenantroute

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/prometheus/prometheus/prompb"

	"github.com/scoreproxy/scoreproxy/remotewrite"
)

// The admitted fraction halves when a generation fills while few lookups
// hit, never below 1/2^maxAdmitShift, and doubles again after
// admitRelaxLookups lookups without a generation change.
func TestAdmissionAdapts(t *testing.T) {
	a := newAdmission()
	steps := []struct {
		name            string
		lookups, hits   int
		filled          bool
		wantShift       uint32
		wantAdmitsShare float64 // of 4096 distinct keys, about
	}{
		{"starts admitting all", 0, 0, false, 0, 1},
		{"a generation fills with many hits", 1000, 900, true, 0, 1},
		{"a generation fills with few hits", 1000, 100, true, 1, 0.5},
		{"again", 1000, 0, true, 2, 0.25},
		{"and again", 1000, 0, true, 3, 0.125},
		{"many lookups without a new generation", admitRelaxLookups, 0, false, 2, 0.25},
	}
	for _, st := range steps {
		a.counted(st.lookups, st.hits)
		if st.filled {
			a.generationFilled()
		}
		if got := a.shift.Load(); got != st.wantShift {
			t.Fatalf("%s: shift %d, want %d", st.name, got, st.wantShift)
		}
		admitted := 0
		for i := range 4096 {
			if a.admits(fmt.Appendf(nil, "series-%d", i)) {
				admitted++
			}
		}
		if share := float64(admitted) / 4096; share < st.wantAdmitsShare*0.8 || share > st.wantAdmitsShare*1.2 {
			t.Fatalf("%s: admits %.3f of the keys, want about %.3f", st.name, share, st.wantAdmitsShare)
		}
	}
	for range 2 * maxAdmitShift {
		a.counted(1000, 0)
		a.generationFilled()
	}
	if got := a.shift.Load(); got != maxAdmitShift {
		t.Fatalf("shift %d after many poor generations, want the bound %d", got, maxAdmitShift)
	}
	// The same key is always admitted or always not.
	key := []byte("series-42")
	first := a.admits(key)
	for range 100 {
		if a.admits(key) != first {
			t.Fatal("admission of one key changes between calls")
		}
	}
}

// Under churn the router's cache stops storing most new series; once the
// producer settles on a series set that fits, the cache learns all of it
// again.
func TestCacheAdmissionUnderChurnHeals(t *testing.T) {
	r := newTestRouter(t, Options{BaseURL: base, TenantID: Multitenant}, seedFormat, discard{})
	r.cache.resize(4 << 20) // holds a few thousand series
	process := func(wr *prompb.WriteRequest) {
		t.Helper()
		if err := r.Process(context.Background(), decoded(t, wr), ""); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 60 {
		process(churnRequest(1000, i))
	}
	if s := r.cache.admit.shift.Load(); s == 0 {
		t.Fatal("the cache still stores every new series under 100% churn")
	}
	settled := churnRequest(1000, -1)
	for i := 0; r.cache.admit.shift.Load() > 0; i++ {
		if i > 4000 {
			t.Fatalf("the admitted fraction is still 1/2^%d after %d requests of one series set", r.cache.admit.shift.Load(), i)
		}
		process(settled)
	}
	process(settled) // stores what it missed
	req := decoded(t, settled)
	r.cache.mu.RLock()
	defer r.cache.mu.RUnlock()
	for i := range req.Series {
		if r.cache.getLocked(req.Series[i].LabelFields()) == nil {
			t.Fatalf("series %d of the settled set is not cached", i)
		}
	}
}

// churnRequest is anomalyRequest with every series marked by generation
// gen, so that each gen's series are new.
func churnRequest(n, gen int) *prompb.WriteRequest {
	wr := anomalyRequest(n, 10)
	for i := range wr.Timeseries {
		wr.Timeseries[i].Labels = append(wr.Timeseries[i].Labels, prompb.Label{Name: "zgen", Value: fmt.Sprint(gen)})
	}
	return wr
}

// The position hints are tried beyond the first hintProbes series of a
// request only while they hit: a producer that shuffles its series turns
// them off, one that keeps its order turns them back on.
func TestPositionHintsFollowTheProducersOrder(t *testing.T) {
	r := newTestRouter(t, Options{BaseURL: base, TenantID: Multitenant}, seedFormat, discard{})
	wr := anomalyRequest(200, 10)
	process := func(wr *prompb.WriteRequest, times int) {
		t.Helper()
		for range times {
			var req remotewrite.Request
			body, err := wr.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			if err := remotewrite.DecodeWriteRequestKnown(body, &req, r); err != nil {
				t.Fatal(err)
			}
			if err := r.Process(context.Background(), &req, ""); err != nil {
				t.Fatal(err)
			}
		}
	}
	rounds := 2 * hintVerdict / hintProbes
	process(wr, rounds)
	if !r.cache.hintsPay.Load() {
		t.Fatal("hints are off for a producer that keeps its series in order")
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range rounds {
		shuffled := &prompb.WriteRequest{Timeseries: slices.Clone(wr.Timeseries)}
		rng.Shuffle(len(shuffled.Timeseries), func(i, j int) {
			shuffled.Timeseries[i], shuffled.Timeseries[j] = shuffled.Timeseries[j], shuffled.Timeseries[i]
		})
		process(shuffled, 1)
	}
	if r.cache.hintsPay.Load() {
		t.Fatal("hints are still on for a producer that shuffles its series")
	}
	process(wr, rounds)
	if !r.cache.hintsPay.Load() {
		t.Fatal("hints stay off after the producer went back to one order")
	}
}
