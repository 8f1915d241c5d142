package main

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
)

// A hand-written SVG plot of the results (no plotting dependency): charts
// side by side, each with linear axes from 0, a line per series, and one
// legend under them.

type point struct{ x, y float64 }

type series struct {
	name   string
	dashed bool
	points []point // ascending x
}

type chart struct {
	title, xLabel, yLabel string
	series                []series
	// limit, when above 0, is drawn as a horizontal line labelled
	// limitLabel (a target).
	limit      float64
	limitLabel string
}

// palette colours the series by their position in the legend.
var palette = []string{"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"}

const (
	svgChartW   = 500
	svgChartH   = 340
	svgMarginL  = 72
	svgMarginR  = 20
	svgMarginT  = 40
	svgMarginB  = 56
	svgLegendW  = 330 // one legend entry
	svgLegendH  = 22
	svgLegendY0 = 16
)

// niceScale is an axis from 0 to at least hi in at most seven steps of 1, 2
// or 5 times a power of ten, the smallest such step.
func niceScale(hi float64) (top, step float64) {
	if !(hi > 0) || math.IsInf(hi, 0) {
		return 1, 0.2
	}
	mag := math.Pow(10, math.Floor(math.Log10(hi/7)))
	for _, m := range []float64{1, 2, 5, 10} {
		step = m * mag
		if math.Ceil(hi/step-1e-9) <= 7 {
			break
		}
	}
	return math.Ceil(hi/step-1e-9) * step, step
}

// axisLabel formats a tick: posts as 2M or 500k, other values plainly.
func axisLabel(v float64, posts bool) string {
	switch {
	case posts && v >= 1e6:
		return strconv.FormatFloat(v/1e6, 'g', 4, 64) + "M"
	case posts && v >= 1e3:
		return strconv.FormatFloat(v/1e3, 'g', 4, 64) + "k"
	}
	return strconv.FormatFloat(v, 'g', 6, 64)
}

func esc(s string) string {
	var b bytes.Buffer
	xml.EscapeText(&b, []byte(s))
	return b.String()
}

// writeSVG draws the charts side by side with a legend of every series name
// (the series of all charts, by name) under them.
func writeSVG(w io.Writer, charts []chart) error {
	var names []string
	dashed := map[string]bool{}
	for _, c := range charts {
		for _, s := range c.series {
			if !slices.Contains(names, s.name) {
				names = append(names, s.name)
				dashed[s.name] = s.dashed
			}
		}
	}
	color := func(name string) string { return palette[slices.Index(names, name)%len(palette)] }
	perRow := max(1, len(charts)*svgChartW/svgLegendW)
	legendRows := (len(names) + perRow - 1) / perRow
	width := max(1, len(charts)) * svgChartW
	height := svgChartH + svgLegendY0 + legendRows*svgLegendH + 8

	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n",
		width, height, width, height)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", width, height)
	for i, c := range charts {
		drawChart(&b, c, i*svgChartW, color)
	}
	for i, n := range names {
		x := 20 + (i%perRow)*svgLegendW
		y := svgChartH + svgLegendY0 + (i/perRow)*svgLegendH
		dash := ""
		if dashed[n] {
			dash = ` stroke-dasharray="6 4"`
		}
		fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2.5"%s/>`+"\n", x, y, x+30, y, color(n), dash)
		fmt.Fprintf(&b, `<circle cx="%d" cy="%d" r="3" fill="%s"/>`+"\n", x+15, y, color(n))
		fmt.Fprintf(&b, `<text x="%d" y="%d">%s</text>`+"\n", x+38, y+4, esc(n))
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func drawChart(b *strings.Builder, c chart, x0 int, color func(string) string) {
	pw := float64(svgChartW - svgMarginL - svgMarginR)
	ph := float64(svgChartH - svgMarginT - svgMarginB)
	left, top := float64(x0+svgMarginL), float64(svgMarginT)
	var xmax, ymax float64
	for _, s := range c.series {
		for _, p := range s.points {
			xmax, ymax = max(xmax, p.x), max(ymax, p.y)
		}
	}
	ymax = max(ymax, c.limit)
	xtop, xstep := niceScale(xmax)
	ytop, ystep := niceScale(ymax)
	px := func(x float64) float64 { return left + x/xtop*pw }
	py := func(y float64) float64 { return top + ph - y/ytop*ph }

	fmt.Fprintf(b, `<text x="%.1f" y="22" font-size="15" font-weight="bold" text-anchor="middle">%s</text>`+"\n", left+pw/2, esc(c.title))
	// Grid and ticks.
	for i := 0; float64(i)*ystep <= ytop+ystep/2; i++ {
		v := float64(i) * ystep
		y := py(v)
		fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#ddd"/>`+"\n", left, y, left+pw, y)
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="end">%s</text>`+"\n", left-6, y+4, esc(axisLabel(v, false)))
	}
	for i := 0; float64(i)*xstep <= xtop+xstep/2; i++ {
		v := float64(i) * xstep
		x := px(v)
		fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#333"/>`+"\n", x, top+ph, x, top+ph+5)
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", x, top+ph+19, esc(axisLabel(v, true)))
	}
	// Axes and their labels.
	fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#333"/>`+"\n", left, top, left, top+ph)
	fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#333"/>`+"\n", left, top+ph, left+pw, top+ph)
	fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", left+pw/2, top+ph+42, esc(c.xLabel))
	fmt.Fprintf(b, `<text x="%d" y="%.1f" text-anchor="middle" transform="rotate(-90 %d %.1f)">%s</text>`+"\n",
		x0+18, top+ph/2, x0+18, top+ph/2, esc(c.yLabel))
	if c.limit > 0 {
		y := py(c.limit)
		fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#c00" stroke-dasharray="2 3"/>`+"\n", left, y, left+pw, y)
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="end" fill="#c00" font-size="11">%s</text>`+"\n", left+pw-4, y-4, esc(c.limitLabel))
	}
	// A line and points per series.
	for _, s := range c.series {
		var pts []string
		for _, p := range s.points {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", px(p.x), py(p.y)))
		}
		dash := ""
		if s.dashed {
			dash = ` stroke-dasharray="6 4"`
		}
		fmt.Fprintf(b, `<polyline fill="none" stroke="%s" stroke-width="2"%s points="%s"><title>%s</title></polyline>`+"\n",
			color(s.name), dash, strings.Join(pts, " "), esc(s.name))
		for _, p := range s.points {
			fmt.Fprintf(b, `<circle cx="%.1f" cy="%.1f" r="3" fill="%s"><title>%s: %s posts, %s</title></circle>`+"\n",
				px(p.x), py(p.y), color(s.name), esc(s.name), thousands(int64(p.x)), esc(strconv.FormatFloat(p.y, 'f', 2, 64)+" "+c.yLabel))
		}
	}
}
