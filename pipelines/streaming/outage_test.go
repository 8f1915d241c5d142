package streaming

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pinpipe/pinpipe/ingest/devserver/kafka"
	"github.com/pinpipe/pinpipe/ingest/emulator"
	"github.com/pinpipe/pinpipe/ingest/gateway"
	"github.com/pinpipe/pinpipe/internal/faultproxy"
	"github.com/pinpipe/pinpipe/internal/testenv"
	"github.com/pinpipe/pinpipe/io/postgres"
	"github.com/pinpipe/pinpipe/transforms"
)

// ownPostgres is a PostgreSQL server of the test's own (initdb and pg_ctl
// from /usr/lib/postgresql/*/bin), so that the test can stop and start it
// without disturbing the server the other tests share.
type ownPostgres struct {
	t        *testing.T
	bin, dir string
	port     int
	run      []string // runuser -u postgres -- when root: initdb refuses root
}

func startOwnPostgres(t *testing.T) *ownPostgres {
	t.Helper()
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(bins) == 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("no initdb in /usr/lib/postgresql/*/bin")
		}
		t.Skip("no initdb in /usr/lib/postgresql/*/bin (scripts/with-postgres.sh installs PostgreSQL)")
	}
	dir, err := os.MkdirTemp("", "pinpipe-outage-pg")
	if err != nil {
		t.Fatal(err)
	}
	p := &ownPostgres{t: t, bin: filepath.Dir(bins[len(bins)-1]), dir: dir, port: 20000 + rand.IntN(20000)}
	if os.Geteuid() == 0 {
		if out, err := exec.Command("chown", "postgres", dir).CombinedOutput(); err != nil {
			t.Fatalf("chown postgres %s: %v %s", dir, err, out)
		}
		p.run = []string{"runuser", "-u", "postgres", "--"}
	}
	p.cmd("initdb", "-D", dir+"/data", "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8")
	p.Start()
	t.Cleanup(func() {
		p.pgctl(false, "-m", "immediate", "stop")
		os.RemoveAll(dir)
	})
	return p
}

func (p *ownPostgres) cmd(name string, args ...string) error {
	argv := append(append(append([]string(nil), p.run...), filepath.Join(p.bin, name)), args...)
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %v\n%s", strings.Join(argv, " "), err, out)
	}
	return nil
}

func (p *ownPostgres) pgctl(must bool, args ...string) {
	err := p.cmd("pg_ctl", append([]string{"-D", p.dir + "/data", "-l", p.dir + "/log", "-w"}, args...)...)
	if err != nil && must {
		p.t.Fatal(err)
	}
}

// Start starts the server (again) on its port.
func (p *ownPostgres) Start() {
	p.pgctl(true, "-o", fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off", p.port, p.dir), "start")
}

// Stop stops it as an operator's restart does (fast: connections cut,
// transactions in progress rolled back).
func (p *ownPostgres) Stop() { p.pgctl(true, "-m", "fast", "stop") }

func (p *ownPostgres) DSN() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", p.port)
}

// streamOutage runs `pinpipe stream` from Kafka into the PostgreSQL at dsn
// while the emulator posts through the gateway, applies fault in
// mid-stream (it returns when the fault is over), waits for every post,
// drains the job and checks the tables and counts: each post one row of
// each table, each bad record one dead letter, each post once in its
// window's category count. broker is restarted by faults that need it.
type streamOutage struct {
	t *testing.T
	// kinesis, when set, is a fault proxy in front of kinesalite: the job
	// reads Kinesis through it instead of reading Kafka.
	kinesis *faultproxy.Proxy
	dsn     string
	broker  *kafka.Server
	opts    kafka.Options
	job     *testenv.Proc
	prefix  string
	window  time.Duration
	outcome faultproxy.Outcome
	start   func() *testenv.Proc
	// prismRestarts counts restarts after prism's own crash (see exited).
	prismRestarts int
}

// prismProgressRace marks a crash of prism v2.77.0 itself: a
// runner-executed stage (no SDK worker) whose bundle loop is scheduled
// late, on a loaded machine, sends a progress request to its nil worker
// (stage.Execute -> B.Progress -> W.sendInstruction on 0x0) and the job
// fails. It is not an outage's effect: runner stages touch no service.
// Its message names the panic and a stage with no environment (a runner
// transform); the stack is not always printed.
const prismProgressRace = "panic in stage.Execute bundle processing goroutine: runtime error: invalid memory address or nil pointer dereference"

// prismRunnerStage marks the crashed stage as runner-executed.
const prismRunnerStage = " envID: finalize:"

