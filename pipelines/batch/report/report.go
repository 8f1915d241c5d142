// Package report renders a batch run as one self-contained HTML page: a
// chart for each of the eight insights, the data-quality figures and the
// run's counts and timings. The charts are inline SVG laid out in Go and the
// styles are inline, so that the page opens from a bucket, a mail or a CI
// artifact with no scripts, no fonts and no network.
package report

import (
	"bufio"
	"cmp"
	"fmt"
	"html/template"
	"io"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/pinpipe/pinpipe/transforms"
)

// Meta is what the report says about the run itself; the pipeline cannot
// know it, the launcher does.
type Meta struct {
	// Started is when the run started; shown in UTC.
	Started time.Time
	// WallTime is from the start of the run to the report.
	WallTime time.Duration
	// Phases break WallTime down ("pipeline", "warehouse load"), in order.
	Phases []Phase
	// Input, Output, Runner, Format and Shards are the run's options.
	Input, Output  string
	Runner, Format string
	Shards         int
	// Tables says where the tables are, for the page's query examples.
	Tables Tables
}

// Phase is one timed step of a run.
type Phase struct {
	Name     string
	Duration time.Duration
}

// Render writes the report page for one run.
func Render(w io.Writer, in transforms.Insights, sum transforms.Summary, meta Meta) error {
	bw := bufio.NewWriter(w)
	if err := page.Execute(bw, newView(in, sum, meta)); err != nil {
		return fmt.Errorf("rendering the report: %w", err)
	}
	return bw.Flush()
}

// card is one chart with its heading. Chart is nil when there is nothing to
// draw, and the card says NoData instead.
type card struct {
	// Insight is the insight's output name (a data-insight attribute the
	// browser test finds the chart by); Quality names a data-quality chart.
	Insight, Quality string
	Title, Sub       string
	Facts            string
	File             string
	Chart            *svgChart
	NoData           string
	// Span is the card's width in the page's six-column grid: 6, 3 or 2.
	Span   int
	Scroll bool
}

type kpi struct{ Label, Value, Note string }

// countRow is one table's line of the counts table; Total marks the sum.
type countRow struct {
	Table                                                string
	Read, Clean, Rejected, Dups, Rows, Nulled, NullCells int64
	Total                                                bool
}

type view struct {
	Meta     Meta
	Started  string
	WallTime string
	Phases   []kpi
	KPIs     []kpi
	Counts   []countRow
	Insights []card
	Quality  []card
	Queries  []Query
}

func newView(in transforms.Insights, sum transforms.Summary, meta Meta) view {
	v := view{Meta: meta, Started: "–", WallTime: duration(meta.WallTime)}
	if !meta.Started.IsZero() {
		v.Started = meta.Started.UTC().Format("2006-01-02 15:04:05 UTC")
	}
	for _, p := range meta.Phases {
		v.Phases = append(v.Phases, kpi{Label: p.Name, Value: duration(p.Duration)})
	}
	v.Counts = counts(sum)
	tot := v.Counts[len(v.Counts)-1]
	pct := ""
	if tot.Read > 0 {
		pct = strconv.FormatFloat(100*float64(tot.Rejected)/float64(tot.Read), 'f', 1, 64) + "% of records read"
	}
	v.KPIs = []kpi{
		{"records read", exact(float64(tot.Read)), "all tables"},
		{"rows written", exact(float64(tot.Rows)), "one per ind and table"},
		{"rejected", exact(float64(tot.Rejected)), pct},
		{"duplicates dropped", exact(float64(tot.Dups)), "re-sent records"},
		{"fields nulled", exact(float64(tot.Nulled)), "unparsable values"},
		{"wall time", v.WallTime, "start to report"},
	}
	v.Insights = insightCards(in)
	v.Quality = qualityCards(sum)
	v.Queries = queries(meta.Tables)
	return v
}

