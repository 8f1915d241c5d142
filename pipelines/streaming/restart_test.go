package streaming

import (
	"context"
	"fmt"
	segjson "github.com/segmentio/encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pinpipe/pinpipe/ingest/devserver/kafka"
	"github.com/pinpipe/pinpipe/ingest/emulator"
	"github.com/pinpipe/pinpipe/ingest/gateway"
	"github.com/pinpipe/pinpipe/internal/testenv"
	"github.com/pinpipe/pinpipe/io/icebergio"
	"github.com/pinpipe/pinpipe/io/kafkaio"
	"github.com/pinpipe/pinpipe/io/postgres"
	"github.com/pinpipe/pinpipe/transforms"
)

// TestRestartAfterDrain stops `pinpipe stream` with SIGINT in mid-stream
// and starts it again from the consumer group's offsets: every post is one
// row of each table, each bad record one dead letter, and every window's
// category count holds each of its posts once.
func TestRestartAfterDrain(t *testing.T) {
	testRestart(t, restartCase{window: 2 * time.Second, rowsAtStop: 150, stop: func(t *testing.T, p *testenv.Proc) {
		if err := p.Signal(os.Interrupt, 90*time.Second); err != nil {
			t.Fatalf("the drained job: %v", err)
		}
	}})
}

// TestRestartAfterKill kills `pinpipe stream` with SIGKILL in mid-stream
// and starts it again: the tables, dead letters and category counts are
// exact, each post counted once in its window. Prism keeps no state across
// a crash; the job resumes from its durable positions (kafka_positions),
// recorded only once a window pane's posts were written, so the windows
// the killed job had not fired are read again.
func TestRestartAfterKill(t *testing.T) {
	testRestart(t, restartCase{window: 2 * time.Second, rowsAtStop: 150, stop: func(t *testing.T, p *testenv.Proc) { p.Kill() }})
}

// TestRestartAfterKillWindowOpen kills `pinpipe stream` at the worst
// moment: records read and written to the tables, their window open and
// nothing of it fired yet (the reproduction: the counts were 0
// after the restart). The restarted job's counts equal an uninterrupted
// run's, with no post twice.
func TestRestartAfterKillWindowOpen(t *testing.T) {
	testRestart(t, restartCase{window: time.Minute, rowsAtStop: 60, nothingFired: true,
		stop: func(t *testing.T, p *testenv.Proc) { p.Kill() }})
}

// TestRestartAfterKillOnJobServer is TestRestartAfterKillWindowOpen on a
// prism job server with --environment_type=PROCESS (Beam's boot program
// starts the workers in processes of their own, as Flink does): the
// launcher, the job server and the workers' process group are killed
// together, and a new job server and launcher finish the stream (bounded,
// --until-latest, since a drain request cannot reach separate workers).
// No part of the guarantee lives in one process.
func TestRestartAfterKillOnJobServer(t *testing.T) {
	testRestart(t, restartCase{window: time.Minute, rowsAtStop: 60, nothingFired: true, jobServer: true,
		stop: func(t *testing.T, p *testenv.Proc) { p.Kill() }})
}

type restartCase struct {
	jobServer    bool // on a prism job server with PROCESS workers (the stop also kills its process group)
	window       time.Duration
	rowsAtStop   int  // pin rows written before the stop
	nothingFired bool // the stop comes before any window pane is written
	iceberg      bool // --table-format=iceberg: the file output is Iceberg tables (checkIceberg)
	compact      bool // with iceberg: pinpipe tables rewrite-files between the stop and the restart
	stop         func(*testing.T, *testenv.Proc)
}

