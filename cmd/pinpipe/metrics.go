package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/coder"
	jobpb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/jobmanagement_v1"
	pipepb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/pipeline_v1"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/options/jobopts"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/runners/prism"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	kinesistypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/jackc/pgx/v5"

	"github.com/pinpipe/pinpipe/ingest/emulator"
	"github.com/pinpipe/pinpipe/ingest/s3sink"
	"github.com/pinpipe/pinpipe/io/kafkaio"
	"github.com/pinpipe/pinpipe/io/kinesisio"
	"github.com/pinpipe/pinpipe/io/positions"
	"github.com/pinpipe/pinpipe/io/postgres"
	"github.com/pinpipe/pinpipe/pipelines/streaming"
	"github.com/pinpipe/pinpipe/transforms"
)

// This file is the one place the commands' Prometheus metrics are named
// and defined. Each process has one registry (promRegistry); a command
// registers its own metrics on it and serves it with --metrics-listen.

// promRegistry is the process's Prometheus registry.
var promRegistry = prometheus.NewRegistry()

// metricsListenFlag registers --metrics-listen on a command's flags.
func metricsListenFlag(fs *flag.FlagSet) *string {
	return fs.String("metrics-listen", "", "serve Prometheus /metrics, /healthz and /readyz on this host:port, e.g. 127.0.0.1:9464 "+
		"(a bare :port binds 127.0.0.1 only); default off")
}

// serveMetrics serves the registry on addr until the returned stop is
// called; ready says what /readyz answers. A bare ":port" listens on the
// loopback interface only: exposing the metrics wider is asked for by
// naming the address (0.0.0.0:port).
func serveMetrics(addr string, ready func() error) (stop func(), err error) {
	if addr == "" {
		return func() {}, nil
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, usageErrorf("--metrics-listen=%s: %v", addr, err)
	}
	if host == "" {
		host = "127.0.0.1"
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, port))
	if err != nil {
		return nil, fmt.Errorf("--metrics-listen: %w", err)
	}
	promRegistry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(promRegistry, promhttp.HandlerOpts{Registry: promRegistry}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if ready != nil {
			if err := ready(); err != nil {
				http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
				return
			}
		}
		fmt.Fprintln(w, "ready")
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			slog.Error("metrics server stopped", "err", err)
		}
	}()
	note("metrics on http://%s/metrics", ln.Addr())
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	}, nil
}

// s3sinkMetrics are `pinpipe s3sink`'s metrics, read from the sink's stats
// (s3sink.Options.OnStats) when scraped.
type s3sinkMetrics struct {
	mu        sync.Mutex
	st        s3sink.Stats
	lastFlush time.Time
	fatal     bool
}

// newS3SinkMetrics registers the sink's metrics on reg.
func newS3SinkMetrics(reg prometheus.Registerer) *s3sinkMetrics {
	m := &s3sinkMetrics{}
	counter := func(name, help string, v func(s3sink.Stats) int64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "pinpipe", Subsystem: "s3sink", Name: name, Help: help},
			func() float64 {
				m.mu.Lock()
				defer m.mu.Unlock()
				return float64(v(m.st))
			})
	}
	reg.MustRegister(
		counter("records_read_total", "Records read from Kafka, including those read again after a restart or a rebalance.",
			func(s s3sink.Stats) int64 { return s.Records }),
		counter("records_written_total", "Records in the objects written to S3.",
			func(s s3sink.Stats) int64 { return s.ObjectRecords }),
		counter("objects_written_total", "Objects written to S3.",
			func(s s3sink.Stats) int64 { return s.Objects }),
		counter("written_bytes_total", "Bytes of the objects written to S3.",
			func(s s3sink.Stats) int64 { return s.Bytes }),
		counter("commits_total", "Offset commits that succeeded.",
			func(s s3sink.Stats) int64 { return s.Commits }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "pinpipe", Subsystem: "s3sink", Name: "errors_total",
			Help: "Failures: offset commits that failed, and a failure to write S3 (which stops the sink)."},
			func() float64 {
				m.mu.Lock()
				defer m.mu.Unlock()
				n := m.st.CommitFailures
				if m.fatal {
					n++
				}
				return float64(n)
			}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "pinpipe", Subsystem: "s3sink", Name: "last_flush_timestamp_seconds",
			Help: "When objects were last written to S3 (Unix time; 0 before the first)."},
			func() float64 {
				m.mu.Lock()
				defer m.mu.Unlock()
				if m.lastFlush.IsZero() {
					return 0
				}
				return float64(m.lastFlush.UnixNano()) / 1e9
			}),
	)
	return m
}