// counts is the per-table table of the summary with a total row last.
func counts(sum transforms.Summary) []countRow {
	var rows []countRow
	total := countRow{Table: "total", Total: true}
	for _, t := range sum.TableNames() {
		st := sum[t]
		r := countRow{Table: t, Read: st.Read, Clean: st.Clean, Rejected: st.Rejected, Dups: st.Duplicates, Rows: st.Rows,
			Nulled: sumMap(st.Unparsable), NullCells: sumMap(st.Nulls)}
		rows = append(rows, r)
		total.Read += r.Read
		total.Clean += r.Clean
		total.Rejected += r.Rejected
		total.Dups += r.Dups
		total.Rows += r.Rows
		total.Nulled += r.Nulled
		total.NullCells += r.NullCells
	}
	return append(rows, total)
}

func sumMap(m map[string]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

// plural says "1 country" or "3 countries".
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return exact(float64(n)) + " " + many
}

// groupFacts describes a two-key insight: how many groups, rows and ties.
func groupFacts(items []item, one, many string) string {
	groups := map[string]int{}
	for _, it := range items {
		groups[it.Group]++
	}
	ties := 0
	for _, n := range groups {
		if n > 1 {
			ties++
		}
	}
	s := plural(len(groups), one, many) + " · " + plural(len(items), "row", "rows")
	if ties > 0 {
		s += " · " + plural(ties, "tie", "ties")
	}
	return s
}

// finish sets a card's chart, or its "no data", and its width and
// scrolling. The width follows the chart's, so that the grid and the charts
// agree; an empty card keeps the width its chart would have had.
func (c *card) finish(chart *svgChart, n int) {
	switch {
	case chart.W > halfWidth:
		c.Span = 6
	case chart.W > thirdWidth:
		c.Span = 3
	default:
		c.Span = 2
	}
	if n == 0 {
		c.NoData = "no data"
		c.Facts = "0 rows"
		return
	}
	c.Chart = chart
	c.Scroll = chart.H > scrollHeight
	if c.Scroll {
		c.File += " · scroll for all " + plural(n, "row", "rows")
	}
	chart.Label = c.Title
}

