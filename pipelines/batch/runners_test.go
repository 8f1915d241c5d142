package batch

import (
	"bytes"
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	beamlog "github.com/apache/beam/sdks/v2/go/pkg/beam/log"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/google/go-cmp/cmp"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/pinpipe/pinpipe/internal/testenv"
	"github.com/pinpipe/pinpipe/io/files"
)

// TestS3 runs the batch job from and to S3 through Beam's S3 filesystem,
// against gofakes3 over real HTTP.
func TestS3(t *testing.T) {
	testenv.SetFlags(t, "runner", "direct")
	srv := httptest.NewServer(gofakes3.New(s3mem.New()).Server())
	defer srv.Close()
	// An IP, not localhost, so that the SDK uses path-style addressing.
	t.Setenv("AWS_ENDPOINT_URL_S3", srv.URL)
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	t.Setenv("AWS_REGION", "us-east-1")
	if !strings.Contains(srv.URL, "127.0.0.1") {
		t.Fatalf("test server at %s, want 127.0.0.1", srv.URL)
	}

	ctx := context.Background()
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	client := s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true })
	if _, err := client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("lake")}); err != nil {
		t.Fatal(err)
	}
	err = filepath.Walk(sampleDir, func(path string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(sampleDir, path)
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("lake"), Key: aws.String("raw/" + filepath.ToSlash(rel)), Body: f})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}

	out := "s3://lake/clean"
	runBatch(t, Options{Input: "s3://lake/raw", TopicPrefix: "pinpipe", Output: out, Format: FormatJSONL, Shards: 4})
	compareGolden(t, snapshot(t, out))
	// And again, replacing the first run's objects.
	runBatch(t, Options{Input: "s3://lake/raw", TopicPrefix: "pinpipe", Output: out, Format: FormatParquet, Shards: 2})
	compareGolden(t, snapshot(t, out))
}

// TestUniversalRunnerOnPrismJobServer submits the job to a standalone prism
// job server with --runner=universal and LOOPBACK workers: the same path a
// Flink job server takes.
func TestUniversalRunnerOnPrismJobServer(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts a prism job server")
	}
	endpoint := testenv.PrismJobServer(t)
	ctx := context.Background()

	testenv.SetFlags(t, "runner", "universal", "endpoint", endpoint, "environment_type", "LOOPBACK")
	out := t.TempDir()
	runCtx, stop := context.WithTimeout(ctx, 3*time.Minute)
	defer stop()
	if _, err := Run(runCtx, Options{Input: sampleDir, TopicPrefix: "pinpipe", Output: out, Format: FormatJSONL}); err != nil {
		t.Fatalf("batch on the prism job server: %v", err)
	}
	compareGolden(t, snapshot(t, out))
}

// TestProcessWorkersOnJobServer submits the job to a standalone prism job
// server whose SDK workers are started as Flink and Dataflow start them
// (--environment_type=PROCESS, Beam's Go boot program fetching the staged
// pinpipe binary and running it in its own process), with the run files
// under an S3 --temp_location (gofakes3): nothing may rely on the
// launcher's memory or disk.
func TestProcessWorkersOnJobServer(t *testing.T) {
	if testing.Short() {
		t.Skip("builds prism, Beam's boot program and pinpipe")
	}
	srv := httptest.NewServer(gofakes3.New(s3mem.New(), gofakes3.WithAutoBucket(true)).Server())
	defer srv.Close()
	// Set before the job server starts: its worker processes inherit them.
	t.Setenv("AWS_ENDPOINT_URL_S3", srv.URL)
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	t.Setenv("AWS_REGION", "us-east-1")
	endpoint := testenv.PrismJobServer(t)
	env := testenv.ProcessEnvironment(t)
	input, err := filepath.Abs(sampleDir)
	if err != nil {
		t.Fatal(err)
	}
	testenv.SetFlags(t, "runner", "universal", "endpoint", endpoint, "environment_type", "PROCESS",
		"environment_config", env, "worker_binary", testenv.Pinpipe(t), "temp_location", "s3://lake/tmp")
	out := t.TempDir()
	ctx, stop := context.WithTimeout(context.Background(), 5*time.Minute)
	defer stop()
	if _, err := Run(ctx, Options{Input: input, TopicPrefix: "pinpipe", Output: out, Format: FormatParquet}); err != nil {
		t.Fatalf("batch with PROCESS workers: %v", err)
	}
	compareGolden(t, snapshot(t, out))
	left, err := files.Expand(ctx, "s3://lake/tmp/*/*")
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 0 {
		t.Errorf("the run left %d temp files in s3://lake/tmp, e.g. %s", len(left), left[0])
	}
}

// TestDataflowDryRun translates the job for Dataflow offline, over the
// output of an earlier run: a dry run must change nothing in it.
func TestDataflowDryRun(t *testing.T) {
	testenv.SetFlags(t, "runner", "direct")
	out := t.TempDir()
	runBatch(t, Options{Input: sampleDir, TopicPrefix: "pinpipe", Output: out, Format: FormatJSONL})
	before := dirContents(t, out)

	// An earlier prism run leaves its endpoint and loopback environment in
	// the global options; Dataflow needs neither.
	testenv.SetFlags(t, "runner", "dataflow", "dry_run", "true", "endpoint", "", "environment_type", "", "project", "pinpipe-test", "region", "europe-west1",
		"staging_location", "gs://pinpipe-test/staging", "temp_location", "gs://pinpipe-test/tmp",
		"worker_binary", os.Args[0])
	logs := &captureLog{}
	beamlog.SetLogger(logs)
	defer beamlog.SetLogger(&beamlog.Structural{})
	sum, err := Run(context.Background(), Options{Input: sampleDir, TopicPrefix: "pinpipe", Output: out, Format: FormatJSONL})
	if err != nil || sum != nil {
		t.Fatalf("dry run: got %v, %v; want no summary and no error", sum, err)
	}
	for _, want := range []string{"Dry-run: not submitting job", "JOB_TYPE_BATCH", "pinpipe-test", "batch.CleanToRuns", "batch.MergeBuckets"} {
		if !strings.Contains(logs.buf.String(), want) {
			t.Errorf("the translated job does not mention %q", want)
		}
	}
	if diff := cmp.Diff(before, dirContents(t, out)); diff != "" {
		t.Errorf("the dry run changed the output (-before +after):\n%.2000s", diff)
	}
}

// dirContents maps every file under dir to its contents.
func dirContents(t *testing.T, dir string) map[string]string {
	t.Helper()
	m := map[string]string{}
	err := filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		m[p] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(m) == 0 {
		t.Fatalf("no files under %s", dir)
	}
	return m
}

// captureLog keeps what Beam logs, to check what a dry run printed.
type captureLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (c *captureLog) Log(_ context.Context, _ beamlog.Severity, _ int, msg string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.buf.WriteString(msg)
	c.buf.WriteByte('\n')
}
