package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Parse decodes and validates a configuration, fills in the defaults and
// returns it with warnings about settings that are accepted but probably not
// what the user wants. On error the Config is nil and the error lists every
// problem found (errors.Join), each naming its full key path.
func Parse(data []byte) (*Config, []string, error) {
	if err := checkDocument(data); err != nil {
		return nil, nil, err
	}
	var raw rawConfig
	keyErrs, err := decodeStrict(data, &raw)
	if err != nil {
		return nil, nil, err
	}
	c := &checker{}
	cfg := c.config(&raw)
	if errs := append(keyErrs, c.errs...); len(errs) > 0 {
		sortByKey(errs)
		return nil, nil, errors.Join(errs...)
	}
	return cfg, c.warnings, nil
}

// checkDocument rejects what would make the typed decoding misleading:
// invalid YAML, several documents, and keys set twice (yaml.v3 would skip the
// whole mapping, and every key in it would then look missing).
func checkDocument(data []byte) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil // empty file: the checks report what is required
		}
		return fmt.Errorf("invalid YAML: %w", err)
	}
	if err := dec.Decode(new(yaml.Node)); !errors.Is(err, io.EOF) {
		return errors.New("the config has more than one YAML document (---); keep one")
	}
	var errs []error
	findDuplicateKeys(&doc, "", &errs)
	return errors.Join(errs...)
}

// findDuplicateKeys walks the tree and reports every mapping key set twice.
func findDuplicateKeys(n *yaml.Node, path string, errs *[]error) {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			findDuplicateKeys(c, path, errs)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			findDuplicateKeys(c, fmt.Sprintf("%s[%d]", path, i), errs)
		}
	case yaml.MappingNode:
		firstLine := map[string]int{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			key, val := n.Content[i], n.Content[i+1]
			keyPath := joinPath(path, key.Value)
			if line, dup := firstLine[key.Value]; dup {
				*errs = append(*errs, fmt.Errorf("%s: set twice (lines %d and %d); keep one", keyPath, line, key.Line))
			} else {
				firstLine[key.Value] = key.Line
			}
			findDuplicateKeys(val, keyPath, errs)
		}
	}
}

// decodeStrict decodes data into raw, rejecting unknown keys. Unknown keys
// come back as keyErrs, translated, to be reported along with the validation
// errors; any other decoding problem (a section that is not a mapping) is
// returned as err, since the rest of the checks would be noise.
func decodeStrict(data []byte, raw *rawConfig) (keyErrs []error, err error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	err = dec.Decode(raw)
	if err == nil || errors.Is(err, io.EOF) {
		return nil, nil
	}
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return nil, fmt.Errorf("invalid YAML: %w", err)
	}
	var other []error
	for _, msg := range te.Errors {
		if e, ok := unknownKeyError(msg); ok {
			keyErrs = append(keyErrs, e)
		} else {
			other = append(other, typeError(msg))
		}
	}
	if len(other) > 0 {
		return nil, errors.Join(append(other, keyErrs...)...)
	}
	return keyErrs, nil
}

// yaml.v3's messages, as of v3.0.1.
var (
	unknownFieldRE = regexp.MustCompile(`^line (\d+): field (.+) not found in type (\S+)$`)
	mismatchRE     = regexp.MustCompile("^line (\\d+): cannot unmarshal (!!\\w+)(?: `(.*)`)? into (\\S+)$")
)

// unknownKeyError translates `line 4: field tenant not found in type
// config.rawWriter` into `writer: unknown key "tenant" (line 4); valid keys
// are: ...; did you mean "tenant_id"?`.
func unknownKeyError(msg string) (error, bool) {
	m := unknownFieldRE.FindStringSubmatch(msg)
	if m == nil {
		return nil, false
	}
	sec, ok := sectionsByType[m[3]]
	if !ok {
		return nil, false
	}
	line, key := m[1], m[2]
	where := sec.path + ": unknown key"
	if sec.path == "" {
		where = "unknown top-level key"
	}
	text := fmt.Sprintf("%s %q (line %s); valid keys are: %s", where, key, line, joinKeys(sec.keys))
	if hint := suggest(key, sec); hint != "" {
		text += "; " + hint
	}
	return errors.New(text), true
}

// typeError translates a section written as something else than a mapping,
// e.g. `writer: http://...`; other messages pass through unchanged.
func typeError(msg string) error {
	m := mismatchRE.FindStringSubmatch(msg)
	if m == nil {
		return errors.New(msg)
	}
	sec, ok := sectionsByType[m[4]]
	if !ok {
		return errors.New(msg)
	}
	got := m[2]
	if m[3] != "" {
		got += " " + strconv.Quote(m[3])
	}
	if sec.path == "" {
		return fmt.Errorf("the config must be a mapping of keys (%s), got %s (line %s)", joinKeys(sec.keys), got, m[1])
	}
	return fmt.Errorf("%s: must be a mapping of keys (%s), got %s (line %s)", sec.path, joinKeys(sec.keys), got, m[1])
}

// prefixErrors prefixes every error joined in err, keeping them separate.
func prefixErrors(prefix string, err error) error {
	multi, ok := err.(interface{ Unwrap() []error })
	if !ok {
		return fmt.Errorf("%s%w", prefix, err)
	}
	var errs []error
	for _, e := range multi.Unwrap() {
		errs = append(errs, prefixErrors(prefix, e))
	}
	return errors.Join(errs...)
}

// sortByKey orders errors as the keys they name appear in the file (the
// top-level key order of the schema), keeping the check order within a key.
func sortByKey(errs []error) {
	slices.SortStableFunc(errs, func(a, b error) int { return keyRank(a.Error()) - keyRank(b.Error()) })
}

// keyRank is 1 + the position of the top-level key msg starts with, or 0 for
// messages about the file as a whole.
func keyRank(msg string) int {
	for i, key := range sections[0].keys {
		if rest, ok := strings.CutPrefix(msg, key); ok && rest != "" && strings.ContainsRune(":. [", rune(rest[0])) {
			return i + 1
		}
	}
	return 0
}

func joinPath(parent, key string) string {
	if parent == "" {
		return key
	}
	return parent + "." + key
}
