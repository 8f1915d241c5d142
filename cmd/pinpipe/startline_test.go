package main

import (
	"context"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	devs3 "github.com/pinpipe/pinpipe/ingest/devserver/s3"
	"github.com/pinpipe/pinpipe/internal/testenv"
)

// runUntil starts `pinpipe args...`, waits until its stderr holds want,
// then sends it SIGTERM and returns what it wrote once it exited.
func runUntil(t *testing.T, env []string, want string, args ...string) result {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, args...)
	cmd.Dir = t.TempDir()
	cmd.Env = append(append(os.Environ(), "PINPIPE_TEST_MAIN=1"), env...)
	var out, errb testenv.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	deadline := time.After(2 * time.Minute)
wait:
	for !strings.Contains(errb.String(), want) {
		select {
		case err := <-done:
			t.Fatalf("pinpipe %v exited (%v) before saying %q; stderr:\n%s", args, err, want, errb.String())
		case <-deadline:
			cmd.Process.Kill()
			<-done
			t.Fatalf("pinpipe %v did not say %q in 2 minutes; stderr:\n%s", args, want, errb.String())
		case <-time.After(50 * time.Millisecond):
			continue wait
		}
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(time.Minute):
		cmd.Process.Kill()
		t.Fatalf("pinpipe %v did not stop within a minute of SIGTERM; stderr:\n%s", args, errb.String())
	}
	return result{cmd.ProcessState.ExitCode(), out.String(), errb.String()}
}

// TestS3SinkStartLine: s3sink says what it reads and writes when it starts,
// warns when its --topics match no topic, and sums up at exit.
func TestS3SinkStartLine(t *testing.T) {
	kafka := kafkaWithRecords(t) // topics ef.pin, ef.geo, ef.user
	lake, err := devs3.Start(context.Background(), devs3.Options{Listen: "127.0.0.1:0", Buckets: []string{"lake"}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lake.Close() })
	env := []string{"AWS_ACCESS_KEY_ID=dev", "AWS_SECRET_ACCESS_KEY=dev", "AWS_REGION=us-east-1", "AWS_ENDPOINT_URL_S3=http://" + lake.Addr()}

	r := runUntil(t, env, "no topic matches", "s3sink", "--kafka-brokers="+kafka, `--topics=pinpipe\..*`, "--s3=s3://lake/raw", "--group=g1")
	want := `pinpipe s3sink: reading Kafka at ` + kafka + `, topics matching "pinpipe\\..*" (now: none), as group g1; writing s3://lake/raw/topics/<topic>/partition=<p>/ every 1000 records or 1m0s`
	if !strings.Contains(r.stderr, want) {
		t.Errorf("stderr %q, want the start line %q", r.stderr, want)
	}
	if !strings.Contains(r.stderr, `warning: pinpipe s3sink: no topic matches --topics="pinpipe\\..*"`) {
		t.Errorf("stderr %q, want a warning that no topic matches", r.stderr)
	}
	if r.code != 0 || !strings.HasPrefix(r.stdout, "s3sink: read 0 records; wrote 0 objects") {
		t.Errorf("exit %d, stdout %q; want 0 and the summary", r.code, r.stdout)
	}

	r = runUntil(t, env, "pinpipe s3sink: reading", "s3sink", "--kafka-brokers="+kafka, `--topics=ef\..*`, "--s3=s3://lake/raw", "--group=g2", "--flush-size=1")
	if !strings.Contains(r.stderr, "(now: ef.geo, ef.pin, ef.user)") || strings.Contains(r.stderr, "warning") {
		t.Errorf("stderr %q, want the three matching topics named and no warning", r.stderr)
	}
	if r.code != 0 || !strings.HasPrefix(r.stdout, "s3sink: read ") {
		t.Errorf("exit %d, stdout %q; want 0 and the summary", r.code, r.stdout)
	}
}

// TestScheduleStartLine: schedule says what it runs, over what, into
// where and when; after each run its outputs and the next run's time; at
// exit how many runs it made.
func TestScheduleStartLine(t *testing.T) {
	in := filepath.Join(t.TempDir(), "in")
	if r := pinpipe(t, nil, "generate", "--posts=20", "--out="+in); r.code != 0 {
		t.Fatalf("generate: exit %d: %s", r.code, r.stderr)
	}
	out := filepath.Join(t.TempDir(), "out")
	r := runUntil(t, nil, "next run at", "schedule", "--input="+in, "--output="+out, "--every=1h", "--table-format=jsonl")
	for _, want := range []string{
		"pinpipe schedule: every 1h0m0s, an incremental batch run over " + in + " (topics pinpipe.{pin,geo,user}) into " + out + " (jsonl); first run now",
		"pinpipe schedule: run 1 finished at ",
		"; outputs in " + out + "; next run at ",
		"pinpipe schedule: stopped after 1 runs (0 failed); outputs in " + out,
	} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr does not say %q:\n%s", want, r.stderr)
		}
	}
	if r.code != 0 || !strings.Contains(r.stdout, "rejected") {
		t.Errorf("exit %d, stdout %q; want 0 and the run's summary", r.code, r.stdout)
	}
	if _, after, ok := strings.Cut(r.stderr, "next run at "); ok {
		next, err := time.Parse(time.RFC3339, strings.Fields(after)[0])
		if d := time.Until(next); err != nil || d < 58*time.Minute || d > time.Hour {
			t.Errorf("next run at %v (%v), want in an hour (--every=1h)", next, err)
		}
	}
	// A quiet day: the same input, already read into the output, gives
	// "nothing new" rather than a summary of zeros.
	r = runUntil(t, nil, "next run at", "schedule", "--input="+in, "--output="+out, "--every=1h", "--table-format=jsonl")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "nothing new: no input objects in "+in) || strings.Contains(r.stdout, "rejected") {
		t.Errorf("a scheduled run with nothing new: exit %d, stdout %q; want 0 and \"nothing new\"", r.code, r.stdout)
	}
}
