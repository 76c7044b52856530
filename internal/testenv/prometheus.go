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

// StartPrometheus starts Prometheus with config (prometheus.yml text) and its
// TSDB in a t.TempDir(). The config may use the placeholder {{PROMETHEUS_ADDR}},
// replaced by Prometheus' own 127.0.0.1:PORT (to scrape itself).
func StartPrometheus(t testing.TB, config string) *Prometheus {
	t.Helper()
	bin := PrometheusTool.Require(t)
	dir := t.TempDir()
	p := Start(t, Spec{
		Name: "prometheus",
		Path: bin,
		Dir:  dir,
		Args: func(addr string) []string {
			cfg := filepath.Join(dir, "prometheus.yml")
			text := strings.ReplaceAll(config, "{{PROMETHEUS_ADDR}}", addr)
			if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
				t.Fatalf("write prometheus.yml: %v", err)
			}
			return []string{
				"--config.file=" + cfg,
				"--storage.tsdb.path=" + filepath.Join(dir, "data"),
				"--web.listen-address=" + addr,
				"--log.level=info",
			}
		},
		ReadyPath: "/-/ready",
	})
	return &Prometheus{Process: p}
}

// RawSamples returns the raw samples Prometheus has stored for selector over
// the window ending at `at`: the instant query `selector[window]`. Prometheus
// drops staleness markers from range vectors, and keeps NaN samples.
func (p *Prometheus) RawSamples(ctx context.Context, selector string, window time.Duration, at time.Time) ([]Series, error) {
	q := url.Values{
		"query": {fmt.Sprintf("%s[%ds]", selector, int(window.Seconds()))},
		"time":  {strconv.FormatFloat(float64(at.UnixMilli())/1000, 'f', 3, 64)},
	}
	body, err := httpGet(ctx, p.URL+"/api/v1/query?"+q.Encode())
	if err != nil {
		return nil, err
	}
	var resp struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string `json:"resultType"`
			Result     []struct {
				Metric map[string]string `json:"metric"`
				Values [][2]any          `json:"values"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &resp); err != nil {
		return nil, fmt.Errorf("query %s: %w", q.Get("query"), err)
	}
	if resp.Status != "success" {
		return nil, fmt.Errorf("query %s: %s", q.Get("query"), resp.Error)
	}
	var out []Series
	for _, r := range resp.Data.Result {
		s := Series{Labels: r.Metric}
		for _, pair := range r.Values {
			ts, ok1 := pair[0].(float64)
			vs, ok2 := pair[1].(string)
			if !ok1 || !ok2 {
				return nil, fmt.Errorf("query %s: unexpected sample %v", q.Get("query"), pair)
			}
			v, err := parseValue(json.RawMessage(strconv.Quote(vs)))
			if err != nil {
				return nil, err
			}
			// Prometheus renders the timestamp as seconds with 3 decimals.
			s.Timestamps = append(s.Timestamps, int64(math.Round(ts*1000)))
			s.Values = append(s.Values, v)
		}
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key() < out[j].Key() })
	return out, nil
}
