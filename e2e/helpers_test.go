package e2e

import (
	"context"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"

	"github.com/scoreproxy/scoreproxy/internal/testenv"
)

// diffSeries compares want with got, series by series (by label set) and
// sample by sample, values within relTol (0 means bit-exact, NaN equal to
// NaN). It returns nil when they are equal, else an error listing the first
// differences.
func diffSeries(want, got []testenv.Series, relTol float64) error {
	gotBy := map[string]testenv.Series{}
	for _, s := range got {
		gotBy[s.Key()] = s
	}
	var problems []string
	seen := map[string]bool{}
	for _, w := range want {
		k := w.Key()
		seen[k] = true
		g, ok := gotBy[k]
		if !ok {
			problems = append(problems, "missing series "+k)
			continue
		}
		if p := diffSamples(w, g, relTol); p != "" {
			problems = append(problems, k+": "+p)
		}
	}
	for _, g := range got {
		if !seen[g.Key()] {
			problems = append(problems, "unexpected series "+g.Key())
		}
	}
	if len(problems) == 0 {
		return nil
	}
	sort.Strings(problems)
	const show = 15
	more := ""
	if len(problems) > show {
		more = fmt.Sprintf("\n... and %d more", len(problems)-show)
		problems = problems[:show]
	}
	return fmt.Errorf("%d series expected, %d found; differences:\n%s%s",
		len(want), len(got), strings.Join(problems, "\n"), more)
}

func diffSamples(want, got testenv.Series, relTol float64) string {
	if len(want.Timestamps) != len(got.Timestamps) {
		return fmt.Sprintf("%d samples, want %d (timestamps got %v, want %v)",
			len(got.Timestamps), len(want.Timestamps), abbreviate(got.Timestamps), abbreviate(want.Timestamps))
	}
	for i := range want.Timestamps {
		if want.Timestamps[i] != got.Timestamps[i] {
			return fmt.Sprintf("sample %d at %d, want %d", i, got.Timestamps[i], want.Timestamps[i])
		}
		if !sameValue(want.Values[i], got.Values[i], relTol) {
			return fmt.Sprintf("sample %d (t=%d) = %v, want %v", i, got.Timestamps[i], got.Values[i], want.Values[i])
		}
	}
	return ""
}

func sameValue(want, got, relTol float64) bool {
	switch {
	case math.IsNaN(want) || math.IsNaN(got):
		return math.IsNaN(want) && math.IsNaN(got)
	case want == got:
		return true
	case relTol == 0:
		return false
	}
	return math.Abs(want-got) <= relTol*math.Max(math.Abs(want), math.Abs(got))
}

func abbreviate(ts []int64) string {
	if len(ts) <= 6 {
		return fmt.Sprint(ts)
	}
	return fmt.Sprintf("[%d %d %d ... %d %d %d]", ts[0], ts[1], ts[2], ts[len(ts)-3], ts[len(ts)-2], ts[len(ts)-1])
}

// fromPrompb turns written series into the form read back, for comparison.
func fromPrompb(ts []prompb.TimeSeries) []testenv.Series {
	out := make([]testenv.Series, 0, len(ts))
	for _, s := range ts {
		x := testenv.Series{Labels: map[string]string{}}
		for _, l := range s.Labels {
			x.Labels[l.Name] = l.Value
		}
		for _, smp := range s.Samples {
			x.Timestamps = append(x.Timestamps, smp.Timestamp)
			x.Values = append(x.Values, smp.Value)
		}
		out = append(out, x)
	}
	return out
}

// mergeSeries merges series with the same label set (samples appended, then
// sorted by time): what a store makes of several requests.
func mergeSeries(in []testenv.Series) []testenv.Series {
	by := map[string]int{}
	var out []testenv.Series
	for _, s := range in {
		k := s.Key()
		if i, ok := by[k]; ok {
			out[i].Timestamps = append(out[i].Timestamps, s.Timestamps...)
			out[i].Values = append(out[i].Values, s.Values...)
			continue
		}
		by[k] = len(out)
		cp := testenv.Series{Labels: s.Labels}
		cp.Timestamps = append(cp.Timestamps, s.Timestamps...)
		cp.Values = append(cp.Values, s.Values...)
		out = append(out, cp)
	}
	for i := range out {
		s := &out[i]
		idx := make([]int, len(s.Timestamps))
		for j := range idx {
			idx[j] = j
		}
		sort.SliceStable(idx, func(a, b int) bool { return s.Timestamps[idx[a]] < s.Timestamps[idx[b]] })
		ts, vs := make([]int64, len(idx)), make([]float64, len(idx))
		for j, k := range idx {
			ts[j], vs[j] = s.Timestamps[k], s.Values[k]
		}
		s.Timestamps, s.Values = ts, vs
	}
	return out
}