// observe is the sink's s3sink.Options.OnStats.
func (m *s3sinkMetrics) observe(st s3sink.Stats) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if st.Objects > m.st.Objects {
		m.lastFlush = time.Now()
	}
	m.st = st
}

// failed counts the run's fatal error.
func (m *s3sinkMetrics) failed() {
	m.mu.Lock()
	m.fatal = true
	m.mu.Unlock()
}

// probeCollector is a collector whose metrics are read from an outside
// system when scraped (a broker's offsets, the job's PostgreSQL, the job
// service's metrics): collect sends them, and the up gauge says whether
// that system answered. It is the one home of the scrape's timeout and of
// the up gauge.
type probeCollector struct {
	descs   []*prometheus.Desc
	up      *prometheus.Desc
	collect func(ctx context.Context, ch chan<- prometheus.Metric) error
}

// errNothingYet is collect's answer when there is nothing to ask yet (the
// command has not started): no metric, not even up.
var errNothingYet = errors.New("nothing to collect yet")

// newProbeCollector registers a probeCollector on reg with an up gauge
// named upName (help: upHelp), for the metrics descs.
func newProbeCollector(reg prometheus.Registerer, upName, upHelp string, descs []*prometheus.Desc,
	collect func(ctx context.Context, ch chan<- prometheus.Metric) error) error {
	return reg.Register(&probeCollector{descs: descs, up: prometheus.NewDesc(upName, upHelp, nil, nil), collect: collect})
}

func (c *probeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
	ch <- c.up
}

func (c *probeCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := c.collect(ctx, ch)
	switch {
	case errors.Is(err, errNothingYet):
		return
	case err != nil:
		slog.Debug("metrics", "metric", c.up.String(), "err", err)
		ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 1)
}

// newKafkaLagCollector registers the Kafka metrics of a command
// (subsystem: stream or s3sink) on reg, for the topics it reads (asked at
// each scrape, with the collector's client); close the client when done. They give the consumer
// group's lag per partition, computed when scraped from the group's
// committed offsets against the partitions' end offsets: it is right
// whichever process reads the records (a Flink or Dataflow worker as well
// as this one).
func newKafkaLagCollector(reg prometheus.Registerer, subsystem string, brokers []string, group string,
	topics func(context.Context, *kgo.Client) ([]string, error)) (*kgo.Client, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ClientID("pinpipe-"+subsystem+"-metrics"))
	if err != nil {
		return nil, err
	}
	adm := kadm.NewClient(cl)
	labels := []string{"topic", "partition"}
	committedDesc := prometheus.NewDesc("pinpipe_"+subsystem+"_kafka_committed_offset",
		"The next offset the consumer group has committed, per partition.", labels, nil)
	endDesc := prometheus.NewDesc("pinpipe_"+subsystem+"_kafka_end_offset",
		"The partition's end offset (the next record's).", labels, nil)
	lagDesc := prometheus.NewDesc("pinpipe_"+subsystem+"_kafka_consumer_lag_records",
		"Records between the group's committed offset and the partition's end.", labels, nil)
	err = newProbeCollector(reg, "pinpipe_"+subsystem+"_kafka_up", "1 when the broker answered the last scrape's offset requests.",
		[]*prometheus.Desc{committedDesc, endDesc, lagDesc},
		func(ctx context.Context, ch chan<- prometheus.Metric) error {
			topics, err := topics(ctx, cl)
			if err != nil {
				return err
			}
			if len(topics) == 0 {
				return errNothingYet
			}
			ends, err := adm.ListEndOffsets(ctx, topics...)
			if err != nil {
				return err
			}
			committed, err := adm.FetchOffsetsForTopics(ctx, group, topics...)
			if err != nil {
				return err
			}
			ends.Each(func(e kadm.ListedOffset) {
				if e.Err != nil {
					return
				}
				p := strconv.Itoa(int(e.Partition))
				ch <- prometheus.MustNewConstMetric(endDesc, prometheus.GaugeValue, float64(e.Offset), e.Topic, p)
				o, ok := committed.Lookup(e.Topic, e.Partition)
				if !ok || o.Err != nil || o.At < 0 {
					return // nothing committed yet
				}
				ch <- prometheus.MustNewConstMetric(committedDesc, prometheus.GaugeValue, float64(o.At), e.Topic, p)
				ch <- prometheus.MustNewConstMetric(lagDesc, prometheus.GaugeValue, float64(max(e.Offset-o.At, 0)), e.Topic, p)
			})
			return nil
		})
	if err != nil {
		cl.Close()
		return nil, err
	}
	return cl, nil
}

