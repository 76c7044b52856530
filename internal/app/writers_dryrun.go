package app

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"

	"github.com/scoreproxy/scoreproxy/config"
	"github.com/scoreproxy/scoreproxy/remotewrite"
	"github.com/scoreproxy/scoreproxy/tenantroute"
)

// DryRun shows, for each series (Prometheus text, e.g.
// `anomaly_score{for="q1",vm_account_id="5"}`), what every writer of cfg
// would send upstream: the output series and the endpoint URL, with the
// tenant warnings it raises. It runs the writers' real routers (see
// routerOptions) with a sender that records instead of sending, one router
// per series so that each series shows all its warnings. Nothing is sent
// and no queue is opened. It fails only on a series it cannot parse.
func DryRun(cfg *config.Config, series []string, out io.Writer) error {
	for _, text := range series {
		labels, err := ParseSeries(text)
		if err != nil {
			return fmt.Errorf("-series %s: %w", text, err)
		}
		fmt.Fprintf(out, "series %s\n", FormatSeries(labels))
		for i, w := range cfg.WriterList() {
			name := cfg.WriterKey(i)
			if w.Name != "" {
				name += " (" + w.Name + ")"
			}
			if err := dryRunWriter(cfg, i, w, labels, name, out); err != nil {
				fmt.Fprintf(out, "  %s: error: %v\n", name, err)
			}
		}
	}
	return nil
}

// dryRunWriter routes one series through writer i's router and prints what
// it sent, or that it sent nothing.
func dryRunWriter(cfg *config.Config, i int, w config.Writer, labels []prompb.Label, name string, out io.Writer) error {
	warnings := &warningLines{}
	opts, err := routerOptions(cfg, i, w, slog.New(warnings))
	if err != nil {
		return err
	}
	rec := &recordingSender{}
	r, err := tenantroute.New(opts, rec)
	if err != nil {
		return err
	}
	req, err := dryRunRequest(labels)
	if err != nil {
		return err
	}
	if err := r.Process(context.Background(), req, ""); err != nil {
		return err
	}
	if len(rec.lines) == 0 {
		fmt.Fprintf(out, "  %s: nothing sent (dropped by relabel_configs or write_relabel_configs)\n", name)
	}
	for _, line := range rec.lines {
		fmt.Fprintf(out, "  %s: %s\n", name, line)
	}
	for _, msg := range warnings.lines {
		fmt.Fprintf(out, "  %s: warning: %s\n", name, msg)
	}
	return nil
}

// dryRunRequest is the request the receive handler would decode from a
// producer sending labels with one sample.
func dryRunRequest(labels []prompb.Label) (*remotewrite.Request, error) {
	wr := prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{Labels: labels,
		Samples: []prompb.Sample{{Value: 1, Timestamp: time.Now().UnixMilli()}}}}}
	body, err := wr.Marshal()
	if err != nil {
		return nil, err
	}
	var req remotewrite.Request
	if err := remotewrite.DecodeWriteRequest(body, &req); err != nil {
		return nil, err
	}
	if !req.Reordered {
		req.Compressed = snappy.Encode(nil, body)
	}
	return &req, nil
}

// recordingSender is the dry run's upstream: it decodes what the router
// sends and keeps "series -> URL" lines.
type recordingSender struct {
	mu    sync.Mutex
	lines []string
}

func (s *recordingSender) Send(_ context.Context, url string, body []byte, _ remotewrite.BatchStats) remotewrite.SendResult {
	var lines []string
	raw, err := snappy.Decode(nil, body)
	var wr prompb.WriteRequest
	if err == nil {
		err = wr.Unmarshal(raw)
	}
	if err != nil {
		lines = append(lines, "undecodable body ("+err.Error()+") -> "+url)
	}
	for _, ts := range wr.Timeseries {
		lines = append(lines, FormatSeries(ts.Labels)+" -> "+url)
	}
	s.mu.Lock()
	s.lines = append(s.lines, lines...)
	s.mu.Unlock()
	return remotewrite.SendResult{StatusCode: 204, URL: url}
}

// warningLines is a slog.Handler keeping the messages of warnings.
type warningLines struct{ lines []string }

func (h *warningLines) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }
func (h *warningLines) Handle(_ context.Context, r slog.Record) error {
	h.lines = append(h.lines, r.Message)
	return nil
}
func (h *warningLines) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *warningLines) WithGroup(string) slog.Handler      { return h }

// ParseSeries parses a series in Prometheus text form: an optional metric
// name, then {label="value", ...} with Go-style quoted values.
func ParseSeries(text string) ([]prompb.Label, error) {
	s := strings.TrimSpace(text)
	name, rest, hasBraces := strings.Cut(s, "{")
	name = strings.TrimSpace(name)
	var labels []prompb.Label
	if name != "" {
		labels = append(labels, prompb.Label{Name: "__name__", Value: name})
	}
	if hasBraces {
		body, ok := strings.CutSuffix(strings.TrimSpace(rest), "}")
		if !ok {
			return nil, fmt.Errorf(`missing "}"; write e.g. anomaly_score{for="q1",vm_account_id="5"}`)
		}
		pairs, err := parseLabelPairs(body)
		if err != nil {
			return nil, err
		}
		labels = append(labels, pairs...)
	}
	if len(labels) == 0 {
		return nil, fmt.Errorf(`no labels; write e.g. anomaly_score{for="q1",vm_account_id="5"}`)
	}
	sort.Slice(labels, func(i, j int) bool { return labels[i].Name < labels[j].Name })
	for i := 1; i < len(labels); i++ {
		if labels[i].Name == labels[i-1].Name {
			return nil, fmt.Errorf("label %s is set twice", labels[i].Name)
		}
	}
	return labels, nil
}

// parseLabelPairs parses `a="1", b="2"` (a trailing comma is allowed).
func parseLabelPairs(s string) ([]prompb.Label, error) {
	var labels []prompb.Label
	for s = strings.TrimSpace(s); s != ""; s = strings.TrimSpace(s) {
		name, rest, ok := strings.Cut(s, "=")
		name = strings.TrimSpace(name)
		if !ok || name == "" {
			return nil, fmt.Errorf(`expected label="value" at %q`, s)
		}
		rest = strings.TrimSpace(rest)
		quoted, err := strconv.QuotedPrefix(rest)
		if err != nil {
			return nil, fmt.Errorf("label %s: the value must be quoted, e.g. %s=\"q1\"", name, name)
		}
		value, _ := strconv.Unquote(quoted)
		labels = append(labels, prompb.Label{Name: name, Value: value})
		s = strings.TrimSpace(rest[len(quoted):])
		if s != "" {
			if s[0] != ',' {
				return nil, fmt.Errorf(`expected "," or "}" after label %s`, name)
			}
			s = s[1:]
		}
	}
	return labels, nil
}

// FormatSeries writes labels as Prometheus text: name{label="value",...}.
func FormatSeries(labels []prompb.Label) string {
	var b strings.Builder
	var rest []string
	for _, l := range labels {
		if l.Name == "__name__" {
			b.WriteString(l.Value)
			continue
		}
		rest = append(rest, l.Name+"="+strconv.Quote(l.Value))
	}
	b.WriteString("{" + strings.Join(rest, ",") + "}")
	return b.String()
}
