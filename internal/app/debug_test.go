package app

import (
	"bytes"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/prompb"
)

// With writer.debug the proxy prints what it would send, at the tenant's
// real upstream path, and sends nothing: the datasource is not even running.
// /ready is 200, since there is no upstream to wait for.
func TestDebugWriterWiring(t *testing.T) {
	var out bytes.Buffer
	old := DebugOutput
	DebugOutput = &out
	defer func() { DebugOutput = old }()
	proxy := startProxy(t, writeConfig(t, `
writer:
  datasource_url: http://127.0.0.1:1/
  tenant_id: multitenant
  debug: true
  metric_format: {__name__: vmanomaly_$VAR, for: $QUERY_KEY}
routing:
  split_tenants: true
`))
	wr := &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{
		{Labels: lbls("__name__", "anomaly_score", "for", "cpu", "vm_account_id", "5"), Samples: []prompb.Sample{{Value: 0.5, Timestamp: 1000}}},
		{Labels: lbls("__name__", "yhat", "for", "mem", "vm_account_id", "7", "vm_project_id", "2"), Samples: []prompb.Sample{{Value: 3, Timestamp: 2000}}},
	}}
	if resp := post(t, proxy.URL+"/api/v1/write", wr); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("status %d, want 204", resp.StatusCode)
	}
	blocks := strings.Split(strings.TrimSpace(out.String()), "\n\n")
	want := map[string]bool{
		"# POST http://127.0.0.1:1/insert/5:0/prometheus/api/v1/write (1 series, 1 sample)\nvmanomaly_anomaly_score{for=\"cpu\"} 0.5 1000": true,
		"# POST http://127.0.0.1:1/insert/7:2/prometheus/api/v1/write (1 series, 1 sample)\nvmanomaly_yhat{for=\"mem\"} 3 2000":            true,
	}
	for _, b := range blocks {
		if !want[b] {
			t.Errorf("unexpected block:\n%s", b)
		}
		delete(want, b)
	}
	for b := range want {
		t.Errorf("missing block:\n%s\n(output:\n%s)", b, out.String())
	}
	resp, err := http.Get(proxy.URL + "/ready")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/ready = %d in debug mode, want 200", resp.StatusCode)
	}
}

func lbls(kv ...string) []prompb.Label {
	var out []prompb.Label
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, prompb.Label{Name: kv[i], Value: kv[i+1]})
	}
	return out
}
