package testenv

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Prometheus is a running Prometheus server.
type Prometheus struct {
	*Process
}

// StartPrometheus starts Prometheus 2.42 with config (prometheus.yml text)
// and its TSDB in a t.TempDir(). The config may use the placeholder
// {{PROMETHEUS_ADDR}}, replaced by Prometheus' own 127.0.0.1:PORT (to scrape
// itself).
func StartPrometheus(t testing.TB, config string) *Prometheus {
	t.Helper()
	return startPrometheus(t, "prometheus", PrometheusTool, config)
}

// StartPrometheus3 is StartPrometheus for Prometheus 3 (Prometheus3Tool),
// with extraFlags appended, e.g. --web.enable-remote-write-receiver.
func StartPrometheus3(t testing.TB, config string, extraFlags ...string) *Prometheus {
	t.Helper()
	return startPrometheus(t, "prometheus3", Prometheus3Tool, config, extraFlags...)
}

func startPrometheus(t testing.TB, name string, tool Tool, config string, extraFlags ...string) *Prometheus {
	t.Helper()
	bin := tool.Require(t)
	dir := t.TempDir()
	p := Start(t, Spec{
		Name: name,
		Path: bin,
		Dir:  dir,
		Args: func(addr string) []string {
			cfg := filepath.Join(dir, "prometheus.yml")
			text := strings.ReplaceAll(config, "{{PROMETHEUS_ADDR}}", addr)
			if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
				t.Fatalf("write prometheus.yml: %v", err)
			}
			return append([]string{
				"--config.file=" + cfg,
				"--storage.tsdb.path=" + filepath.Join(dir, "data"),
				"--web.listen-address=" + addr,
				"--log.level=info",
			}, extraFlags...)
		},
		ReadyPath: "/-/ready",
	})
	return &Prometheus{Process: p}
}

// RawSamples returns the raw float samples Prometheus has stored for
// selector over the window ending at `at`: the instant query
// `selector[window]`. Prometheus drops staleness markers from range vectors,
// and keeps NaN samples. Native histogram samples are left out (see
// RawHistograms).
func (p *Prometheus) RawSamples(ctx context.Context, selector string, window time.Duration, at time.Time) ([]Series, error) {
	floats, _, err := p.rawQuery(ctx, selector, window, at)
	return floats, err
}

// RawHistograms returns the native histogram samples Prometheus has stored
// for selector over the window ending at `at`, as RawSamples does for floats.
func (p *Prometheus) RawHistograms(ctx context.Context, selector string, window time.Duration, at time.Time) ([]HistogramSeries, error) {
	_, hists, err := p.rawQuery(ctx, selector, window, at)
	return hists, err
}

// HistogramSeries is one native histogram series read back from Prometheus:
// its labels (with __name__) and its samples in time order.
type HistogramSeries struct {
	Labels  map[string]string
	Samples []HistogramSample
}

// Key is Series.Key for a histogram series.
func (h HistogramSeries) Key() string { return LabelsKey(h.Labels) }

// HistogramSample is a native histogram sample as Prometheus' query API
// renders it: count, sum and the non-empty buckets.
type HistogramSample struct {
	Timestamp  int64 // milliseconds since the epoch
	Count, Sum float64
	Buckets    []HistogramBucket
}

// HistogramBucket is one bucket of a HistogramSample. Boundaries says which
// ends are inclusive: 0 upper only, 1 lower only, 2 neither, 3 both (the
// zero bucket).
type HistogramBucket struct {
	Boundaries          int
	Lower, Upper, Count float64
}

