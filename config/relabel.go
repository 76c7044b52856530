package config

import (
	"fmt"
	"slices"
	"strings"

	"github.com/prometheus/common/model"
	promrelabel "github.com/prometheus/prometheus/model/relabel"
	"gopkg.in/yaml.v3"

	"github.com/scoreproxy/scoreproxy/relabel"
)

// relabelKeys are the keys of one Prometheus relabel rule.
var relabelKeys = []string{"source_labels", "separator", "regex", "modulus", "target_label", "replacement", "action"}

// relabelExample is quoted in errors about the shape of a rule list.
const relabelExample = `[{action: drop, source_labels: [job], regex: "node"}]`

// relabeling reads relabel_configs, write_relabel_configs and
// routing.format_match into cfg.
func (c *checker) relabeling(raw *rawConfig, cfg *Config) {
	cfg.RelabelConfigs = c.relabelConfigs("relabel_configs", raw.RelabelConfigs)
	cfg.WriteRelabelConfigs = c.relabelConfigs("write_relabel_configs", raw.WriteRelabelConfigs)
	cfg.Routing.FormatMatch = c.str("routing.format_match", raw.Routing.FormatMatch, "")
	if cfg.Routing.FormatMatch == "" {
		return
	}
	if _, err := relabel.ParseSelector(cfg.Routing.FormatMatch); err != nil {
		c.errorf("routing.format_match", "%v", err)
	} else if len(cfg.Writer.MetricFormat) == 0 {
		c.warnf("routing.format_match is set but writer.metric_format is not: it has no effect")
	}
}

// relabelConfigs reads a list of Prometheus relabel rules, decoding each
// with model/relabel's own UnmarshalYAML and Validate so that a rule means
// exactly what it means in Prometheus, and reporting problems as
// path[index].key.
func (c *checker) relabelConfigs(path string, v value) []*promrelabel.Config {
	if !v.set() || v.node.ShortTag() == "!!null" {
		return nil
	}
	n := v.node
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n.Kind != yaml.SequenceNode {
		c.errorf(path, "must be a list of Prometheus relabel rules, e.g. %s; got %s", relabelExample, describe(n))
		return nil
	}
	var cfgs []*promrelabel.Config
	for i, item := range n.Content {
		if cfg := c.relabelConfig(fmt.Sprintf("%s[%d]", path, i), item); cfg != nil {
			cfgs = append(cfgs, cfg)
		}
	}
	return cfgs
}

// relabelConfig decodes and validates one rule, or returns nil after
// reporting what is wrong with it.
func (c *checker) relabelConfig(path string, n *yaml.Node) *promrelabel.Config {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n.Kind != yaml.MappingNode {
		c.errorf(path, "must be a relabel rule (a mapping of %s), e.g. %s; got %s",
			strings.Join(relabelKeys, ", "), relabelExample, describe(n))
		return nil
	}
	ok := true
	for i := 0; i+1 < len(n.Content); i += 2 {
		if !c.relabelKey(path, n.Content[i], n.Content[i+1]) {
			ok = false
		}
	}
	if !ok {
		return nil
	}
	cfg := &promrelabel.Config{}
	if err := n.Decode(cfg); err != nil {
		c.errorf(path, "%s", yamlReason(err))
		return nil
	}
	if err := cfg.Validate(model.LegacyValidation); err != nil {
		c.errorf(path, "%v", err)
		return nil
	}
	return cfg
}

// relabelKey checks one key of a rule by decoding it alone, so that an error
// names the key it is about.
func (c *checker) relabelKey(path string, key, val *yaml.Node) bool {
	if !slices.Contains(relabelKeys, key.Value) {
		hint := ""
		if guess := closestKey(key.Value, relabelKeys); guess != "" {
			hint = fmt.Sprintf("did you mean %q? ", guess)
		}
		c.errorf(path, "unknown key %q; %sa relabel rule takes %s", key.Value, hint, strings.Join(relabelKeys, ", "))
		return false
	}
	one := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Content: []*yaml.Node{key, val}}
	if err := one.Decode(&promrelabel.Config{}); err != nil {
		c.errorf(joinPath(path, key.Value), "%s", yamlReason(err))
		return false
	}
	return true
}

// yamlReason strips yaml.v3's "yaml: unmarshal errors:" framing.
func yamlReason(err error) string {
	msg := strings.TrimPrefix(err.Error(), "yaml: unmarshal errors:\n")
	return strings.TrimSpace(strings.TrimPrefix(msg, "yaml: "))
}

// RelabelRules returns relabel_configs and write_relabel_configs compiled
// for the router; nil for a list that is not set.
func (c *Config) RelabelRules() (before, after *relabel.Rules) {
	return relabel.NewRules(c.RelabelConfigs), relabel.NewRules(c.WriteRelabelConfigs)
}

// FormatSelector compiles routing.format_match, which Parse has already
// validated; nil when it is not set (the router then selects the series
// carrying routing.query_key_label).
func (c *Config) FormatSelector() (*relabel.Selector, error) {
	if c.Routing.FormatMatch == "" {
		return nil, nil
	}
	sel, err := relabel.ParseSelector(c.Routing.FormatMatch)
	if err != nil {
		return nil, fmt.Errorf("routing.format_match: %w", err)
	}
	return sel, nil
}
