package postgres_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	beamlog "github.com/apache/beam/sdks/v2/go/pkg/beam/log"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"
	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/parquet-go/parquet-go"

	"github.com/pinpipe/pinpipe/ingest/generate"
	"github.com/pinpipe/pinpipe/internal/testenv"
	"github.com/pinpipe/pinpipe/io/postgres"
	"github.com/pinpipe/pinpipe/pipelines/batch"
	"github.com/pinpipe/pinpipe/transforms"
)

func TestMain(m *testing.M) {
	if err := flag.Set("runner", "direct"); err != nil {
		panic(err)
	}
	beamlog.LogLevel = "warn" // the direct runner logs its whole plan at info
	// Nothing may depend on the machine's time zone: run the pipeline in one
	// far from UTC (the insights' years are UTC years).
	time.Local = time.FixedZone("UTC+13", 13*3600)
	ptest.Main(m)
}

// sameInstant compares timestamps as the warehouse stores them: instants to
// the microsecond, whatever their zone.
var sameInstant = cmp.Comparer(func(a, b time.Time) bool {
	return a.Truncate(time.Microsecond).Equal(b.Truncate(time.Microsecond))
})

// rec is one raw record; nil values are JSON nulls.
type rec map[string]any

// edgeCases are hand-made raw records the generator does not make: null and
// empty countries and categories, ties for the top category and the top
// user, users without a name, ages at and outside the group bounds, follower
// counts with decimals, years outside 2018-2022 and at their edges, offsets
// that change the UTC year, sub-microsecond times, conflicting duplicates,
// awkward text and a negative ind.
func edgeCases() (pins, geos, users []rec) {
	post := func(ind any, category, followers any, country, ts any, first, last, age, joined any) {
		pins = append(pins, rec{"index": ind, "unique_id": fmt.Sprintf("edge-%v", ind), "title": "Edge case", "description": "An edge case",
			"poster_name": "Edge", "follower_count": followers, "tag_list": "a,b", "is_image_or_video": "image",
			"image_src": "https://i.pinimg.com/originals/ed/ge/case.jpg", "downloaded": 1, "save_location": "Local save in /data/edge",
			"category": category})
		geos = append(geos, rec{"ind": ind, "timestamp": ts, "latitude": 1.5, "longitude": -2.25, "country": country})
		users = append(users, rec{"ind": ind, "first_name": first, "last_name": last, "age": age, "date_joined": joined})
	}
	const ts, joined = "2019-05-05 10:00:00", "2016-02-02 02:02:02"
	// Zedland: beauty and vehicles tie at four posts; Ann Zed and Bob Zed
	// tie at 5M followers; a nameless user with more followers, posts without
	// a category and posts without a country do not count.
	post(900001, "art", "5M", "Zedland", ts, "Ann", "Zed", 30, joined)
	post(900002, "art", "5000000", "Zedland", ts, "Bob", "Zed", 40, joined)
	post(900003, "travel", "5000k", "Zedland", ts, "  Ann ", " Zed", 30, joined)
	post(900004, "travel", "1.25k", "Zedland", ts, "Cy", "Zed", 17, joined)
	post(900005, nil, "9M", "Zedland", ts, nil, "", 30, joined)
	post(900006, "", "9.5M", "Zedland", ts, "", nil, 33, joined)
	post(900007, "art", "9.5M", nil, ts, nil, nil, 25, joined) // the same distinct (null, 25-35, 9.5M) as 900006
	post(900008, "art", "7M", "", ts, "Dee", "Nocountry", 35, joined)
	// Åland Islands sorts after every ASCII name by code point.
	post(900010, "quotes", "2.5M", "Åland Islands", "2023-01-01T00:30:00+02:00", "Émile", "Zola", 51, "2020-01-01T01:00:00+03:00")
	post(900011, "quotes", "999", "Åland Islands", "2017-12-31 23:59:59", "émile", "zola", 50, "2014-12-31 23:59:59")
	post(900012, "vehicles", "0.5k", "Zedland", "2016-06-01 00:00:00", "Eve", "", 18, "2023-07-07 07:07:07")
	post(900013, "vehicles", "1.2345k", "Zedland", "2023-03-03 03:03:03", "", "Solo", 24, "2020-02-29T12:00:00.123456789Z")
	post(900014, "vehicles", "3.5B", "Yland", "2018-01-01 00:00:00", "Fay", "Old", 120, nil)
	post(900022, "vehicles", "3.5B", "Zedland", "2018-01-01 00:00:00", nil, nil, 120, nil) // nameless
	post(900015, "vehicles", "1.2", "Zedland", "not a timestamp", "Gus", "Young", 0, "yesterday")
	post(900016, "beauty", " 42 ", "Zedland", "2022-12-31T23:59:59Z", "Hal", "Minus", -3, joined)
	post(900017, "beauty", "1,234", "Zedland", "2018-06-06T06:06:06.5Z", "Ivy", "Age", "36", joined)
	post(900018, "beauty", "12 k", "Zedland", ts, "Jo", "Null", nil, joined)
	post("900019", "diy-and-crafts", "User Info Error", "Zedland", ts, "Kit", "Str", "24", joined)
	post(-7, "beauty", "3M", "Zedland", ts, "Neg", "Ative", 36, joined)
	// Conflicting duplicates: the pipeline keeps one of each.
	post(900016, "beauty", "43", "Zedland", "2022-12-31T23:59:59Z", "Hal", "Minus", -3, joined)
	post(900001, "art", "5M", "Zedland", ts, "Ann", "Zed", 31, joined)
	// Awkward text; a pin alone; a geo and a user without a pin; a geo
	// without coordinates.
	pins = append(pins,
		rec{"index": 900020, "title": "Quotes \"here\", a back\\slash,\na newline\tand a tab 🎨 é", "description": "No description available, then more",
			"poster_name": "User Info Error", "follower_count": "77", "tag_list": "N,o, ,T,a,g,s, ,A,v,a,i,l,a,b,l,e", "image_src": "Image src error.",
			"save_location": "Local save in ", "category": "art"})
	geos = append(geos, rec{"ind": 900021, "timestamp": ts, "latitude": "-5.34", "longitude": nil, "country": "Zedland"})
	users = append(users, rec{"ind": 900021.0, "first_name": "Lone", "last_name": "User", "age": 44, "date_joined": joined})
	return pins, geos, users
}

