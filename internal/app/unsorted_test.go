package app

import (
	"bytes"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/golang/snappy"
	"github.com/klauspost/compress/zstd"
	"github.com/prometheus/prometheus/prompb"

	"github.com/scoreproxy/scoreproxy/remotewrite"
)

// unsortedRichRequest is richRequest with every series' labels in reverse
// order, __name__ last: what vmagent sends without -sortLabels.
func unsortedRichRequest() *prompb.WriteRequest {
	wr := richRequest()
	for i := range wr.Timeseries {
		slices.Reverse(wr.Timeseries[i].Labels)
	}
	return wr
}

// bodiesOf encodes wr the ways a producer may send it.
func bodiesOf(t *testing.T, wr *prompb.WriteRequest) map[string]sentBody {
	rw1 := mustMarshal(t, wr)
	rw2 := mustMarshal(t, toRW2(wr))
	enc, _ := zstd.NewWriter(nil)
	defer enc.Close()
	return map[string]sentBody{
		"rw1 snappy": {"application/x-protobuf", "snappy", snappy.Encode(nil, []byte(rw1))},
		"rw1 zstd":   {"application/x-protobuf", "zstd", enc.EncodeAll([]byte(rw1), nil)},
		"rw2 snappy": {remotewrite.ContentTypeRW2, "snappy", snappy.Encode(nil, []byte(rw2))},
	}
}

type sentBody struct {
	contentType, encoding string
	body                  []byte
}

// postEncoded sends in to url with its headers and requires 204.
func postEncoded(t *testing.T, url string, in sentBody) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(in.body))
	req.Header.Set("Content-Type", in.contentType)
	req.Header.Set("Content-Encoding", in.encoding)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("status %d", resp.StatusCode)
	}
}

// TestUnsortedLabelsAreSortedOnTheWay: a producer that does not sort its
// labels gets 204 and the upstream receives exactly what it receives from
// a producer sending the same series sorted, in every routing mode, with
// and without metric_format and relabel_configs, on the plain and the
// vminsert-shaped path, over RW1 and RW2, the first time (labels parsed)
// and the second (the rewrite cache knows the series).
func TestUnsortedLabelsAreSortedOnTheWay(t *testing.T) {
	modes := []struct{ name, tenant, routing string }{
		{"single node", ``, ``},
		{"fixed tenant", `tenant_id: "3:4"`, ``},
		{"multitenant", `tenant_id: multitenant`, ``},
		{"split", `tenant_id: multitenant`, "routing:\n  split_tenants: true\n"},
	}
	rewrites := []struct{ name, writer, top string }{
		{"pass-through", ``, ``},
		{"metric_format", `metric_format: {__name__: vmanomaly_$VAR, for: q_$QUERY_KEY}`, ``},
		{"relabel_configs", ``, "relabel_configs:\n  - target_label: team\n    replacement: db\n"},
	}
	paths := []string{"/api/v1/write", "/insert/7:1/prometheus/api/v1/write"}
	sorted, unsorted := bodiesOf(t, richRequest()), bodiesOf(t, unsortedRichRequest())
	for _, mode := range modes {
		for _, rw := range rewrites {
			for _, path := range paths {
				for name := range sorted {
					t.Run(strings.Join([]string{mode.name, rw.name, path, name}, "/"), func(t *testing.T) {
						cfg := fmt.Sprintf("writer:\n  datasource_url: %%s\n  %s\n  %s\n%s%s", mode.tenant, rw.writer, mode.routing, rw.top)
						want := forwardTwice(t, cfg, path, sorted[name])
						got := forwardTwice(t, cfg, path, unsorted[name])
						if len(want) == 0 {
							t.Fatal("nothing forwarded for the sorted input")
						}
						if i := firstDifference(got, want); i >= 0 {
							t.Errorf("unsorted input forwarded differently (%d series, sorted %d): first difference at #%d:\n got %s\nwant %s",
								len(got), len(want), i, at(got, i), at(want, i))
						}
					})
				}
			}
		}
	}
}

// forwardTwice starts a proxy with cfg (a format string taking the upstream
// URL), sends in to path twice and returns what the upstream received:
// one line per series, path and gogo-marshalled series, sorted. It fails
// the test when a series reaches the upstream with its labels out of order.
func forwardTwice(t *testing.T, cfg, path string, in sentBody) []string {
	t.Helper()
	up, upSrv := newFullUpstream(t)
	proxy := startProxy(t, writeConfig(t, fmt.Sprintf(cfg, upSrv.URL)))
	for range 2 {
		postEncoded(t, proxy.URL+path, in)
	}
	up.mu.Lock()
	defer up.mu.Unlock()
	var lines []string
	for p, reqs := range up.reqs {
		for _, wr := range reqs {
			for i := range wr.Timeseries {
				ts := &wr.Timeseries[i]
				if !slices.IsSortedFunc(ts.Labels, func(a, b prompb.Label) int { return strings.Compare(a.Name, b.Name) }) {
					t.Errorf("%s: labels out of order upstream: %v", p, ts.Labels)
				}
				lines = append(lines, fmt.Sprintf("%s %v %q", p, ts.Labels, mustMarshal(t, ts)))
			}
		}
	}
	sort.Strings(lines)
	return lines
}

// firstDifference is the first index where a and b differ, or -1.
func firstDifference(a, b []string) int {
	for i := range max(len(a), len(b)) {
		if i >= len(a) || i >= len(b) || a[i] != b[i] {
			return i
		}
	}
	return -1
}

// at is lines[i], or "(none)" past the end.
func at(lines []string, i int) string {
	if i < len(lines) {
		return lines[i]
	}
	return "(none)"
}
