package remotewrite

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// ackUpstream answers according to the request path:
//
//	/status/<code>[?ra=<Retry-After>]  that status, body "upstream says <code>"
//	/hang                              nothing until the client gives up
func ackUpstream(t *testing.T) *httptest.Server {
	t.Helper()
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body) // lets the server notice the client leaving
		if r.URL.Path == "/hang" {
			select {
			case <-r.Context().Done():
			case <-release:
			}
			return
		}
		code, err := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/status/"))
		if err != nil {
			http.Error(w, "bad test path", http.StatusTeapot)
			return
		}
		if ra := r.URL.Query().Get("ra"); ra != "" {
			w.Header().Set("Retry-After", ra)
		}
		w.WriteHeader(code)
		if code != http.StatusNoContent {
			_, _ = w.Write([]byte("upstream says " + strconv.Itoa(code) + "\n"))
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) }) // runs first: no handler outlives the test
	return srv
}

func TestAckMapping(t *testing.T) {
	srv := ackUpstream(t)
	refused := closedURL(t) + "/api/v1/write"
	c := newTestClient(t, ClientConfig{}, defaultRecheck)
	// The hang case uses a tiny timeout only to trigger it.
	fast := newTestClient(t, ClientConfig{Timeout: 50 * time.Millisecond}, defaultRecheck)
	send := func(upstream string) SendResult {
		switch upstream {
		case "timeout":
			return fast.Send(context.Background(), srv.URL+"/hang", []byte("x"), BatchStats{})
		case "refused":
			return c.Send(context.Background(), refused, []byte("x"), BatchStats{})
		}
		return c.Send(context.Background(), srv.URL+"/status/"+upstream, []byte("x"), BatchStats{})
	}

	tests := []struct {
		name       string
		upstreams  []string // status[?ra=...], "timeout" or "refused"
		wantCode   int      // 0: Ack returns nil
		wantRA     string
		wantInMsg  []string
		wantNotMsg []string
	}{
		{name: "200", upstreams: []string{"200"}},
		{name: "204", upstreams: []string{"204"}},
		{name: "all OK", upstreams: []string{"204", "200", "204"}},
		{name: "no upstream", upstreams: nil},
		{name: "400", upstreams: []string{"400"}, wantCode: 400,
			wantInMsg: []string{"upstream " + srv.URL + "/status/400 answered 400 Bad Request: upstream says 400"}},
		{name: "404", upstreams: []string{"404"}, wantCode: 400, wantInMsg: []string{"answered 404 Not Found: upstream says 404"}},
		{name: "409", upstreams: []string{"409"}, wantCode: 400, wantInMsg: []string{"answered 409 Conflict"}},
		{name: "429 with Retry-After", upstreams: []string{"429?ra=7"}, wantCode: 429, wantRA: "7",
			wantInMsg: []string{"answered 429 Too Many Requests"}},
		{name: "429 without Retry-After", upstreams: []string{"429"}, wantCode: 429},
		{name: "500", upstreams: []string{"500"}, wantCode: 503, wantInMsg: []string{"answered 500 Internal Server Error: upstream says 500"}},
		{name: "502", upstreams: []string{"502"}, wantCode: 503, wantInMsg: []string{"answered 502 Bad Gateway"}},
		{name: "503 with Retry-After", upstreams: []string{"503?ra=30"}, wantCode: 503, wantRA: "30"},
		{name: "timeout", upstreams: []string{"timeout"}, wantCode: 503,
			wantInMsg: []string{"upstream " + srv.URL + "/hang unreachable: ", "deadline exceeded"}},
		{name: "connection refused", upstreams: []string{"refused"}, wantCode: 503,
			wantInMsg: []string{"upstream " + refused + " unreachable: ", "refused"}},
		{name: "400 and 503: retry wins", upstreams: []string{"400", "503"}, wantCode: 503,
			wantInMsg: []string{"answered 400 Bad Request", "; upstream " + srv.URL + "/status/503 answered 503"}},
		{name: "204 and 400", upstreams: []string{"204", "400"}, wantCode: 400,
			wantNotMsg: []string{"204"}},
		{name: "204 and timeout", upstreams: []string{"204", "timeout"}, wantCode: 503},
		{name: "400 and 429: only 429s to retry", upstreams: []string{"400", "429?ra=5"}, wantCode: 429, wantRA: "5"},
		{name: "two 429: the later Retry-After", upstreams: []string{"429?ra=3", "429?ra=10"}, wantCode: 429, wantRA: "10"},
		{name: "429 and 500", upstreams: []string{"429?ra=4", "500"}, wantCode: 503, wantRA: "4"},
		{name: "429 and refused", upstreams: []string{"429", "refused"}, wantCode: 503},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var results []SendResult
			for _, u := range tt.upstreams {
				results = append(results, send(u))
			}
			got := Ack(results)
			if tt.wantCode == 0 {
				if got != nil {
					t.Fatalf("Ack = %v, want nil", got)
				}
				return
			}
			if got == nil {
				t.Fatalf("Ack = nil, want %d (results %+v)", tt.wantCode, results)
			}
			if got.Code != tt.wantCode || got.RetryAfter != tt.wantRA {
				t.Errorf("Ack = %d Retry-After %q, want %d %q", got.Code, got.RetryAfter, tt.wantCode, tt.wantRA)
			}
			for _, s := range tt.wantInMsg {
				if !strings.Contains(got.Msg, s) {
					t.Errorf("message %q lacks %q", got.Msg, s)
				}
			}
			for _, s := range tt.wantNotMsg {
				if strings.Contains(got.Msg, s) {
					t.Errorf("message %q contains %q", got.Msg, s)
				}
			}
		})
	}
}

