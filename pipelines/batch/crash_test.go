package batch

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/pinpipe/pinpipe/ingest/generate"
	"github.com/pinpipe/pinpipe/internal/testenv"
	"github.com/pinpipe/pinpipe/io/files"
)

// crashCase is one way of running the job that the crash test kills.
type crashCase struct {
	name        string
	format      string
	incremental bool
	s3          bool
	runner      string
}

// TestKilledRunLeavesPreviousCommit kills the real pinpipe batch process
// with SIGKILL at every crash point (a bucket file half written, every file
// written but nothing committed, just committed, all but the lease released)
// and after timed delays, for full and incremental runs, Parquet and JSON
// lines, local and S3. After each kill the output's commit must name the
// previous tables, complete and readable (or, killed after its commit, the
// new ones); the next run must then take over the dead run's lease and end
// with exactly what one uninterrupted run gives, leaving no file of the
// dead run behind.
func TestKilledRunLeavesPreviousCommit(t *testing.T) {
	bin := pinpipeToKill(t)
	for _, c := range []crashCase{
		{name: "full-parquet-local", format: FormatParquet, runner: "direct"},
		{name: "incremental-jsonl-local", format: FormatJSONL, incremental: true, runner: "prism"},
		{name: "incremental-parquet-s3", format: FormatParquet, incremental: true, s3: true, runner: "direct"},
		{name: "full-jsonl-s3", format: FormatJSONL, s3: true, runner: "direct"},
	} {
		t.Run(c.name, func(t *testing.T) { testCrashes(t, bin, c) })
	}
}

func testCrashes(t *testing.T, bin string, c crashCase) {
	var env []string
	root := t.TempDir()
	if c.s3 {
		srv := httptest.NewServer(gofakes3.New(s3mem.New(), gofakes3.WithAutoBucket(true)).Server())
		t.Cleanup(srv.Close)
		env = []string{"AWS_ENDPOINT_URL_S3=" + srv.URL, "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test", "AWS_REGION=us-east-1"}
		for _, kv := range env {
			k, v, _ := strings.Cut(kv, "=")
			t.Setenv(k, v)
		}
		root = "s3://lake/" + c.name
	}
	day1, both := twoDays(t, root)

	flags := []string{"--table-format=" + c.format, "--shards=2", "--runner=" + c.runner}
	if c.incremental {
		flags = append(flags, "--incremental")
	}
	runs := batchRuns{t: t, bin: bin, env: env, flags: flags}

	// What one uninterrupted run gives: the day-1 state and the final one.
	want1, want2 := files.Join(root, "want1"), files.Join(root, "want2")
	runs.mustRun(day1, want1)
	if c.incremental {
		runs.mustRun(day1, want2)
	}
	runs.mustRun(both, want2)
	before, after := committedSnapshot(t, want1), committedSnapshot(t, want2)

	kills := []kill{
		{point: crashTableWrite}, {point: crashBeforeCommit}, {point: crashAfterCommit}, {point: crashBeforeRelease},
		{delay: 700 * time.Millisecond},
	}
	for i, k := range kills {
		what := k.String()
		out := files.Join(root, fmt.Sprintf("out%d", i))
		runs.mustRun(day1, out)
		runs.killed(k, both, out)
		got := committedSnapshot(t, out)
		committed := cmp.Diff(after, got) == ""
		switch {
		case k.point == crashTableWrite || k.point == crashBeforeCommit:
			if diff := cmp.Diff(before, got); diff != "" {
				t.Errorf("%s: the commit no longer holds the previous run's output (-previous +now):\n%.2000s", what, diff)
			}
		case k.point == crashAfterCommit || k.point == crashBeforeRelease:
			if !committed {
				t.Errorf("%s: killed after the commit, but the commit is not the new run's", what)
			}
		default:
			if diff := cmp.Diff(before, got); diff != "" && !committed {
				t.Errorf("%s: the commit is neither the previous output nor the new one (-previous +now):\n%.2000s", what, diff)
			}
		}
		// The next run takes over the dead run's lease and finishes exactly.
		runs.mustRun(both, out)
		if diff := cmp.Diff(after, committedSnapshot(t, out)); diff != "" {
			t.Errorf("%s: the run after the kill differs from one uninterrupted run (-want +got):\n%.2000s", what, diff)
		}
		checkNoLeftovers(t, out)
	}
}

// pinpipeToKill skips a crash test in -short mode and otherwise builds
// pinpipe: the crash tests run it as processes of their own, to kill them.
func pinpipeToKill(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("runs the pinpipe binary many times")
	}
	return testenv.Pinpipe(t)
}

// batchRuns runs `pinpipe batch` with the same flags (and environment) as
// processes of their own, for the crash tests.
type batchRuns struct {
	t     *testing.T
	bin   string
	env   []string
	flags []string
}