// s3sinkReady is `pinpipe s3sink`'s /readyz: the S3 bucket answers (one
// HeadBucket attempt, not the sink's retries) and the brokers list the
// topics the sink reads.
func s3sinkReady(client *s3.Client, bucket string, cl *kgo.Client, topicsExpr string) func() error {
	return func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s3sink.CheckBucket(ctx, client, bucket, func(o *s3.Options) { o.RetryMaxAttempts = 1 }); err != nil {
			return fmt.Errorf("S3: %w", err)
		}
		topics, err := s3sink.MatchingTopics(ctx, cl, topicsExpr)
		if err != nil {
			return fmt.Errorf("the Kafka brokers: %w", err)
		}
		if len(topics) > 0 {
			return kafkaReady(ctx, kadm.NewClient(cl), topics)
		}
		return nil
	}
}

// kafkaReady says whether the brokers list the topics' end offsets.
func kafkaReady(ctx context.Context, adm *kadm.Client, topics []string) error {
	ends, err := adm.ListEndOffsets(ctx, topics...)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return fmt.Errorf("the Kafka brokers: %w", err)
	}
	return nil
}

// registerEmulateMetrics registers `pinpipe emulate`'s metrics on reg,
// read from the run's counts (emulator.Config.OnStart) when scraped.
func registerEmulateMetrics(reg prometheus.Registerer) (onStart func(func() emulator.Summary)) {
	var mu sync.Mutex
	var counts func() emulator.Summary
	counter := func(name, help string, v func(emulator.Summary) int64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "pinpipe", Subsystem: "emulate", Name: name, Help: help},
			func() float64 {
				mu.Lock()
				c := counts
				mu.Unlock()
				if c == nil {
					return 0
				}
				return float64(v(c()))
			})
	}
	reg.MustRegister(
		counter("posts_sent_total", "Posts whose records all got through the gateway.", func(s emulator.Summary) int64 { return s.Sent }),
		counter("posts_failed_total", "Posts with a record that did not get through.", func(s emulator.Summary) int64 { return s.Failed }),
		counter("records_sent_total", "Records the gateway accepted.", func(s emulator.Summary) int64 { return s.Records }),
		counter("records_failed_total", "Records given up on.", func(s emulator.Summary) int64 { return s.RecordsFailed }),
		counter("retries_total", "Requests sent again after a transient failure.", func(s emulator.Summary) int64 { return s.Retried }),
	)
	return func(f func() emulator.Summary) {
		mu.Lock()
		counts = f
		mu.Unlock()
	}
}

