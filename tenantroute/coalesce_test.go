package tenantroute

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"

	"github.com/scoreproxy/scoreproxy/remotewrite"
)

// gatedSender records the series names of every upstream request. Its first
// request blocks until release is closed, so that the test can line up
// batches behind it; a request containing a series named "bad" gets 400.
type gatedSender struct {
	mu      sync.Mutex
	calls   []string // one entry per upstream request: its series names, space-separated
	first   bool
	entered chan struct{}
	release chan struct{}
}

func newGatedSender() *gatedSender {
	return &gatedSender{entered: make(chan struct{}), release: make(chan struct{})}
}

func (g *gatedSender) Send(_ context.Context, url string, body []byte, stats remotewrite.BatchStats) remotewrite.SendResult {
	wr := decodeBody(body)
	var names []string
	for _, s := range wr.Timeseries {
		names = append(names, s.Labels[0].Value)
	}
	if stats.Series != len(names) {
		panic(fmt.Sprintf("stats say %d series, body has %d", stats.Series, len(names)))
	}
	if want := bodyQueryKeys(wr); !maps.Equal(keySeries(stats.QueryKeys), want) {
		panic(fmt.Sprintf("stats have query keys %+v, body %v", stats.QueryKeys, want))
	}
	g.mu.Lock()
	g.calls = append(g.calls, strings.Join(names, " "))
	first := !g.first
	g.first = true
	g.mu.Unlock()
	if first {
		close(g.entered)
		<-g.release
	}
	if slices.Contains(names, "bad") {
		return remotewrite.SendResult{StatusCode: 400, URL: url, Message: "cannot parse series bad"}
	}
	return remotewrite.SendResult{StatusCode: 204, URL: url}
}

// bodyQueryKeys counts the series of wr by the value of their "for" label.
func bodyQueryKeys(wr prompb.WriteRequest) map[string]int {
	out := map[string]int{}
	for _, s := range wr.Timeseries {
		key := ""
		for _, l := range s.Labels {
			if l.Name == "for" {
				key = l.Value
			}
		}
		out[key]++
	}
	return out
}

// keySeries counts the series of tallies by key.
func keySeries(keys remotewrite.KeyTallies) map[string]int {
	out := map[string]int{}
	for _, k := range keys {
		out[k.Key] += k.Series
	}
	return out
}

// waiting returns how many batches wait in the lane of tenant 1:0.
func waiting(r *Router) int {
	ep := r.endpoints.get(Tenant{AccountID: 1})
	ep.lane.mu.Lock()
	defer ep.lane.mu.Unlock()
	return len(ep.lane.waiting)
}

// lineUp sends the first name's request, waits until the upstream holds it,
// then sends each other name's request and waits until its batch waits in
// the lane, so the order of the group is known. It returns each request's
// error by name once all have finished.
func lineUp(t *testing.T, r *Router, g *gatedSender, names ...string) map[string]error {
	t.Helper()
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		req := decoded(t, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{
			ts("__name__", name, "for", "q_"+name, "vm_account_id", "1"),
		}})
		wg.Go(func() { errs[i] = r.Process(context.Background(), req, "") })
		if i == 0 {
			<-g.entered
			continue
		}
		deadline := time.Now().Add(10 * time.Second)
		for waiting(r) < i {
			if time.Now().After(deadline) {
				t.Fatalf("batch %q never queued behind the busy send", name)
			}
			time.Sleep(time.Millisecond)
		}
	}
	close(g.release)
	wg.Wait()
	byName := map[string]error{}
	for i, name := range names {
		byName[name] = errs[i]
	}
	return byName
}

func TestBatchesWaitingForABusyEndpointGoOutAsOneRequest(t *testing.T) {
	g := newGatedSender()
	r := newTestRouter(t, Options{BaseURL: base, TenantID: Multitenant, SplitTenants: true,
		MaxInflightPerEndpoint: 1}, nil, g)
	before := coalescedBatches.Get()
	errs := lineUp(t, r, g, "a", "b", "c", "d")
	for name, err := range errs {
		if err != nil {
			t.Errorf("request %s: %v", name, err)
		}
	}
	if want := []string{"a", "b c d"}; !slices.Equal(g.calls, want) {
		t.Errorf("upstream requests = %q, want %q", g.calls, want)
	}
	if got := coalescedBatches.Get() - before; got != 3 {
		t.Errorf("scoreproxy_upstream_batches_coalesced_total grew by %d, want 3", got)
	}
}

