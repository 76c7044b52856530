package remotewrite

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
)

// seenRequest is what a test upstream received.
type seenRequest struct {
	Method string
	Path   string
	Header http.Header
	Body   []byte
}

// recorder is a test upstream that answers `code` and remembers every request.
type recorder struct {
	mu   sync.Mutex
	seen []seenRequest
	code int
}

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rec.mu.Lock()
	rec.seen = append(rec.seen, seenRequest{r.Method, r.URL.Path, r.Header.Clone(), body})
	code := rec.code
	rec.mu.Unlock()
	if code == 0 {
		code = http.StatusNoContent
	}
	w.WriteHeader(code)
}

func (rec *recorder) last(t *testing.T) seenRequest {
	t.Helper()
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.seen) == 0 {
		t.Fatal("upstream saw no request")
	}
	return rec.seen[len(rec.seen)-1]
}

// newRecorder starts a plain-HTTP upstream on 127.0.0.1.
func newRecorder(t *testing.T) (*recorder, *httptest.Server) {
	t.Helper()
	rec := &recorder{}
	srv := httptest.NewServer(rec)
	t.Cleanup(srv.Close)
	return rec, srv
}

// newTestClient builds a client with the given credential re-check interval.
func newTestClient(t *testing.T, cfg ClientConfig, recheck time.Duration) *Client {
	t.Helper()
	c, err := newClient(cfg, recheck)
	if err != nil {
		t.Fatalf("newClient: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

// writeFile writes content and sets a distinct mtime, so a rewrite is seen
// as a change even on file systems with coarse timestamps.
func writeFile(t *testing.T, path, content string, mtime time.Time) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, mtime, mtime); err != nil {
		t.Fatal(err)
	}
}

// metricsText returns the default set's exposition.
func metricsText() string {
	var b bytes.Buffer
	metrics.WritePrometheus(&b, false)
	return b.String()
}

func TestClientSendsRemoteWriteHeadersAndBody(t *testing.T) {
	rec, srv := newRecorder(t)
	c := newTestClient(t, ClientConfig{UserAgent: "scoreproxy-test"}, defaultRecheck)
	body := make([]byte, 10_000)
	_, _ = rand.Read(body)

	res := c.Send(context.Background(), srv.URL+"/api/v1/write", body, BatchStats{Series: 3, Samples: 6})

	if !res.OK() || res.StatusCode != http.StatusNoContent {
		t.Fatalf("result %+v, want 204", res)
	}
	got := rec.last(t)
	want := map[string]string{
		"Content-Encoding":                  "snappy",
		"Content-Type":                      "application/x-protobuf",
		"X-Prometheus-Remote-Write-Version": "0.1.0",
		"User-Agent":                        "scoreproxy-test",
		"Content-Length":                    "10000",
		"Authorization":                     "",
	}
	for k, v := range want {
		if g := got.Header.Get(k); g != v {
			t.Errorf("header %s = %q, want %q", k, g, v)
		}
	}
	if got.Method != http.MethodPost || got.Path != "/api/v1/write" {
		t.Errorf("request %s %s, want POST /api/v1/write", got.Method, got.Path)
	}
	if !bytes.Equal(got.Body, body) {
		t.Errorf("body differs: got %d bytes, want %d", len(got.Body), len(body))
	}
	if res.URL != srv.URL+"/api/v1/write" {
		t.Errorf("result URL %q", res.URL)
	}
}

func TestClientDefaultUserAgent(t *testing.T) {
	rec, srv := newRecorder(t)
	c := newTestClient(t, ClientConfig{}, defaultRecheck)
	c.Send(context.Background(), srv.URL, []byte("x"), BatchStats{})
	if ua := rec.last(t).Header.Get("User-Agent"); ua != "scoreproxy" {
		t.Errorf("User-Agent %q, want scoreproxy", ua)
	}
}

func TestClientRedirectReplaysBody(t *testing.T) {
	rec := &recorder{}
	mux := http.NewServeMux()
	mux.HandleFunc("/old", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/new", http.StatusTemporaryRedirect)
	})
	mux.Handle("/new", rec)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	c := newTestClient(t, ClientConfig{}, defaultRecheck)

	res := c.Send(context.Background(), srv.URL+"/old", []byte("payload"), BatchStats{})

	if !res.OK() {
		t.Fatalf("result %+v", res)
	}
	if got := rec.last(t); string(got.Body) != "payload" || got.Header.Get("Content-Encoding") != "snappy" {
		t.Errorf("redirected request body %q, encoding %q", got.Body, got.Header.Get("Content-Encoding"))
	}
}

