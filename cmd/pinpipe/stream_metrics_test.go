package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pinpipe/pinpipe/internal/testenv"
)

// TestStreamKinesisMetrics scrapes `pinpipe stream --source=kinesis` with
// a PostgreSQL sink (kinesalite, the real command): the rows and dead
// letters equal the records sent, the shards' lag falls to 0 once the job
// has caught up and its positions are durable, and the records read from
// each shard are those sent; after a SIGKILL, records sent while the job
// is down show as lag in the first scrape of the restarted job, which
// falls to 0 again once it caught up, having read just those.
func TestStreamKinesisMetrics(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the stream command on kinesalite")
	}
	dsn := testenv.PostgresDB(t, false)
	endpoint := testenv.Kinesalite(t)
	kc := testenv.KinesisClient(endpoint)
	ctx := context.Background()
	prefix := "sm" + time.Now().Format("150405")
	stream := func(table string) string { return "streaming-" + prefix + "-" + table }
	for _, table := range []string{"pin", "geo", "user"} {
		testenv.CreateKinesisStream(t, kc, stream(table), 1)
	}
	put := func(table string, data string) {
		t.Helper()
		if _, err := kc.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String(stream(table)), PartitionKey: aws.String("k"), Data: []byte(data)}); err != nil {
			t.Fatal(err)
		}
	}
	pins := func(from, to int) {
		for i := from; i < to; i++ {
			put("pin", fmt.Sprintf(`{"index": %d, "category": "art", "title": "t"}`, i))
		}
	}
	pins(0, 10)
	put("pin", `not json`)
	put("pin", `{"index": null}`)
	put("geo", `{"ind": 1, "country": "Chad", "latitude": 1, "longitude": 2, "timestamp": "2020-01-01 00:00:00"}`)
	put("user", `{"ind": 1, "first_name": "Ann", "last_name": "Lee", "age": 30, "date_joined": "2016-01-01 00:00:00"}`)

	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	env := append(testenv.KinesisEnv(endpoint), "PINPIPE_TEST_MAIN=1")
	args := []string{"stream", "--source=kinesis", "--topic-prefix=" + prefix, "--sink=" + dsn, "--window=1s",
		"--allowed-lateness=1s", "--job-name=metrics", "--metrics-listen=127.0.0.1:0"}
	pinShard := `{shard="shardId-000000000000",stream="` + stream("pin") + `"}`
	read := func(table string) string {
		return `pinpipe_stream_kinesis_records_read_total{shard="shardId-000000000000",stream="` + stream(table) + `"}`
	}
	// caughtUp waits for the pin rows, no lag, and the pin records read
	// (the runner's counters, which may come a little after the rows).
	caughtUp := func(addr string, pinRows, pinRead float64) map[string]float64 {
		t.Helper()
		var m map[string]float64
		testenv.WaitFor(t, 90*time.Second, fmt.Sprintf("%v pin rows, %v pin records read and no lag", pinRows, pinRead), func() bool {
			m = scrape(t, addr)
			v, ok := m["pinpipe_stream_kinesis_lag_seconds"+pinShard]
			return m[`pinpipe_stream_table_rows{table="pin"}`] == pinRows && ok && v == 0 && m[read("pin")] == pinRead
		})
		return m
	}

	first := testenv.Start(t, exe, env, args...)
	addr := metricsAddr(t, first)
	m := caughtUp(addr, 10, 12) // the 10 pins and the 2 dead letters
	for name, want := range map[string]float64{
		`pinpipe_stream_table_rows{table="geo"}`:  1,
		`pinpipe_stream_table_rows{table="user"}`: 1,
		`pinpipe_stream_store_up`:                 1,
		read("geo"):                               1,
		read("user"):                              1,
	} {
		if m[name] != want {
			t.Errorf("%s = %v, want %v", name, m[name], want)
		}
	}
	var dead float64
	for k, v := range m {
		if len(k) > len("pinpipe_stream_dead_letters{") && k[:len("pinpipe_stream_dead_letters{")] == "pinpipe_stream_dead_letters{" {
			dead += v
		}
	}
	if dead != 2 {
		t.Errorf("dead letters %v, want 2", dead)
	}
	// The shard's checkpoint moves once its window's pane is written,
	// which may come after its rows: wait for the series.
	sinceCommit := "pinpipe_stream_seconds_since_commit{partition=\"shardId-000000000000\",stream=\"" + stream("pin") + "\"}"
	testenv.WaitFor(t, 30*time.Second, "the pin shard's first commit", func() bool {
		_, ok := scrape(t, addr)[sinceCommit]
		return ok
	})
	if v := scrape(t, addr)[sinceCommit]; v < 0 || v > 60 {
		t.Errorf("seconds since the pin shard's commit: %v", v)
	}
	lintMetrics(t, addr)
	first.Kill()

	// Sent while the job is down: the restarted job's first scrape shows it.
	pins(10, 25)
	time.Sleep(1500 * time.Millisecond)
	second := testenv.Start(t, exe, env, args...)
	defer second.Kill()
	addr = metricsAddr(t, second)
	if m := scrape(t, addr); m["pinpipe_stream_kinesis_lag_seconds"+pinShard] < 1 {
		t.Errorf("the first scrape after the restart: pin lag %v s, want the backlog's age (>= 1 s)", m["pinpipe_stream_kinesis_lag_seconds"+pinShard])
	}
	// The restarted job reads just what was sent while it was down.
	caughtUp(addr, 25, 15)
}