func (b batchRuns) args(input, output string) []string {
	return append([]string{"batch", "--input=" + input, "--output=" + output}, b.flags...)
}

func (b batchRuns) start(input, output string, extraEnv ...string) *testenv.Proc {
	return testenv.Start(b.t, b.bin, append(slices.Clone(b.env), extraEnv...), b.args(input, output)...)
}

// wait waits for a run to end and returns how it did.
func (b batchRuns) wait(p *testenv.Proc) error {
	testenv.WaitFor(b.t, 3*time.Minute, p.Name+" to end", func() bool { done, _ := p.Exited(); return done })
	_, err := p.Exited()
	return err
}

// mustRun runs one to its end, failing the test if it fails.
func (b batchRuns) mustRun(input, output string) {
	b.t.Helper()
	p := b.start(input, output)
	if err := b.wait(p); err != nil {
		b.t.Fatalf("pinpipe %v: %v\n%s", b.args(input, output), err, p.Stderr())
	}
}

// kill is when a crash test kills a run: at a crash point (the run kills
// itself there, see crashEnv) or after a delay.
type kill struct {
	point string
	delay time.Duration
}

func (k kill) String() string {
	if k.point != "" {
		return k.point
	}
	return "after " + k.delay.String()
}

// killed starts a run and has it killed as k says; it fails the test when
// the run was not killed at its crash point.
func (b batchRuns) killed(k kill, input, output string) {
	b.t.Helper()
	var p *testenv.Proc
	if k.point != "" {
		p = b.start(input, output, crashEnv+"="+k.point)
	} else {
		p = b.start(input, output)
		time.Sleep(k.delay)
		p.Kill()
	}
	err := b.wait(p)
	if k.point != "" && (err == nil || !strings.Contains(err.Error(), "killed")) {
		b.t.Fatalf("%s: the run was not killed at its crash point: %v\n%s", k, err, p.Stderr())
	}
}

// twoDays generates the crash tests' input under root: day1 holds the first
// day's posts, both holds them and the second day's, which re-sends inds
// 2000-2499.
func twoDays(t *testing.T, root string) (day1, both string) {
	t.Helper()
	day1, both = files.Join(root, "day1"), files.Join(root, "both")
	gen := func(out string, first int64, posts, partition int, seed uint64) {
		o := generate.Defaults()
		o.Out, o.Posts, o.FirstInd, o.FirstPartition, o.Seed, o.FlushSize, o.MalformedRate = out, posts, first, partition, seed, 300, 0.01
		if _, err := generate.Write(context.Background(), o); err != nil {
			t.Fatal(err)
		}
	}
	gen(day1, 0, 2500, 0, 1)
	gen(both, 0, 2500, 0, 1)
	gen(both, 2000, 2500, 3, 2)
	return day1, both
}

// checkNoLeftovers fails when the output holds files its commit does not
// name, or temp files, or a lease, after a successful run.
func checkNoLeftovers(t *testing.T, out string) {
	t.Helper()
	ctx := context.Background()
	c, err := ReadCommit(ctx, out)
	if err != nil || c == nil {
		t.Fatalf("no commit in %s: %v", out, err)
	}
	keep := map[string]bool{}
	for _, f := range append(c.Tables, c.DeadLetters...) {
		keep[f.Path] = true
	}
	for _, g := range []string{files.Join(out, TablesDir, "*", "*"), files.Join(out, DeadLetterDir, "*"), files.Join(out, "_temp", "*", "*"), files.Join(out, LockFile)} {
		names, err := files.Expand(ctx, g)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range names {
			if !keep[n] {
				t.Errorf("%s is left in the output after a successful run", n)
			}
		}
	}
}

