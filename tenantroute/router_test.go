package tenantroute

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"

	"github.com/scoreproxy/scoreproxy/relabel"
	"github.com/scoreproxy/scoreproxy/remotewrite"
)

// recorder is a Sender that decodes and keeps everything sent to it.
type recorder struct {
	mu     sync.Mutex
	byURL  map[string][]prompb.TimeSeries
	meta   map[string][]prompb.MetricMetadata
	status map[string]int // URL suffix -> status to answer; default 204
}

func newRecorder() *recorder {
	return &recorder{byURL: map[string][]prompb.TimeSeries{}, meta: map[string][]prompb.MetricMetadata{}, status: map[string]int{}}
}

// decodeBody decodes a snappy RW1 body with the reference decoders; a
// Sender in a test panics on a body that is not one.
func decodeBody(body []byte) prompb.WriteRequest {
	raw, err := snappy.Decode(nil, body)
	if err != nil {
		panic(err)
	}
	var wr prompb.WriteRequest
	if err := wr.Unmarshal(raw); err != nil {
		panic(err)
	}
	return wr
}

func (r *recorder) Send(_ context.Context, url string, body []byte, stats remotewrite.BatchStats) remotewrite.SendResult {
	wr := decodeBody(body)
	if stats.Series != len(wr.Timeseries) {
		panic("BatchStats.Series does not match the body")
	}
	if series, samples := tallied(stats.QueryKeys); series != stats.Series || samples != stats.Samples {
		panic(fmt.Sprintf("query keys %+v do not add up to %d series, %d samples", stats.QueryKeys, stats.Series, stats.Samples))
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.byURL[url] = append(r.byURL[url], wr.Timeseries...)
	r.meta[url] = append(r.meta[url], wr.Metadata...)
	code := 204
	for suffix, c := range r.status {
		if strings.Contains(url, suffix) {
			code = c
		}
	}
	return remotewrite.SendResult{StatusCode: code, URL: url, Message: http.StatusText(code)}
}

// seriesByURL renders what each URL received as sorted Prometheus text lines.
func (r *recorder) seriesByURL() map[string][]string {
	out := map[string][]string{}
	for url, ts := range r.byURL {
		for _, s := range ts {
			out[url] = append(out[url], seriesText(s))
		}
		sort.Strings(out[url])
	}
	return out
}

func seriesText(s prompb.TimeSeries) string {
	var parts []string
	for _, l := range s.Labels {
		parts = append(parts, l.Name+"="+l.Value)
	}
	return "{" + strings.Join(parts, ",") + "}"
}

// ts builds a series from name=value pairs, sorted as the spec requires.
func ts(pairs ...string) prompb.TimeSeries {
	s := prompb.TimeSeries{Samples: []prompb.Sample{{Value: 1, Timestamp: 1000}}}
	for i := 0; i+1 < len(pairs); i += 2 {
		s.Labels = append(s.Labels, prompb.Label{Name: pairs[i], Value: pairs[i+1]})
	}
	sort.Slice(s.Labels, func(i, j int) bool { return s.Labels[i].Name < s.Labels[j].Name })
	return s
}

func decoded(t testing.TB, wr *prompb.WriteRequest) *remotewrite.Request {
	t.Helper()
	body, err := wr.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	var req remotewrite.Request
	if err := remotewrite.DecodeWriteRequest(body, &req); err != nil {
		t.Fatal(err)
	}
	req.Compressed = snappy.Encode(nil, body) // as the receive handler sets it
	return &req
}

// bodyRecorder keeps the raw bodies sent.
type bodyRecorder struct{ bodies [][]byte }

func (b *bodyRecorder) Send(_ context.Context, url string, body []byte, _ remotewrite.BatchStats) remotewrite.SendResult {
	b.bodies = append(b.bodies, append([]byte(nil), body...))
	return remotewrite.SendResult{StatusCode: 204, URL: url}
}

// TestUnchangedRequestsAreForwardedAsReceived: without metric_format and
// without splitting, the producer's compressed body goes upstream byte for
// byte; with either, it is rebuilt.
func TestUnchangedRequestsAreForwardedAsReceived(t *testing.T) {
	// The series carries the query key label: metric_format applies only to
	// such series by default (routing.format_match).
	req := decoded(t, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{ts("__name__", "y", "for", "q", "vm_account_id", "1")}})
	for _, tc := range []struct {
		opts      Options
		format    map[string]string
		pathTenat string
		verbatim  bool
	}{
		{Options{BaseURL: base}, nil, "", true},
		{Options{BaseURL: base, TenantID: "multitenant"}, nil, "", true},
		{Options{BaseURL: base, TenantID: "multitenant"}, nil, "5:0", false},
		{Options{BaseURL: base, TenantID: "multitenant", SplitTenants: true}, nil, "", false},
		{Options{BaseURL: base, TenantID: "multitenant"}, map[string]string{"__name__": "x_$VAR"}, "", false},
	} {
		rec := &bodyRecorder{}
		r := newTestRouter(t, tc.opts, tc.format, rec)
		if err := r.Process(context.Background(), req, tc.pathTenat); err != nil {
			t.Fatal(err)
		}
		if same := len(rec.bodies) == 1 && string(rec.bodies[0]) == string(req.Compressed); same != tc.verbatim {
			t.Errorf("%+v format %v path %q: forwarded as received = %v, want %v", tc.opts, tc.format, tc.pathTenat, same, tc.verbatim)
		}
	}
}

