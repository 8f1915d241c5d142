// Package demo runs the whole pinpipe system on loopback ports and one
// data directory, for `pinpipe demo` (what `make run` runs) and `pinpipe
// up`: Kafka (kfake), S3 (gofakes3), the gateway and the S3 sink (Start),
// and for the demo the streaming job on prism while the emulator posts
// through the gateway, then the batch job over what the sink landed (Run).
// Everything runs in the calling process but the batch job, which runs as
// `pinpipe batch` in a child process: Beam's S3 filesystem takes its
// settings from the environment only, and the child's environment is its
// own.
//
// Every number of a Run's Result is read back from what the parts wrote
// (Kafka's end offsets, the objects in S3, the streaming job's files, the
// batch job's summary.json and insights), and Run checks that they agree
// with each other, so that the summary a user sees is evidence, not a
// claim.
package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/pinpipe/pinpipe/ingest/emulator"
	"github.com/pinpipe/pinpipe/ingest/s3sink"
	"github.com/pinpipe/pinpipe/ingest/sourcedb"
	"github.com/pinpipe/pinpipe/io/drain"
	"github.com/pinpipe/pinpipe/io/kafkaio"
	"github.com/pinpipe/pinpipe/io/postgres"
	"github.com/pinpipe/pinpipe/pipelines/batch"
	"github.com/pinpipe/pinpipe/pipelines/streaming"
	"github.com/pinpipe/pinpipe/runners"
	"github.com/pinpipe/pinpipe/transforms"
)

// DefaultDir is the demo's data directory unless told otherwise.
const DefaultDir = "out/demo-system"

// Defaults of Options that `pinpipe demo` offers as flags, each the one
// home of its value.
const (
	DefaultPosts = 3000
	DefaultRate  = 1000 // posts per second
	DefaultSeed  = 1
)

// markerFile marks a directory as the demo's, so that clearing it at the
// start of a run can never delete a directory the user pointed at by
// mistake.
const markerFile = ".pinpipe-demo"

// Options configure a demo run. The zero value of each field means its
// default.
type Options struct {
	// Dir is the data directory (default DefaultDir). It is cleared at the
	// start; a non-empty directory that an earlier run did not make is
	// refused.
	Dir string
	// Posts is how many posts the emulator sends (default DefaultPosts),
	// picked at random from PostPool generated posts (default: as many as
	// pinpipe seed makes), so some are sent twice, as the original's users
	// did, and the batch job drops them as duplicates.
	Posts    int64
	PostPool int
	// Malformed is how many malformed records a buggy client sends besides
	// the posts, so that the dead-letter path shows (default Posts/200, at
	// least 4; negative: none).
	Malformed int
	// Seed picks and makes the posts (default DefaultSeed).
	Seed uint64
	// Rate (posts/s, default DefaultRate) and Concurrency (default 8) of the
	// emulator.
	Rate        float64
	Concurrency int
	// Sink, when set, is a PostgreSQL DSN the streaming job upserts into
	// too (pin_stream, geo_stream, user_stream, ...).
	Sink string
	// Window is the event-time window of the streaming job's files
	// (default 5 s, so that a short run spans several).
	Window time.Duration
	// Progress receives the emulator's progress line, rewritten in place:
	// give it a terminal only.
	Progress io.Writer
	// Log receives a line per step; nil: none.
	Log io.Writer
	// Logger gets the parts' logs (default slog.Default()).
	Logger *slog.Logger
	// Exe is the pinpipe binary the batch job runs as (`pinpipe batch`, a
	// child process), default this process's executable: the demo's
	// batch step is what a user runs.
	Exe string
}

