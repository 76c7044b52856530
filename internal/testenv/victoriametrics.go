package testenv

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// VictoriaMetrics is a running single-node VictoriaMetrics.
type VictoriaMetrics struct {
	*Process
}

// StartVictoriaMetrics starts single-node VictoriaMetrics with its data in a
// t.TempDir(), a retention long enough for any timestamp a test writes, and
// extraArgs appended.
func StartVictoriaMetrics(t testing.TB, extraArgs ...string) *VictoriaMetrics {
	t.Helper()
	bin := VictoriaMetricsTool.Require(t)
	data := t.TempDir()
	p := Start(t, Spec{
		Name: "victoria-metrics",
		Path: bin,
		Args: func(addr string) []string {
			return append([]string{
				"-httpListenAddr=" + addr,
				"-storageDataPath=" + data,
				"-retentionPeriod=100y",
				// Answer queries up to now, not only up to now-30s.
				"-search.latencyOffset=0s",
				"-loggerLevel=INFO",
			}, extraArgs...)
		},
		ReadyPath: "/health",
	})
	return &VictoriaMetrics{Process: p}
}

// WriteURL is the Prometheus remote-write endpoint of the single node.
func (vm *VictoriaMetrics) WriteURL() string { return vm.URL + "/api/v1/write" }

// ForceFlush makes recently ingested data searchable
// (GET /internal/force_flush, present in VictoriaMetrics 1.79).
func (vm *VictoriaMetrics) ForceFlush(ctx context.Context) error {
	_, err := httpGet(ctx, vm.URL+"/internal/force_flush")
	return err
}

// Series is one time series read back from VictoriaMetrics or Prometheus:
// its labels (with __name__) and its raw samples in time order.
type Series struct {
	Labels     map[string]string
	Timestamps []int64 // milliseconds since the epoch
	Values     []float64
}

// Key renders the labels as {a="1", b="2"} with __name__ first, for use as a
// map key and in messages.
func (s Series) Key() string { return LabelsKey(s.Labels) }