func TestAuthHeaders(t *testing.T) {
	tests := []struct {
		name string
		cfg  ClientConfig
		want string
	}{
		{"none", ClientConfig{}, ""},
		{"basic", ClientConfig{User: "foo", Password: "bar"}, "Basic Zm9vOmJhcg=="},
		{"basic without password", ClientConfig{User: "foo"}, "Basic Zm9vOg=="},
		{"bearer", ClientConfig{BearerToken: "tok-123"}, "Bearer tok-123"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec, srv := newRecorder(t)
			c := newTestClient(t, tt.cfg, defaultRecheck)
			if res := c.Send(context.Background(), srv.URL, []byte("x"), BatchStats{}); !res.OK() {
				t.Fatalf("result %+v", res)
			}
			if got := rec.last(t).Header.Get("Authorization"); got != tt.want {
				t.Errorf("Authorization %q, want %q", got, tt.want)
			}
		})
	}
}

func TestAuthBearerTokenFileRotation(t *testing.T) {
	rec, srv := newRecorder(t)
	path := filepath.Join(t.TempDir(), "token")
	t0 := time.Now().Add(-time.Hour)
	writeFile(t, path, "  first-token\n", t0)
	// A zero re-check interval checks the file on every Send.
	c := newTestClient(t, ClientConfig{BearerTokenFile: path}, 0)
	send := func() string {
		t.Helper()
		if res := c.Send(context.Background(), srv.URL, []byte("x"), BatchStats{}); !res.OK() {
			t.Fatalf("result %+v", res)
		}
		return rec.last(t).Header.Get("Authorization")
	}

	if got := send(); got != "Bearer first-token" {
		t.Fatalf("before rotation: %q", got)
	}
	writeFile(t, path, "second-token", t0.Add(time.Minute))
	if got := send(); got != "Bearer second-token" {
		t.Fatalf("after rotation: %q", got)
	}
	if err := c.CredentialsError(); err != nil {
		t.Fatalf("CredentialsError after good rotation: %v", err)
	}

	// A vanished or empty file keeps the last good token and remembers why.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if got := send(); got != "Bearer second-token" {
		t.Fatalf("after removal: %q", got)
	}
	err := c.CredentialsError()
	if err == nil || strings.Contains(err.Error(), "second-token") {
		t.Fatalf("CredentialsError after removal: %v", err)
	}
	writeFile(t, path, "\n", t0.Add(2*time.Minute))
	if got := send(); got != "Bearer second-token" {
		t.Fatalf("after emptying: %q", got)
	}
	if c.CredentialsError() == nil {
		t.Fatal("no CredentialsError for an empty token file")
	}

	writeFile(t, path, "third-token", t0.Add(3*time.Minute))
	if got := send(); got != "Bearer third-token" {
		t.Fatalf("after recovery: %q", got)
	}
	if err := c.CredentialsError(); err != nil {
		t.Fatalf("CredentialsError after recovery: %v", err)
	}
}

func TestAuthBearerTokenFileRecheckIsThrottled(t *testing.T) {
	rec, srv := newRecorder(t)
	path := filepath.Join(t.TempDir(), "token")
	t0 := time.Now().Add(-time.Hour)
	writeFile(t, path, "first-token", t0)
	c := newTestClient(t, ClientConfig{BearerTokenFile: path}, time.Hour)

	writeFile(t, path, "second-token", t0.Add(time.Minute))
	c.Send(context.Background(), srv.URL, []byte("x"), BatchStats{})

	if got := rec.last(t).Header.Get("Authorization"); got != "Bearer first-token" {
		t.Errorf("Authorization %q: the file was re-read before the interval passed", got)
	}
}

