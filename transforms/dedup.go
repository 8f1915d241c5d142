package transforms

import (
	"bytes"
	"encoding/gob"
)

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
