package relabel

import (
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/scoreproxy/scoreproxy/remotewrite"
)

// parseSeries turns the label set notation of the writer docs into a sorted
// label list, so tests can quote the docs verbatim. It accepts
// `{a="x", b=1}` as well as the bare `a=x, b=y` of the docs' prose; "{}" and
// "" are the empty set.
func parseSeries(t testing.TB, s string) []remotewrite.Label {
	t.Helper()
	s = strings.TrimSpace(s)
	s = strings.TrimSuffix(strings.TrimPrefix(s, "{"), "}")
	var labels []remotewrite.Label
	for _, pair := range strings.Split(s, ",") {
		pair = strings.TrimSpace(pair)
		if pair == "" {
			continue
		}
		name, value, ok := strings.Cut(pair, "=")
		if !ok {
			t.Fatalf("parseSeries(%q): %q has no '='", s, pair)
		}
		if unquoted, err := strconv.Unquote(value); err == nil {
			value = unquoted
		}
		labels = append(labels, remotewrite.Label{Name: []byte(name), Value: []byte(value)})
	}
	slices.SortFunc(labels, func(a, b remotewrite.Label) int { return strings.Compare(string(a.Name), string(b.Name)) })
	return labels
}

// formatSeries renders labels as `{a="x", b="y"}` in their given order, for
// readable failure messages that also show an ordering mistake.
func formatSeries(labels []remotewrite.Label) string {
	parts := make([]string, len(labels))
	for i, l := range labels {
		parts[i] = string(l.Name) + "=" + strconv.Quote(string(l.Value))
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// mustCompile compiles a metric_format that the test expects to be valid.
func mustCompile(t testing.TB, metricFormat map[string]string, queryKeyLabel string) *Format {
	t.Helper()
	f, err := Compile(metricFormat, queryKeyLabel)
	if err != nil {
		t.Fatalf("Compile(%v): %v", metricFormat, err)
	}
	return f
}