func TestClientKeepAliveReusesOneConnection(t *testing.T) {
	var newConns atomic.Int32
	var calls atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		// Alternate accepted and rejected requests, both with a body larger
		// than what Message keeps, which the client must drain.
		if calls.Add(1)%2 == 0 {
			w.WriteHeader(http.StatusBadRequest)
		}
		_, _ = w.Write(bytes.Repeat([]byte("x"), 3000))
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			newConns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	c := newTestClient(t, ClientConfig{}, defaultRecheck)

	for i := range 10 {
		res := c.Send(context.Background(), srv.URL, []byte("payload"), BatchStats{})
		if res.StatusCode == 0 {
			t.Fatalf("send %d: %+v", i, res)
		}
		if !res.OK() && len(res.Message) > maxMessage {
			t.Fatalf("send %d: message of %d bytes, want <= %d", i, len(res.Message), maxMessage)
		}
	}
	if n := newConns.Load(); n != 1 {
		t.Errorf("10 sequential sends opened %d connections, want 1", n)
	}
}

func TestClientNeverLeaksCredentials(t *testing.T) {
	_, srv := newRecorder(t)
	closed := closedURL(t)
	tests := []struct {
		name string
		url  string
		cfg  ClientConfig
	}{
		{"userinfo in URL", strings.Replace(srv.URL, "http://", "http://alice:s3cret-pw@", 1) + "/w", ClientConfig{}},
		{"userinfo in URL, refused", strings.Replace(closed, "http://", "http://alice:s3cret-pw@", 1) + "/w", ClientConfig{}},
		{"basic auth, refused", closed + "/w", ClientConfig{User: "alice", Password: "s3cret-pw"}},
		{"bearer, refused", closed + "/w", ClientConfig{BearerToken: "s3cret-pw"}},
		{"invalid URL", "http://alice:s3cret-pw@127.0.0.1:bad port/w", ClientConfig{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestClient(t, tt.cfg, defaultRecheck)
			res := c.Send(context.Background(), tt.url, []byte("x"), BatchStats{})
			for _, s := range []string{res.URL, res.Message, metricsText()} {
				if strings.Contains(s, "s3cret-pw") || strings.Contains(s, "alice") {
					t.Errorf("credentials leaked into %q", s)
				}
			}
			if ack := Ack([]SendResult{res}); ack != nil && strings.Contains(ack.Msg, "s3cret-pw") {
				t.Errorf("credentials leaked into Ack: %q", ack.Msg)
			}
		})
	}
}

func TestClientUserinfoInURLIsUsedAsBasicAuth(t *testing.T) {
	rec, srv := newRecorder(t)
	c := newTestClient(t, ClientConfig{}, defaultRecheck)
	u := strings.Replace(srv.URL, "http://", "http://foo:bar@", 1)

	res := c.Send(context.Background(), u, []byte("x"), BatchStats{})

	if res.URL != srv.URL || !res.OK() {
		t.Fatalf("result %+v, want OK with URL %s", res, srv.URL)
	}
	if got := rec.last(t).Header.Get("Authorization"); got != "Basic Zm9vOmJhcg==" {
		t.Errorf("Authorization %q", got)
	}
}

