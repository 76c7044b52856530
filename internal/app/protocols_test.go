package app

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/golang/snappy"
	"github.com/klauspost/compress/zstd"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"

	"github.com/scoreproxy/scoreproxy/remotewrite"
)

// fullUpstream is a fake VictoriaMetrics that keeps every request it gets,
// decoded with prompb, by path.
type fullUpstream struct {
	mu   sync.Mutex
	reqs map[string][]prompb.WriteRequest
}

func newFullUpstream(t *testing.T) (*fullUpstream, *httptest.Server) {
	u := &fullUpstream{reqs: map[string][]prompb.WriteRequest{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health" {
			return
		}
		body, _ := io.ReadAll(r.Body)
		raw, err := snappy.Decode(nil, body)
		var wr prompb.WriteRequest
		if err == nil {
			err = wr.Unmarshal(raw)
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		u.mu.Lock()
		u.reqs[r.URL.Path] = append(u.reqs[r.URL.Path], wr)
		u.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	return u, srv
}

// richRequest has, over two tenants, float samples with exemplars, integer,
// float and custom-bucket native histograms, and one metadata entry per
// series (named after it, as the RW2 transcoding writes them).
func richRequest() *prompb.WriteRequest {
	lbl := func(name, instance, account string) []prompb.Label {
		return []prompb.Label{{Name: "__name__", Value: name}, {Name: "for", Value: "latency"},
			{Name: "instance", Value: instance}, {Name: "vm_account_id", Value: account}, {Name: "vm_project_id", Value: "0"}}
	}
	return &prompb.WriteRequest{
		Timeseries: []prompb.TimeSeries{
			{Labels: lbl("anomaly_score", "a", "1"),
				Samples:   []prompb.Sample{{Value: 0.75, Timestamp: 1_700_000_000_000}, {Value: 1.25, Timestamp: 1_700_000_060_000}},
				Exemplars: []prompb.Exemplar{{Labels: []prompb.Label{{Name: "trace_id", Value: "4bf92f35"}}, Value: 0.75, Timestamp: 1_700_000_000_000}}},
			{Labels: lbl("yhat", "b", "2"),
				Histograms: []prompb.Histogram{
					{Count: &prompb.Histogram_CountInt{CountInt: 11}, Sum: 4.5, Schema: 1, ZeroThreshold: 0.001,
						ZeroCount: &prompb.Histogram_ZeroCountInt{ZeroCountInt: 2}, ResetHint: prompb.Histogram_NO,
						NegativeSpans: []prompb.BucketSpan{{Offset: -1, Length: 1}}, NegativeDeltas: []int64{1},
						PositiveSpans: []prompb.BucketSpan{{Offset: 0, Length: 2}, {Offset: 2, Length: 1}}, PositiveDeltas: []int64{3, -1, 1},
						Timestamp: 1_700_000_000_000},
					{Count: &prompb.Histogram_CountFloat{CountFloat: 3.5}, Sum: 1, ZeroCount: &prompb.Histogram_ZeroCountFloat{ZeroCountFloat: 0.5},
						PositiveSpans: []prompb.BucketSpan{{Length: 2}}, PositiveCounts: []float64{1, 2}, ResetHint: prompb.Histogram_GAUGE,
						Timestamp: 1_700_000_060_000}},
				Exemplars: []prompb.Exemplar{{Labels: []prompb.Label{{Name: "trace_id", Value: "00f067aa"}, {Name: "span_id", Value: "b7ad"}}, Value: 0.3, Timestamp: 1_700_000_000_500}}},
			{Labels: lbl("yhat_upper", "c", "1"),
				Histograms: []prompb.Histogram{{Count: &prompb.Histogram_CountInt{CountInt: 5}, Sum: 10, Schema: -53,
					ZeroCount:     &prompb.Histogram_ZeroCountInt{},
					PositiveSpans: []prompb.BucketSpan{{Length: 3}}, PositiveDeltas: []int64{1, 1, 0}, CustomValues: []float64{0.5, 1, 5},
					Timestamp: 1_700_000_000_000}}},
		},
		Metadata: []prompb.MetricMetadata{
			{Type: prompb.MetricMetadata_GAUGE, MetricFamilyName: "anomaly_score", Help: "Anomaly score.", Unit: "ratio"},
			{Type: prompb.MetricMetadata_HISTOGRAM, MetricFamilyName: "yhat", Help: "Prediction."},
			{Type: prompb.MetricMetadata_GAUGEHISTOGRAM, MetricFamilyName: "yhat_upper", Unit: "seconds"},
		},
	}
}

// toRW2 is wr as a remote write 2.0 request: the same series, with each
// metadata entry on the series it names, and start timestamps RW1 drops.
func toRW2(wr *prompb.WriteRequest) *writev2.Request {
	st := writev2.NewSymbolTable()
	out := &writev2.Request{}
	for i, ts := range wr.Timeseries {
		s := writev2.TimeSeries{}
		for _, l := range ts.Labels {
			s.LabelsRefs = append(s.LabelsRefs, st.Symbolize(l.Name), st.Symbolize(l.Value))
		}
		for _, x := range ts.Samples {
			s.Samples = append(s.Samples, writev2.Sample{Value: x.Value, Timestamp: x.Timestamp, StartTimestamp: 1_600_000_000_000})
		}
		for _, h := range ts.Histograms {
			if h.IsFloatHistogram() {
				s.Histograms = append(s.Histograms, writev2.FromFloatHistogram(1, h.Timestamp, h.ToFloatHistogram()))
			} else {
				s.Histograms = append(s.Histograms, writev2.FromIntHistogram(1, h.Timestamp, h.ToIntHistogram()))
			}
		}
		for _, e := range ts.Exemplars {
			x := writev2.Exemplar{Value: e.Value, Timestamp: e.Timestamp}
			for _, l := range e.Labels {
				x.LabelsRefs = append(x.LabelsRefs, st.Symbolize(l.Name), st.Symbolize(l.Value))
			}
			s.Exemplars = append(s.Exemplars, x)
		}
		md := wr.Metadata[i]
		s.Metadata = writev2.Metadata{Type: writev2.Metadata_MetricType(md.Type), HelpRef: st.Symbolize(md.Help), UnitRef: st.Symbolize(md.Unit)}
		out.Timeseries = append(out.Timeseries, s)
	}
	out.Symbols = st.Symbols()
	return out
}

// encodings of richRequest a producer may send.
func richBodies(t *testing.T) map[string]struct {
	contentType, encoding string
	body                  []byte
} {
	rw1, err := richRequest().Marshal()
	if err != nil {
		t.Fatal(err)
	}
	rw2, err := toRW2(richRequest()).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	enc, _ := zstd.NewWriter(nil)
	defer enc.Close()
	type body = struct {
		contentType, encoding string
		body                  []byte
	}
	return map[string]body{
		"rw1 snappy": {"application/x-protobuf", "snappy", snappy.Encode(nil, rw1)},
		"rw1 zstd":   {"application/x-protobuf", "zstd", enc.EncodeAll(rw1, nil)},
		"rw2 snappy": {remotewrite.ContentTypeRW2, "snappy", snappy.Encode(nil, rw2)},
		"rw2 zstd":   {remotewrite.ContentTypeRW2, "zstd", enc.EncodeAll(rw2, nil)},
	}
}

// TestHistogramsExemplarsMetadataIntact: whatever the routing mode and the
// producer's protocol (RW1 or RW2, snappy or zstd), every series reaches the
// upstream with its labels rewritten as the mode says and its samples,
// native histograms and exemplars byte for byte as sent (compared as gogo
// marshals the decoded messages), and every metadata entry arrives intact
// with each batch.
func TestHistogramsExemplarsMetadataIntact(t *testing.T) {
	modes := []struct {
		name, tenant string
		split        bool
		pathFor      func(account string) string
	}{
		{"single node", ``, false, func(string) string { return "/api/v1/write" }},
		{"fixed tenant", `tenant_id: "3:4"`, false, func(string) string { return "/insert/3:4/prometheus/api/v1/write" }},
		{"multitenant", `tenant_id: multitenant`, false, func(string) string { return "/insert/multitenant/prometheus/api/v1/write" }},
		{"split", `tenant_id: multitenant`, true, func(a string) string { return "/insert/" + a + ":0/prometheus/api/v1/write" }},
	}
	for _, mode := range modes {
		for name, in := range richBodies(t) {
			t.Run(mode.name+"/"+name, func(t *testing.T) {
				up, upSrv := newFullUpstream(t)
				proxy := startProxy(t, writeConfig(t, fmt.Sprintf(`
writer:
  datasource_url: %s
  %s
  metric_format: {__name__: vmanomaly_$VAR, for: q_$QUERY_KEY}
routing:
  split_tenants: %v
`, upSrv.URL, mode.tenant, mode.split)))
				// Twice: the second time the series' labels come from the
				// rewrite cache (the decoder skips them).
				for range 2 {
					postEncoded(t, proxy.URL+"/api/v1/write", sentBody(in))
				}
				requireIntact(t, up, mode.split, mode.pathFor)
			})
		}
	}
}

// requireIntact compares what the upstream got with richRequest sent twice.
func requireIntact(t *testing.T, up *fullUpstream, split bool, pathFor func(string) string) {
	t.Helper()
	want := richRequest()
	wantSeries := map[string][]string{} // path -> marshalled series
	for _, ts := range want.Timeseries {
		var account string
		var labels []prompb.Label
		for _, l := range ts.Labels {
			switch l.Name {
			case "__name__":
				l.Value = "vmanomaly_" + l.Value
			case "for":
				l.Value = "q_" + l.Value
			case "vm_account_id":
				account = l.Value
			}
			if !split || !strings.HasPrefix(l.Name, "vm_") {
				labels = append(labels, l)
			}
		}
		ts.Labels = labels
		m := mustMarshal(t, &ts)
		wantSeries[pathFor(account)] = append(wantSeries[pathFor(account)], m, m) // sent twice
	}
	var wantMeta []string
	for i := range want.Metadata {
		wantMeta = append(wantMeta, mustMarshal(t, &want.Metadata[i]))
	}
	up.mu.Lock()
	defer up.mu.Unlock()
	if len(up.reqs) != len(wantSeries) {
		t.Errorf("upstream got %d paths, want %d", len(up.reqs), len(wantSeries))
	}
	for path, series := range wantSeries {
		var got, gotMeta []string
		for _, wr := range up.reqs[path] {
			for i := range wr.Timeseries {
				got = append(got, mustMarshal(t, &wr.Timeseries[i]))
			}
			gotMeta = gotMeta[:0]
			for i := range wr.Metadata {
				gotMeta = append(gotMeta, mustMarshal(t, &wr.Metadata[i]))
			}
			if strings.Join(gotMeta, "|") != strings.Join(wantMeta, "|") {
				t.Errorf("%s: metadata %v, want %v", path, wr.Metadata, want.Metadata)
			}
		}
		sort.Strings(got)
		sort.Strings(series)
		if strings.Join(got, "|") != strings.Join(series, "|") {
			t.Errorf("%s: series differ\n got %q\nwant %q", path, got, series)
		}
	}
}

func mustMarshal(t *testing.T, m interface{ Marshal() ([]byte, error) }) string {
	t.Helper()
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