// LabelsKey renders labels as name{a="1",b="2"}, names sorted; a stable key.
func LabelsKey(labels map[string]string) string {
	names := make([]string, 0, len(labels))
	for n := range labels {
		if n != "__name__" {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString(labels["__name__"])
	b.WriteByte('{')
	for i, n := range names {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(n)
		b.WriteByte('=')
		b.WriteString(strconv.Quote(labels[n]))
	}
	b.WriteByte('}')
	return b.String()
}

// Export returns every raw sample of the series matching the series selector
// match (e.g. `{__name__=~"vmanomaly_.*"}`), via /api/v1/export over all time.
// Series come sorted by Key; samples by timestamp.
func (vm *VictoriaMetrics) Export(ctx context.Context, match string) ([]Series, error) {
	form := url.Values{"match[]": {match}, "start": {"0"}}
	body, err := httpGet(ctx, vm.URL+"/api/v1/export?"+form.Encode())
	if err != nil {
		return nil, err
	}
	return parseExport(body)
}

// parseExport parses /api/v1/export's JSON lines. VictoriaMetrics may render
// special values as bare words (NaN, Inf), which encoding/json rejects, so
// values are parsed one by one.
func parseExport(body []byte) ([]Series, error) {
	var out []Series
	byKey := map[string]int{}
	sc := bufio.NewScanner(strings.NewReader(string(body)))
	sc.Buffer(make([]byte, 0, 1<<20), 256<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		line = quoteBareSpecials(line)
		var row struct {
			Metric     map[string]string `json:"metric"`
			Values     []json.RawMessage `json:"values"`
			Timestamps []int64           `json:"timestamps"`
		}
		if err := json.Unmarshal([]byte(line), &row); err != nil {
			return nil, fmt.Errorf("export line %.200q: %w", line, err)
		}
		if len(row.Values) != len(row.Timestamps) {
			return nil, fmt.Errorf("export line %.200q: %d values, %d timestamps", line, len(row.Values), len(row.Timestamps))
		}
		s := Series{Labels: row.Metric}
		for i, raw := range row.Values {
			v, err := parseValue(raw)
			if err != nil {
				return nil, fmt.Errorf("export line %.200q: %w", line, err)
			}
			s.Values = append(s.Values, v)
			s.Timestamps = append(s.Timestamps, row.Timestamps[i])
		}
		// One series may come in several lines (one per storage block).
		if i, ok := byKey[s.Key()]; ok {
			out[i].Values = append(out[i].Values, s.Values...)
			out[i].Timestamps = append(out[i].Timestamps, s.Timestamps...)
			continue
		}
		byKey[s.Key()] = len(out)
		out = append(out, s)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	for i := range out {
		sortSamples(&out[i])
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key() < out[j].Key() })
	return out, nil
}

// quoteBareSpecials turns bare NaN/Inf/-Inf array items into JSON strings.
func quoteBareSpecials(line string) string {
	r := strings.NewReplacer(",NaN", `,"NaN"`, "[NaN", `["NaN"`,
		",-Inf", `,"-Inf"`, "[-Inf", `["-Inf"`,
		",+Inf", `,"+Inf"`, "[+Inf", `["+Inf"`,
		",Inf", `,"Inf"`, "[Inf", `["Inf"`)
	// Only the "values" array may hold them; labels are quoted strings, in
	// which these sequences cannot appear unquoted at a token start.
	i := strings.Index(line, `"values":`)
	if i < 0 {
		return line
	}
	j := strings.Index(line[i:], "]")
	if j < 0 {
		return line
	}
	return line[:i] + r.Replace(line[i:i+j]) + line[i+j:]
}

func parseValue(raw json.RawMessage) (float64, error) {
	s := strings.Trim(string(raw), `"`)
	switch s {
	case "null":
		return math.NaN(), nil
	case "Inf", "+Inf":
		return math.Inf(1), nil
	case "-Inf":
		return math.Inf(-1), nil
	}
	return strconv.ParseFloat(s, 64)
}

func sortSamples(s *Series) {
	idx := make([]int, len(s.Timestamps))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return s.Timestamps[idx[a]] < s.Timestamps[idx[b]] })
	ts := make([]int64, len(idx))
	vs := make([]float64, len(idx))
	for i, k := range idx {
		ts[i], vs[i] = s.Timestamps[k], s.Values[k]
	}
	s.Timestamps, s.Values = ts, vs
}

// WaitExport flushes and exports match until check accepts the result or
// timeout passes, and returns the accepted series. On timeout the test fails
// with check's last complaint. Polling covers the time the data spends in
// producers' queues and VictoriaMetrics' in-memory buffers.
func (vm *VictoriaMetrics) WaitExport(t testing.TB, match string, timeout time.Duration, check func([]Series) error) []Series {
	t.Helper()
	return waitExport(t, "VictoriaMetrics at "+vm.URL, match, timeout, vm.ForceFlush,
		func(ctx context.Context) ([]Series, error) { return vm.Export(ctx, match) }, check)
}

// waitExport calls flush and export until check accepts the exported series
// or timeout passes, and returns them; on timeout the test fails, naming
// where (the store) and match, with check's last complaint.
func waitExport(t testing.TB, where, match string, timeout time.Duration, flush func(context.Context) error,
	export func(context.Context) ([]Series, error), check func([]Series) error) []Series {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var lastErr error
	for {
		if err := flush(ctx); err != nil {
			lastErr = err
		} else if got, err := export(ctx); err != nil {
			lastErr = err
		} else if err := check(got); err != nil {
			lastErr = err
		} else {
			return got
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s, export %s: not as expected after %v: %v", where, match, timeout, lastErr)
			return nil
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// httpGet GETs u and returns the body; a non-2xx status is an error.
func httpGet(ctx context.Context, u string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	if resp.StatusCode/100 != 2 {
		return nil, fmt.Errorf("GET %s: %s: %.500s", u, resp.Status, body)
	}
	return body, nil
}