func TestAckOtherStatuses(t *testing.T) {
	tests := []struct {
		code, want int
	}{
		{300, 503}, // a redirect that was not followed: not the data's fault
		{304, 503},
		{418, 400},
		{499, 400},
		{599, 503},
	}
	for _, tt := range tests {
		got := Ack([]SendResult{{StatusCode: tt.code, URL: "http://h/w"}})
		if got == nil || got.Code != tt.want {
			t.Errorf("Ack(%d) = %v, want %d", tt.code, got, tt.want)
		}
	}
}

func TestAckMessageIsBounded(t *testing.T) {
	var results []SendResult
	for i := range 100 {
		results = append(results, SendResult{
			StatusCode: 400,
			URL:        "http://host/insert/" + strconv.Itoa(i) + ":0/prometheus/api/v1/write",
			Message:    strings.Repeat("é", 2000), // longer than maxMessage, multi-byte
		})
	}
	got := Ack(results)
	if len(got.Msg) > maxAckMessage {
		t.Errorf("message of %d bytes, want <= %d", len(got.Msg), maxAckMessage)
	}
	if !utf8.ValidString(got.Msg) {
		t.Error("message is not valid UTF-8")
	}
	if !strings.Contains(got.Msg, "insert/0:0") || !strings.HasSuffix(got.Msg, "more failed upstream(s)") {
		t.Errorf("message should name the first upstreams and count the rest: %q", got.Msg[len(got.Msg)-80:])
	}
}

func TestAckRetryAfterChoice(t *testing.T) {
	soon := time.Now().Add(time.Minute).UTC().Format(http.TimeFormat)
	late := time.Now().Add(time.Hour).UTC().Format(http.TimeFormat)
	tests := []struct {
		a, b, want string
	}{
		{"", "5", "5"},
		{"5", "", "5"},
		{"5", "10", "10"},
		{"10", "5", "10"},
		{"5", late, late},
		{late, "5", late},
		{soon, "3600000", "3600000"},
		{"garbage", "5", "5"},
		{"5", "garbage", "5"},
		{"garbage", "nonsense", "garbage"},
	}
	for _, tt := range tests {
		if got := laterRetryAfter(tt.a, tt.b); got != tt.want {
			t.Errorf("laterRetryAfter(%q, %q) = %q, want %q", tt.a, tt.b, got, tt.want)
		}
	}
}

// A result scoreproxy answered itself (its queue) is described by its own
// message, never as an upstream's answer.
func TestAckLocalResultIsNotAnUpstreamAnswer(t *testing.T) {
	const msg = "queue full: 1000 bytes pending for all endpoints, limit queue.max_disk_bytes 1000; not queued for http://h/write, retry later"
	e := Ack([]SendResult{{StatusCode: 429, RetryAfter: "1", Message: msg, URL: "http://h/write", Local: true}})
	if e == nil || e.Code != 429 || e.RetryAfter != "1" || e.Msg != msg {
		t.Fatalf("Ack = %+v, want 429 Retry-After 1 with the queue's message %q", e, msg)
	}
}
