package testenv

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"
)

func TestParseExport(t *testing.T) {
	body := `{"metric":{"__name__":"b","x":"1"},"values":[1,2.5],"timestamps":[2000,1000]}
{"metric":{"__name__":"a"},"values":[NaN,-Inf,3],"timestamps":[1,2,3]}
{"metric":{"__name__":"b","x":"1"},"values":[4],"timestamps":[3000]}
`
	got, err := parseExport([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("got %d series, want 2: %+v", len(got), got)
	}
	if got[0].Key() != "a{}" || got[1].Key() != `b{x="1"}` {
		t.Fatalf("keys: %s, %s", got[0].Key(), got[1].Key())
	}
	if !math.IsNaN(got[0].Values[0]) || !math.IsInf(got[0].Values[1], -1) || got[0].Values[2] != 3 {
		t.Fatalf("special values: %v", got[0].Values)
	}
	if !reflect.DeepEqual(got[1].Timestamps, []int64{1000, 2000, 3000}) || !reflect.DeepEqual(got[1].Values, []float64{2.5, 1, 4}) {
		t.Fatalf("merged and sorted samples: %v %v", got[1].Timestamps, got[1].Values)
	}
}

func TestParseHistogramSamples(t *testing.T) {
	var pairs [][2]json.RawMessage
	body := `[[1700000000.123,{"count":"7","sum":"10.5","buckets":[[3,"-0.001","0.001","1"],[0,"0.5","1","2.5"]]}],
	[1700000001,{"count":"0","sum":"NaN"}]]`
	if err := json.Unmarshal([]byte(body), &pairs); err != nil {
		t.Fatal(err)
	}
	got, err := parseHistogramSamples(map[string]string{"__name__": "h"}, pairs)
	if err != nil {
		t.Fatal(err)
	}
	want := []HistogramSample{
		{Timestamp: 1700000000123, Count: 7, Sum: 10.5, Buckets: []HistogramBucket{{3, -0.001, 0.001, 1}, {0, 0.5, 1, 2.5}}},
		{Timestamp: 1700000001000, Count: 0},
	}
	if len(got.Samples) != 2 || !math.IsNaN(got.Samples[1].Sum) {
		t.Fatalf("got %+v", got.Samples)
	}
	got.Samples[1].Sum = 0
	if !reflect.DeepEqual(got.Samples, want) {
		t.Fatalf("got %+v, want %+v", got.Samples, want)
	}
	if _, err := parseHistogramSamples(nil, [][2]json.RawMessage{{json.RawMessage("1"), json.RawMessage(`{"count":"1","sum":"1","buckets":[[0,"1","2"]]}`)}}); err == nil {
		t.Fatal("a bucket of 3 fields was accepted")
	}
}

func TestParseMetrics(t *testing.T) {
	m, err := ParseMetrics(`# HELP x
scoreproxy_requests_rejected_total{reason="bad_snappy"} 2
scoreproxy_requests_rejected_total{reason="too_large"} 3
vmanomaly_writer_responses_total{url="http://h/insert/1:2/prometheus/api/v1/write",code="204"} 7
esc{v="a\"b,c}"} 1.5e3 1700000000000
plain 4
`)
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := m.Sum("scoreproxy_requests_rejected_total", nil); !ok || v != 5 {
		t.Fatalf("sum = %v %v", v, ok)
	}
	if v, _ := m.Sum("vmanomaly_writer_responses_total", map[string]string{"code": "204"}); v != 7 {
		t.Fatalf("responses = %v", v)
	}
	if v, _ := m.Sum("esc", map[string]string{"v": `a"b,c}`}); v != 1500 {
		t.Fatalf("escaped label: %+v", m)
	}
	if _, ok := m.Sum("missing", nil); ok {
		t.Fatal("missing metric found")
	}
}

func TestFindPrefersEnvVar(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "fake-tool")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\necho usage: -someFlag\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	tool := Tool{Name: "fake-tool-not-in-path", EnvVar: "SCOREPROXY_TEST_FAKE_TOOL", CachePath: "nope/fake", MustSupport: "-someFlag"}
	t.Setenv(ToolsDirEnv, dir)
	t.Setenv(tool.EnvVar, "")
	if _, err := tool.Find(); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("Find without any binary: %v", err)
	}
	t.Setenv(tool.EnvVar, bin)
	if p, err := tool.Find(); err != nil || p != bin {
		t.Fatalf("Find = %q, %v; want %q", p, err, bin)
	}
	tool.MustSupport = "-otherFlag"
	if _, err := tool.Find(); err == nil || !strings.Contains(err.Error(), "too old") {
		t.Fatalf("Find of a binary lacking the flag: %v", err)
	}
}

// TestVictoriaMetricsRoundTrip checks the helpers against the real single
// node: what is pushed over remote write is exported back exactly.
func TestVictoriaMetricsRoundTrip(t *testing.T) {
	vm := StartVictoriaMetrics(t)
	ts := time.Now().Add(-time.Minute).UnixMilli()
	req := &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
		Labels:  Labels("__name__", "roundtrip", "k", "v"),
		Samples: []prompb.Sample{{Timestamp: ts, Value: 0.125}, {Timestamp: ts + 1000, Value: 42}},
	}}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := Push(ctx, vm.WriteURL(), req)
	if err != nil || res.StatusCode != 204 {
		t.Fatalf("push: %+v %v", res, err)
	}
	got := vm.WaitExport(t, `{__name__="roundtrip"}`, 20*time.Second, func(s []Series) error {
		if len(s) != 1 || len(s[0].Values) != 2 {
			return fmt.Errorf("got %+v", s)
		}
		return nil
	})
	want := Series{Labels: map[string]string{"__name__": "roundtrip", "k": "v"}, Timestamps: []int64{ts, ts + 1000}, Values: []float64{0.125, 42}}
	if !reflect.DeepEqual(got[0], want) {
		t.Fatalf("got %+v, want %+v", got[0], want)
	}
}