// writeEdgeCases adds the edge cases to the input as extra S3-sink objects.
func writeEdgeCases(t *testing.T, input string) {
	t.Helper()
	pins, geos, users := edgeCases()
	for table, recs := range map[string][]rec{"pin": pins, "geo": geos, "user": users} {
		topic := "pinpipe." + table
		dir := filepath.Join(input, "topics", topic, "partition=0")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		for _, r := range recs {
			b, err := json.Marshal(r)
			if err != nil {
				t.Fatal(err)
			}
			buf.Write(append(b, '\n'))
		}
		if err := os.WriteFile(filepath.Join(dir, topic+"+0+0900000000.json"), buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// tables are the rows of the three clean tables, sorted by ind.
type tables struct {
	Pins  []transforms.Pin
	Geos  []transforms.Geo
	Users []transforms.User
}

func (tb tables) counts() [3]int { return [3]int{len(tb.Pins), len(tb.Geos), len(tb.Users)} }

// readFiles reads the clean tables the job wrote, without the loader's code.
func readFiles(t *testing.T, tablesDir, format string) tables {
	t.Helper()
	return tables{
		Pins:  readTableFiles[transforms.Pin](t, tablesDir, transforms.TablePin, format, func(p *transforms.Pin) int64 { return p.Ind }),
		Geos:  readTableFiles[transforms.Geo](t, tablesDir, transforms.TableGeo, format, func(g *transforms.Geo) int64 { return g.Ind }),
		Users: readTableFiles[transforms.User](t, tablesDir, transforms.TableUser, format, func(u *transforms.User) int64 { return u.Ind }),
	}
}

func readTableFiles[R any](t *testing.T, tablesDir, table, format string, ind func(*R) int64) []R {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(tablesDir, table, "part-*."+format))
	if err != nil || len(names) == 0 {
		t.Fatalf("no %s files for %s under %s (%v)", format, table, tablesDir, err)
	}
	var rows []R
	for _, n := range names {
		if format == postgres.FormatParquet {
			rs, err := parquet.ReadFile[R](n)
			if err != nil {
				t.Fatalf("reading %s: %v", n, err)
			}
			rows = append(rows, rs...)
			continue
		}
		f, err := os.Open(n)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var r R
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				t.Fatalf("reading %s: %v", n, err)
			}
			rows = append(rows, r)
		}
		f.Close()
		if err := sc.Err(); err != nil {
			t.Fatal(err)
		}
	}
	slices.SortFunc(rows, func(a, b R) int { return cmpInt(ind(&a), ind(&b)) })
	return rows
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// readWarehouse reads the three tables back, sorted by ind, and checks their
// columns and types.
func readWarehouse(t *testing.T, conn *pgx.Conn) tables {
	t.Helper()
	ctx := context.Background()
	wantColumns := map[string][]string{
		postgres.PinTable: {"ind bigint", "unique_id text", "title text", "description text", "follower_count bigint", "poster_name text",
			"tag_list text", "is_image_or_video text", "image_src text", "save_location text", "category text"},
		postgres.GeoTable:  {"ind bigint", "country text", "coordinates double precision[]", "timestamp timestamp with time zone"},
		postgres.UserTable: {"ind bigint", "user_name text", "age bigint", "date_joined timestamp with time zone"},
	}
	for table, want := range wantColumns {
		rows, _ := conn.Query(ctx, `SELECT a.attname || ' ' || format_type(a.atttypid, a.atttypmod) FROM pg_attribute a
			WHERE a.attrelid = $1::text::regclass AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`, table)
		got, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("columns of %s (-want +got):\n%s", table, diff)
		}
		var pk string
		if err := conn.QueryRow(ctx, `SELECT string_agg(a.attname, ',') FROM pg_index i
			JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
			WHERE i.indrelid = $1::text::regclass AND i.indisprimary`, table).Scan(&pk); err != nil || pk != "ind" {
			t.Errorf("primary key of %s: %q, %v; want ind", table, pk, err)
		}
	}
	var tb tables
	var err error
	rows, _ := conn.Query(ctx, "SELECT * FROM pin_clean ORDER BY ind")
	if tb.Pins, err = pgx.CollectRows(rows, pgx.RowToStructByPos[transforms.Pin]); err != nil {
		t.Fatal(err)
	}
	rows, _ = conn.Query(ctx, "SELECT * FROM geo_clean ORDER BY ind")
	if tb.Geos, err = pgx.CollectRows(rows, pgx.RowToStructByPos[transforms.Geo]); err != nil {
		t.Fatal(err)
	}
	rows, _ = conn.Query(ctx, "SELECT * FROM user_clean ORDER BY ind")
	if tb.Users, err = pgx.CollectRows(rows, pgx.RowToStructByPos[transforms.User]); err != nil {
		t.Fatal(err)
	}
	return tb
}