func warnings() map[string]uint64 {
	out := map[string]uint64{}
	for c, counter := range warningsByCase {
		out[c] = counter.Get()
	}
	return out
}

const base = "http://vm:8480"

func TestRouting(t *testing.T) {
	mixed := []prompb.TimeSeries{
		ts("__name__", "y", "for", "cpu", "vm_account_id", "1", "vm_project_id", "0"),
		ts("__name__", "y", "for", "mem", "vm_account_id", "2", "vm_project_id", "3"),
		ts("__name__", "yhat", "for", "cpu"),                                // no tenant labels: case 3
		ts("__name__", "yhat", "for", "disk", "vm_account_id", "abc"),       // invalid account
		ts("__name__", "yhat", "for", "net", "vm_account_id", "4294967296"), // out of uint32 range
	}
	cases := []struct {
		name         string
		tenantID     string
		split        bool
		format       map[string]string
		pathTenant   string
		series       []prompb.TimeSeries
		want         map[string][]string
		wantWarnings map[string]uint64
	}{
		{
			name:   "single node, unchanged labels",
			series: []prompb.TimeSeries{ts("__name__", "y", "for", "cpu", "job", "a")},
			want:   map[string][]string{base + "/api/v1/write": {"{__name__=y,for=cpu,job=a}"}},
		},
		{
			name:         "single node with tenant labels: case 4, written anyway",
			series:       []prompb.TimeSeries{ts("__name__", "y", "vm_account_id", "1")},
			want:         map[string][]string{base + "/api/v1/write": {"{__name__=y,vm_account_id=1}"}},
			wantWarnings: map[string]uint64{"4": 1},
		},
		{
			name:     "fixed account only becomes A:0",
			tenantID: "5",
			series:   []prompb.TimeSeries{ts("__name__", "y")},
			want:     map[string][]string{base + "/insert/5:0/prometheus/api/v1/write": {"{__name__=y}"}},
		},
		{
			name:         "fixed tenant with tenant labels: case 4, labels kept",
			tenantID:     "5:1",
			series:       []prompb.TimeSeries{ts("__name__", "y", "vm_account_id", "7"), ts("__name__", "yhat")},
			want:         map[string][]string{base + "/insert/5:1/prometheus/api/v1/write": {"{__name__=y,vm_account_id=7}", "{__name__=yhat}"}},
			wantWarnings: map[string]uint64{"4": 1},
		},
		{
			name:         "fixed tenant, other tenant in path: warned, fixed tenant wins, no labels added",
			tenantID:     "5:1",
			pathTenant:   "9:9",
			series:       []prompb.TimeSeries{ts("__name__", "y")},
			want:         map[string][]string{base + "/insert/5:1/prometheus/api/v1/write": {"{__name__=y}"}},
			wantWarnings: map[string]uint64{"4": 1},
		},
		{
			name:         "multitenant keeps tenant labels; missing and invalid warned",
			tenantID:     "multitenant",
			series:       mixed,
			wantWarnings: map[string]uint64{"3": 1, "invalid": 2},
			want: map[string][]string{base + "/insert/multitenant/prometheus/api/v1/write": {
				"{__name__=y,for=cpu,vm_account_id=1,vm_project_id=0}",
				"{__name__=y,for=mem,vm_account_id=2,vm_project_id=3}",
				"{__name__=yhat,for=cpu}",
				"{__name__=yhat,for=disk,vm_account_id=abc}",
				"{__name__=yhat,for=net,vm_account_id=4294967296}",
			}},
		},
		{
			name:         "split: one request per tenant, labels removed, missing and invalid to account 0",
			tenantID:     "multitenant",
			split:        true,
			series:       mixed,
			wantWarnings: map[string]uint64{"3": 1, "invalid": 2},
			want: map[string][]string{
				base + "/insert/1:0/prometheus/api/v1/write": {"{__name__=y,for=cpu}"},
				base + "/insert/2:3/prometheus/api/v1/write": {"{__name__=y,for=mem}"},
				base + "/insert/0:0/prometheus/api/v1/write": {"{__name__=yhat,for=cpu}", "{__name__=yhat,for=disk}", "{__name__=yhat,for=net}"},
			},
		},
		{
			name:       "split with a path tenant: every series goes to it",
			tenantID:   "multitenant",
			split:      true,
			pathTenant: "7:2",
			series:     mixed[:3],
			want: map[string][]string{base + "/insert/7:2/prometheus/api/v1/write": {
				"{__name__=y,for=cpu}", "{__name__=y,for=mem}", "{__name__=yhat,for=cpu}"}},
		},
		{
			name:       "multitenant with a path tenant: labels replaced by it",
			tenantID:   "multitenant",
			pathTenant: "7",
			series:     mixed[:2],
			want: map[string][]string{base + "/insert/multitenant/prometheus/api/v1/write": {
				"{__name__=y,for=cpu,vm_account_id=7,vm_project_id=0}", "{__name__=y,for=mem,vm_account_id=7,vm_project_id=0}"}},
		},
		{
			name:     "split with metric_format",
			tenantID: "multitenant",
			split:    true,
			format:   map[string]string{"__name__": "vmanomaly_$VAR", "for": "$QUERY_KEY", "run": "r1"},
			series:   mixed[:2],
			want: map[string][]string{
				base + "/insert/1:0/prometheus/api/v1/write": {"{__name__=vmanomaly_y,for=cpu,run=r1}"},
				base + "/insert/2:3/prometheus/api/v1/write": {"{__name__=vmanomaly_y,for=mem,run=r1}"},
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newTestRouter(t, Options{BaseURL: base + "/", TenantID: tc.tenantID, SplitTenants: tc.split}, tc.format, nil)
			// The second pass is answered from the rewrite cache: same output,
			// and the warnings are raised again.
			for pass := 1; pass <= 2; pass++ {
				rec := newRecorder()
				r.sender = rec
				before := warnings()
				if err := r.Process(context.Background(), decoded(t, &prompb.WriteRequest{Timeseries: tc.series}), tc.pathTenant); err != nil {
					t.Fatal(err)
				}
				assertSeriesByURL(t, rec.seriesByURL(), tc.want)
				after := warnings()
				for c := range after {
					if got := after[c] - before[c]; got != tc.wantWarnings[c] {
						t.Errorf("pass %d: case %s warnings: got %d, want %d", pass, c, got, tc.wantWarnings[c])
					}
				}
			}
		})
	}
}

