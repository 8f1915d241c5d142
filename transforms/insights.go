package transforms

import (
	"cmp"
	"maps"
	"slices"
	"sort"
	"strconv"
	"time"
)

// AgeGroup maps an age (a user row's age field) to the contract's group
// label, or "" for no group (a null age has none).
func AgeGroup(age Field) string {
	if age.Null {
		return ""
	}
	switch a := age.Int; {
	case a >= 18 && a <= 24:
		return "18-24"
	case a >= 25 && a <= 35:
		return "25-35"
	case a >= 36 && a <= 50:
		return "36-50"
	case a > 50:
		return "50+"
	}
	return ""
}

// GroupCategory keys a category count by a group: a country, a year or an
// age group.
type GroupCategory struct {
	Group    string
	Category string
}

// TopUsers is the largest follower count seen in a country and the distinct
// user names posting there with it.
type TopUsers struct {
	Max   int64
	Names map[string]bool
}

// MedianGroup is one group a follower median is taken in: an age group
// (MedianByAge), a join year (MedianByJoinYear) or both.
type MedianGroup struct {
	Kind     uint8
	AgeGroup string
	JoinYear int
}

// Median kinds.
const (
	MedianByAge uint8 = iota + 1
	MedianByJoinYear
	MedianByJoinYearAndAge
)

// Partials are the mergeable aggregates behind the eight insights: counts
// add up, maxima compare, and the distinct sets the medians and the users
// joined are taken over are kept as histograms of distinct facts (a fact is
// counted once however many posts state it; see facts.go). A histogram is
// as large as the number of distinct follower counts, not of users, so
// partials stay small whatever the input.
type Partials struct {
	ByCountry  map[GroupCategory]int64
	ByYear     map[GroupCategory]int64
	ByAgeGroup map[GroupCategory]int64
	TopUser    map[string]TopUsers
	// Followers counts, per median group, distinct (user, group, follower
	// count) facts by follower count.
	Followers map[MedianGroup]map[int64]int64
	// UsersJoined counts distinct (join year, user name) facts per year.
	UsersJoined map[int]int64

	// pending are facts not yet made distinct, for in-memory use (Add);
	// the batch job makes them distinct with a sort-merge instead.
	pending map[string]bool
	// strs interns the grouping texts (categories, countries, years) the
	// maps above are keyed by, so that folding a post whose groups were
	// seen before allocates nothing: it is as small as those maps' keys.
	strs map[string]string
	// facts is Add's scratch space for encoding facts.
	facts []byte
}

// NewPartials returns empty partial aggregates.
func NewPartials() *Partials {
	return &Partials{
		ByCountry: map[GroupCategory]int64{}, ByYear: map[GroupCategory]int64{}, ByAgeGroup: map[GroupCategory]int64{},
		TopUser: map[string]TopUsers{}, Followers: map[MedianGroup]map[int64]int64{}, UsersJoined: map[int]int64{},
	}
}

// Post is one ind's rows after deduplication, each as its table's fields
// in the schema's column order (Schema.DecodeFields): views into the
// encoded rows, valid as long as the rows are, with no row struct and no
// string per field. A part missing from the input has no fields (nil), and
// inner joins skip the post.
type Post struct {
	Pin, Geo, User []Field
}

// The columns the insights read, by their index in the table's schema.
var (
	pinFollowerCount = PinSchema.Column("follower_count")
	pinCategory      = PinSchema.Column("category")
	geoCountry       = GeoSchema.Column("country")
	geoTimestamp     = GeoSchema.Column("timestamp")
	userName         = UserSchema.Column("user_name")
	userAge          = UserSchema.Column("age")
	userDateJoined   = UserSchema.Column("date_joined")
)

// fieldYear is the UTC year of a Timestamp column's field.
func fieldYear(f Field) int { return time.Unix(f.Int, f.Nsec).UTC().Year() }

