package main

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// linePanel is a line chart against the points of a sweep: the distinct
// series counts on a log x axis, then each churn point at an x position of
// its own to the right, marked but not joined to the lines.
type linePanel struct {
	title  string
	points []sweepPoint
	labels []string // x label of each point
	lines  []chartLine
	format func(float64) string
}

// chartLine is one line of a linePanel: a scenario (its colour) and a
// proxy (solid or dashed), with a value per point (0 = none).
type chartLine struct {
	scenario, proxy string
	color           string
	dashed          bool
	values          []float64
}

// churnSlot is the width of the x position of each churn point.
const churnSlot = 90

// sweepSVG renders a sweep's chart: samples per CPU-second and peak RSS
// against the points, a line per scenario and proxy.
func (r *Report) sweepSVG() string {
	perCPU := linePanel{title: "Samples per CPU-second of the proxy against distinct series (median; higher is better)", format: humanCount}
	rss := linePanel{title: "Peak RSS in MB against distinct series (median; lower is better)",
		format: func(v float64) string { return fmt.Sprintf("%.0f", v) }}
	for _, pi := range r.Points {
		pt := sweepPoint{Distinct: pi.Distinct, Churn: pi.Churn}
		perCPU.points, rss.points = append(perCPU.points, pt), append(rss.points, pt)
		label := countLabel(pi.Distinct)
		if pt.isChurn() {
			label = pi.Label
		}
		perCPU.labels, rss.labels = append(perCPU.labels, label), append(rss.labels, label)
	}
	for i, sc := range r.scenarios {
		for _, proxy := range r.proxyNames() {
			a := chartLine{scenario: sc.Name, proxy: proxy, color: barColors[i%len(barColors)], dashed: proxy != "scoreproxy"}
			b := a
			for _, pi := range r.Points {
				row := r.row(pi.Label, sc.Name, proxy)
				a.values, b.values = append(a.values, row.SamplesPerCPUSecond), append(b.values, row.PeakRSSMB)
			}
			perCPU.lines, rss.lines = append(perCPU.lines, a), append(rss.lines, b)
		}
	}
	return renderSVG("scoreproxy vs vmagent by distinct series and churn, "+r.Generated, []panel{perCPU, rss})
}

// proxyNames lists the proxies of the report's rows in row order.
func (r *Report) proxyNames() []string {
	var names []string
	for _, row := range r.Rows {
		if !slices.Contains(names, row.Proxy) {
			names = append(names, row.Proxy)
		}
	}
	return names
}

// row returns the row of one proxy in one scenario at one point; a zero
// Row if there is none, and a failed one's values are 0 too.
func (r *Report) row(point, scenario, proxy string) Row {
	for _, row := range r.Rows {
		if row.Point == point && row.Scenario == scenario && row.Proxy == proxy {
			return row
		}
	}
	return Row{}
}

// render draws the panel whose top edge is at y0.
func (p linePanel) render(b *strings.Builder, y0 int) {
	top := niceCeil(p.max())
	base, plotH := drawFrame(b, y0, p.title, top, p.format)
	p.legend(b, y0+38)
	xs := p.xPositions()
	for i, x := range xs {
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", x, base+18, esc(p.labels[i]))
	}
	if sep := p.separator(); sep > 0 {
		fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#a0aec0" stroke-dasharray="2,3"/>`+"\n", sep, base-plotH, sep, base)
	}
	fmt.Fprintf(b, `<text x="%d" y="%.1f" fill="#4a5568">distinct series (log scale)</text>`+"\n", plotLeft, base+36)
	for _, l := range p.lines {
		p.line(b, l, xs, func(v float64) float64 { return base - plotH*v/top })
	}
}

