package tenantroute

import (
	"context"
	"fmt"
	"maps"
	"sync"
	"testing"

	"github.com/prometheus/prometheus/prompb"

	"github.com/scoreproxy/scoreproxy/remotewrite"
)

// tallied returns the series and samples query key tallies add up to.
func tallied(keys remotewrite.KeyTallies) (series, samples int) {
	for _, k := range keys {
		series += k.Series
		samples += k.Samples
	}
	return series, samples
}

// keyRecorder sums the query key tallies each URL is sent.
type keyRecorder struct {
	mu     sync.Mutex
	series map[string]map[string]int // URL -> query key -> series
}

func (k *keyRecorder) Send(_ context.Context, url string, body []byte, stats remotewrite.BatchStats) remotewrite.SendResult {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.series[url] == nil {
		k.series[url] = map[string]int{}
	}
	for _, t := range stats.QueryKeys {
		k.series[url][t.Key] += t.Series
	}
	return remotewrite.SendResult{StatusCode: 204, URL: url}
}

// Every path a series can take (forwarded as received, rewritten from the
// cache or not, split, under a path tenant) tallies it under the value of
// its query key label as received, "" when it has none.
func TestBatchesTallyQueryKeys(t *testing.T) {
	wr := &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{
		ts("__name__", "anomaly_score", "for", "cpu", "vm_account_id", "1"),
		ts("__name__", "anomaly_score", "for", "cpu", "vm_account_id", "2"),
		ts("__name__", "yhat", "for", "mem", "vm_account_id", "1"),
		ts("__name__", "up", "job", "node", "vm_account_id", "2"),
	}}
	const base = "http://vm:8480"
	single, mt := base+"/api/v1/write", base+"/insert/multitenant/prometheus/api/v1/write"
	t1, t2, t7 := base+"/insert/1:0/prometheus/api/v1/write", base+"/insert/2:0/prometheus/api/v1/write", base+"/insert/7:0/prometheus/api/v1/write"
	format := map[string]string{"__name__": "vmanomaly_$VAR", "for": "$QUERY_KEY"}
	all := map[string]int{"cpu": 2, "mem": 1, "": 1}
	tests := []struct {
		name       string
		opts       Options
		format     map[string]string
		pathTenant string
		want       map[string]map[string]int
	}{
		{"forwarded as received", Options{}, nil, "", map[string]map[string]int{single: all}},
		{"metric_format", Options{}, format, "", map[string]map[string]int{single: all}},
		{"multitenant", Options{TenantID: "multitenant"}, format, "", map[string]map[string]int{mt: all}},
		{"split", Options{TenantID: "multitenant", SplitTenants: true}, format, "",
			map[string]map[string]int{t1: {"cpu": 1, "mem": 1}, t2: {"cpu": 1, "": 1}}},
		{"split under a path tenant", Options{TenantID: "multitenant", SplitTenants: true}, nil, "7",
			map[string]map[string]int{t7: all}},
		{"query key renamed away", Options{}, map[string]string{"__name__": "$VAR"}, "", map[string]map[string]int{single: all}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &keyRecorder{series: map[string]map[string]int{}}
			tt.opts.BaseURL = base
			r := newTestRouter(t, tt.opts, tt.format, rec)
			for round := range 2 { // a miss, then a hit of the rewrite cache
				if err := r.Process(context.Background(), decoded(t, wr), tt.pathTenant); err != nil {
					t.Fatalf("round %d: %v", round, err)
				}
			}
			want := map[string]map[string]int{}
			for url, keys := range tt.want {
				want[url] = map[string]int{}
				for k, n := range keys {
					want[url][k] = 2 * n
				}
			}
			if !maps.EqualFunc(rec.series, want, maps.Equal) {
				t.Fatalf("series by URL and query key %v, want %v", rec.series, want)
			}
		})
	}
}

// A router names at most maxQueryKeyIDs query keys; the series of further
// ones count under remotewrite.OverflowQueryKey.
func TestQueryKeysAreBounded(t *testing.T) {
	rec := &keyRecorder{series: map[string]map[string]int{}}
	r := newTestRouter(t, Options{BaseURL: "http://vm:8428"}, map[string]string{"__name__": "$VAR", "for": "$QUERY_KEY"}, rec)
	const n = maxQueryKeyIDs + 50
	wr := &prompb.WriteRequest{}
	for i := range n {
		wr.Timeseries = append(wr.Timeseries, ts("__name__", "anomaly_score", "for", fmt.Sprint("q", i)))
	}
	if err := r.Process(context.Background(), decoded(t, wr), ""); err != nil {
		t.Fatal(err)
	}
	got := rec.series["http://vm:8428/api/v1/write"]
	// "" and the overflow key hold two of the ids
	if named := n - got[remotewrite.OverflowQueryKey]; named != maxQueryKeyIDs-2 || len(got) != maxQueryKeyIDs-1 {
		t.Fatalf("%d keys named, %d series under %s; want %d named", len(got), got[remotewrite.OverflowQueryKey],
			remotewrite.OverflowQueryKey, maxQueryKeyIDs-2)
	}
}

// The recent keys a work remembers by slot never give one value another's
// key: values that share a slot ("a", "i" and "q") and values of other
// slots, in any order, each get their own.
func TestRecentQueryKeysPerSlot(t *testing.T) {
	r := newTestRouter(t, Options{BaseURL: base}, map[string]string{"__name__": "$VAR", "for": "$QUERY_KEY"}, discard{})
	var w work
	values := []string{"a", "i", "a", "q", "ab", "i", "query_1", "query_9", "query_1", "a"}
	if keySlot([]byte("a")) != keySlot([]byte("i")) || keySlot([]byte("a")) != keySlot([]byte("q")) {
		t.Fatal("the test's colliding values do not share a slot")
	}
	ids := map[string]int32{}
	for _, v := range values {
		k := r.queryKeyOf(&w, []remotewrite.Label{{Name: []byte("job"), Value: []byte("x")}, {Name: []byte("for"), Value: []byte(v)}})
		if k.name != v {
			t.Fatalf("query key of %q: %q", v, k.name)
		}
		if id, ok := ids[v]; ok && id != k.id {
			t.Fatalf("query key of %q: id %d, earlier %d", v, k.id, id)
		}
		ids[v] = k.id
	}
}
