package main

import (
	"encoding/xml"
	"strconv"
	"strings"
	"testing"
	"time"
)

// svgElem is any element of an SVG document, with its children.
type svgElem struct {
	XMLName  xml.Name
	Attrs    []xml.Attr `xml:",any,attr"`
	Text     string     `xml:",chardata"`
	Children []svgElem  `xml:",any"`
}

func (e svgElem) attr(name string) string {
	for _, a := range e.Attrs {
		if a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

func (e svgElem) walk(fn func(svgElem)) {
	fn(e)
	for _, c := range e.Children {
		c.walk(fn)
	}
}

func TestNiceScale(t *testing.T) {
	for _, c := range []struct{ hi, top, step float64 }{
		{10_000_000, 10_000_000, 2_000_000}, {3_000_000, 3_000_000, 500_000}, {1, 1, 0.2}, {123, 140, 20}, {0, 1, 0.2}, {1024, 1200, 200},
	} {
		top, step := niceScale(c.hi)
		if top != c.top || step != c.step || top < c.hi {
			t.Errorf("niceScale(%g) = %g, %g; want %g, %g", c.hi, top, step, c.top, c.step)
		}
	}
}

func TestWriteSVG(t *testing.T) {
	sizes := []float64{1e6, 3e6, 10e6}
	mk := func(name string, dashed bool, f func(float64) float64) series {
		s := series{name: name, dashed: dashed}
		for _, x := range sizes {
			s.points = append(s.points, point{x, f(x)})
		}
		return s
	}
	wall := chart{title: "Wall time", xLabel: "posts", yLabel: "wall time (s)", series: []series{
		mk("duckdb-full", false, func(x float64) float64 { return x / 60000 }),
		mk("beam-prism", false, func(x float64) float64 { return x / 30000 }),
		mk("go-clean <&>", true, func(x float64) float64 { return x / 100000 }),
	}}
	rss := chart{title: "Peak RSS", xLabel: "posts", yLabel: "peak RSS (MiB)", limit: 1024, limitLabel: "1 GiB", series: []series{
		mk("duckdb-full", false, func(float64) float64 { return 1200 }),
		mk("beam-prism", false, func(x float64) float64 { return x / 5000 }),
		mk("go-clean <&>", true, func(float64) float64 { return 150 }),
	}}
	var b strings.Builder
	if err := writeSVG(&b, []chart{wall, rss}); err != nil {
		t.Fatal(err)
	}
	var doc svgElem
	if err := xml.Unmarshal([]byte(b.String()), &doc); err != nil {
		t.Fatalf("not well-formed XML: %v\n%s", err, b.String())
	}
	if doc.XMLName.Local != "svg" || doc.attr("width") == "" {
		t.Fatalf("root %v", doc.XMLName)
	}
	var texts []string
	lines := map[string][]string{} // series name -> polyline points
	doc.walk(func(e svgElem) {
		switch e.XMLName.Local {
		case "text":
			texts = append(texts, e.Text)
		case "polyline":
			for _, c := range e.Children {
				if c.XMLName.Local == "title" {
					lines[c.Text] = append(lines[c.Text], e.attr("points"))
				}
			}
		}
	})
	all := strings.Join(texts, "|")
	for _, want := range []string{"Wall time", "Peak RSS", "posts", "wall time (s)", "peak RSS (MiB)", "1 GiB", "duckdb-full", "beam-prism", "go-clean <&>", "10M", "0"} {
		if !strings.Contains("|"+all+"|", want) {
			t.Errorf("no text %q in %q", want, all)
		}
	}
	// Two lines (one per chart) of three points per series; y grows
	// upwards, so beam-prism, slower, is above (smaller y) duckdb-full at
	// every size on the wall-time chart.
	if len(lines) != 3 {
		t.Fatalf("polylines %v", lines)
	}
	ys := func(pts string) []float64 {
		var out []float64
		for _, p := range strings.Fields(pts) {
			_, y, _ := strings.Cut(p, ",")
			f, err := strconv.ParseFloat(y, 64)
			if err != nil {
				t.Fatalf("point %q", p)
			}
			out = append(out, f)
		}
		return out
	}
	for name, ls := range lines {
		if len(ls) != 2 || len(ys(ls[0])) != 3 {
			t.Errorf("%s: lines %v", name, ls)
		}
	}
	beam, duck := ys(lines["beam-prism"][0]), ys(lines["duckdb-full"][0])
	for i := range beam {
		if !(beam[i] < duck[i]) {
			t.Errorf("wall time at size %d: beam-prism y %g not above duckdb-full y %g", i, beam[i], duck[i])
		}
		if i > 0 && !(beam[i] < beam[i-1]) {
			t.Errorf("beam-prism's wall time grows with posts but its line goes down: %v", beam)
		}
	}
}

// TestSuiteMarkdown: the results file of two sizes has the plot, a table
// across sizes, the targets at every size and a section per size.
func TestSuiteMarkdown(t *testing.T) {
	s := &suite{started: time.Now()}
	for _, n := range []int{1000, 3000} {
		b := &bench{suite: s, posts: n, input: inputStats{Total: int64(3 * n)}}
		for _, e := range allEngines {
			if e.optional {
				continue
			}
			wall := time.Duration(n) * time.Millisecond
			if e.name == "beam-prism" {
				wall *= 2
			}
			b.runs = append(b.runs, &run{engine: e, Wall: wall, MaxRSS: int64(n) << 20, CPU: wall, Records: int64(3 * n), LoadBefore: "0.50",
				Counts: map[string]tableCounts{"pin": {Read: int64(n), Clean: int64(n) - 2, Rows: unknown, Rejected: 2, RejectedBy: map[string]int64{"null key": 2}}}})
		}
		s.sizes = append(s.sizes, b)
	}
	md := s.markdown("RESULTS.svg")
	for _, want := range []string{
		"# pinpipe benchmark: 1,000 and 3,000 posts",
		"![wall time and peak RSS against posts, a line per engine](RESULTS.svg)",
		"| engine | step | 1,000 posts | 3,000 posts |",
		"| beam-prism | full | 2.00 s, 1000 MiB | 6.00 s, 3000 MiB |",
		"| Beam full (prism) wall time vs DuckDB full | <= 1.00x | 2.00x NOT MET | 2.00x NOT MET | **NOT MET** |",
		"## 1,000 posts", "## 3,000 posts",
		"pin: rejected lines 2, the same in",
		"pin: rejects by reason null key 2, the same in",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("the results lack %q:\n%s", want, md)
		}
	}
	charts := s.charts()
	if len(charts) != 2 || len(charts[0].series) != 8 || len(charts[0].series[0].points) != 2 {
		t.Errorf("charts: %+v", charts)
	}
}
