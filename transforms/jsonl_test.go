package transforms

import (
	"bufio"
	"bytes"
	stdjson "encoding/json"
	"io"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/segmentio/encoding/json"
)

// structJSON is the JSON line the batch job's writer made from the row
// structs before AppendJSON: segmentio's encoder, HTML escaping off.
func structJSON(t testing.TB, row any) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(row); err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

// hardStrings are texts whose escaping differs between JSON encoders.
var hardStrings = []string{"", "plain", `a"b\c`, "tab\tnl\nret\rbs\bff\f", "\x00\x01\x1f\x7f", "<a href='x'>&amp;</a>",
	"\u2028\u2029", "Åland Islands é 日本 🎉", "bad \xff\xfe utf8 \xe2\x82", "/slash/", "long string of more than eight bytes \x1b end"}

func randText(r *rand.Rand) *string {
	if r.IntN(5) == 0 {
		return nil
	}
	var s string
	if r.IntN(2) == 0 {
		s = hardStrings[r.IntN(len(hardStrings))]
	} else {
		b := make([]byte, r.IntN(20))
		for i := range b {
			b[i] = byte(r.IntN(256))
		}
		s = string(b)
	}
	return &s
}

func randInt(r *rand.Rand) *int64 {
	if r.IntN(5) == 0 {
		return nil
	}
	v := []int64{0, -1, 1, math.MaxInt64, math.MinInt64, r.Int64(), -r.Int64N(1000)}[r.IntN(7)]
	return &v
}

func randTime(r *rand.Rand) *time.Time {
	if r.IntN(5) == 0 {
		return nil
	}
	t := time.Unix(r.Int64N(4e9)-1e9, []int64{0, 0, 1000, 123456789, r.Int64N(1e9)}[r.IntN(5)]).UTC()
	return &t
}

func randFloats(r *rand.Rand) []float64 {
	switch r.IntN(5) {
	case 0:
		return nil
	case 1:
		return []float64{}
	}
	fs := make([]float64, 1+r.IntN(3))
	for i := range fs {
		fs[i] = []float64{0, math.Copysign(0, -1), 1.5, -2, 1e-7, 1e21, 1e20, 123456.789, math.MaxFloat64, math.SmallestNonzeroFloat64, -1e-6, (r.Float64() - 0.5) * 360}[r.IntN(12)]
	}
	return fs
}

// randRows returns random rows of the three tables, with every kind of null
// and the texts and numbers whose JSON forms are hard to get right.
func randRows(r *rand.Rand, n int) []any {
	var rows []any
	for range n {
		rows = append(rows,
			&Pin{Ind: *randIntNotNil(r), UniqueID: randText(r), Title: randText(r), Description: randText(r), FollowerCount: randInt(r),
				PosterName: randText(r), TagList: randText(r), IsImageOrVideo: randText(r), ImageSrc: randText(r), SaveLocation: randText(r), Category: randText(r)},
			&Geo{Ind: *randIntNotNil(r), Country: randText(r), Coordinates: randFloats(r), Timestamp: randTime(r)},
			&User{Ind: *randIntNotNil(r), UserName: randText(r), Age: randInt(r), DateJoined: randTime(r)})
	}
	return rows
}

func randIntNotNil(r *rand.Rand) *int64 {
	for {
		if v := randInt(r); v != nil {
			return v
		}
	}
}

func schemaOfRow(row any) *Schema {
	switch row.(type) {
	case *Pin:
		return &PinSchema
	case *Geo:
		return &GeoSchema
	}
	return &UserSchema
}