// push sends req to url and fails the test unless the answer is 204.
func push(t *testing.T, url string, req *prompb.WriteRequest) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	res, err := testenv.Push(ctx, url, req)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	if res.StatusCode != 204 {
		t.Fatalf("POST %s: status %d, want 204; body: %s", url, res.StatusCode, res.Body)
	}
}

// scrape returns scoreproxy's /metrics, failing the test on error.
func scrape(t *testing.T, url string) testenv.Metrics {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m, err := testenv.ScrapeMetrics(ctx, url)
	if err != nil {
		t.Fatalf("scrape %s: %v", url, err)
	}
	return m
}

// wantMetric fails the test unless the samples of name whose labels include
// match add up to want.
func wantMetric(t *testing.T, m testenv.Metrics, name string, match map[string]string, want float64) {
	t.Helper()
	got, ok := m.Sum(name, match)
	if !ok {
		t.Errorf("/metrics has no %s%v", name, labelsString(match))
		return
	}
	if got != want {
		t.Errorf("/metrics %s%v = %v, want %v", name, labelsString(match), got, want)
	}
}

func labelsString(m map[string]string) string {
	if len(m) == 0 {
		return ""
	}
	return testenv.LabelsKey(m)
}

// recentMinute returns a whole minute a few minutes back: timestamps that
// VictoriaMetrics accepts and that never collide with "now".
func recentMinute(back time.Duration) int64 {
	return time.Now().Add(-back).Truncate(time.Minute).UnixMilli()
}

// withoutNaN returns s's samples under labels, NaN samples left out:
// VictoriaMetrics drops them on ingestion, so they are never expected.
func withoutNaN(labels map[string]string, s testenv.Series) testenv.Series {
	x := testenv.Series{Labels: labels}
	for i, v := range s.Values {
		if !math.IsNaN(v) {
			x.Timestamps = append(x.Timestamps, s.Timestamps[i])
			x.Values = append(x.Values, v)
		}
	}
	return x
}

// cutToSnapshot keeps, of each exported series the snapshot (wantBy, by
// Key) has, the non-NaN samples up to the snapshot's last one: Prometheus
// goes on scraping while the test waits, and staleness markers are NaN
// (Prometheus' range query hides them). Series created after the
// snapshot are left out.
func cutToSnapshot(got []testenv.Series, wantBy map[string]testenv.Series) []testenv.Series {
	return cutToSnapshotNaN(got, wantBy, false)
}

// cutToSnapshotNaN is cutToSnapshot, keeping NaN samples when keepNaN is
// set: for a store that keeps them, as Prometheus does (summary quantiles
// without observations are NaN), they are compared, not left out.
func cutToSnapshotNaN(got []testenv.Series, wantBy map[string]testenv.Series, keepNaN bool) []testenv.Series {
	var cut []testenv.Series
	for _, g := range got {
		w, ok := wantBy[g.Key()]
		if !ok {
			continue
		}
		last := w.Timestamps[len(w.Timestamps)-1]
		c := testenv.Series{Labels: g.Labels}
		for i, ts := range g.Timestamps {
			if ts <= last && (keepNaN || !math.IsNaN(g.Values[i])) {
				c.Timestamps = append(c.Timestamps, ts)
				c.Values = append(c.Values, g.Values[i])
			}
		}
		cut = append(cut, c)
	}
	return cut
}

// loopbackServer starts a test server for h on 127.0.0.1 (httptest's own
// listener may be on [::1]) and closes it when the test ends.
func loopbackServer(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv.Listener.Close()
	srv.Listener = l
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}