// TestStreamKafkaRestartMetrics scrapes `pinpipe stream --source=kafka`
// with a PostgreSQL sink (kfake over real connections, the real command):
// the records read per partition (the runner's counters) equal the
// records sent, the one pin an hour older than its partition shows as late,
// and the lag falls to 0 (the group's, and the durable positions'). Stopped, sent a backlog while down and
// restarted, its first scrape shows that backlog as lag per partition,
// which falls to 0, and the new job's counters equal the backlog.
func TestStreamKafkaRestartMetrics(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the stream command")
	}
	dsn := testenv.PostgresDB(t, false)
	k, prod := startKafka(t, 2)
	ind := 0
	pins := func(partition int32, n int, at time.Time) {
		t.Helper()
		var recs []*kgo.Record
		for range n {
			ind++
			recs = append(recs, &kgo.Record{Topic: "km.pin", Partition: partition, Timestamp: at,
				Value: fmt.Appendf(nil, `{"index": %d, "category": "art", "title": "t"}`, ind)})
		}
		if err := prod.ProduceSync(t.Context(), recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	pins(0, 6, time.Now())
	pins(0, 1, time.Now().Add(-time.Hour)) // late by its partition's watermark
	pins(1, 4, time.Now())
	for _, r := range []*kgo.Record{
		{Topic: "km.geo", Value: []byte(`{"ind": 1, "country": "Chad", "latitude": 1, "longitude": 2, "timestamp": "2020-01-01 00:00:00"}`)},
		{Topic: "km.user", Partition: 1, Value: []byte(`{"ind": 1, "first_name": "Ann", "last_name": "Lee", "age": 30, "date_joined": "2016-01-01 00:00:00"}`)},
	} {
		if err := prod.ProduceSync(t.Context(), r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}

	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"stream", "--source=kafka", "--kafka-brokers=" + k.Addr(), "--topic-prefix=km", "--group=km", "--sink=" + dsn,
		"--window=1s", "--allowed-lateness=1s", "--job-name=km", "--metrics-listen=127.0.0.1:0"}
	part := func(topic string, p int) string { return fmt.Sprintf(`{partition="%d",topic="km.%s"}`, p, topic) }
	// caughtUp waits for the records read per partition, no lag (neither
	// the group's nor the durable positions') and the pin rows.
	caughtUp := func(addr string, read map[string]float64, pinRows float64) map[string]float64 {
		t.Helper()
		var m map[string]float64
		testenv.WaitFor(t, 60*time.Second, fmt.Sprintf("records read %v, no lag, %v pin rows", read, pinRows), func() bool {
			m = scrape(t, addr)
			for labels, n := range read {
				if m["pinpipe_stream_kafka_records_read_total"+labels] != n {
					return false
				}
				if v, ok := m["pinpipe_stream_kafka_consumer_lag_records"+labels]; !ok || v != 0 {
					return false
				}
				if v, ok := m["pinpipe_stream_kafka_durable_lag_records"+labels]; !ok || v != 0 {
					return false
				}
			}
			return m[`pinpipe_stream_table_rows{table="pin"}`] == pinRows
		})
		return m
	}

	first := testenv.Start(t, exe, []string{"PINPIPE_TEST_MAIN=1"}, args...)
	defer first.Kill()
	addr := metricsAddr(t, first)
	m := caughtUp(addr, map[string]float64{part("pin", 0): 7, part("pin", 1): 4, part("geo", 0): 1, part("user", 1): 1}, 11)
	if _, ok := m[`pinpipe_stream_kafka_records_read_total{partition="1",topic="km.geo"}`]; ok {
		t.Errorf("a count for a partition nothing was read from: %v", m)
	}
	testenv.WaitFor(t, 10*time.Second, "the late pin counted", func() bool {
		m = scrape(t, addr)
		return m[`pinpipe_stream_records_late_total{table="pin"}`] == 1
	})
	if v, ok := m[`pinpipe_stream_records_late_total{table="geo"}`]; !ok || v != 0 {
		t.Errorf("late geo records %v (%v), want 0", v, ok)
	}
	if m["pinpipe_stream_job_metrics_up"] != 1 {
		t.Errorf("pinpipe_stream_job_metrics_up = %v", m["pinpipe_stream_job_metrics_up"])
	}
	lintMetrics(t, addr)
	if err := first.Stop(); err != nil {
		t.Fatal(err)
	}

	// Sent while the job is down: the restarted job's first scrape shows
	// it as lag, and its counters are what it reads then.
	pins(0, 5, time.Now())
	pins(1, 3, time.Now())
	second := testenv.Start(t, exe, []string{"PINPIPE_TEST_MAIN=1"}, args...)
	defer second.Kill()
	addr = metricsAddr(t, second)
	m = scrape(t, addr)
	for labels, want := range map[string]float64{part("pin", 0): 5, part("pin", 1): 3, part("geo", 0): 0} {
		for _, name := range []string{"pinpipe_stream_kafka_consumer_lag_records", "pinpipe_stream_kafka_durable_lag_records"} {
			if got := m[name+labels]; got != want {
				t.Errorf("the first scrape after the restart: %s%s %v, want %v", name, labels, got, want)
			}
		}
	}
	caughtUp(addr, map[string]float64{part("pin", 0): 5, part("pin", 1): 3}, 19)
	if err := second.Stop(); err != nil {
		t.Error(err)
	}
}

// lintMetrics checks what /metrics serves against Prometheus's naming
// conventions (the client library's promlint).
func lintMetrics(t *testing.T, addr string) {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	problems, err := promlint.New(resp.Body).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", p.Metric, p.Text)
	}
}