func testRestart(t *testing.T, rc restartCase) {
	if testing.Short() {
		t.Skip("builds and runs the pinpipe binary")
	}
	t.Parallel()
	dsn := testDSN(t)
	bin := testenv.Pinpipe(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	broker, err := kafka.Start(ctx, kafka.Options{Listen: "127.0.0.1:0", Partitions: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer broker.Close()
	const prefix = "rs"
	kc, err := kgo.NewClient(kgo.SeedBrokers(broker.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	created, err := kadm.NewClient(kc).CreateTopics(ctx, 3, -1, nil, KafkaTopic(prefix, "pin"), KafkaTopic(prefix, "geo"), KafkaTopic(prefix, "user"))
	if err == nil {
		err = created.Error()
	}
	if err != nil {
		t.Fatal(err)
	}
	gw, err := gateway.New(gateway.Config{KafkaBrokers: []string{broker.Addr()}, TopicPrefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	defer gw.Close()
	srv := httptest.NewServer(gw)
	defer srv.Close()

	// Bad records, each produced twice (a client retrying), once before the
	// first job and once after the restart: each must be one dead letter.
	bad := [][]byte{[]byte(`{"index": "seven"}`), []byte(`not json at all`), []byte(`["an", "array"]`)}
	produceBad := func() {
		for _, v := range bad {
			for range 2 {
				if err := kc.ProduceSync(ctx, &kgo.Record{Topic: KafkaTopic(prefix, "pin"), Value: v}).FirstErr(); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	produceBad()

	posts := 900 // 20 s of posts
	if rc.jobServer {
		posts = 2700 // a job server and its PROCESS workers start slowly on a busy machine
	}
	if rc.nothingFired {
		startEarlyInWindow(t, rc.window)
	}
	sent := emulateInBackground(ctx, emulator.Config{Posts: posts, All: true, Seed: 3, Gateway: srv.URL,
		Target: emulator.TargetKafka, TopicPrefix: prefix, Rate: 45, Concurrency: 4})

	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows := tableRows(ctx, conn)
	filesDir := t.TempDir()
	args := []string{"stream", "--source=kafka", "--kafka-brokers=" + broker.Addr(), "--topic-prefix=" + prefix,
		"--sink=" + dsn, "--files=" + filesDir, "--group=restart", "--start=committed", "--window=" + rc.window.String()}
	if rc.iceberg {
		args = append(args, "--table-format=iceberg")
	}
	var procEnv string
	if rc.jobServer {
		procEnv = testenv.ProcessEnvironment(t)
	}
	start := func(extra ...string) (*testenv.Proc, *testenv.JobServer) {
		a := append(slices.Clone(args), extra...)
		if !rc.jobServer {
			return testenv.Start(t, bin, nil, a...), nil
		}
		js := testenv.StartPrismJobServer(t, nil)
		a = append(a, "--runner=universal", "--endpoint="+js.Endpoint, "--environment_type=PROCESS",
			"--environment_config="+procEnv, "--worker_binary="+bin)
		return testenv.Start(t, bin, nil, a...), js
	}
	first, firstJS := start()
	want := fmt.Sprintf("the first job's first %d posts", rc.rowsAtStop)
	if rc.compact {
		want += " and two panes of pins committed to Iceberg with their positions (settled files to merge)"
	}
	waitRunning(t, first, "the first job", 90*time.Second, want, func() bool {
		if rows(postgres.StreamPinTable) < rc.rowsAtStop {
			return false
		}
		// A loaded machine may reach the rows before any window fired.
		return !rc.compact || (icebergSnapshots(t, filepath.Join(filesDir, icebergio.WarehouseDir), prefix, transforms.TablePin) >= 2 &&
			rows(kafkaio.PositionTable) > 0)
	})
	rc.stop(t, first)
	if firstJS != nil {
		firstJS.KillGroup()
	}
	atStop := rows(postgres.StreamPinTable)
	if rc.nothingFired {
		// (No table yet counts as none.)
		requireNothingFired(t, rows, kafkaio.PositionTable+" WHERE to_offset >= from_offset")
	}
	requireMidStream(t, sent, "the job was stopped", "a stop")
	t.Logf("stopped with %d of %d posts in %s", atStop, posts, postgres.StreamPinTable)
	if rc.iceberg {
		t.Logf("the killed job had committed %d snapshots to the pin Iceberg table",
			icebergSnapshots(t, filepath.Join(filesDir, icebergio.WarehouseDir), prefix, transforms.TablePin))
	}
	if rc.compact {
		// The killed job's settled span files merged: the restart must
		// still recognise what it commits again.
		p := testenv.Start(t, bin, nil, "tables", "rewrite-files", "--stream", "--topic-prefix="+prefix,
			"--iceberg-warehouse="+filepath.Join(filesDir, icebergio.WarehouseDir), "--checkpoint-dsn="+dsn)
		testenv.WaitFor(t, time.Minute, "rewrite-files to end", func() bool { done, _ := p.Exited(); return done })
		if _, err := p.Exited(); err != nil || !strings.Contains(p.Stdout(), icebergio.StreamNamespace(prefix)+".pin: merged") {
			t.Fatalf("rewrite-files: %v, merged no pin files:\n%s%s", err, p.Stdout(), p.Stderr())
		}
		t.Logf("rewrite-files:\n%s", p.Stdout())
	}

	if rc.jobServer {
		produceBad()
		if err := <-sent; err != nil {
			t.Fatalf("emulate: %v", err)
		}
		second, js := start("--until-latest")
		testenv.WaitFor(t, 4*time.Minute, "the second job to finish", func() bool { done, _ := second.Exited(); return done })
		if _, err := second.Exited(); err != nil {
			t.Fatalf("the second job: %v", err)
		}
		js.KillGroup()
	} else {
		second, _ := start()
		produceBad()
		drainWhenComplete(t, second, "the second job", sent, rows, posts, len(bad))
	}

	records := func(table string) []sourceRecord {
		var out []sourceRecord
		for _, r := range readTopic(t, broker.Addr(), KafkaTopic(prefix, table)) {
			out = append(out, sourceRecord{value: r.Value, time: r.Timestamp})
		}
		return out
	}
	if rc.iceberg {
		checkExact(t, conn, "", rc.window, posts, len(bad), records)
		checkIceberg(t, filepath.Join(filesDir, icebergio.WarehouseDir), prefix, rc.window, posts, rc.compact, records)
		return
	}
	checkExact(t, conn, filesDir, rc.window, posts, len(bad), records)
}

// sourceRecord is a record of a topic or stream, with its event time.
type sourceRecord struct {
	value []byte
	time  time.Time
}

// checkExact checks a streaming job's outputs after a restart against the
// records of the topics or streams (read by records): every post one row
// of each table, each bad record one dead letter, the --files output each
// clean row once in its window, and the category counts each post once in
// its window.
func checkExact(t *testing.T, conn *pgx.Conn, filesDir string, window time.Duration, posts, bad int, records func(table string) []sourceRecord) {
	t.Helper()
	ctx := context.Background()
	rows := tableRows(ctx, conn)
	for table, want := range map[string]int{postgres.StreamPinTable: posts, postgres.StreamGeoTable: posts,
		postgres.StreamUserTable: posts, postgres.StreamDeadLetterTable: bad} {
		if got := rows(table); got != want {
			t.Errorf("%s: %d rows, want %d", table, got, want)
		}
	}
	var inds, lo, hi int64
	if err := conn.QueryRow(ctx, "SELECT count(DISTINCT ind), min(ind), max(ind) FROM "+postgres.StreamPinTable).Scan(&inds, &lo, &hi); err != nil ||
		inds != int64(posts) || lo != 0 || hi != int64(posts)-1 {
		t.Errorf("pin inds: %d distinct in [%d, %d] (%v), want 0 to %d", inds, lo, hi, err, posts-1)
	}

	// The files (unless filesDir is ""): each clean row of each topic once,
	// in the window of its record's timestamp.
	size := window.Milliseconds()
	for _, table := range transforms.Tables {
		if filesDir == "" {
			break
		}
		wantLines := wantWindowLines(table, window, records)
		gotLines := map[string]int{}
		names, _ := filepath.Glob(filepath.Join(filesDir, table, "window=*", "*.jsonl"))
		for _, name := range names {
			b, err := os.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			for _, line := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
				gotLines[filepath.Base(filepath.Dir(name))+" "+line]++
			}
		}
		compareLines(t, table+" files", len(names), posts, wantLines, gotLines)
	}

	// The category counts: each post of the pin topic, cleaned, in the
	// window of its record's timestamp, once.
	want := map[string]bool{}
	for _, r := range records(transforms.TablePin) {
		pin, _, err := transforms.CleanPinRecord(r.value)
		if err != nil || pin.Category == nil {
			continue
		}
		start := time.UnixMilli(r.time.UnixMilli() - r.time.UnixMilli()%size).UTC()
		want[fmt.Sprintf("%s %s %d", start.Format(time.RFC3339), *pin.Category, pin.Ind)] = true
	}
	got := map[string]bool{}
	q, err := conn.Query(ctx, "SELECT window_start, window_end - window_start, category, ind FROM "+postgres.CategoryPostsTable)
	if err != nil {
		t.Fatal(err)
	}
	for q.Next() {
		var start time.Time
		var size time.Duration
		var category string
		var ind int64
		if err := q.Scan(&start, &size, &category, &ind); err != nil {
			t.Fatal(err)
		}
		if size != window {
			t.Errorf("a window of %s, want %s", size, window)
		}
		got[fmt.Sprintf("%s %s %d", start.UTC().Format(time.RFC3339), category, ind)] = true
	}
	if err := q.Err(); err != nil {
		t.Fatal(err)
	}
	var extra, missing []string
	for k := range got {
		if !want[k] {
			extra = append(extra, k)
		}
	}
	for k := range want {
		if !got[k] {
			missing = append(missing, k)
		}
	}
	sort.Strings(extra)
	sort.Strings(missing)
	if len(want) < posts/2 {
		t.Fatalf("only %d posts with a category in the topic", len(want))
	}
	if len(extra) > 0 {
		t.Errorf("%d (window, category, post) entries that the topic does not have, e.g. %v", len(extra), extra[:min(5, len(extra))])
	}
	if len(missing) > 0 {
		t.Errorf("%d of %d (window, category, post) entries missing from the counts, e.g. %v", len(missing), len(want), missing[:min(5, len(missing))])
	}
	// The view counts each post once.
	var counted int
	if err := conn.QueryRow(ctx, "SELECT coalesce(sum(posts), 0) FROM "+postgres.CategoryCountsTable).Scan(&counted); err != nil || counted != len(want) {
		t.Errorf("%s sums to %d posts (%v), want %d", postgres.CategoryCountsTable, counted, err, len(want))
	}
	t.Logf("category counts: %d of %d (window, category, post) entries (%d missing)", len(got), len(want), len(missing))
}

// wantWindowLines are the clean rows of a table's records as the windowed
// outputs must hold them: "window=<start> <row JSON>", with their counts.
func wantWindowLines(table string, window time.Duration, records func(table string) []sourceRecord) map[string]int {
	size := window.Milliseconds()
	want := map[string]int{}
	for _, r := range records(table) {
		if row := cleanRowJSON(table, r.value); row != nil {
			start := time.UnixMilli(r.time.UnixMilli() - r.time.UnixMilli()%size).UTC()
			want["window="+start.Format(time.RFC3339)+" "+string(row)]++
		}
	}
	return want
}

// compareLines fails the test unless got holds each line of want as many
// times (and nothing else), want holding at least half of posts.
func compareLines(t *testing.T, what string, files, posts int, want, got map[string]int) {
	t.Helper()
	var bad []string
	for k, n := range got {
		if want[k] != n {
			bad = append(bad, fmt.Sprintf("%dx (want %d) %.80s", n, want[k], k))
		}
	}
	for k, n := range want {
		if got[k] == 0 {
			bad = append(bad, fmt.Sprintf("0x (want %d) %.80s", n, k))
		}
	}
	sort.Strings(bad)
	if len(want) < posts/2 || len(bad) > 0 {
		t.Errorf("%s (%d files): %d lines wrong of %d, e.g. %v", what, files, len(bad), len(want), bad[:min(5, len(bad))])
	}
}

// emulateInBackground runs the emulator until it has sent its posts, and
// then reports how it went.
func emulateInBackground(ctx context.Context, cfg emulator.Config) <-chan error {
	sent := make(chan error, 1)
	go func() {
		sum, err := emulator.Run(ctx, cfg)
		if err == nil && sum.Failed > 0 {
			err = fmt.Errorf("%d posts failed", sum.Failed)
		}
		sent <- err
	}()
	return sent
}

// tableRows counts a table's rows; a table the job has not made yet has
// none.
func tableRows(ctx context.Context, conn *pgx.Conn) func(table string) int {
	return func(table string) int {
		var n int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM "+table).Scan(&n); err != nil {
			return 0
		}
		return n
	}
}

// readTopic reads every record of a topic.
func readTopic(t *testing.T, addr, topic string) []*kgo.Record {
	t.Helper()
	adm, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	ends, err := kadm.NewClient(adm).ListEndOffsets(context.Background(), topic)
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	ends.Each(func(o kadm.ListedOffset) { total += o.Offset })
	c, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var recs []*kgo.Record
	for int64(len(recs)) < total {
		fs := c.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("read %d of the %d records of %s: %v", len(recs), total, topic, err)
		}
		recs = append(recs, fs.Records()...)
	}
	return recs
}

// cleanRowJSON is a raw record's clean row as the window files hold it
// (JSON, as files.WriteWindowedJSONLines writes it), or nil for a dead
// letter.
func cleanRowJSON(table string, raw []byte) []byte {
	row, ok := cleanRow(table, raw)
	if !ok {
		return nil
	}
	b, err := segjson.Marshal(row)
	if err != nil {
		return nil
	}
	return b
}