func insightCards(in transforms.Insights) []card {
	byName := map[string]*card{}
	mk := func(name, title, sub string) *card {
		c := &card{Insight: name, Title: title, Sub: sub, File: "insights/" + name + ".json"}
		byName[name] = c
		return c
	}

	// Two keys: one labelled bar per row, grouped by the first key.
	{
		var items []item
		for _, r := range in.TopCategoryByCountry {
			items = append(items, item{Group: r.Country, Label: r.Category, Value: float64(r.CategoryCount),
				Title: r.Country + " · " + r.Category + ": " + plural(int(r.CategoryCount), "post", "posts")})
		}
		c := mk("top_category_by_country", "Top category by country", "The most-posted category in each country; tied categories are all shown.")
		c.Facts = groupFacts(items, "country", "countries")
		c.finish(hbar(items, hbarOpts{Width: wideWidth, GroupHead: "country", LabelHead: "category", ValueTitle: "posts in the category",
			Whole: true, ShowTies: true}), len(items))
	}
	{
		var items []item
		for _, r := range in.TopCategoryByYear {
			y := strconv.Itoa(r.PostYear)
			items = append(items, item{Group: y, Label: r.Category, Value: float64(r.CategoryCount),
				Title: y + " · " + r.Category + ": " + plural(int(r.CategoryCount), "post", "posts")})
		}
		c := mk("top_category_by_year", "Top category by year", "The most-posted category each year, 2018–2022, by the post's timestamp.")
		c.Facts = groupFacts(items, "year", "years")
		c.finish(hbar(items, hbarOpts{Width: halfWidth, GroupHead: "year", LabelHead: "category", ValueTitle: "posts in the category",
			Whole: true, ShowTies: true}), len(items))
	}
	{
		var items []item
		for _, r := range in.TopUserByCountry {
			items = append(items, item{Group: r.Country, Label: r.UserName, Value: float64(r.FollowerCount),
				Title: r.Country + " · " + r.UserName + ": " + exact(float64(r.FollowerCount)) + " followers"})
		}
		c := mk("top_user_by_country", "Top user by country", "The largest follower count among each country's posts with a named user; users tied on it are all shown.")
		c.Facts = groupFacts(items, "country", "countries")
		c.finish(hbar(items, hbarOpts{Width: wideWidth, GroupHead: "country", LabelHead: "user", ValueTitle: "followers",
			Compact: true, ShowTies: true}), len(items))
	}
	{
		var items []item
		for _, r := range in.TopCategoryByAgeGroup {
			items = append(items, item{Group: r.AgeGroup, Label: r.Category, Value: float64(r.CategoryCount),
				Title: r.AgeGroup + " · " + r.Category + ": " + plural(int(r.CategoryCount), "post", "posts")})
		}
		c := mk("top_category_by_age_group", "Top category by age group", "The most-posted category in each age group of the posting user.")
		c.Facts = groupFacts(items, "age group", "age groups")
		c.finish(hbar(items, hbarOpts{Width: halfWidth, GroupHead: "age group", LabelHead: "category", ValueTitle: "posts in the category",
			Whole: true, ShowTies: true}), len(items))
	}

	// One key: columns.
	{
		var cols []column
		for _, r := range in.MedianFollowersByAgeGroup {
			cols = append(cols, column{Cluster: r.AgeGroup, Value: r.MedianFollowerCount,
				Title: r.AgeGroup + ": median " + exact(r.MedianFollowerCount) + " followers"})
		}
		c := mk("median_followers_by_age_group", "Median followers by age group", "Median follower count over the distinct users of each age group.")
		c.Facts = plural(len(cols), "age group", "age groups")
		c.finish(columns(cols, colOpts{Width: thirdWidth, XTitle: "age group", YTitle: "median followers"}), len(cols))
	}
	{
		var cols []column
		for _, r := range in.UsersJoinedByYear {
			y := strconv.Itoa(r.JoinYear)
			cols = append(cols, column{Cluster: y, Value: float64(r.UsersJoined), Title: y + ": " + plural(int(r.UsersJoined), "user", "users") + " joined"})
		}
		c := mk("users_joined_by_year", "Users joined by year", "Distinct user names by the year they joined.")
		c.Facts = plural(len(cols), "year", "years")
		c.finish(columns(cols, colOpts{Width: thirdWidth, XTitle: "year joined", YTitle: "users", Whole: true}), len(cols))
	}
	{
		var cols []column
		for _, r := range in.MedianFollowersByJoinYear {
			y := strconv.Itoa(r.JoinYear)
			cols = append(cols, column{Cluster: y, Value: r.MedianFollowerCount, Title: y + ": median " + exact(r.MedianFollowerCount) + " followers"})
		}
		c := mk("median_followers_by_join_year", "Median followers by join year", "Median follower count of the users who joined each year.")
		c.Facts = plural(len(cols), "year", "years")
		c.finish(columns(cols, colOpts{Width: thirdWidth, XTitle: "year joined", YTitle: "median followers"}), len(cols))
	}
	{
		rows := in.MedianFollowersByJoinYearAndAgeGroup
		var groups []string
		for _, r := range rows {
			if !slices.Contains(groups, r.AgeGroup) {
				groups = append(groups, r.AgeGroup)
			}
		}
		slices.Sort(groups)
		var cols []column
		for _, r := range rows {
			y := strconv.Itoa(r.JoinYear)
			cols = append(cols, column{Cluster: y, Series: slices.Index(groups, r.AgeGroup), Value: r.MedianFollowerCount,
				Title: y + " · " + r.AgeGroup + ": median " + exact(r.MedianFollowerCount) + " followers"})
		}
		years := map[string]bool{}
		for _, col := range cols {
			years[col.Cluster] = true
		}
		c := mk("median_followers_by_join_year_and_age_group", "Median followers by join year and age group",
			"Median follower count by the year users joined, one bar per age group.")
		c.Facts = plural(len(years), "year", "years") + " · " + plural(len(cols), "row", "rows")
		c.finish(columns(cols, colOpts{Width: wideWidth, XTitle: "year joined", YTitle: "median followers", Series: groups}), len(cols))
	}

	// The page's order: by topic, and so that the grid's rows fill up
	// (full; half, half; full; third, third, third; full). Every insight is
	// in it exactly once (the tests check).
	order := []string{
		"top_category_by_country",
		"top_category_by_year", "top_category_by_age_group",
		"top_user_by_country",
		"users_joined_by_year", "median_followers_by_join_year", "median_followers_by_age_group",
		"median_followers_by_join_year_and_age_group",
	}
	var out []card
	for _, n := range order {
		out = append(out, *byName[n])
	}
	return out
}

