package streaming

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/mtime"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"
	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	"github.com/pinpipe/pinpipe/internal/testenv"
	"github.com/pinpipe/pinpipe/io/postgres"
	"github.com/pinpipe/pinpipe/transforms"
)

func TestMain(m *testing.M) {
	code := ptest.MainRet(m)
	testenv.RemoveBuilds()
	os.Exit(code)
}

func init() {
	register.Function2x0(stampRecord)
	register.Emitter2[beam.EventTime, []byte]()
}

// base is the event time of the test's records: record i arrives i seconds
// after it.
var base = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

// stampRecord gives a "<seconds> <json>" line its arrival time, as the
// stream sources do.
func stampRecord(line string, emit func(beam.EventTime, []byte)) {
	sec, rec, _ := strings.Cut(line, " ")
	var n int
	fmt.Sscan(sec, &n)
	emit(mtime.FromTime(base.Add(time.Duration(n)*time.Second)), []byte(rec))
}

// testSource replays fixed records per table with arrival times.
func testSource(records map[string][]string) Source {
	return func(s beam.Scope, table string) beam.PCollection {
		return beam.ParDo(s, stampRecord, beam.CreateList(s, records[table]))
	}
}

func testDSN(t *testing.T) string { return testenv.PostgresDB(t, false) }

// TestStreamingSinks runs the streaming pipeline's transforms and sinks on a
// replayed source: one row per ind whatever the duplicates, the dead
// letters, windowed files and the per-window category counts.
func TestStreamingSinks(t *testing.T) {
	dsn := testDSN(t)
	files := t.TempDir()
	records := map[string][]string{
		transforms.TablePin: {
			`1 {"index": 1, "title": "a", "follower_count": "1k", "category": "art"}`,
			`2 {"index": 2, "category": "art"}`,
			`3 {"index": 2, "category": "art"}`, // re-sent
			`70 {"index": 3, "category": "travel"}`,
			`71 {"index": null}`,
		},
		transforms.TableGeo: {
			`1 {"ind": 1, "country": "Chad", "latitude": 1, "longitude": 2, "timestamp": "2020-01-01 00:00:00"}`,
			`2 not json`,
		},
		transforms.TableUser: {
			`1 {"ind": 1, "first_name": "Ann", "last_name": "Lee", "age": 30, "date_joined": "2016-01-01 00:00:00"}`,
			`4 {"ind": 1, "first_name": "Ann", "last_name": "Lee", "age": 30, "date_joined": "2016-01-01 00:00:00"}`,
		},
	}
	p, s := beam.NewPipelineWithRoot()
	if err := Build(s, Options{Source: testSource(records), Sink: dsn, Files: files, Window: time.Minute}); err != nil {
		t.Fatal(err)
	}
	ptest.RunAndValidate(t, p)

	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	count := func(q string) int {
		var n int
		if err := conn.QueryRow(ctx, q).Scan(&n); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return n
	}
	for table, want := range map[string]int{postgres.StreamPinTable: 3, postgres.StreamGeoTable: 1, postgres.StreamUserTable: 1, postgres.StreamDeadLetterTable: 2} {
		if got := count("SELECT count(*) FROM " + table); got != want {
			t.Errorf("%s: %d rows, want %d", table, got, want)
		}
	}
	var name string
	var fc int64
	if err := conn.QueryRow(ctx, "SELECT u.user_name, p.follower_count FROM pin_stream p JOIN user_stream u USING (ind) WHERE ind = 1").Scan(&name, &fc); err != nil || name != "Ann Lee" || fc != 1000 {
		t.Errorf("joined row = %q %d %v", name, fc, err)
	}
	rows, err := conn.Query(ctx, "SELECT window_start, category, posts FROM "+postgres.CategoryCountsTable+" ORDER BY window_start, category")
	if err != nil {
		t.Fatal(err)
	}
	type wc struct {
		Start    time.Time
		Category string
		Posts    int64
	}
	got, err := pgx.CollectRows(rows, pgx.RowToStructByPos[wc])
	if err != nil {
		t.Fatal(err)
	}
	for i := range got {
		got[i].Start = got[i].Start.UTC()
	}
	// The re-sent pin counts once: posts, not deliveries.
	want := []wc{{base, "art", 2}, {base.Add(time.Minute), "travel", 1}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("category counts (-want +got):\n%s", diff)
	}
	windows, _ := filepath.Glob(filepath.Join(files, "pin", "window=*"))
	if len(windows) != 2 {
		t.Errorf("pin files in %d windows, want 2: %v", len(windows), windows)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func pinEqual(a, b transforms.Pin) bool { return cmp.Equal(a, b) }

// TestReplayAfterRestart: a restarted job sees a window again only in part
// (the first job's window state is gone) and replays some records, yet the
// window's count is the posts both runs saw, each once, and a replayed bad
// record is one dead letter.
func TestReplayAfterRestart(t *testing.T) {
	dsn := testDSN(t)
	runs := [][]string{
		{`1 {"index": 1, "category": "art"}`, `2 {"index": 2, "category": "art"}`, `3 {"index": 5, "category": "diy"}`, `3 {"index": "x"}`},
		// The restart replays ind 2 and the bad record and goes on with 3.
		{`2 {"index": 2, "category": "art"}`, `3 {"index": "x"}`, `4 {"index": 3, "category": "art"}`},
	}
	for i, pins := range runs {
		p, s := beam.NewPipelineWithRoot()
		if err := Build(s, Options{Source: testSource(map[string][]string{transforms.TablePin: pins}), Sink: dsn, Window: time.Minute}); err != nil {
			t.Fatal(err)
		}
		if err := ptest.Run(p); err != nil {
			t.Fatalf("run %d: %v", i+1, err)
		}
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, "SELECT category, posts FROM "+postgres.CategoryCountsTable+" WHERE window_start = $1 ORDER BY category", base)
	if err != nil {
		t.Fatal(err)
	}
	got, err := pgx.CollectRows(rows, pgx.RowToMap)
	if err != nil {
		t.Fatal(err)
	}
	want := []map[string]any{{"category": "art", "posts": int64(3)}, {"category": "diy", "posts": int64(1)}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("counts of the window (-want +got):\n%s", diff)
	}
	var dead int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM "+postgres.StreamDeadLetterTable).Scan(&dead); err != nil || dead != 1 {
		t.Errorf("%d dead letters (%v), want the replayed bad record once", dead, err)
	}
}
