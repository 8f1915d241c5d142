package icebird_test

import (
	"cmp"
	"context"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/catalog"
	"github.com/apache/iceberg-go/catalog/hadoop"
	icebergio "github.com/apache/iceberg-go/io"
	_ "github.com/apache/iceberg-go/io/gocloud/s3" // s3:// warehouses
	"github.com/apache/iceberg-go/table"
	gocmp "github.com/google/go-cmp/cmp"

	devs3 "github.com/pinpipe/pinpipe/ingest/devserver/s3"
	"github.com/pinpipe/pinpipe/internal/icebird"
)

// schema has a column of each type the lake tables use, a required key
// among them.
var schema = iceberg.NewSchema(0,
	iceberg.NestedField{ID: 1, Name: "ind", Type: iceberg.PrimitiveTypes.Int64, Required: true},
	iceberg.NestedField{ID: 2, Name: "title", Type: iceberg.PrimitiveTypes.String},
	iceberg.NestedField{ID: 3, Name: "follower_count", Type: iceberg.PrimitiveTypes.Int64},
	iceberg.NestedField{ID: 4, Name: "saved_at", Type: iceberg.PrimitiveTypes.TimestampTz},
	iceberg.NestedField{ID: 5, Name: "score", Type: iceberg.PrimitiveTypes.Float64},
	iceberg.NestedField{ID: 6, Name: "is_image", Type: iceberg.PrimitiveTypes.Bool},
	iceberg.NestedField{ID: 7, Name: "age", Type: iceberg.PrimitiveTypes.Int32},
)

func ts(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t.UTC()
}

// The two commits' rows: nulls, non-ASCII text, an int64 past 2^53 (a
// float64 would round it), negative numbers, timestamps in milliseconds
// (icebird's precision) before and after 1970.
var (
	firstRows = []map[string]any{
		{"ind": int64(1), "title": "ünïcode \"quoted\" ✓", "follower_count": int64(9007199254740993),
			"saved_at": ts("2024-03-01T12:34:56.789Z"), "score": 0.1, "is_image": true, "age": int64(41)},
		{"ind": int64(2), "title": nil, "follower_count": nil, "saved_at": nil, "score": nil, "is_image": nil, "age": nil},
		{"ind": int64(-3), "title": "", "follower_count": int64(-9223372036854775808),
			"saved_at": ts("1969-12-31T23:59:59.001Z"), "score": -2.5e300, "is_image": false, "age": int64(-2147483648)},
	}
	secondRows = []map[string]any{
		{"ind": int64(9223372036854775807), "title": "last", "follower_count": int64(0),
			"saved_at": ts("2038-01-19T03:14:08Z"), "score": 3.0, "is_image": false, "age": int64(0)},
		{"ind": int64(4), "title": "four", "follower_count": nil, "saved_at": ts("2026-12-07T00:00:00.5Z"),
			"score": nil, "is_image": true, "age": nil},
	}
)

// arrowTable builds rows into an Arrow table of schema.
func arrowTable(t *testing.T, rows []map[string]any) arrow.Table {
	t.Helper()
	as, err := table.SchemaToArrowSchema(schema, nil, false, false)
	if err != nil {
		t.Fatal(err)
	}
	b := array.NewRecordBuilder(memory.DefaultAllocator, as)
	defer b.Release()
	for _, row := range rows {
		for i, f := range as.Fields() {
			v := row[f.Name]
			if v == nil {
				b.Field(i).AppendNull()
				continue
			}
			switch fb := b.Field(i).(type) {
			case *array.Int64Builder:
				fb.Append(v.(int64))
			case *array.Int32Builder:
				fb.Append(int32(v.(int64)))
			case *array.StringBuilder:
				fb.Append(v.(string))
			case *array.Float64Builder:
				fb.Append(v.(float64))
			case *array.BooleanBuilder:
				fb.Append(v.(bool))
			case *array.TimestampBuilder:
				fb.Append(arrow.Timestamp(v.(time.Time).UnixMicro()))
			default:
				t.Fatalf("column %s: no case for %T", f.Name, fb)
			}
		}
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	return array.NewTableFromRecords(as, []arrow.RecordBatch{rec})
}

// writeTable creates db.posts in a Hadoop-style catalog (it writes
// version-hint.text) at warehouse and commits firstRows, then secondRows:
// two snapshots. It returns the table and the metadata location after the
// first commit.
func writeTable(t *testing.T, warehouse string, props, tableProps iceberg.Properties) (*table.Table, string) {
	t.Helper()
	ctx := context.Background()
	cat, err := hadoop.NewCatalog("test", warehouse, props)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cat.Close() })
	if err := cat.CreateNamespace(ctx, table.Identifier{"db"}, nil); err != nil {
		t.Fatal(err)
	}
	tbl, err := cat.CreateTable(ctx, table.Identifier{"db", "posts"}, schema, catalog.WithProperties(tableProps))
	if err != nil {
		t.Fatal(err)
	}
	if tbl, err = tbl.AppendTable(ctx, arrowTable(t, firstRows), 1024, nil); err != nil {
		t.Fatal(err)
	}
	first := tbl.MetadataLocation()
	if tbl, err = tbl.AppendTable(ctx, arrowTable(t, secondRows), 1024, nil); err != nil {
		t.Fatal(err)
	}
	if n := len(tbl.Metadata().Snapshots()); n != 2 {
		t.Fatalf("the table has %d snapshots, want 2", n)
	}
	return tbl, first
}

func byInd(rows []map[string]any) []map[string]any {
	slices.SortFunc(rows, func(a, b map[string]any) int { return cmp.Compare(a["ind"].(int64), b["ind"].(int64)) })
	return rows
}

