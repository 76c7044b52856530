package app

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
)

// manyImportLines is n JSON lines of distinct series whose lengths vary, so
// that lines straddle the boundaries of the reads that stream them; line
// long (1-based, 0 for none) has a label value longer than a body buffer.
func manyImportLines(n, long int) string {
	var b strings.Builder
	for i := 1; i <= n; i++ {
		pad := strings.Repeat("x", i%97)
		if i == long {
			pad = strings.Repeat("y", 150<<10)
		}
		fmt.Fprintf(&b, `{"metric":{"__name__":"anomaly_score","for":"q%d","pad":"%s","vm_account_id":"%d"},"values":[%d,0.5],"timestamps":[1700000000000,1700000060000]}`+"\n",
			i, pad, i%3, i)
	}
	return b.String()
}

// TestJSONImportStreamedAsItArrives: an uncompressed import is transcoded
// as it is read; a body of many buffers' worth, sent at once, in small
// chunked pieces or gzipped, reaches the upstream whole and the same way,
// a line longer than a buffer included, and a bad line far into the body
// is named by its number and forwards nothing.
func TestJSONImportStreamedAsItArrives(t *testing.T) {
	up, upSrv := newFullUpstream(t)
	proxy := startProxy(t, writeConfig(t, fmt.Sprintf("writer:\n  datasource_url: %s\n  tenant_id: multitenant\nlimits:\n  max_label_value_length: 262144\n", upSrv.URL)))
	const n = 3000
	lines := manyImportLines(n, 1234)
	var want []string
	for i, send := range []func() (int, string){
		func() (int, string) { return postImport(t, proxy.URL+"/api/v1/import", lines, false) },
		func() (int, string) { return postImport(t, proxy.URL+"/api/v1/import", lines, true) },
		func() (int, string) { return postChunked(t, proxy.URL+"/api/v1/import", lines, 1000) },
	} {
		up.reset()
		if code, msg := send(); code != http.StatusNoContent {
			t.Fatalf("send %d: status %d: %s", i, code, msg)
		}
		got := upstreamLines(up)
		if len(got) != n {
			t.Fatalf("send %d: upstream got %d series, want %d", i, len(got), n)
		}
		if want == nil {
			want = got
		} else if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Fatalf("send %d: upstream got other series than the first send", i)
		}
	}
	up.reset()
	bad := strings.Replace(lines, `"for":"q2900",`, `"for":q2900,`, 1)
	code, msg := postImport(t, proxy.URL+"/api/v1/import", bad, false)
	if code != http.StatusBadRequest || !strings.Contains(msg, "JSON import line 2900:") {
		t.Errorf("bad line 2900: status %d %q, want 400 naming line 2900", code, msg)
	}
	if got := upstreamLines(up); len(got) != 0 {
		t.Errorf("upstream got %d series of a refused request", len(got))
	}
}

// postChunked POSTs body without a Content-Length, in pieces of size bytes.
func postChunked(t *testing.T, url, body string, size int) (int, string) {
	t.Helper()
	pr, pw := io.Pipe()
	go func() {
		for len(body) > 0 {
			k := min(size, len(body))
			if _, err := io.WriteString(pw, body[:k]); err != nil {
				return
			}
			body = body[k:]
		}
		pw.Close()
	}()
	req, _ := http.NewRequest(http.MethodPost, url, pr)
	req.Header.Set("Content-Type", "application/json")
	return do(t, req)
}

// reset forgets what the upstream received.
func (u *fullUpstream) reset() {
	u.mu.Lock()
	defer u.mu.Unlock()
	clear(u.reqs)
}