// TestVMAgentTenantLabels pins down the receiver the tenant e2e test relies
// on: vmagent v1.128.0 with -enableMultitenantHandlers in front of the single
// node stores the path's tenant as vm_account_id/vm_project_id labels, and
// passes labels through on /insert/multitenant/.
func TestVMAgentTenantLabels(t *testing.T) {
	vm := StartVictoriaMetrics(t)
	agent := StartVMAgent(t, vm.WriteURL())
	ts := time.Now().Add(-time.Minute).UnixMilli()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	push := func(path string, labels ...string) {
		t.Helper()
		req := &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
			Labels: Labels(labels...), Samples: []prompb.Sample{{Timestamp: ts, Value: 1}},
		}}}
		res, err := Push(ctx, agent.URL+path, req)
		if err != nil || res.StatusCode != 204 {
			t.Fatalf("push %s: %+v %v", path, res, err)
		}
	}
	push("/insert/3:4/prometheus/api/v1/write", "__name__", "vt", "c", "path", "vm_account_id", "9")
	push("/insert/5/prometheus/api/v1/write", "__name__", "vt", "c", "account_only")
	push("/insert/multitenant/prometheus/api/v1/write", "__name__", "vt", "c", "multi", "vm_account_id", "7", "vm_project_id", "8")
	push("/insert/multitenant/prometheus/api/v1/write", "__name__", "vt", "c", "multi_none")
	want := map[string]bool{
		`vt{c="path",vm_account_id="3",vm_project_id="4"}`:         true,
		`vt{c="account_only",vm_account_id="5",vm_project_id="0"}`: true,
		`vt{c="multi",vm_account_id="7",vm_project_id="8"}`:        true,
		`vt{c="multi_none"}`: true,
	}
	vm.WaitExport(t, `{__name__="vt"}`, 30*time.Second, func(s []Series) error {
		got := map[string]bool{}
		for _, x := range s {
			got[x.Key()] = true
		}
		if !reflect.DeepEqual(got, want) {
			return fmt.Errorf("series %v, want %v", got, want)
		}
		return nil
	})
}

// TestVMClusterTenants pins down the cluster the tenant and producer e2e
// tests read back from: vminsert v1.129.1 stores /insert/A:B/ writes in
// tenant A:B with their labels as sent, resolves /insert/multitenant/ writes
// by their vm_account_id/vm_project_id labels (0 when missing) and drops
// those labels, and drops native histogram samples while answering 204.
func TestVMClusterTenants(t *testing.T) {
	c := StartVMCluster(t)
	ts := time.Now().Add(-time.Minute).UnixMilli()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	hist := prompb.Histogram{Count: &prompb.Histogram_CountInt{CountInt: 3}, Sum: 4.5, ZeroThreshold: 1e-3,
		ZeroCount:     &prompb.Histogram_ZeroCountInt{ZeroCountInt: 1},
		PositiveSpans: []prompb.BucketSpan{{Offset: 0, Length: 2}}, PositiveDeltas: []int64{1, 0}, Timestamp: ts}
	req := &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{
		{Labels: Labels("__name__", "ct", "c", "labelled", "vm_account_id", "7", "vm_project_id", "8"), Samples: []prompb.Sample{{Timestamp: ts, Value: 1}}},
		{Labels: Labels("__name__", "ct", "c", "unlabelled"), Samples: []prompb.Sample{{Timestamp: ts, Value: 2}}},
		{Labels: Labels("__name__", "ct_histogram", "vm_account_id", "7", "vm_project_id", "8"), Histograms: []prompb.Histogram{hist}},
	}}
	for _, tenant := range []string{"multitenant", "1:2"} {
		if res, err := Push(ctx, c.WriteURL(tenant), req); err != nil || res.StatusCode != 204 {
			t.Fatalf("push to %s: %+v %v", tenant, res, err)
		}
	}
	want := map[string][]string{
		"7:8": {`ct{c="labelled"}`},
		"0:0": {`ct{c="unlabelled"}`},
		"1:2": {`ct{c="labelled",vm_account_id="7",vm_project_id="8"}`, `ct{c="unlabelled"}`},
	}
	for tenant, keys := range want {
		c.WaitExport(t, tenant, `{__name__=~"ct.*"}`, 15*time.Second, func(s []Series) error {
			var got []string
			for _, x := range s {
				got = append(got, x.Key())
			}
			if !reflect.DeepEqual(got, keys) {
				return fmt.Errorf("series %v, want %v", got, keys)
			}
			return nil
		})
	}
	tenants, err := c.Tenants(ctx)
	if err != nil || !reflect.DeepEqual(tenants, []string{"0:0", "1:2", "7:8"}) {
		t.Errorf("tenants holding data: %v, %v; want [0:0 1:2 7:8]", tenants, err)
	}
}
