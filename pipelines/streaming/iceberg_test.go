package streaming

import (
	"context"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/iceberg-go/table"

	"github.com/pinpipe/pinpipe/internal/icebergtest"
	"github.com/pinpipe/pinpipe/internal/testenv"
	"github.com/pinpipe/pinpipe/io/icebergio"
	"github.com/pinpipe/pinpipe/io/parquetio"
	"github.com/pinpipe/pinpipe/transforms"
)

// TestIcebergRestartAfterKill kills `pinpipe stream --table-format=iceberg` with
// SIGKILL in mid-stream (windows open, earlier panes committed to the
// tables) and starts it again from its durable positions: each window's
// rows are in its table once, read with iceberg-go's scan and file by file,
// and every snapshot's summary names the window and the spans it covers.
func TestIcebergRestartAfterKill(t *testing.T) {
	testRestart(t, restartCase{window: 2 * time.Second, rowsAtStop: 150, iceberg: true,
		stop: func(t *testing.T, p *testenv.Proc) { p.Kill() }})
}

// TestIcebergCompactAfterKill is TestIcebergRestartAfterKill with `pinpipe
// tables rewrite-files` run between the kill and the restart: the killed
// job's settled span files are merged (its positions in PostgreSQL say
// which), and the restart still commits each window's rows once.
func TestIcebergCompactAfterKill(t *testing.T) {
	testRestart(t, restartCase{window: 2 * time.Second, rowsAtStop: 400, iceberg: true, compact: true,
		stop: func(t *testing.T, p *testenv.Proc) { p.Kill() }})
}

// checkIceberg checks the streaming job's Iceberg tables in warehouse
// against the records of the topics: with iceberg-go's scan, each clean
// row once; file by file (each data file is one window's), each clean row
// once in the window of its record's timestamp; and the snapshots'
// summaries name the job's windows and spans. With compacted, files merged
// by rewrite-files (of several windows) are read too, their rows counted
// apart from the windows'; and compaction snapshots name no spans.
func checkIceberg(t *testing.T, warehouse, prefix string, window time.Duration, posts int, compacted bool, records func(table string) []sourceRecord) {
	t.Helper()
	ctx := context.Background()
	for _, name := range transforms.Tables {
		s := transforms.SchemaOf(name)
		tbl, err := loadStreamTable(t, warehouse, prefix, name)
		if err != nil {
			t.Fatalf("loading %s: %v", name, err)
		}
		want := wantWindowLines(name, window, records)

		// iceberg-go's scan: each clean row's ind as often as the topic
		// has its clean record.
		wantInds := map[int64]int{}
		parser := transforms.NewJSONRowParser(&s)
		for k, n := range want {
			_, row, _ := strings.Cut(k, " ")
			ind, _, err := parser.Parse([]byte(row))
			if err != nil {
				t.Fatal(err)
			}
			wantInds[ind] += n
		}
		gotInds := map[int64]int{}
		for _, ind := range icebergtest.Inds(t, tbl) {
			gotInds[ind]++
		}
		wrong := 0
		for ind, n := range gotInds {
			if wantInds[ind] != n {
				wrong++
			}
		}
		for ind := range wantInds {
			if gotInds[ind] == 0 {
				wrong++
			}
		}
		if wrong > 0 || len(wantInds) < posts/2 {
			t.Errorf("%s scanned: %d inds of %d wrong (missing or not once)", name, wrong, len(wantInds))
		}

		// File by file: each data file holds one window's rows.
		tasks, err := tbl.Scan().PlanFiles(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]int{}
		merged := map[string]int{} // rows of the compacted files, without their window
		for _, task := range tasks {
			path := task.File.FilePath()
			i := strings.Index(path, "/window=")
			inMerged := compacted && strings.Contains(path, "/data/compacted/")
			if i < 0 && !inMerged {
				t.Fatalf("%s: a data file outside a window's directory: %s", name, path)
			}
			var win string
			if !inMerged {
				win, _, _ = strings.Cut(path[i+1:], "/")
			}
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			st, _ := f.Stat()
			r, err := parquetio.NewReader(f, st.Size(), s)
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			for r.Next() {
				js, err := s.AppendJSON(nil, r.Row())
				if err != nil {
					t.Fatal(err)
				}
				if inMerged {
					merged[string(js)]++
				} else {
					got[win+" "+string(js)]++
				}
			}
			if err := r.Err(); err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			f.Close()
		}
		if len(merged) > 0 {
			// Each merged row stands for a wanted line of its window that
			// no span file has.
			for k, n := range want {
				win, row, _ := strings.Cut(k, " ")
				if m := min(merged[row], n-got[k]); m > 0 {
					got[win+" "+row] += m
					merged[row] -= m
				}
			}
			for row, n := range merged {
				if n != 0 {
					t.Errorf("%s: a merged row %d times too many: %s", name, n, row)
				}
			}
		} else if compacted && name == transforms.TablePin {
			t.Errorf("%s: no merged file read", name)
		}
		compareLines(t, name+" Iceberg table", len(tasks), posts, want, got)

		committed, err := icebergio.CommittedSpans(tbl)
		if err != nil {
			t.Fatal(err)
		}
		snaps := slices.DeleteFunc(slices.Clone(tbl.Metadata().Snapshots()), func(s table.Snapshot) bool {
			return s.Summary != nil && s.Summary.Properties[icebergio.SummaryCompaction] != ""
		})
		if len(committed) != len(snaps) || len(committed) == 0 {
			t.Errorf("%s: %d of %d snapshots name their window and spans", name, len(committed), len(snaps))
		}
		for _, c := range committed {
			startStr, endStr, _ := strings.Cut(c.Window, "/")
			start, err1 := time.Parse(time.RFC3339, startStr)
			end, err2 := time.Parse(time.RFC3339, endStr)
			if err1 != nil || err2 != nil || end.Sub(start) != window || c.Job == "" || len(c.Spans) == 0 {
				t.Errorf("%s: snapshot %d names job %q, window %q, %d spans", name, c.SnapshotID, c.Job, c.Window, len(c.Spans))
			}
		}
		t.Logf("%s: %d rows in %d files, %d snapshots", name, len(want), len(tasks), len(snaps))
	}
}

// icebergSnapshots is the number of snapshots of one of the streaming
// job's tables, 0 when there is no such table yet.
func icebergSnapshots(t *testing.T, warehouse, prefix, name string) int {
	t.Helper()
	tbl, err := loadStreamTable(t, warehouse, prefix, name)
	if err != nil {
		return 0
	}
	return len(tbl.Metadata().Snapshots())
}

// loadStreamTable loads one of the streaming job's tables (in its
// namespace, icebergio.StreamNamespace) from warehouse's catalog; the error
// is the load's: the table may not exist yet.
func loadStreamTable(t *testing.T, warehouse, prefix, name string) (*table.Table, error) {
	t.Helper()
	ctx := context.Background()
	o := icebergio.Options{Warehouse: warehouse, Namespace: icebergio.StreamNamespace(prefix)}
	cat, err := icebergio.Open(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	defer icebergio.Close(cat)
	return cat.LoadTable(ctx, table.Identifier{o.Namespace, name})
}
