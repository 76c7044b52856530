package relabel

import (
	"bytes"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/scoreproxy/scoreproxy/remotewrite"
)

// matchOp is the operator of one label matcher.
type matchOp uint8

const (
	opEqual     matchOp = iota // =
	opNotEqual                 // !=
	opRegexp                   // =~
	opNotRegexp                // !~
)

var opNames = [...]string{"=", "!=", "=~", "!~"}

// matcher is one `name op "value"` of a series selector.
type matcher struct {
	name  string
	op    matchOp
	value []byte         // for = and !=
	re    *regexp.Regexp // for =~ and !~, anchored at both ends as in PromQL
}

// Selector is a compiled Prometheus series selector such as
// `{for!=""}` or `anomaly_score{job=~"vmanomaly.*"}`: it selects the series
// whose labels satisfy every matcher, a missing label counting as the empty
// value, exactly as in PromQL. `{}` selects every series. Safe for
// concurrent use; Matches does not allocate.
type Selector struct {
	text     string
	matchers []matcher
}

// QueryKeySelector returns `{<queryKey>!=""}`: the series that carry the
// query key label, i.e. model outputs. It is the default of
// routing.format_match, so that ordinary Prometheus series sent through the
// same proxy keep their names.
func QueryKeySelector(queryKey string) *Selector {
	if queryKey == "" {
		queryKey = DefaultQueryKeyLabel
	}
	return &Selector{text: "{" + queryKey + `!=""}`, matchers: []matcher{{name: queryKey, op: opNotEqual, value: []byte{}}}}
}

// String returns the selector as written.
func (s *Selector) String() string { return s.text }

// Matches reports whether the series with sorted labels ls is selected.
func (s *Selector) Matches(ls []remotewrite.Label) bool {
	for i := range s.matchers {
		if !s.matchers[i].matches(valueOf(ls, s.matchers[i].name)) {
			return false
		}
	}
	return true
}

func (m *matcher) matches(v []byte) bool {
	switch m.op {
	case opEqual:
		return bytes.Equal(v, m.value)
	case opNotEqual:
		return !bytes.Equal(v, m.value)
	case opRegexp:
		return m.re.Match(v)
	default:
		return !m.re.Match(v)
	}
}

// valueOf returns the value of label name in ls, or nil when absent.
func valueOf(ls []remotewrite.Label, name string) []byte {
	for _, l := range ls {
		if string(l.Name) == name {
			return l.Value
		}
	}
	return nil
}

// ParseSelector parses a series selector: an optional metric name followed by
// an optional brace-enclosed, comma-separated list of matchers
// `label="v"`, `label!="v"`, `label=~"re"`, `label!~"re"` (values in double,
// single or back quotes, as in PromQL). Regular expressions use Go RE2 syntax
// and must match the whole value.
func ParseSelector(text string) (*Selector, error) {
	p := selectorParser{s: strings.TrimSpace(text)}
	sel, err := p.parse()
	if err != nil {
		return nil, fmt.Errorf("%q is not a series selector: %v; write e.g. {for!=\"\"} or anomaly_score{job=~\"vmanomaly.*\"}", text, err)
	}
	sel.text = p.s
	return sel, nil
}

// selectorParser is a small recursive-descent parser over one selector.
type selectorParser struct {
	s   string
	pos int
}

func (p *selectorParser) parse() (*Selector, error) {
	sel := &Selector{}
	if p.s == "" {
		return nil, fmt.Errorf("it is empty")
	}
	if name := p.ident(); name != "" {
		sel.matchers = append(sel.matchers, matcher{name: metricName, op: opEqual, value: []byte(name)})
	}
	p.space()
	if p.pos == len(p.s) {
		if len(sel.matchers) == 0 {
			return nil, fmt.Errorf("expected a metric name or {")
		}
		return sel, nil
	}
	if p.s[p.pos] != '{' {
		return nil, fmt.Errorf("unexpected %q at offset %d", p.s[p.pos:], p.pos)
	}
	p.pos++
	for {
		p.space()
		if p.eat("}") {
			break
		}
		m, err := p.matcher()
		if err != nil {
			return nil, err
		}
		sel.matchers = append(sel.matchers, m)
		p.space()
		if p.eat("}") {
			break
		}
		if !p.eat(",") {
			return nil, fmt.Errorf("expected , or } at offset %d", p.pos)
		}
	}
	if p.space(); p.pos != len(p.s) {
		return nil, fmt.Errorf("unexpected %q after }", p.s[p.pos:])
	}
	return sel, nil
}

