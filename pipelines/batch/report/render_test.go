package report_test

import (
	"bytes"
	"encoding/json"
	"html"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pinpipe/pinpipe/pipelines/batch/report"
	"github.com/pinpipe/pinpipe/transforms"
)

const goldenDir = "../../../testdata/golden"

// loadGolden reads the checked-in insights and summary of the sample, the
// same files the batch job's golden tests compare against.
func loadGolden(t *testing.T) (transforms.Insights, transforms.Summary) {
	t.Helper()
	raw := map[string]json.RawMessage{}
	var in transforms.Insights
	for _, n := range in.Named() {
		b, err := os.ReadFile(filepath.Join(goldenDir, "insights", n.Name+".json"))
		if err != nil {
			t.Fatal(err)
		}
		raw[n.Name] = b
	}
	b, _ := json.Marshal(raw)
	if err := json.Unmarshal(b, &in); err != nil {
		t.Fatal(err)
	}
	var sum transforms.Summary
	b, err := os.ReadFile(filepath.Join(goldenDir, "summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &sum); err != nil {
		t.Fatal(err)
	}
	return in, sum
}

func render(t *testing.T, in transforms.Insights, sum transforms.Summary, meta report.Meta) string {
	t.Helper()
	var buf bytes.Buffer
	if err := report.Render(&buf, in, sum, meta); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

// chart is what a card of the page holds, found by scanning the HTML (or a
// browser's DOM dump: Chromium keeps attribute order and quoting).
type chart struct {
	// Body is the card's markup; Text is Body unescaped, to look for labels
	// in (html/template writes "50+" as "50&#43;").
	Body, Text string
	SVGs       int
	Bars       int
	NoData     bool
}

var (
	articleRE = regexp.MustCompile(`(?s)<article[^>]*?data-(insight|quality)="([^"]*)"[^>]*>(.*?)</article>`)
	barRE     = regexp.MustCompile(`<rect class="bar"`)
)

// charts returns the page's cards by kind ("insight", "quality") and name.
// A name seen twice is reported as an error by the caller through dup.
func charts(doc string) (cards map[string]map[string]chart, dup []string) {
	cards = map[string]map[string]chart{"insight": {}, "quality": {}}
	for _, m := range articleRE.FindAllStringSubmatch(doc, -1) {
		kind, name, body := m[1], m[2], m[3]
		if _, ok := cards[kind][name]; ok {
			dup = append(dup, name)
		}
		cards[kind][name] = chart{Body: body, Text: html.UnescapeString(body), SVGs: strings.Count(body, "<svg"), Bars: len(barRE.FindAllString(body, -1)),
			NoData: strings.Contains(body, `class="nodata"`)}
	}
	return cards, dup
}

// rowKeys returns each row's key values as text (every field that is not the
// measure), and how many rows an insight has.
func rowKeys(t *testing.T, rows any) [][]string {
	t.Helper()
	b, _ := json.Marshal(rows)
	var objs []map[string]any
	if err := json.Unmarshal(b, &objs); err != nil {
		t.Fatal(err)
	}
	measures := map[string]bool{"category_count": true, "follower_count": true, "median_follower_count": true, "users_joined": true}
	var out [][]string
	for _, o := range objs {
		var keys []string
		for k, v := range o {
			if measures[k] {
				continue
			}
			switch v := v.(type) {
			case string:
				keys = append(keys, v)
			case float64:
				keys = append(keys, strconv.FormatFloat(v, 'f', -1, 64))
			}
		}
		out = append(out, keys)
	}
	return out
}

func TestRenderEveryInsight(t *testing.T) {
	in, sum := loadGolden(t)
	doc := render(t, in, sum, report.Meta{Started: time.Date(2025, 3, 1, 6, 0, 0, 0, time.UTC), WallTime: 3200 * time.Millisecond,
		Runner: "direct", Format: "parquet", Shards: 16, Input: "testdata/sample", Output: "out/demo"})
	cards, dup := charts(doc)
	if len(dup) > 0 {
		t.Errorf("charts on the page twice: %v", dup)
	}
	if len(cards["insight"]) != 8 {
		t.Errorf("%d insight charts, want 8", len(cards["insight"]))
	}
	for _, n := range in.Named() {
		c, ok := cards["insight"][n.Name]
		if !ok {
			t.Errorf("%s: no chart", n.Name)
			continue
		}
		rows := reflect.ValueOf(n.Rows).Len()
		if c.SVGs != 1 || c.Bars != rows {
			t.Errorf("%s: %d svg, %d bars; want 1 svg and one bar per row (%d)", n.Name, c.SVGs, c.Bars, rows)
		}
		for _, keys := range rowKeys(t, n.Rows) {
			for _, k := range keys {
				if !strings.Contains(c.Text, ">"+k+"<") {
					t.Errorf("%s: no label %q", n.Name, k)
				}
			}
		}
	}
	// Ties: 2019 has two top categories, 2020 three.
	year := cards["insight"]["top_category_by_year"].Body
	for _, want := range []string{">2-way tie<", ">3-way tie<"} {
		if !strings.Contains(year, want) {
			t.Errorf("top_category_by_year: no %q marker", want)
		}
	}
	// Axis titles and values on bars.
	for name, want := range map[string][]string{
		"top_category_by_country":                     {">posts in the category<", ">country<", ">category<"},
		"top_user_by_country":                         {">followers<", ">7M<"},
		"median_followers_by_age_group":               {">median followers<", ">age group<", ">81.5k<", ">307k<"},
		"users_joined_by_year":                        {">users<", ">year joined<", ">39<"},
		"median_followers_by_join_year_and_age_group": {">18-24<", ">50+<", ">1M<"},
	} {
		for _, w := range want {
			if !strings.Contains(cards["insight"][name].Text, w) {
				t.Errorf("%s: no %q", name, w)
			}
		}
	}

	// Data quality: one bar per reason, raw field and column of each table.
	wantBars := map[string]int{}
	for _, st := range sum {
		wantBars["rejected_by_reason"] += len(st.RejectedBy)
		wantBars["fields_nulled"] += len(st.Unparsable)
		wantBars["nulls_by_column"] += len(st.Nulls)
	}
	for name, n := range wantBars {
		if got := cards["quality"][name].Bars; got != n {
			t.Errorf("%s: %d bars, want %d", name, got, n)
		}
	}
	outcome := cards["quality"]["records_by_outcome"].Text
	for _, w := range []string{">429 read<", ">406<", ">duplicates dropped<", ">rejected<"} {
		if !strings.Contains(outcome, w) {
			t.Errorf("records_by_outcome: no %q", w)
		}
	}
	if !strings.Contains(cards["quality"]["nulls_by_column"].Text, ">19 · 4.7%<") {
		t.Error("nulls_by_column: no share of rows on the description bar")
	}
	for _, w := range []string{"2025-03-01 06:00:00 UTC", "3.2 s", ">1,296<", ">1,218<", ">direct<", "out/demo"} {
		if !strings.Contains(doc, w) {
			t.Errorf("run figures: no %q", w)
		}
	}
}

// TestRenderSelfContained checks that the page loads nothing and runs
// nothing: no scripts, links, external images, fonts or imports.
func TestRenderSelfContained(t *testing.T) {
	in, sum := loadGolden(t)
	doc := strings.ToLower(render(t, in, sum, report.Meta{}))
	for _, bad := range []string{"<script", "<link", "<img", "<iframe", "http://", "https://", "url(", "@import", "@font-face", "src=", "href=", " on"} {
		if bad == " on" {
			if m := regexp.MustCompile(`\son[a-z]+=`).FindString(doc); m != "" {
				t.Errorf("event handler attribute %q in the page", m)
			}
			continue
		}
		if strings.Contains(doc, bad) {
			t.Errorf("page holds %q", bad)
		}
	}
}

func TestRenderEscapesHostileNames(t *testing.T) {
	const (
		script = `<script>alert(1)</script>`
		img    = `"><img src=x onerror=alert(2)>`
		title  = `</title><script>alert(3)</script>`
		amp    = `Tom & Jerry's "<u>"`
	)
	in := transforms.Insights{
		TopCategoryByCountry:                 []transforms.CountryCategory{{Country: title, Category: script, CategoryCount: 3}, {Country: title, Category: img, CategoryCount: 3}},
		TopCategoryByYear:                    []transforms.YearCategory{{PostYear: 2020, Category: script, CategoryCount: 1}},
		TopUserByCountry:                     []transforms.CountryUser{{Country: amp, UserName: script, FollowerCount: 10}, {Country: "x", UserName: img, FollowerCount: 7}},
		TopCategoryByAgeGroup:                []transforms.AgeGroupCategory{{AgeGroup: "18-24", Category: title, CategoryCount: 2}},
		MedianFollowersByAgeGroup:            []transforms.AgeGroupMedian{{AgeGroup: script, MedianFollowerCount: 1.5}},
		UsersJoinedByYear:                    []transforms.YearUsers{{JoinYear: 2016, UsersJoined: 2}},
		MedianFollowersByJoinYear:            []transforms.JoinYearMedian{{JoinYear: 2016, MedianFollowerCount: 10}},
		MedianFollowersByJoinYearAndAgeGroup: []transforms.JoinYearAgeGroupMedian{{JoinYear: 2016, AgeGroup: img, MedianFollowerCount: 10}},
	}
	sum := transforms.NewSummary([]transforms.TableStats{{Table: transforms.TablePin, Read: 1, Rejected: 1,
		RejectedBy: map[string]int64{script: 1}, Nulls: map[string]int64{img: 1}, Unparsable: map[string]int64{title: 1}}})
	doc := render(t, in, sum, report.Meta{Input: script, Output: img, Runner: title, Format: amp})
	low := strings.ToLower(doc)
	for _, bad := range []string{"<script", "<img", "<u>"} {
		if strings.Contains(low, bad) {
			i := strings.Index(low, bad)
			t.Errorf("unescaped %q in the page: ...%s...", bad, doc[max(0, i-60):min(len(doc), i+60)])
		}
	}
	for _, want := range []string{"&lt;script&gt;alert(1)&lt;/script&gt;", "&lt;img src=x onerror=alert(2)&gt;", "Tom &amp; Jerry"} {
		if !strings.Contains(doc, want) {
			t.Errorf("escaped %q not in the page", want)
		}
	}
	cards, _ := charts(doc)
	if got := cards["insight"]["top_category_by_country"].Bars; got != 2 {
		t.Errorf("hostile names: %d bars, want 2", got)
	}
}

func TestRenderEmpty(t *testing.T) {
	for name, in := range map[string]transforms.Insights{
		"zero value": {},
		"empty slices": {TopCategoryByCountry: []transforms.CountryCategory{}, TopCategoryByYear: []transforms.YearCategory{},
			TopUserByCountry: []transforms.CountryUser{}, TopCategoryByAgeGroup: []transforms.AgeGroupCategory{},
			MedianFollowersByAgeGroup: []transforms.AgeGroupMedian{}, UsersJoinedByYear: []transforms.YearUsers{},
			MedianFollowersByJoinYear: []transforms.JoinYearMedian{}, MedianFollowersByJoinYearAndAgeGroup: []transforms.JoinYearAgeGroupMedian{}},
	} {
		for _, sum := range []transforms.Summary{nil, transforms.NewSummary(nil)} {
			doc := render(t, in, sum, report.Meta{})
			cards, _ := charts(doc)
			if len(cards["insight"]) != 8 {
				t.Errorf("%s: %d insight cards, want 8", name, len(cards["insight"]))
			}
			for n, c := range cards["insight"] {
				if !c.NoData || c.SVGs != 0 || !strings.Contains(c.Body, ">no data<") {
					t.Errorf("%s: %s does not say no data: %s", name, n, c.Body)
				}
			}
			for n, c := range cards["quality"] {
				if !c.NoData || c.SVGs != 0 {
					t.Errorf("%s: quality chart %s drawn with no data", name, n)
				}
			}
		}
	}
}

// TestRenderOneValue covers charts whose values are all zero or one row:
// the scale must not divide by zero.
func TestRenderOneValue(t *testing.T) {
	in := transforms.Insights{
		TopCategoryByCountry:      []transforms.CountryCategory{{Country: "A", Category: "b", CategoryCount: 0}},
		MedianFollowersByAgeGroup: []transforms.AgeGroupMedian{{AgeGroup: "50+", MedianFollowerCount: 0}},
	}
	doc := render(t, in, nil, report.Meta{})
	if strings.Contains(doc, "NaN") || strings.Contains(doc, "Inf") {
		t.Error("NaN or Inf coordinates in the page")
	}
	cards, _ := charts(doc)
	if cards["insight"]["top_category_by_country"].Bars != 1 || cards["insight"]["median_followers_by_age_group"].Bars != 1 {
		t.Error("a zero value has no bar")
	}
}