// TestAppendJSONMatchesStructEncoder holds AppendJSON to the bytes the
// struct encoder writes, and Parse to the inverse of AppendJSON, over
// random rows.
func TestAppendJSONMatchesStructEncoder(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	parsers := map[*Schema]*JSONRowParser{}
	for _, row := range randRows(r, 3000) {
		s := schemaOfRow(row)
		enc := AppendRow(nil, row)
		got, err := s.AppendJSON(nil, enc)
		if err != nil {
			t.Fatal(err)
		}
		if want := structJSON(t, row); !bytes.Equal(got, want) {
			t.Fatalf("%s row:\nAppendJSON %s\nencoder    %s", s.Table, got, want)
		}
		p := parsers[s]
		if p == nil {
			p = NewJSONRowParser(s)
			parsers[s] = p
		}
		ind, back, err := p.Parse(got)
		if err != nil {
			t.Fatalf("parsing %s: %v", got, err)
		}
		// Invalid UTF-8 is written as \ufffd, so the round trip gives
		// the row the struct decoder gives, not always the original.
		want := structRoundTrip(t, s, got)
		if !bytes.Equal(back, want) || ind != decodeInd(t, back) {
			t.Fatalf("%s: parsed row differs from the struct decoder's", got)
		}
	}
}

func decodeInd(t *testing.T, row []byte) int64 {
	t.Helper()
	d := decoder{b: row}
	return d.varint()
}

// structRoundTrip decodes a JSON line into the table's row struct with
// encoding/json and encodes it: what the reader replaces.
func structRoundTrip(t testing.TB, s *Schema, line []byte) []byte {
	t.Helper()
	row, err := structDecode(s, line)
	if err != nil {
		t.Fatalf("encoding/json: %v for %s", err, line)
	}
	return row
}

func structDecode(s *Schema, line []byte) ([]byte, error) {
	var row any
	switch s.Table {
	case TablePin:
		row = &Pin{}
	case TableGeo:
		row = &Geo{}
	default:
		row = &User{}
	}
	dec := stdjson.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(row); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, io.ErrUnexpectedEOF
	}
	return AppendRow(nil, row), nil
}

func TestAppendJSONErrors(t *testing.T) {
	if _, err := GeoSchema.AppendJSON(nil, AppendRow(nil, &Geo{Ind: 1, Coordinates: []float64{math.NaN()}})); err == nil {
		t.Error("a NaN coordinate was written as JSON")
	}
	row := AppendRow(nil, &User{Ind: 1})
	if _, err := UserSchema.AppendJSON(nil, row[:len(row)-1]); err == nil {
		t.Error("a truncated row was written as JSON")
	}
	if _, err := UserSchema.AppendJSON(nil, append(row, 0)); err == nil {
		t.Error("a row with bytes left over was written as JSON")
	}
}

// TestParseJSONLenientAndStrict: what encoding/json accepts in a row the
// parser reads alike; what would lose data is an error.
func TestParseJSONLenientAndStrict(t *testing.T) {
	p := NewJSONRowParser(&GeoSchema)
	for _, line := range []string{
		` { "timestamp" : "2020-08-28T03:52:47.5+02:00" , "ind" : -3 , "coordinates" : [ 1 , -2.5e3 ] } ` + "\r\n",
		`{"ind":4,"country":"\u00c5land \ud83c\udf89 \ud800 \/ \"q\""}`,
		`{"ind":4,"country":"a","country":null}`,
		`{"ind":5,"coordinates":[],"country":"x\u2028"}`,
		`{"ind":0}`,
	} {
		_, got, err := p.Parse([]byte(line))
		if err != nil {
			t.Errorf("%s: %v", line, err)
			continue
		}
		if want := structRoundTrip(t, &GeoSchema, []byte(line)); !bytes.Equal(got, want) {
			t.Errorf("%s: parsed differently from encoding/json", line)
		}
	}
	for _, line := range []string{
		``, `[]`, `{"ind":1,"extra":2}`, `{"IND":1}`, `{"country":"x"}`, `{"ind":null}`, `{"ind":1.5}`, `{"ind":"1"}`,
		`{"ind":01}`, `{"ind":+1}`, `{"ind":99999999999999999999}`, `{"ind":1,"coordinates":[1,null]}`, `{"ind":1,"coordinates":[1e400]}`,
		`{"ind":1,"timestamp":"2020-08-28 03:52:47"}`, `{"ind":1,"country":"a` + "\x01" + `"}`, `{"ind":1,"country":"\x"}`,
		`{"ind":1}{}`, `{"ind":1,}`, `{"ind":1`, `{"ind":1,"coordinates":[0x10]}`,
	} {
		if _, _, err := p.Parse([]byte(line)); err == nil {
			t.Errorf("%q parsed without an error", line)
		}
	}
}