func newTestRouter(t testing.TB, opts Options, format map[string]string, s Sender) *Router {
	t.Helper()
	if format != nil {
		f, err := relabel.Compile(format, "for")
		if err != nil {
			t.Fatal(err)
		}
		opts.Format = f
	}
	r, err := New(opts, s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func assertSeriesByURL(t *testing.T, got, want map[string][]string) {
	t.Helper()
	for url, w := range want {
		if strings.Join(got[url], " ") != strings.Join(w, " ") {
			t.Errorf("%s:\n got %v\nwant %v", url, got[url], w)
		}
	}
	for url := range got {
		if _, ok := want[url]; !ok {
			t.Errorf("unexpected request to %s: %v", url, got[url])
		}
	}
}

func TestSamplesExemplarsHistogramsAndMetadataForwarded(t *testing.T) {
	in := &prompb.WriteRequest{
		Timeseries: []prompb.TimeSeries{{
			Labels:    []prompb.Label{{Name: "__name__", Value: "lat"}, {Name: "vm_account_id", Value: "3"}},
			Samples:   []prompb.Sample{{Value: 1, Timestamp: 1}, {Value: 2, Timestamp: 2}},
			Exemplars: []prompb.Exemplar{{Labels: []prompb.Label{{Name: "trace_id", Value: "t"}}, Value: 1, Timestamp: 1}},
			Histograms: []prompb.Histogram{{Count: &prompb.Histogram_CountInt{CountInt: 3}, Sum: 4, Timestamp: 3,
				PositiveSpans: []prompb.BucketSpan{{Length: 1}}, PositiveDeltas: []int64{3}}},
		}},
		Metadata: []prompb.MetricMetadata{{Type: prompb.MetricMetadata_HISTOGRAM, MetricFamilyName: "lat", Help: "h"}},
	}
	rec := newRecorder()
	r := newTestRouter(t, Options{BaseURL: base, TenantID: "multitenant", SplitTenants: true}, nil, rec)
	if err := r.Process(context.Background(), decoded(t, in), ""); err != nil {
		t.Fatal(err)
	}
	url := base + "/insert/3:0/prometheus/api/v1/write"
	got := rec.byURL[url]
	want := in.Timeseries[0]
	want.Labels = want.Labels[:1]
	if len(got) != 1 || got[0].String() != want.String() {
		t.Fatalf("got %v\nwant %v", got, want.String())
	}
	if len(rec.meta[url]) != 1 || rec.meta[url][0].String() != in.Metadata[0].String() {
		t.Errorf("metadata: got %v", rec.meta[url])
	}
}

func TestMetadataOnlyRequestGoesToDefaultTenant(t *testing.T) {
	rec := newRecorder()
	r := newTestRouter(t, Options{BaseURL: base, TenantID: "multitenant", SplitTenants: true}, nil, rec)
	in := &prompb.WriteRequest{Metadata: []prompb.MetricMetadata{{Type: prompb.MetricMetadata_COUNTER, MetricFamilyName: "x"}}}
	if err := r.Process(context.Background(), decoded(t, in), ""); err != nil {
		t.Fatal(err)
	}
	if got := rec.meta[base+"/insert/0:0/prometheus/api/v1/write"]; len(got) != 1 {
		t.Errorf("metadata went to %v", rec.meta)
	}
}

func TestSplitAcknowledgesOnlyWhenEveryTenantSucceeds(t *testing.T) {
	series := []prompb.TimeSeries{ts("__name__", "y", "vm_account_id", "1"), ts("__name__", "y", "vm_account_id", "2")}
	cases := []struct {
		name     string
		statuses map[string]int
		wantCode int
	}{
		{"all accepted", nil, 0},
		{"one tenant rejects: 400, producer must not retry", map[string]int{"/1:0/": 400}, 400},
		{"one tenant unavailable: 503, producer retries", map[string]int{"/2:0/": 503}, 503},
		{"reject and unavailable: retry wins so nothing is dropped", map[string]int{"/1:0/": 400, "/2:0/": 500}, 503},
		{"rate limited", map[string]int{"/1:0/": 429}, 429},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := newRecorder()
			rec.status = tc.statuses
			r := newTestRouter(t, Options{BaseURL: base, TenantID: "multitenant", SplitTenants: true}, nil, rec)
			err := r.Process(context.Background(), decoded(t, &prompb.WriteRequest{Timeseries: series}), "")
			var se *remotewrite.StatusError
			switch {
			case tc.wantCode == 0 && err != nil:
				t.Fatalf("got %v, want success", err)
			case tc.wantCode != 0 && (!errors.As(err, &se) || se.Code != tc.wantCode):
				t.Fatalf("got %v, want status %d", err, tc.wantCode)
			}
		})
	}
}

