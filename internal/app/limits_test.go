package app

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"
)

// shapeRequest is one series with the given extra labels (name=value).
func shapeRequest(series int, extra ...string) *prompb.WriteRequest {
	wr := &prompb.WriteRequest{}
	for i := range series {
		labels := []prompb.Label{{Name: "__name__", Value: "y"}}
		for j := 0; j+1 < len(extra); j += 2 {
			labels = append(labels, prompb.Label{Name: extra[j], Value: extra[j+1]})
		}
		labels = append(labels, prompb.Label{Name: "series", Value: fmt.Sprint(i)})
		wr.Timeseries = append(wr.Timeseries, prompb.TimeSeries{Labels: labels, Samples: []prompb.Sample{{Value: 1, Timestamp: 1}}})
	}
	return wr
}

// TestShapeLimits: a request over a shape limit is refused whole with 400
// naming the limit and the offending series or label, and nothing of it is
// forwarded; one at the limit passes.
func TestShapeLimits(t *testing.T) {
	long := strings.Repeat("v", 33)
	tests := []struct {
		name       string
		wr         *prompb.WriteRequest
		wantStatus int
		wantBody   string
	}{
		{"at every limit", shapeRequest(4, "a", strings.Repeat("v", 32), strings.Repeat("n", 16), "x"), 204, ""},
		{"too many series", shapeRequest(5), 400, "request has 5 series, more than limits.max_series_per_request (4)"},
		{"too many labels", shapeRequest(1, "a", "1", "b", "2", "c", "3"), 400,
			`series y{a="1",b="2",c="3",series="0"} has 5 labels, more than limits.max_labels_per_series (4)`},
		{"label name too long", shapeRequest(1, strings.Repeat("n", 17), "x"), 400,
			`label name "nnnnnnnnnnnnnnnnn" (17 bytes) of series y{nnnnnnnnnnnnnnnnn="x",series="0"} is longer than limits.max_label_name_length (16)`},
		{"label value too long", shapeRequest(1, "a", long), 400,
			`value of label "a" (33 bytes) of series y{a="` + long + `",series="0"} is longer than limits.max_label_value_length (32)`},
	}
	up, upSrv := newUpstream(t)
	cfg := writeConfig(t, "writer:\n  datasource_url: "+upSrv.URL+"\n  metric_format:\n    __name__: \"vmanomaly_$VAR\"\n"+
		"limits:\n  max_series_per_request: 4\n  max_labels_per_series: 4\n  max_label_name_length: 16\n  max_label_value_length: 32\n")
	srv := startProxy(t, cfg)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := up.forwarded()["/api/v1/write"]
			status, _, body := postWith(t, srv.URL+"/api/v1/write", tt.wr, nil)
			if status != tt.wantStatus || !strings.Contains(body, tt.wantBody) {
				t.Fatalf("got %d %q, want %d containing %q", status, body, tt.wantStatus, tt.wantBody)
			}
			want := before
			if status == 204 {
				want += len(tt.wr.Timeseries)
			}
			if got := up.forwarded()["/api/v1/write"]; got != want {
				t.Errorf("upstream has %d samples, want %d", got, want)
			}
		})
	}
}

