package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pinpipe/pinpipe/io/drain"
	"github.com/pinpipe/pinpipe/io/files"
	"github.com/pinpipe/pinpipe/io/icebergio"
	"github.com/pinpipe/pinpipe/io/kafkaio"
	"github.com/pinpipe/pinpipe/io/kinesisio"
	"github.com/pinpipe/pinpipe/io/postgres"
	"github.com/pinpipe/pinpipe/pipelines/batch"
	"github.com/pinpipe/pinpipe/pipelines/streaming"
	"github.com/pinpipe/pinpipe/runners"
	"github.com/pinpipe/pinpipe/transforms"
)

func init() {
	addCommand("stream", "run the unbounded streaming pipeline from Kinesis or Kafka", streamCmd)
	helpNotes["stream"] = "Runs until stopped; SIGINT or SIGTERM drains it (bounded by --drain-timeout). The legacy direct runner cannot run unbounded reads,\n" +
		"so --runner=direct runs on prism here (or use universal, flink, dataflow)."
}

func streamCmd(fs *flag.FlagSet) func(context.Context) error {
	var o streaming.Options
	source := fs.String("source", "kafka", "kafka or kinesis")
	prefix := fs.String("topic-prefix", "pinpipe", "topics <prefix>.pin|geo|user, or streams streaming-<prefix>-pin|geo|user")
	brokers := fs.String("kafka-brokers", "127.0.0.1:9092", "comma-separated Kafka brokers (--source=kafka)")
	group := fs.String("group", "pinpipe-stream", "Kafka group the read offsets go to (see --start)")
	start := fs.String("start", "committed", "where to start: committed (Kafka: each partition after its durable positions in "+kafkaio.PositionTable+", else the group's offsets; Kinesis: each shard after its checkpoint; else earliest), earliest (from the beginning) or latest (from now)")
	jobName := fs.String("job-name", "pinpipe-stream", "the name the positions (Kafka) or the shards' checkpoints and lease (Kinesis) are kept under; a second Kinesis job with the same name cannot read the same streams")
	checkpointDSN := fs.String("checkpoint-dsn", "", "PostgreSQL DSN of the checkpoint tables ("+kafkaio.PositionTable+", "+kinesisio.CheckpointTable+"); default: --sink")
	untilLatest := fs.Bool("until-latest", false, "read what is there now and stop (a bounded catch-up; for backfills and tests)")
	fs.StringVar(&o.Sink, "sink", "", "PostgreSQL DSN to upsert the clean tables, dead letters and category counts into")
	fs.StringVar(&o.Files, "files", "", "directory or s3://bucket/prefix for windowed JSON-lines files of the clean rows")
	fs.DurationVar(&o.Window, "window", time.Minute, "event-time window of the files and the category counts")
	format := fs.String("table-format", batch.FormatJSONL, "the --files output: "+batch.FormatJSONL+" (windowed JSON-lines files) or "+batch.FormatIceberg+
		" (Iceberg tables <topic prefix>_stream.<table> in --iceberg-warehouse, each pane committed once; needs --sink or --checkpoint-dsn)")
	icebergFlags(fs, &o.Iceberg, "<files>/"+icebergio.WarehouseDir, "<warehouse>/<topic prefix>_stream/<table>")
	fs.DurationVar(&o.AllowedLateness, "allowed-lateness", streaming.DefaultAllowedLateness, "how late a post may arrive and still update its window's count")
	metricsListen := metricsListenFlag(fs)
	restarts := restartFlags(fs)
	return func(ctx context.Context) error {
		// The first signal drains the job rather than cancelling it: its
		// reads see this marker, stop at what they have, windows fire and
		// the sinks flush. runMain bounds the drain (--drain-timeout).
		marker, err := drain.NewMarker()
		if err != nil {
			return err
		}
		defer marker.Close()
		runCtx := context.WithoutCancel(ctx)
		switch *format {
		case batch.FormatJSONL:
			o.Iceberg = icebergio.Options{}
		case batch.FormatIceberg:
			if o.Iceberg.Warehouse == "" {
				if o.Files == "" {
					return usageErrorf("--table-format=iceberg needs --iceberg-warehouse or --files")
				}
				o.Iceberg.Warehouse = files.Join(o.Files, icebergio.WarehouseDir)
			}
			o.Files = ""
			o.Iceberg.Namespace = icebergio.StreamNamespace(*prefix)
		default:
			return usageErrorf("--table-format must be %s or %s, not %q", batch.FormatJSONL, batch.FormatIceberg, *format)
		}
		runner := runners.ForUnbounded(runners.Runner())
		switch *source {
		case "kafka":
			opts := []kafkaio.ReadOptionFn{kafkaio.ReadGroup(*group), kafkaio.ReadDrainMarker(marker.Path())}
			switch *start {
			case "earliest":
				opts = append(opts, kafkaio.ReadStart(kafkaio.StartEarliest))
			case "latest":
				opts = append(opts, kafkaio.ReadStart(kafkaio.StartLatest))
			case "committed":
				opts = append(opts, kafkaio.ReadStart(kafkaio.StartCommitted))
			default:
				return usageErrorf("--start must be committed, earliest or latest, not %q", *start)
			}
			if *untilLatest {
				opts = append(opts, kafkaio.ReadUntilLatest())
			}
			dsn := *checkpointDSN
			if dsn == "" {
				dsn = o.Sink
			}
			if dsn != "" {
				// Positions recorded only once the outputs are written,
				// and the restart from them: no window lost to a crash.
				opts = append(opts, kafkaio.ReadDurablePositions(dsn, *jobName))
				o.DurableSource = streaming.KafkaDurableSource(kafkaio.ParseBrokers(*brokers), *prefix, opts...)
				o.Positions, o.Job = dsn, *jobName
			} else {
				o.Source = streaming.KafkaSource(kafkaio.ParseBrokers(*brokers), *prefix, opts...)
			}
		case "kinesis":
			dsn := *checkpointDSN
			if dsn == "" {
				dsn = o.Sink
			}
			opts := []kinesisio.ReadOptionFn{kinesisio.ReadDrainMarker(marker.Path())}
			if dsn != "" {
				// Positions recorded only once the outputs are written,
				// window panes included, and the restart from them.
				opts = append(opts, kinesisio.ReadDurablePositions(dsn, *jobName))
			}
			switch *start {
			case "committed":
				if dsn == "" {
					return usageErrorf("--start=committed on Kinesis needs a checkpoint table: give --sink (PostgreSQL) or --checkpoint-dsn, or --start=earliest|latest")
				}
				opts = append(opts, kinesisio.ReadCommitted())
			case "earliest":
				opts = append(opts, kinesisio.ReadTrimHorizon())
			case "latest":
				opts = append(opts, kinesisio.ReadLatest())
			default:
				return usageErrorf("--start must be committed, earliest or latest, not %q", *start)
			}
			if *untilLatest {
				opts = append(opts, kinesisio.ReadUntil(time.Now()))
			}
			if dsn != "" {
				o.DurableSource = streaming.KinesisDurableSource(*prefix, opts...)
				o.Positions, o.Job = dsn, *jobName
			} else {
				o.Source = streaming.KinesisSource(*prefix, opts...)
			}
			if dsn != "" && !runners.DryRun() {
				// The lease is this process's: it lasts as long as the
				// job runs from here (prism, or a runner the launcher
				// waits on).
				var streams []string
				for _, t := range transforms.Tables {
					streams = append(streams, streaming.KinesisStream(*prefix, t))
				}
				lease, err := kinesisio.AcquireLease(ctx, dsn, *jobName, streams)
				if err != nil {
					return err
				}
				defer lease.Close()
				var cancelRun context.CancelCauseFunc
				runCtx, cancelRun = context.WithCancelCause(runCtx)
				defer cancelRun(nil)
				go watchLease(runCtx, lease, cancelRun)
			}
		default:
			return usageErrorf("--source must be kafka or kinesis, not %q", *source)
		}
		if o.Iceberg.Warehouse != "" && o.Positions == "" {
			return usageErrorf("--table-format=iceberg commits exactly once by the durable positions: give --sink or --checkpoint-dsn (PostgreSQL)")
		}
		p, s := beam.NewPipelineWithRoot()
		if err := streaming.Build(s, o); err != nil {
			return err
		}
		if !runners.DryRun() {
			if err := createOutputs(ctx, o); err != nil {
				return err
			}
		}
		note("pinpipe stream: %s; writing %s; %v windows; on the %s runner; Ctrl-C drains it (for up to --drain-timeout=%v)",
			describeSource(*source, *brokers, *prefix, *start, *group), describeOutputs(o), o.Window, runner, drainTimeout)
		if *metricsListen != "" && !runners.DryRun() {
			var streams []string
			var adm *kadm.Client
			var kc *kinesis.Client
			for _, t := range transforms.Tables {
				if *source == "kafka" {
					streams = append(streams, streaming.KafkaTopic(*prefix, t))
				} else {
					streams = append(streams, streaming.KinesisStream(*prefix, t))
				}
			}
			if *source == "kafka" {
				cl, err := newKafkaLagCollector(promRegistry, "stream", kafkaio.ParseBrokers(*brokers), *group,
					func(context.Context, *kgo.Client) ([]string, error) { return streams, nil })
				if err != nil {
					return err
				}
				defer cl.Close()
				adm = kadm.NewClient(cl)
			} else {
				cfg, err := awsconfig.LoadDefaultConfig(ctx)
				if err != nil {
					return err
				}
				kc = kinesis.NewFromConfig(cfg)
			}
			store := &streamStore{source: *source, streams: streams, kinesis: kc}
			if o.Positions != "" {
				var err error
				if store, err = newStreamStoreCollector(promRegistry, o.Positions, o.Job, *source, streams, kc, adm); err != nil {
					return err
				}
			}
			svc, job, closeSvc, err := jobService(ctx, runner)
			if err != nil {
				return err
			}
			defer closeSvc()
			if svc != nil {
				if err := newJobMetricsCollector(promRegistry, svc, job, o.Positions != ""); err != nil {
					return err
				}
			}
			stop, err := serveMetrics(*metricsListen, store.ready(adm))
			if err != nil {
				return err
			}
			defer stop()
		}
		runDone := make(chan struct{})
		defer close(runDone)
		go func() {
			select {
			case <-ctx.Done():
			case <-runDone: // no signal: the run ended by itself
				return
			}
			if err := marker.Request(); err != nil {
				slog.Error("requesting the streaming job's drain", "err", err)
			}
		}()
		for {
			_, err = runners.RunOn(runCtx, runner, p)
			if cause := context.Cause(runCtx); cause != nil && !errors.Is(cause, context.Canceled) {
				return cause
			}
			if err == nil || runner != "prism" || ctx.Err() != nil || drain.Requested(marker.Path()) || !restarts.allow(time.Now()) {
				return err
			}
			// The cause in one line: the runner's error holds the plan.
			slog.Error("the streaming job failed; restarting it from its durable positions", "err", rootCause(err.Error()),
				"in", restarts.Delay, "restarts_this_hour", len(restarts.done), "of", restarts.Attempts)
			slog.Debug("the failed run", "err", err)
			select {
			case <-ctx.Done(): // a signal: stop rather than restart
				return err
			case <-time.After(restarts.Delay):
			}
		}
	}
}

