package report

import (
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// exact formats a value in full with thousands separators, keeping a
// fractional part only when there is one (a median of two middle values can
// end in .5). It is used where the reader wants the precise figure: tables,
// tooltips and the count charts.
func exact(v float64) string {
	neg := v < 0
	v = math.Abs(v)
	s := strconv.FormatFloat(v, 'f', -1, 64)
	if math.Trunc(v) != v {
		s = strconv.FormatFloat(v, 'f', 2, 64)
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	intPart, frac, _ := strings.Cut(s, ".")
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, c := range intPart {
		if i > 0 && (len(intPart)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if frac != "" {
		b.WriteByte('.')
		b.WriteString(frac)
	}
	return b.String()
}

// compact formats a value in at most three significant digits with a k, M or
// B suffix, so that follower counts fit on narrow bars and axis ticks; the
// exact value is in the bar's tooltip.
func compact(v float64) string {
	if math.Abs(v) < 1000 {
		if math.Trunc(v) == v {
			return strconv.FormatFloat(v, 'f', 0, 64)
		}
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	units := []struct {
		div    float64
		suffix string
	}{{1e3, "k"}, {1e6, "M"}, {1e9, "B"}}
	for i, u := range units {
		x := v / u.div
		dec := 0
		switch a := math.Abs(x); {
		case a < 10:
			dec = 2
		case a < 100:
			dec = 1
		}
		s := strconv.FormatFloat(x, 'f', dec, 64)
		// 999,999 rounds to "1000k": say "1M" instead.
		if r, _ := strconv.ParseFloat(s, 64); math.Abs(r) >= 1000 && i < len(units)-1 {
			continue
		}
		if dec > 0 {
			s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
		}
		return s + u.suffix
	}
	return exact(v)
}

// num writes an SVG coordinate: fixed notation (never 1e+06), one decimal.
func num(v float64) string {
	s := strconv.FormatFloat(v, 'f', 1, 64)
	return strings.TrimSuffix(s, ".0")
}

// charWidth is the average advance of the page's sans-serif at 1px font
// size. Arial and Liberation Sans are about 0.5, DejaVu Sans (what a Linux
// without them falls back to) about 0.58; this errs on the wide side so that
// labels do not overflow their column whatever the reader's fonts.
const charWidth = 0.58

// textWidth estimates the rendered width of s at a font size; the charts are
// laid out on the server, without a browser to measure text.
func textWidth(s string, size float64) float64 {
	return float64(utf8.RuneCountInString(s)) * size * charWidth
}

// fit shortens s with an ellipsis to fit width at a font size. The full text
// stays available in the element's tooltip.
func fit(s string, width, size float64) string {
	if textWidth(s, size) <= width+0.5 { // +0.5: the column was sized by the same estimate
		return s
	}
	n := int(width/(size*charWidth)) - 1
	if n < 1 {
		return "…"
	}
	r := []rune(s)
	if n > len(r) {
		n = len(r)
	}
	return strings.TrimRight(string(r[:n]), " ") + "…"
}

// duration rounds a duration for people: milliseconds under a minute,
// seconds above.
func duration(d time.Duration) string {
	switch {
	case d <= 0:
		return "–"
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return strconv.FormatFloat(d.Seconds(), 'f', 1, 64) + " s"
	}
	return d.Round(time.Second).String()
}

// niceScale returns the axis maximum and tick step for values up to max:
// steps of 1, 2 or 5 times a power of ten, about five ticks, whole numbers
// when the data are whole (a count axis has no 2.5 tick).
func niceScale(max float64, whole bool) (top, step float64) {
	if max <= 0 || math.IsNaN(max) || math.IsInf(max, 0) {
		return 1, 1
	}
	raw := max / 5
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	switch f := raw / mag; {
	case f <= 1:
		step = mag
	case f <= 2:
		step = 2 * mag
	case f <= 5:
		step = 5 * mag
	default:
		step = 10 * mag
	}
	if whole && step < 1 {
		step = 1
	}
	top = math.Ceil(max/step) * step
	return top, step
}
