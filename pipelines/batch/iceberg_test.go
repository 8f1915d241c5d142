package batch

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"

	"github.com/pinpipe/pinpipe/internal/testenv"
	"github.com/pinpipe/pinpipe/io/icebergio"
	"github.com/pinpipe/pinpipe/transforms"
)

// icebergTables opens a warehouse's tables through its catalog, as a
// reader would: the current snapshot of each, read with iceberg-go's scan.
func icebergTable(t *testing.T, o icebergio.Options, name string) *table.Table {
	t.Helper()
	ctx := context.Background()
	cat, err := icebergio.Open(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	defer icebergio.Close(cat)
	tbl, err := cat.LoadTable(ctx, table.Identifier{o.Namespace, name})
	if err != nil {
		t.Fatalf("loading the table %s: %v", name, err)
	}
	return tbl
}

// scanRows reads a table's rows with iceberg-go's scan (to Arrow), each as
// a map of column to value, filtered when filter is not nil.
func scanRows(t *testing.T, tbl *table.Table, filter iceberg.BooleanExpression) []map[string]any {
	t.Helper()
	var opts []table.ScanOption
	if filter != nil {
		opts = append(opts, table.WithRowFilter(filter))
	}
	at, err := tbl.Scan(opts...).ToArrowTable(context.Background())
	if err != nil {
		t.Fatalf("scanning %v: %v", tbl.Identifier(), err)
	}
	defer at.Release()
	var rows []map[string]any
	tr := array.NewTableReader(at, 1024)
	defer tr.Release()
	for tr.Next() {
		rec := tr.RecordBatch()
		for i := range int(rec.NumRows()) {
			row := map[string]any{}
			for c, f := range rec.Schema().Fields() {
				row[f.Name] = arrowValue(t, rec.Column(c), i)
			}
			rows = append(rows, row)
		}
	}
	return rows
}

// arrowValue is one Arrow value as Go: nil, int64, string, []float64 or an
// arrow.Timestamp (microseconds).
func arrowValue(t *testing.T, col arrow.Array, i int) any {
	if col.IsNull(i) {
		return nil
	}
	switch c := col.(type) {
	case *array.Int64:
		return c.Value(i)
	case *array.Int32:
		return int64(c.Value(i))
	case *array.String:
		return c.Value(i)
	case *array.LargeString:
		return c.Value(i)
	case *array.Float64:
		return c.Value(i)
	case *array.Timestamp:
		if u := c.DataType().(*arrow.TimestampType).Unit; u != arrow.Microsecond {
			t.Fatalf("timestamp unit %v, want microseconds", u)
		}
		return c.Value(i)
	case array.ListLike:
		start, end := c.ValueOffsets(i)
		vals := c.ListValues().(*array.Float64)
		var out []float64
		for j := start; j < end; j++ {
			out = append(out, vals.Value(int(j)))
		}
		return out
	}
	t.Fatalf("unexpected Arrow column type %s", col.DataType())
	return nil
}

// cleanRowJSON writes a scanned clean-table row as the golden files have
// it: through the table's schema, as the Parquet and JSON-lines outputs.
func cleanRowJSON(t *testing.T, s transforms.Schema, row map[string]any) string {
	t.Helper()
	fields := make([]transforms.Field, len(s.Columns))
	for i, c := range s.Columns {
		v, ok := row[c.Name]
		if !ok {
			t.Fatalf("%s: no column %s in %v", s.Table, c.Name, row)
		}
		f := &fields[i]
		switch v := v.(type) {
		case nil:
			f.Null = true
		case int64:
			f.Int = v
		case string:
			f.Bytes = []byte(v)
		case []float64:
			f.Bytes = []byte{}
			for _, x := range v {
				f.Bytes = binary.LittleEndian.AppendUint64(f.Bytes, math.Float64bits(x))
			}
		case arrow.Timestamp:
			f.Int, f.Nsec = int64(v)/1e6, int64(v)%1e6*1e3
		}
	}
	b, err := s.AppendJSON(nil, s.AppendFields(nil, fields))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// icebergSnapshot reads every table of an iceberg output through the
// catalog into the golden files' form: the clean tables' rows sorted by
// ind, the dead letters sorted, the insights as their JSON files.
func icebergSnapshot(t *testing.T, o icebergio.Options) map[string]string {
	t.Helper()
	snap := map[string]string{}
	for _, s := range transforms.Schemas {
		var rows []string
		for _, r := range scanRows(t, icebergTable(t, o, s.Table), nil) {
			rows = append(rows, cleanRowJSON(t, s, r))
		}
		slices.SortFunc(rows, func(a, b string) int { return int(indOf(t, a) - indOf(t, b)) })
		snap["tables/"+s.Table+".jsonl"] = strings.Join(rows, "\n") + "\n"
	}
	var dead []string
	for _, r := range scanRows(t, icebergTable(t, o, icebergio.DeadLetterTable), nil) {
		dead = append(dead, string(remarshal(t, r, reflect.TypeFor[transforms.DeadLetter](), false)))
	}
	slices.Sort(dead)
	snap["deadletter.jsonl"] = strings.Join(dead, "\n") + "\n"
	var in transforms.Insights
	for _, n := range in.Named() {
		rows := scanRows(t, icebergTable(t, o, n.Name), nil)
		snap["insights/"+n.Name+".json"] = string(remarshal(t, rows, reflect.TypeOf(n.Rows), true)) + "\n"
	}
	return snap
}

// remarshal turns scanned rows into the Go type the batch job writes them
// from (an insight's rows, a dead letter) and marshals that, as the job's
// own JSON files are written.
func remarshal(t *testing.T, v any, typ reflect.Type, indent bool) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	p := reflect.New(typ)
	if err := json.Unmarshal(b, p.Interface()); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	if indent {
		b, err = json.MarshalIndent(p.Elem().Interface(), "", "  ")
	} else {
		b, err = json.Marshal(p.Elem().Interface())
	}
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// icebergOptions are the Iceberg options a run with --format=iceberg and
// no Iceberg flags uses for output.
func icebergOptions(t *testing.T, output string) icebergio.Options {
	t.Helper()
	o := Options{Input: "x", TopicPrefix: "pinpipe", Output: output, Format: FormatIceberg}
	if err := o.validate(); err != nil {
		t.Fatal(err)
	}
	return o.Iceberg
}

// TestIcebergGoldenDirect writes the golden input as Iceberg tables on the
// direct runner, to a local warehouse with the default SQLite catalog, and
// reads every table back through the catalog with iceberg-go's scan.
func TestIcebergGoldenDirect(t *testing.T) {
	testenv.SetFlags(t, "runner", "direct")
	out := t.TempDir()
	runBatch(t, Options{Input: sampleDir, TopicPrefix: "pinpipe", Output: out, Format: FormatIceberg, Shards: 4})
	compareGolden(t, icebergSnapshot(t, icebergOptions(t, out)))
}