// restartPolicy is --restart-attempts and --restart-delay: Flink's
// failure-rate restart strategy for a job run by prism in this process. A
// failed run is restarted after Delay, at most Attempts times within any
// hour; past that the command fails. A restart resumes from the durable
// positions, so it loses and doubles nothing (without --sink or
// --checkpoint-dsn it starts from the group's offsets, as any restart
// would). Why here: prism has no restart of its own, and v2.77 fails a job
// now and then on a loaded machine by its own race (RELIABILITY.md). On
// flink, universal and dataflow the runner restarts failed work itself.
type restartPolicy struct {
	Attempts int
	Delay    time.Duration
	done     []time.Time // restarts within the last hour
}

func restartFlags(fs *flag.FlagSet) *restartPolicy {
	rp := &restartPolicy{}
	fs.IntVar(&rp.Attempts, "restart-attempts", 5, "on prism: restarts per hour of a failed job, from its durable positions")
	fs.DurationVar(&rp.Delay, "restart-delay", 10*time.Second, "on prism: the wait before a restart")
	return rp
}

// allow records a restart at now and says whether it is within the
// policy.
func (rp *restartPolicy) allow(now time.Time) bool {
	rp.done = slices.DeleteFunc(rp.done, func(t time.Time) bool { return now.Sub(t) >= time.Hour })
	if len(rp.done) >= rp.Attempts {
		return false
	}
	rp.done = append(rp.done, now)
	return true
}

