package relabel

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/scoreproxy/scoreproxy/remotewrite"
)

// The placeholders of vmanomaly's metric_format.
const (
	// VarPlaceholder is replaced by the model output variable, i.e. the incoming __name__.
	VarPlaceholder = "$VAR"
	// QueryKeyPlaceholder is replaced by the query alias, i.e. the value of the
	// incoming query key label.
	QueryKeyPlaceholder = "$QUERY_KEY"
	// DefaultQueryKeyLabel is the incoming label that carries the query alias
	// when the configuration does not name another one.
	DefaultQueryKeyLabel = "for"
	// metricName is the reserved label that holds the metric name.
	metricName = "__name__"
)

// segKind says what one piece of a template stands for.
type segKind uint8

const (
	segLiteral  segKind = iota // text copied as is
	segVar                     // the incoming __name__ value
	segQueryKey                // the incoming query key label value
)

// segment is one piece of a pre-split template, so that Apply only appends
// and never searches for placeholders.
type segment struct {
	kind segKind
	lit  []byte // the text, for segLiteral only
}

// output is one compiled metric_format key.
type output struct {
	name []byte
	// constant is the value when the template has no placeholder; it is
	// emitted without copying. Its capacity equals its length, so a consumer
	// that appends to an output Value cannot write into the Format.
	constant []byte
	// segs is the split template; nil when the template is constant.
	segs []segment
	// field is the whole encoded label field of a constant output (see
	// remotewrite.AppendLabelFields), nil for a template or an empty
	// constant: AppendFields copies it as it is.
	field []byte
}

// Format is a compiled metric_format. Safe for concurrent use: Apply only
// reads it.
type Format struct {
	// outputs are the metric_format keys, sorted by name (byte order) so
	// Apply can merge them with the sorted incoming labels.
	outputs []output
	// queryKey is the incoming label whose value replaces $QUERY_KEY.
	queryKey string
	// needVar and needQuery say whether Apply must look up the incoming
	// __name__ and query key values at all.
	needVar, needQuery bool
}

// Compile validates and pre-parses metric_format. metricFormat may be nil/empty: then the Format
// is the identity (Identity() true) and Apply only merges overrides.
// queryKeyLabel is the incoming label whose value is $QUERY_KEY (config default "for");
// "" means DefaultQueryKeyLabel.
//
// All problems are reported at once (errors.Join), each message starting with
// "metric_format" so that a caller can prefix the section it came from.
func Compile(metricFormat map[string]string, queryKeyLabel string) (*Format, error) {
	if queryKeyLabel == "" {
		queryKeyLabel = DefaultQueryKeyLabel
	}
	if !ValidLabelName(queryKeyLabel) {
		return nil, fmt.Errorf("query key label %q is not a valid label name; %s", queryKeyLabel, labelNameRule)
	}
	if err := validate(metricFormat); err != nil {
		return nil, err
	}
	f := &Format{queryKey: queryKeyLabel}
	for _, name := range sortedKeys(metricFormat) {
		out := compileOutput(name, metricFormat[name])
		f.needVar = f.needVar || hasKind(out.segs, segVar)
		f.needQuery = f.needQuery || hasKind(out.segs, segQueryKey)
		f.outputs = append(f.outputs, out)
	}
	return f, nil
}

// Identity reports whether the Format leaves incoming labels as they are
// (no metric_format), so a caller may skip Apply when there is no override either.
func (f *Format) Identity() bool { return len(f.outputs) == 0 }

// validate checks the rules of the writer docs: a __name__ key whose value
// has $VAR (or every output of a series would get the same name), and keys
// that are label names.
func validate(metricFormat map[string]string) error {
	if len(metricFormat) == 0 {
		return nil
	}
	var errs []error
	name, ok := metricFormat[metricName]
	switch {
	case !ok:
		errs = append(errs, errors.New(`metric_format must have a "__name__" key, e.g. __name__: "vmanomaly_$VAR"`))
	case !strings.Contains(name, VarPlaceholder):
		errs = append(errs, fmt.Errorf("metric_format.__name__: %q has no $VAR: all outputs of a series "+
			"(anomaly_score, yhat, yhat_lower, ...) would get the same name and collide; "+
			"add $VAR, e.g. \"vmanomaly_$VAR\"", name))
	}
	for _, key := range sortedKeys(metricFormat) {
		if !ValidLabelName(key) {
			errs = append(errs, fmt.Errorf("metric_format: key %q is not a valid label name; %s", key, labelNameRule))
		}
	}
	return errors.Join(errs...)
}

// compileOutput pre-splits one template and converts its strings to bytes once.
func compileOutput(name, template string) output {
	out := output{name: constBytes(name)}
	segs := split(template)
	if !hasKind(segs, segVar) && !hasKind(segs, segQueryKey) {
		out.constant = constBytes(template)
		if len(out.constant) > 0 {
			out.field = remotewrite.AppendLabelFields(nil, []remotewrite.Label{{Name: out.name, Value: out.constant}})
		}
		return out
	}
	out.segs = segs
	return out
}

// split cuts a template into literal and placeholder segments, scanning left
// to right like Python's str.replace: "$VAR" and "$QUERY_KEY" may each appear
// any number of times; anything else, "$" included, is literal.
func split(template string) []segment {
	var segs []segment
	lit := 0 // start of the pending literal
	for i := 0; i < len(template); {
		kind, n := placeholderAt(template[i:])
		if n == 0 {
			i++
			continue
		}
		if lit < i {
			segs = append(segs, segment{kind: segLiteral, lit: constBytes(template[lit:i])})
		}
		segs = append(segs, segment{kind: kind})
		i += n
		lit = i
	}
	if lit < len(template) {
		segs = append(segs, segment{kind: segLiteral, lit: constBytes(template[lit:])})
	}
	return segs
}

// placeholderAt returns the placeholder s starts with and its length, or 0.
func placeholderAt(s string) (segKind, int) {
	switch {
	case strings.HasPrefix(s, VarPlaceholder):
		return segVar, len(VarPlaceholder)
	case strings.HasPrefix(s, QueryKeyPlaceholder):
		return segQueryKey, len(QueryKeyPlaceholder)
	}
	return segLiteral, 0
}

func hasKind(segs []segment, kind segKind) bool {
	return slices.ContainsFunc(segs, func(s segment) bool { return s.kind == kind })
}

// constBytes copies s into a slice whose capacity equals its length, so an
// append by a consumer reallocates instead of writing into shared memory.
func constBytes(s string) []byte {
	b := []byte(s)
	return b[:len(b):len(b)]
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys) // Go string order is byte order, the order of sorted label sets
	return keys
}
