package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"io/fs"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	beamlog "github.com/apache/beam/sdks/v2/go/pkg/beam/log"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	devkafka "github.com/pinpipe/pinpipe/ingest/devserver/kafka"
	devs3 "github.com/pinpipe/pinpipe/ingest/devserver/s3"
	"github.com/pinpipe/pinpipe/ingest/emulator"
	"github.com/pinpipe/pinpipe/internal/kinesalite"
	"github.com/pinpipe/pinpipe/internal/testenv"
	"github.com/pinpipe/pinpipe/io/postgres"
	"github.com/pinpipe/pinpipe/pipelines/batch"
	"github.com/pinpipe/pinpipe/transforms"
)

func TestMain(m *testing.M) {
	beamlog.LogLevel = "warn"
	code := ptest.MainRet(m)
	testenv.RemoveBuilds()
	os.Exit(code)
}

// childDirEnv tells a re-executed test binary to run the second demo, in
// that directory; childExeEnv gives it the pinpipe binary the first built.
const (
	childDirEnv = "PINPIPE_DEMO_TEST_CHILD_DIR"
	childExeEnv = "PINPIPE_DEMO_TEST_EXE"
)

// posts is the demo's size in the tests: small, the whole test stays well
// under a minute.
const posts = 300

func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
}

// TestDemo runs a small demo, checks its Result against what the parts
// left on disk and that nothing listens any more, then runs a second demo
// in the same directory in a fresh process, as a user re-running it would,
// and checks that it gives the same tables and insights.
func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole system")
	}
	dir := filepath.Join(t.TempDir(), "demo")
	exe := testenv.Pinpipe(t)
	var log bytes.Buffer
	runnerFlag := flag.Lookup("runner").Value.String()
	envChanged := watchEnv(t)
	res, err := Run(context.Background(), Options{Dir: dir, Posts: posts, Log: &log, Logger: quietLogger(), Exe: exe})
	t.Logf("first run:\n%s", log.String())
	if err != nil {
		t.Fatal(err)
	}
	// The streaming job runs on prism, told so, not by --runner changed
	// under the process's other jobs.
	if got := flag.Lookup("runner").Value.String(); got != runnerFlag || res.Runner != "prism" {
		t.Errorf("--runner %q after the demo (was %q), the streaming job ran on %q", got, runnerFlag, res.Runner)
	}
	// Nor is the batch job's S3 set-up the process's environment, not even
	// for a while: it is its child's.
	if changed := envChanged(); changed != "" {
		t.Errorf("the demo changed the process's environment while it ran: %s", changed)
	}
	checkResult(t, res)
	var printed bytes.Buffer
	res.Print(&printed)
	t.Logf("summary:\n%s", printed.String())
	for _, want := range []string{"report.html", "top_category_by_country", "landed in S3"} {
		if !strings.Contains(printed.String(), want) {
			t.Errorf("the summary does not mention %q", want)
		}
	}

	// The second run, in a process of its own.
	resultFile := filepath.Join(t.TempDir(), "second.json")
	cmd := exec.Command(os.Args[0], "-test.run=^TestDemoSecondRun$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), childDirEnv+"="+dir, childExeEnv+"="+exe, "PINPIPE_DEMO_TEST_RESULT="+resultFile)
	out, err := cmd.CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("--- PASS: TestDemoSecondRun")) {
		t.Fatalf("the second run in %s failed: %v\n%s", dir, err, out)
	}
	t.Logf("the second run's test:\n%s", out)
	b, err := os.ReadFile(resultFile)
	if err != nil {
		t.Fatal(err)
	}
	var second Result
	if err := json.Unmarshal(b, &second); err != nil {
		t.Fatal(err)
	}
	// The same seed sends the same posts: the same clean tables and
	// insights, whatever the runs' timing.
	for _, table := range transforms.Tables {
		if res.Batch[table].Rows != second.Batch[table].Rows || res.Batch[table].Duplicates != second.Batch[table].Duplicates {
			t.Errorf("%s: the runs' batch summaries differ: %+v and %+v", table, res.Batch[table], second.Batch[table])
		}
	}
	if diff := cmp.Diff(res.Insights, second.Insights); diff != "" {
		t.Errorf("the runs' insights differ (-first +second):\n%s", diff)
	}
}