func read(t *testing.T, loc string, opts icebird.Options) []map[string]any {
	t.Helper()
	rows, err := icebird.ReadTable(t, loc, opts)
	if err != nil {
		t.Fatal(err)
	}
	return byInd(rows)
}

// checkSnapshots reads the table at its folder (version-hint.text: the last
// snapshot) and at the first commit's metadata file, and wants exactly the
// rows committed by then.
func checkSnapshots(t *testing.T, tbl *table.Table, first string, opts icebird.Options) {
	t.Helper()
	all := byInd(slices.Concat(firstRows, secondRows))
	if diff := gocmp.Diff(all, read(t, tbl.Location(), opts)); diff != "" {
		t.Errorf("the table folder %s read by icebird (-want +got):\n%s", tbl.Location(), diff)
	}
	if diff := gocmp.Diff(all, read(t, tbl.MetadataLocation(), opts)); diff != "" {
		t.Errorf("the last metadata %s read by icebird (-want +got):\n%s", tbl.MetadataLocation(), diff)
	}
	if diff := gocmp.Diff(byInd(slices.Clone(firstRows)), read(t, first, opts)); diff != "" {
		t.Errorf("the first snapshot's metadata %s read by icebird (-want +got):\n%s", first, diff)
	}
}

func TestReadTableLocal(t *testing.T) {
	tbl, first := writeTable(t, t.TempDir(), iceberg.Properties{}, nil)
	checkSnapshots(t, tbl, first, icebird.Options{})
	// A file:// URL names the same table as a path.
	u := "file://" + strings.TrimPrefix(first, "file://")
	if diff := gocmp.Diff(byInd(slices.Clone(firstRows)), read(t, u, icebird.Options{})); diff != "" {
		t.Errorf("%s read by icebird (-want +got):\n%s", u, diff)
	}
}

func TestReadTableS3(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv, err := devs3.Start(ctx, devs3.Options{
		Listen: "127.0.0.1:0", Buckets: []string{"lake"},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	tbl, first := writeTable(t, "s3://lake/warehouse", iceberg.Properties{
		icebergio.S3EndpointURL:     srv.URL(),
		icebergio.S3Region:          "us-east-1",
		icebergio.S3AccessKeyID:     "test",
		icebergio.S3SecretAccessKey: "test",
		"allow-unsafe-commits":      "true", // a Hadoop catalog on S3: one writer here
	}, nil)
	if !strings.HasPrefix(tbl.Location(), "s3://lake/") {
		t.Fatalf("table location %s: want s3://lake/...", tbl.Location())
	}
	checkSnapshots(t, tbl, first, icebird.Options{S3Endpoint: srv.URL()})

	// Without the endpoint the reader says so instead of leaving the machine.
	_, err = icebird.ReadTable(t, tbl.Location(), icebird.Options{})
	if err == nil || !strings.Contains(err.Error(), "no S3 endpoint was given") {
		t.Errorf("reading an s3:// table with no endpoint: error %v, want one saying no S3 endpoint was given", err)
	}
}

// TestReadTableDeletes deletes rows in a third snapshot with position delete
// files (merge-on-read, as a v2 writer may), which icebird must apply.
func TestReadTableDeletes(t *testing.T) {
	tbl, _ := writeTable(t, t.TempDir(), iceberg.Properties{},
		iceberg.Properties{table.WriteDeleteModeKey: table.WriteModeMergeOnRead})
	tbl, err := tbl.Delete(context.Background(), iceberg.EqualTo(iceberg.Reference("ind"), int64(2)), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := byInd(slices.DeleteFunc(slices.Concat(firstRows, secondRows),
		func(r map[string]any) bool { return r["ind"] == int64(2) }))
	if diff := gocmp.Diff(want, read(t, tbl.Location(), icebird.Options{})); diff != "" {
		t.Errorf("the table after deleting ind 2, read by icebird (-want +got):\n%s", diff)
	}
	// The delete must have been written as delete files, or this test
	// would not test icebird's applying them.
	if got := tbl.CurrentSnapshot().Summary.Properties["added-position-delete-files"]; got == "" || got == "0" {
		t.Fatalf("the delete added no position delete files (summary %v)", tbl.CurrentSnapshot().Summary.Properties)
	}
}

// TestReadTableNoRows reads a table with no snapshot yet: no rows, not an
// error.
func TestReadTableNoRows(t *testing.T) {
	ctx := context.Background()
	cat, err := hadoop.NewCatalog("test", t.TempDir(), iceberg.Properties{})
	if err != nil {
		t.Fatal(err)
	}
	defer cat.Close()
	if err := cat.CreateNamespace(ctx, table.Identifier{"db"}, nil); err != nil {
		t.Fatal(err)
	}
	tbl, err := cat.CreateTable(ctx, table.Identifier{"db", "empty"}, schema)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := icebird.ReadTable(t, tbl.Location(), icebird.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 0 {
		t.Errorf("an empty table read as %d rows: %v", len(rows), rows)
	}
}

// TestReadTableErrors wants an error, not an empty table, for what cannot be
// read.
func TestReadTableErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ loc, want string }{
		{dir + "/no-such-table", "404"},
		{dir + "/no-such-table/metadata/v1.metadata.json", "404"},
		{"https://example.com/table", "neither an absolute path"},
		{"relative/table", "neither an absolute path"},
		{dir + "/v1.metadata.json", "not in its table's metadata/ folder"},
	} {
		rows, err := icebird.ReadTable(t, tc.loc, icebird.Options{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ReadTable(%s) = %d rows, error %v; want an error with %q", tc.loc, len(rows), err, tc.want)
		}
	}
}
