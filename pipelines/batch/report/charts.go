package report

import (
	"math"
	"slices"
)

// The charts are laid out here, in Go, as lists of SVG primitives with
// final coordinates; the template only prints them. Every string reaches
// the page through html/template, which escapes it.

// Chart widths in CSS pixels, matching the page's six-column grid (see
// pageHTML): the content is 1052px wide, cards have a 16px gap and 19px of
// padding and border a side. A full-width chart leaves room for the
// scrollbar of a long chart.
const (
	thirdWidth = 302
	halfWidth  = 480
	wideWidth  = 1010
	// scrollHeight is the height above which a chart scrolls in its card
	// (CSS .plot.scroll), so that 200 countries do not make a 5000px page.
	scrollHeight = 480
)

// Palette for series (age groups, record outcomes): colour-blind-safe hues
// of similar weight.
var palette = []string{"#3c6fb4", "#e08a3c", "#3f9b6e", "#b8497d", "#7b62b8", "#c4a21f", "#4aa3b5", "#8a6a4f"}

type svgRect struct {
	X, Y, W, H float64
	Class      string
	Fill       string
	Title      string
}

type svgLine struct {
	X1, Y1, X2, Y2 float64
	Class          string
}

type svgText struct {
	X, Y   float64
	Class  string
	Anchor string
	Text   string
	Title  string
	// Rotate turns the text -90° about (X, Y), for labels above narrow bars.
	Rotate bool
}

// svgChart is one chart, ready to print. Back is drawn first (bands), then
// Lines (grid, axes), Bars, Marks (other shapes on top of bars: legend
// swatches, stacked segments) and Texts.
type svgChart struct {
	W, H  float64
	Label string
	Back  []svgRect
	Lines []svgLine
	Bars  []svgRect
	Marks []svgRect
	Texts []svgText
}

// item is one bar: a group (the first key, "" for none), a label (the
// second key) and a value. Title is the tooltip.
type item struct {
	Group, Label string
	Value        float64
	Title        string
	// Note, when set, replaces the value label at the bar's end.
	Note string
}

// hbarOpts configure a horizontal bar chart.
type hbarOpts struct {
	Width       float64
	GroupHead   string // header over the group column ("country")
	LabelHead   string // header over the label column ("category")
	ValueTitle  string // axis title ("posts")
	Whole       bool   // whole numbers: ticks and labels in full
	Compact     bool   // value labels in k/M
	ShowTies    bool   // mark groups with more than one bar as ties
	TieNoun     string // what ties ("way tie")
	MaxGroupCol float64
	MaxLabelCol float64
}

const (
	// boldWidth is how much wider the bold group names are, headWidth the
	// bold, spaced capitals of the column headers (CSS .head).
	boldWidth = 1.08
	headWidth = 1.4
	fontLabel = 12.0
	fontSmall = 11.0
	rowH      = 22.0
	barH      = 14.0
)