// TestDemoSecondRun is TestDemo's second run, in a process of its own.
func TestDemoSecondRun(t *testing.T) {
	dir := os.Getenv(childDirEnv)
	if dir == "" {
		t.Skip("run by TestDemo")
	}
	if _, err := os.Stat(filepath.Join(dir, "batch", batch.ReportFile)); err != nil {
		t.Fatalf("the first run's outputs are not there: %v", err)
	}
	// With a test PostgreSQL (make test), this run upserts into it too.
	o := Options{Dir: dir, Posts: posts, Logger: quietLogger(), Exe: os.Getenv(childExeEnv)}
	if os.Getenv("PINPIPE_TEST_PG_DSN") != "" {
		o.Sink = testenv.PostgresDB(t, false)
	}
	var log bytes.Buffer
	o.Log = &log
	res, err := Run(context.Background(), o)
	t.Logf("second run:\n%s", log.String())
	if err != nil {
		t.Fatal(err)
	}
	checkResult(t, res)
	if o.Sink != "" {
		// A fresh database: one row per ind, every malformed record a
		// dead letter.
		want := map[string]int64{postgres.StreamPinTable: res.Batch[transforms.TablePin].Rows,
			postgres.StreamGeoTable: res.Batch[transforms.TableGeo].Rows, postgres.StreamUserTable: res.Batch[transforms.TableUser].Rows,
			postgres.StreamDeadLetterTable: int64(res.Malformed)}
		if diff := cmp.Diff(want, res.StreamDB); diff != "" {
			t.Errorf("the streaming job's PostgreSQL tables (-want +got):\n%s", diff)
		}
	} else {
		t.Log("PINPIPE_TEST_PG_DSN is not set: the streaming job's PostgreSQL sink is not tested")
	}
	b, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(os.Getenv("PINPIPE_DEMO_TEST_RESULT"), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// checkResult checks a run's Result against the files, read
// independently of the demo's own counting: Kafka's and S3's data served
// again from the data directory, the streaming job's files, the batch job's
// summary and insights. And that every port the run used is closed.
func checkResult(t *testing.T, res Result) {
	t.Helper()
	if err := res.Check(); err != nil {
		t.Error(err)
	}
	for _, ep := range []string{res.Endpoints.Kafka, hostPort(t, res.Endpoints.S3), hostPort(t, res.Endpoints.Gateway)} {
		if c, err := net.DialTimeout("tcp", ep, time.Second); err == nil {
			c.Close()
			t.Errorf("%s still accepts connections after the run", ep)
		}
	}
	if res.Emulator.Sent != posts || res.Emulator.Failed != 0 || res.Malformed == 0 {
		t.Errorf("emulator: %+v, malformed %d; want %d posts sent, none failed, some malformed records", res.Emulator, posts, res.Malformed)
	}
	ctx := context.Background()

	// Kafka: the records each topic holds.
	kafka, err := devkafka.Start(ctx, devkafka.Options{Listen: "127.0.0.1:0", DataDir: filepath.Join(res.Dir, "kafka"), Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(kafka.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	var topics []string
	for _, table := range transforms.Tables {
		topics = append(topics, emulator.TopicName("pinpipe", table))
	}
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topics...)
	if err != nil {
		t.Fatal(err)
	}
	inKafka := map[string]int64{}
	ends.Each(func(o kadm.ListedOffset) { inKafka[strings.TrimPrefix(o.Topic, "pinpipe.")] += o.Offset })
	cl.Close()
	kafka.Close()
	if diff := cmp.Diff(inKafka, res.Kafka); diff != "" {
		t.Errorf("records in Kafka (-files +result):\n%s", diff)
	}

	// S3: the objects and their lines.
	lake, err := devs3.Start(ctx, devs3.Options{Listen: "127.0.0.1:0", DataDir: filepath.Join(res.Dir, "s3"), Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer lake.Close()
	c := s3.New(s3.Options{Region: Region, BaseEndpoint: aws.String(lake.URL()), UsePathStyle: true, Credentials: staticCredentials(),
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired})
	landed := map[string]int64{}
	objects := 0
	list, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("lake"), Prefix: aws.String("raw/topics/")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToBool(list.IsTruncated) {
		t.Fatal("more than one page of objects")
	}
	for _, o := range list.Contents {
		key := aws.ToString(o.Key)
		table := strings.TrimPrefix(strings.Split(key, "/")[2], "pinpipe.")
		obj, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("lake"), Key: o.Key})
		if err != nil {
			t.Fatal(err)
		}
		var body bytes.Buffer
		body.ReadFrom(obj.Body)
		obj.Body.Close()
		landed[table] += int64(strings.Count(body.String(), "\n"))
		objects++
	}
	if diff := cmp.Diff(landed, res.Landed); diff != "" {
		t.Errorf("records in S3 (-files +result):\n%s", diff)
	}
	if objects != res.Objects || objects < 2*len(transforms.Tables) {
		t.Errorf("%d objects in S3, the result says %d; want several a topic", objects, res.Objects)
	}

	// The streaming job's files: every line is a clean row.
	stream := map[string]int64{}
	files := 0
	err = filepath.WalkDir(filepath.Join(res.Dir, "stream"), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(filepath.Join(res.Dir, "stream"), path)
		stream[strings.Split(rel, string(filepath.Separator))[0]] += int64(bytes.Count(b, []byte("\n")))
		files++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(stream, res.Stream); diff != "" || files != res.StreamFiles {
		t.Errorf("streaming job's rows (-files +result):\n%s\nfiles %d, result %d", diff, files, res.StreamFiles)
	}

	// The batch job's summary and insights.
	sum, err := batch.ReadSummary(ctx, filepath.Join(res.Dir, "batch"))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(sum, res.Batch); diff != "" {
		t.Errorf("batch summary (-summary.json +result):\n%s", diff)
	}
	var rejected int64
	for _, table := range transforms.Tables {
		rejected += sum[table].Rejected
		if sum[table].Rows == 0 || sum[table].Read != landed[table] || sum[table].Clean != stream[table] {
			t.Errorf("%s: batch %+v, %d landed, %d streamed", table, sum[table], landed[table], stream[table])
		}
	}
	if rejected != int64(res.Malformed) {
		t.Errorf("%d records rejected, %d malformed ones sent", rejected, res.Malformed)
	}
	if len(res.Insights) != 8 {
		t.Fatalf("%d insights in the result, want 8", len(res.Insights))
	}
	for _, in := range res.Insights {
		b, err := os.ReadFile(filepath.Join(res.Dir, "batch", "insights", in.Name+".json"))
		if err != nil {
			t.Fatal(err)
		}
		var rows []map[string]any
		if err := json.Unmarshal(b, &rows); err != nil {
			t.Fatal(err)
		}
		if len(rows) != in.Rows || len(rows) == 0 {
			t.Errorf("insight %s: %d rows in the file, %d in the result", in.Name, len(rows), in.Rows)
			continue
		}
		for k, v := range rows[0] {
			if !strings.Contains(in.First, k+"=") || !strings.Contains(in.First, strings.Trim(mustJSON(t, v), `"`)) {
				t.Errorf("insight %s: first row %v, the result says %q", in.Name, rows[0], in.First)
			}
		}
	}
	if fi, err := os.Stat(res.Report); err != nil || fi.Size() == 0 {
		t.Errorf("report: %v", err)
	}
}

// watchEnv watches the process's environment until the test ends; the
// function it returns stops watching and says how the environment differed
// from the start at any moment ("" when it never did).
func watchEnv(t *testing.T) func() string {
	start := strings.Join(os.Environ(), "\n")
	stop, done := make(chan struct{}), make(chan string, 1)
	go func() {
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				done <- ""
				return
			case <-tick.C:
				if now := strings.Join(os.Environ(), "\n"); now != start {
					done <- cmp.Diff(strings.Split(start, "\n"), strings.Split(now, "\n"))
					return
				}
			}
		}
	}()
	var once sync.Once
	var changed string
	finish := func() string {
		once.Do(func() { close(stop); changed = <-done })
		return changed
	}
	t.Cleanup(func() { finish() })
	return finish
}

func mustJSON(t *testing.T, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func hostPort(t *testing.T, u string) string {
	t.Helper()
	p, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	return p.Host
}

// TestUp starts the parts as pinpipe up does (with Kinesis when kinesalite
// is installed), sends posts through the gateway, waits for the sink to
// land them, and checks that the printed commands name the endpoints and
// that Close leaves nothing listening.
func TestUp(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the servers")
	}
	ctx := context.Background()
	o := SystemOptions{Dir: t.TempDir(), Logger: quietLogger()}
	_, statErr := os.Stat(filepath.Join(kinesalite.Dir(), "node_modules", "kinesalite", "package.json"))
	_, nodeErr := exec.LookPath("node")
	o.Kinesis = statErr == nil && nodeErr == nil
	if !o.Kinesis {
		t.Log("kinesalite or node missing: without Kinesis")
	}
	sys, err := Start(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	defer sys.Close()
	var out bytes.Buffer
	sys.Describe(&out, DescribeOptions{Bin: "bin/pinpipe", Postgres: "postgres://me@127.0.0.1:5432/db"})
	t.Logf("\n%s", out.String())
	wants := []string{sys.GatewayURL() + "/metrics", sys.Kafka.Addr(), sys.S3.URL(), "--sink=postgres://me@127.0.0.1:5432/db",
		"--warehouse=postgres://me@127.0.0.1:5432/db", "bin/pinpipe emulate --gateway=" + sys.GatewayURL(), "--input=s3://lake/raw"}
	if o.Kinesis {
		wants = append(wants, sys.KinesisURL(), "--target=kinesis", "--source=kinesis")
	}
	for _, want := range wants {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the description does not mention %q", want)
		}
	}
	targets := []string{emulator.TargetKafka}
	if o.Kinesis {
		targets = append(targets, emulator.TargetKinesis)
	}
	for _, target := range targets {
		sum, err := emulator.Run(ctx, emulator.Config{Gateway: sys.GatewayURL(), Target: target, TopicPrefix: "pinpipe", Count: 20,
			Concurrency: 4, Logger: quietLogger()})
		if err != nil || sum.Sent != 20 {
			t.Fatalf("emulating to %s: %v, %s", target, err, sum)
		}
	}
	if err := sys.WaitSinkCaughtUp(ctx, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	st, err := sys.StopSink()
	if err != nil || st.ObjectRecords != 60 {
		t.Errorf("sink: %+v, %v; want the 60 records written", st, err)
	}
	addrs := []string{sys.Kafka.Addr(), hostPort(t, sys.S3.URL()), hostPort(t, sys.GatewayURL())}
	if o.Kinesis {
		addrs = append(addrs, hostPort(t, sys.KinesisURL()))
	}
	if err := sys.Close(); err != nil {
		t.Fatal(err)
	}
	for _, ep := range addrs {
		if c, err := net.DialTimeout("tcp", ep, time.Second); err == nil {
			c.Close()
			t.Errorf("%s still accepts connections after Close", ep)
		}
	}
}

// A directory the demo did not make is never cleared.
func TestPrepareDirRefusesForeignDir(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "precious"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := prepareDir(dir); err == nil {
		t.Fatal("a foreign non-empty directory was accepted")
	}
	if _, err := os.Stat(filepath.Join(dir, "precious")); err != nil {
		t.Fatal("a foreign file was removed")
	}
	demo := filepath.Join(dir, "demo")
	for range 2 {
		if err := prepareDir(demo); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(demo, "old"), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if entries, _ := os.ReadDir(demo); len(entries) != 2 { // the marker and this round's "old"
		t.Errorf("the demo dir holds %d entries after a clear, want 2", len(entries))
	}
}

// A failed batch step is the child's own one-line error, not an exit
// status alone.
func TestRunBatchFailureSaysWhy(t *testing.T) {
	if testing.Short() {
		t.Skip("builds pinpipe")
	}
	missing := filepath.Join(t.TempDir(), "missing")
	err := runBatch(context.Background(), testenv.Pinpipe(t), nil, "--input="+missing, "--output="+filepath.Join(t.TempDir(), "out"))
	if err == nil {
		t.Fatal("a batch job over a missing input succeeded")
	}
	if msg := err.Error(); !strings.Contains(msg, "exit status 1") || !strings.Contains(msg, missing) || strings.Count(msg, "\n") > 0 {
		t.Errorf("the error does not say, in one line, why the child failed: %q", msg)
	}
}