func (o *Options) setDefaults() {
	if o.Dir == "" {
		o.Dir = DefaultDir
	}
	if o.Posts == 0 {
		o.Posts = DefaultPosts
	}
	if o.PostPool == 0 {
		o.PostPool = sourcedb.DefaultOptions().Posts
	}
	if o.Malformed == 0 {
		o.Malformed = max(int(o.Posts/200), 4)
	}
	o.Malformed = max(o.Malformed, 0)
	if o.Seed == 0 {
		o.Seed = DefaultSeed
	}
	if o.Rate == 0 {
		o.Rate = DefaultRate
	}
	if o.Concurrency == 0 {
		o.Concurrency = 8
	}
	if o.Window == 0 {
		o.Window = 5 * time.Second
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Exe == "" {
		o.Exe, _ = os.Executable()
	}
}

// Result is what a run did, every count read back from the parts' outputs.
// Per-table maps are keyed by table (pin, geo, user).
type Result struct {
	// Dir is the data directory; Endpoints where the parts listened (all
	// closed when Run returns).
	Dir       string
	Endpoints Endpoints
	// Runner is the runner the streaming job ran on.
	Runner string
	// Emulator is the emulator's own summary; Malformed the malformed
	// records sent besides.
	Emulator  emulator.Summary
	Malformed int
	// Kafka is the records each topic held after the emulation.
	Kafka map[string]int64
	// Sink is the S3 sink's own stats; Objects and Landed the objects under
	// SinkURL and the records (lines) they hold, per table.
	Sink    s3sink.Stats
	SinkURL string
	Objects int
	Landed  map[string]int64
	// StreamFiles and Stream are the streaming job's windowed files and the
	// clean rows (lines) they hold, per table; StreamWindows the windows.
	StreamFiles, StreamWindows int
	Stream                     map[string]int64
	// StreamDB is the rows in the streaming job's PostgreSQL tables (with
	// Options.Sink): pin_stream, geo_stream, user_stream, deadletter_stream.
	StreamDB map[string]int64
	// Batch is the batch job's summary.json; Insights the first row of each
	// insight file.
	Batch    transforms.Summary
	Insights []Insight
	// Paths of the outputs.
	StreamDir, BatchDir, Report string
	// Durations of the steps.
	Emulate, SinkWait, Drain, BatchTime, Total time.Duration
}

// Endpoints are the addresses of the parts.
type Endpoints struct {
	Kafka, S3, Gateway string
}

// Insight is one insight file's row count and first row (as key=value
// pairs, in the file's order).
type Insight struct {
	Name  string
	Rows  int
	First string
}

// Run runs the demo: it starts the parts, the streaming job, emulates,
// waits for the sink, drains the streaming job, runs the batch job, stops
// everything and returns what happened. It fails when the counts disagree
// (see Result.Check), returning the Result too.
//
// The streaming job is ended with a drain request of its own (io/drain's
// marker), so a process may run the demo more than once.
func Run(ctx context.Context, o Options) (res Result, err error) {
	o.setDefaults()
	began := time.Now()
	step := func(format string, args ...any) {
		fmt.Fprintf(o.Log, "%6.1fs  %s\n", time.Since(began).Seconds(), fmt.Sprintf(format, args...))
	}
	if o.Sink != "" {
		if err := postgres.Check(ctx, o.Sink); err != nil {
			return res, fmt.Errorf("demo: --sink: %w", err)
		}
	}
	if err := prepareDir(o.Dir); err != nil {
		return res, err
	}
	res.Dir = o.Dir
	res.StreamDir = filepath.Join(o.Dir, "stream")
	res.BatchDir = filepath.Join(o.Dir, "batch")
	res.Report = filepath.Join(res.BatchDir, batch.ReportFile)

	sys, err := Start(ctx, SystemOptions{Dir: o.Dir, Logger: o.Logger})
	if err != nil {
		return res, err
	}
	defer func() {
		if cerr := sys.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	res.Endpoints = Endpoints{Kafka: sys.Kafka.Addr(), S3: sys.S3.URL(), Gateway: sys.GatewayURL()}
	res.SinkURL = sys.SinkURL()
	step("started Kafka on %s, S3 on %s (bucket %s), the gateway on %s and the S3 sink into %s",
		res.Endpoints.Kafka, res.Endpoints.S3, sys.o.Bucket, res.Endpoints.Gateway, res.SinkURL)

	res.Runner = runners.ForUnbounded(runners.Runner())
	job, err := startStream(ctx, sys, res.StreamDir, res.Runner, o)
	if err != nil {
		return res, err
	}
	defer func() {
		if jerr := job.finish(90 * time.Second); jerr != nil && err == nil {
			err = jerr
		}
	}()
	step("started the streaming job on %s: Kafka topics → windowed files in %s%s", res.Runner, res.StreamDir,
		map[bool]string{true: " and PostgreSQL", false: ""}[o.Sink != ""])

	step("emulating %d posts through the gateway (%.0f posts/s, %d at once)", o.Posts, o.Rate, o.Concurrency)
	t := time.Now()
	res.Emulator, err = emulator.Run(ctx, emulator.Config{Posts: o.PostPool, Gateway: sys.GatewayURL(), Target: emulator.TargetKafka,
		TopicPrefix: sys.o.TopicPrefix, Rate: o.Rate, Count: o.Posts, Seed: o.Seed, Concurrency: o.Concurrency,
		Progress: o.Progress, Logger: o.Logger})
	res.Emulate = time.Since(t)
	if err != nil {
		if ctx.Err() != nil {
			return res, fmt.Errorf("demo: interrupted while emulating (%s); everything was stopped", res.Emulator)
		}
		return res, fmt.Errorf("demo: emulating: %w", err)
	}
	step("emulator: %s", res.Emulator)
	if res.Emulator.Failed > 0 {
		return res, fmt.Errorf("demo: %d of %d posts were not delivered whole", res.Emulator.Failed, res.Emulator.Posts)
	}
	if o.Malformed > 0 {
		if err := sendMalformed(ctx, sys.GatewayURL(), sys.o.TopicPrefix, o.Malformed); err != nil {
			return res, err
		}
		res.Malformed = o.Malformed
		step("a buggy client sent %d malformed records", o.Malformed)
	}

	t = time.Now()
	perTopic, _, err := sys.EndOffsets(ctx)
	if err != nil {
		return res, err
	}
	res.Kafka = byTable(perTopic, sys.o.TopicPrefix)
	if err := sys.WaitSinkCaughtUp(ctx, 60*time.Second); err != nil {
		return res, err
	}
	if res.Sink, err = sys.StopSink(); err != nil {
		return res, fmt.Errorf("demo: S3 sink: %w", err)
	}
	res.SinkWait = time.Since(t)
	step("the S3 sink landed %d records in %d objects and stopped", res.Sink.ObjectRecords, res.Sink.Objects)

	t = time.Now()
	step("draining the streaming job")
	if err := job.finish(90 * time.Second); err != nil {
		return res, err
	}
	res.Drain = time.Since(t)
	step("the streaming job finished")

	t = time.Now()
	step("running the batch job (%s batch) over %s into %s", filepath.Base(o.Exe), res.SinkURL, res.BatchDir)
	err = runBatch(ctx, o.Exe, sys.S3Env(), "--input="+res.SinkURL, "--topic-prefix="+sys.o.TopicPrefix,
		"--output="+res.BatchDir, "--shards=4", "--runner="+runners.Runner())
	res.BatchTime = time.Since(t)
	if err != nil {
		return res, err
	}
	if res.Batch, err = batch.ReadSummary(ctx, res.BatchDir); err != nil {
		return res, fmt.Errorf("demo: the batch job's summary: %w", err)
	}
	step("the batch job finished")

	if err := res.count(ctx, sys, o.Sink); err != nil {
		return res, err
	}
	res.Total = time.Since(began)
	return res, res.Check()
}

// streamJob is the streaming job running in a goroutine.
type streamJob struct {
	done     chan error
	cancel   context.CancelFunc
	drain    *drain.Marker
	finished bool
	err      error
}

func startStream(ctx context.Context, sys *System, dir, runner string, o Options) (*streamJob, error) {
	marker, err := drain.NewMarker()
	if err != nil {
		return nil, err
	}
	p, s := beam.NewPipelineWithRoot()
	// The topics exist already (Start made them): listing them once finds
	// every partition, and no re-listing outlives the drain.
	src := streaming.KafkaSource([]string{sys.Kafka.Addr()}, sys.o.TopicPrefix,
		kafkaio.ReadStart(kafkaio.StartEarliest), kafkaio.ReadDiscoveryInterval(0), kafkaio.ReadDrainMarker(marker.Path()))
	if err := streaming.Build(s, streaming.Options{Source: src, Files: dir, Sink: o.Sink, Window: o.Window}); err != nil {
		marker.Close()
		return nil, err
	}
	// Not the caller's context: an interrupted demo drains the job rather
	// than cancelling it, and cancels it only if the drain takes too long.
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	j := &streamJob{done: make(chan error, 1), cancel: cancel, drain: marker}
	go func() {
		_, err := runners.RunOn(rctx, runner, p)
		j.done <- err
	}()
	return j, nil
}

// finish drains the job and waits for it, up to timeout; then it cancels
// it. Later calls return the same.
func (j *streamJob) finish(timeout time.Duration) error {
	if j.finished {
		return j.err
	}
	j.finished = true
	defer j.drain.Close()
	if err := j.drain.Request(); err != nil {
		j.cancel()
		j.err = fmt.Errorf("demo: requesting the streaming job's drain: %w", err)
		return j.err
	}
	select {
	case err := <-j.done:
		if err != nil {
			j.err = fmt.Errorf("demo: streaming job: %w", err)
		}
	case <-time.After(timeout):
		j.cancel()
		j.err = fmt.Errorf("demo: the streaming job did not drain within %s (does io/kafkaio end a caught-up partition on its drain marker?); cancelled it", timeout)
		select {
		case <-j.done:
		case <-time.After(15 * time.Second):
		}
	}
	j.cancel()
	return j.err
}

// prepareDir empties dir for a run: a new or empty directory, or one an
// earlier run made (it has the marker file), never another.
func prepareDir(dir string) error {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return fmt.Errorf("demo: %w", err)
	case len(entries) > 0:
		if _, err := os.Stat(filepath.Join(dir, markerFile)); err != nil {
			return fmt.Errorf("demo: %s is not empty and not a pinpipe demo directory (it has no %s): "+
				"give a new or empty --dir, it is cleared at every run", dir, markerFile)
		}
		if err := os.RemoveAll(dir); err != nil {
			return fmt.Errorf("demo: clearing %s: %w", dir, err)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	return os.WriteFile(filepath.Join(dir, markerFile), []byte("made by pinpipe demo, which clears this directory at every run\n"), 0o644)
}

// batchStopWait is how long an interrupted demo gives its batch child to
// stop after SIGINT before killing it: the child's own --drain-timeout
// (30 s by default) and a little more.
const batchStopWait = 35 * time.Second

// runBatch runs the batch job as `exe batch args...`, a child process
// whose environment alone holds env: Beam's S3 filesystem configures its
// client from the environment only, and setting it in this process would
// change it under everything else the process runs. The child gets this
// process's environment but its PINPIPE_<FLAG> variables, so that args
// alone say what it does. Its output is kept; when it fails, its error line
// (or its last lines) is the error.
func runBatch(ctx context.Context, exe string, env map[string]string, args ...string) error {
	if exe == "" {
		return errors.New("demo: no pinpipe binary to run the batch job with (Options.Exe)")
	}
	cmd := exec.CommandContext(ctx, exe, append([]string{"batch", "--log-format=text"}, args...)...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PINPIPE_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	// Interrupted, the child stops as a user's Ctrl-C stops it.
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = batchStopWait
	var stderr bytes.Buffer
	cmd.Stdout = io.Discard
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("demo: the batch job (%s) failed: %w: %s", strings.Join(cmd.Args, " "), err, childError(stderr.String()))
	}
	return nil
}

// childError is what a failed `pinpipe batch` said: its failure line, the
// last it prints, or its last few lines when it died otherwise.
func childError(stderr string) string {
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	if msg, ok := strings.CutPrefix(lines[len(lines)-1], "pinpipe batch: "); ok {
		return msg
	}
	return strings.Join(lines[max(0, len(lines)-10):], "\n")
}

func byTable(perTopic map[string]int64, prefix string) map[string]int64 {
	out := map[string]int64{}
	for _, t := range transforms.Tables {
		out[t] = perTopic[emulator.TopicName(prefix, t)]
	}
	return out
}

// count reads the outputs back: the objects in S3, the streaming job's
// files (and tables), the insights.
func (r *Result) count(ctx context.Context, sys *System, sink string) error {
	var err error
	if r.Objects, r.Landed, err = countObjects(ctx, sys.S3Client(), sys.o.Bucket, sys.o.SinkPrefix+"/topics/", sys.o.TopicPrefix); err != nil {
		return err
	}
	if r.StreamFiles, r.StreamWindows, r.Stream, err = countStreamFiles(r.StreamDir); err != nil {
		return err
	}
	if sink != "" {
		if r.StreamDB, err = countStreamTables(ctx, sink); err != nil {
			return err
		}
	}
	r.Insights, err = readInsights(filepath.Join(r.BatchDir, batch.InsightsDir))
	return err
}

// countObjects counts the objects under prefix and their lines, per table.
func countObjects(ctx context.Context, c *s3.Client, bucket, prefix, topicPrefix string) (int, map[string]int64, error) {
	lines := map[string]int64{}
	objects := 0
	pages := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return 0, nil, fmt.Errorf("demo: listing s3://%s/%s: %w", bucket, prefix, err)
		}
		for _, o := range page.Contents {
			key := aws.ToString(o.Key)
			topic, _, _ := strings.Cut(strings.TrimPrefix(key, prefix), "/")
			table, ok := strings.CutPrefix(topic, topicPrefix+".")
			if !ok {
				continue
			}
			obj, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
			if err != nil {
				return 0, nil, fmt.Errorf("demo: reading s3://%s/%s: %w", bucket, key, err)
			}
			body, err := io.ReadAll(obj.Body)
			obj.Body.Close()
			if err != nil {
				return 0, nil, fmt.Errorf("demo: reading s3://%s/%s: %w", bucket, key, err)
			}
			lines[table] += countLines(body)
			objects++
		}
	}
	return objects, lines, nil
}

// countLines counts the non-blank lines of b.
func countLines(b []byte) int64 {
	var n int64
	for line := range bytes.Lines(b) {
		if len(bytes.TrimSpace(line)) > 0 {
			n++
		}
	}
	return n
}

// countStreamFiles counts the streaming job's files, windows and rows per
// table: dir/<table>/window=<start>/*.jsonl.
func countStreamFiles(dir string) (files, windows int, rows map[string]int64, err error) {
	rows = map[string]int64{}
	seen := map[string]bool{}
	for _, t := range transforms.Tables {
		names, err := filepath.Glob(filepath.Join(dir, t, "window=*", "*.jsonl"))
		if err != nil {
			return 0, 0, nil, err
		}
		for _, name := range names {
			b, err := os.ReadFile(name)
			if err != nil {
				return 0, 0, nil, fmt.Errorf("demo: %w", err)
			}
			rows[t] += countLines(b)
			files++
			seen[filepath.Base(filepath.Dir(name))] = true
		}
	}
	return files, len(seen), rows, nil
}

// countStreamTables counts the rows of the streaming job's PostgreSQL
// tables.
func countStreamTables(ctx context.Context, dsn string) (map[string]int64, error) {
	conn, err := postgres.Connect(ctx, dsn)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	out := map[string]int64{}
	for _, table := range []string{postgres.StreamPinTable, postgres.StreamGeoTable, postgres.StreamUserTable, postgres.StreamDeadLetterTable} {
		var n int64
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM "+table).Scan(&n); err != nil {
			return nil, fmt.Errorf("demo: counting %s: %w", table, err)
		}
		out[table] = n
	}
	return out, nil
}

