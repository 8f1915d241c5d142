// Package generate makes realistic raw Pinterest-style posts, deterministically
// from a seed: the same seed and post index always give the same records.
//
// Realistic means the dirty values the cleaning rules exist for, at believable
// rates: sentinel texts ("No Title Data Available", "User Info Error", ...),
// follower counts like "51k" and "1.2k", numbers sent as strings, RFC 3339
// timestamps beside the source's "YYYY-MM-DD HH:MM:SS", escaped and raw
// UTF-8, empty strings, posts sharing users, re-sent duplicates, posts with a
// part missing and, on request, malformed lines.
package generate

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"
)

// RawPin is a row of the source's pinterest_data table.
type RawPin struct {
	Index          int64
	UniqueID       string
	Title          string
	Description    string
	PosterName     string
	FollowerCount  string
	TagList        string
	IsImageOrVideo string
	ImageSrc       string
	Downloaded     int64
	SaveLocation   string
	Category       string
}

// RawGeo is a row of the source's geolocation_data table.
type RawGeo struct {
	Ind       int64
	Timestamp time.Time
	Latitude  float64
	Longitude float64
	Country   string
}

// RawUser is a row of the source's user_data table.
type RawUser struct {
	Ind        int64
	FirstName  string
	LastName   string
	Age        int64
	DateJoined time.Time
}

// Post is one post's three source rows.
type Post struct {
	Pin  RawPin
	Geo  RawGeo
	User RawUser
}

// Generator makes posts from a seed.
type Generator struct {
	Seed uint64
	// Users is the size of the user pool posts are drawn from; posts share
	// users, as on the real site.
	Users int
}

// New returns a generator for n posts with a user pool sized like the
// source's (about one user for every four posts).
func New(seed uint64, posts int) *Generator {
	return &Generator{Seed: seed, Users: max(1, posts/4)}
}

var (
	categories = []string{"art", "beauty", "christmas", "diy-and-crafts", "education", "event-planning", "finance", "home-decor", "mens-fashion", "quotes", "tattoos", "travel", "vehicles"}
	countries  = []string{"Afghanistan", "Albania", "Algeria", "American Samoa", "Andorra", "Angola", "Antigua and Barbuda", "Argentina", "Armenia", "Aruba", "Australia", "Austria", "Azerbaijan", "Bahamas", "Bangladesh", "Belgium", "Bolivia", "Brazil", "Bulgaria", "Cameroon", "Chile", "Colombia", "Côte d'Ivoire", "Curaçao", "Denmark", "Egypt", "Ethiopia", "France", "Germany", "Iceland", "India", "Japan", "Maldives", "México", "Norway", "Peru", "Réunion", "South Africa", "Türkiye", "United Kingdom", "Vietnam"}
	firstNames = []string{"Abigail", "Alexander", "Andrew", "Angela", "Bruce", "Charles", "Christian", "Christopher", "Daniel", "David", "Dylan", "Elizabeth", "Emily", "Jennifer", "José", "Joshua", "Kimberly", "María", "Michelle", "Noah", "Renée", "Rebecca", "Ryan", "Sarah", "Thomas", "Zoë"}
	lastNames  = []string{"Ali", "Allen", "Anderson", "Brown", "Davis", "Dubois", "García", "Harris", "Jackson", "Johnson", "Lee", "Martin", "Miller", "Müller", "Nguyen", "O'Brien", "Smith", "Taylor", "Thompson", "White", "Wilson", "Young"}
	adjectives = []string{"Easy", "Beautiful", "Cozy", "Modern", "Vintage", "Simple", "Creative", "Minimalist", "Colorful", "Rustic", "Elegant", "Quick"}
	nouns      = []string{"Ideas", "Outfits", "Projects", "Designs", "Recipes", "Quotes", "Tattoos", "Gifts", "Tips", "Decor", "Destinations", "Crafts"}
	mediaTypes = []string{"image", "image", "image", "video", "multi-video(story page format)"}
	tagWords   = []string{"Diy", "Home", "Art", "Style", "Gift", "Summer", "Winter", "Wedding", "Cute", "Easy", "Ideas", "Love"}
)

