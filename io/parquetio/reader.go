package parquetio

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/parquet-go/parquet-go"
	"github.com/pinpipe/pinpipe/transforms"
)

// Reader reads a table file back as encoded rows (the form Writer takes),
// in the file's order, from its columns' values: no row structs, no
// reflection, no allocation per row. It is a transforms.SortedRows when the
// file is sorted by ind, which the caller checks.
type Reader struct {
	schema transforms.Schema
	//lint:ignore SA1019 read as []parquet.Row, column by column, as the Writer writes; the generic replacement needs Go structs
	r      *parquet.Reader
	batch  []parquet.Row
	i, n   int
	eof    bool
	fields []transforms.Field
	floats []byte // a list's values, reused
	row    []byte
	key    int64
	err    error
}

// readBatch is how many rows are read from the file at a time.
const readBatch = 256

// NewReader opens the Parquet file of the given size as a table file of s;
// it reads the footer, then column chunks as rows are read, never the
// whole file. A file whose schema is not s's (another table, another
// version) is an error.
func NewReader(file io.ReaderAt, size int64, s transforms.Schema) (*Reader, error) {
	f, err := parquet.OpenFile(file, size)
	if err != nil {
		return nil, err
	}
	if want := Schema(s); !parquet.EqualNodes(f.Schema(), want) {
		return nil, fmt.Errorf("parquetio: the file's schema is not the %s table's:\n%s\nwant\n%s", s.Table, f.Schema(), want)
	}
	return &Reader{schema: s, r: parquet.NewReader(f), batch: make([]parquet.Row, readBatch)}, nil
}

// Next reads the next row; false at the end or on an error (Err).
func (r *Reader) Next() bool {
	if r.err != nil {
		return false
	}
	if r.i == r.n {
		if r.eof {
			return false
		}
		n, err := r.r.ReadRows(r.batch)
		r.i, r.n = 0, n
		if errors.Is(err, io.EOF) {
			r.eof = true
		} else if err != nil {
			r.err = err
			return false
		}
		if n == 0 {
			return false
		}
	}
	row := r.batch[r.i]
	r.i++
	if err := r.encode(row); err != nil {
		r.err = fmt.Errorf("parquetio: %s row: %w", r.schema.Table, err)
		return false
	}
	return true
}

// encode makes the encoded row of one Parquet row: its values are in
// column order, one per column but a list's, which has one per element (a
// null or empty list one null value, told apart by its definition level).
func (r *Reader) encode(row parquet.Row) error {
	if len(r.fields) != len(r.schema.Columns) {
		r.fields = make([]transforms.Field, len(r.schema.Columns))
	}
	clear(r.fields)
	j := 0
	for i, c := range r.schema.Columns {
		start := j
		for j < len(row) && row[j].Column() == i {
			j++
		}
		vs := row[start:j]
		if len(vs) == 0 {
			return fmt.Errorf("no value for column %s", c.Name)
		}
		f := &r.fields[i]
		if vs[0].IsNull() && (c.Type != transforms.Float64List || vs[0].DefinitionLevel() == 0) {
			if !c.Nullable {
				return fmt.Errorf("column %s is null", c.Name)
			}
			f.Null = true
			continue
		}
		switch c.Type {
		case transforms.Int64:
			f.Int = vs[0].Int64()
		case transforms.Text:
			f.Bytes = vs[0].ByteArray()
		case transforms.Timestamp:
			us := vs[0].Int64()
			f.Int, f.Nsec = us/1e6, us%1e6*1e3
			if f.Nsec < 0 {
				f.Int, f.Nsec = f.Int-1, f.Nsec+1e9
			}
		case transforms.Float64List:
			if vs[0].IsNull() { // an empty list
				break
			}
			r.floats = r.floats[:0]
			for _, v := range vs {
				r.floats = binary.LittleEndian.AppendUint64(r.floats, math.Float64bits(v.Double()))
			}
			f.Bytes = r.floats
		}
	}
	if j != len(row) {
		return fmt.Errorf("%d values beyond the schema's columns", len(row)-j)
	}
	r.row = r.schema.AppendFields(r.row[:0], r.fields)
	r.key = r.fields[0].Int
	return nil
}

// Key is the row's first column (ind); Row its encoding, valid until Next.
func (r *Reader) Key() int64  { return r.key }
func (r *Reader) Row() []byte { return r.row }
func (r *Reader) Err() error  { return r.err }