// TestConcurrencyLimit: with max_concurrent_requests: 1, a write arriving
// while another is in progress gets 429 with Retry-After; once the first
// is done, writes pass again.
func TestConcurrencyLimit(t *testing.T) {
	arrived, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/health" {
			once.Do(func() { close(arrived); <-release })
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer up.Close()
	srv := startProxy(t, writeConfig(t, "writer:\n  datasource_url: "+up.URL+"\nlimits:\n  max_concurrent_requests: 1\n"))
	first := make(chan int, 1)
	go func() { s, _, _ := postWith(t, srv.URL+"/api/v1/write", shapeRequest(1), nil); first <- s }()
	<-arrived
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/api/v1/write", strings.NewReader("x"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" {
		t.Errorf("second request: %d, Retry-After %q; want 429 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	close(release)
	if s := <-first; s != 204 {
		t.Errorf("first request: %d, want 204", s)
	}
	if s, _, body := postWith(t, srv.URL+"/api/v1/write", shapeRequest(1), nil); s != 204 {
		t.Errorf("after the first finished: %d %s, want 204", s, body)
	}
}

// TestTenantSampleRate: with max_samples_per_second_per_tenant: 1 a first
// request of 5 samples for tenant 5 passes (full bucket, left in debt), the
// next one for tenant 5 gets 429 with Retry-After naming the tenant, and
// tenant 6 is not affected. (The debt of 4 samples takes 4 s to repay, far
// longer than the test takes.)
func TestTenantSampleRate(t *testing.T) {
	up, upSrv := newUpstream(t)
	srv := startProxy(t, writeConfig(t, "writer:\n  datasource_url: "+upSrv.URL+"\n  tenant_id: multitenant\n"+
		"limits:\n  max_samples_per_second_per_tenant: 1\n"))
	url := srv.URL + "/api/v1/write"
	if s, _, body := postWith(t, url, tenantSeries("5:0", "5:0", "5:0", "5:0", "5:0"), nil); s != 204 {
		t.Fatalf("first request: %d %s", s, body)
	}
	status, _, body := postWith(t, url, tenantSeries("6:0", "5:0"), nil)
	if status != 429 || !strings.Contains(body, "tenant 5:0 is over limits.max_samples_per_second_per_tenant (1)") {
		t.Errorf("second request: %d %q, want 429 naming tenant 5:0", status, body)
	}
	if s, _, body := postWith(t, url, tenantSeries("6:0"), nil); s != 204 {
		t.Errorf("tenant 6: %d %s, want 204", s, body)
	}
	if got := up.forwarded()["/insert/multitenant/prometheus/api/v1/write"]; got != 6 {
		t.Errorf("upstream has %d samples, want 6 (the refused request forwarded nothing)", got)
	}
}

// TestSlowClientCutAtReadTimeout: a client that sends its body one byte per
// second is cut off at server.read_timeout: it never gets 204, the upstream
// receives nothing, and it could send only a few bytes (the server holds at
// most limits.max_request_bytes for it in any case).
func TestSlowClientCutAtReadTimeout(t *testing.T) {
	up, upSrv := newUpstream(t)
	addr := freeAddr(t)
	cfg := writeConfig(t, fmt.Sprintf("listen: %s\nwriter:\n  datasource_url: %s\nserver:\n  read_header_timeout: 1s\n  read_timeout: 2s\n", addr, upSrv.URL))
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- Serve(ctx, cfg, slog.New(slog.DiscardHandler)) }()
	defer func() { cancel(); <-served }()
	waitFor(t, "the listener", func() bool { return accepting(addr) })

	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	const bodyLen = 30
	fmt.Fprintf(conn, "POST /api/v1/write HTTP/1.1\r\nHost: x\r\nContent-Encoding: snappy\r\nContent-Length: %d\r\n\r\n", bodyLen)
	answered := make(chan string, 1)
	go func() {
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			answered <- "connection closed: " + err.Error()
			return
		}
		resp.Body.Close()
		answered <- resp.Status
	}()
	sent := 0
	for sent < bodyLen {
		select {
		case got := <-answered:
			if strings.HasPrefix(got, "204") {
				t.Fatalf("slow client got %s", got)
			}
			if sent >= bodyLen/2 {
				t.Errorf("server read %d of %d bytes sent at one per second before cutting the client off", sent, bodyLen)
			}
			if n := len(up.forwarded()); n != 0 {
				t.Errorf("upstream received %v", up.forwarded())
			}
			return
		case <-time.After(time.Second):
		}
		if _, err := conn.Write([]byte{0}); err != nil {
			return // cut off
		}
		sent++
	}
	t.Fatalf("the server read all %d bytes at one per second without cutting the client off", bodyLen)
}

// TestInflightBytesAcrossReloads: limits.max_inflight_bytes sizes the
// process-wide byte budget; a reload changes its size but keeps the same
// budget, so requests on the old and the new pipeline share it; /metrics
// shows what it holds (nothing at rest).
func TestInflightBytesAcrossReloads(t *testing.T) {
	_, upSrv := newUpstream(t)
	rl, srv, path := startReloader(t, reloadConfig(upSrv.URL, "a", "limits:\n  max_inflight_bytes: 200MiB\n"))
	first := rl.current().budget
	if first.Max() != 200<<20 {
		t.Fatalf("budget of %d bytes, want 200 MiB", first.Max())
	}
	writeFileT(t, path, reloadConfig(upSrv.URL, "a", "limits:\n  max_inflight_bytes: 300MiB\n"))
	if code, body := postReload(t, srv.URL); code != 200 {
		t.Fatalf("reload: %d %s", code, body)
	}
	if b := rl.current().budget; b != first || b.Max() != 300<<20 {
		t.Errorf("after the reload: the same budget %v, of %d bytes; want the same one, of 300 MiB", b == first, b.Max())
	}
	if code, err := postStatus(srv.URL+"/api/v1/write", modelOutputs(10, 1)); err != nil || code != 204 {
		t.Fatalf("write: %d %v", code, err)
	}
	if got := metricLine(t, srv.URL, "scoreproxy_inflight_bytes"); got != "0" {
		t.Errorf("scoreproxy_inflight_bytes = %q at rest, want 0", got)
	}
}