// readInsights reads each insight file's row count and first row.
func readInsights(dir string) ([]Insight, error) {
	var in transforms.Insights
	var out []Insight
	for _, n := range in.Named() {
		b, err := os.ReadFile(filepath.Join(dir, n.Name+".json"))
		if err != nil {
			return nil, fmt.Errorf("demo: %w", err)
		}
		var rows []json.RawMessage
		if err := json.Unmarshal(b, &rows); err != nil {
			return nil, fmt.Errorf("demo: insight %s: %w", n.Name, err)
		}
		ins := Insight{Name: n.Name, Rows: len(rows)}
		if len(rows) > 0 {
			if ins.First, err = formatRow(rows[0]); err != nil {
				return nil, fmt.Errorf("demo: insight %s: %w", n.Name, err)
			}
		}
		out = append(out, ins)
	}
	return out, nil
}

// formatRow writes a flat JSON object as key=value pairs in its order.
func formatRow(raw json.RawMessage) (string, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return string(raw), nil
	}
	var parts []string
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			return "", err
		}
		var v any
		if err := dec.Decode(&v); err != nil {
			return "", err
		}
		val := fmt.Sprint(v)
		if s, ok := v.(string); ok && strings.ContainsAny(s, " =") {
			val = fmt.Sprintf("%q", s)
		}
		parts = append(parts, fmt.Sprintf("%v=%s", k, val))
	}
	return strings.Join(parts, " "), nil
}

