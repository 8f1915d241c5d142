// Package testenv starts the out-of-process servers that tests in several
// packages share, so that each is started one way only. Only tests import
// it.
//
// PostgreSQL has its own helper, ingest/sourcedb/sourcedbtest (a database of
// its own per test on the server scripts/with-postgres.sh starts); Kafka and
// S3 run in process (ingest/devserver/kafka and ingest/devserver/s3).
package testenv

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
)

// kl is the test binary's kinesalite, started on first use.
var kl struct {
	once     sync.Once
	endpoint string
	skip     string
	err      error
	// stdin is the write end of kinesalite's stdin. It is never closed: it
	// closes when this process exits, however it exits (os.Exit in a
	// TestMain, a panic, a kill), and kinesalite exits on its end of file.
	// It is kept here so that its finalizer cannot close it earlier.
	stdin io.WriteCloser
}

// Kinesalite returns the URL (http://127.0.0.1:PORT) of a kinesalite bound
// to loopback, shared by the tests of the test binary and started by the
// first to ask: give each test streams of its own. Streams are created,
// deleted and updated within 50 ms, and up to 1000 shards may exist.
//
// kinesalite is looked for in $PINPIPE_KINESALITE_DIR, else in
// .cache/kinesalite under the repository (where scripts/kinesalite.sh
// installs it). When it or Node.js is missing the test is skipped, except
// under CI=true, where a missing kinesalite is installed with that script
// and any failure fails the test.
//
// No stopping is needed: kinesalite exits when this process does.
func Kinesalite(t testing.TB) string {
	t.Helper()
	kl.once.Do(startKinesalite)
	if kl.skip != "" {
		if os.Getenv("CI") == "true" {
			t.Fatal(kl.skip)
		}
		t.Skip(kl.skip)
	}
	if kl.err != nil {
		t.Fatal(kl.err)
	}
	return kl.endpoint
}

// KinesisClient is a Kinesis client for endpoint (kinesalite's URL) with
// static credentials, so that no test reaches for real ones.
func KinesisClient(endpoint string) *kinesis.Client {
	return kinesis.New(kinesis.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(endpoint),
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "test", SecretAccessKey: "test", Source: "tests"}, nil
		}),
	})
}

// RepoRoot is the directory of the repository's go.mod, found from the
// working directory (a test's package directory) upwards.
func RepoRoot() string {
	dir, _ := os.Getwd()
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
		if filepath.Dir(d) == d {
			return dir
		}
	}
}

// kinesaliteScript starts kinesalite (its module dir is the argument) on a
// port the kernel picks, prints the port, and exits when stdin ends.
const kinesaliteScript = `const s = require(process.argv[1])({createStreamMs: 50, deleteStreamMs: 50, updateStreamMs: 50, shardLimit: 1000});
s.listen(0, '127.0.0.1', () => console.log(s.address().port));
process.stdin.on('end', () => process.exit(0));
process.stdin.on('error', () => process.exit(0));
process.stdin.resume();`

func startKinesalite() {
	dir := os.Getenv("PINPIPE_KINESALITE_DIR")
	if dir == "" {
		dir = filepath.Join(RepoRoot(), ".cache", "kinesalite")
	}
	mod := filepath.Join(dir, "node_modules", "kinesalite")
	if _, err := os.Stat(filepath.Join(mod, "package.json")); err != nil {
		if os.Getenv("CI") != "true" {
			kl.skip = fmt.Sprintf("kinesalite is not installed in %s: run scripts/kinesalite.sh install (needs Node.js and npm) "+
				"or set PINPIPE_KINESALITE_DIR; under CI=true the tests install it and fail without it", dir)
			return
		}
		cmd := exec.Command("bash", filepath.Join(RepoRoot(), "scripts", "kinesalite.sh"), "install")
		cmd.Env = append(os.Environ(), "PINPIPE_KINESALITE_DIR="+dir)
		if out, err := cmd.CombinedOutput(); err != nil {
			kl.err = fmt.Errorf("installing kinesalite: %v\n%s", err, out)
			return
		}
	}
	if _, err := exec.LookPath("node"); err != nil {
		kl.skip = "kinesalite needs node (Node.js), which is not on PATH"
		return
	}
	cmd := exec.Command("node", "-e", kinesaliteScript, mod)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		kl.err = err
		return
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		kl.err = err
		return
	}
	if err := cmd.Start(); err != nil {
		kl.err = fmt.Errorf("starting kinesalite with node: %w", err)
		return
	}
	kl.stdin = stdin
	line := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		if sc.Scan() {
			line <- sc.Text()
		}
		close(line)
		_, _ = io.Copy(io.Discard, out)
		_ = cmd.Wait()
	}()
	select {
	case port, ok := <-line:
		if !ok || strings.TrimSpace(port) == "" {
			kl.err = fmt.Errorf("kinesalite exited before listening")
			return
		}
		kl.endpoint = "http://127.0.0.1:" + strings.TrimSpace(port)
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		kl.err = fmt.Errorf("kinesalite did not start within 20 s")
	}
}