const (
	noTitle       = "No Title Data Available"
	noDescription = "No description available Story format"
	userInfoError = "User Info Error"
	noTags        = "N,o, ,T,a,g,s, ,A,v,a,i,l,a,b,l,e"
	imageSrcError = "Image src error."
)

func pick[T any](r *rand.Rand, xs []T) T { return xs[r.IntN(len(xs))] }

func (g *Generator) rng(stream, i uint64) *rand.Rand {
	return rand.New(rand.NewPCG(g.Seed^(stream*0x9E3779B97F4A7C15), i))
}

// user draws the person behind a post: their name, age, join date and
// follower count are the same on every post they make.
type person struct {
	first, last string
	age         int64
	joined      time.Time
	followers   string
	poster      string
}

func (g *Generator) person(id int) person {
	r := g.rng(2, uint64(id))
	p := person{first: pick(r, firstNames), last: pick(r, lastNames)}
	p.age = 14 + int64(r.IntN(60))
	start := time.Date(2015, 1, 1, 0, 0, 0, 0, time.UTC)
	p.joined = start.Add(time.Duration(r.Int64N(int64(3 * 365 * 24 * time.Hour)))).Truncate(time.Second)
	switch f := r.Float64(); {
	case f < 0.02:
		p.followers = userInfoError
	case f < 0.45:
		p.followers = strconv.Itoa(r.IntN(1000))
	case f < 0.75:
		p.followers = strconv.Itoa(1+r.IntN(999)) + "k"
	case f < 0.92:
		p.followers = fmt.Sprintf("%d.%dk", 1+r.IntN(99), r.IntN(10))
	default:
		p.followers = fmt.Sprintf("%dM", 1+r.IntN(9))
	}
	p.poster = p.first + "'s " + pick(r, adjectives) + " " + pick(r, nouns)
	if p.followers == userInfoError {
		p.poster = userInfoError
	}
	return p
}

// Post returns post number ind.
func (g *Generator) Post(ind int64) Post {
	r := g.rng(1, uint64(ind))
	who := g.person(r.IntN(g.Users))
	cat := pick(r, categories)

	pin := RawPin{
		Index:          ind,
		UniqueID:       uuid(r),
		Title:          pick(r, adjectives) + " " + cat + " " + pick(r, nouns),
		Description:    "Find and save ideas about " + cat + ". " + pick(r, adjectives) + " " + pick(r, nouns) + " for every day.",
		PosterName:     who.poster,
		FollowerCount:  who.followers,
		TagList:        pick(r, tagWords) + "," + pick(r, tagWords) + "," + pick(r, tagWords),
		IsImageOrVideo: pick(r, mediaTypes),
		ImageSrc:       fmt.Sprintf("https://i.pinimg.com/originals/%02x/%02x/%08x.jpg", r.IntN(256), r.IntN(256), r.Uint32()),
		Downloaded:     1,
		SaveLocation:   "Local save in /data/" + cat,
		Category:       cat,
	}
	if r.Float64() < 0.02 {
		pin.Title = noTitle
	}
	switch f := r.Float64(); {
	case f < 0.02:
		pin.Description = noDescription
	case f < 0.025:
		pin.Description = "No description available"
	}
	if r.Float64() < 0.02 {
		pin.TagList = noTags
	}
	if r.Float64() < 0.015 {
		pin.ImageSrc = imageSrcError
		pin.Downloaded = 0
	}
	if r.Float64() < 0.005 {
		pin.Category = ""
	}

	geo := RawGeo{
		Ind:       ind,
		Timestamp: time.Date(2017, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(r.Int64N(int64(6 * 365 * 24 * time.Hour)))).Truncate(time.Second),
		Latitude:  float64(r.IntN(180_0000)-90_0000) / 10000,
		Longitude: float64(r.IntN(360_0000)-180_0000) / 10000,
		Country:   pick(r, countries),
	}
	user := RawUser{Ind: ind, FirstName: who.first, LastName: who.last, Age: who.age, DateJoined: who.joined}
	return Post{Pin: pin, Geo: geo, User: user}
}

