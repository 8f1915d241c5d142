package batch

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"
	"github.com/google/go-cmp/cmp"

	"github.com/pinpipe/pinpipe/ingest/generate"
	"github.com/pinpipe/pinpipe/internal/rawline"
	"github.com/pinpipe/pinpipe/internal/testenv"
	"github.com/pinpipe/pinpipe/io/files"
	"github.com/pinpipe/pinpipe/transforms"
)

var update = flag.Bool("update-golden", false, "rewrite the golden files in testdata/golden")

func TestMain(m *testing.M) {
	code := ptest.MainRet(m)
	testenv.RemoveBuilds()
	os.Exit(code)
}

const (
	sampleDir = "../../testdata/sample"
	goldenDir = "../../testdata/golden"
)

// snapshot reads a run's outputs into comparable text: each table's rows
// sorted by ind and the dead letters sorted, from the files the commit
// names, and the insights and the summary from the files a reader sees.
func snapshot(t *testing.T, out string) map[string]string {
	t.Helper()
	ctx := context.Background()
	snap := committedSnapshot(t, out)
	for _, n := range append(insightNames(), SummaryFile) {
		name := files.Join(out, InsightsDir, n)
		if n == SummaryFile {
			name = files.Join(out, SummaryFile)
		}
		b, err := files.ReadFile(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		key := "insights/" + n
		if n == SummaryFile {
			key = n
		}
		snap[key] = string(b)
	}
	return snap
}

// committedSnapshot reads what the output's commit holds: the tables and
// dead letters from the files it names, and its insights.
func committedSnapshot(t *testing.T, out string) map[string]string {
	t.Helper()
	ctx := context.Background()
	c, err := ReadCommit(ctx, out)
	if err != nil || c == nil {
		t.Fatalf("reading the commit of %s: %v, %v", out, c, err)
	}
	snap := map[string]string{}
	for _, table := range transforms.Tables {
		var rows []string
		for _, n := range c.TableFiles(table) {
			rows = append(rows, readRows(t, n, table)...)
		}
		slices.SortFunc(rows, func(a, b string) int { return int(indOf(t, a) - indOf(t, b)) })
		snap["tables/"+table+".jsonl"] = strings.Join(rows, "\n") + "\n"
	}
	var dead []string
	for _, d := range c.DeadLetters {
		if err := files.ReadFileLines(ctx, d.Path, func(l []byte) { dead = append(dead, string(l)) }); err != nil {
			t.Fatal(err)
		}
	}
	slices.Sort(dead)
	snap["deadletter.jsonl"] = strings.Join(dead, "\n") + "\n"
	b, err := json.Marshal(c.Insights)
	if err != nil {
		t.Fatal(err)
	}
	snap["committed insights"] = string(b)
	return snap
}

func insightNames() []string {
	var in transforms.Insights
	var names []string
	for _, n := range in.Named() {
		names = append(names, n.Name+".json")
	}
	return names
}

func indOf(t *testing.T, row string) int64 {
	var r struct{ Ind int64 }
	if err := json.Unmarshal([]byte(row), &r); err != nil {
		t.Fatalf("bad row %q: %v", row, err)
	}
	return r.Ind
}

// readRows returns a table file's rows as JSON lines, whatever its format,
// so that Parquet output is checked against the same golden rows.
func readRows(t *testing.T, name, table string) []string {
	t.Helper()
	ctx := context.Background()
	if strings.HasSuffix(name, "."+FormatJSONL) {
		var rows []string
		if err := files.ReadFileLines(ctx, name, func(l []byte) { rows = append(rows, string(l)) }); err != nil {
			t.Fatal(err)
		}
		return rows
	}
	b, err := files.ReadFile(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := parquetRowsAsJSON(b, table)
	if err != nil {
		t.Fatalf("reading %s: %v", name, err)
	}
	return rows
}

func compareGolden(t *testing.T, got map[string]string) {
	t.Helper()
	if *update {
		for k, v := range got {
			if k == "committed insights" {
				continue
			}
			p := filepath.Join(goldenDir, k)
			os.MkdirAll(filepath.Dir(p), 0o755)
			if err := os.WriteFile(p, []byte(v), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return
	}
	for k, v := range got {
		if k == "committed insights" {
			continue // the insight files are compared
		}
		want, err := os.ReadFile(filepath.Join(goldenDir, k))
		if err != nil {
			t.Fatalf("golden %s: %v (run go test ./pipelines/batch -run Golden -update-golden)", k, err)
		}
		if diff := cmp.Diff(string(want), v); diff != "" {
			t.Errorf("%s differs from the golden file (-want +got):\n%s", k, diff)
		}
	}
}

func runBatch(t *testing.T, o Options) transforms.Summary {
	t.Helper()
	sum, err := Run(context.Background(), o)
	if err != nil {
		t.Fatalf("batch run: %v", err)
	}
	return sum
}

func TestGoldenDirect(t *testing.T) {
	testenv.SetFlags(t, "runner", "direct")
	out := t.TempDir()
	runBatch(t, Options{Input: sampleDir, TopicPrefix: "pinpipe", Output: out, Format: FormatJSONL})
	compareGolden(t, snapshot(t, out))
}

func TestGoldenPrismParquet(t *testing.T) {
	testenv.SetFlags(t, "runner", "prism")
	out := t.TempDir()
	sum := runBatch(t, Options{Input: sampleDir, TopicPrefix: "pinpipe", Output: out, Format: FormatParquet, Shards: 5})
	if sum[transforms.TablePin].Rows == 0 {
		t.Fatal("no pin rows")
	}
	compareGolden(t, snapshot(t, out))
}

// TestSummaryAgreesWithFiles checks the summary's counts against the files
// written, so that the summary cannot drift from the data.
func TestSummaryAgreesWithFiles(t *testing.T) {
	testenv.SetFlags(t, "runner", "direct")
	out := t.TempDir()
	sum := runBatch(t, Options{Input: sampleDir, TopicPrefix: "pinpipe", Output: out, Format: FormatJSONL})
	snap := snapshot(t, out)
	var rejected int64
	for _, table := range transforms.Tables {
		st := sum[table]
		rows := int64(strings.Count(snap["tables/"+table+".jsonl"], "\n"))
		if st.Rows != rows {
			t.Errorf("%s: summary rows %d, files hold %d", table, st.Rows, rows)
		}
		if st.Read != st.Clean+st.Rejected || st.Clean != st.Rows+st.Duplicates {
			t.Errorf("%s: counts do not add up: %+v", table, st)
		}
		rejected += st.Rejected
	}
	if dead := int64(strings.Count(snap["deadletter.jsonl"], "\n")); dead != rejected {
		t.Errorf("summary rejects %d, dead-letter lines %d", rejected, dead)
	}
}

// TestRerunReplacesOutput runs twice into one output with different shard
// counts: the second run must leave no file of the first behind.
func TestRerunReplacesOutput(t *testing.T) {
	testenv.SetFlags(t, "runner", "direct")
	out := t.TempDir()
	runBatch(t, Options{Input: sampleDir, TopicPrefix: "pinpipe", Output: out, Format: FormatJSONL, Shards: 16})
	first := snapshot(t, out)
	runBatch(t, Options{Input: sampleDir, TopicPrefix: "pinpipe", Output: out, Format: FormatJSONL, Shards: 3})
	if diff := cmp.Diff(first, snapshot(t, out)); diff != "" {
		t.Errorf("re-run changed the results (-first +second):\n%s", diff)
	}
	for _, table := range transforms.Tables {
		parts, _ := filepath.Glob(filepath.Join(out, TablesDir, table, "part-*"))
		if len(parts) > 3 {
			t.Errorf("%s: %d part files after a 3-shard re-run: stale files left", table, len(parts))
		}
	}
	dead, _ := filepath.Glob(filepath.Join(out, DeadLetterDir, "*"))
	var lines int
	for _, d := range dead {
		b, _ := os.ReadFile(d)
		lines += bytes.Count(b, []byte("\n"))
	}
	if want := strings.Count(first["deadletter.jsonl"], "\n"); lines != want {
		t.Errorf("dead-letter lines after re-run = %d, want %d", lines, want)
	}
}

func TestOptionsValidation(t *testing.T) {
	for _, o := range []Options{
		{TopicPrefix: "p", Output: "o"},
		{Input: "i", TopicPrefix: "p"},
		{Input: "i", Output: "o"},
		{Input: "i", TopicPrefix: "p", Output: "o", Format: "csv"},
	} {
		if _, err := Run(context.Background(), o); err == nil {
			t.Errorf("Run(%+v) succeeded, want a validation error", o)
		}
	}
}

// TestNoInput: an input with no objects at all under the prefix is a
// mistake (a wrong --input or --topic-prefix), reported with the path looked
// at, and the output is left alone.
func TestNoInput(t *testing.T) {
	testenv.SetFlags(t, "runner", "direct")
	out := t.TempDir()
	_, err := Run(context.Background(), Options{Input: t.TempDir(), TopicPrefix: "pinpipe", Output: out, Format: FormatJSONL})
	if err == nil || !strings.Contains(err.Error(), "no input objects in") || !strings.Contains(err.Error(), "pinpipe.{pin,geo,user}") {
		t.Fatalf("run over no input: %v; want an error naming where it looked", err)
	}
	_, err = Run(context.Background(), Options{Input: sampleDir, TopicPrefix: "pinpipee", Output: out, Format: FormatJSONL})
	if err == nil || !strings.Contains(err.Error(), "pinpipee.{pin,geo,user}") {
		t.Fatalf("run with a mistyped prefix: %v", err)
	}
	if names, _ := filepath.Glob(filepath.Join(out, "*")); len(names) != 0 {
		t.Errorf("failed runs left %v in the output", names)
	}
}

// TestIncremental: two incremental runs over data that grew between them,
// each reading only its day's objects and the committed tables (in either
// format), give the same tables and insights as one full run over all of
// it, and a third run with nothing new reads nothing and changes nothing.
func TestIncremental(t *testing.T) {
	testenv.SetFlags(t, "runner", "direct")
	for _, format := range []string{FormatParquet, FormatJSONL} {
		t.Run(format, func(t *testing.T) { testIncremental(t, format) })
	}
}

func testIncremental(t *testing.T, format string) {
	ctx := context.Background()
	input := t.TempDir()
	// gen writes a day's objects and returns the lines it wrote per table
	// (records and malformed ones): what a run reading exactly that day's
	// objects reads.
	gen := func(first int64, posts, partition int, seed uint64) map[string]int64 {
		o := generate.Defaults()
		o.Out, o.Posts, o.FirstInd, o.FirstPartition, o.Seed, o.FlushSize, o.MalformedRate = input, posts, first, partition, seed, 200, 0.01
		st, err := generate.Write(ctx, o)
		if err != nil {
			t.Fatal(err)
		}
		lines := map[string]int64{}
		for _, table := range transforms.Tables {
			lines[table] = int64(st.Records[table] + st.Malformed[table])
		}
		return lines
	}
	day1 := gen(0, 800, 0, 1)
	inc := t.TempDir()
	opts := Options{Input: input, TopicPrefix: "pinpipe", Output: inc, Format: format, Shards: 4, Incremental: true}
	first := runBatch(t, opts)
	// The second day: new posts, and re-sent old ones (inds 700-899 overlap).
	day2 := gen(700, 600, 3, 2)
	second := runBatch(t, opts)
	// Each run reads exactly its day's objects: the second re-reads none of
	// the first's.
	for _, table := range transforms.Tables {
		if got := first[table].Read; got != day1[table] {
			t.Errorf("the first run read %d %s records, want the %d of the first day", got, table, day1[table])
		}
		if got := second[table].Read; got != day2[table] {
			t.Errorf("the second run read %d %s records, want the %d of the second day (%d more: re-read old objects)", got, table, day2[table], got-day2[table])
		}
	}

	full := t.TempDir()
	runBatch(t, Options{Input: input, TopicPrefix: "pinpipe", Output: full, Format: format, Shards: 4})
	want, got := snapshot(t, full), snapshot(t, inc)
	for _, k := range []string{"summary.json", "deadletter.jsonl"} {
		delete(want, k) // counts are of each run's reads
		delete(got, k)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("incremental runs differ from one full run (-full +incremental):\n%.3000s", diff)
	}
	if n := strings.Count(want["tables/pin.jsonl"], "\n"); n < 1250 {
		t.Errorf("only %d pin rows after both days", n)
	}

	third := runBatch(t, opts)
	if third[transforms.TablePin].Read != 0 {
		t.Errorf("a run with nothing new read %d records", third[transforms.TablePin].Read)
	}
	if diff := cmp.Diff(got, func() map[string]string {
		s := snapshot(t, inc)
		delete(s, "summary.json")
		delete(s, "deadletter.jsonl")
		return s
	}()); diff != "" {
		t.Errorf("a run with nothing new changed the output:\n%.2000s", diff)
	}

	bad := opts
	bad.Shards = 5
	if _, err := Run(ctx, bad); err == nil || !strings.Contains(err.Error(), "--shards=4") {
		t.Errorf("changing the shard count of an incremental output: %v", err)
	}
}

// TestWrappedLines: values the S3 sink wrapped (internal/rawline) reach the
// job as their original bytes: a multi-line record cleans like its one-line
// form, and an invalid one is dead-lettered byte for byte.
func TestWrappedLines(t *testing.T) {
	testenv.SetFlags(t, "runner", "direct")
	in := t.TempDir()
	dir := filepath.Join(in, "topics", "pinpipe.pin", "partition=0")
	os.MkdirAll(dir, 0o755)
	multi := "{\"index\": 7,\n \"category\": \"art\",\n \"follower_count\": \"2k\"}"
	bad := "{\"index\": 8, \"title\": \"\xff\xfe\"\n"
	lines := []string{
		string(rawline.Encode([]byte(multi))),
		`{"index": 9, "category": "art", "follower_count": "2k"}`,
		string(rawline.Encode([]byte(bad))),
		string(rawline.Encode(nil)),
	}
	if err := os.WriteFile(filepath.Join(dir, "pinpipe.pin+0+0.json"), []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	sum := runBatch(t, Options{Input: in, TopicPrefix: "pinpipe", Output: out, Format: FormatJSONL})
	snap := committedSnapshot(t, out)
	want := `{"ind":7,"unique_id":null,"title":null,"description":null,"follower_count":2000,"poster_name":null,"tag_list":null,"is_image_or_video":null,"image_src":null,"save_location":null,"category":"art"}` + "\n" +
		`{"ind":9,"unique_id":null,"title":null,"description":null,"follower_count":2000,"poster_name":null,"tag_list":null,"is_image_or_video":null,"image_src":null,"save_location":null,"category":"art"}` + "\n"
	if diff := cmp.Diff(want, snap["tables/pin.jsonl"]); diff != "" {
		t.Errorf("pin rows (-want +got):\n%s", diff)
	}
	if st := sum[transforms.TablePin]; st.Read != 4 || st.Rejected != 2 {
		t.Errorf("pin stats %+v: want 4 read (the empty value is a record), 2 rejected", st)
	}
	var payloads []string
	for _, l := range strings.Split(strings.TrimSpace(snap["deadletter.jsonl"]), "\n") {
		var d transforms.DeadLetter
		if err := json.Unmarshal([]byte(l), &d); err != nil {
			t.Fatal(err)
		}
		raw := []byte(d.Payload)
		if d.PayloadBase64 != "" {
			raw, _ = base64.StdEncoding.DecodeString(d.PayloadBase64)
		}
		payloads = append(payloads, string(raw))
	}
	slices.Sort(payloads)
	if diff := cmp.Diff([]string{"", bad}, payloads); diff != "" {
		t.Errorf("dead-letter payloads are not the original bytes (-want +got):\n%q", diff)
	}
}
