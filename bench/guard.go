package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"time"
)

// The harness sends traffic to this machine only. checkLoopbackURL refuses
// any other target before a request is built, and loopbackClient re-checks
// every address it dials and refuses redirects, so neither a hostname that
// resolves elsewhere nor a redirect can send load off the machine. There is
// deliberately no flag to turn this off.

// checkLoopbackURL returns an error unless raw is an http(s) URL whose host
// is a loopback address (127.0.0.0/8, ::1) or "localhost".
func checkLoopbackURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("parse URL %q: %w", raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("URL %q: scheme must be http or https", raw)
	}
	if !isLoopbackHost(u.Hostname()) {
		return nil, fmt.Errorf("refusing to send load to %q: host %q is not a loopback address "+
			"(use 127.0.0.1, [::1] or localhost; bench only targets this machine)", raw, u.Hostname())
	}
	return u, nil
}

// checkLoopbackListen returns an error unless addr is host:port with a
// loopback host, so the sink is never exposed beyond this machine.
func checkLoopbackListen(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("listen address %q: %w", addr, err)
	}
	if !isLoopbackHost(host) {
		return fmt.Errorf("listen address %q: host %q is not a loopback address (use 127.0.0.1)", addr, host)
	}
	return nil
}

// isLoopbackHost reports whether host is "localhost" or a loopback IP literal.
func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// loopbackClient returns an HTTP client for load: no proxy from the
// environment, no redirects, dials to loopback addresses only, keep-alive
// connections for conns concurrent senders.
func loopbackClient(conns int, timeout time.Duration) *http.Client {
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	tr := &http.Transport{
		Proxy:               nil,
		DisableCompression:  true,
		MaxIdleConns:        conns * 2,
		MaxIdleConnsPerHost: conns * 2,
		IdleConnTimeout:     30 * time.Second,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := dialer.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			if ta, ok := c.RemoteAddr().(*net.TCPAddr); !ok || !ta.IP.IsLoopback() {
				c.Close()
				return nil, fmt.Errorf("refusing connection to non-loopback address %s", c.RemoteAddr())
			}
			return c, nil
		},
	}
	return &http.Client{
		Transport: tr,
		Timeout:   timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return errors.New("bench does not follow redirects")
		},
	}
}