func uuid(r *rand.Rand) string {
	a, b := r.Uint64(), r.Uint64()
	return fmt.Sprintf("%08x-%04x-4%03x-%04x-%012x", a>>32, (a>>16)&0xffff, a&0xfff, 0x8000|(b>>48)&0x3fff, b&0xffffffffffff)
}

// SourceTime is how the source system writes datetimes.
const SourceTime = "2006-01-02 15:04:05"

// Fields returns the record in the source's JSON shape, as the original
// emulator sent it: numbers as numbers, datetimes as "YYYY-MM-DD HH:MM:SS".
func (p RawPin) Fields() map[string]any {
	return map[string]any{"index": p.Index, "unique_id": p.UniqueID, "title": p.Title, "description": p.Description,
		"poster_name": p.PosterName, "follower_count": p.FollowerCount, "tag_list": p.TagList,
		"is_image_or_video": p.IsImageOrVideo, "image_src": p.ImageSrc, "downloaded": p.Downloaded,
		"save_location": p.SaveLocation, "category": p.Category}
}

// Fields returns the geo record in the source's JSON shape.
func (g RawGeo) Fields() map[string]any {
	return map[string]any{"ind": g.Ind, "timestamp": g.Timestamp.Format(SourceTime), "latitude": g.Latitude,
		"longitude": g.Longitude, "country": g.Country}
}

// Fields returns the user record in the source's JSON shape.
func (u RawUser) Fields() map[string]any {
	return map[string]any{"ind": u.Ind, "first_name": u.FirstName, "last_name": u.LastName, "age": u.Age,
		"date_joined": u.DateJoined.Format(SourceTime)}
}

// Records returns the post's three records as JSON lines, keyed by table,
// varied the way real senders vary them: now and then numbers as strings and
// datetimes in RFC 3339. The variation is deterministic per post.
func (g *Generator) Records(p Post) map[string][]byte {
	r := g.rng(3, uint64(p.Pin.Index))
	pin, geo, user := p.Pin.Fields(), p.Geo.Fields(), p.User.Fields()
	if r.Float64() < 0.05 {
		pin["index"] = strconv.FormatInt(p.Pin.Index, 10)
		geo["ind"] = strconv.FormatInt(p.Geo.Ind, 10)
		geo["latitude"] = strconv.FormatFloat(p.Geo.Latitude, 'f', -1, 64)
		user["age"] = strconv.FormatInt(p.User.Age, 10)
	}
	if r.Float64() < 0.03 {
		geo["timestamp"] = p.Geo.Timestamp.Format(time.RFC3339)
		user["date_joined"] = p.User.DateJoined.Format(time.RFC3339)
	}
	out := map[string][]byte{"pin": marshal(pin), "geo": marshal(geo), "user": marshal(user)}
	if r.Float64() < 0.05 {
		// Some senders escape every non-ASCII character.
		for k, v := range out {
			out[k] = asciiEscape(v)
		}
	}
	return out
}

func marshal(m map[string]any) []byte {
	b, err := json.Marshal(m)
	if err != nil {
		panic(err) // only plain values above
	}
	return b
}

func asciiEscape(b []byte) []byte {
	out := make([]byte, 0, len(b)+16)
	for _, c := range string(b) {
		if c < 0x80 {
			out = append(out, byte(c))
			continue
		}
		if c > 0xffff {
			c -= 0x10000
			out = fmt.Appendf(out, `\u%04x\u%04x`, 0xd800+(c>>10), 0xdc00+(c&0x3ff))
			continue
		}
		out = fmt.Appendf(out, `\u%04x`, c)
	}
	return out
}

// Malformed returns the i'th of a set of records every pipeline must reject:
// broken JSON, non-objects and objects whose key is missing, null or not an
// integer.
func Malformed(table string, i int) []byte {
	key := "ind"
	if table == "pin" {
		key = "index"
	}
	bad := []string{
		`{"` + key + `": 12, "title": "truncated`,
		`[{"` + key + `": 12}]`,
		`"just a string"`,
		`{"` + key + `": null, "country": "Chad"}`,
		`{"no_key": true}`,
		`{"` + key + `": "twelve"}`,
		`{"` + key + `": 12.5}`,
		`not json at all`,
	}
	return []byte(bad[i%len(bad)])
}
