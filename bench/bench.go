package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/pinpipe/pinpipe/transforms"
)

// engine is one measured run.
type engine struct {
	name string
	// step is "clean" (clean-only) or "full" (clean, dedup, join, insights,
	// write).
	step string
	desc string
	// cmd returns the child's command line; out is its output directory,
	// res the file a bench child writes its result to.
	cmd func(b *bench, out, res string) []string
	// pinpipe is true for the pinpipe binary, whose result is summary.json.
	pinpipe bool
	// optional engines run only when named in -engines.
	optional bool
}

func selfCmd(mode string, extra ...string) func(b *bench, out, res string) []string {
	return func(b *bench, out, res string) []string {
		args := []string{b.self, "-child=" + mode, "-input=" + b.data, "-output=" + out, "-result=" + res,
			"-format=" + *format, fmt.Sprintf("-shards=%d", *shards)}
		return append(args, extra...)
	}
}

// pinpipeCmd runs the built pinpipe batch job; tableFormat, when given,
// replaces -format (the iceberg engine: the same job, its tables published
// as Iceberg tables in a SQLite catalog under its output).
func pinpipeCmd(runner, tableFormat string) func(b *bench, out, res string) []string {
	return func(b *bench, out, _ string) []string {
		return []string{b.pinpipe, "batch", "--input=" + b.data, "--output=" + out, "--runner=" + runner,
			"--table-format=" + cmp.Or(tableFormat, *format), fmt.Sprintf("--shards=%d", *shards)}
	}
}

var allEngines = []engine{
	{name: "go-clean", step: "clean", desc: "plain Go, transforms.Clean*Record on a goroutine per core, rows counted", cmd: selfCmd("go-clean")},
	{name: "duckdb-clean", step: "clean", desc: "DuckDB: read_csv lines + json_transform, the contract's rejects counted by reason, cleaning SQL into in-memory tables", cmd: selfCmd("duckdb-clean")},
	{name: "beam-clean-prism", step: "clean", desc: "Beam on prism: files.ReadLines + transforms.Clean* + counting sink", cmd: selfCmd("beam-clean", "--runner=prism")},
	{name: "beam-cleanfiles-prism", step: "clean", desc: "Beam on prism: files.MatchFiles + batch.CleanToRuns (the batch job's clean stage: rows sorted into runs on disk) + counting sink", cmd: selfCmd("beam-cleanfiles", "--runner=prism")},
	{name: "beam-clean-direct", step: "clean", desc: "Beam on direct: files.ReadLines + transforms.Clean* + counting sink", cmd: selfCmd("beam-clean", "--runner=direct"), optional: true},
	{name: "go-full", step: "full", desc: "plain Go, the batch job's sort-merge-bucket code without Beam: batch.RunCleaner, MergeBucket, MergeFacts; tables + insights written", cmd: selfCmd("go-full")},
	{name: "duckdb-full", step: "full", desc: "DuckDB: clean (rejects counted), dead letters, the smallest row per ind, COPY tables, eight insight queries", cmd: selfCmd("duckdb-full")},
	{name: "beam-prism", step: "full", desc: "pinpipe batch --runner=prism (the built binary)", cmd: pinpipeCmd("prism", ""), pinpipe: true},
	{name: "beam-direct", step: "full", desc: "pinpipe batch --runner=direct (the built binary)", cmd: pinpipeCmd("direct", ""), pinpipe: true},
	{name: "beam-prism-iceberg", step: "full", desc: "pinpipe batch --runner=prism --table-format=iceberg (the built binary; tables published to a SQLite catalog)",
		cmd: pinpipeCmd("prism", "iceberg"), pinpipe: true, optional: true},
}

func engineNames() string {
	var names []string
	for _, e := range allEngines {
		n := e.name
		if e.optional {
			n += " (optional)"
		}
		names = append(names, n)
	}
	return strings.Join(names, ", ")
}

// run is one engine's measurement.
type run struct {
	engine
	Wall    time.Duration
	MaxRSS  int64 // bytes
	CPU     time.Duration
	Err     error
	Counts  map[string]tableCounts
	Phases  []phase
	Out     string
	Log     string
	Records int64 // input records, for the rate
	// LoadBefore and LoadAfter are the 1-minute load average when the run
	// started (after any wait for a quiet machine) and ended; Waited is how
	// long it waited for the load to drop.
	LoadBefore, LoadAfter string
	Waited                time.Duration
	// OtherCPU is the CPU time the machine spent on other processes during
	// the run: all busy CPU time (/proc/stat) less the child's.
	OtherCPU time.Duration
	// Tries are all the runs of the engine, with -repeat and -busy-retry;
	// this one is the fastest of the quiet ones.
	Tries []*run
}

func (r *run) rate() float64 { return float64(r.Records) / r.Wall.Seconds() }

