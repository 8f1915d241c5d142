package main

import (
	"context"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	devkafka "github.com/pinpipe/pinpipe/ingest/devserver/kafka"
	devs3 "github.com/pinpipe/pinpipe/ingest/devserver/s3"
	"github.com/pinpipe/pinpipe/internal/testenv"
	"github.com/pinpipe/pinpipe/io/postgres"
)

// process is `pinpipe args...` running as a process of its own.
type process struct {
	t           *testing.T
	cmd         *exec.Cmd
	out, errb   testenv.Buffer
	done        chan error
	args        []string
	signalledAt time.Time
}

// startPinpipe starts `pinpipe args...` and waits until its stderr holds
// want.
func startPinpipe(t *testing.T, env []string, want string, args ...string) *process {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	p := &process{t: t, cmd: exec.Command(exe, args...), done: make(chan error, 1), args: args}
	p.cmd.Dir = t.TempDir()
	p.cmd.Env = append(append(os.Environ(), "PINPIPE_TEST_MAIN=1"), env...)
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.errb
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			p.cmd.Process.Kill()
			<-p.done
		}
	})
	deadline := time.After(2 * time.Minute)
	for !strings.Contains(p.errb.String(), want) {
		select {
		case err := <-p.done:
			t.Fatalf("pinpipe %v exited (%v) before saying %q; stderr:\n%s", args, err, want, p.errb.String())
		case <-deadline:
			t.Fatalf("pinpipe %v did not say %q in 2 minutes; stderr:\n%s", args, want, p.errb.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	return p
}

// signal sends sig, the first time noting when.
func (p *process) signal(sig os.Signal) {
	if p.signalledAt.IsZero() {
		p.signalledAt = time.Now()
	}
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatal(err)
	}
}

// wait waits up to limit for the process to exit, and returns what it did
// and how long after the first signal it exited.
func (p *process) wait(limit time.Duration) (result, time.Duration) {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(limit):
		p.cmd.Process.Kill()
		<-p.done
		p.t.Fatalf("pinpipe %v still ran %v after the signal; stderr:\n%s", p.args, limit, p.errb.String())
	}
	return result{p.cmd.ProcessState.ExitCode(), p.out.String(), p.errb.String()}, time.Since(p.signalledAt)
}

// blackHole is an address that accepts connections and never answers.
func blackHole(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() {
		l.Close()
		for _, c := range conns {
			c.Close()
		}
	})
	return l.Addr().String()
}

// slack is how long after --drain-timeout a process may take to exit.
const slack = 5 * time.Second

// TestStreamStopsOnSIGTERMKafkaUnreachable: one SIGTERM stops `stream`
// whose Kafka is unreachable within --drain-timeout (it ran on for 10+
// minutes): the drain request reaches the reads, which end even before a
// first listing succeeded, or the timeout stops the process.
func TestStreamStopsOnSIGTERMKafkaUnreachable(t *testing.T) {
	const drain = 15 * time.Second
	p := startPinpipe(t, nil, "will retry", "stream", "--kafka-brokers="+closedAddr(t), "--files="+t.TempDir(), "--drain-timeout="+drain.String())
	p.signal(syscall.SIGTERM)
	r, took := p.wait(drain + slack)
	if !strings.Contains(r.stderr, "pinpipe stream: terminated: finishing what it holds, for up to --drain-timeout=15s") {
		t.Errorf("stderr does not say it is draining, and for how long:\n%s", r.stderr)
	}
	// The reads see the drain (kafkaio retries an unreachable cluster's
	// listing every 10 s, and looks for the marker first): a clean end.
	if r.code != 0 {
		t.Errorf("exit %d after %v, want 0: the drain did not reach the reads; stderr:\n%s", r.code, took, r.stderr)
	}
}

// TestDrainTimeoutStopsStream: a drain that cannot finish within
// --drain-timeout (Kafka unreachable, the listing's retry 10 s away) stops
// the process at the timeout, exit 1, saying so.
func TestDrainTimeoutStopsStream(t *testing.T) {
	const drain = 2 * time.Second
	p := startPinpipe(t, nil, "will retry", "stream", "--kafka-brokers="+closedAddr(t), "--files="+t.TempDir(), "--drain-timeout="+drain.String())
	p.signal(syscall.SIGTERM)
	r, took := p.wait(drain + slack)
	if r.code != 1 || !strings.Contains(r.stderr, "pinpipe stream: stopped unfinished: still running --drain-timeout=2s after terminated") {
		t.Errorf("exit %d after %v, want 1 and the reason; stderr:\n%s", r.code, took, r.stderr)
	}
	if took < drain {
		t.Errorf("stopped %v after SIGTERM, before --drain-timeout=%v", took, drain)
	}
}