// Check says whether the counts agree: the sink landed exactly what Kafka
// holds (it is exactly once), the batch job read exactly what landed, and
// the streaming job wrote a row for every record the batch job found clean
// (both clean the same records with the same transforms; only the batch job
// drops duplicates).
func (r *Result) Check() error {
	var errs []error
	if r.Emulator.Failed > 0 {
		errs = append(errs, fmt.Errorf("%d posts failed", r.Emulator.Failed))
	}
	var landed, rejected int64
	for _, t := range transforms.Tables {
		rejected += r.Batch[t].Rejected
		landed += r.Landed[t]
		if r.Landed[t] != r.Kafka[t] {
			errs = append(errs, fmt.Errorf("%s: %d records landed in S3, Kafka holds %d", t, r.Landed[t], r.Kafka[t]))
		}
		st := r.Batch[t]
		if st.Read != r.Landed[t] {
			errs = append(errs, fmt.Errorf("%s: the batch job read %d records, %d landed", t, st.Read, r.Landed[t]))
		}
		if r.Stream[t] != st.Clean {
			errs = append(errs, fmt.Errorf("%s: the streaming job wrote %d rows, the batch job found %d clean records", t, r.Stream[t], st.Clean))
		}
	}
	if rejected != int64(r.Malformed) {
		errs = append(errs, fmt.Errorf("the batch job rejected %d records, %d malformed ones were sent", rejected, r.Malformed))
	}
	if r.Sink.ObjectRecords != landed {
		errs = append(errs, fmt.Errorf("the sink says it wrote %d records, the objects hold %d", r.Sink.ObjectRecords, landed))
	}
	if len(errs) > 0 {
		return fmt.Errorf("demo: the counts disagree: %w", errors.Join(errs...))
	}
	return nil
}

