package remotewrite

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/scoreproxy/scoreproxy/internal/testenv"
)

// healthUpstream answers /health with a status the test sets, and requires
// basic auth foo:bar so the probe is seen to use the client's credentials.
func healthUpstream(t *testing.T) (*httptest.Server, *atomic.Int32, chan struct{}) {
	t.Helper()
	var status atomic.Int32
	status.Store(http.StatusOK)
	hits := make(chan struct{}, 100)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case hits <- struct{}{}:
		default:
		}
		if u, p, ok := r.BasicAuth(); !ok || u != "foo" || p != "bar" || r.Method != http.MethodGet {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		code := int(status.Load())
		w.WriteHeader(code)
		_, _ = w.Write([]byte("status " + http.StatusText(code)))
	}))
	t.Cleanup(srv.Close)
	return srv, &status, hits
}

// syncBuffer is a log sink the code under test's goroutines write to.
type syncBuffer = testenv.SyncBuffer

func TestHealthCheckerFollowsUpstream(t *testing.T) {
	srv, status, _ := healthUpstream(t)
	c := newTestClient(t, ClientConfig{User: "foo", Password: "bar"}, defaultRecheck)
	var logs syncBuffer
	h := NewHealthChecker(c, srv.URL+"/health", time.Hour, slog.New(slog.NewTextHandler(&logs, nil)))
	gauge := `scoreproxy_upstream_ready{url="` + srv.URL + `/health"} `

	steps := []struct {
		status int
		ready  bool
	}{
		{http.StatusOK, true},
		{http.StatusOK, true},
		{http.StatusServiceUnavailable, false},
		{http.StatusServiceUnavailable, false},
		{http.StatusNoContent, true},
	}
	for i, s := range steps {
		status.Store(int32(s.status))
		h.probeOnce(context.Background())
		if h.Ready() != s.ready {
			t.Fatalf("step %d (%d): Ready() = %v, want %v", i, s.status, h.Ready(), s.ready)
		}
		want := gauge + map[bool]string{true: "1", false: "0"}[s.ready]
		if !strings.Contains(metricsText(), want) {
			t.Errorf("step %d: metrics lack %s", i, want)
		}
	}

	// State changes only: ready, not ready (with the reason), ready again.
	text := logs.String()
	if n := strings.Count(text, "upstream is ready"); n != 2 {
		t.Errorf("logged ready %d times, want 2:\n%s", n, text)
	}
	if n := strings.Count(text, "upstream is not ready"); n != 1 {
		t.Errorf("logged not ready %d times, want 1:\n%s", n, text)
	}
	if !strings.Contains(text, "503 Service Unavailable") {
		t.Errorf("not-ready log lacks the reason:\n%s", text)
	}
}

func TestHealthCheckerUnreachable(t *testing.T) {
	c := newTestClient(t, ClientConfig{User: "foo", Password: "s3cret-pw"}, defaultRecheck)
	var logs syncBuffer
	u := strings.Replace(closedURL(t), "http://", "http://foo:s3cret-pw@", 1) + "/health"
	h := NewHealthChecker(c, u, time.Hour, slog.New(slog.NewTextHandler(&logs, nil)))

	h.probeOnce(context.Background())

	if h.Ready() {
		t.Fatal("Ready() with nothing listening")
	}
	text := logs.String()
	if !strings.Contains(text, "upstream is not ready") || !strings.Contains(text, "refused") {
		t.Errorf("log lacks the failure:\n%s", text)
	}
	if strings.Contains(text, "s3cret-pw") {
		t.Errorf("log leaks the password:\n%s", text)
	}
}

func TestHealthCheckerRunProbesAtOnceAndStops(t *testing.T) {
	srv, _, hits := healthUpstream(t)
	c := newTestClient(t, ClientConfig{User: "foo", Password: "bar"}, defaultRecheck)
	h := NewHealthChecker(c, srv.URL+"/health", time.Hour, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		h.Run(ctx)
		close(done)
	}()

	<-hits // the first probe does not wait for the hour-long interval
	for !h.Ready() {
		time.Sleep(time.Millisecond) // the answer is on its way
	}
	cancel()
	<-done
}

func TestHealthCheckerLogsCredentialErrors(t *testing.T) {
	srv, _, _ := healthUpstream(t)
	path := t.TempDir() + "/token"
	t0 := time.Now().Add(-time.Hour)
	writeFile(t, path, "tok", t0)
	c := newTestClient(t, ClientConfig{BearerTokenFile: path}, 0)
	var logs syncBuffer
	h := NewHealthChecker(c, srv.URL+"/health", time.Hour, slog.New(slog.NewTextHandler(&logs, nil)))

	writeFile(t, path, "", t0.Add(time.Minute))
	h.probeOnce(context.Background())
	h.probeOnce(context.Background())

	if n := strings.Count(logs.String(), "cannot re-read upstream credentials"); n != 1 {
		t.Errorf("credential error logged %d times, want once:\n%s", n, logs.String())
	}
}

// While the upstream is not ready the checker probes every second, however
// long its interval, and calls OnReady once when a probe succeeds again: the
// queue's delivery workers then stop waiting out their backoff.
func TestHealthCheckerReportsRecoveryWithinASecond(t *testing.T) {
	srv, status, hits := healthUpstream(t)
	status.Store(http.StatusServiceUnavailable)
	c := newTestClient(t, ClientConfig{User: "foo", Password: "bar"}, defaultRecheck)
	h := NewHealthChecker(c, srv.URL+"/health", time.Hour, slog.New(slog.DiscardHandler))
	recovered := make(chan time.Time, 10)
	h.OnReady(func() { recovered <- time.Now() })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		h.Run(ctx)
		close(done)
	}()
	defer func() { cancel(); <-done }()

	<-hits
	<-hits // a second probe while down, long before the hour-long interval
	back := time.Now()
	status.Store(http.StatusOK)
	select {
	case at := <-recovered:
		if d := at.Sub(back); d > RecoveryProbeInterval+500*time.Millisecond {
			t.Fatalf("OnReady came %v after the upstream was back, want within %v", d, RecoveryProbeInterval)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("OnReady was not called after the upstream came back")
	}
	if !h.Ready() {
		t.Fatal("Ready() is false after OnReady")
	}
	select {
	case <-recovered:
		t.Fatal("OnReady called twice for one recovery")
	case <-time.After(50 * time.Millisecond):
	}
}
