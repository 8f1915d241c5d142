// Package testenv is what tests in several packages share, so that each
// thing is done one way only: kinesalite, a PostgreSQL database of the
// test's own (on the server scripts/with-postgres.sh starts), the pinpipe
// binary run as a subprocess. Kafka and S3 run in process
// (ingest/devserver/kafka and ingest/devserver/s3). Only tests import it.
package testenv

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/pinpipe/pinpipe/internal/kinesalite"
)

// kl is the test binary's kinesalite, started on first use.
var kl struct {
	once     sync.Once
	endpoint string
	skip     string
	err      error
	// srv is never closed: its stdin closes when this process exits,
	// however it exits (os.Exit in a TestMain, a panic, a kill), and
	// kinesalite exits on its end of file. It is kept here so that the
	// finalizer of its stdin pipe cannot close it earlier.
	srv *kinesalite.Server
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
		SkipUnlessCI(t, kl.skip)
	}
	if kl.err != nil {
		t.Fatal(kl.err)
	}
	return kl.endpoint
}

// SkipUnlessCI skips the test because something it needs outside Go is
// missing (reason says what, and how to install it), except under
// CI=true, where CI installs everything and a missing part fails the test.
func SkipUnlessCI(t testing.TB, reason string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatal(reason)
	}
	t.Skip(reason)
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

func startKinesalite() {
	dir := os.Getenv("PINPIPE_KINESALITE_DIR")
	if dir == "" {
		dir = filepath.Join(RepoRoot(), ".cache", "kinesalite")
	}
	if err := kinesalite.Installed(dir); err != nil {
		if os.Getenv("CI") != "true" {
			kl.skip = err.Error() + "; under CI=true the tests install it and fail without it"
			return
		}
		cmd := exec.Command("bash", filepath.Join(RepoRoot(), "scripts", "kinesalite.sh"), "install")
		cmd.Env = append(os.Environ(), "PINPIPE_KINESALITE_DIR="+dir)
		if out, err := cmd.CombinedOutput(); err != nil {
			kl.err = fmt.Errorf("installing kinesalite: %v\n%s", err, out)
			return
		}
	}
	kl.srv, kl.err = kinesalite.Start(context.Background(), dir)
	if kl.err == nil {
		kl.endpoint = kl.srv.URL
	}
}