// Add folds one post into the aggregates, its distinct facts kept in
// memory until Finish: for tests and small inputs. The batch job uses
// AddCounts and PostFacts, and makes facts distinct on disk.
func (a *Partials) Add(post Post) {
	a.AddCounts(post)
	if a.pending == nil {
		a.pending = map[string]bool{}
	}
	a.facts = PostFacts(post, a.facts, func(f []byte) { a.pending[string(f)] = true })
}

// AddCounts folds one post into the counts and maxima. Rows whose grouping
// value (country, year, age group, category) is null are left out of that
// insight, as are null follower counts. A post whose groups were seen
// before allocates nothing.
func (a *Partials) AddCounts(post Post) {
	p, g, u := post.Pin, post.Geo, post.User
	if p == nil {
		return
	}
	category := p[pinCategory]
	if g != nil && !category.Null {
		if country := g[geoCountry]; !country.Null {
			a.ByCountry[GroupCategory{a.intern(country.Bytes), a.intern(category.Bytes)}]++
		}
		if ts := g[geoTimestamp]; !ts.Null {
			if y := fieldYear(ts); y >= 2018 && y <= 2022 {
				var buf [20]byte
				a.ByYear[GroupCategory{a.intern(strconv.AppendInt(buf[:0], int64(y), 10)), a.intern(category.Bytes)}]++
			}
		}
	}
	if u == nil {
		return
	}
	if followers, name := p[pinFollowerCount], u[userName]; g != nil && !g[geoCountry].Null && !followers.Null && !name.Null {
		a.addTopUser(g[geoCountry].Bytes, followers.Int, name.Bytes)
	}
	if group := AgeGroup(u[userAge]); group != "" && !category.Null {
		a.ByAgeGroup[GroupCategory{group, a.intern(category.Bytes)}]++
	}
}

// intern returns b as a string, allocated the first time it is seen.
func (a *Partials) intern(b []byte) string {
	if s, ok := a.strs[string(b)]; ok {
		return s
	}
	if a.strs == nil {
		a.strs = map[string]string{}
	}
	s := string(b)
	a.strs[s] = s
	return s
}

// addTopUser keeps name as a top user of country if followers is the
// largest count seen there, beside the names tied with it. A post below the
// maximum, or a name already kept, allocates nothing.
func (a *Partials) addTopUser(country []byte, followers int64, name []byte) {
	cur, ok := a.TopUser[string(country)]
	switch {
	case !ok:
		cur = TopUsers{Max: followers, Names: map[string]bool{}}
		a.TopUser[a.intern(country)] = cur
	case followers > cur.Max:
		// A new maximum: its names replace the old ones, in the same map
		// (Partials own their name sets, Merge copies names).
		clear(cur.Names)
		cur.Max = followers
		a.TopUser[a.intern(country)] = cur
	case followers < cur.Max:
		return
	}
	if !cur.Names[string(name)] {
		cur.Names[string(name)] = true
	}
}

// Merge folds b into a. Histograms add up, so the facts behind them must be
// distinct across partials (the batch job's are); pending facts union.
func (a *Partials) Merge(b *Partials) {
	addCounts(a.ByCountry, b.ByCountry)
	addCounts(a.ByYear, b.ByYear)
	addCounts(a.ByAgeGroup, b.ByAgeGroup)
	for c, t := range b.TopUser {
		for n := range t.Names {
			a.addTopUser([]byte(c), t.Max, []byte(n))
		}
	}
	for g, h := range b.Followers {
		if a.Followers[g] == nil {
			a.Followers[g] = map[int64]int64{}
		}
		addCounts(a.Followers[g], h)
	}
	addCounts(a.UsersJoined, b.UsersJoined)
	if len(b.pending) > 0 && a.pending == nil {
		a.pending = map[string]bool{}
	}
	for f := range b.pending {
		a.pending[f] = true
	}
}

func addCounts[K comparable](dst, src map[K]int64) {
	for k, n := range src {
		dst[k] += n
	}
}

