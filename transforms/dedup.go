package transforms

import (
	"bytes"
	"encoding/gob"
	"slices"
)

// DedupJoinBatch deduplicates one shard's rows (one row per ind in each
// table), sorts them by ind, joins them on ind into partial insight
// aggregates and counts what it dropped.
//
// When an ind has several different rows, the one with the smallest
// encoding wins: the choice depends only on the rows, never on their order,
// so every runner and every re-run gives the same tables.
func DedupJoinBatch(shard int, in Batch) (Batch, *Partials, []TableStats) {
	out := Batch{Shard: shard}
	var dups [3]int64
	out.Pins, dups[0] = dedup(in.Pins, func(p *Pin) int64 { return p.Ind }, func(e *encoder, p *Pin) { e.pin(p) })
	out.Geos, dups[1] = dedup(in.Geos, func(g *Geo) int64 { return g.Ind }, func(e *encoder, g *Geo) { e.geo(g) })
	out.Users, dups[2] = dedup(in.Users, func(u *User) int64 { return u.Ind }, func(e *encoder, u *User) { e.user(u) })

	partials := NewPartials()
	// A merge walk over the three sorted tables: a post is whatever rows
	// share an ind.
	i, j, k := 0, 0, 0
	for i < len(out.Pins) || j < len(out.Geos) || k < len(out.Users) {
		ind := int64(1<<63 - 1)
		if i < len(out.Pins) {
			ind = min(ind, out.Pins[i].Ind)
		}
		if j < len(out.Geos) {
			ind = min(ind, out.Geos[j].Ind)
		}
		if k < len(out.Users) {
			ind = min(ind, out.Users[k].Ind)
		}
		var post Post
		if i < len(out.Pins) && out.Pins[i].Ind == ind {
			post.Pin = &out.Pins[i]
			i++
		}
		if j < len(out.Geos) && out.Geos[j].Ind == ind {
			post.Geo = &out.Geos[j]
			j++
		}
		if k < len(out.Users) && out.Users[k].Ind == ind {
			post.User = &out.Users[k]
			k++
		}
		partials.Add(post)
	}

	stats := []TableStats{
		{Table: TablePin, Duplicates: dups[0], Rows: int64(len(out.Pins)), Nulls: pinNulls(out.Pins)},
		{Table: TableGeo, Duplicates: dups[1], Rows: int64(len(out.Geos)), Nulls: geoNulls(out.Geos)},
		{Table: TableUser, Duplicates: dups[2], Rows: int64(len(out.Users)), Nulls: userNulls(out.Users)},
	}
	return out, partials, stats
}

// dedup sorts rows by ind and keeps one row per ind.
func dedup[R any](rows []R, ind func(*R) int64, enc func(*encoder, *R)) ([]R, int64) {
	if len(rows) == 0 {
		return rows, 0
	}
	slices.SortFunc(rows, func(a, b R) int {
		x, y := ind(&a), ind(&b)
		switch {
		case x < y:
			return -1
		case x > y:
			return 1
		}
		return 0
	})
	out := rows[:1]
	var dropped int64
	var ea, eb encoder
	for i := 1; i < len(rows); i++ {
		last := &out[len(out)-1]
		if ind(&rows[i]) != ind(last) {
			out = append(out, rows[i])
			continue
		}
		dropped++
		ea.b, eb.b = ea.b[:0], eb.b[:0]
		enc(&ea, last)
		enc(&eb, &rows[i])
		if bytes.Compare(eb.b, ea.b) < 0 {
			*last = rows[i]
		}
	}
	return out, dropped
}

func countNil(counts map[string]int64, col string, isNil bool) {
	if isNil {
		counts[col]++
	}
}

func pinNulls(rows []Pin) map[string]int64 {
	c := map[string]int64{}
	for i := range rows {
		countPinNulls(c, &rows[i])
	}
	return c
}

func countPinNulls(c map[string]int64, p *Pin) {
	countNil(c, "unique_id", p.UniqueID == nil)
	countNil(c, "title", p.Title == nil)
	countNil(c, "description", p.Description == nil)
	countNil(c, "follower_count", p.FollowerCount == nil)
	countNil(c, "poster_name", p.PosterName == nil)
	countNil(c, "tag_list", p.TagList == nil)
	countNil(c, "is_image_or_video", p.IsImageOrVideo == nil)
	countNil(c, "image_src", p.ImageSrc == nil)
	countNil(c, "save_location", p.SaveLocation == nil)
	countNil(c, "category", p.Category == nil)
}

func geoNulls(rows []Geo) map[string]int64 {
	c := map[string]int64{}
	for i := range rows {
		countGeoNulls(c, &rows[i])
	}
	return c
}

func countGeoNulls(c map[string]int64, g *Geo) {
	countNil(c, "country", g.Country == nil)
	countNil(c, "coordinates", g.Coordinates == nil)
	countNil(c, "timestamp", g.Timestamp == nil)
}

func userNulls(rows []User) map[string]int64 {
	c := map[string]int64{}
	for i := range rows {
		countUserNulls(c, &rows[i])
	}
	return c
}

func countUserNulls(c map[string]int64, u *User) {
	countNil(c, "user_name", u.UserName == nil)
	countNil(c, "age", u.Age == nil)
	countNil(c, "date_joined", u.DateJoined == nil)
}

func encodePartials(v Partials) ([]byte, error) {
	var buf bytes.Buffer
	err := gob.NewEncoder(&buf).Encode(v)
	return buf.Bytes(), err
}

// decodePartials decodes into fresh maps, so that a decoded accumulator can
// be merged into (gob leaves empty maps nil).
func decodePartials(b []byte) (Partials, error) {
	p := NewPartials()
	err := gob.NewDecoder(bytes.NewReader(b)).Decode(p)
	return *p, err
}
