package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"

	"github.com/pinpipe/pinpipe/io/drain"
	"github.com/pinpipe/pinpipe/io/kafkaio"
	"github.com/pinpipe/pinpipe/io/kinesisio"
	"github.com/pinpipe/pinpipe/pipelines/streaming"
	"github.com/pinpipe/pinpipe/runners"
)

func init() {
	addCommand("stream", "run the unbounded streaming pipeline from Kinesis or Kafka", streamCmd)
}

func streamCmd(fs *flag.FlagSet) func(context.Context) error {
	var o streaming.Options
	source := fs.String("source", "kafka", "kafka or kinesis")
	prefix := fs.String("topic-prefix", "pinpipe", "topics <prefix>.pin|geo|user, or streams streaming-<prefix>-pin|geo|user")
	brokers := fs.String("kafka-brokers", "127.0.0.1:9092", "comma-separated Kafka brokers (--source=kafka)")
	group := fs.String("group", "pinpipe-stream", "Kafka consumer group whose offsets the job commits")
	start := fs.String("start", "committed", "where to start: committed (Kafka: the group's offsets, else earliest), earliest (from the beginning) or latest (from now)")
	untilLatest := fs.Bool("until-latest", false, "read what is there now and stop (a bounded catch-up; for backfills and tests)")
	fs.StringVar(&o.Sink, "sink", "", "PostgreSQL DSN to upsert the clean tables, dead letters and category counts into")
	fs.StringVar(&o.Files, "files", "", "directory or s3://bucket/prefix for windowed JSON-lines files of the clean rows")
	fs.DurationVar(&o.Window, "window", time.Minute, "event-time window of the files and the category counts")
	fs.DurationVar(&o.AllowedLateness, "allowed-lateness", streaming.DefaultAllowedLateness, "how late a post may arrive and still update its window's count")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: pinpipe stream --source=kafka|kinesis --sink=postgres://... [flags]\n\n"+
			"Runs until stopped; SIGINT or SIGTERM drains it. Use --runner=prism (or universal/flink/dataflow): the legacy direct\n"+
			"runner cannot run unbounded reads, so --runner=direct runs on prism here.\n\n")
		fs.PrintDefaults()
	}
	return func(ctx context.Context) error {
		if runners.Runner() == "direct" {
			// The legacy direct runner cannot run unbounded splittable DoFns.
			if err := flag.Set("runner", "prism"); err != nil {
				return err
			}
		}
		switch *source {
		case "kafka":
			opts := []kafkaio.ReadOptionFn{kafkaio.ReadGroup(*group)}
			switch *start {
			case "earliest":
				opts = append(opts, kafkaio.ReadStart(kafkaio.StartEarliest))
			case "latest":
				opts = append(opts, kafkaio.ReadStart(kafkaio.StartLatest))
			case "committed":
				opts = append(opts, kafkaio.ReadStart(kafkaio.StartCommitted))
			default:
				return fmt.Errorf("--start must be committed, earliest or latest")
			}
			if *untilLatest {
				opts = append(opts, kafkaio.ReadUntilLatest())
			}
			o.Source = streaming.KafkaSource(strings.Split(*brokers, ","), *prefix, opts...)
		case "kinesis":
			var opts []kinesisio.ReadOptionFn
			switch *start {
			case "earliest", "committed":
				opts = append(opts, kinesisio.ReadTrimHorizon())
			case "latest":
				opts = append(opts, kinesisio.ReadLatest())
			default:
				return fmt.Errorf("--start must be earliest or latest for kinesis")
			}
			if *untilLatest {
				opts = append(opts, kinesisio.ReadUntil(time.Now()))
			}
			o.Source = streaming.KinesisSource(*prefix, opts...)
		default:
			return fmt.Errorf("--source must be kafka or kinesis, not %q", *source)
		}
		p, s := beam.NewPipelineWithRoot()
		if err := streaming.Build(s, o); err != nil {
			return err
		}
		// SIGINT/SIGTERM drains rather than cancels: the reads stop at what
		// they have, windows fire and the sinks flush, then the run ends. A
		// second signal kills the process.
		go func() {
			<-ctx.Done()
			slog.Warn("draining the streaming job: reads stop once caught up; signal again to abort")
			signal.Reset(os.Interrupt, syscall.SIGTERM)
			drain.Request()
		}()
		_, err := runners.Run(context.WithoutCancel(ctx), p)
		return err
	}
}
