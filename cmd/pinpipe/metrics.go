package main

import (
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

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pinpipe/pinpipe/ingest/emulator"
	"github.com/pinpipe/pinpipe/ingest/s3sink"
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

// kafkaLagCollector gives `pinpipe stream`'s Kafka consumer lag, computed
// when scraped from the group's committed offsets against the partitions'
// end offsets: it is right whichever process reads the records (a Flink
// or Dataflow worker as well as this one).
type kafkaLagCollector struct {
	adm       *kadm.Client
	group     string
	topics    []string
	committed *prometheus.Desc
	end       *prometheus.Desc
	lag       *prometheus.Desc
	up        *prometheus.Desc
}

// newKafkaLagCollector registers the stream's Kafka metrics on reg; close
// the client when done.
func newKafkaLagCollector(reg prometheus.Registerer, brokers []string, group string, topics []string) (*kgo.Client, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ClientID("pinpipe-stream-metrics"))
	if err != nil {
		return nil, err
	}
	labels := []string{"topic", "partition"}
	c := &kafkaLagCollector{
		adm: kadm.NewClient(cl), group: group, topics: topics,
		committed: prometheus.NewDesc("pinpipe_stream_kafka_committed_offset",
			"The next offset the consumer group has committed, per partition.", labels, nil),
		end: prometheus.NewDesc("pinpipe_stream_kafka_end_offset",
			"The partition's end offset (the next record's).", labels, nil),
		lag: prometheus.NewDesc("pinpipe_stream_kafka_consumer_lag_records",
			"Records between the group's committed offset and the partition's end.", labels, nil),
		up: prometheus.NewDesc("pinpipe_stream_kafka_up",
			"1 when the broker answered the last scrape's offset requests.", nil, nil),
	}
	if err := reg.Register(c); err != nil {
		cl.Close()
		return nil, err
	}
	return cl, nil
}

func (c *kafkaLagCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.committed
	ch <- c.end
	ch <- c.lag
	ch <- c.up
}

func (c *kafkaLagCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ends, err := c.adm.ListEndOffsets(ctx, c.topics...)
	var committed kadm.OffsetResponses
	if err == nil {
		committed, err = c.adm.FetchOffsetsForTopics(ctx, c.group, c.topics...)
	}
	if err != nil {
		ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 1)
	ends.Each(func(e kadm.ListedOffset) {
		if e.Err != nil {
			return
		}
		p := strconv.Itoa(int(e.Partition))
		ch <- prometheus.MustNewConstMetric(c.end, prometheus.GaugeValue, float64(e.Offset), e.Topic, p)
		o, ok := committed.Lookup(e.Topic, e.Partition)
		if !ok || o.Err != nil || o.At < 0 {
			return // nothing committed yet
		}
		ch <- prometheus.MustNewConstMetric(c.committed, prometheus.GaugeValue, float64(o.At), e.Topic, p)
		ch <- prometheus.MustNewConstMetric(c.lag, prometheus.GaugeValue, float64(max(e.Offset-o.At, 0)), e.Topic, p)
	})
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
