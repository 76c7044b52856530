package main

import (
	"encoding/xml"
	"fmt"
	"math"
	"strings"
	"unicode/utf8"
)

// Geometry of the hand-written SVG chart.
const (
	svgWidth    = 760
	panelHeight = 280
	plotLeft    = 90
	plotRight   = 20
	plotTop     = 50
	plotBottom  = 60
)

// barColors are the fills of the proxies, in series order.
var barColors = []string{"#2b6cb0", "#dd6b20", "#38a169", "#805ad5"}

// barPanel is one grouped bar chart: a group per scenario, a bar per proxy.
type barPanel struct {
	title  string
	groups []string    // x-axis groups
	series []string    // one bar per series in every group
	values [][]float64 // values[group][series]; 0 means no value
	format func(float64) string
}

// svg renders the report's chart: samples per CPU-second and peak RSS,
// by scenario, or for a sweep against the points (see sweepSVG).
func (r *Report) svg() string {
	if len(r.Points) > 0 {
		return r.sweepSVG()
	}
	var groups []string
	series := r.proxyNames()
	for _, sc := range r.scenarios {
		groups = append(groups, sc.Title)
	}
	perCPU := barPanel{title: "Samples per CPU-second of the proxy (median; higher is better)", groups: groups, series: series, format: humanCount}
	rss := barPanel{title: "Peak RSS in MB (median; lower is better)", groups: groups, series: series,
		format: func(v float64) string { return fmt.Sprintf("%.0f", v) }}
	for _, sc := range r.scenarios {
		a, b := make([]float64, len(series)), make([]float64, len(series))
		for i, p := range series {
			for _, row := range r.Rows {
				if row.Scenario == sc.Name && row.Proxy == p {
					a[i], b[i] = row.SamplesPerCPUSecond, row.PeakRSSMB
				}
			}
		}
		perCPU.values, rss.values = append(perCPU.values, a), append(rss.values, b)
	}
	return renderSVG("scoreproxy vs vmagent, "+r.Generated, []panel{perCPU, rss})
}

// panel is one chart of an SVG image, drawn with its top edge at y0.
type panel interface {
	render(b *strings.Builder, y0 int)
}

// renderSVG draws the panels one under the other with a legend on top.
func renderSVG(title string, panels []panel) string {
	h := 40 + panelHeight*len(panels)
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n",
		svgWidth, h, svgWidth, h)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="#ffffff"/>`+"\n", svgWidth, h)
	fmt.Fprintf(&b, `<text x="%d" y="24" font-size="15" font-weight="bold">%s</text>`+"\n", plotLeft, esc(title))
	for i, p := range panels {
		p.render(&b, 40+i*panelHeight)
	}
	b.WriteString("</svg>\n")
	return b.String()
}

// drawFrame draws a panel's title and its y axis from 0 to top, with the
// panel's top edge at y0, and returns the y of its base line and the
// height of its plot.
func drawFrame(b *strings.Builder, y0 int, title string, top float64, format func(float64) string) (base, plotH float64) {
	plotH = float64(panelHeight - plotTop - plotBottom)
	base = float64(y0 + panelHeight - plotBottom)
	fmt.Fprintf(b, `<text x="%d" y="%d" font-size="13">%s</text>`+"\n", plotLeft, y0+20, esc(title))
	for k := 0; k <= 4; k++ {
		y := base - plotH*float64(k)/4
		fmt.Fprintf(b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#e2e8f0"/>`+"\n", plotLeft, y, svgWidth-plotRight, y)
		fmt.Fprintf(b, `<text x="%d" y="%.1f" text-anchor="end" fill="#4a5568">%s</text>`+"\n", plotLeft-6, y+4, esc(format(top*float64(k)/4)))
	}
	return base, plotH
}