// hbar lays out labelled horizontal bars, one per item, items of one group
// together on alternating bands with the group's name once: the shape for
// rows with two keys (country and category), where ties give a group
// several bars.
func hbar(items []item, o hbarOpts) *svgChart {
	c := &svgChart{W: o.Width}
	grouped := false
	var maxV float64
	var valW, groupW, labelW float64
	for _, it := range items {
		grouped = grouped || it.Group != ""
		maxV = math.Max(maxV, it.Value)
		groupW = math.Max(groupW, textWidth(it.Group, fontLabel)*boldWidth)
		labelW = math.Max(labelW, textWidth(it.Label, fontLabel))
	}
	groupW = math.Max(groupW, textWidth(o.GroupHead, fontSmall)*headWidth)
	labelW = math.Max(labelW, textWidth(o.LabelHead, fontSmall)*headWidth)
	if o.MaxGroupCol == 0 {
		o.MaxGroupCol = o.Width * 0.22
	}
	if o.MaxLabelCol == 0 {
		o.MaxLabelCol = o.Width * 0.34
	}
	if grouped {
		// The tie note sits under the group name.
		groupW = math.Max(groupW, textWidth("3-way tie", fontSmall))
		groupW = math.Min(groupW, o.MaxGroupCol) + 16
	} else {
		groupW = 0
	}
	labelW = math.Min(labelW, o.MaxLabelCol) + 12
	top, step := niceScale(maxV, o.Whole)
	format := exact
	if o.Compact {
		format = compact
	}
	for _, it := range items {
		v := format(it.Value)
		if it.Note != "" {
			v = it.Note
		}
		valW = math.Max(valW, textWidth(v, fontSmall))
	}
	const padL, padR, axisH = 4.0, 8.0, 40.0
	plotX := padL + groupW + labelW
	plotW := o.Width - plotX - padR - valW - 8
	if plotW < 80 {
		plotW = 80
	}
	y0 := axisH + 4
	c.H = y0 + float64(len(items))*rowH + 6
	x := func(v float64) float64 { return plotX + v/top*plotW }

	// Header row: the key columns' names and the value axis.
	if grouped {
		c.Texts = append(c.Texts, svgText{X: padL, Y: axisH - 8, Class: "head", Anchor: "start", Text: o.GroupHead})
	}
	c.Texts = append(c.Texts, svgText{X: plotX - 12, Y: axisH - 8, Class: "head", Anchor: "end", Text: o.LabelHead})
	c.Texts = append(c.Texts, svgText{X: plotX + plotW/2, Y: 14, Class: "axis-title", Anchor: "middle", Text: o.ValueTitle})
	for t := 0.0; t <= top+step/2; t += step {
		c.Lines = append(c.Lines, svgLine{X1: x(t), Y1: axisH - 2, X2: x(t), Y2: c.H - 4, Class: "grid"})
		c.Texts = append(c.Texts, svgText{X: x(t), Y: axisH - 8, Class: "tick", Anchor: "middle", Text: tickLabel(t, o.Whole && !o.Compact)})
	}
	c.Lines = append(c.Lines, svgLine{X1: plotX, Y1: axisH - 2, X2: plotX, Y2: c.H - 4, Class: "axis"})

	band := 0
	for i := 0; i < len(items); {
		j := i + 1
		for j < len(items) && grouped && items[j].Group == items[i].Group {
			j++
		}
		gy := y0 + float64(i)*rowH
		gh := float64(j-i) * rowH
		if band%2 == 0 {
			c.Back = append(c.Back, svgRect{X: 0, Y: gy, W: o.Width, H: gh, Class: "band"})
		}
		band++
		if grouped {
			name := items[i].Group
			ty := gy + gh/2 + 4
			tie := o.ShowTies && j-i > 1
			if tie {
				ty = gy + rowH/2 + 4
			}
			c.Texts = append(c.Texts, svgText{X: padL, Y: ty, Class: "group", Anchor: "start",
				Text: fit(name, (groupW-16)/boldWidth, fontLabel), Title: name})
			if tie {
				c.Texts = append(c.Texts, svgText{X: padL, Y: ty + 16, Class: "tie", Anchor: "start",
					Text: itoa(j-i) + "-way tie"})
			}
		}
		for k := i; k < j; k++ {
			it := items[k]
			ry := y0 + float64(k)*rowH
			w := x(it.Value) - plotX
			if it.Value > 0 && w < 1 {
				w = 1
			}
			c.Bars = append(c.Bars, svgRect{X: plotX, Y: ry + (rowH-barH)/2, W: w, H: barH, Class: "bar", Title: it.Title})
			c.Texts = append(c.Texts, svgText{X: plotX - 8, Y: ry + rowH/2 + 4, Class: "label", Anchor: "end",
				Text: fit(it.Label, labelW-12, fontLabel), Title: it.Label})
			v := format(it.Value)
			if it.Note != "" {
				v = it.Note
			}
			c.Texts = append(c.Texts, svgText{X: plotX + w + 5, Y: ry + rowH/2 + 4, Class: "val", Anchor: "start", Text: v})
		}
		i = j
	}
	return c
}

