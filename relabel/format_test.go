package relabel

import (
	"strings"
	"testing"
)

func TestCompileErrors(t *testing.T) {
	tests := []struct {
		name         string
		metricFormat map[string]string
		queryKey     string
		want         []string // each must appear in the error
	}{
		{"__name__ is required", map[string]string{"for": "$QUERY_KEY"}, "",
			[]string{`metric_format must have a "__name__" key, e.g. __name__: "vmanomaly_$VAR"`}},
		{"__name__ needs $VAR", map[string]string{"__name__": "vmanomaly"}, "",
			[]string{`metric_format.__name__: "vmanomaly" has no $VAR`, "collide", "add $VAR"}},
		{"keys are label names", map[string]string{"__name__": "a_$VAR", "1st": "x", "with-dash": "y"}, "",
			[]string{`metric_format: key "1st" is not a valid label name`, `metric_format: key "with-dash" is not a valid label name`}},
		{"an empty key is not a label name", map[string]string{"__name__": "a_$VAR", "": "x"}, "",
			[]string{`metric_format: key "" is not a valid label name`}},
		{"all problems at once", map[string]string{"bad key": "x"}, "",
			[]string{`must have a "__name__" key`, `key "bad key"`}},
		{"the query key label is a label name", nil, "for-query",
			[]string{`query key label "for-query" is not a valid label name`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Compile(tt.metricFormat, tt.queryKey)
			if err == nil {
				t.Fatalf("Compile(%v) succeeded; want an error", tt.metricFormat)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not contain %q", err, w)
				}
			}
		})
	}
}

func TestIdentity(t *testing.T) {
	tests := []struct {
		metricFormat map[string]string
		want         bool
	}{
		{nil, true},
		{map[string]string{}, true},
		{map[string]string{"__name__": "vmanomaly_$VAR"}, false},
	}
	for _, tt := range tests {
		if got := mustCompile(t, tt.metricFormat, "").Identity(); got != tt.want {
			t.Errorf("Compile(%v).Identity() = %v; want %v", tt.metricFormat, got, tt.want)
		}
	}
}

func TestQueryKeyChecks(t *testing.T) {
	tests := []struct {
		metricFormat    map[string]string
		queryKey        string
		hasKey, usesKey bool
	}{
		{map[string]string{"__name__": "a_$VAR", "for": "$QUERY_KEY"}, "for", true, true},
		{map[string]string{"__name__": "a_$VAR", "for": "$QUERY_KEY"}, "", true, true},
		{map[string]string{"__name__": "a_$VAR"}, "for", false, false},
		{map[string]string{"__name__": "a_$VAR", "for": "static"}, "for", true, false},
		{map[string]string{"__name__": "a_$VAR", "query": "$QUERY_KEY"}, "alias", false, true},
	}
	for _, tt := range tests {
		if got := HasQueryKey(tt.metricFormat, tt.queryKey); got != tt.hasKey {
			t.Errorf("HasQueryKey(%v, %q) = %v; want %v", tt.metricFormat, tt.queryKey, got, tt.hasKey)
		}
		if got := UsesQueryKey(tt.metricFormat); got != tt.usesKey {
			t.Errorf("UsesQueryKey(%v) = %v; want %v", tt.metricFormat, got, tt.usesKey)
		}
	}
}

func TestValidLabelName(t *testing.T) {
	for name, want := range map[string]bool{
		"for": true, "__name__": true, "_": true, "A9_b": true, "vm_account_id": true,
		"": false, "9a": false, "a-b": false, "a.b": false, "ä": false, "a b": false,
	} {
		if got := ValidLabelName(name); got != want {
			t.Errorf("ValidLabelName(%q) = %v; want %v", name, got, want)
		}
	}
}