func TestCoalescedRequestRejectedAsBadIsResentBatchByBatch(t *testing.T) {
	g := newGatedSender()
	r := newTestRouter(t, Options{BaseURL: base, TenantID: Multitenant, SplitTenants: true,
		MaxInflightPerEndpoint: 1}, nil, g)
	errs := lineUp(t, r, g, "a", "b", "bad", "d")
	for _, name := range []string{"a", "b", "d"} {
		if errs[name] != nil {
			t.Errorf("request %s failed because another producer's batch was bad: %v", name, errs[name])
		}
	}
	var se *remotewrite.StatusError
	if !asStatusError(errs["bad"], &se) || se.Code != 400 || !strings.Contains(se.Msg, "cannot parse series bad") {
		t.Errorf("request bad: got %v, want the upstream's 400 and message", errs["bad"])
	}
	if want := []string{"a", "b bad d", "b", "bad", "d"}; !slices.Equal(g.calls, want) {
		t.Errorf("upstream requests = %q, want %q", g.calls, want)
	}
}

func asStatusError(err error, target **remotewrite.StatusError) bool {
	se, ok := err.(*remotewrite.StatusError)
	*target = se
	return ok
}

// TestConcurrentSplitRequestsDeliverEverySeriesOnce: many producers split
// over a few tenants at once (run with -race): whatever the coalescing,
// every series reaches its tenant exactly once.
func TestConcurrentSplitRequestsDeliverEverySeriesOnce(t *testing.T) {
	rec := newRecorder()
	r := newTestRouter(t, Options{BaseURL: base, TenantID: Multitenant, SplitTenants: true,
		MaxInflightPerEndpoint: 1}, seedFormat, rec)
	const producers, requests, tenants = 8, 20, 3
	var wg sync.WaitGroup
	for p := range producers {
		wg.Go(func() {
			for i := range requests {
				var wr prompb.WriteRequest
				for tn := range tenants {
					wr.Timeseries = append(wr.Timeseries, ts("__name__", "y", "for", fmt.Sprintf("p%d-r%d", p, i),
						"vm_account_id", fmt.Sprint(tn+1)))
				}
				if err := r.Process(context.Background(), decoded(t, &wr), ""); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	for tn := range tenants {
		url := base + fmt.Sprintf("/insert/%d:0/prometheus/api/v1/write", tn+1)
		seen := map[string]int{}
		for _, s := range rec.byURL[url] {
			seen[seriesText(s)]++
		}
		if len(seen) != producers*requests {
			t.Errorf("%s got %d distinct series, want %d", url, len(seen), producers*requests)
		}
		for s, n := range seen {
			if n != 1 {
				t.Errorf("%s got %s %d times", url, s, n)
			}
		}
	}
}

// TestJoinSnappyDecodesToTheConcatenation: compressAll gives each batch a
// block that decodes, with the reference decoder, to its body (also when
// the work's buffer grows while the batches are encoded), and joined blocks
// decode to the batches' bodies one after another, for empty, tiny,
// incompressible and above-64-KiB bodies (s2 encodes those in chunks).
func TestJoinSnappyDecodesToTheConcatenation(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rnd.IntN(256))
		}
		return b
	}
	repetitive := func(n int) []byte { return []byte(strings.Repeat("vmanomaly_yhat{for=\"q\"} ", n/24+1)[:n]) }
	for _, bodies := range [][][]byte{
		{repetitive(100)},
		{nil, repetitive(10)},
		{repetitive(3000), random(500), repetitive(1)},
		{random(70_000), repetitive(200_000), random(65_536), repetitive(65_537)},
	} {
		w := &work{compressed: make([]byte, 0, 16)}
		var group []*batch
		var want []byte
		for _, body := range bodies {
			w.batches = append(w.batches, batch{buf: body})
			want = append(want, body...)
		}
		w.compressAll()
		for i := range w.batches {
			b := &w.batches[i]
			if got, err := snappy.Decode(nil, b.compressed); err != nil || !bytes.Equal(got, b.buf) {
				t.Fatalf("batch %d of %d: its block does not decode to its body (err %v)", i, len(w.batches), err)
			}
			group = append(group, b)
		}
		got, err := snappy.Decode(nil, joinSnappy(nil, group))
		if err != nil {
			t.Fatalf("joined block does not decode: %v", err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("joined block decodes to %d bytes that differ from the %d concatenated", len(got), len(want))
		}
	}
}
