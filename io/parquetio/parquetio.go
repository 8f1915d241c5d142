// Package parquetio writes the clean tables as Parquet from their one
// schema (transforms.Schema): the Parquet schema is derived from it, and
// rows are written column by column from their encoded form (the batch
// job's sort-merge rows), with no row structs and no reflection.
package parquetio

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"reflect"
	"strings"

	"github.com/klauspost/compress/s2"
	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress"
	"github.com/parquet-go/parquet-go/compress/snappy"
	"github.com/parquet-go/parquet-go/encoding"
	"github.com/pinpipe/pinpipe/transforms"
)

// RowsPerRowGroup is the row group size of the tables' files: large enough
// for engines to skip by statistics, small enough that a writer's buffers
// stay a few MiB for the widest table.
const RowsPerRowGroup = 32 << 10

// Schema returns the Parquet schema of a clean table: its columns in the
// contract's order, nullable ones optional, Int64 as INT64, Text as STRING,
// Float64List as a LIST of DOUBLE, Timestamp as TIMESTAMP(MICROS, UTC), each
// with its field id (transforms.Schema.FieldID), which Iceberg readers
// resolve columns by.
func Schema(s transforms.Schema) *parquet.Schema {
	g := make(orderedGroup, len(s.Columns))
	for i, c := range s.Columns {
		var n parquet.Node
		switch c.Type {
		case transforms.Int64:
			n = parquet.Leaf(parquet.Int64Type)
		case transforms.Text:
			n = parquet.String()
		case transforms.Float64List:
			n = parquet.List(parquet.FieldID(parquet.Leaf(parquet.DoubleType), s.ElementID(i)))
		case transforms.Timestamp:
			n = parquet.Timestamp(parquet.Microsecond)
		default:
			panic(fmt.Sprintf("parquetio: column %s has no Parquet type", c.Name))
		}
		if c.Nullable {
			n = parquet.Optional(n)
		}
		g[i] = &field{Node: parquet.FieldID(n, s.FieldID(i)), name: c.Name}
	}
	return parquet.NewSchema(s.Table, g)
}

// orderedGroup is a group node whose fields keep their order (parquet.Group
// is a map and sorts them by name): a table's columns are in the contract's
// order in every output.
type orderedGroup []*field

type field struct {
	parquet.Node
	name string
}

func (f *field) Name() string                           { return f.name }
func (f *field) Value(base reflect.Value) reflect.Value { return base.FieldByName(goName(f.name)) }

func goName(column string) string { return "F_" + column }

func (g orderedGroup) ID() int { return 0 }
func (g orderedGroup) String() string {
	names := make([]string, len(g))
	for i, f := range g {
		names[i] = f.name
	}
	return "group(" + strings.Join(names, ", ") + ")"
}
func (g orderedGroup) Type() parquet.Type          { return parquet.Group{}.Type() }
func (g orderedGroup) Optional() bool              { return false }
func (g orderedGroup) Repeated() bool              { return false }
func (g orderedGroup) Required() bool              { return true }
func (g orderedGroup) Leaf() bool                  { return false }
func (g orderedGroup) Encoding() encoding.Encoding { return nil }
func (g orderedGroup) Compression() compress.Codec { return nil }
func (g orderedGroup) Fields() []parquet.Field {
	fs := make([]parquet.Field, len(g))
	for i, f := range g {
		fs[i] = f
	}
	return fs
}

// GoType is a struct of the columns' Go types, for parquet-go's generic
// paths; this package writes values, not structs.
func (g orderedGroup) GoType() reflect.Type {
	fs := make([]reflect.StructField, len(g))
	for i, f := range g {
		fs[i] = reflect.StructField{Name: goName(f.name), Type: f.GoType(),
			Tag: reflect.StructTag(`parquet:"` + strings.ReplaceAll(f.name, ",", "") + `"`)}
	}
	return reflect.StructOf(fs)
}

// Writer writes one table's encoded rows (transforms' row encoding) to a
// Parquet file, column by column: rows are buffered as bytes a batch at a
// time, then each column's values are made from them and handed to the
// column's writer.
type Writer struct {
	schema transforms.Schema
	//lint:ignore SA1019 the row-level Writer writes []parquet.Row column values; its generic replacement needs Go structs
	w *parquet.Writer
	// rows holds the batch's encoded rows back to back, ends where each ends.
	rows   []byte
	ends   []int
	group  int // rows in the current row group
	fields []transforms.Field
	cols   [][]parquet.Value // per leaf column
	closed bool
}

