package relabel

import (
	"sync"
	"testing"

	"github.com/scoreproxy/scoreproxy/remotewrite"
)

// The "Metrics formatting" example of the writer docs, verbatim: two outputs
// of two queries over one input series.
func TestApplyWriterDocsExample(t *testing.T) {
	format := mustCompile(t, map[string]string{
		"__name__":       "PREFIX1_$VAR",
		"for":            "PREFIX2_$QUERY_KEY",
		"custom_label_1": "label_name_1",
		"custom_label_2": "label_name_2",
	}, "for")
	// "if input data contains labels such as `cpu=1, device=eth0, instance=node-exporter:9100`"
	input := "cpu=1, device=eth0, instance=node-exporter:9100"
	tests := []struct{ variable, query, want string }{
		{"anomaly_score", "query_name_1", `{__name__="PREFIX1_anomaly_score", for="PREFIX2_query_name_1", custom_label_1="label_name_1", custom_label_2="label_name_2", cpu=1, device="eth0", instance="node-exporter:9100"}`},
		{"yhat_lower", "query_name_1", `{__name__="PREFIX1_yhat_lower", for="PREFIX2_query_name_1", custom_label_1="label_name_1", custom_label_2="label_name_2", cpu=1, device="eth0", instance="node-exporter:9100"}`},
		{"anomaly_score", "query_name_2", `{__name__="PREFIX1_anomaly_score", for="PREFIX2_query_name_2", custom_label_1="label_name_1", custom_label_2="label_name_2", cpu=1, device="eth0", instance="node-exporter:9100"}`},
		{"yhat_lower", "query_name_2", `{__name__="PREFIX1_yhat_lower", for="PREFIX2_query_name_2", custom_label_1="label_name_1", custom_label_2="label_name_2", cpu=1, device="eth0", instance="node-exporter:9100"}`},
	}
	for _, tt := range tests {
		src := parseSeries(t, input+", __name__="+tt.variable+", for="+tt.query)
		got, _ := format.Apply(nil, nil, src, nil)
		assertSeries(t, tt.variable+"/"+tt.query, got, tt.want)
	}
}