// query is one named query of sql/insights.sql.
type query struct{ name, sql string }

func readInsightQueries(t *testing.T) []query {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "sql", "insights.sql"))
	if err != nil {
		t.Fatal(err)
	}
	var qs []query
	for _, line := range strings.SplitAfter(string(b), "\n") {
		if name, ok := strings.CutPrefix(strings.TrimSpace(line), "-- name:"); ok {
			qs = append(qs, query{name: strings.TrimSpace(name)})
			continue
		}
		if len(qs) > 0 {
			qs[len(qs)-1].sql += line
		}
	}
	return qs
}

// runInsight runs a query and decodes its rows as the insight's JSON would
// be, checking that it returns exactly the insight's fields in their order.
func runInsight(t *testing.T, conn *pgx.Conn, q query, rowsType reflect.Type) any {
	t.Helper()
	rows, err := conn.Query(context.Background(), q.sql)
	if err != nil {
		t.Fatalf("%s: %v", q.name, err)
	}
	var names []string
	for _, fd := range rows.FieldDescriptions() {
		names = append(names, fd.Name)
	}
	var want []string
	for i := range rowsType.Elem().NumField() {
		want = append(want, strings.Split(rowsType.Elem().Field(i).Tag.Get("json"), ",")[0])
	}
	if !slices.Equal(names, want) {
		t.Errorf("%s returns the columns %v, want %v", q.name, names, want)
	}
	got, err := pgx.CollectRows(rows, pgx.RowToMap)
	if err != nil {
		t.Fatalf("%s: %v", q.name, err)
	}
	b, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	return decodeStrict(t, q.name, b, rowsType)
}

