package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/klauspost/compress/zstd"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"

	"github.com/scoreproxy/scoreproxy/internal/testenv"
)

const rw2ScoreproxyConfig = `listen: {{LISTEN}}
writer:
  datasource_url: %s
  metric_format:
    __name__: "vmanomaly_$VAR"
    for: "q_$QUERY_KEY"
    run: rw2
server:
  health_check_interval: 1s
`

// rw2Request is what a Prometheus 3 remote-write 2.0 sender writes for the
// model outputs of mode: a symbols table, labels as references (here not
// sorted, which the proxy fixes), two samples per series with start
// timestamps, an exemplar and metadata.
func rw2Request(mode string, ts int64) *writev2.Request {
	st := writev2.NewSymbolTable()
	req := &writev2.Request{}
	for i, out := range []string{"anomaly_score", "y", "yhat", "yhat_lower", "yhat_upper"} {
		refs := []uint32{st.Symbolize("mode"), st.Symbolize(mode), st.Symbolize("__name__"), st.Symbolize(out),
			st.Symbolize("for"), st.Symbolize(fmt.Sprintf("query_%d", i%2)), st.Symbolize("instance"), st.Symbolize("node-1:9100")}
		req.Timeseries = append(req.Timeseries, writev2.TimeSeries{
			LabelsRefs: refs,
			Samples: []writev2.Sample{
				{Value: float64(i) + 0.25, Timestamp: ts, StartTimestamp: ts - 3_600_000},
				{Value: float64(i) + 0.75, Timestamp: ts + 60_000, StartTimestamp: ts - 3_600_000},
			},
			Exemplars: []writev2.Exemplar{{LabelsRefs: []uint32{st.Symbolize("trace_id"), st.Symbolize("abc")}, Value: 1, Timestamp: ts}},
			Metadata:  writev2.Metadata{Type: writev2.Metadata_METRIC_TYPE_GAUGE, HelpRef: st.Symbolize("model output " + out)},
		})
	}
	req.Symbols = st.Symbols()
	return req
}

// rw2Stored is what VictoriaMetrics must hold for req after metric_format.
func rw2Stored(req *writev2.Request) []testenv.Series {
	var out []testenv.Series
	for _, s := range req.Timeseries {
		labels := map[string]string{"run": "rw2"}
		for i := 0; i < len(s.LabelsRefs); i += 2 {
			name, value := req.Symbols[s.LabelsRefs[i]], req.Symbols[s.LabelsRefs[i+1]]
			switch name {
			case "__name__":
				value = "vmanomaly_" + value
			case "for":
				value = "q_" + value
			}
			labels[name] = value
		}
		series := testenv.Series{Labels: labels}
		for _, x := range s.Samples {
			series.Timestamps = append(series.Timestamps, x.Timestamp)
			series.Values = append(series.Values, x.Value)
		}
		out = append(out, series)
	}
	return out
}

// postRaw POSTs an encoded body and returns the response, body read.
func postRaw(t *testing.T, url, contentType, encoding string, body []byte) (*http.Response, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Content-Encoding", encoding)
	req.Header.Set("X-Prometheus-Remote-Write-Version", "2.0.0")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(resp.Body)
	return resp, string(msg)
}

func zstdBytes(t *testing.T, raw []byte) []byte {
	enc, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	return enc.EncodeAll(raw, nil)
}