// rawQuery runs the instant query selector[window] at `at` and returns the
// float and the histogram series of the range vector, each sorted by Key.
func (p *Prometheus) rawQuery(ctx context.Context, selector string, window time.Duration, at time.Time) ([]Series, []HistogramSeries, error) {
	q := url.Values{
		"query": {fmt.Sprintf("%s[%ds]", selector, int(window.Seconds()))},
		"time":  {strconv.FormatFloat(float64(at.UnixMilli())/1000, 'f', 3, 64)},
	}
	body, err := httpGet(ctx, p.URL+"/api/v1/query?"+q.Encode())
	if err != nil {
		return nil, nil, err
	}
	var resp struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string `json:"resultType"`
			Result     []struct {
				Metric     map[string]string    `json:"metric"`
				Values     [][2]any             `json:"values"`
				Histograms [][2]json.RawMessage `json:"histograms"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &resp); err != nil {
		return nil, nil, fmt.Errorf("query %s: %w", q.Get("query"), err)
	}
	if resp.Status != "success" {
		return nil, nil, fmt.Errorf("query %s: %s", q.Get("query"), resp.Error)
	}
	var floats []Series
	var hists []HistogramSeries
	for _, r := range resp.Data.Result {
		if len(r.Values) > 0 {
			s, err := parseFloatSamples(r.Metric, r.Values)
			if err != nil {
				return nil, nil, fmt.Errorf("query %s: %w", q.Get("query"), err)
			}
			floats = append(floats, s)
		}
		if len(r.Histograms) > 0 {
			h, err := parseHistogramSamples(r.Metric, r.Histograms)
			if err != nil {
				return nil, nil, fmt.Errorf("query %s: %w", q.Get("query"), err)
			}
			hists = append(hists, h)
		}
	}
	sort.Slice(floats, func(i, j int) bool { return floats[i].Key() < floats[j].Key() })
	sort.Slice(hists, func(i, j int) bool { return hists[i].Key() < hists[j].Key() })
	return floats, hists, nil
}

func parseFloatSamples(labels map[string]string, values [][2]any) (Series, error) {
	s := Series{Labels: labels}
	for _, pair := range values {
		ts, ok1 := pair[0].(float64)
		vs, ok2 := pair[1].(string)
		if !ok1 || !ok2 {
			return s, fmt.Errorf("unexpected sample %v", pair)
		}
		v, err := parseValue(json.RawMessage(strconv.Quote(vs)))
		if err != nil {
			return s, err
		}
		s.Timestamps = append(s.Timestamps, promTimestamp(ts))
		s.Values = append(s.Values, v)
	}
	return s, nil
}

// parseHistogramSamples parses the API's [ts, {"count": "5", "sum": "1.5",
// "buckets": [[boundaries, "lower", "upper", "count"], ...]}] pairs.
func parseHistogramSamples(labels map[string]string, pairs [][2]json.RawMessage) (HistogramSeries, error) {
	h := HistogramSeries{Labels: labels}
	for _, pair := range pairs {
		var ts float64
		var raw struct {
			Count   string              `json:"count"`
			Sum     string              `json:"sum"`
			Buckets [][]json.RawMessage `json:"buckets"`
		}
		if err := json.Unmarshal(pair[0], &ts); err != nil {
			return h, fmt.Errorf("histogram timestamp %s: %w", pair[0], err)
		}
		if err := json.Unmarshal(pair[1], &raw); err != nil {
			return h, fmt.Errorf("histogram %s: %w", pair[1], err)
		}
		smp := HistogramSample{Timestamp: promTimestamp(ts)}
		var err error
		if smp.Count, err = parseValue(json.RawMessage(raw.Count)); err != nil {
			return h, err
		}
		if smp.Sum, err = parseValue(json.RawMessage(raw.Sum)); err != nil {
			return h, err
		}
		for _, b := range raw.Buckets {
			bucket, err := parseHistogramBucket(b)
			if err != nil {
				return h, fmt.Errorf("histogram %s: %w", pair[1], err)
			}
			smp.Buckets = append(smp.Buckets, bucket)
		}
		h.Samples = append(h.Samples, smp)
	}
	return h, nil
}

func parseHistogramBucket(fields []json.RawMessage) (HistogramBucket, error) {
	var b HistogramBucket
	if len(fields) != 4 {
		return b, fmt.Errorf("bucket with %d fields, want 4", len(fields))
	}
	if err := json.Unmarshal(fields[0], &b.Boundaries); err != nil {
		return b, fmt.Errorf("bucket boundaries %s: %w", fields[0], err)
	}
	var err error
	for i, dst := range []*float64{&b.Lower, &b.Upper, &b.Count} {
		if *dst, err = parseValue(fields[i+1]); err != nil {
			return b, fmt.Errorf("bucket field %d: %w", i+1, err)
		}
	}
	return b, nil
}

// promTimestamp converts the API's seconds (3 decimals) to milliseconds.
func promTimestamp(seconds float64) int64 { return int64(math.Round(seconds * 1000)) }
