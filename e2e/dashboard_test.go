package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"

	"github.com/scoreproxy/scoreproxy/internal/testenv"
)

// exportedMetrics are the metric families scoreproxy exports, with the labels
// each carries (besides the job and instance labels a scrape adds). Histograms
// are VictoriaMetrics histograms: name_bucket{vmrange}, name_sum, name_count.
var exportedMetrics = map[string][]string{
	"scoreproxy_requests_received_total":         nil,
	"scoreproxy_series_received_total":           nil,
	"scoreproxy_samples_received_total":          nil,
	"scoreproxy_requests_rejected_total":         {"reason"},
	"scoreproxy_samples_forwarded_total":         {"url"},
	"scoreproxy_series_forwarded_total":          {"url"},
	"scoreproxy_tenant_warnings_total":           {"case"},
	"scoreproxy_request_duration_seconds":        nil, // histogram
	"scoreproxy_upstream_ready":                  {"url"},
	"scoreproxy_upstream_errors_total":           {"url", "reason"},
	"vmanomaly_writer_request_duration_seconds":  {"url"}, // histogram
	"vmanomaly_writer_request_serialize_seconds": {"url"}, // histogram
	"vmanomaly_writer_responses_total":           {"url", "code"},
	"vmanomaly_writer_sent_bytes_total":          {"url"},
	"vmanomaly_writer_datapoints_sent_total":     {"url", "query_key"},
	"vmanomaly_writer_timeseries_sent_total":     {"url", "query_key"},
	"scoreproxy_rewrite_cache_hits_total":        nil,
	"scoreproxy_rewrite_cache_misses_total":      nil,
	"scoreproxy_rewrite_cache_skipped_total":     nil,
	"scoreproxy_rewrite_cache_budget_bytes":      nil,
	"scoreproxy_rewrite_cache_bytes":             nil,
	"scoreproxy_queue_pending_bytes":             {"url"},
	"scoreproxy_queue_oldest_block_age_seconds":  {"url"},
	"scoreproxy_queue_retries_total":             {"url"},
	"scoreproxy_queue_rejected_blocks_total":     {"url", "code"},
	"scoreproxy_upstream_zstd":                   {"url"},
	"scoreproxy_upstream_zstd_fallbacks_total":   {"url"},
	"scoreproxy_import_json_dropped_total":       {"kind"},
}

var histograms = map[string]bool{
	"scoreproxy_request_duration_seconds":        true,
	"vmanomaly_writer_request_duration_seconds":  true,
	"vmanomaly_writer_request_serialize_seconds": true,
}

// lazyMetrics appear on /metrics only once they happened (an upstream
// transport error) or with a durable queue configured; the others are there
// from the first request on.
var lazyMetrics = map[string]bool{
	// with writer.compression auto or zstd, and writer.output: import_json
	"scoreproxy_upstream_zstd":                  true,
	"scoreproxy_upstream_zstd_fallbacks_total":  true,
	"scoreproxy_import_json_dropped_total":      true,
	"scoreproxy_upstream_errors_total":          true,
	"scoreproxy_queue_pending_bytes":            true,
	"scoreproxy_queue_oldest_block_age_seconds": true,
	"scoreproxy_queue_retries_total":            true,
	"scoreproxy_queue_rejected_blocks_total":    true,
}

// family maps a series name to its exported family and the labels it may
// carry: name_bucket/_sum/_count of a histogram, or the name itself.
func family(name string) (string, []string, bool) {
	if labels, ok := exportedMetrics[name]; ok && !histograms[name] {
		return name, labels, true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok && histograms[base] {
			labels := exportedMetrics[base]
			if suffix == "_bucket" {
				labels = append(append([]string(nil), labels...), "vmrange")
			}
			return base, labels, true
		}
	}
	return "", nil, false
}

// promqlWords are the words of PromQL/MetricsQL that are not metric names.
var promqlWords = map[string]bool{
	"sum": true, "min": true, "max": true, "avg": true, "count": true, "rate": true, "irate": true,
	"increase": true, "histogram_quantile": true, "by": true, "without": true, "on": true,
	"ignoring": true, "group_left": true, "group_right": true, "and": true, "or": true,
	"unless": true, "bool": true, "offset": true, "topk": true, "bottomk": true, "delta": true,
	"label_values": true, "clamp_min": true, "abs": true, "vector": true, "time": true,
}

var (
	reString  = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
	reBraces  = regexp.MustCompile(`\{[^}]*\}`)
	reRange   = regexp.MustCompile(`\[[^\]]*\]`)
	reGroup   = regexp.MustCompile(`\b(by|without|on|ignoring)\s*\(([^)]*)\)`)
	reIdent   = regexp.MustCompile(`[A-Za-z_:][A-Za-z0-9_:]*`)
	reMatcher = regexp.MustCompile(`([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)`)
	reVar     = regexp.MustCompile(`\$\{?[A-Za-z_][A-Za-z0-9_]*\}?`)
)

