package positions

import (
	"strings"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
)

// ReadMetricsNamespace is the namespace of the Beam counters of records
// read per partition (Kafka) or shard (Kinesis), so that a runner's UI
// and the job service's metrics (pinpipe stream's /metrics) show how each
// one advances. A counter is named <source>/<stream>/<part>: Kafka topic
// and Kinesis stream names cannot hold a slash, nor can partition numbers
// and shard IDs, so the name parses back (ParseReadCounter).
const ReadMetricsNamespace = "pinpipe.records_read"

// ReadCounter is the counter of the records read from one partition or
// shard of a stream; source is "kafka" or "kinesis".
func ReadCounter(source, stream, part string) beam.Counter {
	return beam.NewCounter(ReadMetricsNamespace, readCounterName(source, stream, part))
}

func readCounterName(source, stream, part string) string { return source + "/" + stream + "/" + part }

// ParseReadCounter splits a ReadCounter's name.
func ParseReadCounter(name string) (source, stream, part string, ok bool) {
	source, rest, ok1 := strings.Cut(name, "/")
	stream, part, ok2 := strings.Cut(rest, "/")
	if !ok1 || !ok2 || source == "" || stream == "" || part == "" || strings.Contains(part, "/") {
		return "", "", "", false
	}
	return source, stream, part, true
}
