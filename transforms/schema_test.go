package transforms

import (
	"bytes"
	"encoding/binary"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
)

// TestSchemasMatchRows holds the row structs to the schemas: the same
// columns, in the same order, under their JSON and Parquet names, nullable
// exactly where the struct field can be nil.
func TestSchemasMatchRows(t *testing.T) {
	for _, c := range []struct {
		s   Schema
		row any
	}{{PinSchema, Pin{}}, {GeoSchema, Geo{}}, {UserSchema, User{}}} {
		typ := reflect.TypeOf(c.row)
		if typ.NumField() != len(c.s.Columns) {
			t.Fatalf("%s: %d fields, %d columns", c.s.Table, typ.NumField(), len(c.s.Columns))
		}
		pq := parquet.SchemaOf(c.row).Fields()
		for i, col := range c.s.Columns {
			f := typ.Field(i)
			if name, _, _ := strings.Cut(f.Tag.Get("json"), ","); name != col.Name {
				t.Errorf("%s column %d: JSON name %q, schema %q", c.s.Table, i, name, col.Name)
			}
			if pq[i].Name() != col.Name || pq[i].Optional() != col.Nullable {
				t.Errorf("%s column %d: Parquet %q optional=%v, schema %q nullable=%v", c.s.Table, i, pq[i].Name(), pq[i].Optional(), col.Name, col.Nullable)
			}
			nilable := f.Type.Kind() == reflect.Pointer || f.Type.Kind() == reflect.Slice
			if nilable != col.Nullable {
				t.Errorf("%s column %s: field nilable=%v, schema nullable=%v", c.s.Table, col.Name, nilable, col.Nullable)
			}
		}
	}
	if SchemaOf(TableGeo).Key != "ind" || SchemaOf(TablePin).Key != PinFields[0] {
		t.Error("keys")
	}
}

// TestDecodeFields decodes rows column by column and checks each field
// against the row struct's, for rows with values and with nulls.
func TestDecodeFields(t *testing.T) {
	ts := time.Date(2019, 3, 4, 5, 6, 7, 8000, time.UTC)
	s, n := "Chad", int64(-42)
	geo := Geo{Ind: 7, Country: &s, Coordinates: []float64{-5.5, 170.25}, Timestamp: &ts}
	fs, err := GeoSchema.DecodeFields(AppendRow(nil, &geo), nil)
	if err != nil {
		t.Fatal(err)
	}
	if fs[0].Int != 7 || string(fs[1].Bytes) != "Chad" || len(fs[2].Bytes) != 16 || fs[3].Int != ts.Unix() || fs[3].Nsec != 8000 {
		t.Errorf("geo fields %+v", fs)
	}
	if math.Float64frombits(binary.LittleEndian.Uint64(fs[2].Bytes[8:])) != 170.25 {
		t.Errorf("longitude %x", fs[2].Bytes)
	}
	fs, err = UserSchema.DecodeFields(AppendRow(nil, &User{Ind: 1, Age: &n}), fs)
	if err != nil {
		t.Fatal(err)
	}
	if len(fs) != 4 || fs[0].Null || !fs[1].Null || fs[2].Null || fs[2].Int != -42 || !fs[3].Null {
		t.Errorf("user fields %+v", fs)
	}
	pin := AppendRow(nil, &Pin{Ind: 3, Title: &s})
	if fs, err = PinSchema.DecodeFields(pin, fs); err != nil || string(fs[2].Bytes) != "Chad" || !fs[1].Null || !fs[10].Null {
		t.Errorf("pin fields %+v, %v", fs, err)
	}
	for _, c := range []struct {
		s   *Schema
		row []byte
	}{{&PinSchema, pin}, {&GeoSchema, AppendRow(nil, &geo)}, {&GeoSchema, AppendRow(nil, &Geo{Ind: 1, Coordinates: []float64{}})}, {&UserSchema, AppendRow(nil, &User{Ind: 2, Age: &n})}} {
		fs, err := c.s.DecodeFields(c.row, nil)
		if got := c.s.AppendFields(nil, fs); err != nil || !bytes.Equal(got, c.row) {
			t.Errorf("%s: fields re-encode as %x, want %x (%v)", c.s.Table, got, c.row, err)
		}
	}
	if _, err := PinSchema.DecodeFields(pin[:len(pin)-1], nil); err == nil {
		t.Error("a row cut short decoded")
	}
	if _, err := UserSchema.DecodeFields(pin, nil); err == nil {
		t.Error("a pin row decoded as a user row")
	}
}

// TestCountNulls counts the null columns of encoded rows by name.
func TestCountNulls(t *testing.T) {
	counts := map[string]int64{}
	title := "t"
	for _, row := range []any{&Pin{Ind: 1, Title: &title}, &Pin{Ind: 2}} {
		if err := PinSchema.CountNulls(counts, AppendRow(nil, row)); err != nil {
			t.Fatal(err)
		}
	}
	if err := GeoSchema.CountNulls(counts, AppendRow(nil, &Geo{Ind: 1, Coordinates: []float64{}})); err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{"unique_id": 2, "title": 1, "description": 2, "follower_count": 2, "poster_name": 2, "tag_list": 2,
		"is_image_or_video": 2, "image_src": 2, "save_location": 2, "category": 2, "country": 1, "timestamp": 1}
	if !reflect.DeepEqual(counts, want) {
		t.Errorf("null counts %v, want %v", counts, want)
	}
	if err := UserSchema.CountNulls(counts, []byte{1}); err == nil {
		t.Error("a corrupt row counted")
	}
}

// TestTableDefs: each table's descriptor is found by its name, and its
// record cleaner and the batch job's line cleaner make the same row.
func TestTableDefs(t *testing.T) {
	lines := map[string]string{
		TablePin:  `{"index": 7, "title": "T", "follower_count": "1k", "category": "art"}`,
		TableGeo:  `{"ind": 7, "timestamp": "2020-08-28 03:52:47", "latitude": "-5.34", "longitude": 7, "country": "Chad"}`,
		TableUser: `{"ind": 7, "first_name": "A", "last_name": "B", "age": "20", "date_joined": "2015-10-24T11:23:51Z"}`,
	}
	for i, table := range Tables {
		def, ok := TableOf(table)
		if !ok || def.Schema.Table != table || def != &TableDefs[i] {
			t.Fatalf("TableOf(%q) = %v, %v", table, def, ok)
		}
		row, _, err := def.CleanRecord([]byte(lines[table]))
		if err != nil {
			t.Fatal(err)
		}
		enc, err := EncodeRow(nil, row)
		if err != nil {
			t.Fatal(err)
		}
		ind, lineRow, dead := NewLineCleaner(table).Clean([]byte(lines[table]))
		if dead != nil || ind != 7 || !bytes.Equal(enc, lineRow) {
			t.Errorf("%s: the record cleaner and the line cleaner differ (%v)", table, dead)
		}
		if _, _, err := def.CleanRecord([]byte(`{}`)); err == nil {
			t.Errorf("%s: a record without its key is clean", table)
		}
	}
	if _, ok := TableOf("nope"); ok {
		t.Error("an unknown table has a descriptor")
	}
	if _, err := EncodeRow(nil, 3); err == nil {
		t.Error("an int encoded as a row")
	}
}