// matcher parses `name op "value"`.
func (p *selectorParser) matcher() (matcher, error) {
	name := p.ident()
	if name == "" {
		return matcher{}, fmt.Errorf("expected a label name at offset %d", p.pos)
	}
	p.space()
	m := matcher{name: name}
	switch {
	case p.eat("=~"):
		m.op = opRegexp
	case p.eat("!~"):
		m.op = opNotRegexp
	case p.eat("!="):
		m.op = opNotEqual
	case p.eat("="):
		m.op = opEqual
	default:
		return matcher{}, fmt.Errorf("expected =, !=, =~ or !~ after %s", name)
	}
	p.space()
	value, err := p.quoted()
	if err != nil {
		return matcher{}, fmt.Errorf("%s%s: %v", name, opNames[m.op], err)
	}
	if m.op == opRegexp || m.op == opNotRegexp {
		if m.re, err = regexp.Compile("^(?s:" + value + ")$"); err != nil {
			return matcher{}, fmt.Errorf("%s%s: bad regular expression: %v", name, opNames[m.op], err)
		}
	}
	m.value = []byte(value)
	return m, nil
}

// ident reads a label or metric name ([a-zA-Z_:][a-zA-Z0-9_:]*), or "".
func (p *selectorParser) ident() string {
	start := p.pos
	for p.pos < len(p.s) {
		c := p.s[p.pos]
		letter := c == '_' || c == ':' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
		if !letter && (p.pos == start || c < '0' || c > '9') {
			break
		}
		p.pos++
	}
	return p.s[start:p.pos]
}

// quoted reads a string in double, single or back quotes and unescapes it.
func (p *selectorParser) quoted() (string, error) {
	if p.pos >= len(p.s) {
		return "", fmt.Errorf("expected a quoted value")
	}
	q := p.s[p.pos]
	if q != '"' && q != '\'' && q != '`' {
		return "", fmt.Errorf("expected a quoted value at offset %d", p.pos)
	}
	end := p.pos + 1
	for end < len(p.s) && p.s[end] != q {
		if p.s[end] == '\\' && q != '`' {
			end++
		}
		end++
	}
	if end >= len(p.s) {
		return "", fmt.Errorf("unterminated quoted value")
	}
	lit := p.s[p.pos : end+1]
	p.pos = end + 1
	if q == '\'' { // PromQL allows single quotes: requote for strconv
		lit = `"` + strings.ReplaceAll(strings.ReplaceAll(lit[1:len(lit)-1], `\'`, `'`), `"`, `\"`) + `"`
	}
	v, err := strconv.Unquote(lit)
	if err != nil {
		return "", fmt.Errorf("bad quoted value %s: %v", lit, err)
	}
	return v, nil
}

func (p *selectorParser) space() {
	for p.pos < len(p.s) && (p.s[p.pos] == ' ' || p.s[p.pos] == '\t' || p.s[p.pos] == '\n') {
		p.pos++
	}
}

func (p *selectorParser) eat(tok string) bool {
	if strings.HasPrefix(p.s[p.pos:], tok) {
		p.pos += len(tok)
		return true
	}
	return false
}

// QueryKey returns the incoming label whose value replaces $QUERY_KEY, so
// that the default format selector and the Format agree on it.
func (f *Format) QueryKey() string { return f.queryKey }
