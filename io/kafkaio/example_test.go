package kafkaio_test

import (
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/window"

	"github.com/pinpipe/pinpipe/io/kafkaio"
)

// A streaming copy of two topics into a third, committing the read's
// progress to a consumer group, so that a restart resumes where it stopped.
func Example() {
	p, s := beam.NewPipelineWithRoot()
	brokers := []string{"localhost:9092"}
	records := kafkaio.Read(s, brokers, []string{"pinpipe.pin", "pinpipe.geo"},
		kafkaio.ReadGroup("pinpipe-copy"),
		kafkaio.ReadPollInterval(50*time.Millisecond))
	kafkaio.Write(s, brokers, "pinpipe.copy", records)

	// Event-time windows close as the partitions' watermarks pass them.
	_ = beam.WindowInto(s, window.NewFixedWindows(time.Minute), records)

	_ = p // run with beamx.Run(ctx, p) and --runner=prism (not the legacy direct runner)
}