// colOpts configure a vertical column chart.
type colOpts struct {
	Width      float64
	XTitle     string
	YTitle     string
	Whole      bool
	Series     []string // series names, in legend order; nil for one series
	PlotHeight float64
}

// column is one bar of a column chart: its cluster (x category), series
// (index into colOpts.Series, 0 for one series) and value.
type column struct {
	Cluster string
	Series  int
	Value   float64
	Title   string
}

// columns lays out vertical bars in clusters along x: one bar per cluster
// for a single series (median by age group), or one bar per series in each
// cluster with a legend (median by join year and age group). Clusters keep
// the order they first appear in.
func columns(cols []column, o colOpts) *svgChart {
	c := &svgChart{W: o.Width}
	var clusters []string
	var maxV float64
	for _, col := range cols {
		if !slices.Contains(clusters, col.Cluster) {
			clusters = append(clusters, col.Cluster)
		}
		maxV = math.Max(maxV, col.Value)
	}
	nSeries := max(len(o.Series), 1)
	top, step := niceScale(maxV, o.Whole)
	label := compact
	if o.Whole {
		label = exact
	}
	var tickW float64
	for t := 0.0; t <= top+step/2; t += step {
		tickW = math.Max(tickW, textWidth(tickLabel(t, o.Whole), fontSmall))
	}
	if o.PlotHeight == 0 {
		o.PlotHeight = 210
	}
	padL := 22 + tickW + 8
	const padR = 8.0
	plotW := o.Width - padL - padR
	slot := plotW / float64(len(clusters))
	inner := math.Min(slot*0.78, float64(nSeries)*58)
	barW := inner / float64(nSeries)
	gap := math.Min(4, barW*0.12)
	if nSeries == 1 {
		gap = 0
	}
	// Value labels go above the bars, turned upright when wider than the bar.
	var valW float64
	for _, col := range cols {
		valW = math.Max(valW, textWidth(label(col.Value), 10.5))
	}
	rotate := valW > barW-gap+2
	headroom := 20.0
	if rotate {
		headroom = valW + 10
	}
	legendH := 0.0
	if len(o.Series) > 0 {
		legendH = 24
	}
	plotY := legendH + headroom
	plotB := plotY + o.PlotHeight
	c.H = plotB + 46
	y := func(v float64) float64 { return plotB - v/top*o.PlotHeight }

	if len(o.Series) > 0 {
		lx := padL
		for i, s := range o.Series {
			c.Marks = append(c.Marks, svgRect{X: lx, Y: 6, W: 12, H: 12, Class: "swatch", Fill: palette[i%len(palette)]})
			c.Texts = append(c.Texts, svgText{X: lx + 17, Y: 16.5, Class: "legend", Anchor: "start", Text: s})
			lx += 17 + textWidth(s, fontSmall) + 18
		}
	}
	for t := 0.0; t <= top+step/2; t += step {
		c.Lines = append(c.Lines, svgLine{X1: padL, Y1: y(t), X2: padL + plotW, Y2: y(t), Class: "grid"})
		c.Texts = append(c.Texts, svgText{X: padL - 6, Y: y(t) + 4, Class: "tick", Anchor: "end", Text: tickLabel(t, o.Whole)})
	}
	c.Lines = append(c.Lines, svgLine{X1: padL, Y1: plotB, X2: padL + plotW, Y2: plotB, Class: "axis"})
	c.Texts = append(c.Texts, svgText{X: 13, Y: plotY + o.PlotHeight/2, Class: "axis-title", Anchor: "middle", Text: o.YTitle, Rotate: true})
	c.Texts = append(c.Texts, svgText{X: padL + plotW/2, Y: c.H - 6, Class: "axis-title", Anchor: "middle", Text: o.XTitle})
	for i, cl := range clusters {
		cx := padL + slot*(float64(i)+0.5)
		c.Texts = append(c.Texts, svgText{X: cx, Y: plotB + 17, Class: "label", Anchor: "middle", Text: fit(cl, slot-4, fontLabel), Title: cl})
	}
	for _, col := range cols {
		i := slices.Index(clusters, col.Cluster)
		x0 := padL + slot*(float64(i)+0.5) - inner/2 + float64(col.Series)*barW + gap/2
		w := barW - gap
		h := plotB - y(col.Value)
		if col.Value > 0 && h < 1 {
			h = 1
		}
		r := svgRect{X: x0, Y: plotB - h, W: w, H: h, Class: "bar", Title: col.Title}
		if len(o.Series) > 0 {
			r.Fill = palette[col.Series%len(palette)]
		}
		c.Bars = append(c.Bars, r)
		t := svgText{X: x0 + w/2, Y: plotB - h - 5, Class: "val", Anchor: "middle", Text: label(col.Value)}
		if rotate {
			t = svgText{X: x0 + w/2 + 3.5, Y: plotB - h - 5, Class: "val", Anchor: "start", Text: label(col.Value), Rotate: true}
		}
		c.Texts = append(c.Texts, t)
	}
	return c
}

