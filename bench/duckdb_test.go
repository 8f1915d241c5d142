package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/pinpipe/pinpipe/ingest/generate"
	"github.com/pinpipe/pinpipe/transforms"
)

// edgeLines are hand-written lines per table on the edges of the contract's
// reject rules, besides the generator's malformed lines. KEY stands for the
// table's key.
var edgeLines = []string{
	`{"KEY": "7528"}`,    // a numeric string: an integer
	`{"KEY": 7529.0}`,    // integers
	`{"KEY": 7.53e3}`,    //
	`{"KEY": " 7531 "}`,  // spaces around a numeric string
	`{"KEY": "7.532e3"}`, //
	`{"KEY": 9223372036854775807}`,
	`{"KEY": -0}`,
	`{"KEY": 7528.5}`,   // not integers
	`{"KEY": "abc"}`,    //
	`{"KEY": true}`,     //
	`{"KEY": "007"}`,    // not a JSON number
	`{"KEY": "+5"}`,     //
	`{"KEY": ""}`,       //
	`{"KEY": [1]}`,      //
	`{"KEY": {"a": 1}}`, //
	`{"KEY": 1e400}`,    // out of range
	`{"KEY": 9223372036854775808}`,
	`{"KEY": 18446744073709551616}`,
	`{"KEY": null}`,            // null key
	`{"other": 1}`,             // missing key
	`{}`,                       //
	`[{"KEY": 1}]`,             // not objects
	`"a string"`,               //
	`42`,                       //
	`null`,                     //
	`{"KEY": 1`,                // invalid JSON
	`{"KEY": 1} x`,             //
	"{\"KEY\": 1}\x01",         // a raw control character
	"{\"KEY\": 2}\x01\x01tail", //
	"\x02",                     //
	`not json`,                 //
	`  `,                       // blank lines: not records
	"",                         //
	"\t\r",                     //
	"\v\f ",                    //
	"{\"KEY\": 7540}\r",        // a CRLF line ending
	`  {"KEY": 7541, "title": "é \u00e9 \"q\""}  `,
}