func decodeStrict(t *testing.T, what string, b []byte, rowsType reflect.Type) any {
	t.Helper()
	v := reflect.New(rowsType)
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v.Interface()); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if v.Elem().IsNil() {
		v.Elem().Set(reflect.MakeSlice(rowsType, 0, 0))
	}
	return v.Elem().Interface()
}

func TestBatchWarehouseAndInsightsSQL(t *testing.T) {
	base := testenv.PostgresDB(t, false) // skips without a server
	ctx := context.Background()
	input := t.TempDir()
	o := generate.Defaults()
	o.Posts, o.Out, o.MalformedRate, o.FlushSize = 3000, input, 0.01, 700
	if _, err := generate.Write(ctx, o); err != nil {
		t.Fatal(err)
	}
	writeEdgeCases(t, input)
	queries := readInsightQueries(t)
	named := (&transforms.Insights{}).Named()
	var qnames, inames []string
	for _, q := range queries {
		qnames = append(qnames, q.name)
	}
	for _, n := range named {
		inames = append(inames, n.Name)
	}
	if !slices.Equal(qnames, inames) {
		t.Fatalf("sql/insights.sql names %v, want %v", qnames, inames)
	}

	loaded := map[string]tables{}
	for _, format := range []string{postgres.FormatParquet, postgres.FormatJSONL} {
		t.Run(format, func(t *testing.T) {
			dsn := base
			if format != postgres.FormatParquet {
				dsn = testenv.PostgresDB(t, true)
			}
			output := filepath.Join(t.TempDir(), "out")
			bo := batch.Options{Input: input, TopicPrefix: "pinpipe", Output: output, Format: format, Shards: 4, Warehouse: dsn}
			sum, err := batch.Run(ctx, bo)
			if err != nil {
				t.Fatal(err)
			}
			tablesDir := filepath.Join(output, batch.TablesDir)
			files := readFiles(t, tablesDir, format)
			conn := testenv.PostgresConnect(t, dsn)
			got := readWarehouse(t, conn)
			if diff := cmp.Diff(files, got, sameInstant); diff != "" {
				t.Fatalf("the warehouse differs from the %s files (-files +warehouse):\n%s", format, diff)
			}
			for i, table := range transforms.Tables {
				if n := int64(got.counts()[i]); n != sum[table].Rows || n == 0 {
					t.Errorf("%s: %d rows in the warehouse, the summary says %d", table, n, sum[table].Rows)
				}
			}
			loaded[format] = got

			// A re-run loads again and replaces: the same rows, never twice.
			if _, err := batch.Run(ctx, bo); err != nil {
				t.Fatal(err)
			}
			again := readWarehouse(t, conn)
			if again.counts() != got.counts() {
				t.Errorf("after a re-run: %v rows, want %v", again.counts(), got.counts())
			}
			if diff := cmp.Diff(got, again, sameInstant); diff != "" {
				t.Errorf("a re-run changed the warehouse (-first +again):\n%s", diff)
			}

			for i, q := range queries {
				rowsType := reflect.TypeOf(named[i].Rows)
				b, err := os.ReadFile(filepath.Join(output, batch.InsightsDir, q.name+".json"))
				if err != nil {
					t.Fatal(err)
				}
				want := decodeStrict(t, q.name+".json", b, rowsType)
				gotRows := runInsight(t, conn, q, rowsType)
				if reflect.ValueOf(want).Len() == 0 {
					t.Errorf("%s: the job's answer is empty", q.name)
				}
				if diff := cmp.Diff(want, gotRows); diff != "" {
					t.Errorf("%s: SQL differs from the Beam job (-job +sql):\n%s", q.name, diff)
				}
			}
			checkEdgeCases(t, output)
		})
	}
	if p, j := loaded[postgres.FormatParquet], loaded[postgres.FormatJSONL]; p.Pins != nil && j.Pins != nil {
		if diff := cmp.Diff(p, j, sameInstant); diff != "" {
			t.Errorf("the parquet and jsonl loads differ (-parquet +jsonl):\n%s", diff)
		}
	}
}

