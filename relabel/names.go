package relabel

import "strings"

// labelNameRule is the advice appended to every invalid label name error.
const labelNameRule = "a label name is letters, digits and underscores, not starting with a digit ([a-zA-Z_][a-zA-Z0-9_]*)"

// ValidLabelName reports whether s follows the Prometheus label name rules
// `[a-zA-Z_][a-zA-Z0-9_]*`; VictoriaMetrics accepts more, but a name outside
// these rules breaks PromQL selectors and Prometheus-compatible consumers.
func ValidLabelName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		letter := c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
		if !letter && (i == 0 || c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// HasQueryKey reports whether metric_format sets the query key label itself
// (the writer docs make `for` mandatory). When it does not, the incoming label
// is inherited as is, so queries stay apart only if every producer sends it.
func HasQueryKey(metricFormat map[string]string, queryKeyLabel string) bool {
	if queryKeyLabel == "" {
		queryKeyLabel = DefaultQueryKeyLabel
	}
	_, ok := metricFormat[queryKeyLabel]
	return ok
}

// UsesQueryKey reports whether any metric_format value contains $QUERY_KEY.
// When metric_format replaces the query key label but no value uses
// $QUERY_KEY, outputs of different queries for one series are bound to collide.
func UsesQueryKey(metricFormat map[string]string) bool {
	for _, v := range metricFormat {
		if strings.Contains(v, QueryKeyPlaceholder) {
			return true
		}
	}
	return false
}
