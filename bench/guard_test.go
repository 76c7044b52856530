package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// Only loopback targets are accepted; everything else is refused before
// any request is built.
func TestCheckLoopbackURL(t *testing.T) {
	ok := []string{
		"http://127.0.0.1:8490/api/v1/write", "http://127.8.9.10/api/v1/write",
		"http://localhost:8428/insert/0/prometheus", "http://[::1]:8490/api/v1/write", "https://127.0.0.1/x",
	}
	for _, u := range ok {
		if _, err := checkLoopbackURL(u); err != nil {
			t.Errorf("%s refused: %v", u, err)
		}
	}
	refused := []string{
		"http://10.0.0.1:8490/api/v1/write", "http://192.168.1.1/", "http://example.com/api/v1/write",
		"http://0.0.0.0:8490/", "http://[::]:8490/", "http://localhost.example.com/", "ftp://127.0.0.1/",
		"127.0.0.1:8490", "http://127.0.0.1.nip.io/",
	}
	for _, u := range refused {
		if _, err := checkLoopbackURL(u); err == nil {
			t.Errorf("%s accepted", u)
		}
	}
	_, err := checkLoopbackURL("http://10.1.2.3/api/v1/write")
	if err == nil || !strings.Contains(err.Error(), "not a loopback address") {
		t.Errorf("error %v does not say why", err)
	}
}

// The sink listens on loopback addresses only.
func TestCheckLoopbackListen(t *testing.T) {
	for addr, ok := range map[string]bool{"127.0.0.1:0": true, "localhost:8428": true, "[::1]:1": true,
		":8428": false, "0.0.0.0:8428": false, "10.0.0.1:80": false, "nohost": false} {
		if err := checkLoopbackListen(addr); (err == nil) != ok {
			t.Errorf("%s: err %v, want ok=%v", addr, err, ok)
		}
	}
}

// The load client follows no redirect, so a loopback server cannot send
// the load elsewhere.
func TestLoopbackClientRefusesRedirects(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://10.255.255.1/api/v1/write", http.StatusTemporaryRedirect)
	}))
	defer srv.Close()
	c := loopbackClient(1, 5*time.Second)
	_, err := c.Post(srv.URL, "application/x-protobuf", strings.NewReader("x"))
	if err == nil || !strings.Contains(err.Error(), "redirect") {
		t.Fatalf("redirect followed or wrong error: %v", err)
	}
}

// The subcommand exits 2 with the loopback error for a remote URL.
func TestLoadCommandRefusesRemoteURL(t *testing.T) {
	var out, errOut strings.Builder
	code := run([]string{"load", "-url", "http://192.0.2.1/api/v1/write", "-requests", "1"}, &out, &errOut)
	if code != 2 || !strings.Contains(errOut.String(), "not a loopback address") {
		t.Fatalf("exit %d, stderr %q", code, errOut.String())
	}
	if code := run([]string{"nope"}, &out, &errOut); code != 2 {
		t.Fatalf("unknown subcommand: exit %d", code)
	}
}
