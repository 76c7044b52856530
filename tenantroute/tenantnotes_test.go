package tenantroute

import (
	"context"
	"fmt"
	"reflect"
	"sort"
	"testing"

	"github.com/prometheus/prometheus/prompb"
)

// TestNotedTenantsMatchBatches: in multitenant mode the tenant check of a
// restricted credential and the per-tenant sample counts, taken from the
// rewrites' noted tenants, are the same as when the encoded batches are
// read again, for tenant labels of every shape (missing, invalid, leading
// zeros that the two readings of labelTenants differ on), with and without
// metric_format, on the first request (cache misses) and the next (hits).
func TestNotedTenantsMatchBatches(t *testing.T) {
	series := []prompb.TimeSeries{
		ts("__name__", "y", "for", "a", "vm_account_id", "5", "vm_project_id", "0"),
		ts("__name__", "y", "for", "b", "vm_account_id", "5"),
		ts("__name__", "y", "for", "c", "vm_account_id", "7", "vm_project_id", "3"),
		ts("__name__", "y", "for", "d"),
		ts("__name__", "y", "for", "e", "vm_account_id", "x"),
		ts("__name__", "y", "for", "f", "vm_account_id", "00000000005"),
		ts("__name__", "y", "for", "g", "vm_account_id", "5", "vm_project_id", "-1"),
		ts("__name__", "y", "for", "h", "vm_account_id", "5"),
	}
	permits := map[string][]string{
		"5:0 only":      {"5:0"},
		"5 and 7":       {"5:*", "7:*"},
		"0, 5, 7":       {"0:*", "5:*", "7:*"},
		"7:3 only":      {"7:3"},
		"every account": {"*"},
	}
	for name, patterns := range permits {
		ctx := permitContext(t, patterns...)
		for _, format := range []map[string]string{nil, seedFormat} {
			for _, subset := range [][]int{{0, 1, 7}, {0, 2}, {2, 3}, {4}, {5}, {6, 0}, {0, 1, 2, 3, 4, 5, 6, 7}} {
				var wr prompb.WriteRequest
				for _, i := range subset {
					wr.Timeseries = append(wr.Timeseries, series[i])
				}
				t.Run(fmt.Sprintf("%s/format=%v/%v", name, format != nil, subset), func(t *testing.T) {
					noted := newTestRouter(t, Options{BaseURL: base, TenantID: Multitenant}, format, newRecorder())
					batches := newTestRouter(t, Options{BaseURL: base, TenantID: Multitenant}, format, newRecorder())
					batches.checkBatches = true
					for round := range 2 {
						errNoted := noted.Process(ctx, decoded(t, &wr), "")
						errBatches := batches.Process(ctx, decoded(t, &wr), "")
						if fmt.Sprint(errNoted) != fmt.Sprint(errBatches) {
							t.Fatalf("round %d: noted tenants give %v, the batches %v", round, errNoted, errBatches)
						}
						if got, want := countsOf(t, noted, &wr, false), countsOf(t, noted, &wr, true); !reflect.DeepEqual(got, want) {
							t.Fatalf("round %d: noted counts %v, batch counts %v", round, got, want)
						}
					}
				})
			}
		}
	}
}

// countsOf routes wr with r's cache, noting tenants, and returns the
// samples per tenant from the notes or from the encoded batches.
func countsOf(t *testing.T, r *Router, wr *prompb.WriteRequest, fromBatches bool) []tenantCount {
	t.Helper()
	w := r.pool.Get().(*work)
	defer r.release(w)
	w.reset()
	w.tenants.reset(true)
	r.routeAllCached(w, r.cache, decoded(t, wr), nil)
	if !w.tenants.complete() {
		t.Fatal("the notes are incomplete for a request of cacheable series")
	}
	pairs := map[[2]Tenant]bool{}
	for _, s := range w.tenants.seen {
		if pairs[s.tenants] {
			t.Fatalf("the notes hold the tenants %v twice", s.tenants)
		}
		pairs[s.tenants] = true
	}
	var counts []tenantCount
	if fromBatches {
		for i := range w.batches {
			var err error
			if counts, err = countByTenant(counts, w.batches[i].buf); err != nil {
				t.Fatal(err)
			}
		}
	} else {
		counts = countNoted(nil, w.tenants.seen)
	}
	sort.Slice(counts, func(i, j int) bool { return counts[i].tenant.String() < counts[j].tenant.String() })
	return counts
}

// BenchmarkRestrictedPermit: a multitenant request under a credential
// bound to some tenants, its tenants checked from the rewrites' notes or
// (batches) by reading the encoded batches again, against no permit.
func BenchmarkRestrictedPermit(b *testing.B) {
	var patterns []string
	for i := range 11 {
		patterns = append(patterns, fmt.Sprint(i, ":*"))
	}
	for _, bc := range []struct {
		name              string
		permit, readBatch bool
	}{{"no-permit", false, false}, {"permit-noted", true, false}, {"permit-batches", true, true}} {
		b.Run(bc.name, func(b *testing.B) {
			r := newTestRouter(b, Options{BaseURL: base, TenantID: Multitenant}, seedFormat, discard{})
			r.checkBatches = bc.readBatch
			req := decoded(b, anomalyRequest(1000, 10))
			ctx := context.Background()
			if bc.permit {
				ctx = permitContext(b, patterns...)
			}
			benchPerSample(b, 2000, func() {
				if err := r.Process(ctx, req, ""); err != nil {
					b.Fatal(err)
				}
			})
		})
	}
}

// TestNotedTenantsManyTenants: past notesScanned distinct tenants the notes
// find pairs through their index; the check and the counts still match the
// batches', for a request that visits 40 tenants three times each.
func TestNotedTenantsManyTenants(t *testing.T) {
	var wr prompb.WriteRequest
	for round := range 3 {
		for a := range 40 {
			wr.Timeseries = append(wr.Timeseries, ts("__name__", "y", "for", fmt.Sprint("q", round), "vm_account_id", fmt.Sprint(a)))
		}
	}
	for _, patterns := range [][]string{{"*"}, {"0:*"}} {
		ctx := permitContext(t, patterns...)
		noted := newTestRouter(t, Options{BaseURL: base, TenantID: Multitenant}, nil, newRecorder())
		batches := newTestRouter(t, Options{BaseURL: base, TenantID: Multitenant}, nil, newRecorder())
		batches.checkBatches = true
		for round := range 2 {
			errNoted, errBatches := noted.Process(ctx, decoded(t, &wr), ""), batches.Process(ctx, decoded(t, &wr), "")
			if fmt.Sprint(errNoted) != fmt.Sprint(errBatches) {
				t.Fatalf("%v, round %d: noted %v, batches %v", patterns, round, errNoted, errBatches)
			}
			got, want := countsOf(t, noted, &wr, false), countsOf(t, noted, &wr, true)
			if len(got) != 40 || !reflect.DeepEqual(got, want) {
				t.Fatalf("%v, round %d: noted counts %v, batch counts %v", patterns, round, got, want)
			}
		}
	}
}

// permitContext is a context carrying the permit of a credential "team"
// bound to the tenant patterns.
func permitContext(tb testing.TB, patterns ...string) context.Context {
	tb.Helper()
	var pats []TenantPattern
	for _, p := range patterns {
		pt, err := ParseTenantPattern(p)
		if err != nil {
			tb.Fatal(err)
		}
		pats = append(pats, pt)
	}
	return WithPermit(context.Background(), NewPermit("team", pats))
}
