package demo

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"
)

// DescribeOptions are what the commands Describe prints need besides the
// system.
type DescribeOptions struct {
	// Bin is how to invoke pinpipe (default "pinpipe").
	Bin string
	// Postgres, when set, is passed to the streaming job (--sink) and the
	// batch job (--warehouse).
	Postgres string
}

// Describe prints every endpoint of the running system and the exact
// commands that emulate posts into it, stream from it and run the batch job
// over what the sink lands, for `pinpipe up`.
func (s *System) Describe(w io.Writer, d DescribeOptions) {
	if d.Bin == "" {
		d.Bin = "pinpipe"
	}
	o := s.o
	gw := s.GatewayURL()
	row := func(label, format string, args ...any) {
		fmt.Fprintf(w, "  %-30s %s\n", label, fmt.Sprintf(format, args...))
	}
	fmt.Fprintf(w, "endpoints\n")
	if s.kinesis != nil {
		row("gateway (REST Proxy, Kinesis)", "%s", gw)
	} else {
		row("gateway (REST Proxy v2)", "%s", gw)
	}
	row("gateway metrics (Prometheus)", "%s/metrics   health: %s/healthz", gw, gw)
	row("Kafka (kfake)", "%s   topics %s (%d partitions each)", s.Kafka.Addr(), strings.Join(s.Topics(), ", "), o.Partitions)
	row("S3 (gofakes3)", "%s   bucket %s, any credentials", s.S3.URL(), o.Bucket)
	row("S3 sink (in process)", "%s\\.(pin|geo|user) → %s   (%d records an object, or every %s)",
		o.TopicPrefix, s.SinkURL(), o.SinkFlushSize, o.SinkRotate)
	if s.kinesis != nil {
		row("Kinesis (kinesalite)", "%s   streams %s", s.kinesis.URL, strings.Join(s.Streams(), ", "))
	}
	row("data", "%s (kept across restarts)", o.Dir)

	// The AWS SDK settings that point the jobs at the local S3 (and
	// Kinesis), inline so that each command works as pasted.
	creds := " AWS_ACCESS_KEY_ID=" + AccessKeyID + " AWS_SECRET_ACCESS_KEY=" + SecretAccessKey + " AWS_REGION=" + Region + " "
	s3Env := "AWS_ENDPOINT_URL_S3=" + s.S3.URL() + creds + "AWS_RESPONSE_CHECKSUM_VALIDATION=when_required "
	kinesisEnv := "AWS_ENDPOINT_URL_KINESIS=" + s.KinesisURL() + creds
	sink, warehouse := "", ""
	if d.Postgres != "" {
		sink, warehouse = " --sink="+shellQuote(d.Postgres), " --warehouse="+shellQuote(d.Postgres)
	}
	streamDir := shellQuote(filepath.Join(o.Dir, "stream"))
	batchDir := shellQuote(filepath.Join(o.Dir, "batch"))

	fmt.Fprintf(w, "\nemulate posts through the gateway (into Kafka%s)\n", map[bool]string{true: " or Kinesis", false: ""}[s.kinesis != nil])
	fmt.Fprintf(w, "  %s emulate --gateway=%s --target=kafka --topic-prefix=%s --rate=50 --count=5000\n", d.Bin, gw, o.TopicPrefix)
	if s.kinesis != nil {
		fmt.Fprintf(w, "  %s emulate --gateway=%s --target=kinesis --topic-prefix=%s --rate=50 --count=5000\n", d.Bin, gw, o.TopicPrefix)
	}
	fmt.Fprintf(w, "\nstream (Ctrl-C drains it)\n")
	fmt.Fprintf(w, "  %s stream --runner=prism --source=kafka --kafka-brokers=%s --topic-prefix=%s --files=%s%s\n",
		d.Bin, s.Kafka.Addr(), o.TopicPrefix, streamDir, sink)
	if s.kinesis != nil {
		fmt.Fprintf(w, "  %s%s stream --runner=prism --source=kinesis --start=earliest --topic-prefix=%s --files=%s%s\n",
			kinesisEnv, d.Bin, o.TopicPrefix, shellQuote(filepath.Join(o.Dir, "stream-kinesis")), sink)
	}
	fmt.Fprintf(w, "\nbatch job over what the sink landed\n")
	fmt.Fprintf(w, "  %s%s batch --input=%s --topic-prefix=%s --output=%s%s\n", s3Env, d.Bin, s.SinkURL(), o.TopicPrefix, batchDir, warehouse)
	fmt.Fprintf(w, "  (then open %s)\n", filepath.Join(o.Dir, "batch", "report.html"))
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:=@,+%", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
