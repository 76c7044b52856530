package relabel

import (
	"strings"
	"testing"
)

func TestSelectorMatches(t *testing.T) {
	const model = `{__name__="anomaly_score", for="cpu", job="vmanomaly"}`
	const scrape = `{__name__="up", instance="h:9100", job="node"}`
	tests := []struct {
		selector      string
		model, scrape bool // whether each series is selected
	}{
		{`{for!=""}`, true, false},
		{`{for=""}`, false, true},
		{`{}`, true, true},
		{`up`, false, true},
		{`up{}`, false, true},
		{`anomaly_score{for="cpu"}`, true, false},
		{`{job=~"vm.*"}`, true, false},
		{`{job=~"vm"}`, false, false}, // anchored: must match the whole value
		{`{job!~"vm.*"}`, false, true},
		{`{job=~'node|vmanomaly', __name__!="up"}`, true, false},
		{"{job=`node`,}", false, true},
		{` { job = "node" , instance =~ "h:.*" } `, false, true},
		{`{missing=~".*"}`, true, true}, // an absent label is the empty value
		{`{missing=~".+"}`, false, false},
		{`{job="a\"b"}`, false, false},
	}
	for _, tt := range tests {
		sel, err := ParseSelector(tt.selector)
		if err != nil {
			t.Errorf("ParseSelector(%s): %v", tt.selector, err)
			continue
		}
		if got := sel.Matches(parseSeries(t, model)); got != tt.model {
			t.Errorf("%s on model output = %v, want %v", tt.selector, got, tt.model)
		}
		if got := sel.Matches(parseSeries(t, scrape)); got != tt.scrape {
			t.Errorf("%s on scrape series = %v, want %v", tt.selector, got, tt.scrape)
		}
	}
}

func TestQueryKeySelector(t *testing.T) {
	sel := QueryKeySelector("query")
	if sel.String() != `{query!=""}` {
		t.Errorf("String() = %s", sel.String())
	}
	if !sel.Matches(parseSeries(t, `{__name__="y", query="q1"}`)) || sel.Matches(parseSeries(t, `{__name__="y", for="q1"}`)) {
		t.Error("QueryKeySelector(query) must select exactly the series with a query label")
	}
}

func TestParseSelectorErrors(t *testing.T) {
	tests := []struct{ selector, want string }{
		{``, "empty"},
		{`{for!=""`, "expected , or }"},
		{`{for}`, "expected =, !=, =~ or !~"},
		{`{for=abc}`, "expected a quoted value"},
		{`{for="abc}`, "unterminated"},
		{`{job=~"("}`, "bad regular expression"},
		{`{="x"}`, "expected a label name"},
		{`{a="x"} extra`, "after }"},
		{`1abc`, "unexpected"},
		{`{a="x" b="y"}`, "expected , or }"},
	}
	for _, tt := range tests {
		_, err := ParseSelector(tt.selector)
		if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "e.g.") {
			t.Errorf("ParseSelector(%s) error = %v, want one containing %q and an example", tt.selector, err, tt.want)
		}
	}
}

func TestSelectorMatchesDoesNotAllocate(t *testing.T) {
	sel, err := ParseSelector(`{for!="", job=~"vm.*", team!~"x|y"}`)
	if err != nil {
		t.Fatal(err)
	}
	series := parseSeries(t, `{__name__="anomaly_score", for="cpu", job="vmanomaly", team="db"}`)
	if n := testing.AllocsPerRun(100, func() { sel.Matches(series) }); n != 0 {
		t.Errorf("Matches allocates %v times per call, want 0", n)
	}
}
