package app

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/prompb"
)

func (u *upstream) setStatus(code int) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.status = code
}

// received returns a copy of what u recorded.
func (u *upstream) received() map[string]map[string]int {
	u.mu.Lock()
	defer u.mu.Unlock()
	out := map[string]map[string]int{}
	for path, m := range u.samples {
		out[path] = map[string]int{}
		for k, v := range m {
			out[path][k] = v
		}
	}
	return out
}

// postBody posts wr and returns the status and the answer's body.
func postBody(t *testing.T, url string, wr *prompb.WriteRequest) (int, string) {
	t.Helper()
	code, _, body := postWith(t, url, wr, nil)
	return code, body
}

// newWritersProxy starts an in-process proxy from yaml whose writers and
// queues are closed at the end of the test.
func newWritersProxy(t *testing.T, yaml string) (*Proxy, *httptest.Server) {
	t.Helper()
	p, err := New(writeConfig(t, yaml), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(p.handler)
	t.Cleanup(func() {
		srv.Close()
		if err := closeWriters(context.Background(), p.writers, nil); err != nil {
			t.Errorf("closing the writers: %v", err)
		}
	})
	return p, srv
}

// writers: without a queue: each writer gets a full copy with its own
// metric_format; the producer gets 2xx only when every writer took its
// copy, else the failing writer's status, named; the healthy writer still
// received the data.
func TestWritersSynchronousOneFailing(t *testing.T) {
	a, aSrv := newUpstream(t)
	b, bSrv := newUpstream(t)
	b.setStatus(http.StatusServiceUnavailable)
	_, proxy := newWritersProxy(t, fmt.Sprintf(`
writers:
  - datasource_url: %s/
    tenant_id: "1:2"
    metric_format: {__name__: vmanomaly_$VAR, for: q_$QUERY_KEY, run: test_metric_format}
  - name: b
    datasource_url: %s/
`, aSrv.URL, bSrv.URL))
	wr := modelOutputs(20, 1)
	code, msg := postBody(t, proxy.URL+"/api/v1/write", wr)
	if code != http.StatusServiceUnavailable || !strings.Contains(msg, "writers[1] (b)") {
		t.Fatalf("with writer b failing: %d %q, want 503 naming writers[1] (b)", code, msg)
	}
	wantA := expected(wr, func(string) string { return "/insert/1:2/prometheus/api/v1/write" }, true)
	if got := a.received(); !reflect.DeepEqual(got, wantA) {
		t.Errorf("writer a received\n%v\nwant\n%v", got, wantA)
	}

	b.setStatus(http.StatusNoContent)
	b.mu.Lock()
	b.samples = map[string]map[string]int{}
	b.mu.Unlock()
	if code, msg := postBody(t, proxy.URL+"/api/v1/write", wr); code != http.StatusNoContent {
		t.Fatalf("with both writers up: %d %q, want 204", code, msg)
	}
	wantB := map[string]map[string]int{"/api/v1/write": {}}
	for _, ts := range wr.Timeseries {
		for _, s := range ts.Samples {
			wantB["/api/v1/write"][fmt.Sprintf("%s@%d=%g", seriesText(ts.Labels), s.Timestamp, s.Value)]++
		}
	}
	if got := b.received(); !reflect.DeepEqual(got, wantB) {
		t.Errorf("writer b (no metric_format) received\n%v\nwant\n%v", got, wantB)
	}
}

// writers: with queue.path: each writer queues in its own subdirectory;
// the producer gets 204 while writer b's upstream is down, writer a
// receives everything meanwhile, and b receives it once it is back.
func TestWritersQueuedOneFailing(t *testing.T) {
	a, aSrv := newUpstream(t)
	b, bSrv := newUpstream(t)
	b.setStatus(http.StatusServiceUnavailable)
	dir := t.TempDir()
	p, proxy := newWritersProxy(t, fmt.Sprintf(`
writers:
  - datasource_url: %s/
  - name: b
    datasource_url: %s/
queue:
  path: %s
  retry_min_interval: 10ms
  retry_max_interval: 50ms
`, aSrv.URL, bSrv.URL, dir))
	wr := modelOutputs(20, 1)
	if code, msg := postBody(t, proxy.URL+"/api/v1/write", wr); code != http.StatusNoContent {
		t.Fatalf("with writer b down but queued: %d %q, want 204", code, msg)
	}
	waitFor(t, "writer a to receive 40 samples", func() bool { return a.forwarded()["/api/v1/write"] == 40 })
	if p.writers[1].queue.PendingBytes() == 0 {
		t.Error("writer b's queue is empty while its upstream is down")
	}
	for _, sub := range []string{"writer0", "b"} {
		if _, err := os.Stat(filepath.Join(dir, sub)); err != nil {
			t.Errorf("queue subdirectory: %v", err)
		}
	}
	b.mu.Lock() // b recorded the refused attempts: from now on it accepts, and counts afresh
	b.status, b.samples = http.StatusNoContent, map[string]map[string]int{}
	b.mu.Unlock()
	waitFor(t, "writer b to receive 40 samples once up", func() bool {
		return b.forwarded()["/api/v1/write"] >= 40 && p.writers[1].queue.PendingBytes() == 0
	})
	if got, want := b.received(), a.received(); !reflect.DeepEqual(got, want) {
		t.Errorf("writer b received\n%v\nwant what writer a received\n%v", got, want)
	}
}

// routing.tenant_urls: the tenants in the map go to their own cluster,
// the others to datasource_url, each to its /insert/<tenant>/ path.
func TestTenantURLsSplitBetweenTwoUpstreams(t *testing.T) {
	a, aSrv := newUpstream(t)
	b, bSrv := newUpstream(t)
	_, proxy := newWritersProxy(t, fmt.Sprintf(`
writer:
  datasource_url: %s/
  tenant_id: multitenant
  metric_format: {__name__: vmanomaly_$VAR, for: q_$QUERY_KEY, run: test_metric_format}
routing:
  split_tenants: true
  tenant_urls: {"1": %s/, "3:0": %s}
`, aSrv.URL, bSrv.URL, bSrv.URL))
	wr := modelOutputs(40, 4)
	if code, msg := postBody(t, proxy.URL+"/api/v1/write", wr); code != http.StatusNoContent {
		t.Fatalf("post: %d %q", code, msg)
	}
	all := expected(wr, func(acc string) string { return "/insert/" + acc + ":0/prometheus/api/v1/write" }, false)
	wantA, wantB := map[string]map[string]int{}, map[string]map[string]int{}
	for path, m := range all {
		if strings.HasPrefix(path, "/insert/1:0/") || strings.HasPrefix(path, "/insert/3:0/") {
			wantB[path] = m
		} else {
			wantA[path] = m
		}
	}
	if got := a.received(); !reflect.DeepEqual(got, wantA) {
		t.Errorf("datasource_url received\n%v\nwant\n%v", got, wantA)
	}
	if got := b.received(); !reflect.DeepEqual(got, wantB) {
		t.Errorf("the tenant_urls cluster received\n%v\nwant\n%v", got, wantB)
	}
}

// writers: with auth: a credential bound to 5:0 writes through two writers
// only when both send to tenants it may write; when one writer would send
// to 7:0 the request is refused with 403 naming it, and neither writer
// forwards anything (the writers wait for each other's tenant check).
func TestWritersAuthRefusalForwardsNothing(t *testing.T) {
	for _, tc := range []struct {
		name     string
		bTenant  string
		wantCode int
	}{
		{"both writers to 5:0", "5:0", http.StatusNoContent},
		{"writer b to 7:0", "7:0", http.StatusForbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, aSrv := newUpstream(t)
			b, bSrv := newUpstream(t)
			_, proxy := newWritersProxy(t, authConfig+fmt.Sprintf(`
writers:
  - datasource_url: %s/
    tenant_id: "5:0"
  - name: b
    datasource_url: %s/
    tenant_id: %q
`, aSrv.URL, bSrv.URL, tc.bTenant))
			code, _, body := postWith(t, proxy.URL+"/api/v1/write", tenantSeries(""), bearer("secret-five"))
			if code != tc.wantCode {
				t.Fatalf("got %d %q, want %d", code, body, tc.wantCode)
			}
			if code == http.StatusNoContent {
				if len(a.forwarded()) == 0 || len(b.forwarded()) == 0 {
					t.Errorf("allowed request: writer a got %v, writer b got %v; want both", a.forwarded(), b.forwarded())
				}
				return
			}
			if !strings.Contains(body, "7:0") {
				t.Errorf("403 body %q does not name tenant 7:0", body)
			}
			if got := orEmpty(a.forwarded()); len(got) != 0 {
				t.Errorf("writer a forwarded %v of a refused request", got)
			}
			if got := orEmpty(b.forwarded()); len(got) != 0 {
				t.Errorf("writer b forwarded %v of a refused request", got)
			}
		})
	}
}
