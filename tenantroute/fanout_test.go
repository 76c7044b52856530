package tenantroute

import (
	"context"
	"strings"
	"testing"

	"github.com/scoreproxy/scoreproxy/remotewrite"
)

// TestRewritesOfAnotherCacheAreNotTaken: with several writers the decoder
// consults the first writer's cache, so a series can arrive with another
// router's rewrite in Series.Known; each router must route with its own
// rewrites (here: the first writer forwards series unchanged to the
// multitenant endpoint, the second renames them and sends them to tenant
// 3), whichever request it is, also when the second does not know the
// series yet and must parse its labels from their bytes.
func TestRewritesOfAnotherCacheAreNotTaken(t *testing.T) {
	upA, upB := newRecorder(), newRecorder()
	a := newTestRouter(t, Options{BaseURL: base, TenantID: Multitenant}, nil, upA)
	b := newTestRouter(t, Options{BaseURL: base, TenantID: "3"}, seedFormat, upB)
	raw, err := anomalyRequest(20, 1).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	// Rounds 0 and 1 warm only a's cache (a series is stored when it is
	// seen the second time, see doorkeeper), so that in round 2 b meets
	// series a knows and it does not.
	for round := range 4 {
		var req remotewrite.Request
		if err := remotewrite.DecodeWriteRequestKnown(raw, &req, a); err != nil {
			t.Fatal(err)
		}
		if err := a.Process(context.Background(), &req, ""); err != nil {
			t.Fatal(err)
		}
		if round < 2 {
			continue
		}
		if req.Series[0].Known == nil {
			t.Fatalf("round %d: the decoder did not find the series in a's cache", round)
		}
		if err := b.Process(context.Background(), &req, ""); err != nil {
			t.Fatal(err)
		}
	}
	for url, series := range upA.byURL {
		for _, s := range series {
			if !strings.Contains(url, "/insert/multitenant/") || strings.HasPrefix(seriesText(s), "{__name__=vmanomaly_") {
				t.Fatalf("writer a sent %s to %s, want it unchanged to /insert/multitenant/", seriesText(s), url)
			}
		}
	}
	got := 0
	for url, series := range upB.byURL {
		for _, s := range series {
			got++
			if !strings.Contains(url, "/insert/3:0/") || !strings.HasPrefix(seriesText(s), "{__name__=vmanomaly_") {
				t.Fatalf("writer b sent %s to %s, want it renamed to /insert/3:0/", seriesText(s), url)
			}
		}
	}
	if got != 40 {
		t.Errorf("writer b sent %d series, want 40 (20 in each of 2 requests)", got)
	}
}

// BenchmarkTwoWriters: one request through two routers (as with writers:,
// different metric_formats and modes), decoded with the first router's cache as the
// decoder's KnownLabelSets, or with none (as before).
func BenchmarkTwoWriters(b *testing.B) {
	for _, withKnown := range []bool{true, false} {
		name := "first-writer-known"
		if !withKnown {
			name = "no-known"
		}
		b.Run(name, func(b *testing.B) {
			first := newTestRouter(b, Options{BaseURL: base, TenantID: Multitenant}, seedFormat, discard{})
			second := newTestRouter(b, Options{BaseURL: base, TenantID: Multitenant, SplitTenants: true}, nil, discard{})
			body, err := anomalyRequest(1000, 10).Marshal()
			if err != nil {
				b.Fatal(err)
			}
			var req remotewrite.Request
			run := func() {
				var known remotewrite.KnownLabelSets
				if withKnown {
					known = first
				}
				if err := remotewrite.DecodeWriteRequestKnown(body, &req, known); err != nil {
					b.Fatal(err)
				}
				for _, r := range []*Router{first, second} {
					if err := r.Process(context.Background(), &req, ""); err != nil {
						b.Fatal(err)
					}
				}
			}
			benchPerSample(b, 2000, run)
		})
	}
}