// checkEdgeCases holds a few answers to the contract directly, so that the
// SQL and the Go code cannot agree on a wrong answer for the edge cases.
func checkEdgeCases(t *testing.T, output string) {
	t.Helper()
	read := func(name string, v any) {
		b, err := os.ReadFile(filepath.Join(output, batch.InsightsDir, name+".json"))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatal(err)
		}
	}
	var cats []transforms.CountryCategory
	read("top_category_by_country", &cats)
	var zed []transforms.CountryCategory
	for _, c := range cats {
		if c.Country == "Zedland" {
			zed = append(zed, c)
		}
		if c.Country == "" {
			t.Errorf("top_category_by_country has a row without a country: %+v", c)
		}
	}
	// beauty: 900016-900018, -7; vehicles: 900012, 900013, 900015, 900022;
	// art: 900001, 900002; travel: 900003, 900004.
	wantZed := []transforms.CountryCategory{
		{Country: "Zedland", Category: "beauty", CategoryCount: 4}, {Country: "Zedland", Category: "vehicles", CategoryCount: 4}}
	if diff := cmp.Diff(wantZed, zed); diff != "" {
		t.Errorf("Zedland's top category (-want +got):\n%s", diff)
	}
	var users []transforms.CountryUser
	read("top_user_by_country", &users)
	byCountry := map[string][]transforms.CountryUser{}
	for _, u := range users {
		byCountry[u.Country] = append(byCountry[u.Country], u)
	}
	// In Zedland the nameless users' 9M and 3.5B do not count, nor does the
	// 7M posted without a country.
	for country, want := range map[string][]transforms.CountryUser{
		"Zedland":       {{Country: "Zedland", UserName: "Ann Zed", FollowerCount: 5_000_000}, {Country: "Zedland", UserName: "Bob Zed", FollowerCount: 5_000_000}},
		"Yland":         {{Country: "Yland", UserName: "Fay Old", FollowerCount: 3_500_000_000}},
		"Åland Islands": {{Country: "Åland Islands", UserName: "Émile Zola", FollowerCount: 2_500_000}},
	} {
		if diff := cmp.Diff(want, byCountry[country]); diff != "" {
			t.Errorf("%s's top users (-want +got):\n%s", country, diff)
		}
	}
	if len(users) > 0 && users[len(users)-1].Country != "Åland Islands" {
		t.Errorf("top_user_by_country is not sorted by code point: it ends with %q", users[len(users)-1].Country)
	}
}