// batchRows is how many rows are buffered before they go to the columns.
const batchRows = 1024

// NewWriter returns a writer of table s's rows to out, Snappy-compressed,
// in row groups of RowsPerRowGroup rows.
func NewWriter(out io.Writer, s transforms.Schema) *Writer {
	return &Writer{schema: s,
		w:    parquet.NewWriter(out, Schema(s), parquet.Compression(&fastSnappy{})),
		cols: make([][]parquet.Value, len(s.Columns))} // one leaf per column
}

// Write adds one encoded row (copied; the caller may reuse it).
func (w *Writer) Write(row []byte) error {
	w.rows = append(w.rows, row...)
	w.ends = append(w.ends, len(w.rows))
	if len(w.ends) == batchRows {
		return w.flushBatch()
	}
	return nil
}

// flushBatch turns the buffered rows into column values and writes them.
func (w *Writer) flushBatch() error {
	if len(w.ends) == 0 {
		return nil
	}
	for i := range w.cols {
		w.cols[i] = w.cols[i][:0]
	}
	start := 0
	for _, end := range w.ends {
		var err error
		w.fields, err = w.schema.DecodeFields(w.rows[start:end], w.fields)
		if err != nil {
			return fmt.Errorf("parquetio: %s row: %w", w.schema.Table, err)
		}
		start = end
		for i, c := range w.schema.Columns {
			w.cols[i] = appendValues(w.cols[i], c, &w.fields[i], i)
		}
	}
	cws := w.w.ColumnWriters()
	for i := range w.cols {
		if _, err := cws[i].WriteRowValues(w.cols[i]); err != nil {
			return err
		}
	}
	w.group += len(w.ends)
	w.rows, w.ends = w.rows[:0], w.ends[:0]
	if w.group >= RowsPerRowGroup {
		w.group = 0
		return w.w.Flush()
	}
	return nil
}

// appendValues appends one row's values of a column, with the repetition
// and definition levels of its Parquet type: optional columns define 1 when
// present, the list 1 when empty and 2 per element (its elements repeat at
// level 1).
func appendValues(vs []parquet.Value, c transforms.Column, f *transforms.Field, col int) []parquet.Value {
	def := 0
	if c.Nullable {
		def = 1
	}
	if f.Null {
		return append(vs, parquet.NullValue().Level(0, 0, col))
	}
	switch c.Type {
	case transforms.Int64:
		return append(vs, parquet.Int64Value(f.Int).Level(0, def, col))
	case transforms.Text:
		return append(vs, parquet.ByteArrayValue(f.Bytes).Level(0, def, col))
	case transforms.Timestamp:
		return append(vs, parquet.Int64Value(f.Int*1e6+f.Nsec/1e3).Level(0, def, col))
	case transforms.Float64List:
		if len(f.Bytes) == 0 {
			return append(vs, parquet.NullValue().Level(0, def, col))
		}
		for i := 0; i < len(f.Bytes); i += 8 {
			rep := 1
			if i == 0 {
				rep = 0
			}
			v := math.Float64frombits(binary.LittleEndian.Uint64(f.Bytes[i:]))
			vs = append(vs, parquet.DoubleValue(v).Level(rep, def+1, col))
		}
		return vs
	}
	panic("parquetio: unknown column type")
}

// Close writes the last rows and the file's footer.
func (w *Writer) Close() error {
	if w.closed {
		return nil
	}
	w.closed = true
	if err := w.flushBatch(); err != nil {
		return err
	}
	return w.w.Close()
}

// fastSnappy is Parquet's SNAPPY codec with s2's plain Snappy encoder:
// parquet-go's uses klauspost's Snappy, which compresses harder ("better")
// at about twice the CPU; the output is Snappy either way.
type fastSnappy struct{ snappy.Codec }

func (*fastSnappy) Encode(dst, src []byte) ([]byte, error) {
	if n := s2.MaxEncodedLen(len(src)); cap(dst) >= n {
		dst = dst[:n]
	}
	return s2.EncodeSnappy(dst, src), nil
}