// streamStore gives `pinpipe stream`'s metrics that live in its
// PostgreSQL: the rows and dead letters written, and per partition or
// shard the seconds since its durable position last moved and, on
// Kinesis, how far behind the stream's tip that position is
// (MillisBehindLatest of a read there). Computed when scraped from what is
// durable, so they are right whichever process runs the pipeline.
type streamStore struct {
	dsn     string
	job     string
	source  string // kafka or kinesis
	streams []string
	kinesis *kinesis.Client
	kafka   *kadm.Client

	rows, deadLetters, sinceCommit, lag, durableLag *prometheus.Desc
}

// newStreamStoreCollector registers the store's metrics on reg. kc is
// needed on Kinesis only, adm on Kafka only.
func newStreamStoreCollector(reg prometheus.Registerer, dsn, job, source string, streams []string, kc *kinesis.Client, adm *kadm.Client) (*streamStore, error) {
	c := &streamStore{dsn: dsn, job: job, source: source, streams: streams, kinesis: kc, kafka: adm,
		rows: prometheus.NewDesc("pinpipe_stream_table_rows",
			"Rows in the job's clean tables (upserted by ind: distinct posts).", []string{"table"}, nil),
		deadLetters: prometheus.NewDesc("pinpipe_stream_dead_letters",
			"Dead letters stored, by table and reason (each bad record once).", []string{"table", "reason"}, nil),
		sinceCommit: prometheus.NewDesc("pinpipe_stream_seconds_since_commit",
			"Seconds since the partition's or shard's durable position last moved.", []string{"stream", "partition"}, nil),
		lag: prometheus.NewDesc("pinpipe_stream_kinesis_lag_seconds",
			"How far behind the shard's tip its durable position is (Kinesis MillisBehindLatest of a read there), per open shard.",
			[]string{"stream", "shard"}, nil),
		durableLag: prometheus.NewDesc("pinpipe_stream_kafka_durable_lag_records",
			"Records between where a restart would resume the partition (the end of its durable positions, every output written) and its end.",
			[]string{"topic", "partition"}, nil),
	}
	err := newProbeCollector(reg, "pinpipe_stream_store_up", "1 when the job's PostgreSQL (and its source) answered the last scrape.",
		[]*prometheus.Desc{c.rows, c.deadLetters, c.sinceCommit, c.lag, c.durableLag}, c.collect)
	if err != nil {
		return nil, err
	}
	return c, nil
}