// TestSecondRunRefuses: while a run holds an output's lease, a second run
// on the same output refuses with a message naming the holder, and changes
// nothing; the first then finishes normally.
func TestSecondRunRefuses(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the pinpipe binary")
	}
	bin := testenv.Pinpipe(t)
	out := t.TempDir()
	args := []string{"batch", "--input=" + sampleDir, "--output=" + out, "--table-format=jsonl", "--runner=direct"}
	// Hold the first run still, holding its lease, while the second tries.
	// The sample is small: a run may take its lease and finish between two
	// looks at the lock file, so try again (on an emptied output) until
	// the run is stopped with the lock file there.
	var first *testenv.Proc
	for attempt := 1; ; attempt++ {
		first = testenv.Start(t, bin, nil, args...)
		testenv.WaitFor(t, time.Minute, "the first run to take the lease or end", func() bool {
			_, err := os.Stat(filepath.Join(out, LockFile))
			done, _ := first.Exited()
			return err == nil || done
		})
		first.Signal(syscall.SIGSTOP, 0)
		_, err := os.Stat(filepath.Join(out, LockFile))
		if done, _ := first.Exited(); !done && err == nil {
			break
		}
		if attempt == 20 {
			t.Fatal("the first run never held its lease long enough to be stopped with it")
		}
		first.Signal(syscall.SIGCONT, 0)
		testenv.WaitFor(t, time.Minute, "the first run to end", func() bool { done, _ := first.Exited(); return done })
		if err := os.RemoveAll(out); err != nil {
			t.Fatal(err)
		}
	}
	second := testenv.Start(t, bin, nil, args...)
	testenv.WaitFor(t, time.Minute, "the second run to end", func() bool { done, _ := second.Exited(); return done })
	if _, err := second.Exited(); err == nil {
		t.Fatal("a second run on a leased output succeeded")
	}
	if msg := second.Stderr(); !strings.Contains(msg, "is being written by run") || !strings.Contains(msg, fmt.Sprintf("pid %d", first.PID())) {
		t.Errorf("the second run's refusal does not name the holder:\n%s", msg)
	}
	first.Signal(syscall.SIGCONT, 0)
	testenv.WaitFor(t, 2*time.Minute, "the first run to end", func() bool { done, _ := first.Exited(); return done })
	if _, err := first.Exited(); err != nil {
		t.Fatalf("the first run failed after the second was refused: %v\n%s", err, first.Stderr())
	}
	compareGolden(t, snapshot(t, out))
	checkNoLeftovers(t, out)
}

// TestKilledOnJobServer runs the job on a prism job server whose workers
// are separate processes started by Beam's boot program (as on Flink), and
// kills the launcher, the job server and the workers' process group
// together with SIGKILL: once when a worker has half written a bucket file,
// and once after a delay. The previous commit must stay whole, and a new job
// server and launcher must finish with exactly one uninterrupted run's
// result, so no part of the guarantee lives in one process.
func TestKilledOnJobServer(t *testing.T) {
	if testing.Short() {
		t.Skip("builds prism, Beam's boot program and pinpipe")
	}
	bin := testenv.Pinpipe(t)
	env := testenv.ProcessEnvironment(t)
	root := t.TempDir()
	day1, both := twoDays(t, root)

	// run starts a job server (its workers' environment extended by
	// workerEnv) and a launcher, and returns both.
	run := func(input, output string, workerEnv ...string) (*testenv.JobServer, *testenv.Proc) {
		js := testenv.StartPrismJobServer(t, workerEnv)
		p := testenv.Start(t, bin, nil, "batch", "--input="+input, "--output="+output, "--table-format=parquet", "--shards=2", "--incremental",
			"--runner=universal", "--endpoint="+js.Endpoint, "--environment_type=PROCESS", "--environment_config="+env, "--worker_binary="+bin)
		return js, p
	}
	finish := func(input, output string) {
		t.Helper()
		js, p := run(input, output)
		testenv.WaitFor(t, 4*time.Minute, "the launcher to end", func() bool { done, _ := p.Exited(); return done })
		if _, err := p.Exited(); err != nil {
			t.Fatalf("batch on the job server: %v\n%s", err, p.Stderr())
		}
		js.KillGroup()
	}
	want1, want2 := filepath.Join(root, "want1"), filepath.Join(root, "want2")
	finish(day1, want1)
	finish(day1, want2)
	finish(both, want2)
	before, after := committedSnapshot(t, want1), committedSnapshot(t, want2)

	for i, k := range []struct {
		what  string
		env   []string
		delay time.Duration
	}{
		{what: "a worker killed mid-write", env: []string{crashEnv + "=" + crashTableWrite}},
		{what: "all killed after 2s", delay: 2 * time.Second},
	} {
		out := filepath.Join(root, fmt.Sprintf("out%d", i))
		finish(day1, out)
		js, p := run(both, out, k.env...)
		if k.delay > 0 {
			time.Sleep(k.delay)
		} else {
			// The worker killed itself; the job fails and the launcher ends.
			testenv.WaitFor(t, 4*time.Minute, "the launcher to see the worker die", func() bool { done, _ := p.Exited(); return done })
			if _, err := p.Exited(); err == nil {
				t.Fatalf("%s: the run succeeded", k.what)
			}
		}
		p.Kill()
		js.KillGroup()
		got := committedSnapshot(t, out)
		if diff := cmp.Diff(before, got); diff != "" && cmp.Diff(after, got) != "" {
			t.Errorf("%s: the commit is neither the previous output nor the new one (-previous +now):\n%.2000s", k.what, diff)
		}
		if k.delay == 0 && cmp.Diff(before, got) != "" {
			t.Errorf("%s: a run that failed mid-write changed the commit", k.what)
		}
		finish(both, out)
		if diff := cmp.Diff(after, committedSnapshot(t, out)); diff != "" {
			t.Errorf("%s: the run after the kill differs from one uninterrupted run (-want +got):\n%.2000s", k.what, diff)
		}
		checkNoLeftovers(t, out)
	}
}