// FuzzParseJSON holds the parser to encoding/json's decoding into the row
// structs: whatever both accept gives the same row; a row the parser takes
// that encoding/json refuses is a bug (the reverse is allowed only where
// the parser is documented stricter).
func FuzzParseJSON(f *testing.F) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, row := range randRows(r, 10) {
		b, _ := schemaOfRow(row).AppendJSON(nil, AppendRow(nil, row))
		f.Add(b)
	}
	f.Add([]byte(`{"ind":4,"country":"\u00c5land \ud83c\udf89 \ud800\udc00 \ud800x"}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		for _, s := range []*Schema{&PinSchema, &GeoSchema, &UserSchema} {
			_, got, err := NewJSONRowParser(s).Parse(line)
			want, werr := structDecode(s, line)
			if err == nil && werr != nil {
				t.Fatalf("%s: parser took %q, encoding/json refused it: %v", s.Table, line, werr)
			}
			if err == nil && !bytes.Equal(got, want) {
				t.Fatalf("%s: %q parsed differently from encoding/json", s.Table, line)
			}
		}
	})
}

func TestJSONLinesReader(t *testing.T) {
	long := strings.Repeat("x", 200_000)
	in := `{"ind":1,"user_name":"a"}` + "\n\n" + `  ` + "\n" + `{"ind":2,"user_name":"` + long + `"}` + "\n" + `{"ind":3}`
	r := NewJSONLinesReader(strings.NewReader(in), &UserSchema)
	var got []User
	for r.Next() {
		u, err := DecodeUserRow(r.Row())
		if err != nil || u.Ind != r.Key() {
			t.Fatal(err, u.Ind, r.Key())
		}
		got = append(got, u)
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	a, l := "a", long
	if diff := cmp.Diff([]User{{Ind: 1, UserName: &a}, {Ind: 2, UserName: &l}, {Ind: 3}}, got); diff != "" {
		t.Error(diff)
	}
	r = NewJSONLinesReader(strings.NewReader(`{"ind":1}`+"\n"+`{"ind":2,"age":"x"}`+"\n"), &UserSchema)
	for r.Next() {
	}
	if err := r.Err(); err == nil || !strings.Contains(err.Error(), "row 2") {
		t.Errorf("a bad second row: %v", err)
	}
}

// TestParseJSONNoAllocs: a warm parser allocates nothing per row.
func TestParseJSONNoAllocs(t *testing.T) {
	line := []byte(`{"ind":7,"country":"Chad \"x\"","coordinates":[-5.34,7],"timestamp":"2020-08-28T03:52:47Z"}`)
	p := NewJSONRowParser(&GeoSchema)
	if _, _, err := p.Parse(line); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() { p.Parse(line) }); n != 0 {
		t.Errorf("%v allocations per row", n)
	}
	row := AppendRow(nil, &Geo{Ind: 1})
	buf := make([]byte, 0, 256)
	if n := testing.AllocsPerRun(100, func() { GeoSchema.AppendJSON(buf[:0], row) }); n != 0 {
		t.Errorf("AppendJSON: %v allocations per row", n)
	}
}

// benchRows are rows shaped like the sample's, for the benchmarks.
func benchRows(b *testing.B) (rows [][]byte, structs []any, schemas []*Schema) {
	r := rand.New(rand.NewPCG(5, 6))
	for range 300 {
		title, desc, cat := "Some title about art", "A description with \"quotes\" and é, long enough to matter for escaping", "art"
		n := r.Int64N(1e6)
		ts := time.Unix(r.Int64N(2e9), 0).UTC()
		for _, row := range []any{
			&Pin{Ind: r.Int64N(1e6), Title: &title, Description: &desc, FollowerCount: &n, Category: &cat, TagList: &desc},
			&Geo{Ind: r.Int64N(1e6), Country: &cat, Coordinates: []float64{r.Float64()*180 - 90, r.Float64()*360 - 180}, Timestamp: &ts},
			&User{Ind: r.Int64N(1e6), UserName: &title, Age: &n, DateJoined: &ts},
		} {
			rows = append(rows, AppendRow(nil, row))
			structs = append(structs, row)
			schemas = append(schemas, schemaOfRow(row))
		}
	}
	return rows, structs, schemas
}

// BenchmarkAppendJSON writes rows as JSON lines from their encoding.
func BenchmarkAppendJSON(b *testing.B) {
	rows, _, schemas := benchRows(b)
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		buf = buf[:0]
		for i, row := range rows {
			buf, _ = schemas[i].AppendJSON(buf, row)
			buf = append(buf, '\n')
		}
	}
	b.SetBytes(int64(len(buf)))
}

// BenchmarkAppendJSONStructEncoder is what AppendJSON replaced: decode to
// the struct, encode it with segmentio's encoder.
func BenchmarkAppendJSONStructEncoder(b *testing.B) {
	rows, _, schemas := benchRows(b)
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	b.ReportAllocs()
	for b.Loop() {
		buf.Reset()
		for i, row := range rows {
			var v any
			switch schemas[i] {
			case &PinSchema:
				p, _ := DecodePinRow(row)
				v = &p
			case &GeoSchema:
				g, _ := DecodeGeoRow(row)
				v = &g
			default:
				u, _ := DecodeUserRow(row)
				v = &u
			}
			enc.Encode(v)
		}
	}
	b.SetBytes(int64(buf.Len()))
}

func benchLines(b *testing.B) ([][]byte, []*Schema) {
	rows, _, schemas := benchRows(b)
	lines := make([][]byte, len(rows))
	for i, row := range rows {
		lines[i], _ = schemas[i].AppendJSON(nil, row)
	}
	return lines, schemas
}

// BenchmarkParseJSON reads JSON lines back to encoded rows.
func BenchmarkParseJSON(b *testing.B) {
	lines, schemas := benchLines(b)
	parsers := map[*Schema]*JSONRowParser{&PinSchema: NewJSONRowParser(&PinSchema), &GeoSchema: NewJSONRowParser(&GeoSchema), &UserSchema: NewJSONRowParser(&UserSchema)}
	var n int64
	for _, l := range lines {
		n += int64(len(l))
	}
	b.SetBytes(n)
	b.ReportAllocs()
	for b.Loop() {
		for i, l := range lines {
			if _, _, err := parsers[schemas[i]].Parse(l); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkParseJSONStructDecoder is what the parser replaced: segmentio's
// decoder into the row struct, then its encoding.
func BenchmarkParseJSONStructDecoder(b *testing.B) {
	lines, schemas := benchLines(b)
	var all bytes.Buffer
	for _, l := range lines {
		all.Write(l)
		all.WriteByte('\n')
	}
	b.SetBytes(int64(all.Len()))
	b.ReportAllocs()
	var row []byte
	for b.Loop() {
		dec := json.NewDecoder(bufio.NewReader(bytes.NewReader(all.Bytes())))
		for _, s := range schemas {
			var v any
			switch s {
			case &PinSchema:
				v = &Pin{}
			case &GeoSchema:
				v = &Geo{}
			default:
				v = &User{}
			}
			if err := dec.Decode(v); err != nil {
				b.Fatal(err)
			}
			row = AppendRow(row[:0], v)
		}
	}
}