func (c *streamStore) collect(ctx context.Context, ch chan<- prometheus.Metric) error {
	conn, err := postgres.Connect(ctx, c.dsn)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	for table, name := range map[string]string{transforms.TablePin: postgres.StreamPinTable,
		transforms.TableGeo: postgres.StreamGeoTable, transforms.TableUser: postgres.StreamUserTable} {
		var n int64
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM "+name).Scan(&n); err == nil {
			ch <- prometheus.MustNewConstMetric(c.rows, prometheus.GaugeValue, float64(n), table)
		}
	}
	if rows, err := conn.Query(ctx, "SELECT table_name, reason, count(*) FROM "+postgres.StreamDeadLetterTable+" GROUP BY 1, 2"); err == nil {
		for rows.Next() {
			var table, reason string
			var n int64
			if rows.Scan(&table, &reason, &n) == nil {
				ch <- prometheus.MustNewConstMetric(c.deadLetters, prometheus.GaugeValue, float64(n), table, reason)
			}
		}
		rows.Close()
	}
	q := `SELECT topic, partition::text, extract(epoch FROM now() - max(updated_at)) FROM ` + kafkaio.PositionTable +
		` WHERE job = $1 AND topic = ANY($2) AND to_offset >= from_offset GROUP BY 1, 2`
	if c.source == "kinesis" {
		q = `SELECT stream, shard, extract(epoch FROM now() - updated_at) FROM ` + kinesisio.CheckpointTable +
			` WHERE job = $1 AND stream = ANY($2) AND sequence_number <> '' AND NOT closed`
	}
	positions := map[string]map[string]string{} // Kinesis: stream -> shard -> checkpoint
	if rows, err := conn.Query(ctx, q, c.job, c.streams); err == nil {
		for rows.Next() {
			var stream, part string
			var secs float64
			if rows.Scan(&stream, &part, &secs) == nil {
				ch <- prometheus.MustNewConstMetric(c.sinceCommit, prometheus.GaugeValue, secs, stream, part)
			}
		}
		rows.Close()
	}
	if c.source != "kinesis" {
		return c.collectKafka(ctx, conn, ch)
	}
	rows, err := conn.Query(ctx, `SELECT stream, shard, sequence_number FROM `+kinesisio.CheckpointTable+` WHERE job = $1 AND stream = ANY($2)`, c.job, c.streams)
	if err == nil {
		for rows.Next() {
			var stream, shard, seq string
			if rows.Scan(&stream, &shard, &seq) == nil {
				if positions[stream] == nil {
					positions[stream] = map[string]string{}
				}
				positions[stream][shard] = seq
			}
		}
		rows.Close()
	}
	for _, stream := range c.streams {
		out, err := c.kinesis.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String(stream)})
		if err != nil {
			return err
		}
		for _, s := range out.Shards {
			if s.SequenceNumberRange != nil && s.SequenceNumberRange.EndingSequenceNumber != nil {
				continue // closed: no tip to be behind
			}
			in := &kinesis.GetShardIteratorInput{StreamName: aws.String(stream), ShardId: s.ShardId,
				ShardIteratorType: kinesistypes.ShardIteratorTypeTrimHorizon}
			if seq := positions[stream][aws.ToString(s.ShardId)]; seq != "" {
				in.ShardIteratorType, in.StartingSequenceNumber = kinesistypes.ShardIteratorTypeAfterSequenceNumber, aws.String(seq)
			}
			it, err := c.kinesis.GetShardIterator(ctx, in)
			if err != nil {
				return err
			}
			recs, err := c.kinesis.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it.ShardIterator, Limit: aws.Int32(1)})
			if err != nil {
				return err
			}
			if recs.MillisBehindLatest != nil {
				lag := float64(*recs.MillisBehindLatest) / 1000
				if len(recs.Records) > 0 && lag == 0 {
					// kinesalite says 0 whatever is left: the oldest
					// record not durable says more.
					lag = time.Since(aws.ToTime(recs.Records[0].ApproximateArrivalTimestamp)).Seconds()
				}
				ch <- prometheus.MustNewConstMetric(c.lag, prometheus.GaugeValue, lag, stream, aws.ToString(s.ShardId))
			}
		}
	}
	return nil
}

// collectKafka gives each partition's records between where a restart
// would resume (its durable start, kafkaio.DurableStart) and its end:
// what the job would read again, or has not read yet. The group's lag
// (newKafkaLagCollector) falls as soon as the records are read; this one
// only once every output of theirs, window panes included, is written.
func (c *streamStore) collectKafka(ctx context.Context, conn *pgx.Conn, ch chan<- prometheus.Metric) error {
	if c.kafka == nil {
		return nil
	}
	ends, err := c.kafka.ListEndOffsets(ctx, c.streams...)
	if err != nil {
		return err
	}
	var errs []error
	ends.Each(func(e kadm.ListedOffset) {
		if e.Err != nil {
			return
		}
		start, ok, err := kafkaio.DurableStart(ctx, conn, c.job, e.Topic, e.Partition)
		if err != nil {
			errs = append(errs, err)
			return
		}
		if ok {
			ch <- prometheus.MustNewConstMetric(c.durableLag, prometheus.GaugeValue, float64(max(e.Offset-start, 0)),
				e.Topic, strconv.Itoa(int(e.Partition)))
		}
	})
	return errors.Join(errs...)
}

