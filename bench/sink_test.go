package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
)

// series builds a one-sample-per-timestamp series from name/value pairs.
func series(samples int, kv ...string) prompb.TimeSeries {
	ts := prompb.TimeSeries{}
	for i := 0; i+1 < len(kv); i += 2 {
		ts.Labels = append(ts.Labels, prompb.Label{Name: kv[i], Value: kv[i+1]})
	}
	for i := 0; i < samples; i++ {
		ts.Samples = append(ts.Samples, prompb.Sample{Timestamp: int64(1000 * i), Value: float64(i)})
	}
	return ts
}

// encodeRequest marshals and snappy-compresses a request.
func encodeRequest(t *testing.T, ts ...prompb.TimeSeries) []byte {
	t.Helper()
	req := prompb.WriteRequest{Timeseries: ts}
	raw, err := req.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return snappy.Encode(nil, raw)
}

// post sends body to url with the remote-write headers and returns the status.
func post(t *testing.T, url string, body []byte, encoding string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	req.Header.Set("Content-Encoding", encoding)
	req.Header.Set("Content-Type", "application/x-protobuf")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// getCounts fetches GET /counts.
func getCounts(t *testing.T, base string) Counts {
	t.Helper()
	resp, err := http.Get(base + "/counts")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var c Counts
	if err := json.NewDecoder(resp.Body).Decode(&c); err != nil {
		t.Fatal(err)
	}
	return c
}

// The sink counts per path, per tenant (from the path, or from the labels
// on multitenant paths, invalid values becoming 0 like vminsert) and per
// metric name, with both decoders.
func TestSinkCounts(t *testing.T) {
	for _, fast := range []bool{false, true} {
		srv := httptest.NewServer(NewSink(204, 0, fast))
		defer srv.Close()
		single := encodeRequest(t, series(2, "__name__", "up", "job", "a"), series(3, "__name__", "yhat", "job", "b"))
		tenant := encodeRequest(t, series(1, "__name__", "up", "job", "a"))
		multi := encodeRequest(t,
			series(2, "__name__", "y", "vm_account_id", "7", "vm_project_id", "3"),
			series(2, "__name__", "y", "vm_account_id", "7"),
			series(1, "__name__", "y", "vm_account_id", "x"),
			series(1, "__name__", "y"))
		for _, c := range []struct {
			path string
			body []byte
		}{
			{"/api/v1/write", single}, {"/insert/5/prometheus/api/v1/write", tenant},
			{"/insert/5:1/prometheus", tenant}, {"/insert/multitenant/prometheus/api/v1/write", multi},
		} {
			if code := post(t, srv.URL+c.path, c.body, "snappy"); code != 204 {
				t.Fatalf("fast=%v %s: status %d", fast, c.path, code)
			}
		}
		got := getCounts(t, srv.URL)
		if got.Requests != 4 || got.Series != 8 || got.Samples != 13 || got.TenantLabelled != 3 {
			t.Fatalf("fast=%v totals %+v", fast, got.Counter)
		}
		want := map[string]map[string]int64{
			"paths": {"/api/v1/write": 5, "/insert/5/prometheus/api/v1/write": 1, "/insert/5:1/prometheus": 1,
				"/insert/multitenant/prometheus/api/v1/write": 6},
			"tenants": {singleTenant: 5, "5:0": 1, "5:1": 1, "7:3": 2, "7:0": 2, "0:0": 2},
			"names":   {"up": 4, "yhat": 3, "y": 6},
		}
		for kind, m := range map[string]map[string]*Counter{"paths": got.Paths, "tenants": got.Tenants, "names": got.Names} {
			if len(m) != len(want[kind]) {
				t.Errorf("fast=%v %s: %d keys, want %d", fast, kind, len(m), len(want[kind]))
			}
			for k, n := range want[kind] {
				if m[k] == nil || m[k].Samples != n {
					t.Errorf("fast=%v %s[%s] = %+v, want %d samples", fast, kind, k, m[k], n)
				}
			}
		}
	}
}

// Malformed requests are refused with a status naming the problem and are
// not counted; /reset clears the counts.
func TestSinkRefusesAndResets(t *testing.T) {
	srv := httptest.NewServer(NewSink(204, 0, true))
	defer srv.Close()
	good := encodeRequest(t, series(1, "__name__", "up"))
	cases := []struct {
		path, enc string
		body      []byte
		want      int
	}{
		{"/api/v1/write", "snappy", []byte("not snappy"), 400},
		{"/api/v1/write", "snappy", snappy.Encode(nil, []byte{0x0a, 0x05, 0x01}), 400},
		{"/api/v1/write", "zstd", good, 415},
		{"/insert/abc/prometheus/api/v1/write", "snappy", good, 404},
		{"/somewhere", "snappy", good, 404},
	}
	for _, c := range cases {
		if code := post(t, srv.URL+c.path, c.body, c.enc); code != c.want {
			t.Errorf("%s %s: status %d, want %d", c.path, c.enc, code, c.want)
		}
	}
	if resp, _ := http.Get(srv.URL + "/api/v1/write"); resp.StatusCode != 405 {
		t.Errorf("GET write path: %d, want 405", resp.StatusCode)
	}
	post(t, srv.URL+"/api/v1/write", good, "snappy")
	got := getCounts(t, srv.URL)
	if got.Samples != 1 || got.DecodeErrors != 6 {
		t.Fatalf("counts %+v decode errors %d", got.Counter, got.DecodeErrors)
	}
	if resp, _ := http.Post(srv.URL+"/reset", "", nil); resp.StatusCode != 204 {
		t.Fatalf("reset: %d", resp.StatusCode)
	}
	if got := getCounts(t, srv.URL); got.Samples != 0 || got.DecodeErrors != 0 || len(got.Paths) != 0 {
		t.Fatalf("after reset %+v", got)
	}
	if resp, _ := http.Get(srv.URL + "/health"); resp.StatusCode != 200 {
		t.Fatalf("health: %d", resp.StatusCode)
	}
}

// -status and -fail-every answer with the chosen status and leave those
// requests out of the counts, since the sender will re-send them.
func TestSinkChosenStatus(t *testing.T) {
	body := encodeRequest(t, series(2, "__name__", "up"))
	failing := httptest.NewServer(NewSink(204, 3, false))
	defer failing.Close()
	var codes []int
	for i := 0; i < 6; i++ {
		codes = append(codes, post(t, failing.URL+"/api/v1/write", body, "snappy"))
	}
	if want := []int{204, 204, 503, 204, 204, 503}; !equalInts(codes, want) {
		t.Fatalf("statuses %v, want %v", codes, want)
	}
	if got := getCounts(t, failing.URL); got.Samples != 8 || got.Rejected != 2 {
		t.Fatalf("counts %+v rejected %d", got.Counter, got.Rejected)
	}
	bad := httptest.NewServer(NewSink(400, 0, true))
	defer bad.Close()
	if code := post(t, bad.URL+"/api/v1/write", body, "snappy"); code != 400 {
		t.Fatalf("status %d, want 400", code)
	}
}

// equalInts compares two int slices.
func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
