package sourcedb_test

import (
	"context"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	"github.com/pinpipe/pinpipe/ingest/generate"
	"github.com/pinpipe/pinpipe/ingest/sourcedb"
	"github.com/pinpipe/pinpipe/internal/testenv"
)

// tableRows reads a whole table, ordered by its key, as pgx decodes it.
func tableRows(t *testing.T, conn *pgx.Conn, tb sourcedb.Table) [][]any {
	t.Helper()
	rows, err := conn.Query(context.Background(), "SELECT * FROM "+pgx.Identifier{tb.Name}.Sanitize()+" ORDER BY "+pgx.Identifier{tb.Key}.Sanitize())
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) ([]any, error) { return r.Values() })
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// wantRows is what seeding posts posts from seed must leave in tb.
func wantRows(tb sourcedb.Table, seed uint64, posts int, first int64) [][]any {
	g := generate.New(seed, posts)
	out := make([][]any, posts)
	for i := range out {
		out[i] = tb.Values(g.Post(first + int64(i)))
	}
	return out
}

func checkContents(t *testing.T, conn *pgx.Conn, seed uint64, posts int, first int64) {
	t.Helper()
	for _, tb := range sourcedb.Tables {
		got := tableRows(t, conn, tb)
		if diff := cmp.Diff(wantRows(tb, seed, posts, first), got); diff != "" {
			t.Errorf("%s differs from the generator's rows (-want +got):\n%s", tb.Name, diff)
		}
	}
}

func TestSeedRowsAndSchema(t *testing.T) {
	dsn := testenv.PostgresDB(t, false)
	ctx := context.Background()
	st, err := sourcedb.Seed(ctx, dsn, sourcedb.Options{Posts: 400, Seed: 7, FirstInd: 1})
	if err != nil {
		t.Fatal(err)
	}
	for _, tb := range sourcedb.Tables {
		if st.Rows[tb.Name] != 400 {
			t.Errorf("Stats.Rows[%s] = %d, want 400", tb.Name, st.Rows[tb.Name])
		}
	}
	conn := testenv.PostgresConnect(t, dsn)
	checkContents(t, conn, 7, 400, 1)

	// The columns, as information_schema sees them, and the keys.
	wantTypes := map[string]string{
		"pinterest_data":   "index bigint, unique_id text, title text, description text, poster_name text, follower_count text, tag_list text, is_image_or_video text, image_src text, downloaded integer, save_location text, category text",
		"geolocation_data": "ind bigint, timestamp timestamp without time zone, latitude double precision, longitude double precision, country text",
		"user_data":        "ind bigint, first_name text, last_name text, age integer, date_joined timestamp without time zone",
	}
	for _, tb := range sourcedb.Tables {
		var cols, pk string
		err := conn.QueryRow(ctx, `SELECT string_agg(column_name || ' ' || data_type, ', ' ORDER BY ordinal_position)
			FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1`, tb.Name).Scan(&cols)
		if err != nil {
			t.Fatal(err)
		}
		if cols != wantTypes[tb.Name] {
			t.Errorf("%s columns:\n got %s\nwant %s", tb.Name, cols, wantTypes[tb.Name])
		}
		err = conn.QueryRow(ctx, `SELECT string_agg(k.column_name, ',')
			FROM information_schema.table_constraints c
			JOIN information_schema.key_column_usage k USING (constraint_schema, constraint_name)
			WHERE c.table_schema = current_schema() AND c.table_name = $1 AND c.constraint_type = 'PRIMARY KEY'`, tb.Name).Scan(&pk)
		if err != nil {
			t.Fatal(err)
		}
		if pk != tb.Key {
			t.Errorf("%s primary key = %q, want %q", tb.Name, pk, tb.Key)
		}
	}

	// Timestamps are stored as the source wrote them, whatever the
	// session's zone (the DSN sets one far from UTC).
	var text string
	if err := conn.QueryRow(ctx, `SELECT to_char("timestamp", 'YYYY-MM-DD HH24:MI:SS') FROM geolocation_data WHERE ind = $1`, int64(5)).Scan(&text); err != nil {
		t.Fatal(err)
	}
	if want := generate.New(7, 400).Post(5).Geo.Timestamp.Format(generate.SourceTime); text != want {
		t.Errorf("timestamp of ind 5 = %s, want %s", text, want)
	}
}

func TestReader(t *testing.T) {
	dsn := testenv.PostgresDB(t, false)
	ctx := context.Background()
	if _, err := sourcedb.Seed(ctx, dsn, sourcedb.Options{Posts: 50, Seed: 3, FirstInd: 100}); err != nil {
		t.Fatal(err)
	}
	conn := testenv.PostgresConnect(t, dsn)
	// Gaps: post 120 is gone; post 130 lost its geo row.
	for _, q := range []string{`DELETE FROM pinterest_data WHERE index BETWEEN 120 AND 125`, `DELETE FROM geolocation_data WHERE ind = 130`} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	r, err := sourcedb.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(ctx)

	lo, hi, err := r.KeyRange(ctx)
	if err != nil || lo != 100 || hi != 149 {
		t.Errorf("KeyRange = %d, %d, %v; want 100, 149", lo, hi, err)
	}
	keys, err := r.Keys(ctx)
	if err != nil || len(keys) != 44 || keys[0] != 100 || keys[19] != 119 || keys[20] != 126 || keys[43] != 149 {
		t.Errorf("Keys = %v, %v; want 100-119 and 126-149", keys, err)
	}

	g := generate.New(3, 50)
	rows, found, err := r.ReadPost(ctx, 101)
	if err != nil || !found {
		t.Fatalf("ReadPost(101): found %v, %v", found, err)
	}
	for i, tb := range sourcedb.Tables {
		if diff := cmp.Diff(tb.GeneratedRow(g.Post(101)), rows[i]); diff != "" {
			t.Errorf("ReadPost(101) %s (-want +got):\n%s", tb.Name, diff)
		}
	}
	if _, found, err := r.ReadPost(ctx, 122); found || err != nil {
		t.Errorf("ReadPost of a gap: found %v, err %v", found, err)
	}
	rows, found, err = r.ReadPost(ctx, 130)
	if err != nil || !found || rows[1] != nil || rows[2] == nil {
		t.Errorf("ReadPost(130) without a geo row: found %v, rows %v, err %v", found, rows, err)
	}

	// An empty table.
	if _, err := conn.Exec(ctx, `TRUNCATE pinterest_data`); err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.KeyRange(ctx); err != sourcedb.ErrEmpty {
		t.Errorf("KeyRange of an empty table: %v, want ErrEmpty", err)
	}
}