// ready says whether the job can run: its PostgreSQL answers and its
// position tables can be read (the read's start is loaded from them), and
// the source answers (Kafka: the brokers list the topics' end offsets;
// Kinesis: the streams list their shards).
func (c *streamStore) ready(kafkaAdm *kadm.Client) func() error {
	return func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if c.dsn != "" {
			conn, err := postgres.Connect(ctx, c.dsn)
			if err != nil {
				return fmt.Errorf("PostgreSQL: %w", err)
			}
			defer conn.Close(context.WithoutCancel(ctx))
			table := kafkaio.PositionTable
			if c.source == "kinesis" {
				table = kinesisio.CheckpointTable
			}
			if _, err := conn.Exec(ctx, "SELECT 1 FROM "+table+" LIMIT 1"); err != nil {
				return fmt.Errorf("the positions (%s): %w", table, err)
			}
		}
		if kafkaAdm != nil {
			if err := kafkaReady(ctx, kafkaAdm, c.streams); err != nil {
				return err
			}
		}
		if c.kinesis != nil {
			for _, s := range c.streams {
				if _, err := c.kinesis.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String(s)}); err != nil {
					return fmt.Errorf("the Kinesis streams: %w", err)
				}
			}
		}
		return nil
	}
}

// jobMetricsUp names the gauge of whether the job service answered.
const jobMetricsUp = "pinpipe_stream_job_metrics_up"

// newJobMetricsCollector registers on reg the streaming job's Beam
// metrics that /metrics shows, read when scraped from the job service
// that runs the job (GetJobMetrics of the job named job): the records
// read per Kafka partition or Kinesis shard (positions.ReadCounter) and
// the records late by their source's watermark (streaming.MetricLate).
// Read from the runner, they count what every worker did, wherever it
// runs; a counter restarts at 0 with a new job, as Prometheus counters
// do when their process restarts. lateChecked says the job checks for
// late records (it does with durable positions): then a table with none
// yet shows 0.
func newJobMetricsCollector(reg prometheus.Registerer, svc jobpb.JobServiceClient, job string, lateChecked bool) error {
	kafkaRead := prometheus.NewDesc("pinpipe_stream_kafka_records_read_total",
		"Records the job read from the Kafka partition (the runner's count: records read again after a restart or a retried bundle count again).",
		[]string{"topic", "partition"}, nil)
	kinesisRead := prometheus.NewDesc("pinpipe_stream_kinesis_records_read_total",
		"Records the job read from the Kinesis shard (the runner's count: records read again after a restart or a retried bundle count again).",
		[]string{"stream", "shard"}, nil)
	late := prometheus.NewDesc("pinpipe_stream_records_late_total",
		"An estimate of the records the windowing drops as too late for their window's count: those whose event time was behind "+
			"their own partition's or shard's watermark less the allowed lateness when read (checked before windowing, since the "+
			"runner drops late records without a trace; the windowing itself goes by the slowest partition's watermark). "+
			"Such records still reach the tables and files.",
		[]string{"table"}, nil)
	lateTables := map[string]string{}
	for _, t := range transforms.Tables {
		lateTables[streaming.MetricLate(t)] = t
	}
	return newProbeCollector(reg, jobMetricsUp, "1 when the job service answered the last scrape with the job's metrics.",
		[]*prometheus.Desc{kafkaRead, kinesisRead, late},
		func(ctx context.Context, ch chan<- prometheus.Metric) error {
			counters, err := jobCounters(ctx, svc, job)
			if err != nil {
				return err
			}
			for key, v := range counters {
				switch key.namespace {
				case positions.ReadMetricsNamespace:
					source, stream, part, ok := positions.ParseReadCounter(key.name)
					switch {
					case ok && source == "kafka":
						ch <- prometheus.MustNewConstMetric(kafkaRead, prometheus.CounterValue, float64(v), stream, part)
					case ok && source == "kinesis":
						ch <- prometheus.MustNewConstMetric(kinesisRead, prometheus.CounterValue, float64(v), stream, part)
					}
				case transforms.MetricsNamespace:
					if t, ok := lateTables[key.name]; ok {
						ch <- prometheus.MustNewConstMetric(late, prometheus.CounterValue, float64(v), t)
					}
				}
			}
			for name, t := range lateTables {
				if _, ok := counters[counterKey{transforms.MetricsNamespace, name}]; !ok && lateChecked {
					// None late yet: the counter is 0, not unknown.
					ch <- prometheus.MustNewConstMetric(late, prometheus.CounterValue, 0, t)
				}
			}
			return nil
		})
}

