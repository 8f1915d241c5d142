package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	devkafka "github.com/pinpipe/pinpipe/ingest/devserver/kafka"
	devs3 "github.com/pinpipe/pinpipe/ingest/devserver/s3"
	"github.com/pinpipe/pinpipe/ingest/gateway"
	"github.com/pinpipe/pinpipe/internal/faultproxy"
	"github.com/pinpipe/pinpipe/internal/testenv"
)

// startKafka starts a kfake broker (ingest/devserver/kafka) whose topics
// get partitions partitions when first used, closed when the test ends
// (Close may be called before), and a producer to it that writes each
// record to its Partition.
func startKafka(t *testing.T, partitions int) (*devkafka.Server, *kgo.Client) {
	t.Helper()
	quiet := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	k, err := devkafka.Start(context.Background(), devkafka.Options{Listen: "127.0.0.1:0", Partitions: partitions, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { k.Close() })
	prod, err := kgo.NewClient(kgo.SeedBrokers(k.Addr()), kgo.AllowAutoTopicCreation(), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(prod.Close)
	return k, prod
}

// startS3 starts an S3 server (gofakes3, ingest/devserver/s3) with the
// bucket "lake", closed when the test ends.
func startS3(t *testing.T) *devs3.Server {
	t.Helper()
	quiet := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	srv, err := devs3.Start(context.Background(), devs3.Options{Listen: "127.0.0.1:0", Buckets: []string{"lake"}, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

// s3sinkEnv is the environment of a `pinpipe s3sink` writing to the S3
// server at endpoint.
func s3sinkEnv(endpoint string) []string {
	return []string{"PINPIPE_TEST_MAIN=1", "AWS_ACCESS_KEY_ID=dev", "AWS_SECRET_ACCESS_KEY=dev", "AWS_REGION=us-east-1",
		"AWS_ENDPOINT_URL_S3=" + endpoint}
}

// metricsAddr waits for the "metrics on http://ADDR/metrics" line.
func metricsAddr(t *testing.T, p *testenv.Proc) string {
	t.Helper()
	return p.WaitBetween(t, p.Stderr, "metrics on http://", "/metrics")
}

// scrape fetches /metrics and returns each sample line's value by its
// name and labels as written.
func scrape(t *testing.T, addr string) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("/metrics: %s\n%s", resp.Status, body)
	}
	out := map[string]float64{}
	for _, l := range strings.Split(string(body), "\n") {
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		i := strings.LastIndexByte(l, ' ')
		v, err := strconv.ParseFloat(l[i+1:], 64)
		if err != nil {
			t.Fatalf("bad sample %q", l)
		}
		out[l[:i]] = v
	}
	return out
}

func get(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestS3SinkMetrics runs `pinpipe s3sink --metrics-listen` against a Kafka
// broker and an S3 server and scrapes its metrics as records land.
func TestS3SinkMetrics(t *testing.T) {
	k, prod := startKafka(t, 1)
	s3srv := startS3(t)
	// The sink reaches S3 through a proxy that can refuse its writes.
	proxy, err := faultproxy.Start(s3srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proxy.Close() })
	produce := func(from, n int) {
		var recs []*kgo.Record
		for i := from; i < from+n; i++ {
			recs = append(recs, &kgo.Record{Topic: "pinpipe.pin", Value: fmt.Appendf(nil, `{"index": %d}`, i)})
		}
		if err := prod.ProduceSync(t.Context(), recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	produce(0, 25)

	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"s3sink", "--kafka-brokers=" + k.Addr(), "--s3=s3://lake/raw", "--flush-size=10", "--rotate-interval=300ms", "--metrics-listen=:0"}
	p := testenv.Start(t, exe, s3sinkEnv(proxy.URL), args...)
	defer p.Kill()
	addr := metricsAddr(t, p)
	if !strings.HasPrefix(addr, "127.0.0.1:") {
		t.Errorf("--metrics-listen=:0 listens on %s, want the loopback interface", addr)
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		if c := get(t, "http://"+addr+path); c != 200 {
			t.Errorf("%s: %d", path, c)
		}
	}

	want := func(records, objects float64) map[string]float64 {
		var m map[string]float64
		testenv.WaitFor(t, 20*time.Second, fmt.Sprintf("%v records in %v objects", records, objects), func() bool {
			m = scrape(t, addr)
			return m["pinpipe_s3sink_records_written_total"] == records && m["pinpipe_s3sink_objects_written_total"] == objects
		})
		return m
	}
	before := time.Now()
	m := want(25, 3) // 10, 10, and 5 at the rotate interval
	if m["pinpipe_s3sink_records_read_total"] != 25 || m["pinpipe_s3sink_written_bytes_total"] <= float64(25*len(`{"index": 0}`)) ||
		m["pinpipe_s3sink_commits_total"] < 1 || m["pinpipe_s3sink_errors_total"] != 0 {
		t.Errorf("after 25 records: %v", m)
	}
	last := m["pinpipe_s3sink_last_flush_timestamp_seconds"]
	if last < float64(before.Add(-time.Second).Unix()) || last > float64(time.Now().Unix()+1) {
		t.Errorf("last flush at %v, want about %v", last, before.Unix())
	}
	bytes := m["pinpipe_s3sink_written_bytes_total"]

	produce(25, 12)
	m = want(37, 5)
	if m["pinpipe_s3sink_records_read_total"] != 37 || m["pinpipe_s3sink_written_bytes_total"] <= bytes ||
		m["pinpipe_s3sink_last_flush_timestamp_seconds"] < last {
		t.Errorf("after 37 records: %v", m)
	}
	// The group's lag, from its committed offsets: 0 once everything is
	// written and committed.
	pin := `{partition="0",topic="pinpipe.pin"}`
	testenv.WaitFor(t, 20*time.Second, "no lag at offset 37", func() bool {
		m = scrape(t, addr)
		return m["pinpipe_s3sink_kafka_end_offset"+pin] == 37 && m["pinpipe_s3sink_kafka_committed_offset"+pin] == 37 &&
			m["pinpipe_s3sink_kafka_consumer_lag_records"+pin] == 0 && m["pinpipe_s3sink_kafka_up"] == 1
	})
	lintMetrics(t, addr)
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}

	// Sent while the sink is down: the restarted sink's first scrape shows
	// it as lag, which falls to 0; its counters are the backlog, and S3
	// holds every record once. S3 refuses writes until that first scrape,
	// so that the sink cannot have caught up before it (the lag comes from
	// the group's offsets, committed once the objects are written).
	produce(37, 15)
	proxy.Set(faultproxy.S3SlowDown(faultproxy.Methods(http.MethodPut)))
	p = testenv.Start(t, exe, s3sinkEnv(proxy.URL), args...)
	defer p.Kill()
	addr = metricsAddr(t, p)
	if m := scrape(t, addr); m["pinpipe_s3sink_kafka_consumer_lag_records"+pin] != 15 {
		t.Errorf("the first scrape after the restart: lag %v, want the 15 records sent while the sink was down", m["pinpipe_s3sink_kafka_consumer_lag_records"+pin])
	}
	proxy.Set(nil)
	testenv.WaitFor(t, 20*time.Second, "the backlog written and no lag", func() bool {
		m = scrape(t, addr)
		return m["pinpipe_s3sink_records_written_total"] == 15 && m["pinpipe_s3sink_kafka_committed_offset"+pin] == 52 &&
			m["pinpipe_s3sink_kafka_consumer_lag_records"+pin] == 0
	})
	if m["pinpipe_s3sink_records_read_total"] != 15 || m["pinpipe_s3sink_errors_total"] != 0 {
		t.Errorf("after the restart: %v", m)
	}
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	lines := s3Lines(t, s3srv.URL(), "lake", "raw/topics/pinpipe.pin/partition=0/")
	slices.Sort(lines)
	var sent []string
	for i := range 52 {
		sent = append(sent, fmt.Sprintf(`{"index": %d}`, i))
	}
	slices.Sort(sent)
	if !slices.Equal(lines, sent) {
		t.Errorf("S3 holds %d lines, want the 52 records once each:\n%v", len(lines), lines)
	}
}

// s3Lines reads the lines of every object under prefix.
func s3Lines(t *testing.T, endpoint, bucket, prefix string) []string {
	t.Helper()
	c := s3.New(s3.Options{Region: "us-east-1", BaseEndpoint: aws.String(endpoint), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider("dev", "dev", "")})
	list, err := c.ListObjectsV2(t.Context(), &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, o := range list.Contents {
		obj, err := c.GetObject(t.Context(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: o.Key})
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(obj.Body)
		obj.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")...)
	}
	return lines
}

// TestS3SinkReadyz: `pinpipe s3sink`'s /readyz says not ready, naming S3,
// while its S3 cannot be reached (a proxy in front of it drops every
// connection), and ready again once S3 is back.
func TestS3SinkReadyz(t *testing.T) {
	k, prod := startKafka(t, 1)
	if err := prod.ProduceSync(t.Context(), &kgo.Record{Topic: "pinpipe.pin", Value: []byte(`{"index": 1}`)}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	proxy, err := faultproxy.Start(startS3(t).URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proxy.Close() })
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	p := testenv.Start(t, exe, s3sinkEnv(proxy.URL), "s3sink", "--kafka-brokers="+k.Addr(), "--s3=s3://lake/raw", "--metrics-listen=127.0.0.1:0")
	defer p.Kill()
	addr := metricsAddr(t, p)
	readyz := func() (int, string) {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	testenv.WaitFor(t, 20*time.Second, "/readyz ready", func() bool { c, _ := readyz(); return c == 200 })
	proxy.Set(&faultproxy.Fault{Drop: true})
	if c, body := readyz(); c != http.StatusServiceUnavailable || !strings.Contains(body, "S3") {
		t.Errorf("/readyz with S3 unreachable: %d %q, want 503 naming S3", c, body)
	}
	proxy.Set(nil)
	if c, body := readyz(); c != 200 {
		t.Errorf("/readyz with S3 back: %d %q", c, body)
	}
	if done, err := p.Exited(); done {
		t.Fatalf("the sink exited: %v\n%s", err, p.Stderr())
	}
}

// TestStreamMetrics runs `pinpipe stream --metrics-listen` on a Kafka
// broker and scrapes the consumer lag of its group as it reads.
func TestStreamMetrics(t *testing.T) {
	k, prod := startKafka(t, 2)
	produce := func(topic string, partition int32, from, n int) {
		var recs []*kgo.Record
		for i := from; i < from+n; i++ {
			recs = append(recs, &kgo.Record{Topic: topic, Partition: partition, Value: fmt.Appendf(nil, `{"index": %d, "ind": %d}`, i, i)})
		}
		if err := prod.ProduceSync(t.Context(), recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	produce("m.pin", 0, 0, 7)
	produce("m.pin", 1, 7, 5)
	produce("m.geo", 0, 0, 3)
	produce("m.user", 1, 0, 2)

	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	p := testenv.Start(t, exe, []string{"PINPIPE_TEST_MAIN=1"}, "stream", "--source=kafka", "--kafka-brokers="+k.Addr(),
		"--topic-prefix=m", "--group=metrics-test", "--start=earliest", "--files="+t.TempDir(), "--window=1s",
		"--metrics-listen=127.0.0.1:0")
	addr := metricsAddr(t, p)
	if c := get(t, "http://"+addr+"/healthz"); c != 200 {
		t.Errorf("/healthz: %d", c)
	}
	lagged := func(name string, want map[string]float64) {
		t.Helper()
		var m map[string]float64
		testenv.WaitFor(t, 90*time.Second, fmt.Sprintf("%s %v", name, want), func() bool {
			m = scrape(t, addr)
			for labels, v := range want {
				if m[name+labels] != v {
					return false
				}
			}
			return true
		})
	}
	pin0, pin1 := `{partition="0",topic="m.pin"}`, `{partition="1",topic="m.pin"}`
	lagged("pinpipe_stream_kafka_end_offset", map[string]float64{pin0: 7, pin1: 5})
	lagged("pinpipe_stream_kafka_committed_offset", map[string]float64{pin0: 7, pin1: 5,
		`{partition="0",topic="m.geo"}`: 3, `{partition="1",topic="m.user"}`: 2})
	lagged("pinpipe_stream_kafka_consumer_lag_records", map[string]float64{pin0: 0, pin1: 0})
	if m := scrape(t, addr); m["pinpipe_stream_kafka_up"] != 1 {
		t.Errorf("pinpipe_stream_kafka_up = %v", m["pinpipe_stream_kafka_up"])
	}

	produce("m.pin", 1, 12, 4)
	lagged("pinpipe_stream_kafka_end_offset", map[string]float64{pin1: 9})
	lagged("pinpipe_stream_kafka_committed_offset", map[string]float64{pin0: 7, pin1: 9})
	lagged("pinpipe_stream_kafka_consumer_lag_records", map[string]float64{pin1: 0})
	if err := p.Stop(); err != nil {
		t.Error(err)
	}
}

// TestEmulateMetrics scrapes `pinpipe emulate --metrics-listen` while it
// sends posts through a real gateway (ingest/gateway) to a Kafka broker
// (kfake): the counters rise while it runs, and at the end the records
// sent equal the records the broker holds.
func TestEmulateMetrics(t *testing.T) {
	k, _ := startKafka(t, 2)
	g, err := gateway.New(gateway.Config{KafkaBrokers: []string{k.Addr()}, TopicPrefix: "em", AutoCreateTopics: true})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	gw := httptest.NewServer(g)
	defer gw.Close()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	p := testenv.Start(t, exe, []string{"PINPIPE_TEST_MAIN=1", "PINPIPE_SOURCE_DSN="}, "emulate", "--gateway="+gw.URL,
		"--topic-prefix=em", "--rate=20", "--seed=7", "--metrics-listen=127.0.0.1:0")
	addr := metricsAddr(t, p)
	var first float64
	testenv.WaitFor(t, 20*time.Second, "posts sent", func() bool {
		first = scrape(t, addr)["pinpipe_emulate_posts_sent_total"]
		return first >= 3
	})
	var last map[string]float64
	testenv.WaitFor(t, 20*time.Second, "more posts sent", func() bool {
		last = scrape(t, addr)
		return last["pinpipe_emulate_posts_sent_total"] > first && last["pinpipe_emulate_records_sent_total"] >= last["pinpipe_emulate_posts_sent_total"]
	})
	if last["pinpipe_emulate_posts_failed_total"] != 0 || last["pinpipe_emulate_records_failed_total"] != 0 {
		t.Errorf("failed posts or records: %v", last)
	}
	// Stopped in mid-run (SIGINT: the posts in flight finish), after a last
	// scrape; then every record sent is on the broker.
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	sent := last["pinpipe_emulate_records_sent_total"]
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(t.Context(), "em.pin", "em.geo", "em.user")
	if err != nil {
		t.Fatal(err)
	}
	var landed int64
	ends.Each(func(o kadm.ListedOffset) { landed += o.Offset })
	if float64(landed) < sent || landed%3 != 0 {
		t.Errorf("%d records on the broker, the last scrape said %v sent (every post is 3 records)", landed, sent)
	}
}

// TestMetricNamesLint checks every metric the commands define against
// Prometheus's naming conventions (the client library's promlint).
func TestMetricNamesLint(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	newS3SinkMetrics(reg)
	registerEmulateMetrics(reg)
	cl, err := newKafkaLagCollector(reg, "s3sink", []string{"127.0.0.1:1"}, "g", func(context.Context, *kgo.Client) ([]string, error) { return []string{"t"}, nil })
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := newStreamStoreCollector(reg, "postgres://nobody@127.0.0.1:1/none", "j", "kinesis", []string{"s"}, nil, nil); err != nil {
		t.Fatal(err)
	}
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", p.Metric, p.Text)
	}
}

// TestStreamReadyz: `pinpipe stream`'s /readyz says ready once the job
// runs with its broker answering, and not ready, naming Kafka, once the
// broker is down.
func TestStreamReadyz(t *testing.T) {
	k, prod := startKafka(t, 1)
	for _, topic := range []string{"r.pin", "r.geo", "r.user"} {
		if err := prod.ProduceSync(t.Context(), &kgo.Record{Topic: topic, Value: []byte(`{"index": 1, "ind": 1}`)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	p := testenv.Start(t, exe, []string{"PINPIPE_TEST_MAIN=1"}, "stream", "--source=kafka", "--kafka-brokers="+k.Addr(),
		"--topic-prefix=r", "--group=readyz-test", "--start=earliest", "--files="+t.TempDir(), "--metrics-listen=127.0.0.1:0")
	defer p.Kill()
	addr := metricsAddr(t, p)
	testenv.WaitFor(t, 30*time.Second, "/readyz ready", func() bool { return get(t, "http://"+addr+"/readyz") == 200 })
	k.Close()
	testenv.WaitFor(t, 30*time.Second, "/readyz not ready with the broker down", func() bool {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode == http.StatusServiceUnavailable && strings.Contains(string(body), "Kafka")
	})
}
