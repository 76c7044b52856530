package relabel

import (
	"testing"

	"github.com/prometheus/common/model"
	promrelabel "github.com/prometheus/prometheus/model/relabel"
	"gopkg.in/yaml.v3"
)

// mustRules decodes and validates relabel_configs written in YAML, as the
// config package does.
func mustRules(t testing.TB, text string) *Rules {
	t.Helper()
	var cfgs []*promrelabel.Config
	if err := yaml.Unmarshal([]byte(text), &cfgs); err != nil {
		t.Fatalf("relabel configs %s: %v", text, err)
	}
	for i, c := range cfgs {
		if err := c.Validate(model.LegacyValidation); err != nil {
			t.Fatalf("relabel config %d: %v", i, err)
		}
	}
	return NewRules(cfgs)
}

// Every action of Prometheus' relabel_configs, on one series each; "drop"
// means the series is dropped.
func TestRulesApply(t *testing.T) {
	const src = `{__name__="anomaly_score", for="cpu", instance="Node-1:9100", job="node", team="db"}`
	tests := []struct{ name, rules, src, want string }{
		{"replace", `[{source_labels: [instance], regex: "([^:]+):.*", target_label: host, replacement: "$1"}]`, src,
			`{__name__="anomaly_score", for="cpu", host="Node-1", instance="Node-1:9100", job="node", team="db"}`},
		{"replace sets tenant", `[{target_label: vm_account_id, replacement: "42"}]`, src,
			`{__name__="anomaly_score", for="cpu", instance="Node-1:9100", job="node", team="db", vm_account_id="42"}`},
		{"replace to empty removes", `[{target_label: team, replacement: ""}]`, src,
			`{__name__="anomaly_score", for="cpu", instance="Node-1:9100", job="node"}`},
		{"keep matches", `[{action: keep, source_labels: [job], regex: node}]`, src, src},
		{"keep drops", `[{action: keep, source_labels: [job], regex: other}]`, src, "drop"},
		{"drop matches", `[{action: drop, source_labels: [__name__], regex: "anomaly_.*"}]`, src, "drop"},
		{"drop keeps", `[{action: drop, source_labels: [__name__], regex: "up"}]`, src, src},
		{"labeldrop", `[{action: labeldrop, regex: "team|job"}]`, src,
			`{__name__="anomaly_score", for="cpu", instance="Node-1:9100"}`},
		{"labelkeep", `[{action: labelkeep, regex: "__name__|for"}]`, src, `{__name__="anomaly_score", for="cpu"}`},
		{"labelmap", `[{action: labelmap, regex: "t(ea)m", replacement: "x_$1"}]`, src,
			`{__name__="anomaly_score", for="cpu", instance="Node-1:9100", job="node", team="db", x_ea="db"}`},
		{"hashmod", `[{action: hashmod, source_labels: [instance], modulus: 1, target_label: shard}]`, src,
			`{__name__="anomaly_score", for="cpu", instance="Node-1:9100", job="node", shard="0", team="db"}`},
		{"lowercase", `[{action: lowercase, source_labels: [instance], target_label: instance}]`, src,
			`{__name__="anomaly_score", for="cpu", instance="node-1:9100", job="node", team="db"}`},
		{"uppercase", `[{action: uppercase, source_labels: [team], target_label: team}]`, src,
			`{__name__="anomaly_score", for="cpu", instance="Node-1:9100", job="node", team="DB"}`},
		{"keepequal keeps", `[{action: keepequal, source_labels: [a], target_label: b}]`, `{a="1", b="1"}`, `{a="1", b="1"}`},
		{"keepequal drops", `[{action: keepequal, source_labels: [a], target_label: b}]`, `{a="1", b="2"}`, "drop"},
		{"dropequal drops", `[{action: dropequal, source_labels: [a], target_label: b}]`, `{a="1", b="1"}`, "drop"},
		{"dropequal keeps", `[{action: dropequal, source_labels: [a], target_label: b}]`, `{a="1", b="2"}`, `{a="1", b="2"}`},
		{"all labels dropped", `[{action: labeldrop, regex: ".*"}]`, src, "drop"},
		{"rules run in order", `[{target_label: x, replacement: "1"}, {action: drop, source_labels: [x], regex: "1"}]`, src, "drop"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rules := mustRules(t, tt.rules)
			got, _, keep := rules.Apply(nil, nil, parseSeries(t, tt.src))
			if tt.want == "drop" {
				if keep {
					t.Fatalf("kept %s, want it dropped", formatSeries(got))
				}
				return
			}
			if !keep {
				t.Fatalf("dropped, want %s", tt.want)
			}
			assertSeries(t, tt.name, got, tt.want)
		})
	}
}

// Labels produced into a shared buffer stay valid when later calls append to it.
func TestRulesApplyKeepsEarlierOutput(t *testing.T) {
	rules := mustRules(t, `[{target_label: x, replacement: "${1}abcdefgh", source_labels: [a]}]`)
	var buf []byte
	first, buf, _ := rules.Apply(nil, buf, parseSeries(t, `{a="1"}`))
	for i := range 100 {
		_, buf, _ = rules.Apply(nil, buf, parseSeries(t, `{a="`+string(rune('a'+i%26))+`"}`))
	}
	assertSeries(t, "first", first, `{a="1", x="1abcdefgh"}`)
}

func TestNewRulesEmptyIsNil(t *testing.T) {
	if r := NewRules(nil); r != nil || r.Len() != 0 {
		t.Fatalf("NewRules(nil) = %v, want nil with Len 0", r)
	}
}