// exprNames returns the metric names and the label names an expression
// uses: in {matchers}, by/without/on/ignoring (...), and label_values(m, l).
func exprNames(expr string) (metrics, labels []string) {
	e := reVar.ReplaceAllString(expr, "VAR")
	if inner, ok := strings.CutPrefix(strings.TrimSpace(e), "label_values("); ok {
		inner = strings.TrimSuffix(strings.TrimSpace(inner), ")")
		if i := strings.LastIndex(inner, ","); i >= 0 {
			labels = append(labels, strings.TrimSpace(inner[i+1:]))
			e = inner[:i]
		}
	}
	for _, m := range reBraces.FindAllString(reString.ReplaceAllString(e, `""`), -1) {
		for _, mm := range reMatcher.FindAllStringSubmatch(m, -1) {
			labels = append(labels, mm[1])
		}
	}
	e = reString.ReplaceAllString(e, `""`)
	e = reBraces.ReplaceAllString(e, " ")
	e = reRange.ReplaceAllString(e, " ")
	for _, g := range reGroup.FindAllStringSubmatch(e, -1) {
		for _, l := range strings.Split(g[2], ",") {
			if l = strings.TrimSpace(l); l != "" {
				labels = append(labels, l)
			}
		}
	}
	e = reGroup.ReplaceAllString(e, " ")
	for _, id := range reIdent.FindAllString(e, -1) {
		if !promqlWords[id] && id != "VAR" && id != "e" {
			metrics = append(metrics, id)
		}
	}
	return metrics, labels
}