func TestApply(t *testing.T) {
	seedFormat := map[string]string{"__name__": "vmanomaly_$VAR", "for": "$QUERY_KEY"}
	tests := []struct {
		name         string
		metricFormat map[string]string
		queryKey     string // "" means the default "for"
		src          string
		override     string
		want         string
	}{
		// Identity: no metric_format.
		{"no metric_format keeps the series", nil, "",
			`{__name__="anomaly_score", for="q1", job="node"}`, ``,
			`{__name__="anomaly_score", for="q1", job="node"}`},
		{"no metric_format still merges the override", nil, "",
			`{__name__="up", vm_account_id="1"}`, `{vm_account_id="5", vm_project_id="2"}`,
			`{__name__="up", vm_account_id="5", vm_project_id="2"}`},

		// Placeholders.
		{"the seed format renames and keeps the query alias", seedFormat, "",
			`{__name__="yhat", for="cpu_rate", instance="a:9100"}`, ``,
			`{__name__="vmanomaly_yhat", for="cpu_rate", instance="a:9100"}`},
		{"placeholders repeat and mix", map[string]string{"__name__": "$VAR_$VAR", "q": "$QUERY_KEY-$VAR-$QUERY_KEY"}, "",
			`{__name__="y", for="q1"}`, ``,
			`{__name__="y_y", for="q1", q="q1-y-q1"}`},
		{"substitution is literal like str.replace", map[string]string{"__name__": "$$VAR", "a": "$VARIABLE", "b": "$QUERY", "c": "$"}, "",
			`{__name__="yhat", for="q1"}`, ``,
			`{__name__="$yhat", a="yhatIABLE", b="$QUERY", c="$", for="q1"}`},
		{"an absent query key renders as empty", map[string]string{"__name__": "a_$VAR", "for": "PREFIX2_$QUERY_KEY"}, "",
			`{__name__="yhat", job="node"}`, ``,
			`{__name__="a_yhat", for="PREFIX2_", job="node"}`},
		{"an absent __name__ renders as empty", seedFormat, "",
			`{for="q1", job="node"}`, ``,
			`{__name__="vmanomaly_", for="q1", job="node"}`},
		{"the query key label can be renamed", map[string]string{"__name__": "a_$VAR", "query": "$QUERY_KEY"}, "alias",
			`{__name__="yhat", alias="q7", for="other"}`, ``,
			`{__name__="a_yhat", alias="q7", for="other", query="q7"}`},

		// Precedence: metric_format > override > incoming.
		{"metric_format beats the incoming label", map[string]string{"__name__": "a_$VAR", "for": "static"}, "",
			`{__name__="yhat", for="q1"}`, ``,
			`{__name__="a_yhat", for="static"}`},
		{"override beats the incoming label", seedFormat, "",
			`{__name__="yhat", for="q1", vm_account_id="1"}`, `{vm_account_id="5"}`,
			`{__name__="vmanomaly_yhat", for="q1", vm_account_id="5"}`},
		{"metric_format beats the override", map[string]string{"__name__": "a_$VAR", "vm_account_id": "7"}, "",
			`{__name__="yhat", vm_account_id="1"}`, `{vm_account_id="5"}`,
			`{__name__="a_yhat", vm_account_id="7"}`},
		{"override adds labels the series lacks", seedFormat, "",
			`{__name__="yhat", for="q1"}`, `{vm_account_id="5", vm_project_id="0"}`,
			`{__name__="vmanomaly_yhat", for="q1", vm_account_id="5", vm_project_id="0"}`},

		// Empty values remove labels.
		{"an empty metric_format value removes the label", map[string]string{"__name__": "a_$VAR", "job": ""}, "",
			`{__name__="yhat", job="node"}`, ``,
			`{__name__="a_yhat"}`},
		{"a template rendering empty removes the label", seedFormat, "",
			`{__name__="yhat", job="node"}`, ``,
			`{__name__="vmanomaly_yhat", job="node"}`},
		{"an empty override value removes the label", nil, "",
			`{__name__="up", vm_account_id="1"}`, `{vm_account_id=""}`,
			`{__name__="up"}`},
		{"an empty incoming value is dropped", seedFormat, "",
			`{__name__="yhat", for="q1", job=""}`, ``,
			`{__name__="vmanomaly_yhat", for="q1"}`},

		// Ordering is byte order, wherever a name comes from.
		{"names sort in byte order across all sources", map[string]string{"__name__": "a_$VAR", "A": "1", "zz": "2"}, "",
			`{B="x", __name__="yhat", a="y"}`, `{Z="o", m="p"}`,
			`{A="1", B="x", Z="o", __name__="a_yhat", a="y", m="p", zz="2"}`},
		{"an empty series gets only the constants", map[string]string{"__name__": "a_$VAR", "run": "r1"}, "",
			``, ``,
			`{__name__="a_", run="r1"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			format := mustCompile(t, tt.metricFormat, tt.queryKey)
			got, _ := format.Apply(nil, nil, parseSeries(t, tt.src), parseSeries(t, tt.override))
			assertSeries(t, tt.name, got, tt.want)
		})
	}
}

// Apply appends: several series can share one dst and one buf (an arena), and
// values rendered before buf grew keep their content.
func TestApplySharesBuffersAcrossSeries(t *testing.T) {
	format := mustCompile(t, map[string]string{"__name__": "vmanomaly_$VAR", "for": "PREFIX2_$QUERY_KEY"}, "")
	inputs := []string{
		`{__name__="anomaly_score", for="query_name_1", cpu="1"}`,
		`{__name__="yhat_lower", for="query_name_2", cpu="2"}`,
		`{__name__="yhat_upper", for="query_name_3", cpu="3"}`,
	}
	wants := []string{
		`{__name__="vmanomaly_anomaly_score", cpu="1", for="PREFIX2_query_name_1"}`,
		`{__name__="vmanomaly_yhat_lower", cpu="2", for="PREFIX2_query_name_2"}`,
		`{__name__="vmanomaly_yhat_upper", cpu="3", for="PREFIX2_query_name_3"}`,
	}
	var dst []remotewrite.Label
	buf := make([]byte, 0, 4) // far too small: forces buf to grow mid-way
	var ends []int
	for _, in := range inputs {
		dst, buf = format.Apply(dst, buf, parseSeries(t, in), nil)
		ends = append(ends, len(dst))
	}
	start := 0
	for i, end := range ends {
		assertSeries(t, inputs[i], dst[start:end], wants[i])
		start = end
	}
}

// A consumer that appends to an output value must not change the Format's
// constants or the next rendered value.
func TestApplyValuesCannotBeClobbered(t *testing.T) {
	format := mustCompile(t, map[string]string{"__name__": "a_$VAR", "b": "$QUERY_KEY", "c": "const"}, "")
	buf := make([]byte, 0, 1024)
	got, _ := format.Apply(nil, buf, parseSeries(t, `{__name__="x", for="q"}`), nil)
	for _, l := range got {
		_ = append(l.Value, "XXXX"...)
	}
	assertSeries(t, "after appends", got, `{__name__="a_x", b="q", c="const", for="q"}`)
	again, _ := format.Apply(nil, nil, parseSeries(t, `{__name__="x"}`), nil)
	assertSeries(t, "constants intact", again, `{__name__="a_x", c="const"}`)
}

// A Format is shared by all requests; run with -race to check.
func TestApplyConcurrently(t *testing.T) {
	format := mustCompile(t, map[string]string{"__name__": "vmanomaly_$VAR", "for": "$QUERY_KEY"}, "")
	src := parseSeries(t, `{__name__="yhat", for="q1", job="node"}`)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			var dst []remotewrite.Label
			var buf []byte
			for range 100 {
				dst, buf = format.Apply(dst[:0], buf[:0], src, nil)
			}
			assertSeries(t, "concurrent", dst, `{__name__="vmanomaly_yhat", for="q1", job="node"}`)
		})
	}
	wg.Wait()
}

func TestApplyDoesNotAllocateOnceWarm(t *testing.T) {
	format, src, override := benchInput(t)
	dst := make([]remotewrite.Label, 0, 32)
	buf := make([]byte, 0, 256)
	allocs := testing.AllocsPerRun(100, func() {
		dst, buf = format.Apply(dst[:0], buf[:0], src, override)
	})
	if allocs != 0 {
		t.Errorf("Apply allocates %v times per series; want 0", allocs)
	}
}

func BenchmarkApply(b *testing.B) {
	format, src, override := benchInput(b)
	dst := make([]remotewrite.Label, 0, 32)
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		dst, buf = format.Apply(dst[:0], buf[:0], src, override)
	}
}

// benchInput is the standard anomaly workload's shape: an anomaly output with tenant
// labels, 9 labels, renamed by the seed's metric_format plus constants.
func benchInput(t testing.TB) (*Format, []remotewrite.Label, []remotewrite.Label) {
	format := mustCompile(t, map[string]string{
		"__name__": "vmanomaly_$VAR",
		"for":      "$QUERY_KEY",
		"run":      "test_metric_format",
		"config":   "io_vm_single.yaml",
	}, "for")
	src := parseSeries(t, `{__name__="anomaly_score", for="cpu_rate", cpu="1", device="eth0", instance="node-exporter:9100", job="node", mode="idle", vm_account_id="1", vm_project_id="0"}`)
	override := parseSeries(t, `{vm_account_id="5", vm_project_id="0"}`)
	return format, src, override
}

func assertSeries(t testing.TB, what string, got []remotewrite.Label, want string) {
	t.Helper()
	if !remotewrite.LabelsEqual(got, parseSeries(t, want)) {
		t.Errorf("%s:\n got %s\nwant %s", what, formatSeries(got), formatSeries(parseSeries(t, want)))
	}
}
