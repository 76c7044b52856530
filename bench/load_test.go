package main

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"
)

// smallWorkload is a fast workload for in-process runs.
var smallWorkload = Workload{Preset: "anomaly", Series: 100, Samples: 2, Labels: 9, Tenants: 10, QueryKeys: 3}

// A bounded load run against the in-process sink: every acknowledged
// sample is counted by the sink, once, under the right tenants.
func TestLoadToSink(t *testing.T) {
	for _, fast := range []bool{false, true} {
		sink := NewSink(204, 0, fast)
		srv := httptest.NewServer(sink)
		p, err := BuildPool(smallWorkload, 25, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		cfg := LoadConfig{URL: srv.URL + "/insert/multitenant/prometheus/api/v1/write", Concurrency: 3, Requests: 25, Timeout: 10 * time.Second}
		if err := cfg.Validate(); err != nil {
			t.Fatal(err)
		}
		sum := RunLoad(context.Background(), cfg, p)
		srv.Close()
		got := sink.Counts()
		if sum.Requests != 25 || sum.AckedRequests != 25 || sum.AckedSamples != 25*200 || len(sum.ErrorsByStatus) != 0 {
			t.Fatalf("fast=%v summary %+v", fast, sum)
		}
		if got.Samples != sum.AckedSamples || got.Requests != 25 {
			t.Fatalf("fast=%v sink counted %d samples in %d requests, load acknowledged %d", fast, got.Samples, got.Requests, sum.AckedSamples)
		}
		if problems := tenantProblems(got.Tenants, p.AckedTenantSamples(sum.ackedBodies)); len(problems) > 0 {
			t.Fatalf("fast=%v %v", fast, problems)
		}
		if sum.LatencyP50Ms <= 0 || sum.LatencyP99Ms < sum.LatencyP50Ms {
			t.Fatalf("latencies p50 %v p99 %v", sum.LatencyP50Ms, sum.LatencyP99Ms)
		}
	}
}

// Refused requests are reported by status and are neither acknowledged by
// the load nor counted by the sink.
func TestLoadCountsErrorsByStatus(t *testing.T) {
	sink := NewSink(204, 4, true)
	srv := httptest.NewServer(sink)
	defer srv.Close()
	p, err := BuildPool(smallWorkload, 4, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	sum := RunLoad(context.Background(), LoadConfig{URL: srv.URL + "/api/v1/write", Concurrency: 2, Requests: 20, Timeout: 10 * time.Second}, p)
	if sum.ErrorsByStatus["503"] != 5 || sum.AckedRequests != 15 {
		t.Fatalf("errors %v, acknowledged %d", sum.ErrorsByStatus, sum.AckedRequests)
	}
	if got := sink.Counts(); got.Samples != sum.AckedSamples || got.Rejected != 5 {
		t.Fatalf("sink %d samples, %d rejected; load acknowledged %d", got.Samples, got.Rejected, sum.AckedSamples)
	}
}

// A duration-bounded run stops by itself.
func TestLoadStopsAfterDuration(t *testing.T) {
	srv := httptest.NewServer(NewSink(204, 0, true))
	defer srv.Close()
	p, _ := BuildPool(smallWorkload, 2, time.Now())
	sum := RunLoad(context.Background(), LoadConfig{URL: srv.URL + "/api/v1/write", Concurrency: 2, Duration: 200 * time.Millisecond, Timeout: 5 * time.Second}, p)
	if sum.Requests == 0 || sum.AckedRequests != sum.Requests {
		t.Fatalf("summary %+v", sum)
	}
}

// Exactly one stop condition, within the bounds.
func TestLoadConfigValidate(t *testing.T) {
	base := LoadConfig{URL: "http://127.0.0.1:1/api/v1/write", Concurrency: 4, Timeout: time.Second}
	bad := []LoadConfig{base, {URL: base.URL, Concurrency: 4, Timeout: time.Second, Requests: 1, Duration: time.Second},
		{URL: base.URL, Concurrency: 4, Timeout: time.Second, Duration: 11 * time.Minute},
		{URL: base.URL, Concurrency: 0, Timeout: time.Second, Requests: 1},
		{URL: "http://10.0.0.1/", Concurrency: 4, Timeout: time.Second, Requests: 1}}
	for i, c := range bad {
		if c.Validate() == nil {
			t.Errorf("case %d accepted: %+v", i, c)
		}
	}
	good := base
	good.Requests = 10
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	if poolSize(0, 10) != 10 || poolSize(0, 0) != defaultPoolSize || poolSize(7, 100) != 7 {
		t.Fatal("poolSize")
	}
}