// grafanaDashboard is the part of a dashboard JSON the checks read.
type grafanaDashboard struct {
	UID        string         `json:"uid"`
	Title      string         `json:"title"`
	Panels     []grafanaPanel `json:"panels"`
	Templating struct {
		List []struct {
			Name       string          `json:"name"`
			Type       string          `json:"type"`
			Datasource *grafanaDSRef   `json:"datasource"`
			Query      json.RawMessage `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

type grafanaPanel struct {
	ID         int            `json:"id"`
	Type       string         `json:"type"`
	Title      string         `json:"title"`
	Datasource *grafanaDSRef  `json:"datasource"`
	Panels     []grafanaPanel `json:"panels"` // collapsed rows
	Targets    []struct {
		RefID      string        `json:"refId"`
		Expr       string        `json:"expr"`
		Datasource *grafanaDSRef `json:"datasource"`
	} `json:"targets"`
}

type grafanaDSRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

func dashboardFiles(t *testing.T) []string {
	t.Helper()
	root, err := testenv.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(root, "deploy", "grafana", "dashboards", "*.json"))
	if len(files) == 0 {
		t.Fatal("no dashboard in deploy/grafana/dashboards")
	}
	return files
}

// dashboardQuery is one expression of a dashboard, with where it is.
type dashboardQuery struct {
	where string
	expr  string
	ds    *grafanaDSRef
}

func dashboardQueries(t *testing.T, file string) (grafanaDashboard, []dashboardQuery) {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var d grafanaDashboard
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	var out []dashboardQuery
	var walk func(ps []grafanaPanel)
	walk = func(ps []grafanaPanel) {
		for _, p := range ps {
			for _, tg := range p.Targets {
				ds := tg.Datasource
				if ds == nil {
					ds = p.Datasource
				}
				out = append(out, dashboardQuery{fmt.Sprintf("panel %d %q target %s", p.ID, p.Title, tg.RefID), tg.Expr, ds})
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		var q struct {
			Query string `json:"query"`
		}
		var s string
		if json.Unmarshal(v.Query, &s) == nil {
			q.Query = s
		} else if err := json.Unmarshal(v.Query, &q); err != nil {
			t.Fatalf("%s: variable %s query: %v", file, v.Name, err)
		}
		out = append(out, dashboardQuery{"variable " + v.Name, q.Query, v.Datasource})
	}
	return d, out
}

// TestDashboardUsesExportedMetrics checks every expression of the Grafana
// dashboards: each metric name is one scoreproxy exports, each label it
// groups or filters by is one those metrics carry, and each datasource is
// one the provisioning files define.
func TestDashboardUsesExportedMetrics(t *testing.T) {
	f := loadCompose(t)
	dsFiles, _ := filepath.Glob(filepath.Join(f.root, "deploy", "grafana", "provisioning", "datasources", "*.yaml"))
	uids := map[string]bool{}
	for _, file := range dsFiles {
		for _, ds := range readDatasources(t, file) {
			uids[ds.UID] = true
		}
	}
	// What the dashboard must show (issue: throughput, rejects by reason,
	// tenant warnings by case, upstream latency and errors, readiness).
	mustShow := []string{
		"scoreproxy_samples_received_total", "scoreproxy_samples_forwarded_total",
		"scoreproxy_requests_rejected_total", "scoreproxy_tenant_warnings_total",
		"vmanomaly_writer_request_duration_seconds", "vmanomaly_writer_responses_total",
		"scoreproxy_upstream_errors_total", "scoreproxy_upstream_ready",
	}
	for _, file := range dashboardFiles(t) {
		d, queries := dashboardQueries(t, file)
		if d.UID == "" || d.Title == "" {
			t.Errorf("%s: uid and title must be set (provisioning keys on uid)", file)
		}
		if len(queries) == 0 {
			t.Fatalf("%s: no queries", file)
		}
		shown := map[string]bool{}
		for _, q := range queries {
			if q.ds == nil || !uids[q.ds.UID] {
				t.Errorf("%s %s: datasource %+v is not provisioned (uids %v)", file, q.where, q.ds, uids)
			}
			metrics, labels := exprNames(q.expr)
			if len(metrics) == 0 {
				t.Errorf("%s %s: no metric in %q", file, q.where, q.expr)
			}
			allowed := map[string]bool{"job": true, "instance": true}
			for _, m := range metrics {
				fam, famLabels, ok := family(m)
				if !ok {
					t.Errorf("%s %s: %s is not a metric scoreproxy exports (expr %q)", file, q.where, m, q.expr)
					continue
				}
				shown[fam] = true
				for _, l := range famLabels {
					allowed[l] = true
				}
			}
			for _, l := range labels {
				if !allowed[l] {
					t.Errorf("%s %s: label %q is not a label of %v (expr %q)", file, q.where, l, metrics, q.expr)
				}
			}
		}
		for _, m := range mustShow {
			if !shown[m] {
				t.Errorf("%s: no panel shows %s", file, m)
			}
		}
	}
}

func TestExprNames(t *testing.T) {
	m, l := exprNames(`histogram_quantile(0.99, sum by (vmrange) (rate(x_bucket{instance=~"$instance",url!="a,b}"}[$__rate_interval]))) / on(url) y > 0`)
	if strings.Join(m, ",") != "x_bucket,y" || strings.Join(l, ",") != "instance,url,vmrange,url" {
		t.Fatalf("metrics %v labels %v", m, l)
	}
	m, l = exprNames(`label_values(scoreproxy_requests_received_total, instance)`)
	if strings.Join(m, ",") != "scoreproxy_requests_received_total" || strings.Join(l, ",") != "instance" {
		t.Fatalf("metrics %v labels %v", m, l)
	}
}

// TestExportedMetricsAreLive starts scoreproxy in front of VictoriaMetrics,
// sends it one request, and checks that /metrics has every family the
// dashboard may use (the ones that exist only after an upstream error
// aside) and every rejection reason the dashboard's description lists.
func TestExportedMetricsAreLive(t *testing.T) {
	t.Parallel()
	_, proxy := scoreproxyBeforeVM(t, "listen: {{LISTEN}}\nwriter:\n  datasource_url: %s\n")
	push(t, proxy.URL+"/api/v1/write", &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
		Labels:  testenv.Labels("__name__", "live", "for", "q"),
		Samples: []prompb.Sample{{Timestamp: time.Now().UnixMilli(), Value: 1}},
	}}})
	m := scrape(t, proxy.URL+"/metrics")
	names := m.Names()
	var missing []string
	for fam := range exportedMetrics {
		if lazyMetrics[fam] {
			continue
		}
		probe := fam
		if histograms[fam] {
			probe = fam + "_count"
		}
		if !names[probe] {
			missing = append(missing, probe)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("/metrics lacks %v", missing)
	}
	for _, reason := range []string{"bad_snappy", "bad_protobuf", "content_type_mismatch", "invalid_series", "too_large",
		"unsupported_media_type", "method_not_allowed", "upstream_rejected", "upstream_unavailable"} {
		if _, ok := m.Sum("scoreproxy_requests_rejected_total", map[string]string{"reason": reason}); !ok {
			t.Errorf("/metrics has no scoreproxy_requests_rejected_total{reason=%q}", reason)
		}
	}
	for _, c := range []string{"3", "4", "invalid"} {
		if _, ok := m.Sum("scoreproxy_tenant_warnings_total", map[string]string{"case": c}); !ok {
			t.Errorf("/metrics has no scoreproxy_tenant_warnings_total{case=%q}", c)
		}
	}
}