func TestBadPathTenantIsRejected(t *testing.T) {
	r := newTestRouter(t, Options{BaseURL: base, TenantID: "multitenant"}, nil, newRecorder())
	err := r.Process(context.Background(), decoded(t, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{ts("__name__", "y")}}), "abc")
	var de *remotewrite.DecodeError
	if !errors.As(err, &de) || de.Reason != remotewrite.ReasonBadTenant || !strings.Contains(de.Msg, `"abc" is not a tenant`) {
		t.Fatalf("got %v", err)
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	cases := map[string]Options{
		"writer.tenant_id":      {BaseURL: base, TenantID: "x:y"},
		"routing.split_tenants": {BaseURL: base, TenantID: "5:0", SplitTenants: true},
		"datasource_url":        {TenantID: "5:0"},
	}
	for want, opts := range cases {
		if _, err := New(opts, newRecorder()); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%+v: got %v, want an error naming %s", opts, err, want)
		}
	}
}

// TestUnchangedRemembersCheckedSeries: in pass-through, a series checked
// once is known to the rewrite cache, so the decoder skips its labels the
// next time and it is not checked again; a series that warned is known
// too, with its warning, which is still counted for every occurrence; the
// body still goes upstream byte for byte.
func TestUnchangedRemembersCheckedSeries(t *testing.T) {
	up := &bodyRecorder{}
	r := newTestRouter(t, Options{BaseURL: base, TenantID: Multitenant}, nil, up)
	wr := &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{
		ts("__name__", "y", "for", "q", "vm_account_id", "5"),
		ts("__name__", "y", "for", "no-tenant"),
	}}
	raw, err := wr.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	before := warnings()["3"]
	// A series is stored when it is checked the second time (see
	// doorkeeper), and known from the third on.
	for round := range 4 {
		var req remotewrite.Request
		if err := remotewrite.DecodeWriteRequestKnown(raw, &req, r); err != nil {
			t.Fatal(err)
		}
		req.Compressed = snappy.Encode(nil, raw)
		for i, what := range []string{"clean series", "series that warned"} {
			if known := req.Series[i].Known != nil; known != (round > 1) {
				t.Errorf("round %d: %s known = %v, want %v", round, what, known, round > 1)
			}
		}
		if err := r.Process(context.Background(), &req, ""); err != nil {
			t.Fatal(err)
		}
		if got := up.bodies[len(up.bodies)-1]; !bytes.Equal(got, req.Compressed) {
			t.Errorf("round %d: the body was not forwarded as received", round)
		}
	}
	if got := warnings()["3"] - before; got != 4 {
		t.Errorf("case 3 warnings: %d, want 4 (one per occurrence)", got)
	}
}
