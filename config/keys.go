package config

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
)

// section is one mapping of the file: where it sits and which keys it takes.
type section struct {
	path string   // "" for the top level, else e.g. "writer"
	keys []string // in the order of the raw struct, which is the documented order
}

// sections lists every mapping of the file, in documented order.
var sections = []section{
	{"", yamlKeys(rawConfig{})},
	{"writer", yamlKeys(rawWriter{})},
	{"routing", yamlKeys(rawRouting{})},
	{"limits", yamlKeys(rawLimits{})},
	{"server", yamlKeys(rawServer{})},
	{"queue", yamlKeys(rawQueue{})},
}

// sectionsByType maps the type names in yaml.v3's messages to sections.
var sectionsByType = map[string]section{
	"config.rawConfig":  sections[0],
	"config.rawWriter":  sections[1],
	"config.rawRouting": sections[2],
	"config.rawLimits":  sections[3],
	"config.rawServer":  sections[4],
	"config.rawQueue":   sections[5],
}

// vmanomalySections are the other top-level sections of a vmanomaly config,
// which a user may paste along with writer:.
var vmanomalySections = []string{"reader", "models", "model", "schedulers", "scheduler", "monitoring", "settings", "preset"}

// yamlKeys lists the yaml tag names of a struct's fields.
func yamlKeys(v any) []string {
	t := reflect.TypeOf(v)
	keys := make([]string, 0, t.NumField())
	for i := range t.NumField() {
		tag := t.Field(i).Tag.Get("yaml")
		if strings.HasSuffix(tag, ",inline") { // a group of keys in a struct of its own
			keys = append(keys, yamlKeys(reflect.New(t.Field(i).Type).Elem().Interface())...)
			continue
		}
		keys = append(keys, strings.Split(tag, ",")[0])
	}
	return keys
}

func joinKeys(keys []string) string { return strings.Join(keys, ", ") }

// suggest returns a hint for an unknown key in sec, or "": a key of sec that
// is close to it, the section it belongs to, or that vmanomaly's other
// sections are not read.
func suggest(key string, sec section) string {
	if guess := closestKey(key, sec.keys); guess != "" {
		return fmt.Sprintf("did you mean %q?", guess)
	}
	for _, other := range sections {
		if other.path != sec.path && slices.Contains(other.keys, key) {
			return fmt.Sprintf("did you mean %s? it belongs under %s", joinPath(other.path, key), sectionName(other.path))
		}
	}
	if sec.path == "" && slices.Contains(vmanomalySections, key) {
		return "scoreproxy reads only the writer: section of a vmanomaly config; remove " + key + ":"
	}
	return ""
}

func sectionName(path string) string {
	if path == "" {
		return "the top level"
	}
	return path + ":"
}

// closestKey returns the valid key that key is most likely a typo of, or "":
// the same key in another case or with dashes, else one within two edits,
// else the one sharing the longest prefix, if that is at least half of key.
func closestKey(key string, valid []string) string {
	norm := strings.ToLower(strings.ReplaceAll(key, "-", "_"))
	best, bestDist := "", 3
	for _, v := range valid {
		if norm == v {
			return v
		}
		if d := editDistance(norm, v); d < bestDist {
			best, bestDist = v, d
		}
	}
	if best != "" {
		return best
	}
	bestPrefix := max(4, (len(norm)+1)/2) - 1
	for _, v := range valid {
		if p := commonPrefix(norm, v); p > bestPrefix {
			best, bestPrefix = v, p
		}
	}
	return best
}

func commonPrefix(a, b string) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}

// editDistance is the Levenshtein distance between a and b (bytes).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
