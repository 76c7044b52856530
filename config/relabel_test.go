package config

import (
	"strings"
	"testing"
)

const relabelDS = "writer:\n  datasource_url: http://localhost:8428/\n  metric_format:\n    __name__: vmanomaly_$VAR\n    for: $QUERY_KEY\n"

func TestRelabelConfigsParse(t *testing.T) {
	cfg, warnings, err := Parse([]byte(relabelDS + `
routing:
  format_match: '{for!="", job=~"vmanomaly.*"}'
relabel_configs:
  - source_labels: [team]
    regex: db
    target_label: vm_account_id
    replacement: "42"
  - action: drop
    source_labels: [__name__]
    regex: "go_.*"
write_relabel_configs:
  - action: labeldrop
    regex: "preset|scheduler"
`))
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 0 {
		t.Errorf("warnings: %v", warnings)
	}
	if len(cfg.RelabelConfigs) != 2 || len(cfg.WriteRelabelConfigs) != 1 {
		t.Fatalf("got %d relabel and %d write relabel rules, want 2 and 1", len(cfg.RelabelConfigs), len(cfg.WriteRelabelConfigs))
	}
	r0 := cfg.RelabelConfigs[0]
	if r0.Action != "replace" || r0.TargetLabel != "vm_account_id" || r0.Replacement != "42" || r0.Separator != ";" {
		t.Errorf("relabel_configs[0] = %+v, want a replace rule with Prometheus defaults", r0)
	}
	if got := cfg.WriteRelabelConfigs[0].Regex.String(); got != "preset|scheduler" {
		t.Errorf("write_relabel_configs[0].regex = %q", got)
	}
	before, after := cfg.RelabelRules()
	if before.Len() != 2 || after.Len() != 1 {
		t.Errorf("RelabelRules lengths %d, %d", before.Len(), after.Len())
	}
	sel, err := cfg.FormatSelector()
	if err != nil || sel == nil || sel.String() != `{for!="", job=~"vmanomaly.*"}` {
		t.Errorf("FormatSelector() = %v, %v", sel, err)
	}
}

func TestRelabelConfigsAbsent(t *testing.T) {
	cfg, _, err := Parse([]byte(relabelDS))
	if err != nil {
		t.Fatal(err)
	}
	before, after := cfg.RelabelRules()
	sel, _ := cfg.FormatSelector()
	if before != nil || after != nil || sel != nil {
		t.Errorf("without the keys: rules %v %v, selector %v; want all nil", before, after, sel)
	}
}

// Every relabeling error names the key and index it is about; all are
// reported together.
func TestRelabelConfigsErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{"list", "relabel_configs: {action: drop}\n",
			[]string{`relabel_configs: must be a list of Prometheus relabel rules, e.g.`}},
		{"rule is a mapping", "relabel_configs: [drop]\n",
			[]string{`relabel_configs[0]: must be a relabel rule`}},
		{"bad regex", "relabel_configs:\n  - action: keep\n  - action: drop\n  - action: drop\n    regex: \"(\"\n",
			[]string{`relabel_configs[2].regex: `, "missing closing )"}},
		{"unknown action", "write_relabel_configs:\n  - action: rename\n",
			[]string{`write_relabel_configs[0].action: unknown relabel action "rename"`}},
		{"unknown key with hint", "relabel_configs:\n  - action: drop\n    source_label: [a]\n",
			[]string{`relabel_configs[0]: unknown key "source_label"; did you mean "source_labels"?`}},
		{"modulus is a number", "relabel_configs:\n  - action: hashmod\n    modulus: many\n    target_label: x\n",
			[]string{`relabel_configs[0].modulus: `, "many"}},
		{"Validate: hashmod needs modulus", "relabel_configs:\n  - action: hashmod\n    target_label: x\n",
			[]string{`relabel_configs[0]: relabel configuration for hashmod requires non-zero modulus`}},
		{"Validate: replace needs target", "write_relabel_configs:\n  - action: replace\n    target_label: \"\"\n",
			[]string{`write_relabel_configs[0]: relabel configuration for replace action requires 'target_label' value`}},
		{"format_match", "routing:\n  format_match: '{for!=}'\n",
			[]string{`routing.format_match: "{for!=}" is not a series selector`, `e.g. {for!=""}`}},
		{"all reported", "relabel_configs: [{action: nope}]\nwrite_relabel_configs: [{regex: \"[\"}]\n",
			[]string{`relabel_configs[0].action: unknown relabel action "nope"`, `write_relabel_configs[0].regex: `}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := Parse([]byte(relabelDS + tt.yaml))
			if err == nil {
				t.Fatal("Parse accepted it")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\nlacks %q", err, w)
				}
			}
		})
	}
}

func TestFormatMatchWithoutMetricFormatWarns(t *testing.T) {
	_, warnings, err := Parse([]byte("writer:\n  datasource_url: http://localhost:8428/\nrouting:\n  format_match: '{}'\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "no effect") {
		t.Errorf("warnings = %v, want one saying format_match has no effect", warnings)
	}
}