func TestLoadTablesReplacesAtomically(t *testing.T) {
	dsn := testenv.PostgresDB(t, false)
	ctx := context.Background()
	conn := testenv.PostgresConnect(t, dsn)
	write := func(tables map[string]string) string {
		dir := t.TempDir()
		for table, lines := range tables {
			if err := os.MkdirAll(filepath.Join(dir, table), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, table, "part-00000.jsonl"), []byte(lines), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	count := func() [3]int {
		var n [3]int
		for i, table := range []string{postgres.PinTable, postgres.GeoTable, postgres.UserTable} {
			if err := conn.QueryRow(ctx, "SELECT count(*) FROM "+pgx.Identifier{table}.Sanitize()).Scan(&n[i]); err != nil {
				t.Fatal(err)
			}
		}
		return n
	}

	first := write(map[string]string{
		"pin":  `{"ind":1,"title":"a"}` + "\n" + `{"ind":2,"follower_count":5}` + "\n" + `{"ind":3}` + "\n",
		"geo":  `{"ind":1,"country":"X","coordinates":[1.5,-2],"timestamp":"2020-08-28T03:52:47Z"}` + "\n" + `{"ind":2}` + "\n",
		"user": `{"ind":1,"user_name":"A B","age":30,"date_joined":"2016-01-01T00:00:00Z"}` + "\n",
	})
	if err := postgres.LoadTables(ctx, dsn, first, postgres.FormatJSONL); err != nil {
		t.Fatal(err)
	}
	if got := count(); got != [3]int{3, 2, 1} {
		t.Fatalf("after the first load: %v rows, want [3 2 1]", got)
	}
	var coords []float64
	var ts time.Time
	if err := conn.QueryRow(ctx, `SELECT coordinates, "timestamp" FROM geo_clean WHERE ind = $1`, 1).Scan(&coords, &ts); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(coords, []float64{1.5, -2}) || !ts.Equal(time.Date(2020, 8, 28, 3, 52, 47, 0, time.UTC)) {
		t.Errorf("geo row 1: %v %v", coords, ts)
	}

	second := write(map[string]string{"pin": `{"ind":9}` + "\n"})
	if err := postgres.LoadTables(ctx, dsn, second, postgres.FormatJSONL); err != nil {
		t.Fatal(err)
	}
	if got := count(); got != [3]int{1, 0, 0} {
		t.Fatalf("a load replaces what was there: %v rows, want [1 0 0]", got)
	}

	// A load that fails leaves the previous contents.
	for name, tc := range map[string]struct {
		dir, format, wantErr string
	}{
		"nul": {write(map[string]string{"pin": `{"ind":4}` + "\n" + `{"ind":5,"title":"a\u0000b"}` + "\n"}), postgres.FormatJSONL,
			"ind 5: column title holds a NUL character"},
		"bad json":       {write(map[string]string{"geo": `{"ind":4,"country":"X"}` + "\n" + `{"ind":5,"extra":1}` + "\n"}), postgres.FormatJSONL, "row 2"},
		"duplicate ind":  {write(map[string]string{"user": `{"ind":4}` + "\n" + `{"ind":4}` + "\n"}), postgres.FormatJSONL, "user_clean"},
		"broken parquet": {writeRaw(t, "pin", "part-00000.parquet", "not parquet"), postgres.FormatParquet, "part-00000.parquet"},
		"wrong schema":   {writeParquet(t, "geo", []transforms.Pin{{Ind: 1}}), postgres.FormatParquet, "part-00000.parquet"},
	} {
		err := postgres.LoadTables(ctx, dsn, tc.dir, tc.format)
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("%s: got error %v, want one containing %q", name, err, tc.wantErr)
		}
		if got := count(); got != [3]int{1, 0, 0} {
			t.Errorf("%s: a failed load changed the tables: %v rows, want [1 0 0]", name, got)
		}
	}

	// An existing table of another shape is an error, never altered.
	if _, err := conn.Exec(ctx, "DROP TABLE user_clean; CREATE TABLE user_clean (ind bigint PRIMARY KEY, name text)"); err != nil {
		t.Fatal(err)
	}
	err := postgres.LoadTables(ctx, dsn, first, postgres.FormatJSONL)
	if err == nil || !strings.Contains(err.Error(), "user_clean exists with columns") {
		t.Errorf("loading into a table of another shape: %v", err)
	}
}

func writeRaw(t *testing.T, table, name, content string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, table), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, table, name), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func writeParquet[R any](t *testing.T, table string, rows []R) string {
	t.Helper()
	var buf bytes.Buffer
	w := parquet.NewGenericWriter[R](&buf)
	if _, err := w.Write(rows); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return writeRaw(t, table, "part-00000.parquet", buf.String())
}

func TestLoadTablesErrors(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	// Nothing listens on port 1; the password must not show in the error.
	err := postgres.LoadTables(ctx, "postgres://pinpipe:s3cret@127.0.0.1:1/warehouse?sslmode=disable&connect_timeout=5", dir, postgres.FormatJSONL)
	if err == nil || !strings.Contains(err.Error(), "cannot reach PostgreSQL at 127.0.0.1:1") || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("unreachable server: %v", err)
	}
	if err := postgres.LoadTables(ctx, "", dir, postgres.FormatJSONL); err == nil || !strings.Contains(err.Error(), "no PostgreSQL DSN") {
		t.Errorf("no DSN: %v", err)
	}
	if err := postgres.LoadTables(ctx, "postgres://x@127.0.0.1:1/db", dir, "csv"); err == nil || !strings.Contains(err.Error(), "format") {
		t.Errorf("unknown format: %v", err)
	}
	if err := postgres.LoadTables(ctx, "postgres://pinpipe:s3cret@127.0.0.1:notaport/db", dir, postgres.FormatJSONL); err == nil ||
		!strings.Contains(err.Error(), "bad PostgreSQL DSN") || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("bad DSN: %v", err)
	}
	// batch.Run checks the warehouse before running the pipeline.
	_, err = batch.Run(ctx, batch.Options{Input: dir, TopicPrefix: "pinpipe", Output: filepath.Join(dir, "out"),
		Warehouse: "postgres://pinpipe@127.0.0.1:1/warehouse?sslmode=disable"})
	if err == nil || !strings.Contains(err.Error(), "cannot reach PostgreSQL") {
		t.Errorf("batch with an unreachable warehouse: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "out", batch.SummaryFile)); !os.IsNotExist(err) {
		t.Errorf("the pipeline ran despite the unreachable warehouse (%v)", err)
	}
}
