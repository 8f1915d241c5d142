package main

// The streaming benchmark (issue 4, item 6): end-to-end latency from the
// gateway's HTTP 200 for a record to its row being visible in PostgreSQL,
// through the streaming job (`pinpipe stream` on prism), at fixed post
// rates on Kafka (kfake) and on Kinesis (kinesalite), and the peak rate
// the whole path sustains. It writes STREAMING.md.
//
//	cd bench && go build -mod=mod -o work/bench . && ./work/bench streaming [flags]
//
// It is a subcommand of this binary, hooked in by this file's init
// function (which runs it and exits before main); `./work/bench streaming
// -help` lists its flags.

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

func init() {
	if len(os.Args) > 1 && os.Args[1] == "streaming" {
		if err := streamingMain(os.Args[2:]); err != nil {
			fmt.Fprintf(os.Stderr, "bench streaming: %v\n", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
}

// stOptions are the benchmark's flags.
type stOptions struct {
	sources, peakSources []string
	rates                []float64
	peakRates            map[string][]float64
	duration, warmup     time.Duration
	peakStep             time.Duration
	partitions, shards   int
	conns                int
	drainTimeout         time.Duration
	sendGrace            time.Duration
	out, work, pinpipe   string
	kinesaliteDir        string
	criteria             stCriteria
}

func streamingMain(args []string) error {
	fs := flag.NewFlagSet("bench streaming", flag.ContinueOnError)
	var o stOptions
	var sources, peakSources, rates, peakKafka, peakKinesis string
	fs.StringVar(&sources, "sources", "kafka,kinesis", "sources of the fixed-rate runs: kafka, kinesis or both")
	fs.StringVar(&rates, "rates", "100,1000", "posts a second of the fixed-rate runs (each post is three records)")
	fs.DurationVar(&o.duration, "duration", 60*time.Second, "measured length of each fixed-rate run")
	fs.DurationVar(&o.warmup, "warmup", 10*time.Second, "load at the run's rate before the measured part (after the job is seen live)")
	fs.StringVar(&peakSources, "peak-sources", "kafka,kinesis", "sources to search the peak rate of (empty: none)")
	fs.StringVar(&peakKafka, "peak-rates-kafka", "1000,1500,2000,2500,3000,3500,4000,5000", "post rates of the peak steps on Kafka, in increasing order; the search stops at the first step not sustained")
	fs.StringVar(&peakKinesis, "peak-rates-kinesis", "250,375,500,750,1000", "post rates of the peak steps on Kinesis")
	fs.DurationVar(&o.peakStep, "peak-step", 20*time.Second, "length of each peak step")
	fs.IntVar(&o.partitions, "partitions", 3, "partitions of each Kafka topic (created fresh for each run)")
	fs.IntVar(&o.shards, "shards", 0, "shards of each Kinesis stream (created fresh for each run); 0 sizes them to the run's highest rate at 80% of a shard's 1,000 records/s write limit")
	fs.IntVar(&o.conns, "conns", 256, "most keep-alive connections the sender uses")
	fs.DurationVar(&o.sendGrace, "send-grace", 20*time.Second, "requests still waiting for a connection this long after the last one was due are not sent (the run is then reported short of its rate)")
	fs.DurationVar(&o.drainTimeout, "drain-timeout", 30*time.Second, "after the load, how long to wait for rows while none new become visible")
	fs.Float64Var(&o.criteria.MaxSlope, "peak-max-slope", stDefaultCriteria.MaxSlope, "a step is not sustained when its median latency grows faster than this (seconds per second) after its first quarter")
	fs.DurationVar(&o.criteria.MaxLateP50, "peak-max-p50", stDefaultCriteria.MaxLateP50, "a step is not sustained when the median latency of its last quarter is above this")
	fs.StringVar(&o.out, "out", "STREAMING.md", "markdown file to write the results to")
	fs.StringVar(&o.work, "work", "work", "directory for the binaries, the PostgreSQL cluster and the logs")
	fs.StringVar(&o.pinpipe, "pinpipe", "", "pinpipe binary to run (default: build ../cmd/pinpipe into WORK)")
	kdir := os.Getenv("PINPIPE_KINESALITE_DIR")
	if kdir == "" {
		kdir = filepath.Join("..", ".cache", "kinesalite")
	}
	fs.StringVar(&o.kinesaliteDir, "kinesalite-dir", kdir, "where kinesalite is installed (scripts/kinesalite.sh install)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	var err error
	if o.sources, err = stSources(sources); err != nil {
		return fmt.Errorf("-sources: %w", err)
	}
	if o.peakSources, err = stSources(peakSources); err != nil {
		return fmt.Errorf("-peak-sources: %w", err)
	}
	if o.rates, err = stRates(rates); err != nil {
		return fmt.Errorf("-rates: %w", err)
	}
	o.peakRates = map[string][]float64{}
	for src, s := range map[string]string{"kafka": peakKafka, "kinesis": peakKinesis} {
		if o.peakRates[src], err = stRates(s); err != nil {
			return fmt.Errorf("-peak-rates-%s: %w", src, err)
		}
	}
	if o.duration <= 0 || o.warmup < 0 || o.peakStep <= 0 || o.partitions < 1 || o.shards < 0 || o.conns < 1 || o.drainTimeout <= 0 || o.sendGrace < 0 {
		return errors.New("-duration, -peak-step, -partitions, -conns and -drain-timeout must be positive, -warmup and -shards not negative")
	}
	o.criteria.MinRate, o.criteria.MaxLag = stDefaultCriteria.MinRate, stDefaultCriteria.MaxLag
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := stBench(ctx, o)
	if err != nil {
		return err
	}
	md := res.markdown(o)
	if err := os.WriteFile(o.out, []byte(md), 0o644); err != nil {
		return err
	}
	fmt.Print(md)
	stLog("wrote %s in %s", o.out, time.Since(res.started).Round(time.Second))
	return nil
}

func stSources(s string) ([]string, error) {
	var out []string
	for _, f := range strings.Split(s, ",") {
		switch f = strings.TrimSpace(f); f {
		case "":
		case "kafka", "kinesis":
			if !slices.Contains(out, f) {
				out = append(out, f)
			}
		default:
			return nil, fmt.Errorf("%q is neither kafka nor kinesis", f)
		}
	}
	return out, nil
}

func stRates(s string) ([]float64, error) {
	var out []float64
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		r, err := strconv.ParseFloat(f, 64)
		if err != nil || r <= 0 {
			return nil, fmt.Errorf("%q is not a positive rate", f)
		}
		out = append(out, r)
	}
	return out, nil
}

func stLog(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s bench streaming: "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

// stShards is the shard count of a stream that takes rate records a
// second: at most 80% of Kinesis's write limit of 1,000 records a second
// per shard (the records here are about 0.3 to 0.5 KiB, so the 1 MiB/s
// limit binds later).
func stShards(o stOptions, rate float64) int {
	if o.shards > 0 {
		return o.shards
	}
	return max(1, int(math.Ceil(rate/800)))
}

// stResults are everything the benchmark measured.
type stResults struct {
	started             time.Time
	loadBefore, loadEnd string
	pinpipe, pgVersion  string
	git                 string
	runs                []*stRun
	peaks               []*stPeakRun
	elapsed             time.Duration
}

func stBench(ctx context.Context, o stOptions) (*stResults, error) {
	r := &stResults{started: time.Now(), loadBefore: loadAvg()}
	root, err := filepath.Abs("..")
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(root, "cmd", "pinpipe")); err != nil {
		return nil, fmt.Errorf("run the benchmark from bench/ (no ../cmd/pinpipe): %w", err)
	}
	if err := os.MkdirAll(o.work, 0o755); err != nil {
		return nil, err
	}
	r.git = gitState(root)
	if o.pinpipe != "" {
		if r.pinpipe, err = filepath.Abs(o.pinpipe); err != nil {
			return nil, err
		}
		r.git = "the binary given with -pinpipe"
	} else {
		if r.pinpipe, err = filepath.Abs(filepath.Join(o.work, "pinpipe")); err != nil {
			return nil, err
		}
		stLog("building %s", r.pinpipe)
		cmd := exec.CommandContext(ctx, "go", "build", "-o", r.pinpipe, "./cmd/pinpipe")
		cmd.Dir, cmd.Stdout, cmd.Stderr = root, os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return nil, fmt.Errorf("building pinpipe: %w", err)
		}
	}
	e, err := stStartEnv(ctx, o, r.pinpipe)
	if err != nil {
		return nil, err
	}
	defer e.close()
	r.pgVersion = e.pg.version

	for _, src := range o.sources {
		for _, rate := range o.rates {
			run, err := e.latencyRun(ctx, src, rate)
			if err != nil {
				return nil, fmt.Errorf("%s at %.0f posts/s: %w", src, rate, err)
			}
			r.runs = append(r.runs, run)
		}
	}
	for _, src := range o.peakSources {
		pk, err := e.peakRun(ctx, src, o.peakRates[src])
		if err != nil {
			return nil, fmt.Errorf("peak on %s: %w", src, err)
		}
		r.peaks = append(r.peaks, pk)
	}
	r.loadEnd = loadAvg()
	r.elapsed = time.Since(r.started)
	return r, nil
}

// stJob is one streaming job with fresh topics or streams and a database
// of its own.
type stJob struct {
	e              *stEnv
	source, prefix string
	db             *pgx.Conn
	child          *stChild
	partitions     int
	shards         int
	started        time.Time
	live           time.Duration // from its start to a probe post seen end to end
	exit           string
}

func (j *stJob) target() stTarget {
	return stTarget{source: j.source, gateway: j.e.gatewayURL, prefix: j.prefix}
}

// stProbeBase is the first ind of the probe posts, far from the measured
// ones (which start at 0).
const stProbeBase = 900_000_000

// startJob creates the topics (or streams) and the database, starts the
// streaming job on them, and waits until a post goes through end to end.
func (e *stEnv) startJob(ctx context.Context, source, prefix string, maxRate float64) (*stJob, error) {
	j := &stJob{e: e, source: source, prefix: prefix}
	if err := e.pg.createDB(ctx, "b_"+prefix); err != nil {
		return nil, fmt.Errorf("creating the database: %w", err)
	}
	dsn := e.pg.dsn("b_" + prefix)
	args := []string{"stream", "--source=" + source, "--topic-prefix=" + prefix, "--sink=" + dsn, "--start=earliest"}
	var env []string
	switch source {
	case "kafka":
		j.partitions = e.o.partitions
		if err := stCreateTopics(ctx, e.kafkaAddr, prefix, j.partitions); err != nil {
			return nil, fmt.Errorf("creating the topics: %w", err)
		}
		args = append(args, "--kafka-brokers="+e.kafkaAddr, "--group=bench-"+prefix)
	case "kinesis":
		j.shards = stShards(e.o, maxRate)
		if err := e.createStreams(ctx, prefix, j.shards); err != nil {
			return nil, fmt.Errorf("creating the streams: %w", err)
		}
		env = e.awsEnv()
	}
	var err error
	if j.db, err = pgx.Connect(ctx, dsn); err != nil {
		return nil, err
	}
	name := "stream job"
	j.started = time.Now()
	if j.child, err = stStart(name, filepath.Join(e.logs, prefix+"-stream.log"), env, nil, "", e.pinpipe, args...); err != nil {
		return nil, err
	}
	e.mu.Lock()
	e.jobs[name] = j.child.pid()
	e.mu.Unlock()

	// Probe: one post at a time until one is visible in all three tables
	// within 2 s of its sending.
	t := j.target()
	deadline := time.Now().Add(3 * time.Minute)
	for i := int64(0); ; i++ {
		if time.Now().After(deadline) || ctx.Err() != nil {
			j.stop()
			return nil, fmt.Errorf("no probe post reached PostgreSQL within 3 minutes of the job's start (see %s)", filepath.Join(e.logs, prefix+"-stream.log"))
		}
		select {
		case <-j.child.done:
			return nil, fmt.Errorf("the streaming job exited: %v (see its log)", j.child.err)
		default:
		}
		ind := stProbeBase + i
		recs := stGenerator.Records(stGenerator.Post(ind))
		for _, table := range stTables {
			if err := stPost(e.http, t.method(), t.url(table), t.contentType(), t.body(table, ind, recs[table])); err != nil {
				return nil, fmt.Errorf("sending a probe record: %w", err)
			}
		}
		sent := time.Now()
		for time.Since(sent) < 2*time.Second {
			if n, _ := j.count(ctx, ind, ind+1); n == 3 {
				j.live = time.Since(j.started)
				stLog("%s: the job is live after %s (probe post %d of it seen in %s)", prefix, j.live.Round(10*time.Millisecond), i+1,
					time.Since(sent).Round(time.Millisecond))
				return j, nil
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// count is the number of rows with lo ≤ ind < hi in the three tables; a
// table the job has not created yet has none.
func (j *stJob) count(ctx context.Context, lo, hi int64) (int, error) {
	total := 0
	for _, table := range stTables {
		var n int
		err := j.db.QueryRow(ctx, "SELECT count(*) FROM "+table+"_stream WHERE ind >= $1 AND ind < $2", lo, hi).Scan(&n)
		if err != nil {
			return total, err
		}
		total += n
	}
	return total, nil
}

// waitRows waits until want rows with lo ≤ ind < hi are visible, or no
// new one has become visible for idle, or limit has passed. It returns
// when the last new row was seen.
func (j *stJob) waitRows(ctx context.Context, lo, hi int64, want int, idle, limit time.Duration) (int, time.Time) {
	start := time.Now()
	last, lastAt := -1, time.Now()
	for {
		n, err := j.count(ctx, lo, hi)
		if err == nil && n != last {
			last, lastAt = n, time.Now()
		}
		if n >= want || time.Since(lastAt) > idle || time.Since(start) > limit || ctx.Err() != nil {
			return n, lastAt
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// stCommit is when a row's transaction committed, and which transaction.
type stCommit struct {
	At   int64 // unix nanoseconds (PostgreSQL keeps microseconds)
	Xact int64
}

// commits reads the commit time of each row with lo ≤ ind < hi, by table
// (in stTables' order) and ind - lo.
func (j *stJob) commits(ctx context.Context, lo, hi int64) ([3][]stCommit, error) {
	var out [3][]stCommit
	for t, table := range stTables {
		out[t] = make([]stCommit, hi-lo)
		rows, err := j.db.Query(ctx, `SELECT ind, (extract(epoch FROM pg_xact_commit_timestamp(xmin)) * 1000000)::bigint,
			xmin::text::bigint FROM `+table+`_stream WHERE ind >= $1 AND ind < $2`, lo, hi)
		if err != nil {
			return out, err
		}
		for rows.Next() {
			var ind, us, x int64
			if err := rows.Scan(&ind, &us, &x); err != nil {
				rows.Close()
				return out, err
			}
			out[t][ind-lo] = stCommit{At: us * 1000, Xact: x}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return out, err
		}
	}
	return out, nil
}

// stop drains the job (SIGINT), killing it if it takes over 30 s.
func (j *stJob) stop() {
	start := time.Now()
	clean := j.child.stop(os.Interrupt, 30*time.Second)
	j.e.mu.Lock()
	delete(j.e.jobs, "stream job")
	j.e.mu.Unlock()
	switch {
	case !clean:
		j.exit = "killed: it had not drained 30 s after SIGINT"
	case j.child.err != nil:
		j.exit = fmt.Sprintf("drained in %s after SIGINT, exit: %v", time.Since(start).Round(100*time.Millisecond), j.child.err)
	default:
		j.exit = fmt.Sprintf("drained in %s after SIGINT, exit 0", time.Since(start).Round(100*time.Millisecond))
	}
	if j.db != nil {
		j.db.Close(context.Background())
	}
}

// stCreateTopics creates the three topics of prefix.
func stCreateTopics(ctx context.Context, brokers, prefix string, partitions int) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers))
	if err != nil {
		return err
	}
	defer cl.Close()
	var topics []string
	for _, t := range stTables {
		topics = append(topics, prefix+"."+t)
	}
	res, err := kadm.NewClient(cl).CreateTopics(ctx, int32(partitions), 1, nil, topics...)
	if err == nil {
		err = res.Error()
	}
	return err
}

// createStreams creates the three streams of prefix through the gateway
// and waits until they are active.
func (e *stEnv) createStreams(ctx context.Context, prefix string, shards int) error {
	for _, t := range stTables {
		name := "streaming-" + prefix + "-" + t
		if err := stPost(e.http, "POST", e.gatewayURL+"/streams/"+name, "application/json",
			[]byte(fmt.Sprintf(`{"ShardCount":%d}`, shards))); err != nil {
			return fmt.Errorf("creating %s: %w", name, err)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, t := range stTables {
		name := "streaming-" + prefix + "-" + t
		for {
			res, err := e.http.Get(e.gatewayURL + "/streams/" + name)
			if err != nil {
				return err
			}
			var d struct{ StreamDescription struct{ StreamStatus string } }
			err = json.NewDecoder(res.Body).Decode(&d)
			res.Body.Close()
			if err == nil && d.StreamDescription.StreamStatus == "ACTIVE" {
				break
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				return fmt.Errorf("%s not active within 30 s (status %q, %v)", name, d.StreamDescription.StreamStatus, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return nil
}