// watchLease checks the job's lease every few seconds and ends the run if
// its session is lost: another job may take the lease then, and two jobs
// recording one stream's positions would make them meaningless. A
// supervisor restarts the job, which resumes from the checkpoints.
func watchLease(ctx context.Context, lease *kinesisio.Lease, cancel context.CancelCauseFunc) {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := lease.Check(ctx); err != nil && ctx.Err() == nil {
				slog.Error("the job's lease on its Kinesis streams is lost; stopping", "err", err)
				cancel(fmt.Errorf("stopped: %w", err))
				return
			}
		}
	}
}

// createOutputs makes the job's outputs before it runs, so that they are
// there as the README lists them before the first row or dead letter: the
// PostgreSQL tables, the per-table directories of a local --files, and the
// Iceberg catalog's namespace.
func createOutputs(ctx context.Context, o streaming.Options) error {
	if o.Sink != "" {
		if err := postgres.CreateStreamTables(ctx, o.Sink); err != nil {
			return fmt.Errorf("--sink: creating the tables: %w", err)
		}
	}
	if o.Iceberg.Warehouse != "" {
		// The catalog and the namespace, so that a wrong catalog fails
		// here rather than in every window pane.
		cat, err := icebergio.Open(ctx, o.Iceberg)
		if err != nil {
			return err
		}
		icebergio.Close(cat)
	}
	if strings.Contains(o.Files, "://") {
		// An object store has no directories to make, but a listing fails
		// as the job's writes would on a missing bucket, no region or no
		// access: here, in one line, before the job runs.
		if _, err := files.Expand(ctx, files.Join(o.Files, "*")); err != nil {
			return fmt.Errorf("--files=%s: %w", o.Files, err)
		}
	}
	if o.Files != "" && !strings.Contains(o.Files, "://") {
		for _, t := range transforms.Tables {
			if err := os.MkdirAll(files.Join(o.Files, t), 0o755); err != nil {
				return fmt.Errorf("--files: %w", err)
			}
		}
	}
	return nil
}

