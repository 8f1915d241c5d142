package main

import (
	"context"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/iceberg-go/table"
	"github.com/jackc/pgx/v5"

	"github.com/pinpipe/pinpipe/internal/icebergtest"
	"github.com/pinpipe/pinpipe/internal/testenv"
	"github.com/pinpipe/pinpipe/io/icebergio"
	"github.com/pinpipe/pinpipe/io/kafkaio"
	"github.com/pinpipe/pinpipe/io/kinesisio"
	"github.com/pinpipe/pinpipe/io/positions"
	"github.com/pinpipe/pinpipe/transforms"
)

// TestTablesRewriteFiles: the streaming job's pin table on a real
// warehouse (SQLite catalog) holds four span files of Kafka partition 0
// (of a Kinesis shard: the same with the shard's checkpoint);
// the job's durable positions in a real PostgreSQL are [0, 9] and [20,
// 24] (it crashed after committing [10, 14] to Iceberg, before recording
// it), so it resumes at 10. `tables rewrite-files --dry-run` lists the two
// settled files and commits nothing; `tables rewrite-files` merges them in
// one snapshot and leaves [10, 14] and [20, 24] (past the resume
// position). The restarted job then commits [10, 24] cut anew: every
// row once. Without the position store's DSN the stream's tables are not
// compacted at all.
func TestTablesRewriteFiles(t *testing.T) {
	for _, source := range []string{"kafka", "kinesis"} {
		t.Run(source, func(t *testing.T) { testTablesRewriteFiles(t, source) })
	}
}

func testTablesRewriteFiles(t *testing.T, source string) {
	ctx := context.Background()
	dsn := testenv.PostgresDB(t, false)
	wh := t.TempDir()
	o := icebergio.Options{Warehouse: wh, Namespace: icebergio.StreamNamespace("pinpipe")}
	w, err := icebergio.OpenStream(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	win := time.Date(2026, 12, 7, 22, 0, 0, 0, time.UTC)
	stream, part := "pinpipe.pin", "0"
	if source == "kinesis" {
		stream, part = "streaming-pinpipe-pin", "shardId-000000000000"
	}
	span := func(from, to int64) positions.Span {
		return positions.Span{Stream: stream, Part: part, From: strconv.FormatInt(from, 10), To: strconv.FormatInt(to, 10)}
	}
	commit := func(from, to int64) {
		t.Helper()
		sr := icebergio.SpanRows{Span: span(from, to)}
		for ind := from; ind <= to; ind++ {
			title := "post " + strconv.FormatInt(ind, 10)
			row, err := transforms.EncodeRow(nil, transforms.Pin{Ind: ind, Title: &title})
			if err != nil {
				t.Fatal(err)
			}
			sr.Rows = append(sr.Rows, row)
		}
		p := icebergio.Pane{Job: "job-1", Table: transforms.TablePin, WindowStart: win, WindowEnd: win.Add(time.Minute), Spans: []icebergio.SpanRows{sr}}
		if _, err := w.Commit(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range [][2]int64{{0, 4}, {5, 9}, {10, 14}, {20, 24}} {
		commit(s[0], s[1])
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	create, record := kafkaio.CreatePositionTable, kafkaio.RecordSpans
	if source == "kinesis" {
		create, record = kinesisio.CreatePositionTables, kinesisio.RecordSpans
	}
	if err := create(ctx, conn); err != nil {
		t.Fatal(err)
	}
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		return record(ctx, tx, "job-1", []positions.Span{span(0, 4), span(5, 9), span(20, 24)})
	})
	if err != nil {
		t.Fatal(err)
	}
	history := func() int {
		h, err := icebergio.History(ctx, o, transforms.TablePin)
		if err != nil {
			t.Fatal(err)
		}
		return len(h)
	}
	snaps := history()
	args := []string{"tables", "rewrite-files", "--stream", "--iceberg-warehouse=" + wh, "--source=" + source}

	if r := pinpipe(t, nil, args...); r.code != 2 || !strings.Contains(r.stderr, "--checkpoint-dsn") {
		t.Errorf("rewrite-files --stream without a position store: exit %d: %s", r.code, r.stderr)
	}
	r := pinpipe(t, nil, append(args, "--checkpoint-dsn="+dsn, "--dry-run")...)
	if r.code != 0 || !strings.Contains(r.stdout, "pinpipe_stream.pin: would merge (--dry-run) 2 files (10 records") ||
		!strings.Contains(r.stdout, "/0-4.parquet") || !strings.Contains(r.stdout, "left 2 files: its span is not settled") {
		t.Fatalf("rewrite-files --dry-run: exit %d:\n%s%s", r.code, r.stdout, r.stderr)
	}
	if n := history(); n != snaps {
		t.Fatalf("--dry-run made %d snapshots", n-snaps)
	}
	r = pinpipe(t, nil, append(args, "--sink="+dsn)...)
	if r.code != 0 || !strings.Contains(r.stdout, "pinpipe_stream.pin: merged 2 files (10 records") ||
		!regexp.MustCompile(`committed snapshot \d+`).MatchString(r.stdout) {
		t.Fatalf("rewrite-files: exit %d:\n%s%s", r.code, r.stdout, r.stderr)
	}
	if n := history(); n != snaps+1 {
		t.Fatalf("rewrite-files made %d snapshots, want 1", n-snaps)
	}
	// The restarted job reads from 10 and cuts [10, 24].
	commit(10, 24)
	var want []int64
	for i := int64(0); i <= 24; i++ {
		want = append(want, i)
	}
	if got := pinInds(t, o); !slices.Equal(got, want) {
		t.Fatalf("after the restart the table has %v, want 0 to 24 once each", got)
	}
}

// pinInds scans the pin table's current snapshot with iceberg-go: its
// inds, sorted, duplicates kept.
func pinInds(t *testing.T, o icebergio.Options) []int64 {
	t.Helper()
	ctx := context.Background()
	cat, err := icebergio.Open(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	defer icebergio.Close(cat)
	tbl, err := cat.LoadTable(ctx, table.Identifier{o.Namespace, transforms.TablePin})
	if err != nil {
		t.Fatal(err)
	}
	return icebergtest.Inds(t, tbl)
}