// TestRemoteWrite2IntoVictoriaMetrics is issue 6 item 5: remote write 2.0
// requests built from Prometheus' writev2 types, snappy and zstd, go through
// the real scoreproxy binary into a real VictoriaMetrics (which accepts only
// RW1), and read back with their values, timestamps and labels, renamed by
// metric_format; the spec's response headers say what was written; an
// invalid request gets 400 with zero written and stores nothing; an RW1 body
// compressed with zstd (the VictoriaMetrics protocol) is accepted too.
func TestRemoteWrite2IntoVictoriaMetrics(t *testing.T) {
	t.Parallel()
	vm, proxy := scoreproxyBeforeVM(t, rw2ScoreproxyConfig)
	ts := recentMinute(30 * time.Minute)
	const rw2Type = "application/x-protobuf;proto=io.prometheus.write.v2.Request"

	for _, enc := range []string{"snappy", "zstd"} {
		t.Run("rw2 "+enc, func(t *testing.T) {
			mode := "rw2_" + enc
			req := rw2Request(mode, ts)
			raw, err := req.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			body := snappy.Encode(nil, raw)
			if enc == "zstd" {
				body = zstdBytes(t, raw)
			}
			resp, msg := postRaw(t, proxy.URL+"/api/v1/write", rw2Type, enc, body)
			if resp.StatusCode != http.StatusNoContent {
				t.Fatalf("status %d: %s", resp.StatusCode, msg)
			}
			for name, want := range map[string]string{"Samples": "10", "Histograms": "0", "Exemplars": "5"} {
				if got := resp.Header.Get("X-Prometheus-Remote-Write-" + name + "-Written"); got != want {
					t.Errorf("%s written: %q, want %q", name, got, want)
				}
			}
			vm.WaitExport(t, fmt.Sprintf(`{mode=%q}`, mode), 30*time.Second, func(got []testenv.Series) error {
				return diffSeries(rw2Stored(req), got, 0)
			})
		})
	}

	t.Run("rw2 invalid request", func(t *testing.T) {
		req := rw2Request("rw2_invalid", ts)
		req.Timeseries[2].LabelsRefs[3] = uint32(len(req.Symbols)) // past the table
		raw, _ := req.Marshal()
		resp, msg := postRaw(t, proxy.URL+"/api/v1/write", rw2Type, "snappy", snappy.Encode(nil, raw))
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(msg, "invalid series #2") || !strings.Contains(msg, "outside of the symbols table") {
			t.Errorf("got %d %q, want 400 naming series #2 and the symbols table", resp.StatusCode, msg)
		}
		if got := resp.Header.Get("X-Prometheus-Remote-Write-Samples-Written"); got != "0" {
			t.Errorf("samples written: %q, want \"0\"", got)
		}
		resp, msg = postRaw(t, proxy.URL+"/api/v1/write", "application/x-protobuf;proto=io.prometheus.write.v3.Request", "snappy", snappy.Encode(nil, raw))
		if resp.StatusCode != http.StatusUnsupportedMediaType || !strings.Contains(msg, "io.prometheus.write.v2.Request") {
			t.Errorf("unknown proto: got %d %q, want 415 listing what is supported", resp.StatusCode, msg)
		}
	})

	t.Run("rw1 zstd", func(t *testing.T) {
		req := &prompb.WriteRequest{}
		for i, out := range []string{"anomaly_score", "yhat"} {
			req.Timeseries = append(req.Timeseries, prompb.TimeSeries{
				Labels:  testenv.Labels("__name__", out, "for", "cpu", "mode", "rw1_zstd"),
				Samples: []prompb.Sample{{Value: float64(i) + 0.5, Timestamp: ts}, {Value: float64(i) + 1.5, Timestamp: ts + 60_000}},
			})
		}
		raw, _ := req.Marshal()
		resp, msg := postRaw(t, proxy.URL+"/api/v1/write", "application/x-protobuf", "zstd", zstdBytes(t, raw))
		if resp.StatusCode != http.StatusNoContent {
			t.Fatalf("status %d: %s", resp.StatusCode, msg)
		}
		want := fromPrompb(req.Timeseries)
		for i := range want {
			want[i].Labels["__name__"] = "vmanomaly_" + want[i].Labels["__name__"]
			want[i].Labels["for"] = "q_cpu"
			want[i].Labels["run"] = "rw2"
		}
		vm.WaitExport(t, `{mode="rw1_zstd"}`, 30*time.Second, func(got []testenv.Series) error {
			return diffSeries(want, got, 0)
		})
	})

	// In the invalid subtest nothing reached VictoriaMetrics.
	if got, err := vm.Export(context.Background(), `{mode="rw2_invalid"}`); err != nil || len(got) != 0 {
		t.Errorf("the rejected request stored %d series (%v)", len(got), err)
	}
}