// writeTinyInput generates a few hundred posts with malformed lines and
// duplicates into dir, plus a file of edgeLines per table.
func writeTinyInput(t *testing.T, dir string) {
	t.Helper()
	o := generate.Defaults()
	// From ind 1000, so that the edge lines' keys (0, 7528...) are not
	// those of generated records: copies of one ind that differ are kept
	// by different rules in DuckDB and in transforms.
	o.Posts, o.Seed, o.Out, o.FlushSize, o.FirstInd = 400, 3, dir, 150, 1000
	o.DuplicateRate, o.MalformedRate = 0.1, 0.05
	st, err := generate.Write(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if st.Malformed["pin"] == 0 || st.Duplicates == 0 {
		t.Fatalf("the generator wrote no malformed lines or duplicates: %+v", st)
	}
	// And gzipped objects in other partitions.
	o.Posts, o.FirstInd, o.FirstPartition, o.Gzip = 150, 5000, 5, true
	if _, err := generate.Write(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	if gz, _ := filepath.Glob(filepath.Join(dir, "topics", "pinpipe.geo", "partition=*", "*.json.gz")); len(gz) == 0 {
		t.Fatal("no gzipped input")
	}
	for _, table := range transforms.Tables {
		key := "ind"
		if table == transforms.TablePin {
			key = "index"
		}
		var b strings.Builder
		for _, l := range edgeLines {
			b.WriteString(strings.ReplaceAll(l, "KEY", key) + "\n")
		}
		d := filepath.Join(dir, "topics", "pinpipe."+table, "partition=9")
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "pinpipe."+table+"+9+0.json"), []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// transformsCounts counts every table's lines as the pipelines do:
// transforms.Clean*Record on each non-blank line.
func transformsCounts(t *testing.T, dir string) map[string]tableCounts {
	t.Helper()
	out := map[string]tableCounts{}
	for _, table := range transforms.Tables {
		c := tableCounts{Rows: unknown, RejectedBy: map[string]int64{}}
		names, err := inputFiles(dir, table)
		if err != nil {
			t.Fatal(err)
		}
		inds := map[int64]bool{}
		for _, n := range names {
			err := eachLine(n, func(line []byte) {
				c.Read++
				var ind int64
				var err error
				switch table {
				case transforms.TablePin:
					var r transforms.Pin
					r, _, err = transforms.CleanPinRecord(line)
					ind = r.Ind
				case transforms.TableGeo:
					var r transforms.Geo
					r, _, err = transforms.CleanGeoRecord(line)
					ind = r.Ind
				default:
					var r transforms.User
					r, _, err = transforms.CleanUserRecord(line)
					ind = r.Ind
				}
				if err != nil {
					c.Rejected++
					c.RejectedBy[err.(*transforms.RejectError).Reason]++
					return
				}
				c.Clean++
				inds[ind] = true
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		c.Rows = int64(len(inds))
		out[table] = c
	}
	return out
}

func TestDuckDBRejects(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in")
	writeTinyInput(t, in)
	want := transformsCounts(t, in)
	for _, table := range transforms.Tables {
		if len(want[table].RejectedBy) < 5 {
			t.Fatalf("%s: the input should hold every reject reason: %v", table, want[table].RejectedBy)
		}
	}

	ctx := context.Background()
	clean, err := duckClean(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	full, err := duckFull(ctx, in, filepath.Join(dir, "duck"))
	if err != nil {
		t.Fatal(err)
	}
	for _, table := range transforms.Tables {
		w := want[table]
		for name, got := range map[string]tableCounts{"duckdb-clean": clean.Tables[table], "duckdb-full": full.Tables[table]} {
			if got.Read != w.Read || got.Clean != w.Clean || got.rejected() != w.Rejected || !maps.Equal(got.RejectedBy, w.RejectedBy) {
				t.Errorf("%s %s: read %d, clean %d, rejected %d %v; transforms: read %d, clean %d, rejected %d %v",
					name, table, got.Read, got.Clean, got.rejected(), got.RejectedBy, w.Read, w.Clean, w.Rejected, w.RejectedBy)
			}
		}
		if got := full.Tables[table].Rows; got != w.Rows {
			t.Errorf("duckdb-full %s: %d rows after dedup, want %d (distinct inds)", table, got, w.Rows)
		}
	}

	// The dead letters: one per reject, with the table, reason and line.
	f, err := os.Open(filepath.Join(dir, "duck", "deadletter", "deadletter.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dead := map[string]map[string]int64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var d transforms.DeadLetter
		if err := json.Unmarshal(sc.Bytes(), &d); err != nil {
			t.Fatalf("%s: %v", sc.Text(), err)
		}
		if d.Payload == "" {
			t.Errorf("dead letter without payload: %s", sc.Text())
		}
		if dead[d.Table] == nil {
			dead[d.Table] = map[string]int64{}
		}
		dead[d.Table][d.Reason]++
	}
	for _, table := range transforms.Tables {
		if !maps.Equal(dead[table], want[table].RejectedBy) {
			t.Errorf("%s: dead letters by reason %v, want %v", table, dead[table], want[table].RejectedBy)
		}
	}

	// The plain Go program on the same input: the same tables and insights.
	goRes, err := goFull(in, filepath.Join(dir, "go"))
	if err != nil {
		t.Fatal(err)
	}
	for _, table := range transforms.Tables {
		g, d := goRes.Tables[table], full.Tables[table]
		if g.Clean != d.Clean || g.Rows != d.Rows || g.rejected() != d.rejected() {
			t.Errorf("%s: go-full clean %d rows %d rejected %d; duckdb-full clean %d rows %d rejected %d",
				table, g.Clean, g.Rows, g.rejected(), d.Clean, d.Rows, d.rejected())
		}
	}
	goIns, duckIns := insightFiles(filepath.Join(dir, "go")), insightFiles(filepath.Join(dir, "duck"))
	for _, n := range insightNames() {
		if d := compareInsight(goIns[n], duckIns[n]); d != "" {
			t.Errorf("insight %s: go-full vs duckdb-full: %s", n, d)
		}
	}
}

// TestDuckDBDedupRule: of the copies of one ind that differ, DuckDB keeps
// the smallest row compared column by column, null after any value.
func TestDuckDBDedupRule(t *testing.T) {
	ctx := context.Background()
	db, conn, err := duckOpen(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `CREATE TABLE pin_clean AS SELECT * FROM (VALUES
		(NULL, NULL, 1, 'b', 10), (NULL, NULL, 1, 'a', 20), (NULL, NULL, 1, 'a', 15),
		(NULL, NULL, 2, NULL, 5), (NULL, NULL, 2, 'z', 7),
		('missing key', '{}', NULL, 'a', 1)) t(reject, payload, ind, title, follower_count)`); err != nil {
		t.Fatal(err)
	}
	rows, err := conn.QueryContext(ctx, `SELECT ind, title, follower_count FROM (`+duckDedupSQL("pin")+`) ORDER BY ind`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var ind, n int64
		var title string
		if err := rows.Scan(&ind, &title, &n); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%d %s %d", ind, title, n))
	}
	if want := []string{"1 a 15", "2 z 7"}; !slices.Equal(got, want) {
		t.Errorf("kept %q, want %q", got, want)
	}
}