// otherCores is the other processes' average CPU use during the run, in
// cores.
func (r *run) otherCores() float64 {
	if r.Wall <= 0 {
		return 0
	}
	return max(0, r.OtherCPU.Seconds()/r.Wall.Seconds())
}

// busyCores is how much CPU other processes may use during a run, on
// average, before the run counts as disturbed.
const busyCores = 0.25

func (r *run) busy() bool { return r.otherCores() > busyCores }

// quietLoad is the 1-minute load average above which the machine is not
// quiet enough to start a run: 0.85 per core (1.7 on 2 cores).
func quietLoad() float64 { return 0.85 * float64(runtime.NumCPU()) }

// suite is what the sizes of one harness run share.
type suite struct {
	root    string // the repository root (the parent of bench/)
	work    string
	self    string
	pinpipe string
	started time.Time
	git     string // the repository state pinpipe was built from
	sizes   []*bench
}

// bench is one input size of a harness run.
type bench struct {
	*suite
	posts int
	data  string
	input inputStats
	runs  []*run
	load  string
}

type inputStats struct {
	Files   int
	Bytes   int64
	Records map[string]int64
	Total   int64
	GenLine string
}

func runBench(ctx context.Context) error {
	s := &suite{started: time.Now()}
	var err error
	if s.work, err = filepath.Abs(*workDir); err != nil {
		return err
	}
	if s.root, err = filepath.Abs(".."); err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(s.root, "cmd", "pinpipe")); err != nil {
		return fmt.Errorf("run the benchmark from bench/ (no ../cmd/pinpipe): %w", err)
	}
	if s.self, err = os.Executable(); err != nil {
		return err
	}
	selected, err := selectEngines(*engines)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(s.work, 0o755); err != nil {
		return err
	}
	if err := s.buildPinpipe(ctx); err != nil {
		return err
	}
	sizes := []int(*posts)
	name := *results
	if name == "" {
		name = filepath.Join(s.work, fmt.Sprintf("RESULTS-%s.md", sizesName(sizes)))
		if slices.Max(sizes) >= 1_000_000 {
			name = "RESULTS.md"
		}
	}
	for _, n := range sizes {
		b := &bench{suite: s, posts: n}
		s.sizes = append(s.sizes, b)
		if err := b.runSize(ctx, selected); err != nil {
			return err
		}
		// Write what there is after every size: a 10M run takes long.
		if err := s.writeResults(name); err != nil {
			return err
		}
	}
	fmt.Printf("\nwrote %s and %s\n", name, svgName(name))
	return nil
}

// runSize generates (or reuses) the input of one size and runs every
// engine on it.
func (b *bench) runSize(ctx context.Context, selected []engine) error {
	if err := b.generate(ctx); err != nil {
		return err
	}
	if err := b.warm(); err != nil {
		return err
	}
	b.load = loadAvg()
	fmt.Printf("input: %d posts, %d records (pin %d, geo %d, user %d) in %d files, %.0f MiB; load average before: %s\n\n",
		b.posts, b.input.Total, b.input.Records["pin"], b.input.Records["geo"], b.input.Records["user"],
		b.input.Files, float64(b.input.Bytes)/(1<<20), b.load)

	for _, e := range selected {
		if err := ctx.Err(); err != nil {
			return err
		}
		var tries []*run
		for i := 0; i < max(1, *repeat); i++ {
			t := b.measure(ctx, e)
			tries = append(tries, t)
			if t.Err == nil && t.busy() && *busyRetry && i == max(1, *repeat)-1 && !slices.ContainsFunc(tries, func(t *run) bool { return t.Err == nil && !t.busy() }) {
				fmt.Printf("%-22s other processes used %.2f cores during the run: running it once more\n", e.name, t.otherCores())
				tries = append(tries, b.measure(ctx, e))
			}
		}
		r := bestRun(tries)
		r.Tries = tries
		b.runs = append(b.runs, r)
		if r.Err != nil {
			fmt.Printf("%-22s FAILED after %s: %v (log: %s)\n", r.name, r.Wall.Round(time.Millisecond), r.Err, r.Log)
			continue
		}
		fmt.Printf("%-22s %8.2f s  %12.0f rec/s  %8.0f MiB peak RSS  %7.1f s CPU  load %s before  other processes %.2f cores\n",
			r.name, r.Wall.Seconds(), r.rate(), mib(r.MaxRSS), r.CPU.Seconds(), r.LoadBefore, r.otherCores())
	}
	if *profile {
		if err := b.profileBeam(ctx); err != nil {
			fmt.Printf("profiling failed: %v\n", err)
		}
	}
	fmt.Println()
	fmt.Print(b.text())
	return nil
}