func TestClientCancelledContext(t *testing.T) {
	_, srv := newRecorder(t)
	c := newTestClient(t, ClientConfig{}, defaultRecheck)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()

	res := c.Send(ctx, srv.URL+"/cancelled", []byte("x"), BatchStats{})

	if res.StatusCode != 0 || !strings.Contains(res.Message, "canceled") {
		t.Fatalf("result %+v, want StatusCode 0 and a cancellation message", res)
	}
	text := metricsText()
	for _, want := range []string{
		`vmanomaly_writer_responses_total{url="` + srv.URL + `/cancelled",code="canceled"} 1`,
		`scoreproxy_upstream_errors_total{url="` + srv.URL + `/cancelled",reason="canceled"} 1`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

func TestClientMetrics(t *testing.T) {
	rec, srv := newRecorder(t)
	c := newTestClient(t, ClientConfig{}, defaultRecheck)
	u := srv.URL + "/insert/5:0/prometheus/api/v1/write"
	stats := BatchStats{Series: 3, Samples: 7, SerializeSeconds: 0.002}

	c.Send(context.Background(), u, []byte("12345"), stats)
	c.Send(context.Background(), u, []byte("12345"), stats)
	rec.mu.Lock()
	rec.code = http.StatusServiceUnavailable
	rec.mu.Unlock()
	c.Send(context.Background(), u, []byte("12345"), stats)
	refused := closedURL(t) + "/api/v1/write"
	c.Send(context.Background(), refused, []byte("12345"), stats)

	label := `{url="` + u + `"`
	text := metricsText()
	for _, want := range []string{
		`vmanomaly_writer_responses_total` + label + `,code="204"} 2`,
		`vmanomaly_writer_responses_total` + label + `,code="503"} 1`,
		`vmanomaly_writer_sent_bytes_total` + label + `} 15`,
		`vmanomaly_writer_datapoints_sent_total` + label + `,query_key=""} 14`,
		`vmanomaly_writer_timeseries_sent_total` + label + `,query_key=""} 6`,
		`vmanomaly_writer_request_duration_seconds_count` + label + `} 3`,
		`vmanomaly_writer_request_serialize_seconds_count` + label + `} 3`,
		`vmanomaly_writer_responses_total{url="` + refused + `",code="connection_error"} 1`,
		`scoreproxy_upstream_errors_total{url="` + refused + `",reason="connection"} 1`,
		`vmanomaly_writer_sent_bytes_total{url="` + refused + `"} 0`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// The sent counters split by query key; past MaxQueryKeys distinct keys of
// a URL, further ones count under OverflowQueryKey.
func TestClientMetricsQueryKeys(t *testing.T) {
	_, srv := newRecorder(t)
	c := newTestClient(t, ClientConfig{}, defaultRecheck)
	u := srv.URL + "/insert/6:0/prometheus/api/v1/write"
	c.Send(context.Background(), u, []byte("1"), BatchStats{Series: 3, Samples: 7, QueryKeys: KeyTallies{
		{Key: "cpu", Series: 1, Samples: 2}, {Key: "", Series: 1, Samples: 1}, {Key: `a"b`, Series: 1, Samples: 4}}})
	for i := range MaxQueryKeys + 5 {
		key := fmt.Sprintf("q%03d", i)
		c.Send(context.Background(), u, []byte("1"), BatchStats{Series: 1, Samples: 2, QueryKeys: KeyTallies{{Key: key, Series: 1, Samples: 2}}})
	}
	text := metricsText()
	label := `{url="` + u + `",query_key=`
	for _, want := range []string{
		`vmanomaly_writer_datapoints_sent_total` + label + `"cpu"} 2`,
		`vmanomaly_writer_timeseries_sent_total` + label + `"cpu"} 1`,
		`vmanomaly_writer_datapoints_sent_total` + label + `""} 1`,
		`vmanomaly_writer_datapoints_sent_total` + label + `"a\"b"} 4`,
		`vmanomaly_writer_datapoints_sent_total` + label + `"q097"} 2`,
		// "", cpu, a"b and q000..q097 are the 101 keys counted by name
		`vmanomaly_writer_datapoints_sent_total` + label + `"` + OverflowQueryKey + `"} 14`,
		`vmanomaly_writer_timeseries_sent_total` + label + `"` + OverflowQueryKey + `"} 7`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(text, label+`"q098"}`) {
		t.Errorf("key q098 counted by name past the bound of %d", MaxQueryKeys)
	}
}

func TestKeyTallies(t *testing.T) {
	var tl KeyTallies
	for _, k := range []string{"a", "a", "b", "a", "", "b"} {
		tl = tl.Add(k, 1, 2)
	}
	want := KeyTallies{{Key: "a", Series: 3, Samples: 6}, {Key: "b", Series: 2, Samples: 4}, {Key: "", Series: 1, Samples: 2}}
	if !slices.Equal(tl, want) {
		t.Fatalf("tallies %+v, want %+v", tl, want)
	}
	var s BatchStats
	s.Add(BatchStats{Series: 2, Samples: 3}) // nil keys: all ""
	s.Add(BatchStats{Series: 6, Samples: 12, QueryKeys: want})
	wantSum := KeyTallies{{Key: "", Series: 3, Samples: 5}, {Key: "a", Series: 3, Samples: 6}, {Key: "b", Series: 2, Samples: 4}}
	if s.Series != 8 || s.Samples != 15 || !slices.Equal(s.QueryKeys, wantSum) {
		t.Fatalf("sum %+v, want keys %+v", s, wantSum)
	}
	tl = nil
	for i := range MaxQueryKeys + 3 {
		tl = tl.Add(fmt.Sprint(i), 1, 1)
	}
	if len(tl) != MaxQueryKeys+1 || tl[MaxQueryKeys] != (KeyTally{Key: OverflowQueryKey, Series: 3, Samples: 3}) {
		t.Fatalf("%d tallies, last %+v; want %d with the overflow's 3", len(tl), tl[len(tl)-1], MaxQueryKeys+1)
	}
}

func TestClientMetricsLookupDoesNotAllocate(t *testing.T) {
	u := "http://127.0.0.1:1/alloc-check"
	registry.get(u).responses(204)
	allocs := testing.AllocsPerRun(100, func() {
		m := registry.get(u)
		m.responses(204).Inc()
		m.sentBytes.Add(1)
	})
	if allocs != 0 {
		t.Errorf("metrics lookup allocates %.1f times per call, want 0", allocs)
	}
}

func TestClientNewClientErrors(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	writeFile(t, notPEM, "hello", time.Now())
	empty := filepath.Join(dir, "empty")
	writeFile(t, empty, " \n", time.Now())
	token := filepath.Join(dir, "token")
	writeFile(t, token, "s3cret-token", time.Now())
	missing := filepath.Join(dir, "missing")
	tests := []struct {
		name string
		cfg  ClientConfig
		want string
	}{
		{"negative timeout", ClientConfig{Timeout: -time.Second}, "timeout"},
		{"both token kinds", ClientConfig{BearerToken: "s3cret-token", BearerTokenFile: token}, "only one of"},
		{"basic and bearer", ClientConfig{User: "u", Password: "s3cret-token", BearerToken: "s3cret-token"}, "only one of"},
		{"password without user", ClientConfig{Password: "s3cret-token"}, "user is empty"},
		{"missing token file", ClientConfig{BearerTokenFile: missing}, "bearer token file"},
		{"empty token file", ClientConfig{BearerTokenFile: empty}, "is empty"},
		{"missing CA file", ClientConfig{CAFile: missing}, "CA file"},
		{"CA file without PEM", ClientConfig{CAFile: notPEM}, "no PEM certificates"},
		{"cert without key", ClientConfig{CertFile: notPEM}, "must be set together"},
		{"missing cert", ClientConfig{CertFile: missing, KeyFile: notPEM}, "client certificate"},
		{"bad cert and key", ClientConfig{CertFile: notPEM, KeyFile: notPEM}, "client certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := NewClient(tt.cfg)
			if err == nil {
				c.Close()
				t.Fatal("NewClient succeeded, want an error")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not mention %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "s3cret-token") {
				t.Errorf("error leaks the secret: %q", err)
			}
		})
	}
}

// closedURL returns the URL of a port on 127.0.0.1 that nothing listens on.
func closedURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}

// BenchmarkClientSend measures one Send of a typical 44 KB body to a local
// upstream (through h1; the allocations are the net/http test server's).
func BenchmarkClientSend(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	c, err := NewClient(ClientConfig{BearerToken: "tok"})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	body := make([]byte, 44_000)
	u := srv.URL + "/api/v1/write"
	b.ReportAllocs()
	for b.Loop() {
		if res := c.Send(context.Background(), u, body, BatchStats{Series: 1000, Samples: 2000}); !res.OK() {
			b.Fatal(res)
		}
	}
}