// TestSecondSignalStopsAtOnce: a second signal during a long drain stops
// the process at once, exit 1.
func TestSecondSignalStopsAtOnce(t *testing.T) {
	p := startPinpipe(t, nil, "will retry", "stream", "--kafka-brokers="+closedAddr(t), "--files="+t.TempDir(), "--drain-timeout=10m")
	p.signal(syscall.SIGTERM)
	for !strings.Contains(p.errb.String(), "finishing what it holds") {
		time.Sleep(20 * time.Millisecond)
	}
	p.signal(os.Interrupt)
	r, took := p.wait(slack)
	if r.code != 1 || !strings.Contains(r.stderr, "pinpipe stream: stopped unfinished at once: a second signal (interrupt after terminated)") {
		t.Errorf("exit %d after %v, want 1 and the reason; stderr:\n%s", r.code, took, r.stderr)
	}
}

// TestSIGTERMStopsEveryLongRunningCommand: s3sink (its Kafka gone once it
// has started), gateway (Kafka unreachable), emulate (a gateway that never answers) and
// schedule (between runs) stop within --drain-timeout of one SIGTERM.
func TestSIGTERMStopsEveryLongRunningCommand(t *testing.T) {
	lake, err := devs3.Start(context.Background(), devs3.Options{Listen: "127.0.0.1:0", Buckets: []string{"lake"}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lake.Close() })
	s3env := []string{"AWS_ACCESS_KEY_ID=dev", "AWS_SECRET_ACCESS_KEY=dev", "AWS_REGION=us-east-1", "AWS_ENDPOINT_URL_S3=http://" + lake.Addr()}
	in := filepath.Join(t.TempDir(), "in")
	if r := pinpipe(t, nil, "generate", "--posts=20", "--out="+in); r.code != 0 {
		t.Fatalf("generate: exit %d: %s", r.code, r.stderr)
	}
	broker, err := devkafka.Start(context.Background(), devkafka.Options{Listen: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { broker.Close() })
	const drain = 3 * time.Second
	for _, c := range []struct {
		name    string
		env     []string
		want    string // on stderr once it runs
		args    []string
		started func() // then
	}{
		{"s3sink", s3env, "pinpipe s3sink: reading Kafka", []string{"s3sink", "--kafka-brokers=" + broker.Addr(), "--s3=s3://lake/raw"}, func() { broker.Close() }},
		{"gateway", nil, "pinpipe gateway: listening", []string{"gateway", "--kafka-brokers=" + closedAddr(t), "--listen=127.0.0.1:0", "--kinesis=off"}, nil},
		{"emulate", nil, "pinpipe emulate: seed", []string{"emulate", "--gateway=http://" + blackHole(t), "--count=10"}, nil},
		{"schedule", nil, "first run", []string{"schedule", "--input=" + in, "--output=" + t.TempDir(), "--every=1h", "--now=false"}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := startPinpipe(t, c.env, c.want, append(c.args, "--drain-timeout="+drain.String())...)
			if c.started != nil {
				c.started()
			}
			time.Sleep(500 * time.Millisecond) // into its work
			p.signal(syscall.SIGTERM)
			r, took := p.wait(drain + slack)
			if !strings.Contains(r.stderr, "pinpipe "+c.name+": terminated: finishing what it holds") {
				t.Errorf("stopped after %v (exit %d) without saying it was finishing; stderr:\n%s", took, r.code, r.stderr)
			}
		})
	}
}

// TestStreamCreatesOutputsAtStart: the stream's tables (deadletter_stream
// too) and its --files directories exist once it has started, before any
// record, let alone a dead letter, arrives; and an idle job drains on one
// SIGTERM, exit 0.
func TestStreamCreatesOutputsAtStart(t *testing.T) {
	dsn := testenv.PostgresDB(t, false)
	broker, err := devkafka.Start(context.Background(), devkafka.Options{Listen: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { broker.Close() })
	out := filepath.Join(t.TempDir(), "stream")
	p := startPinpipe(t, nil, "pinpipe stream: reading Kafka", "stream", "--kafka-brokers="+broker.Addr(), "--sink="+dsn, "--files="+out, "--start=earliest")
	conn := testenv.PostgresConnect(t, dsn)
	for _, table := range []string{postgres.StreamPinTable, postgres.StreamGeoTable, postgres.StreamUserTable, postgres.StreamDeadLetterTable,
		postgres.CategoryPostsTable, postgres.CategoryCountsTable} {
		var n int
		if err := conn.QueryRow(context.Background(), "SELECT count(*) FROM "+table).Scan(&n); err != nil {
			t.Errorf("%s at start: %v", table, err)
		}
	}
	for _, table := range []string{"pin", "geo", "user"} {
		if fi, err := os.Stat(filepath.Join(out, table)); err != nil || !fi.IsDir() {
			t.Errorf("--files directory of %s at start: %v", table, err)
		}
	}
	p.signal(syscall.SIGTERM)
	r, took := p.wait(defaultDrainTimeout + slack)
	if r.code != 0 {
		t.Errorf("an idle job: exit %d %v after SIGTERM, want a drain and 0; stderr:\n%s", r.code, took, r.stderr)
	}
	if want := "pinpipe stream: reading Kafka at " + broker.Addr() + ", topics pinpipe.{pin,geo,user} (start earliest, group pinpipe-stream); writing tables pin_stream, geo_stream, user_stream, deadletter_stream and posts_per_category_stream in database "; !strings.Contains(r.stderr, want) {
		t.Errorf("no start line %q in:\n%s", want, r.stderr)
	}
}
