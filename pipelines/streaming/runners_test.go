package streaming

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	beamlog "github.com/apache/beam/sdks/v2/go/pkg/beam/log"

	"github.com/pinpipe/pinpipe/internal/testenv"
	"github.com/pinpipe/pinpipe/runners"
)

type captureLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (c *captureLog) Log(_ context.Context, _ beamlog.Severity, _ int, msg string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.buf.WriteString(msg + "\n")
}

// TestDataflowDryRunIsStreaming translates the job with a Kinesis source
// for Dataflow offline: it must be a streaming job with the shared clean
// composites and the PostgreSQL sinks.
func TestDataflowDryRunIsStreaming(t *testing.T) {
	testenv.SetFlags(t, "runner", "dataflow", "dry_run", "true", "endpoint", "", "environment_type", "",
		"project", "pinpipe-test", "region", "europe-west1",
		"staging_location", "gs://pinpipe-test/staging", "temp_location", "gs://pinpipe-test/tmp")
	logs := &captureLog{}
	beamlog.SetLogger(logs)
	defer beamlog.SetLogger(&beamlog.Structural{})

	p, s := beam.NewPipelineWithRoot()
	if err := Build(s, Options{Source: KinesisSource("pinpipe"), Sink: "postgres://nobody@127.0.0.1:1/none"}); err != nil {
		t.Fatal(err)
	}
	if _, err := runners.Run(context.Background(), p); err != nil {
		t.Fatalf("dry run: %v", err)
	}
	for _, want := range []string{"Dry-run: not submitting job", "JOB_TYPE_STREAMING", "kinesisio.Read", "transforms.CleanPin",
		"postgres.WriteRows", "postgres.WriteCategoryCounts"} {
		if !strings.Contains(logs.buf.String(), want) {
			t.Errorf("the translated job does not mention %q", want)
		}
	}
}
