package batch

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"
	"github.com/google/go-cmp/cmp"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/pinpipe/pinpipe/internal/icebergtest"
	"github.com/pinpipe/pinpipe/internal/icebird"
	"github.com/pinpipe/pinpipe/internal/testenv"
	"github.com/pinpipe/pinpipe/io/icebergio"
	"github.com/pinpipe/pinpipe/io/smb"
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
	var rows []map[string]any
	icebergtest.Batches(t, tbl, func(rec arrow.RecordBatch) {
		for i := range int(rec.NumRows()) {
			row := map[string]any{}
			for c, f := range rec.Schema().Fields() {
				row[f.Name] = arrowValue(t, rec.Column(c), i)
			}
			rows = append(rows, row)
		}
	}, opts...)
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

// icebirdSnapshot is icebergSnapshot read by icebird, an Iceberg reader
// nobody here wrote (npm, run with Node.js), from each table's current
// metadata file as the catalog names it: the tables must be spec-conformant
// Iceberg, not merely what iceberg-go reads back. Its values are converted
// to what iceberg-go's scan gives, so both go through the same comparison.
func icebirdSnapshot(t *testing.T, o icebergio.Options, s3Endpoint string) map[string]string {
	t.Helper()
	read := func(name string) []map[string]any {
		t.Helper()
		loc := icebergTable(t, o, name).MetadataLocation()
		rows, err := icebird.ReadTable(t, loc, icebird.Options{S3Endpoint: s3Endpoint})
		if err != nil {
			t.Fatalf("icebird reading %s (%s): %v", name, loc, err)
		}
		for _, r := range rows {
			for k, v := range r {
				switch v := v.(type) {
				case time.Time:
					r[k] = arrow.Timestamp(v.UnixMicro())
				case []any: // a list of doubles
					xs := make([]float64, len(v))
					for i, x := range v {
						f, ok := x.(float64)
						if !ok {
							t.Fatalf("%s.%s: a list holding %T", name, k, x)
						}
						xs[i] = f
					}
					r[k] = xs
				}
			}
		}
		return rows
	}
	snap := map[string]string{}
	for _, s := range transforms.Schemas {
		var rows []string
		for _, r := range read(s.Table) {
			rows = append(rows, cleanRowJSON(t, s, r))
		}
		slices.SortFunc(rows, func(a, b string) int { return int(indOf(t, a) - indOf(t, b)) })
		snap["tables/"+s.Table+".jsonl"] = strings.Join(rows, "\n") + "\n"
	}
	var dead []string
	for _, r := range read(icebergio.DeadLetterTable) {
		dead = append(dead, string(remarshal(t, r, reflect.TypeFor[transforms.DeadLetter](), false)))
	}
	slices.Sort(dead)
	snap["deadletter.jsonl"] = strings.Join(dead, "\n") + "\n"
	var in transforms.Insights
	for _, n := range in.Named() {
		snap["insights/"+n.Name+".json"] = string(remarshal(t, read(n.Name), reflect.TypeOf(n.Rows), true)) + "\n"
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

// icebergOptions are the Iceberg options a run with --table-format=iceberg and
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
// reads every table back through the catalog with iceberg-go's scan; then
// again with another number of buckets, which changes the clean tables'
// partition spec (bucket[4] to bucket[6]) in the run's own snapshot.
func TestIcebergGoldenDirect(t *testing.T) {
	testenv.SetFlags(t, "runner", "direct")
	out := t.TempDir()
	for _, shards := range []int{4, 6} {
		runBatch(t, Options{Input: sampleDir, TopicPrefix: "pinpipe", Output: out, Format: FormatIceberg, Shards: shards})
		o := icebergOptions(t, out)
		compareGolden(t, icebergSnapshot(t, o))
		compareGolden(t, icebirdSnapshot(t, o, ""))
		page, err := os.ReadFile(filepath.Join(out, ReportFile))
		if want := "iceberg_scan(&#39;" + o.Warehouse + "/pinpipe/pin&#39;)"; err != nil || !strings.Contains(string(page), want) {
			t.Errorf("the report shows no DuckDB query of the tables (%s): %v", want, err)
		}
		spec := icebergTable(t, o, transforms.TableGeo).Spec()
		if f := spec.Field(0); spec.NumFields() != 1 || f.Transform.String() != fmt.Sprintf("bucket[%d]", shards) {
			t.Errorf("%d shards: the geo table's partition spec is %v, want bucket[%d](ind)", shards, spec, shards)
		}
	}
}

// TestIcebergPostgresCatalog registers the tables in a real PostgreSQL
// database through iceberg-go's SQL catalog (--catalog=postgres).
func TestIcebergPostgresCatalog(t *testing.T) {
	testenv.SetFlags(t, "runner", "direct")
	dsn := testenv.PostgresDB(t, false)
	out := t.TempDir()
	ice := icebergio.Options{Catalog: icebergio.CatalogPostgres, CatalogURI: dsn}
	runBatch(t, Options{Input: sampleDir, TopicPrefix: "pinpipe", Output: out, Format: FormatIceberg, Shards: 2, Iceberg: ice})
	ice.Warehouse, ice.Namespace = filepath.Join(out, icebergio.WarehouseDir), "pinpipe"
	compareGolden(t, icebergSnapshot(t, ice))
	conn := testenv.PostgresConnect(t, dsn)
	var n int
	if err := conn.QueryRow(context.Background(), "SELECT count(*) FROM iceberg_tables WHERE table_namespace = 'pinpipe'").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if want := len(icebergio.TableNames()); n != want {
		t.Errorf("the PostgreSQL catalog registers %d tables, want %d", n, want)
	}
	if _, err := os.Stat(filepath.Join(out, icebergio.WarehouseDir, icebergio.SQLiteFile)); !os.IsNotExist(err) {
		t.Errorf("a SQLite catalog was written beside the PostgreSQL one (%v)", err)
	}
}

// TestIcebergBucketsArePartitions: every row of a clean table's Iceberg
// file is in the bucket the file's partition value says, by Iceberg's own
// bucket transform, so that an engine pruning by ind finds every row: a
// scan filtered on each ind plans exactly the one file of its bucket and
// reads exactly its golden row.
func TestIcebergBucketsArePartitions(t *testing.T) {
	testenv.SetFlags(t, "runner", "direct")
	out := t.TempDir()
	const buckets = 5
	runBatch(t, Options{Input: sampleDir, TopicPrefix: "pinpipe", Output: out, Format: FormatIceberg, Shards: buckets})
	o := icebergOptions(t, out)
	golden, err := os.ReadFile(filepath.Join(goldenDir, "tables", "user.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	tbl := icebergTable(t, o, transforms.TableUser)
	for _, line := range strings.Split(strings.TrimSpace(string(golden)), "\n") {
		ind := indOf(t, line)
		filter := iceberg.EqualTo(iceberg.Reference("ind"), ind)
		tasks, err := tbl.Scan(table.WithRowFilter(filter)).PlanFiles(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		want := smb.Bucket(ind, buckets)
		bt := iceberg.BucketTransform{NumBuckets: buckets}
		if got := bt.Apply(iceberg.Optional[iceberg.Literal]{Valid: true, Val: iceberg.NewLiteral(ind)}); !got.Valid || got.Val.(iceberg.Int32Literal) != iceberg.Int32Literal(want) {
			t.Fatalf("ind %d: Iceberg's bucket[%d] is %v, pinpipe's bucket %d", ind, buckets, got, want)
		}
		if len(tasks) != 1 || tasks[0].File.Partition()[1000] != int32(want) {
			var got []string
			for _, tk := range tasks {
				got = append(got, fmt.Sprintf("%s %v", tk.File.FilePath(), tk.File.Partition()))
			}
			t.Fatalf("ind %d (bucket %d): the scan plans %v, want the one file of bucket %d", ind, want, got, want)
		}
		rows := scanRows(t, tbl, filter)
		if len(rows) != 1 || cleanRowJSON(t, transforms.UserSchema, rows[0]) != line {
			t.Fatalf("ind %d: the filtered scan reads %v, want %s", ind, rows, line)
		}
	}
}

// TestIcebergRunsChain: a first full run, an --incremental run that re-sends
// inds, and another full run into one Iceberg output: after each, every
// table read through the catalog equals what a plain Parquet run over the
// same input holds (so no ind twice), each run is one snapshot per table
// whose summary names the run, chained to the one before, and the first
// run's snapshot still reads as it was (time travel).
func TestIcebergRunsChain(t *testing.T) {
	testenv.SetFlags(t, "runner", "direct")
	root := t.TempDir()
	day1, both := twoDays(t, root)
	plainOut, out := filepath.Join(root, "plain"), filepath.Join(root, "ice")
	o := icebergOptions(t, out)
	var runIDs []string
	var want1 string
	for i, step := range []struct {
		input       string
		incremental bool
	}{{day1, false}, {both, true}, {both, false}} {
		// The same run into a plain Parquet output is what the tables must hold.
		runBatch(t, Options{Input: step.input, TopicPrefix: "pinpipe", Output: plainOut, Format: FormatParquet, Shards: 3, Incremental: step.incremental})
		want := snapshot(t, plainOut)
		delete(want, SummaryFile)
		delete(want, "committed insights")
		if i == 0 {
			want1 = want["tables/pin.jsonl"]
		}
		runBatch(t, Options{Input: step.input, TopicPrefix: "pinpipe", Output: out, Format: FormatIceberg, Shards: 3, Incremental: step.incremental})
		if diff := cmp.Diff(want, icebergSnapshot(t, o)); diff != "" {
			t.Fatalf("run %d: the Iceberg tables differ from the Parquet output (-want +got):\n%.3000s", i+1, diff)
		}
		c, err := ReadCommit(context.Background(), out)
		if err != nil {
			t.Fatal(err)
		}
		runIDs = append(runIDs, c.RunID)
	}
	for _, name := range icebergio.TableNames() {
		hist, err := icebergio.History(context.Background(), o, name)
		if err != nil {
			t.Fatal(err)
		}
		if len(hist) != len(runIDs) {
			t.Fatalf("%s: %d snapshots, want one per run (%d): %+v", name, len(hist), len(runIDs), hist)
		}
		for i, s := range hist {
			if s.RunID != runIDs[i] {
				t.Errorf("%s: snapshot %d names run %q, want %q", name, i, s.RunID, runIDs[i])
			}
			if i > 0 && s.ParentID != hist[i-1].ID {
				t.Errorf("%s: snapshot %d's parent is %d, want the previous run's %d", name, i, s.ParentID, hist[i-1].ID)
			}
		}
		if !hist[len(hist)-1].Current {
			t.Errorf("%s: the last run's snapshot is not the current one", name)
		}
	}
	// Time travel to the first run: its files are still there.
	hist, err := icebergio.History(context.Background(), o, transforms.TablePin)
	if err != nil {
		t.Fatal(err)
	}
	tbl := icebergTable(t, o, transforms.TablePin)
	at, err := tbl.Scan(table.WithSnapshotID(hist[0].ID)).ToArrowTable(context.Background())
	if err != nil {
		t.Fatalf("reading the first run's snapshot: %v", err)
	}
	defer at.Release()
	if got, want := at.NumRows(), int64(strings.Count(want1, "\n")); got != want {
		t.Errorf("the first run's snapshot has %d pin rows, want %d", got, want)
	}
	// Nothing under the tables' locations is outside the snapshots.
	orphans, err := icebergio.RemoveOrphans(context.Background(), o, 0, true)
	if err != nil || len(orphans) > 0 {
		t.Errorf("orphan files after successful runs: %+v, %v", orphans, err)
	}
}

// TestIcebergGoldenPrism writes the golden input as Iceberg tables on
// prism, to a local warehouse with the Hadoop file catalog, and to a
// warehouse on S3 (gofakes3 over real HTTP) registered in a SQLite
// catalog file, and reads every table back through the catalog.
func TestIcebergGoldenPrism(t *testing.T) {
	testenv.SetFlags(t, "runner", "prism")
	t.Run("local-hadoop", func(t *testing.T) {
		out := t.TempDir()
		ice := icebergio.Options{Catalog: icebergio.CatalogHadoop}
		runBatch(t, Options{Input: sampleDir, TopicPrefix: "pinpipe", Output: out, Format: FormatIceberg, Shards: 3, Iceberg: ice})
		hadoop := icebergio.Options{Catalog: icebergio.CatalogHadoop, Warehouse: filepath.Join(out, icebergio.WarehouseDir), Namespace: "pinpipe"}
		compareGolden(t, icebergSnapshot(t, hadoop))
		compareGolden(t, icebirdSnapshot(t, hadoop, ""))
		for _, name := range icebergio.TableNames() {
			if _, err := os.Stat(filepath.Join(out, icebergio.WarehouseDir, "pinpipe", name, "metadata", "version-hint.text")); err != nil {
				t.Errorf("the Hadoop catalog wrote no version-hint.text for %s: %v", name, err)
			}
		}
	})
	t.Run("s3-sql", func(t *testing.T) {
		srv := httptest.NewServer(gofakes3.New(s3mem.New(), gofakes3.WithAutoBucket(true)).Server())
		defer srv.Close()
		t.Setenv("AWS_ENDPOINT_URL_S3", srv.URL)
		t.Setenv("AWS_ACCESS_KEY_ID", "test")
		t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
		t.Setenv("AWS_REGION", "us-east-1")
		ice := icebergio.Options{Warehouse: "s3://lake/warehouse", CatalogURI: filepath.Join(t.TempDir(), "catalog.sqlite")}
		runBatch(t, Options{Input: sampleDir, TopicPrefix: "pinpipe", Output: "s3://lake/out", Format: FormatIceberg, Shards: 3, Iceberg: ice})
		ice.Namespace = "pinpipe"
		compareGolden(t, icebergSnapshot(t, ice))
		compareGolden(t, icebirdSnapshot(t, ice, srv.URL))
		tbl := icebergTable(t, ice, transforms.TablePin)
		if loc := tbl.Location(); loc != "s3://lake/warehouse/pinpipe/pin" {
			t.Errorf("the pin table lives in %s, want s3://lake/warehouse/pinpipe/pin", loc)
		}
	})
}

// TestIcebergKilledRun kills the real pinpipe batch process (SIGKILL) with
// --table-format=iceberg at four moments: while it writes a bucket file into the
// warehouse, after its own commit (_commit.json) but before any catalog
// commit, after the first table's catalog commit, and after a timed delay.
// After each kill every table read through the catalog is complete: at the
// previous run's snapshot, or (a table already committed) at the new one.
// The next run then succeeds, every table equals what one uninterrupted run
// gives, and no file under the tables' locations is outside a snapshot.
func TestIcebergKilledRun(t *testing.T) {
	bin := pinpipeToKill(t)
	root := t.TempDir()
	day1, both := twoDays(t, root)
	runs := batchRuns{t: t, bin: bin, flags: []string{"--table-format=iceberg", "--shards=2", "--runner=direct"}}
	wantOut := filepath.Join(root, "want")
	runs.mustRun(day1, wantOut)
	before := icebergSnapshot(t, icebergOptions(t, wantOut))
	runs.mustRun(both, wantOut)
	after := icebergSnapshot(t, icebergOptions(t, wantOut))
	if cmp.Diff(before, after) == "" {
		t.Fatal("the second day changes nothing: the test could not tell the runs apart")
	}

	for i, k := range []kill{{point: crashTableWrite}, {point: crashAfterCommit}, {point: crashMidPublish}, {delay: 900 * time.Millisecond}} {
		what := k.String()
		out := filepath.Join(root, fmt.Sprintf("out%d", i))
		o := icebergOptions(t, out)
		runs.mustRun(day1, out)
		runs.killed(k, both, out)
		got := icebergSnapshot(t, o)
		for key, v := range got {
			// Killed in the middle of publishing, tables publishing alongside
			// the first one may have committed too: each is at one of the
			// two runs, whole, and the first is at the new one.
			switch {
			case k.point == crashMidPublish && v != before[key] && v != after[key]:
				t.Errorf("%s: %s reads as neither the previous run's nor the new one's", what, key)
			case k.point == crashMidPublish:
			case k.point != "" && v != before[key]:
				t.Errorf("%s: %s no longer reads as the previous run's (-previous +now):\n%.1500s", what, key, cmp.Diff(before[key], v))
			case k.point == "" && v != before[key] && v != after[key]:
				t.Errorf("%s: %s reads as neither the previous run's nor the new one's", what, key)
			}
		}
		if k.point == crashMidPublish && cmp.Diff(before, got) == "" {
			t.Errorf("%s: killed after a table's catalog commit, yet every table reads as the previous run's", what)
		}
		if k.point == crashTableWrite {
			if orphans, err := icebergio.RemoveOrphans(context.Background(), o, 0, true); err != nil || len(orphans) == 0 {
				t.Errorf("%s: no orphan files listed after a run killed while writing (%v): the test did not kill it mid-write", what, err)
			}
		}
		runs.mustRun(both, out)
		if diff := cmp.Diff(after, icebergSnapshot(t, o)); diff != "" {
			t.Errorf("%s: the run after the kill differs from one uninterrupted run (-want +got):\n%.2000s", what, diff)
		}
		if orphans, err := icebergio.RemoveOrphans(context.Background(), o, 0, true); err != nil || len(orphans) > 0 {
			t.Errorf("%s: files outside every snapshot after the next run: %+v, %v", what, orphans, err)
		}
		checkNoLeftovers(t, out)
	}
}