// segment is one part of a stacked bar.
type segment struct {
	Name  string
	Value float64
	Color string
}

// stacked lays out one horizontal bar per row, split into named segments
// that add up to the row's total (a table's records read: rows kept,
// duplicates dropped, rejected), with a legend.
func stacked(rows []string, segs [][]segment, width float64, total string) *svgChart {
	c := &svgChart{W: width}
	var maxV, labelW float64
	for i, r := range rows {
		labelW = math.Max(labelW, textWidth(r, fontLabel))
		var sum float64
		for _, s := range segs[i] {
			sum += s.Value
		}
		maxV = math.Max(maxV, sum)
	}
	if maxV == 0 {
		maxV = 1
	}
	const legendH, rowGap, stackH = 30.0, 14.0, 26.0
	padL := labelW + 16
	totalW := textWidth(exact(maxV)+" "+total, fontSmall) + 12
	plotW := width - padL - totalW - 8
	x := func(v float64) float64 { return v / maxV * plotW }
	if len(segs) > 0 {
		lx := padL
		for _, s := range segs[0] {
			c.Marks = append(c.Marks, svgRect{X: lx, Y: 6, W: 12, H: 12, Class: "swatch", Fill: s.Color})
			c.Texts = append(c.Texts, svgText{X: lx + 17, Y: 16.5, Class: "legend", Anchor: "start", Text: s.Name})
			lx += 17 + textWidth(s.Name, fontSmall) + 18
		}
	}
	for i, r := range rows {
		ry := legendH + float64(i)*(stackH+rowGap)
		c.Texts = append(c.Texts, svgText{X: 4, Y: ry + stackH/2 + 4.5, Class: "group", Anchor: "start", Text: r})
		sx := padL
		var sum float64
		for _, s := range segs[i] {
			sum += s.Value
			w := x(s.Value)
			if s.Value == 0 {
				continue
			}
			c.Marks = append(c.Marks, svgRect{X: sx, Y: ry, W: w, H: stackH, Class: "seg", Fill: s.Color,
				Title: r + " · " + s.Name + ": " + exact(s.Value)})
			if v := exact(s.Value); textWidth(v, fontSmall)+8 < w {
				c.Texts = append(c.Texts, svgText{X: sx + w/2, Y: ry + stackH/2 + 4, Class: "inval", Anchor: "middle", Text: v})
			}
			sx += w
		}
		c.Texts = append(c.Texts, svgText{X: sx + 6, Y: ry + stackH/2 + 4, Class: "val", Anchor: "start", Text: exact(sum) + " " + total})
	}
	c.H = legendH + float64(len(rows))*(stackH+rowGap)
	return c
}

func tickLabel(v float64, whole bool) string {
	if whole {
		return exact(v)
	}
	return compact(v)
}

func itoa(n int) string { return exact(float64(n)) }