// bestRun is the run to report of an engine's tries: a successful one over a
// failed one, a quiet one over a disturbed one, then the fastest.
func bestRun(tries []*run) *run {
	var best *run
	better := func(t, r *run) bool {
		if (t.Err == nil) != (r.Err == nil) {
			return t.Err == nil
		}
		if t.busy() != r.busy() {
			return !t.busy()
		}
		return t.Wall < r.Wall
	}
	for _, t := range tries {
		if best == nil || better(t, best) {
			best = t
		}
	}
	return best
}

// waitQuiet waits, up to -load-wait, for the 1-minute load average to drop
// to quietLoad (the previous engine's run is in it too), and returns the load
// at the end and how long it waited.
func waitQuiet(ctx context.Context, name string) (string, time.Duration) {
	start := time.Now()
	warned := false
	for {
		l := loadAvg()
		f, _, _ := strings.Cut(l, " ")
		load, err := strconv.ParseFloat(f, 64)
		if err != nil || load <= quietLoad() {
			return f, time.Since(start)
		}
		if time.Since(start) >= *loadWait || ctx.Err() != nil {
			fmt.Printf("%-22s WARNING: 1-minute load average %s still above %.2f after %s: running anyway\n",
				name, f, quietLoad(), time.Since(start).Round(time.Second))
			return f, time.Since(start)
		}
		if !warned {
			fmt.Printf("%-22s 1-minute load average %s above %.2f: waiting up to %s for a quiet machine\n", name, f, quietLoad(), *loadWait)
			warned = true
		}
		select {
		case <-ctx.Done():
		case <-time.After(5 * time.Second):
		}
	}
}

func selectEngines(list string) ([]engine, error) {
	if list == "all" || list == "" {
		var out []engine
		for _, e := range allEngines {
			if !e.optional {
				out = append(out, e)
			}
		}
		return out, nil
	}
	var out []engine
	for _, n := range strings.Split(list, ",") {
		n = strings.TrimSpace(n)
		i := slices.IndexFunc(allEngines, func(e engine) bool { return e.name == n })
		if i < 0 {
			return nil, fmt.Errorf("unknown engine %q; known: %s", n, engineNames())
		}
		out = append(out, allEngines[i])
	}
	return out, nil
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// buildPinpipe builds the pinpipe binary from the repository, unless
// -pinpipe names one.
func (b *suite) buildPinpipe(ctx context.Context) error {
	if *pinpipe != "" {
		p, err := filepath.Abs(*pinpipe)
		b.pinpipe, b.git = p, "the binary given with -pinpipe"
		return err
	}
	b.git = gitState(b.root)
	b.pinpipe = filepath.Join(b.work, "pinpipe")
	fmt.Printf("building %s\n", b.pinpipe)
	cmd := exec.CommandContext(ctx, "go", "build", "-o", b.pinpipe, "./cmd/pinpipe")
	cmd.Dir = b.root
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("building pinpipe: %w", err)
	}
	return nil
}

// dataDir is where the input of a size goes.
func dataDir(work string, posts int, malformed float64) string {
	if malformed > 0 {
		return filepath.Join(work, fmt.Sprintf("data-%d-malformed-%s", posts, strconv.FormatFloat(malformed, 'g', -1, 64)))
	}
	return filepath.Join(work, fmt.Sprintf("data-%d", posts))
}

// generate writes the posts once into WORK/data-<posts>; a marker file says
// the data is complete and holds the generator's report. Later runs reuse
// it (at 10,000,000 posts it is about 6.6 GB).
func (b *bench) generate(ctx context.Context) error {
	b.data = dataDir(b.work, b.posts, *malformed)
	marker := filepath.Join(b.data, ".complete")
	if line, err := os.ReadFile(marker); err == nil {
		b.input.GenLine = strings.TrimSpace(string(line))
		fmt.Printf("reusing %s\n", b.data)
		return nil
	}
	if err := os.RemoveAll(b.data); err != nil {
		return err
	}
	fmt.Printf("generating %d posts into %s\n", b.posts, b.data)
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, b.pinpipe, "generate", fmt.Sprintf("--posts=%d", b.posts), "--out="+b.data,
		"--malformed-rate="+strconv.FormatFloat(*malformed, 'g', -1, 64))
	cmd.Stdout, cmd.Stderr = &out, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("generating: %w", err)
	}
	b.input.GenLine = strings.TrimSpace(out.String())
	return os.WriteFile(marker, out.Bytes(), 0o644)
}

// warm reads every input file once, counting its records, so that every
// engine reads from the page cache.
func (b *bench) warm() error {
	b.input.Records = map[string]int64{}
	for _, t := range transforms.Tables {
		names, err := inputFiles(b.data, t)
		if err != nil {
			return err
		}
		for _, n := range names {
			if fi, err := os.Stat(n); err == nil {
				b.input.Bytes += fi.Size()
			}
			b.input.Files++
			if err := eachLine(n, func([]byte) { b.input.Records[t]++ }); err != nil {
				return err
			}
		}
		b.input.Total += b.input.Records[t]
	}
	if b.input.Total == 0 {
		return fmt.Errorf("no input records under %s", b.data)
	}
	return nil
}

