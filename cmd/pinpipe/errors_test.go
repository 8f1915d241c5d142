package main

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	devkafka "github.com/pinpipe/pinpipe/ingest/devserver/kafka"
	devs3 "github.com/pinpipe/pinpipe/ingest/devserver/s3"
)

// TestRootCause: errors of failed Beam jobs, captured from `pinpipe stream`
// on prism (testdata/errors), come down to the DoFn's error on one line.
func TestRootCause(t *testing.T) {
	cases := []struct{ file, want string }{
		{"postgres-unreachable.txt", "warehouse: cannot reach PostgreSQL at 127.0.0.1:1 (database \"warehouse\"): failed to connect to " +
			"`user=me database=warehouse`: 127.0.0.1:1 (127.0.0.1): dial error: dial tcp 127.0.0.1:1: connect: connection refused"},
		{"postgres-tls-then-role.txt", "warehouse: cannot reach PostgreSQL at 127.0.0.1:23369 (database \"postgres\"): failed to connect to " +
			"`user=nosuchuser database=postgres`: 127.0.0.1:23369 (127.0.0.1): server error: FATAL: role \"nosuchuser\" does not exist (SQLSTATE 28000)"},
		{"s3-no-bucket.txt", "operation error S3: PutObject, https response error StatusCode: 404, RequestID: 0000000000000002, " +
			"HostID: MDAwMDAwMDAwMDAwMDAwMjAwMDAwMDAwMDAwMDAwMDIwMDAwMDAwMDAwMDAwMDAyMDAwMDAwMDAwMDAwMDAwMg==, api error NoSuchBucket: The specified bucket does not exist"},
		{"s3-no-region.txt", "operation error S3: PutObject, resolve auth scheme: resolve endpoint: endpoint rule error, Invalid region: region was not a valid DNS name."},
	}
	for _, c := range cases {
		b, err := os.ReadFile(filepath.Join("testdata", "errors", c.file))
		if err != nil {
			t.Fatal(err)
		}
		if len(b) < 1000 || !strings.Contains(string(b), "Plan[") {
			t.Fatalf("%s is not a captured plan dump", c.file)
		}
		if got := rootCause(string(b)); got != c.want {
			t.Errorf("%s:\n got %q\nwant %q", c.file, got, c.want)
		}
	}
	for in, want := range map[string]string{
		"no input objects in /x/topics; check --input": "no input objects in /x/topics; check --input",
		// pgconn's error for a host with two addresses, as up --postgres gets it.
		"--postgres: failed to connect to `user=me database=w`:\n\t[::1]:5432 (localhost): dial error: refused\n\t127.0.0.1:5432 (localhost): dial error: refused": "--postgres: failed to connect to `user=me database=w`: [::1]:5432 (localhost): dial error: refused; 127.0.0.1:5432 (localhost): dial error: refused",
		"job failed: bundle failed: while executing Up for Plan[stage-1]:\n1: DataSource Out:2\n2: ParDo[x]":                                                       "job failed: bundle failed: while executing Up for Plan[stage-1]:",
		"job failed: plan\n\tcaused by:\nDoFn[UID:1, PID:e1, Name: x.fn] failed:\npanic: boom\ngoroutine 7 [running]:\nmain.f()":                                   "panic: boom",
	} {
		if got := rootCause(in); got != want {
			t.Errorf("rootCause(%q)\n got %q\nwant %q", in, got, want)
		}
	}
}

