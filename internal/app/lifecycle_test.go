package app

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// accepting reports whether something accepts TCP connections at addr.
func accepting(addr string) bool {
	c, err := net.Dial("tcp", addr)
	if err == nil {
		c.Close()
	}
	return err == nil
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestShutdownFinishesInFlightRequests: on SIGTERM (ctx cancelled) the
// server stops accepting but a request already being forwarded completes
// with 204, and serve returns cleanly.
func TestShutdownFinishesInFlightRequests(t *testing.T) {
	arrived, release := make(chan struct{}), make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health" {
			return
		}
		close(arrived)
		<-release
		w.WriteHeader(http.StatusNoContent)
	}))
	defer up.Close()
	addr := freeAddr(t)
	cfg := writeConfig(t, fmt.Sprintf("listen: %s\nwriter:\n  datasource_url: %s\n", addr, up.URL))
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- Serve(ctx, cfg, slog.New(slog.DiscardHandler)) }()
	waitFor(t, "the listener", func() bool { return accepting(addr) })
	status := make(chan int, 1)
	go func() { status <- post(t, "http://"+addr+"/api/v1/write", modelOutputs(5, 1)).StatusCode }()
	<-arrived
	cancel() // what SIGTERM does in main
	waitFor(t, "the listener to close", func() bool { return !accepting(addr) })
	close(release)
	if got := <-status; got != http.StatusNoContent {
		t.Errorf("in-flight request got %d, want 204", got)
	}
	if err := <-served; err != nil {
		t.Errorf("serve returned %v", err)
	}
}

func TestReadyFollowsUpstreamHealth(t *testing.T) {
	var healthy atomic.Bool
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !healthy.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer up.Close()
	cfg := writeConfig(t, "writer:\n  datasource_url: "+up.URL+"\n  health_path: health\nserver:\n  health_check_interval: 20ms\n")
	p, err := New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go p.health.Run(ctx)
	srv := httptest.NewServer(p.handler)
	defer srv.Close()
	readyStatus := func() int {
		resp, err := http.Get(srv.URL + "/ready")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	waitFor(t, "a probe", func() bool { return readyStatus() == http.StatusServiceUnavailable })
	healthy.Store(true)
	waitFor(t, "ready", func() bool { return readyStatus() == http.StatusOK })
	healthy.Store(false)
	waitFor(t, "not ready again", func() bool { return readyStatus() == http.StatusServiceUnavailable })
}