// exited reports the job's exit as an error, unless prism crashed as
// prismProgressRace says: then the job is restarted, as a supervisor
// would, from its durable positions (which is what this test then also
// checks), the restart logged and counted.
func (o *streamOutage) exited() error {
	done, err := o.job.Exited()
	if !done {
		return nil
	}
	if stderr := o.job.Stderr(); !strings.Contains(stderr, prismProgressRace) || !strings.Contains(stderr, prismRunnerStage) {
		return fmt.Errorf("%v\n%s", err, o.job.Stderr())
	}
	o.prismRestarts++
	o.t.Logf("prism crashed in a runner stage (%s: its race, not the outage's); restarting the job from its durable positions", prismProgressRace)
	o.job = o.start()
	return nil
}

func runStreamOutage(t *testing.T, name, dsn string, kinesisProxy *faultproxy.Proxy, fault func(o *streamOutage)) {
	if testing.Short() {
		t.Skip("builds and runs the pinpipe binary")
	}
	d := faultproxy.Duration(t)
	bin := testenv.Pinpipe(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	o := &streamOutage{t: t, dsn: dsn, prefix: "out", window: 2 * time.Second, kinesis: kinesisProxy,
		opts: kafka.Options{Listen: "127.0.0.1:0", DataDir: filepath.Join(t.TempDir(), "kafka"), Partitions: 3}}
	var kc *kinesis.Client
	if o.kinesis != nil {
		o.prefix = fmt.Sprintf("out%d", time.Now().UnixNano()%1e6)
		kc = testenv.KinesisClient(testenv.Kinesalite(t))
	}
	var err error
	if o.broker, err = kafka.Start(ctx, o.opts); err != nil {
		t.Fatal(err)
	}
	o.opts.Listen = o.broker.Addr()
	defer func() { o.broker.Close() }()
	kafkaClient, err := kgo.NewClient(kgo.SeedBrokers(o.broker.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer kafkaClient.Close()
	created, err := kadm.NewClient(kafkaClient).CreateTopics(ctx, 3, -1, nil, KafkaTopic(o.prefix, "pin"), KafkaTopic(o.prefix, "geo"), KafkaTopic(o.prefix, "user"))
	if err == nil {
		err = created.Error()
	}
	if err != nil {
		t.Fatal(err)
	}
	bad := [][]byte{[]byte(`{"index": "seven"}`), []byte(`not json at all`)}
	gatewayURL, target := "", emulator.TargetKafka
	if o.kinesis == nil {
		for _, v := range bad {
			if err := kafkaClient.ProduceSync(ctx, &kgo.Record{Topic: KafkaTopic(o.prefix, "pin"), Value: v}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		gw, err := gateway.New(gateway.Config{KafkaBrokers: []string{o.broker.Addr()}, TopicPrefix: o.prefix})
		if err != nil {
			t.Fatal(err)
		}
		defer gw.Close()
		srv := httptest.NewServer(gw)
		defer srv.Close()
		gatewayURL = srv.URL
	} else {
		// (Kinesis's bad records are other tests'; streamInds wants
		// every record's key.)
		bad = nil
		gatewayURL, target = kinesisGateway(t, kc, o.prefix), emulator.TargetKinesis
	}

	const rate = 40
	posts := rate * int((d + 25*time.Second).Seconds())
	sent := emulateInBackground(ctx, emulator.Config{Posts: posts, All: true, Seed: 5, Gateway: gatewayURL,
		Target: target, TopicPrefix: o.prefix, Rate: rate, Concurrency: 4,
		// A client that keeps retrying through the outage (the gateway
		// answers 503 while Kafka is down).
		MaxAttempts: 1000})
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	rows := func(table string) int {
		var n int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM "+table).Scan(&n); err != nil {
			if conn.IsClosed() {
				if c, err := pgx.Connect(ctx, dsn); err == nil {
					conn = c
				}
			}
			return -1
		}
		return n
	}
	defer func() { conn.Close(context.Background()) }()
	args := []string{"stream", "--topic-prefix=" + o.prefix, "--sink=" + dsn, "--start=committed", "--window=" + o.window.String()}
	o.start = func() *testenv.Proc {
		if o.kinesis == nil {
			return testenv.Start(t, bin, nil, append(args, "--source=kafka", "--kafka-brokers="+o.broker.Addr(), "--group=outage")...)
		}
		return testenv.Start(t, bin, kinesisJobEnv(o.kinesis.URL), append(args, "--source=kinesis")...)
	}
	o.job = o.start()
	testenv.WaitFor(t, 2*time.Minute, "the job's first rows", func() bool {
		if err := o.exited(); err != nil {
			t.Fatalf("the job exited: %v", err)
		}
		return rows(postgres.StreamPinTable) >= 2*rate && rows(postgres.CategoryPostsTable) > 0
	})
	select {
	case err := <-sent:
		t.Fatalf("the emulator finished (%v) before the outage began: not an outage mid-stream; send more", err)
	default:
	}
	o.outcome = faultproxy.Outcome{Fault: name, Duration: d}
	fault(o)
	faultEnd := time.Now()
	if err := o.exited(); err != nil {
		t.Fatalf("the job died in the outage: %v", err)
	}
	// Recovered: every post in the pin topic when the fault ended is a
	// row.
	var inds []int64
	if o.kinesis != nil {
		inds, _ = streamInds(t, kc, KinesisStream(o.prefix, "pin"))
	} else {
		for _, r := range readTopic(t, o.broker.Addr(), KafkaTopic(o.prefix, "pin")) {
			if pin, _, err := transforms.CleanPinRecord(r.Value); err == nil {
				inds = append(inds, pin.Ind)
			}
		}
	}
	testenv.WaitFor(t, 2*time.Minute, "the posts sent before the outage ended in the tables", func() bool {
		if err := o.exited(); err != nil {
			t.Fatalf("the job exited after the outage: %v", err)
		}
		var n int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM "+postgres.StreamPinTable+" WHERE ind = ANY($1)", inds).Scan(&n); err != nil {
			if conn.IsClosed() {
				if c, err := pgx.Connect(ctx, dsn); err == nil {
					conn = c
				}
			}
			return false
		}
		return n == len(uniq(inds))
	})
	o.outcome.Recover = time.Since(faultEnd)
	if err := <-sent; err != nil {
		t.Fatalf("emulate: %v", err)
	}
	testenv.WaitFor(t, 3*time.Minute, "every post in the tables", func() bool {
		if err := o.exited(); err != nil {
			t.Fatalf("the job exited: %v", err)
		}
		return rows(postgres.StreamPinTable) == posts && rows(postgres.StreamGeoTable) == posts &&
			rows(postgres.StreamUserTable) == posts && rows(postgres.StreamDeadLetterTable) == len(bad)
	})
	if err := o.job.Signal(os.Interrupt, 90*time.Second); err != nil {
		t.Fatalf("the drained job: %v", err)
	}

	// Rows, dead letters, and the category counts against the topic.
	lost, doubled, landed := 0, 0, 0
	for _, table := range []string{postgres.StreamPinTable, postgres.StreamGeoTable, postgres.StreamUserTable} {
		var n, distinct int
		if err := conn.QueryRow(ctx, "SELECT count(*), count(DISTINCT ind) FROM "+table).Scan(&n, &distinct); err != nil {
			t.Fatal(err)
		}
		lost += max(0, posts-distinct)
		doubled += n - distinct
		if table == postgres.StreamPinTable {
			landed = distinct
		}
	}
	if n := rows(postgres.StreamDeadLetterTable); n != len(bad) {
		t.Errorf("%d dead letters, want %d", n, len(bad))
	}
	want := map[string]bool{}
	got := map[string]int{}
	if o.kinesis == nil {
		// Each post of the pin topic, cleaned, in the window of its
		// record's timestamp.
		size := o.window.Milliseconds()
		for _, r := range readTopic(t, o.broker.Addr(), KafkaTopic(o.prefix, "pin")) {
			pin, _, err := transforms.CleanPinRecord(r.Value)
			if err != nil || pin.Category == nil {
				continue
			}
			start := time.UnixMilli(r.Timestamp.UnixMilli() - r.Timestamp.UnixMilli()%size).UTC()
			want[fmt.Sprintf("%s %s %d", start.Format(time.RFC3339), *pin.Category, pin.Ind)] = true
		}
		q, err := conn.Query(ctx, "SELECT window_start, category, ind FROM "+postgres.CategoryPostsTable)
		if err != nil {
			t.Fatal(err)
		}
		for q.Next() {
			var start time.Time
			var category string
			var ind int64
			if err := q.Scan(&start, &category, &ind); err != nil {
				t.Fatal(err)
			}
			got[fmt.Sprintf("%s %s %d", start.UTC().Format(time.RFC3339), category, ind)]++
		}
		if err := q.Err(); err != nil {
			t.Fatal(err)
		}
	} else {
		// Kinesis's arrival times are the stream's: each post with a
		// category once, in some window, under its category.
		rows, err := conn.Query(ctx, "SELECT category, ind FROM "+postgres.StreamPinTable+" WHERE category IS NOT NULL")
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var category string
			var ind int64
			if err := rows.Scan(&category, &ind); err != nil {
				t.Fatal(err)
			}
			want[fmt.Sprintf("%s %d", category, ind)] = true
		}
		rows.Close()
		q, err := conn.Query(ctx, "SELECT category, ind FROM "+postgres.CategoryPostsTable)
		if err != nil {
			t.Fatal(err)
		}
		for q.Next() {
			var category string
			var ind int64
			if err := q.Scan(&category, &ind); err != nil {
				t.Fatal(err)
			}
			got[fmt.Sprintf("%s %d", category, ind)]++
		}
		if err := q.Err(); err != nil {
			t.Fatal(err)
		}
	}
	var missing, extra int
	for k := range want {
		if got[k] == 0 {
			missing++
		}
	}
	for k, n := range got {
		if !want[k] {
			extra++
		}
		doubled += n - 1
	}
	var counted int
	if err := conn.QueryRow(ctx, "SELECT coalesce(sum(posts), 0) FROM "+postgres.CategoryCountsTable).Scan(&counted); err != nil {
		t.Fatal(err)
	}
	if missing > 0 || extra > 0 || counted != len(want) {
		t.Errorf("category counts: %d of %d (window, category, post) entries missing, %d not in the topic; the view counts %d posts",
			missing, len(want), extra, counted)
	}
	if len(want) < posts/2 {
		t.Fatalf("only %d posts with a category in the topic", len(want))
	}
	if o.prismRestarts > 0 {
		o.outcome.Fault += fmt.Sprintf(" [job restarted %dx after prism's progress race]", o.prismRestarts)
	}
	o.outcome.Sent, o.outcome.Lost, o.outcome.Doubled = posts, lost+missing, doubled+extra
	o.outcome.Landed = landed
	faultproxy.Report(t, o.outcome)
}

// TestOutagePostgresStopped stops the job's PostgreSQL (a server of the
// test's own) for the fault's duration in mid-stream, with pane writes and
// row upserts in flight: the job retries with backoff, logging a line a
// retry and not a line a row, does not die, and once PostgreSQL is back
// every row, dead letter and category count is there exactly once.
func TestOutagePostgresStopped(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds and runs the pinpipe binary")
	}
	pg := startOwnPostgres(t)
	runStreamOutage(t, "PostgreSQL stopped (stream)", pg.DSN(), nil, func(o *streamOutage) {
		pg.Stop()
		time.Sleep(o.outcome.Duration)
		if err := o.exited(); err != nil {
			t.Fatalf("the job died while PostgreSQL was down: %v", err)
		}
		retries := strings.Count(o.job.Stderr(), "PostgreSQL unavailable")
		pg.Start()
		t.Logf("%d retry log lines while PostgreSQL was down for %s", retries, o.outcome.Duration)
		// 7 writers (three tables' rows, dead letters, three tables'
		// panes), each at most a line a try, tries 250 ms apart or more.
		if limit := 7 * (1 + int(o.outcome.Duration/(250*time.Millisecond))); retries == 0 || retries > limit {
			t.Errorf("%d retry log lines in %s: want some, and at most %d (one a writer and retry)", retries, o.outcome.Duration, limit)
		}
	})
}

// TestOutageKafkaRestartStream stops the Kafka broker under the running
// job (and the gateway the emulator posts through) and starts it again
// after the fault's duration on the same port with the same data (kfake
// saving its log, topics and offsets to its data directory on close and
// loading them at start, as a broker restart does; every connection is
// cut and refused meanwhile): the job's reads reconnect by themselves, and
// every post is there exactly once.
func TestOutageKafkaRestartStream(t *testing.T) {
	t.Parallel()
	runStreamOutage(t, "Kafka broker restarted (stream)", testDSN(t), nil, func(o *streamOutage) {
		o.broker.Close()
		time.Sleep(o.outcome.Duration)
		var err error
		if o.broker, err = kafka.Start(context.Background(), o.opts); err != nil {
			t.Fatalf("restarting Kafka on %s: %v", o.opts.Listen, err)
		}
	})
}

func uniq(xs []int64) map[int64]bool {
	m := map[int64]bool{}
	for _, x := range xs {
		m[x] = true
	}
	return m
}

// TestOutageKinesisThrottledStream reads Kinesis (kinesalite) through a
// fault proxy that answers every GetRecords with
// ProvisionedThroughputExceededException for the fault's duration, as a
// shard past its 5 reads a second or 2 MB/s does: the job's reads back off
// and resume where they were, and every post is there exactly once.
func TestOutageKinesisThrottledStream(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds and runs the pinpipe binary")
	}
	proxy, err := faultproxy.Start(testenv.Kinesalite(t))
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	runStreamOutage(t, "Kinesis throttles reads (stream)", testDSN(t), proxy, func(o *streamOutage) {
		proxy.Set(faultproxy.KinesisThrottled(faultproxy.KinesisOps("GetRecords")))
		time.Sleep(o.outcome.Duration)
		proxy.Set(nil)
		if proxy.Faulted() == 0 {
			t.Fatal("no GetRecords was throttled: the job was not reading")
		}
		t.Logf("%d GetRecords calls throttled", proxy.Faulted())
	})
}