// counterKey names a Beam counter.
type counterKey struct{ namespace, name string }

// jobCounters reads the user counters of the job named job from svc,
// summed over the steps that update each one: the committed values where
// the runner gives them (the bundles that succeeded), else the attempted
// ones. Of several jobs of that name, a running one is read.
func jobCounters(ctx context.Context, svc jobpb.JobServiceClient, job string) (map[counterKey]int64, error) {
	jobs, err := svc.GetJobs(ctx, &jobpb.GetJobsRequest{})
	if err != nil {
		return nil, err
	}
	id := ""
	for _, j := range jobs.GetJobInfo() {
		if j.GetJobName() == job && (id == "" || j.GetState() == jobpb.JobState_RUNNING) {
			id = j.GetJobId()
		}
	}
	if id == "" {
		return nil, errNothingYet // not submitted yet
	}
	resp, err := svc.GetJobMetrics(ctx, &jobpb.GetJobMetricsRequest{JobId: id})
	if err != nil {
		return nil, err
	}
	sum := func(infos []*pipepb.MonitoringInfo) map[counterKey]int64 {
		out := map[counterKey]int64{}
		for _, mi := range infos {
			if mi.GetUrn() != "beam:metric:user:sum_int64:v1" {
				continue
			}
			v, err := coder.DecodeVarInt(bytes.NewReader(mi.GetPayload()))
			if err != nil {
				continue
			}
			out[counterKey{mi.GetLabels()["NAMESPACE"], mi.GetLabels()["NAME"]}] += v
		}
		return out
	}
	counters := sum(resp.GetMetrics().GetAttempted())
	for k, v := range sum(resp.GetMetrics().GetCommitted()) {
		counters[k] = v
	}
	return counters, nil
}

// jobService connects to the job service a streaming run on runner goes
// to, so that /metrics can read the job's Beam metrics while it runs:
// --endpoint's (flink, universal, or prism there), or for prism in this
// process a job server started here, at an address known before the run
// (prism.Execute starts one too, but only once the run starts, and sets
// --endpoint from the run's goroutine). Nothing for Dataflow, whose
// metrics are in its console. It sets --job_name, when not given, to a
// name of this run's own, by which the job is found.
func jobService(ctx context.Context, runner string) (svc jobpb.JobServiceClient, job string, closeFn func(), err error) {
	if runner == "dataflow" {
		return nil, "", func() {}, nil
	}
	if *jobopts.JobName == "" {
		*jobopts.JobName = fmt.Sprintf("pinpipe-stream-%d", time.Now().UnixNano())
	}
	job = *jobopts.JobName
	if runner == "prism" && *jobopts.Endpoint == "" {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, "", nil, err
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		svc, err := prism.CreateJobServer(ctx, prism.Options{Port: port})
		if err != nil {
			return nil, "", nil, fmt.Errorf("starting prism's job server: %w", err)
		}
		*jobopts.Endpoint = fmt.Sprintf("localhost:%d", port)
		if *jobopts.EnvironmentType == "" {
			*jobopts.EnvironmentType = "loopback"
		}
		return svc, job, func() {}, nil
	}
	conn, err := grpc.NewClient(*jobopts.Endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, "", nil, fmt.Errorf("--endpoint=%s: %w", *jobopts.Endpoint, err)
	}
	return jobpb.NewJobServiceClient(conn), job, func() { conn.Close() }, nil
}
