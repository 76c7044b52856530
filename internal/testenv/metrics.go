package testenv

import (
	"context"
	"fmt"
	"strconv"
	"strings"
)

// Sample is one line of the Prometheus text exposition format.
type Sample struct {
	Name   string
	Labels map[string]string
	Value  float64
}

// Metrics is a scraped /metrics page.
type Metrics []Sample

// ScrapeMetrics GETs url (a /metrics page) and parses it.
func ScrapeMetrics(ctx context.Context, url string) (Metrics, error) {
	body, err := httpGet(ctx, url)
	if err != nil {
		return nil, err
	}
	return ParseMetrics(string(body))
}

// ParseMetrics parses the Prometheus text format: `name{a="b",...} value [ts]`
// lines; comments and blank lines are skipped.
func ParseMetrics(text string) (Metrics, error) {
	var out Metrics
	for n, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		s, err := parseSampleLine(line)
		if err != nil {
			return nil, fmt.Errorf("line %d %q: %w", n+1, line, err)
		}
		out = append(out, s)
	}
	return out, nil
}

func parseSampleLine(line string) (Sample, error) {
	s := Sample{Labels: map[string]string{}}
	i := strings.IndexAny(line, "{ ")
	if i <= 0 {
		return s, fmt.Errorf("no value")
	}
	s.Name = line[:i]
	rest := line[i:]
	if rest[0] == '{' {
		rest = rest[1:]
		for {
			rest = strings.TrimLeft(rest, " ,")
			if strings.HasPrefix(rest, "}") {
				rest = rest[1:]
				break
			}
			eq := strings.IndexByte(rest, '=')
			if eq <= 0 || len(rest) < eq+2 || rest[eq+1] != '"' {
				return s, fmt.Errorf("bad label at %q", rest)
			}
			name := strings.TrimSpace(rest[:eq])
			rest = rest[eq+1:]
			// Find the closing quote, honouring backslash escapes.
			end := 1
			for end < len(rest) && rest[end] != '"' {
				if rest[end] == '\\' {
					end++
				}
				end++
			}
			if end >= len(rest) {
				return s, fmt.Errorf("unterminated label value")
			}
			v, err := strconv.Unquote(rest[:end+1])
			if err != nil {
				return s, fmt.Errorf("label %s: %w", name, err)
			}
			s.Labels[name] = v
			rest = rest[end+1:]
		}
	}
	fields := strings.Fields(rest)
	if len(fields) == 0 {
		return s, fmt.Errorf("no value")
	}
	v, err := strconv.ParseFloat(fields[0], 64)
	if err != nil {
		return s, err
	}
	s.Value = v
	return s, nil
}

// Sum adds the values of the samples named name whose labels include all of
// match (name=value pairs). found is false when no sample matched.
func (m Metrics) Sum(name string, match map[string]string) (sum float64, found bool) {
	for _, s := range m {
		if s.Name != name || !hasLabels(s.Labels, match) {
			continue
		}
		sum += s.Value
		found = true
	}
	return sum, found
}

// Names returns the set of metric names on the page.
func (m Metrics) Names() map[string]bool {
	out := map[string]bool{}
	for _, s := range m {
		out[s.Name] = true
	}
	return out
}

func hasLabels(labels, match map[string]string) bool {
	for k, v := range match {
		if labels[k] != v {
			return false
		}
	}
	return true
}