// TestQuietPlans: the runners' logs of a failed bundle, plan and all, are
// debug logs; other errors are not.
func TestQuietPlans(t *testing.T) {
	plan, err := os.ReadFile(filepath.Join("testdata", "errors", "s3-no-region.txt"))
	if err != nil {
		t.Fatal(err)
	}
	for _, level := range []slog.Level{slog.LevelWarn, slog.LevelDebug} {
		var buf bytes.Buffer
		l := slog.New(quietPlans{slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: level})})
		l.Error("[SDK] process bundle failed for instruction inst008 using plan stage-011 : " + string(plan))
		l.Error("job failed", "error", string(plan))
		l.Error("Prism received bundle error from worker response", "bundle", "inst007")
		l.Log(context.Background(), slog.LevelWarn, "kafkaio: topic pinpipe.pin does not exist (yet)")
		n := strings.Count(buf.String(), "\n")
		switch {
		case level == slog.LevelWarn && (n != 1 || !strings.Contains(buf.String(), "does not exist (yet)")):
			t.Errorf("at warn: %d lines, want only the unrelated warning:\n%s", n, buf.String())
		case level == slog.LevelDebug && strings.Count(buf.String(), "level=DEBUG") != 3:
			t.Errorf("at debug, want the three bundle failures as debug logs:\n%s", buf.String())
		}
	}
}

// TestStreamFailureOneLine: a streaming job whose sink cannot be reached
// fails with exit 1 and one line naming the cause, not the plan dumps the
// runner logs. (The Kafka positions, kept in the sink's PostgreSQL, are
// checked first, before the job is submitted.)
func TestStreamFailureOneLine(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a streaming job on prism")
	}
	addr := kafkaWithRecords(t)
	r := pinpipe(t, nil, "stream", "--kafka-brokers="+addr, "--topic-prefix=ef", "--start=earliest", "--until-latest",
		"--sink=postgres://me@127.0.0.1:1/warehouse?connect_timeout=5")
	if r.code != 1 {
		t.Fatalf("exit %d, want 1; stderr:\n%s", r.code, r.stderr)
	}
	want := "PostgreSQL at 127.0.0.1:1"
	if !strings.HasPrefix(r.stderr, "pinpipe stream: ") || !strings.Contains(r.stderr, want) || strings.Count(r.stderr, "\n") != 1 || !strings.Contains(r.stderr, "connection refused") {
		t.Errorf("stderr (%d bytes), want one line naming %q and the refused connection:\n%s", len(r.stderr), want, r.stderr)
	}
}

// TestStreamChecksFilesBucket: an s3:// --files whose bucket does not
// exist fails the stream before its job runs, exit 1 and one line naming
// --files and the missing bucket; before, a stream with no records to
// write ended "done".
func TestStreamChecksFilesBucket(t *testing.T) {
	kafka := kafkaWithRecords(t)
	lake, err := devs3.Start(context.Background(), devs3.Options{Listen: "127.0.0.1:0", Buckets: []string{"lake"}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lake.Close() })
	env := []string{"AWS_ACCESS_KEY_ID=dev", "AWS_SECRET_ACCESS_KEY=dev", "AWS_REGION=us-east-1", "AWS_ENDPOINT_URL_S3=http://" + lake.Addr()}
	r := pinpipe(t, env, "stream", "--kafka-brokers="+kafka, "--topic-prefix=none", "--start=earliest", "--until-latest", "--files=s3://nobucket/x")
	if r.code != 1 || strings.Count(r.stderr, "\n") != 1 || !strings.Contains(r.stderr, "pinpipe stream: --files=s3://nobucket/x: ") ||
		!strings.Contains(r.stderr, "NoSuchBucket") {
		t.Errorf("exit %d, stderr %q; want 1 and one line naming --files and the missing bucket", r.code, r.stderr)
	}
}

// kafkaWithRecords starts a broker with a record in each of the topics
// ef.pin, ef.geo and ef.user, and returns its address.
func kafkaWithRecords(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	broker, err := devkafka.Start(ctx, devkafka.Options{Listen: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { broker.Close() })
	kc, err := kgo.NewClient(kgo.SeedBrokers(broker.Addr()), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	for _, table := range []string{"pin", "geo", "user"} {
		rec := &kgo.Record{Topic: "ef." + table, Value: []byte(`{"index":1,"ind":1}`)}
		if err := kc.ProduceSync(ctx, rec).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	return broker.Addr()
}
