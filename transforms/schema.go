package transforms

import (
	"encoding/binary"
	"fmt"
	"slices"
)

// ColumnType is the type of a clean table's column, in the contract's terms;
// each output (Parquet, JSON lines, PostgreSQL) maps it to its own.
type ColumnType int

// Column types.
const (
	Int64 ColumnType = iota + 1
	Text
	Float64List
	Timestamp
)

// Column is one output column of a clean table.
type Column struct {
	Name     string
	Type     ColumnType
	Nullable bool
}

// Schema is the one description of a clean table: its name, the raw fields
// its records have (in the source database's order) and its key among
// them, and its output columns in the contract's order. The null counts,
// the JSON-lines and Parquet forms (AppendJSON, JSONRowParser,
// io/parquetio), the warehouse's DDL and COPY values and the raw field
// lists are driven from it; the row
// structs (Pin, Geo, User) carry the same columns in the same order, which
// TestSchemasMatchRows checks against their JSON and Parquet tags.
type Schema struct {
	Table     string
	RawFields []string
	Key       string
	Columns   []Column
}

var (
	PinSchema = Schema{Table: TablePin, Key: "index",
		RawFields: []string{"index", "unique_id", "title", "description", "poster_name", "follower_count", "tag_list", "is_image_or_video", "image_src", "downloaded", "save_location", "category"},
		Columns: []Column{{"ind", Int64, false}, {"unique_id", Text, true}, {"title", Text, true}, {"description", Text, true},
			{"follower_count", Int64, true}, {"poster_name", Text, true}, {"tag_list", Text, true}, {"is_image_or_video", Text, true},
			{"image_src", Text, true}, {"save_location", Text, true}, {"category", Text, true}}}
	GeoSchema = Schema{Table: TableGeo, Key: "ind",
		RawFields: []string{"ind", "timestamp", "latitude", "longitude", "country"},
		Columns:   []Column{{"ind", Int64, false}, {"country", Text, true}, {"coordinates", Float64List, true}, {"timestamp", Timestamp, true}}}
	UserSchema = Schema{Table: TableUser, Key: "ind",
		RawFields: []string{"ind", "first_name", "last_name", "age", "date_joined"},
		Columns:   []Column{{"ind", Int64, false}, {"user_name", Text, true}, {"age", Int64, true}, {"date_joined", Timestamp, true}}}
	// Schemas are the three tables' schemas, in the canonical order.
	Schemas = []Schema{PinSchema, GeoSchema, UserSchema}
)

// FieldID is the field id of column i (Iceberg's, written into the Parquet
// schema too, so readers resolve columns by id, not by name): ids count
// from 1 in column order, a list column's element taking the id after its
// column's (the pre-order Iceberg assigns when it creates a table). Columns
// are only ever appended, so an id never changes.
func (s *Schema) FieldID(i int) int {
	id := 1
	for _, c := range s.Columns[:i] {
		id++
		if c.Type == Float64List {
			id++
		}
	}
	return id
}

// ElementID is the field id of list column i's element (see FieldID); 0
// for a column that is not a list.
func (s *Schema) ElementID(i int) int {
	if s.Columns[i].Type != Float64List {
		return 0
	}
	return s.FieldID(i) + 1
}

// SchemaOf returns the named table's schema.
func SchemaOf(table string) Schema {
	for _, s := range Schemas {
		if s.Table == table {
			return s
		}
	}
	panic(fmt.Sprintf("transforms: no table %q", table))
}

// Raw field lists, in the source database's column order.
var (
	PinFields  = PinSchema.RawFields
	GeoFields  = GeoSchema.RawFields
	UserFields = UserSchema.RawFields
)

// Column returns the index of the named column, for code that reads one
// column of decoded fields (DecodeFields); it panics for no such column, a
// programming error caught at init, since callers look their columns up in
// package variables.
func (s *Schema) Column(name string) int {
	for i, c := range s.Columns {
		if c.Name == name {
			return i
		}
	}
	panic(fmt.Sprintf("transforms: table %s has no column %q", s.Table, name))
}

// CountNulls adds an encoded row's null columns to counts, by column name:
// the final tables' null counts, from the schema rather than per row type.
func (s *Schema) CountNulls(counts map[string]int64, row []byte) error {
	var buf [16]Field
	fields, err := s.DecodeFields(row, buf[:0])
	if err != nil {
		return err
	}
	s.CountNullFields(counts, fields)
	return nil
}

// CountNullFields is CountNulls for a row already decoded (DecodeFields).
func (s *Schema) CountNullFields(counts map[string]int64, fields []Field) {
	for i, f := range fields {
		if f.Null {
			counts[s.Columns[i].Name]++
		}
	}
}

// Field is one column's value in an encoded row, as the column's type holds
// it: Int for Int64 (and a Timestamp's seconds, Nsec its nanoseconds),
// Bytes for Text (the string's bytes) and Float64List (8 little-endian
// bytes per float). Bytes alias the row.
type Field struct {
	Null  bool
	Int   int64
	Nsec  int64
	Bytes []byte
}

// DecodeFields decodes an encoded row of the table column by column, in the
// schema's order, into dst (reused when long enough): what writes a row as
// columns (Parquet) reads, with no row struct and no allocation per row.
func (s *Schema) DecodeFields(row []byte, dst []Field) ([]Field, error) {
	dst = slices.Grow(dst[:0], len(s.Columns))[:len(s.Columns)]
	d := decoder{b: row}
	for i, c := range s.Columns {
		f := &dst[i]
		*f = Field{}
		if c.Nullable && !d.present() {
			f.Null = true
			continue
		}
		switch c.Type {
		case Int64:
			f.Int = d.varint()
		case Text:
			f.Bytes = d.bytes()
		case Float64List:
			n := d.count()
			if len(d.b) < 8*n {
				d.fail()
				break
			}
			f.Bytes, d.b = d.b[:8*n:8*n], d.b[8*n:]
		case Timestamp:
			f.Int, f.Nsec = d.varint(), d.varint()
		}
	}
	return dst, d.done()
}

// AppendFields appends the encoded row of fields (one per column, in the
// schema's order; the inverse of DecodeFields): what reads a row back from
// columns (Parquet) writes, with no row struct.
func (s *Schema) AppendFields(dst []byte, fields []Field) []byte {
	e := encoder{b: dst}
	for i, c := range s.Columns {
		f := &fields[i]
		if c.Nullable {
			if f.Null {
				e.b = append(e.b, 0)
				continue
			}
			e.b = append(e.b, 1)
		}
		switch c.Type {
		case Int64:
			e.varint(f.Int)
		case Text:
			e.b = binary.AppendUvarint(e.b, uint64(len(f.Bytes)))
			e.b = append(e.b, f.Bytes...)
		case Float64List:
			e.varint(int64(len(f.Bytes) / 8))
			e.b = append(e.b, f.Bytes[:len(f.Bytes)/8*8]...)
		case Timestamp:
			e.varint(f.Int)
			e.varint(f.Nsec)
		}
	}
	return e.b
}