// The eight insights' rows, with the contract's field names.
type (
	CountryCategory struct {
		Country       string `json:"country"`
		Category      string `json:"category"`
		CategoryCount int64  `json:"category_count"`
	}
	YearCategory struct {
		PostYear      int    `json:"post_year"`
		Category      string `json:"category"`
		CategoryCount int64  `json:"category_count"`
	}
	CountryUser struct {
		Country       string `json:"country"`
		UserName      string `json:"user_name"`
		FollowerCount int64  `json:"follower_count"`
	}
	AgeGroupCategory struct {
		AgeGroup      string `json:"age_group"`
		Category      string `json:"category"`
		CategoryCount int64  `json:"category_count"`
	}
	AgeGroupMedian struct {
		AgeGroup            string  `json:"age_group"`
		MedianFollowerCount float64 `json:"median_follower_count"`
	}
	YearUsers struct {
		JoinYear    int   `json:"join_year"`
		UsersJoined int64 `json:"users_joined"`
	}
	JoinYearMedian struct {
		JoinYear            int     `json:"join_year"`
		MedianFollowerCount float64 `json:"median_follower_count"`
	}
	JoinYearAgeGroupMedian struct {
		JoinYear            int     `json:"join_year"`
		AgeGroup            string  `json:"age_group"`
		MedianFollowerCount float64 `json:"median_follower_count"`
	}
)

// Insights are the eight answers. Every slice is non-nil, so that an empty
// answer is written as [] and not null.
type Insights struct {
	TopCategoryByCountry                 []CountryCategory        `json:"top_category_by_country"`
	TopCategoryByYear                    []YearCategory           `json:"top_category_by_year"`
	TopUserByCountry                     []CountryUser            `json:"top_user_by_country"`
	TopCategoryByAgeGroup                []AgeGroupCategory       `json:"top_category_by_age_group"`
	MedianFollowersByAgeGroup            []AgeGroupMedian         `json:"median_followers_by_age_group"`
	UsersJoinedByYear                    []YearUsers              `json:"users_joined_by_year"`
	MedianFollowersByJoinYear            []JoinYearMedian         `json:"median_followers_by_join_year"`
	MedianFollowersByJoinYearAndAgeGroup []JoinYearAgeGroupMedian `json:"median_followers_by_join_year_and_age_group"`
}

// Named lists the insights by their output names, in the contract's order.
func (in *Insights) Named() []NamedInsight {
	return []NamedInsight{
		{"top_category_by_country", in.TopCategoryByCountry},
		{"top_category_by_year", in.TopCategoryByYear},
		{"top_user_by_country", in.TopUserByCountry},
		{"top_category_by_age_group", in.TopCategoryByAgeGroup},
		{"median_followers_by_age_group", in.MedianFollowersByAgeGroup},
		{"users_joined_by_year", in.UsersJoinedByYear},
		{"median_followers_by_join_year", in.MedianFollowersByJoinYear},
		{"median_followers_by_join_year_and_age_group", in.MedianFollowersByJoinYearAndAgeGroup},
	}
}

// NamedInsight is one insight and its output name.
type NamedInsight struct {
	Name string
	Rows any
}

// topCategories keeps, per group, every category with the group's highest
// count (ties are all kept), sorted by group then category.
func topCategories(counts map[GroupCategory]int64) []GroupCategory {
	best := map[string]int64{}
	for k, n := range counts {
		if n > best[k.Group] {
			best[k.Group] = n
		}
	}
	var out []GroupCategory
	for k, n := range counts {
		if n == best[k.Group] {
			out = append(out, k)
		}
	}
	slices.SortFunc(out, func(a, b GroupCategory) int {
		return cmp.Or(cmp.Compare(a.Group, b.Group), cmp.Compare(a.Category, b.Category))
	})
	return out
}

// Median is PERCENTILE_CONT(0.5): the middle value, or the mean of the two
// middle values. It sorts vals.
func Median(vals []int64) float64 {
	slices.Sort(vals)
	n := len(vals)
	if n%2 == 1 {
		return float64(vals[n/2])
	}
	lo, hi := float64(vals[n/2-1]), float64(vals[n/2])
	return lo + (hi-lo)/2
}

