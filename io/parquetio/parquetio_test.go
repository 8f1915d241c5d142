package parquetio

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/parquet-go/parquet-go"
	"github.com/pinpipe/pinpipe/transforms"
)

// TestSchemaIsTheRowStructs holds the schema derived from transforms.Schema
// to the one parquet-go derives from the row structs' tags (what readers of
// the tables with those structs expect): the same columns, order, types and
// repetition.
func TestSchemaIsTheRowStructs(t *testing.T) {
	for _, c := range []struct {
		s   transforms.Schema
		row any
	}{{transforms.PinSchema, transforms.Pin{}}, {transforms.GeoSchema, transforms.Geo{}}, {transforms.UserSchema, transforms.User{}}} {
		got, want := Schema(c.s), parquet.SchemaOf(c.row)
		if !parquet.EqualNodes(got, want) {
			t.Errorf("%s: schema\n%s\nwant\n%s", c.s.Table, got, want)
		}
	}
}

// TestWriterRoundTrip writes the sample input's clean rows (and rows with
// every nullable column null, and more rows than a row group) column by
// column and reads the file back into the row structs: the same rows.
func TestWriterRoundTrip(t *testing.T) {
	for _, s := range transforms.Schemas {
		t.Run(s.Table, func(t *testing.T) {
			c := transforms.NewLineCleaner(s.Table)
			var rows [][]byte
			files, _ := filepath.Glob("../../testdata/sample/topics/pinpipe." + s.Table + "/partition=*/*.json")
			if len(files) == 0 {
				t.Fatal("no sample input")
			}
			for _, name := range files {
				f, err := os.Open(name)
				if err != nil {
					t.Fatal(err)
				}
				sc := bufio.NewScanner(f)
				sc.Buffer(nil, 1<<20)
				for sc.Scan() {
					if _, row, _ := c.Clean(sc.Bytes()); row != nil {
						rows = append(rows, bytes.Clone(row))
					}
				}
				f.Close()
			}
			// A row with every nullable column null.
			rows = append(rows, nullRow(s.Table))
			for n := len(rows); len(rows) < RowsPerRowGroup+batchRows+7; {
				rows = append(rows, rows[len(rows)%n])
			}
			var buf bytes.Buffer
			w := NewWriter(&buf, s)
			for _, r := range rows {
				if err := w.Write(r); err != nil {
					t.Fatal(err)
				}
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			f, err := parquet.OpenFile(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
			if err != nil {
				t.Fatal(err)
			}
			if len(f.RowGroups()) != 2 {
				t.Errorf("%d row groups, want 2", len(f.RowGroups()))
			}
			// Read back as encoded rows: the very bytes written.
			r, err := NewReader(bytes.NewReader(buf.Bytes()), int64(buf.Len()), s)
			if err != nil {
				t.Fatal(err)
			}
			read := 0
			for i := 0; r.Next(); i++ {
				read++
				if !bytes.Equal(r.Row(), rows[i]) {
					t.Fatalf("row %d read back as %x, written %x", i, r.Row(), rows[i])
				}
				if want, _ := binary.Varint(rows[i]); r.Key() != want {
					t.Fatalf("row %d: key %d, want %d", i, r.Key(), want)
				}
			}
			if r.Err() != nil || read != len(rows) {
				t.Fatalf("%d rows read back of %d: %v", read, len(rows), r.Err())
			}
			if _, err := NewReader(bytes.NewReader(buf.Bytes()), int64(buf.Len()), transforms.SchemaOf(otherTable(s.Table))); err == nil {
				t.Error("a file read as another table's")
			}
			switch s.Table {
			case transforms.TablePin:
				roundTrip(t, buf.Bytes(), rows, transforms.DecodePinRow)
			case transforms.TableGeo:
				roundTrip(t, buf.Bytes(), rows, transforms.DecodeGeoRow)
			default:
				roundTrip(t, buf.Bytes(), rows, transforms.DecodeUserRow)
			}
		})
	}
}

func otherTable(table string) string {
	if table == transforms.TablePin {
		return transforms.TableUser
	}
	return transforms.TablePin
}

func nullRow(table string) []byte {
	switch table {
	case transforms.TablePin:
		return transforms.AppendRow(nil, &transforms.Pin{Ind: -3})
	case transforms.TableGeo:
		return transforms.AppendRow(nil, &transforms.Geo{Ind: -3})
	}
	return transforms.AppendRow(nil, &transforms.User{Ind: -3})
}

func roundTrip[R any](t *testing.T, data []byte, rows [][]byte, decode func([]byte) (R, error)) {
	t.Helper()
	got, err := parquet.Read[R](bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(rows) {
		t.Fatalf("%d rows read, %d written", len(got), len(rows))
	}
	for i, r := range rows {
		want, err := decode(r)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got[i]); diff != "" {
			t.Fatalf("row %d (-written +read):\n%s", i, diff)
		}
	}
}

func TestWriterRejectsACorruptRow(t *testing.T) {
	w := NewWriter(&bytes.Buffer{}, transforms.UserSchema)
	w.Write([]byte{0x02, 0x01}) // ind 1, then a user_name cut short
	if err := w.Close(); err == nil {
		t.Error("a corrupt row was written")
	}
}
