package transforms

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestAgeGroup(t *testing.T) {
	for age, want := range map[int64]string{-1: "", 0: "", 17: "", 18: "18-24", 24: "18-24", 25: "25-35", 35: "25-35", 36: "36-50", 50: "36-50", 51: "50+", 120: "50+"} {
		if got := AgeGroup(Field{Int: age}); got != want {
			t.Errorf("AgeGroup(%d) = %q, want %q", age, got, want)
		}
	}
	if got := AgeGroup(Field{Null: true, Int: 30}); got != "" {
		t.Errorf("AgeGroup(null) = %q", got)
	}
}

func TestMedian(t *testing.T) {
	tests := []struct {
		in   []int64
		want float64
	}{
		{[]int64{5}, 5}, {[]int64{3, 1, 2}, 2}, {[]int64{4, 1, 3, 2}, 2.5}, {[]int64{10, 20}, 15}, {[]int64{1, 2}, 1.5},
		{[]int64{1 << 62, 1<<62 + 2}, float64(1<<62 + 1)},
	}
	for _, tc := range tests {
		if got := Median(append([]int64(nil), tc.in...)); got != tc.want {
			t.Errorf("Median(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

// postOf is the post of rows given as structs (nil for a missing part), its
// fields decoded from their encoded rows as DedupJoinSorted decodes them.
func postOf(pin *Pin, geo *Geo, user *User) Post {
	fields := func(s *Schema, row any) []Field {
		f, err := s.DecodeFields(AppendRow(nil, row), nil)
		if err != nil {
			panic(err)
		}
		return f
	}
	var p Post
	if pin != nil {
		p.Pin = fields(&PinSchema, pin)
	}
	if geo != nil {
		p.Geo = fields(&GeoSchema, geo)
	}
	if user != nil {
		p.User = fields(&UserSchema, user)
	}
	return p
}

// insightPosts covers the insights' edge cases: ties, nulls in every
// grouping column, years outside 2018-2022, ages without a group, posts
// missing a part and a user posting twice with the same follower count.
func insightPosts() []Post {
	pin := func(fc int64, cat string) *Pin {
		p := &Pin{FollowerCount: &fc}
		if fc < 0 {
			p.FollowerCount = nil
		}
		if cat != "" {
			p.Category = &cat
		}
		return p
	}
	geo := func(country, when string) *Geo {
		g := &Geo{Timestamp: ts(when)}
		if country != "" {
			g.Country = &country
		}
		return g
	}
	user := func(name string, age int64, joined string) *User {
		u := &User{Age: &age, DateJoined: ts(joined)}
		if name != "" {
			u.UserName = &name
		}
		return u
	}
	return []Post{
		postOf(pin(100, "art"), geo("Chad", "2019-01-01 00:00:00"), user("Ann", 20, "2015-05-05 00:00:00")),
		postOf(pin(100, "art"), geo("Chad", "2019-02-01 00:00:00"), user("Ann", 20, "2015-05-05 00:00:00")), // same user, same count: one distinct tuple
		postOf(pin(300, "travel"), geo("Chad", "2019-03-01 00:00:00"), user("Bob", 30, "2016-01-01 00:00:00")),
		postOf(pin(300, "travel"), geo("Chad", "2020-03-01 00:00:00"), user("Cat", 30, "2016-01-01 00:00:00")), // tie for Chad's top user
		postOf(pin(50, "quotes"), geo("Peru", "2017-12-31 23:59:59"), user("Dan", 17, "2016-06-01 00:00:00")),  // year and age out of range
		postOf(pin(-1, ""), geo("Peru", "2023-01-01 00:00:00"), user("", 60, "2017-01-01 00:00:00")),           // null count, category and name
		postOf(pin(70, "quotes"), geo("", "2021-01-01 00:00:00"), user("Eve", 55, "2017-01-01 00:00:00")),      // null country
		postOf(pin(80, "art"), nil, user("Fay", 40, "2017-02-02 00:00:00")),                                    // no geo
		postOf(nil, geo("Peru", "2021-01-01 00:00:00"), user("Gus", 45, "2017-03-03 00:00:00")),                // no pin
		postOf(pin(90, "art"), geo("Peru", "2021-01-01 00:00:00"), nil),                                        // no user
		postOf(pin(40, "art"), geo("Peru", "2021-06-01 00:00:00"), user("", 22, "2015-01-01 00:00:00")),        // null name counts in medians
	}
}

func TestInsightsEdgeCases(t *testing.T) {
	a := NewPartials()
	for _, p := range insightPosts() {
		a.Add(p)
	}
	got := a.Finish()
	want := Insights{
		TopCategoryByCountry: []CountryCategory{{"Chad", "art", 2}, {"Chad", "travel", 2}, {"Peru", "art", 2}},
		TopCategoryByYear:    []YearCategory{{2019, "art", 2}, {2020, "travel", 1}, {2021, "art", 2}},
		TopUserByCountry:     []CountryUser{{"Chad", "Bob", 300}, {"Chad", "Cat", 300}, {"Peru", "Dan", 50}},
		TopCategoryByAgeGroup: []AgeGroupCategory{{"18-24", "art", 3}, {"25-35", "travel", 2},
			{"36-50", "art", 1}, {"50+", "quotes", 1}},
		MedianFollowersByAgeGroup: []AgeGroupMedian{{"18-24", 70}, {"25-35", 300}, {"36-50", 80}, {"50+", 70}},
		UsersJoinedByYear:         []YearUsers{{2015, 1}, {2016, 3}, {2017, 3}},
		MedianFollowersByJoinYear: []JoinYearMedian{{2015, 70}, {2016, 300}, {2017, 75}},
		MedianFollowersByJoinYearAndAgeGroup: []JoinYearAgeGroupMedian{{2015, "18-24", 70}, {2016, "25-35", 300},
			{2017, "36-50", 80}, {2017, "50+", 70}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("insights (-want +got):\n%s", diff)
	}

	// Merging per-post partials in any grouping gives the same answer.
	m := NewPartials()
	for _, p := range insightPosts() {
		one := NewPartials()
		one.Add(p)
		m.Merge(one)
	}
	if diff := cmp.Diff(want, m.Finish()); diff != "" {
		t.Errorf("merged insights differ (-want +got):\n%s", diff)
	}
}

func TestInsightsEmpty(t *testing.T) {
	got := NewPartials().Finish()
	for _, n := range got.Named() {
		if n.Rows == nil {
			t.Errorf("%s is nil, want an empty array", n.Name)
		}
	}
}

// TestFoldingASeenPostAllocatesNothing: once a post's groups have been
// seen, folding it into the counts (AddCounts) and stating its facts
// (PostFacts, with scratch space) allocate nothing, so the batch merge's
// insight fold costs no allocation per row.
func TestFoldingASeenPostAllocatesNothing(t *testing.T) {
	a := NewPartials()
	posts := insightPosts()
	var buf []byte
	fold := func() {
		for _, p := range posts {
			a.AddCounts(p)
			buf = PostFacts(p, buf, func([]byte) {})
		}
	}
	fold()
	if n := testing.AllocsPerRun(10, fold); n != 0 {
		t.Errorf("folding %d seen posts allocated %v times", len(posts), n)
	}
}