func qualityCards(sum transforms.Summary) []card {
	tables := sum.TableNames()
	var out []card

	outcome := card{Quality: "records_by_outcome", Title: "Records by outcome",
		Sub: "Every record read becomes a clean row, a dropped duplicate or a dead letter.", File: "summary.json"}
	var segs [][]segment
	var n int64
	for _, t := range tables {
		st := sum[t]
		n += st.Read
		segs = append(segs, []segment{{"rows written", float64(st.Rows), palette[0]},
			{"duplicates dropped", float64(st.Duplicates), palette[1]}, {"rejected", float64(st.Rejected), "#c44536"}})
	}
	outcome.Facts = plural(len(tables), "table", "tables")
	// No records read: nothing to draw, even with every table listed.
	drawn := len(tables)
	if n == 0 {
		drawn = 0
	}
	outcome.finish(stacked(tables, segs, halfWidth, "read"), drawn)
	if n == 0 {
		outcome.NoData = "no records were read"
	}
	out = append(out, outcome)

	perTable := func(name, title, sub, file, valueTitle, labelHead, none string, m func(transforms.TableStats) map[string]int64, note func(t string, v int64) string) card {
		var items []item
		for _, t := range tables {
			kv := m(sum[t])
			keys := slices.SortedFunc(maps.Keys(kv), func(a, b string) int { return cmp.Or(cmp.Compare(kv[b], kv[a]), cmp.Compare(a, b)) })
			for _, k := range keys {
				it := item{Group: t, Label: k, Value: float64(kv[k]), Title: t + " · " + k + ": " + exact(float64(kv[k]))}
				if note != nil {
					it.Note = note(t, kv[k])
				}
				items = append(items, it)
			}
		}
		c := card{Quality: name, Title: title, Sub: sub, File: file}
		c.Facts = plural(len(items), "row", "rows")
		c.finish(hbar(items, hbarOpts{Width: halfWidth, GroupHead: "table", LabelHead: labelHead, ValueTitle: valueTitle, Whole: true}), len(items))
		if len(items) == 0 {
			c.NoData = none
		}
		return c
	}
	// Paired by height: the short outcome bars beside the fields nulled,
	// rejects beside nulls.
	out = append(out, perTable("fields_nulled", "Unparsable fields nulled",
		"Raw fields that could not be parsed: set to null, the row kept.", "summary.json: fields_nulled",
		"values nulled", "raw field", "no field was unparsable",
		func(s transforms.TableStats) map[string]int64 { return s.Unparsable }, nil))
	out = append(out, perTable("rejected_by_reason", "Rejected records by reason",
		"Records sent to the dead letters, never failing the job.", "summary.json: rejected_by_reason",
		"records rejected", "reason", "no records were rejected",
		func(s transforms.TableStats) map[string]int64 { return s.RejectedBy }, nil))
	nulls := perTable("nulls_by_column", "Nulls by column",
		"Null cells in each clean table, and the share of its rows.", "summary.json: nulls_by_column",
		"null cells", "column", "no nulls in the clean tables",
		func(s transforms.TableStats) map[string]int64 { return s.Nulls },
		func(t string, v int64) string {
			rows := sum[t].Rows
			if rows == 0 {
				return exact(float64(v))
			}
			return exact(float64(v)) + " · " + strconv.FormatFloat(100*float64(v)/float64(rows), 'f', 1, 64) + "%"
		})
	out = append(out, nulls)
	return out
}

var page = template.Must(template.New("report").Funcs(template.FuncMap{"n": num, "int": func(n int64) string { return exact(float64(n)) }}).Parse(pageHTML))