// describeSource says what the job reads, for its start line.
func describeSource(source, brokers, prefix, start, group string) string {
	if source == "kinesis" {
		return fmt.Sprintf("reading Kinesis streams %s (start %s)", streaming.KinesisStream(prefix, "{pin,geo,user}"), start)
	}
	return fmt.Sprintf("reading Kafka at %s, topics %s (start %s, group %s)",
		strings.Join(kafkaio.ParseBrokers(brokers), ","), streaming.KafkaTopic(prefix, "{pin,geo,user}"), start, group)
}

// describeOutputs says what the job writes, for its start line.
func describeOutputs(o streaming.Options) string {
	var outs []string
	if o.Sink != "" {
		outs = append(outs, fmt.Sprintf("tables %s, %s, %s, %s and %s in %s", postgres.StreamPinTable, postgres.StreamGeoTable,
			postgres.StreamUserTable, postgres.StreamDeadLetterTable, postgres.CategoryCountsTable, dsnPlace(o.Sink)))
	}
	if o.Files != "" {
		outs = append(outs, "files "+files.Join(o.Files, "<table>")+"/")
	}
	if o.Iceberg.Warehouse != "" {
		outs = append(outs, "Iceberg tables "+o.Iceberg.Namespace+".<table> in "+o.Iceberg.Warehouse)
	}
	return strings.Join(outs, " and ")
}