// measure runs one engine in a child process and reads its result.
func (b *bench) measure(ctx context.Context, e engine) *run {
	r := &run{engine: e, Records: b.input.Total}
	r.Out = filepath.Join(b.work, fmt.Sprintf("out-%d", b.posts), e.name)
	logDir := filepath.Join(b.work, fmt.Sprintf("logs-%d", b.posts))
	r.Log = filepath.Join(logDir, e.name+".log")
	res := filepath.Join(logDir, e.name+".result.json")
	if r.Err = os.RemoveAll(r.Out); r.Err != nil {
		return r
	}
	if r.Err = os.MkdirAll(logDir, 0o755); r.Err != nil {
		return r
	}
	os.Remove(res)
	logf, err := os.Create(r.Log)
	if err != nil {
		r.Err = err
		return r
	}
	defer logf.Close()

	args := e.cmd(b, r.Out, res)
	fmt.Fprintf(logf, "$ %s\n", strings.Join(args, " "))
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Dir = b.work
	cmd.Stdout, cmd.Stderr = logf, logf
	r.LoadBefore, r.Waited = waitQuiet(ctx, e.name)
	busy0 := machineBusyCPU()
	start := time.Now()
	err = cmd.Run()
	r.Wall = time.Since(start)
	busy := machineBusyCPU() - busy0
	r.LoadAfter, _, _ = strings.Cut(loadAvg(), " ")
	if cmd.ProcessState != nil {
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			r.MaxRSS = ru.Maxrss * 1024 // kilobytes on Linux
		}
		r.CPU = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	}
	if busy0 > 0 {
		r.OtherCPU = busy - r.CPU
	}
	if err != nil {
		r.Err = fmt.Errorf("%s: %w", args[0], err)
		return r
	}
	if e.pinpipe {
		r.Err = r.readSummary()
	} else {
		r.Err = r.readResult(res)
	}
	return r
}

func (r *run) readSummary() error {
	blob, err := os.ReadFile(filepath.Join(r.Out, "summary.json"))
	if err != nil {
		return err
	}
	var sum transforms.Summary
	if err := json.Unmarshal(blob, &sum); err != nil {
		return err
	}
	r.Counts = map[string]tableCounts{}
	for t, st := range sum {
		r.Counts[t] = tableCounts{Read: st.Read, Clean: st.Clean, Rows: st.Rows, Rejected: st.Rejected, RejectedBy: nonNil(st.RejectedBy)}
	}
	return nil
}

func (r *run) readResult(name string) error {
	blob, err := os.ReadFile(name)
	if err != nil {
		return fmt.Errorf("the child's result: %w", err)
	}
	var res childResult
	if err := json.Unmarshal(blob, &res); err != nil {
		return err
	}
	r.Counts, r.Phases = res.Tables, res.Phases
	return nil
}

// profileBeam runs the batch job in a child of this binary (the same
// pipeline, in process on prism) with CPU and heap profiles, and gctrace in
// its log. It is not part of the table.
func (b *bench) profileBeam(ctx context.Context) error {
	dir := filepath.Join(b.work, "profiles", strconv.Itoa(b.posts))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	out := filepath.Join(b.work, fmt.Sprintf("out-%d", b.posts), "beam-profile")
	os.RemoveAll(out)
	args := []string{"-child=beam-full", "-input=" + b.data, "-output=" + out, "-result=" + filepath.Join(dir, "result.json"),
		"-format=" + *format, fmt.Sprintf("-shards=%d", *shards), "--runner=prism",
		"-cpuprofile=" + filepath.Join(dir, "beam-prism.cpu.pprof"), "-memprofile=" + filepath.Join(dir, "beam-prism.allocs.pprof")}
	logf, err := os.Create(filepath.Join(dir, "beam-prism.log"))
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.CommandContext(ctx, b.self, args...)
	cmd.Env = append(os.Environ(), "GODEBUG=gctrace=1")
	cmd.Stdout, cmd.Stderr = logf, logf
	fmt.Printf("profiling the Beam batch job on prism into %s\n", dir)
	return cmd.Run()
}

// dirExists reports whether name is a directory.
func dirExists(name string) bool {
	fi, err := os.Stat(name)
	return err == nil && fi.IsDir()
}

// insightFiles lists the insight files of a full run.
func insightFiles(out string) map[string]string {
	m := map[string]string{}
	dir := filepath.Join(out, "insights")
	if !dirExists(dir) {
		return m
	}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".json") {
			m[strings.TrimSuffix(d.Name(), ".json")] = p
		}
		return nil
	})
	return m
}