// render draws one panel whose top edge is at y0.
func (p barPanel) render(b *strings.Builder, y0 int) {
	plotW := float64(svgWidth - plotLeft - plotRight)
	top := niceCeil(p.max())
	base, plotH := drawFrame(b, y0, p.title, top, p.format)
	p.legend(b, y0+38)
	if len(p.groups) == 0 || len(p.series) == 0 {
		return
	}
	groupW := plotW / float64(len(p.groups))
	barW := groupW * 0.7 / float64(len(p.series))
	for g, name := range p.groups {
		gx := float64(plotLeft) + groupW*float64(g) + groupW*0.15
		for s := range p.series {
			p.bar(b, gx+barW*float64(s), barW, base, plotH, top, p.value(g, s), barColors[s%len(barColors)])
		}
		for i, line := range wrapLabel(name, int(groupW/labelCharWidth), maxLabelLines) {
			fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", gx+groupW*0.35, base+18+14*float64(i), esc(line))
		}
	}
}

// labelCharWidth is about the width of a character of the 12 px font, and
// maxLabelLines what fits under a panel's plot (plotBottom).
const (
	labelCharWidth = 6.5
	maxLabelLines  = 3
)

// wrapLabel breaks a group label at spaces into lines of at most width
// characters (a longer word gets a line of its own), so that the labels of
// neighbouring groups do not overlap; past maxLines the last line ends in "…".
func wrapLabel(label string, width, maxLines int) []string {
	var lines []string
	for _, word := range strings.Fields(label) {
		if n := len(lines); n > 0 && utf8.RuneCountInString(lines[n-1])+1+utf8.RuneCountInString(word) <= width {
			lines[n-1] += " " + word
			continue
		}
		lines = append(lines, word)
	}
	if len(lines) > maxLines {
		lines = append(lines[:maxLines-1:maxLines-1], strings.Join(lines[maxLines-1:], " "))
		if last := []rune(lines[maxLines-1]); len(last) > width && width > 1 {
			lines[maxLines-1] = strings.TrimRight(string(last[:width-1]), " ") + "…"
		}
	}
	return lines
}

// bar draws one bar with its value above it; a missing value is marked "n/a".
func (p barPanel) bar(b *strings.Builder, x, w, base, plotH, top, v float64, color string) {
	if v <= 0 || top <= 0 {
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="middle" fill="#a0aec0">n/a</text>`+"\n", x+w/2, base-4)
		return
	}
	h := plotH * v / top
	fmt.Fprintf(b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"/>`+"\n", x+2, base-h, w-4, h, color)
	fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", x+w/2, base-h-4, esc(p.format(v)))
}

// legend draws a colour key of the series at height y.
func (p barPanel) legend(b *strings.Builder, y int) {
	x := plotLeft
	for s, name := range p.series {
		fmt.Fprintf(b, `<rect x="%d" y="%d" width="12" height="12" fill="%s"/>`+"\n", x, y-10, barColors[s%len(barColors)])
		fmt.Fprintf(b, `<text x="%d" y="%d">%s</text>`+"\n", x+16, y, esc(name))
		x += 30 + 8*len(name)
	}
}

// value returns values[g][s], or 0 when absent.
func (p barPanel) value(g, s int) float64 {
	if g < len(p.values) && s < len(p.values[g]) {
		return p.values[g][s]
	}
	return 0
}

// max returns the largest value of the panel.
func (p barPanel) max() float64 {
	m := 0.0
	for _, vs := range p.values {
		for _, v := range vs {
			m = math.Max(m, v)
		}
	}
	return m
}

// niceCeil rounds v up to 1, 2, 2.5 or 5 times a power of ten (1 for v <= 0).
func niceCeil(v float64) float64 {
	if v <= 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return 1
	}
	pow := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*pow >= v {
			return m * pow
		}
	}
	return 10 * pow
}

// esc escapes text for SVG content.
func esc(s string) string {
	var b strings.Builder
	xml.EscapeText(&b, []byte(s))
	return b.String()
}