func TestSeedReplaces(t *testing.T) {
	dsn := testenv.PostgresDB(t, false)
	ctx := context.Background()
	conn := testenv.PostgresConnect(t, dsn)
	if _, err := sourcedb.Seed(ctx, dsn, sourcedb.Options{Posts: 300, Seed: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := sourcedb.Seed(ctx, dsn, sourcedb.Options{Posts: 300, Seed: 1}); err != nil {
		t.Fatalf("re-run: %v", err)
	}
	checkContents(t, conn, 1, 300, 0)
	// Fewer posts from another seed: nothing of the first run is left.
	if _, err := sourcedb.Seed(ctx, dsn, sourcedb.Options{Posts: 120, Seed: 2}); err != nil {
		t.Fatal(err)
	}
	checkContents(t, conn, 2, 120, 0)

	// Seeds at the same time queue behind each other; the database ends
	// up holding one of them whole.
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() { _, errs[i] = sourcedb.Seed(ctx, dsn, sourcedb.Options{Posts: 200, Seed: 5}) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("concurrent seed %d: %v", i, err)
		}
	}
	checkContents(t, conn, 5, 200, 0)
}

func TestSeedRefusesForeignTable(t *testing.T) {
	dsn := testenv.PostgresDB(t, false)
	ctx := context.Background()
	conn := testenv.PostgresConnect(t, dsn)
	if _, err := conn.Exec(ctx, `CREATE TABLE user_data (ind bigint PRIMARY KEY, name text); INSERT INTO user_data VALUES (1, 'keep me')`); err != nil {
		t.Fatal(err)
	}
	_, err := sourcedb.Seed(ctx, dsn, sourcedb.Options{Posts: 10, Seed: 1})
	if err == nil || !strings.Contains(err.Error(), "user_data exists with columns") {
		t.Fatalf("seeding over a foreign user_data: %v, want an error naming the table", err)
	}
	var n int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM user_data WHERE name = 'keep me'`).Scan(&n); err != nil || n != 1 {
		t.Errorf("the foreign table was changed: %d rows, %v", n, err)
	}
	// The failed seed rolled back: no other table was left behind.
	var tables int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_tables WHERE tablename IN ('pinterest_data', 'geolocation_data')`).Scan(&tables); err != nil || tables != 0 {
		t.Errorf("a failed seed left %d tables (%v)", tables, err)
	}
}

// TestSeedUnreachable needs no server: nothing listens, or something
// listens and never answers.
func TestSeedUnreachable(t *testing.T) {
	ctx := context.Background()
	if _, err := sourcedb.Seed(ctx, "", sourcedb.DefaultOptions()); err == nil || !strings.Contains(err.Error(), "no PostgreSQL DSN") {
		t.Errorf("empty DSN: %v", err)
	}
	if _, err := sourcedb.Seed(ctx, "postgres://u:secret@127.0.0.1:notaport/db", sourcedb.DefaultOptions()); err == nil ||
		!strings.Contains(err.Error(), "bad PostgreSQL DSN") || strings.Contains(err.Error(), "secret") {
		t.Errorf("bad DSN: %v (want a clear error without the password)", err)
	}

	// Connection refused: a port nobody listens on.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	_, err = sourcedb.Seed(ctx, "postgres://u:secret@127.0.0.1:"+strconv.Itoa(port)+"/db?sslmode=disable", sourcedb.DefaultOptions())
	if err == nil || !strings.Contains(err.Error(), "cannot reach PostgreSQL at 127.0.0.1:"+strconv.Itoa(port)) || strings.Contains(err.Error(), "secret") {
		t.Errorf("refused: %v (want 'cannot reach PostgreSQL at 127.0.0.1:%d', without the password)", err, port)
	}

	// A server that accepts and never answers: the connect timeout ends it.
	hole, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hole.Close()
	var conns []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := hole.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	defer func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	}()
	start := time.Now()
	_, err = sourcedb.Seed(ctx, "postgres://u@"+hole.Addr().String()+"/db?sslmode=disable&connect_timeout=1", sourcedb.DefaultOptions())
	if err == nil || !strings.Contains(err.Error(), "cannot reach PostgreSQL at 127.0.0.1") || !strings.Contains(err.Error(), "timeout") {
		t.Errorf("silent server: %v (want 'cannot reach PostgreSQL' and a timeout)", err)
	}
	t.Logf("silent server: failed after %s: %v", time.Since(start).Round(time.Millisecond), err)
}
