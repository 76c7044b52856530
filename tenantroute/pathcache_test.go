package tenantroute

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/prompb"

	"github.com/scoreproxy/scoreproxy/remotewrite"
)

// TestPathTenantsHaveTheirOwnRewrites: the same series sent to
// /api/v1/write and to /insert/<tenant>/ paths are rewritten for each
// (the path's tenant labels replace the series'), from the second request
// on out of the path tenant's own cache (the decoder skips their labels),
// and a path tenant beyond maxPathCaches is still routed right, uncached.
func TestPathTenantsHaveTheirOwnRewrites(t *testing.T) {
	for _, split := range []bool{false, true} {
		t.Run(fmt.Sprint("split=", split), func(t *testing.T) {
			up := newRecorder()
			r := newTestRouter(t, Options{BaseURL: base, TenantID: Multitenant, SplitTenants: split}, seedFormat, up)
			raw, err := anomalyRequest(4, 2).Marshal()
			if err != nil {
				t.Fatal(err)
			}
			paths := []string{"", "5", "6:1", "5:0"}
			for i := range maxPathCaches + 2 {
				paths = append(paths, fmt.Sprintf("%d:7", 100+i))
			}
			// Sightings by cache: "5" and "5:0" are the same tenant and
			// share one. A series is stored at its second sighting (see
			// doorkeeper) and known from the third on.
			seen := map[string]int{}
			for round := range 3 {
				for _, path := range paths {
					key := path
					if tn, err := ParseTenant(path); err == nil {
						key = tn.String()
					}
					up.byURL = map[string][]prompb.TimeSeries{}
					var req remotewrite.Request
					known := r.KnownForPath(path)
					if path == "" {
						known = r
					}
					if err := remotewrite.DecodeWriteRequestKnown(raw, &req, known); err != nil {
						t.Fatal(err)
					}
					cached := known != nil && seen[key] >= 2
					if got := req.Series[0].Known != nil; got != cached {
						t.Errorf("round %d, path %q: the decoder knew the series: %v, want %v", round, path, got, cached)
					}
					n := seen[key] // an uncached path counts as seen too
					if known != nil {
						n++
					}
					seen[key] = n
					if i := len(seen); round == 0 && known == nil && i <= maxPathCaches {
						t.Errorf("path %q has no cache with %d path tenants seen", path, i)
					}
					if err := r.Process(context.Background(), &req, path); err != nil {
						t.Fatal(err)
					}
					checkPathOutput(t, up, path, split)
				}
			}
		})
	}
}

// checkPathOutput requires every series sent for path to be renamed and to
// carry (multitenant) or be sent to (split) the path's tenant, or its own
// tenant labels' when path is "".
func checkPathOutput(t *testing.T, up *recorder, path string, split bool) {
	t.Helper()
	want := ""
	if path != "" {
		tn, err := ParseTenant(path)
		if err != nil {
			t.Fatal(err)
		}
		want = tn.String()
	}
	n := 0
	for url, series := range up.byURL {
		for _, s := range series {
			n++
			text := seriesText(s)
			if !strings.HasPrefix(text, "{__name__=vmanomaly_") {
				t.Fatalf("path %q: %s is not renamed", path, text)
			}
			if want == "" {
				continue
			}
			a, p, _ := strings.Cut(want, ":")
			if split {
				if !strings.Contains(url, "/insert/"+want+"/") || strings.Contains(text, "vm_account_id") {
					t.Fatalf("path %q: %s sent to %s, want /insert/%s/ without tenant labels", path, text, url, want)
				}
			} else if !strings.Contains(text, "vm_account_id="+a+",vm_project_id="+p+"}") {
				t.Fatalf("path %q: %s does not carry the path's tenant %s", path, text, want)
			}
		}
	}
	if n != 4 {
		t.Fatalf("path %q: %d series sent, want 4", path, n)
	}
}

// BenchmarkPathTenant: the standard request (seed metric_format) decoded
// and routed in multitenant mode, sent to /api/v1/write or to a
// vminsert-shaped path with a tenant.
func BenchmarkPathTenant(b *testing.B) {
	for _, path := range []string{"", "5"} {
		b.Run("path="+path, func(b *testing.B) {
			r := newTestRouter(b, Options{BaseURL: base, TenantID: Multitenant}, seedFormat, discard{})
			body, err := anomalyRequest(1000, 10).Marshal()
			if err != nil {
				b.Fatal(err)
			}
			known := r.KnownForPath(path)
			var req remotewrite.Request
			run := func() {
				if err := remotewrite.DecodeWriteRequestKnown(body, &req, known); err != nil {
					b.Fatal(err)
				}
				if err := r.Process(context.Background(), &req, path); err != nil {
					b.Fatal(err)
				}
			}
			benchPerSample(b, 2000, run)
		})
	}
}

// TestPathCachesShareTheirBudget: path tenants' caches together stay within
// pathCacheBytes, each keeps at least minPathCacheBytes, and there are at
// most maxPathCaches of them.
func TestPathCachesShareTheirBudget(t *testing.T) {
	var p pathCaches
	for i := range maxPathCaches + 5 {
		c := p.get(Tenant{AccountID: uint32(i)})
		if (c == nil) != (i >= maxPathCaches) {
			t.Fatalf("path tenant #%d: cache %v, want one for the first %d only", i, c != nil, maxPathCaches)
		}
		total := 0
		for _, c := range p.m {
			if 2*c.genBytes < minPathCacheBytes {
				t.Fatalf("with %d path tenants a cache holds %d bytes, want at least %d", len(p.m), 2*c.genBytes, minPathCacheBytes)
			}
			total += 2 * c.genBytes
		}
		if total > pathCacheBytes {
			t.Fatalf("with %d path tenants the caches hold %d bytes, over %d", len(p.m), total, pathCacheBytes)
		}
	}
	if p.get(Tenant{AccountID: 3}) != p.m[Tenant{AccountID: 3}] {
		t.Error("a path tenant's cache is not found again")
	}
}
