package main

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pinpipe/pinpipe/ingest/s3sink"
	"github.com/pinpipe/pinpipe/io/kafkaio"
)

func init() {
	addCommand("s3sink", "land Kafka topics in S3 exactly once (Confluent S3 sink layout)", s3sinkCmd)
}

func s3sinkCmd(fs *flag.FlagSet) func(context.Context) error {
	var o s3sink.Options
	var brokers string
	fs.StringVar(&brokers, "kafka-brokers", "127.0.0.1:9092", "comma-separated Kafka bootstrap brokers (host:port)")
	fs.StringVar(&o.Topics, "topics", `pinpipe\.(pin|geo|user)`, "regular expression a topic's whole name must match")
	fs.StringVar(&o.Dest, "s3", "", "s3://bucket/prefix to write <prefix>/topics/<topic>/partition=<p>/ under (required); S3 settings come from the AWS SDK's (AWS_REGION, AWS_ENDPOINT_URL_S3, credentials chain)")
	fs.IntVar(&o.FlushSize, "flush-size", 1000, "records per object")
	fs.DurationVar(&o.RotateInterval, "rotate-interval", time.Minute, "longest a record waits before its object is written, also when its partition goes quiet (0: size and shutdown only)")
	fs.StringVar(&o.Group, "group", s3sink.DefaultGroup, "consumer group the offsets are committed to")
	fs.StringVar(&o.InstanceID, "instance-id", "", "static group membership: a sink restarted with the same id gets its partitions back at once")
	fs.BoolVar(&o.Compress, "compress", false, "gzip the objects (.json.gz)")
	metricsListen := metricsListenFlag(fs)
	return func(ctx context.Context) (err error) {
		o.Brokers = kafkaio.ParseBrokers(brokers)
		if o.Dest == "" {
			return usageErrorf("--s3 is required")
		}
		if *metricsListen != "" {
			m := newS3SinkMetrics(promRegistry)
			o.OnStats = m.observe
			// The topics the group reads are those matching now, asked
			// at each scrape: the lag shows from the first scrape on,
			// before the sink has joined its group.
			cl, cerr := newKafkaLagCollector(promRegistry, "s3sink", o.Brokers, o.Group, func(ctx context.Context, cl *kgo.Client) ([]string, error) {
				return s3sink.MatchingTopics(ctx, cl, o.Topics)
			})
			if cerr != nil {
				return cerr
			}
			defer cl.Close()
			if o.S3, cerr = s3sink.NewS3Client(ctx); cerr != nil {
				return cerr
			}
			bucket, _, perr := s3sink.ParseS3URL(o.Dest)
			if perr != nil {
				return usageErrorf("--s3: %v", perr)
			}
			stop, serr := serveMetrics(*metricsListen, s3sinkReady(o.S3, bucket, cl, o.Topics))
			if serr != nil {
				return serr
			}
			defer stop()
			defer func() {
				if err != nil {
					m.failed()
				}
			}()
		}
		o.Started = func(matching []string) {
			note("pinpipe s3sink: reading Kafka at %s, topics matching %q (now: %s), as group %s; writing %s/topics/<topic>/partition=<p>/ "+
				"every %d records or %v%s; Ctrl-C stops it after writing what it holds",
				strings.Join(o.Brokers, ","), o.Topics, orNone(matching), o.Group, strings.TrimSuffix(o.Dest, "/"), o.FlushSize, o.RotateInterval, map[bool]string{true: ", gzipped"}[o.Compress])
			if len(matching) == 0 {
				warn("pinpipe s3sink: no topic matches --topics=%q; waiting for one to be created (a typo? the regex must match a topic's whole name)", o.Topics)
			}
		}
		start := time.Now()
		st, err := s3sink.Run(ctx, o)
		if err != nil && st == (s3sink.Stats{}) {
			return err // it did not start
		}
		fmt.Printf("s3sink: read %d records; wrote %d objects (%d records, %d bytes; %d rewritten where an earlier run had written them); "+
			"%d values wrapped to one line (rawline), %d tombstones skipped; %d records left to the next run; %d commits (%d failed) in %s\n",
			st.Records, st.Objects, st.ObjectRecords, st.Bytes, st.Rewrites, st.Wrapped, st.Tombstones,
			st.Unwritten, st.Commits, st.CommitFailures, time.Since(start).Round(time.Millisecond))
		return err
	}
}

// orNone lists names, or says there are none.
func orNone(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}