// Print writes the summary a user reads.
func (r *Result) Print(w io.Writer) {
	sum := func(m map[string]int64) (n int64) {
		for _, v := range m {
			n += v
		}
		return n
	}
	perTable := func(m map[string]int64) string {
		var parts []string
		for _, t := range transforms.Tables {
			parts = append(parts, fmt.Sprintf("%s %d", t, m[t]))
		}
		return strings.Join(parts, ", ")
	}
	e := r.Emulator
	fmt.Fprintf(w, "\npinpipe demo: the whole system on loopback ports, data in %s\n\n", r.Dir)
	fmt.Fprintf(w, "posts sent        %d posts, %d records through the gateway in %s (%d retried, %d failed)\n",
		e.Sent, e.Records, e.Elapsed.Round(time.Millisecond), e.Retried, e.Failed)
	if r.Malformed > 0 {
		fmt.Fprintf(w, "                  and %d malformed records from a buggy client, for the dead letters\n", r.Malformed)
	}
	fmt.Fprintf(w, "in Kafka          %d records (%s)\n", sum(r.Kafka), perTable(r.Kafka))
	fmt.Fprintf(w, "landed in S3      %d records in %d objects under %s (%s)\n", sum(r.Landed), r.Objects, r.SinkURL, perTable(r.Landed))
	fmt.Fprintf(w, "streaming job     %d clean rows in %d files over %d windows, on %s (%s)\n",
		sum(r.Stream), r.StreamFiles, r.StreamWindows, r.Runner, perTable(r.Stream))
	if r.StreamDB != nil {
		keys := make([]string, 0, len(r.StreamDB))
		for k := range r.StreamDB {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var parts []string
		for _, k := range keys {
			parts = append(parts, fmt.Sprintf("%s %d", k, r.StreamDB[k]))
		}
		fmt.Fprintf(w, "  in PostgreSQL   %s (upserted by ind)\n", strings.Join(parts, ", "))
	}
	fmt.Fprintf(w, "\nbatch job over S3 %-9s %9s %9s %11s %9s\n", "read", "clean", "rejected", "duplicates", "rows")
	for _, t := range transforms.Tables {
		st := r.Batch[t]
		fmt.Fprintf(w, "  %-15s %9d %9d %9d %11d %9d\n", t, st.Read, st.Clean, st.Rejected, st.Duplicates, st.Rows)
	}
	fmt.Fprintf(w, "\ninsights (first row of each file)\n")
	for _, in := range r.Insights {
		first := in.First
		if in.Rows == 0 {
			first = "(empty)"
		}
		fmt.Fprintf(w, "  %-44s %4d rows  %s\n", in.Name, in.Rows, first)
	}
	abs := func(p string) string {
		if a, err := filepath.Abs(p); err == nil {
			return a
		}
		return p
	}
	fmt.Fprintf(w, "\nwhere everything is\n")
	fmt.Fprintf(w, "  report          %s\n", abs(r.Report))
	fmt.Fprintf(w, "  clean tables    %s\n", filepath.Join(r.BatchDir, batch.TablesDir)+"/{pin,geo,user}/ (Parquet)")
	fmt.Fprintf(w, "  insights        %s\n", filepath.Join(r.BatchDir, batch.InsightsDir)+"/*.json")
	fmt.Fprintf(w, "  dead letters    %s\n", filepath.Join(r.BatchDir, batch.DeadLetterDir)+"/")
	fmt.Fprintf(w, "  batch summary   %s\n", filepath.Join(r.BatchDir, batch.SummaryFile))
	fmt.Fprintf(w, "  streaming files %s\n", r.StreamDir+"/{pin,geo,user}/window=*/")
	fmt.Fprintf(w, "  S3 (gofakes3)   %s (bucket lake; serve it again: pinpipe dev s3 --data-dir=%s)\n",
		filepath.Join(r.Dir, "s3", "s3.db"), filepath.Join(r.Dir, "s3"))
	fmt.Fprintf(w, "  Kafka (kfake)   %s (pinpipe dev kafka --data-dir=%s)\n", filepath.Join(r.Dir, "kafka"), filepath.Join(r.Dir, "kafka"))
	fmt.Fprintf(w, "\ntook %s: emulation %s, sink %s, drain %s, batch %s\n", r.Total.Round(100*time.Millisecond),
		r.Emulate.Round(100*time.Millisecond), r.SinkWait.Round(100*time.Millisecond), r.Drain.Round(100*time.Millisecond),
		r.BatchTime.Round(100*time.Millisecond))
}