// line draws one chartLine: a polyline through its distinct points and a
// marker at every point with a value.
func (p linePanel) line(b *strings.Builder, l chartLine, xs []float64, y func(float64) float64) {
	var pts []string
	for i, v := range l.values {
		if v > 0 && !p.points[i].isChurn() {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", xs[i], y(v)))
		}
	}
	dash := ""
	if l.dashed {
		dash = ` stroke-dasharray="6,4"`
	}
	fmt.Fprintf(b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2"%s><title>%s</title></polyline>`+"\n",
		strings.Join(pts, " "), l.color, dash, esc(l.scenario+", "+l.proxy))
	for i, v := range l.values {
		if v > 0 {
			fmt.Fprintf(b, `<circle cx="%.1f" cy="%.1f" r="3.5" %s><title>%s</title></circle>`+"\n",
				xs[i], y(v), markerStyle(l), esc(fmt.Sprintf("%s, %s, %s: %s", l.scenario, l.proxy, p.labels[i], p.format(v))))
		}
	}
}

// markerStyle fills the markers of solid lines and rings those of dashed
// ones, so churn points tell the proxies apart without a line.
func markerStyle(l chartLine) string {
	if l.dashed {
		return fmt.Sprintf(`fill="#ffffff" stroke="%s" stroke-width="2"`, l.color)
	}
	return fmt.Sprintf(`fill="%s"`, l.color)
}

// xPositions returns the x of every point: the distinct counts spread on a
// log scale over the plot left of the churn slots, each churn point in a
// slot of its own on the right.
func (p linePanel) xPositions() []float64 {
	left, right := float64(plotLeft+30), float64(svgWidth-plotRight-30)
	churns := 0
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, pt := range p.points {
		if pt.isChurn() {
			churns++
			continue
		}
		lo, hi = math.Min(lo, math.Log10(float64(pt.Distinct))), math.Max(hi, math.Log10(float64(pt.Distinct)))
	}
	distinctRight := right - float64(churns*churnSlot)
	xs := make([]float64, len(p.points))
	slot := 0
	for i, pt := range p.points {
		switch {
		case pt.isChurn():
			xs[i] = distinctRight + churnSlot*(float64(slot)+0.5)
			slot++
		case hi > lo:
			xs[i] = left + (distinctRight-churnSlot/2-left)*(math.Log10(float64(pt.Distinct))-lo)/(hi-lo)
		default:
			xs[i] = (left + distinctRight - churnSlot/2) / 2
		}
	}
	return xs
}

// separator returns the x of the line between the distinct counts and
// the churn points, or 0 when the panel has only one kind.
func (p linePanel) separator() float64 {
	churns, distincts := 0, 0
	for _, pt := range p.points {
		if pt.isChurn() {
			churns++
		} else {
			distincts++
		}
	}
	if churns == 0 || distincts == 0 {
		return 0
	}
	return float64(svgWidth-plotRight-30-churns*churnSlot) - churnSlot/4
}

// legend draws a colour key of the scenarios and a line key of the
// proxies at height y.
func (p linePanel) legend(b *strings.Builder, y int) {
	x := plotLeft
	seen := map[string]bool{}
	for _, l := range p.lines {
		if seen[l.scenario] {
			continue
		}
		seen[l.scenario] = true
		fmt.Fprintf(b, `<rect x="%d" y="%d" width="12" height="12" fill="%s"/>`+"\n", x, y-10, l.color)
		fmt.Fprintf(b, `<text x="%d" y="%d">%s</text>`+"\n", x+16, y, esc(l.scenario))
		x += 26 + 7*len(l.scenario)
	}
	for _, l := range p.lines {
		if seen["proxy "+l.proxy] {
			continue
		}
		seen["proxy "+l.proxy] = true
		dash := ""
		if l.dashed {
			dash = ` stroke-dasharray="6,4"`
		}
		fmt.Fprintf(b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#2d3748" stroke-width="2"%s/>`+"\n", x, y-4, x+24, y-4, dash)
		fmt.Fprintf(b, `<text x="%d" y="%d">%s</text>`+"\n", x+28, y, esc(l.proxy))
		x += 40 + 7*len(l.proxy)
	}
}

// max returns the largest value of the panel.
func (p linePanel) max() float64 {
	m := 0.0
	for _, l := range p.lines {
		for _, v := range l.values {
			m = math.Max(m, v)
		}
	}
	return m
}
