package app

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"

	"github.com/scoreproxy/scoreproxy/config"
)

// reloadConfig is a config whose metric_format names outputs prefix_$VAR.
func reloadConfig(upstreamURL, prefix, extra string) string {
	return fmt.Sprintf("writer:\n  datasource_url: %s/\n  metric_format: {__name__: %s_$VAR, for: $QUERY_KEY}\n%s",
		upstreamURL, prefix, extra)
}

// startReloader writes yaml to a file and serves a reloader built from it.
func startReloader(t *testing.T, yaml string) (*reloader, *httptest.Server, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yaml")
	writeFileT(t, path, yaml)
	cfg, _, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	rl, err := newReloader(cfg, slog.New(slog.DiscardHandler), ReloadOptions{ConfigPath: path})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(rl)
	t.Cleanup(func() {
		srv.Close()
		if err := rl.close(context.Background()); err != nil {
			t.Errorf("closing: %v", err)
		}
	})
	return rl, srv, path
}

func writeFileT(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

// postStatus posts wr and returns the status; usable from any goroutine.
func postStatus(url string, wr *prompb.WriteRequest) (int, error) {
	raw, err := wr.Marshal()
	if err != nil {
		return 0, err
	}
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(snappy.Encode(nil, raw)))
	req.Header.Set("Content-Encoding", "snappy")
	req.Header.Set("Content-Type", "application/x-protobuf")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

func postReload(t *testing.T, base string) (int, string) {
	t.Helper()
	resp, err := http.Post(base+"/-/reload", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// names returns the metric names u received, counted.
func (u *upstream) names() map[string]int {
	out := map[string]int{}
	for _, m := range u.received() {
		for series, n := range m {
			name, _, _ := strings.Cut(strings.TrimPrefix(series, "{__name__="), ",")
			out[name] += n
		}
	}
	return out
}

func metricLine(t *testing.T, srv, name string) string {
	t.Helper()
	for line := range strings.SplitSeq(get(t, srv+"/metrics"), "\n") {
		if strings.HasPrefix(line, name+" ") {
			return strings.TrimPrefix(line, name+" ")
		}
	}
	return ""
}

// Reloads while four producers send: no request fails, and once the last
// reload is done the new metric_format applies.
func TestReloadUnderLoadLosesNoRequest(t *testing.T) {
	up, upSrv := newUpstream(t)
	_, srv, path := startReloader(t, reloadConfig(upSrv.URL, "a", ""))
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failures []string
	var sent atomic.Int64
	stop := make(chan struct{})
	for g := range 4 {
		wg.Go(func() {
			for i := 0; i < 200; i++ {
				select {
				case <-stop:
					return
				default:
				}
				wr := modelOutputs(10, 1)
				for j := range wr.Timeseries {
					wr.Timeseries[j].Samples[0].Timestamp += int64(g*1000 + i)
				}
				if code, err := postStatus(srv.URL+"/api/v1/write", wr); err != nil || code != http.StatusNoContent {
					mu.Lock()
					failures = append(failures, fmt.Sprintf("%d %v", code, err))
					mu.Unlock()
				}
				sent.Add(1)
			}
		})
	}
	for i, prefix := range []string{"b", "c", "b", "c", "d"} {
		target := sent.Load() + 8 // reload while requests are in flight
		waitFor(t, "more requests", func() bool { return sent.Load() >= target })
		writeFileT(t, path, reloadConfig(upSrv.URL, prefix, ""))
		if code, body := postReload(t, srv.URL); code != http.StatusOK {
			t.Fatalf("reload %d: %d %s", i, code, body)
		}
	}
	close(stop)
	wg.Wait()
	if len(failures) > 0 {
		t.Fatalf("%d requests failed during reloads, e.g. %s", len(failures), failures[0])
	}
	up.mu.Lock()
	up.samples = map[string]map[string]int{}
	up.mu.Unlock()
	if code, err := postStatus(srv.URL+"/api/v1/write", modelOutputs(5, 1)); err != nil || code != http.StatusNoContent {
		t.Fatalf("post after reload: %d %v", code, err)
	}
	want := map[string]int{"d_anomaly_score": 2, "d_y": 2, "d_yhat": 2, "d_yhat_lower": 2, "d_yhat_upper": 2}
	if got := up.names(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("after reloading to d_$VAR the upstream received %v, want %v", got, want)
	}
	if got := metricLine(t, srv.URL, "scoreproxy_config_last_reload_successful"); got != "1" {
		t.Errorf("scoreproxy_config_last_reload_successful = %q, want 1", got)
	}
}

// An invalid or restart-only config is refused with the reasons, and the
// old config keeps running.
func TestReloadRefusedKeepsOldConfig(t *testing.T) {
	up, upSrv := newUpstream(t)
	_, srv, path := startReloader(t, reloadConfig(upSrv.URL, "a", ""))
	failedBefore := metricLine(t, srv.URL, `scoreproxy_config_reloads_total{result="failure"}`)
	for _, tt := range []struct{ name, yaml, want string }{
		{"invalid", reloadConfig(upSrv.URL, "b", "routing:\n  split_tenants: maybe\n"), "routing.split_tenants:"},
		{"unknown key", reloadConfig(upSrv.URL, "b", "limits:\n  max_request: 1\n"), `limits: unknown key "max_request"`},
		{"listen changed", reloadConfig(upSrv.URL, "b", "listen: 127.0.0.1:1\n"), "listen (\"127.0.0.1:8490\" -> \"127.0.0.1:1\")"},
		{"queue changed", reloadConfig(upSrv.URL, "b", "queue:\n  path: "+t.TempDir()+"\n"), "queue: (the durable queues stay open"},
	} {
		writeFileT(t, path, tt.yaml)
		code, body := postReload(t, srv.URL)
		if code != http.StatusBadRequest || !strings.Contains(body, tt.want) || !strings.Contains(body, "previous one keeps running") {
			t.Errorf("%s: reload answered %d %q, want 400 containing %q", tt.name, code, body, tt.want)
		}
		if got := metricLine(t, srv.URL, "scoreproxy_config_last_reload_successful"); got != "0" {
			t.Errorf("%s: scoreproxy_config_last_reload_successful = %q, want 0", tt.name, got)
		}
	}
	if after := metricLine(t, srv.URL, `scoreproxy_config_reloads_total{result="failure"}`); after == failedBefore {
		t.Error("scoreproxy_config_reloads_total{result=\"failure\"} did not grow")
	}
	if code, err := postStatus(srv.URL+"/api/v1/write", modelOutputs(1, 1)); err != nil || code != http.StatusNoContent {
		t.Fatalf("post: %d %v", code, err)
	}
	if got := up.names(); got["a_anomaly_score"] != 2 || len(got) != 1 {
		t.Errorf("after refused reloads the upstream received %v, want the old a_$VAR names", got)
	}
	if resp, err := http.Get(srv.URL + "/-/reload"); err != nil || resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET /-/reload: %v %v, want 405", resp.StatusCode, err)
	}
}

// With queue.path, a reload keeps the same open queue (nothing queued is
// dropped or reopened) and switches its upstream client: data queued while
// the upstream was down is delivered after the reload.
func TestReloadKeepsTheQueue(t *testing.T) {
	up, upSrv := newUpstream(t)
	up.setStatus(http.StatusServiceUnavailable)
	queueYAML := "queue:\n  path: " + t.TempDir() + "\n  retry_min_interval: 10ms\n  retry_max_interval: 50ms\n"
	rl, srv, path := startReloader(t, reloadConfig(upSrv.URL, "a", queueYAML))
	before := rl.current().writers[0].queue
	if code, err := postStatus(srv.URL+"/api/v1/write", modelOutputs(5, 1)); err != nil || code != http.StatusNoContent {
		t.Fatalf("post: %d %v", code, err)
	}
	writeFileT(t, path, reloadConfig(upSrv.URL, "b", queueYAML+"server:\n  health_check_interval: 1s\n"))
	if code, body := postReload(t, srv.URL); code != http.StatusOK {
		t.Fatalf("reload: %d %s", code, body)
	}
	if after := rl.current().writers[0].queue; after != before {
		t.Fatal("the reload opened a new queue instead of keeping the open one")
	}
	if before.PendingBytes() == 0 {
		t.Fatal("nothing queued while the upstream is down")
	}
	up.mu.Lock()
	up.status, up.samples = http.StatusNoContent, map[string]map[string]int{}
	up.mu.Unlock()
	if code, err := postStatus(srv.URL+"/api/v1/write", modelOutputs(5, 1)); err != nil || code != http.StatusNoContent {
		t.Fatalf("post after reload: %d %v", code, err)
	}
	waitFor(t, "the queued and the new data to be delivered", func() bool {
		n := up.names()
		return n["a_anomaly_score"] >= 2 && n["b_anomaly_score"] >= 2 && before.PendingBytes() == 0
	})
}

// The SIGHUP path of the binary: a signal on ReloadOptions.Signals reloads
// the file given at start, on a server run by ServeReloadable.
func TestReloadOnSignal(t *testing.T) {
	up, upSrv := newUpstream(t)
	path := filepath.Join(t.TempDir(), "config.yaml")
	writeFileT(t, path, reloadConfig(upSrv.URL, "a", ""))
	cfg, _, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	signals := make(chan os.Signal, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- ServeReloadable(ctx, cfg, slog.New(slog.DiscardHandler), ln, ReloadOptions{ConfigPath: path, Signals: signals})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ServeReloadable: %v", err)
		}
	}()
	before := metricLine(t, base, `scoreproxy_config_reloads_total{result="success"}`)
	writeFileT(t, path, reloadConfig(upSrv.URL, "b", ""))
	signals <- syscall.SIGHUP
	waitFor(t, "the SIGHUP reload", func() bool {
		return metricLine(t, base, `scoreproxy_config_reloads_total{result="success"}`) != before
	})
	if code, err := postStatus(base+"/api/v1/write", modelOutputs(1, 1)); err != nil || code != http.StatusNoContent {
		t.Fatalf("post: %d %v", code, err)
	}
	if got := up.names(); got["b_anomaly_score"] != 2 {
		t.Errorf("after SIGHUP the upstream received %v, want b_anomaly_score", got)
	}
}