// HistogramMedian is Median over a histogram (value -> how many times).
func HistogramMedian(h map[int64]int64) float64 {
	vals := slices.Sorted(maps.Keys(h))
	var n int64
	for _, c := range h {
		n += c
	}
	// The values at 0-based positions lo and hi of the sorted multiset.
	lo, hi := (n-1)/2, n/2
	var at int64
	var vlo, vhi int64
	for _, v := range vals {
		next := at + h[v]
		if lo >= at && lo < next {
			vlo = v
		}
		if hi >= at && hi < next {
			vhi = v
			break
		}
		at = next
	}
	return float64(vlo) + (float64(vhi)-float64(vlo))/2
}

// Finish turns merged aggregates into the eight sorted insights.
func (a *Partials) Finish() Insights {
	in := Insights{
		TopCategoryByCountry: []CountryCategory{}, TopCategoryByYear: []YearCategory{}, TopUserByCountry: []CountryUser{},
		TopCategoryByAgeGroup: []AgeGroupCategory{}, MedianFollowersByAgeGroup: []AgeGroupMedian{}, UsersJoinedByYear: []YearUsers{},
		MedianFollowersByJoinYear: []JoinYearMedian{}, MedianFollowersByJoinYearAndAgeGroup: []JoinYearAgeGroupMedian{},
	}
	for _, k := range topCategories(a.ByCountry) {
		in.TopCategoryByCountry = append(in.TopCategoryByCountry, CountryCategory{k.Group, k.Category, a.ByCountry[k]})
	}
	for _, k := range topCategories(a.ByYear) {
		y, _ := strconv.Atoi(k.Group)
		in.TopCategoryByYear = append(in.TopCategoryByYear, YearCategory{y, k.Category, a.ByYear[k]})
	}
	for _, k := range topCategories(a.ByAgeGroup) {
		in.TopCategoryByAgeGroup = append(in.TopCategoryByAgeGroup, AgeGroupCategory{k.Group, k.Category, a.ByAgeGroup[k]})
	}
	for country, t := range a.TopUser {
		for name := range t.Names {
			in.TopUserByCountry = append(in.TopUserByCountry, CountryUser{country, name, t.Max})
		}
	}
	slices.SortFunc(in.TopUserByCountry, func(a, b CountryUser) int {
		return cmp.Or(cmp.Compare(a.Country, b.Country), cmp.Compare(a.UserName, b.UserName))
	})

	a.foldPending()
	for g, h := range a.Followers {
		m := HistogramMedian(h)
		switch g.Kind {
		case MedianByAge:
			in.MedianFollowersByAgeGroup = append(in.MedianFollowersByAgeGroup, AgeGroupMedian{g.AgeGroup, m})
		case MedianByJoinYear:
			in.MedianFollowersByJoinYear = append(in.MedianFollowersByJoinYear, JoinYearMedian{g.JoinYear, m})
		case MedianByJoinYearAndAge:
			in.MedianFollowersByJoinYearAndAgeGroup = append(in.MedianFollowersByJoinYearAndAgeGroup, JoinYearAgeGroupMedian{g.JoinYear, g.AgeGroup, m})
		}
	}
	sort.Slice(in.MedianFollowersByAgeGroup, func(i, j int) bool {
		return in.MedianFollowersByAgeGroup[i].AgeGroup < in.MedianFollowersByAgeGroup[j].AgeGroup
	})
	sort.Slice(in.MedianFollowersByJoinYear, func(i, j int) bool {
		return in.MedianFollowersByJoinYear[i].JoinYear < in.MedianFollowersByJoinYear[j].JoinYear
	})
	slices.SortFunc(in.MedianFollowersByJoinYearAndAgeGroup, func(a, b JoinYearAgeGroupMedian) int {
		return cmp.Or(cmp.Compare(a.JoinYear, b.JoinYear), cmp.Compare(a.AgeGroup, b.AgeGroup))
	})
	for y, n := range a.UsersJoined {
		in.UsersJoinedByYear = append(in.UsersJoinedByYear, YearUsers{y, n})
	}
	sort.Slice(in.UsersJoinedByYear, func(i, j int) bool { return in.UsersJoinedByYear[i].JoinYear < in.UsersJoinedByYear[j].JoinYear })
	return in
}
