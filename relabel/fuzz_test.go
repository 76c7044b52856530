package relabel

import (
	"bytes"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/scoreproxy/scoreproxy/remotewrite"
)

// FuzzFormatApply compiles an arbitrary metric_format and, when it is
// valid, applies it to an arbitrary series with an arbitrary override,
// checking Apply against a plain reference: every name of the format, the
// override and the series appears once, in order, with the value of the
// first of those that has it (templates rendered by replacing $VAR and
// $QUERY_KEY left to right), and labels whose value is empty are left out.
// format, series and override are "name=value" lines.
func FuzzFormatApply(f *testing.F) {
	f.Add("__name__=vmanomaly_$VAR\nfor=$QUERY_KEY\nrun=test", "__name__=anomaly_score\nfor=q1\ninstance=a:9100", "vm_account_id=5\nvm_project_id=0", "for")
	f.Add("__name__=$VAR$VAR$QUERY_KEY$", "__name__=y\nquery=$VAR", "", "query")
	f.Add("__name__=x_$VAR\njob=", "__name__=yhat\njob=node", "", "for")
	f.Add("__name__=$QUERY_KEY", "", "", "for")
	f.Fuzz(func(t *testing.T, format, series, override, queryKey string) {
		mf, fm, err := compileLines(format, queryKey)
		if err != nil {
			return
		}
		src, ovr := pairs(series), pairs(override)
		got, _ := fm.Apply(nil, nil, src, ovr)
		want := referenceApply(mf, cmpOr(queryKey, DefaultQueryKeyLabel), src, ovr)
		if remotewrite.FormatLabels(got) != remotewrite.FormatLabels(want) || len(got) != len(want) {
			t.Fatalf("format %q, series %q, override %q:\n got %s\nwant %s", mf, series, override,
				remotewrite.FormatLabels(got), remotewrite.FormatLabels(want))
		}
		for i := 1; i < len(got); i++ {
			if bytes.Compare(got[i-1].Name, got[i].Name) >= 0 {
				t.Fatalf("output not sorted and unique: %s", remotewrite.FormatLabels(got))
			}
		}
	})
}

// compileLines compiles the metric_format written as "name=value" lines.
func compileLines(format, queryKey string) (map[string]string, *Format, error) {
	mf := map[string]string{}
	for _, l := range pairs(format) {
		mf[string(l.Name)] = string(l.Value)
	}
	fm, err := Compile(mf, queryKey)
	return mf, fm, err
}

// pairs parses "name=value" lines into sorted labels with unique, non-empty
// names (the decoder's guarantee that Apply relies on).
func pairs(s string) []remotewrite.Label {
	var out []remotewrite.Label
	for line := range strings.SplitSeq(s, "\n") {
		name, value, _ := strings.Cut(line, "=")
		if name == "" || slices.ContainsFunc(out, func(l remotewrite.Label) bool { return string(l.Name) == name }) {
			continue
		}
		out = append(out, remotewrite.Label{Name: []byte(name), Value: []byte(value)})
	}
	slices.SortFunc(out, func(a, b remotewrite.Label) int { return bytes.Compare(a.Name, b.Name) })
	return out
}

var placeholderRE = regexp.MustCompile(`\$VAR|\$QUERY_KEY`)

// referenceApply is Apply written for clarity, not speed.
func referenceApply(mf map[string]string, queryKey string, src, override []remotewrite.Label) []remotewrite.Label {
	value := func(labels []remotewrite.Label, name string) (string, bool) {
		for _, l := range labels {
			if string(l.Name) == name {
				return string(l.Value), true
			}
		}
		return "", false
	}
	varValue, _ := value(src, metricName)
	queryValue, _ := value(src, queryKey)
	names := map[string]bool{}
	for k := range mf {
		names[k] = true
	}
	for _, l := range append(slices.Clone(src), override...) {
		names[string(l.Name)] = true
	}
	var out []remotewrite.Label
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for n := range names {
			if !yield(n) {
				return
			}
		}
	}) {
		v, ok := mf[name]
		if ok {
			v = placeholderRE.ReplaceAllStringFunc(v, func(p string) string {
				if p == VarPlaceholder {
					return varValue
				}
				return queryValue
			})
		} else if v, ok = value(override, name); !ok {
			v, _ = value(src, name)
		}
		if v != "" {
			out = append(out, remotewrite.Label{Name: []byte(name), Value: []byte(v)})
		}
	}
	return out
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
