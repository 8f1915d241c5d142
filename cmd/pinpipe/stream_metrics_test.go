package main

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/pinpipe/pinpipe/internal/testenv"
)

// TestStreamKinesisMetrics scrapes `pinpipe stream --source=kinesis` with
// a PostgreSQL sink (kinesalite, the real command): the rows and dead
// letters equal the records sent, the shards' lag falls to 0 once the job
// has caught up and its positions are durable; after a SIGKILL, records
// sent while the job is down show as lag in the first scrape of the
// restarted job, which falls to 0 again once it caught up.
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
		if _, err := kc.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(stream(table)), ShardCount: aws.Int32(1)}); err != nil {
			t.Fatal(err)
		}
		testenv.WaitFor(t, 30*time.Second, stream(table)+" active", func() bool {
			d, err := kc.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(stream(table))})
			return err == nil && d.StreamDescriptionSummary.StreamStatus == types.StreamStatusActive
		})
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
	env := []string{"PINPIPE_TEST_MAIN=1", "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test", "AWS_REGION=us-east-1",
		"AWS_EC2_METADATA_DISABLED=true", "AWS_ENDPOINT_URL_KINESIS=" + endpoint}
	args := []string{"stream", "--source=kinesis", "--topic-prefix=" + prefix, "--sink=" + dsn, "--window=1s",
		"--allowed-lateness=1s", "--job-name=metrics", "--metrics-listen=127.0.0.1:0"}
	pinShard := `{shard="shardId-000000000000",stream="` + stream("pin") + `"}`
	caughtUp := func(addr string, pinRows float64) map[string]float64 {
		t.Helper()
		var m map[string]float64
		testenv.WaitFor(t, 90*time.Second, fmt.Sprintf("%v pin rows and no lag", pinRows), func() bool {
			m = scrape(t, addr)
			v, ok := m["pinpipe_stream_kinesis_lag_seconds"+pinShard]
			return m[`pinpipe_stream_table_rows{table="pin"}`] == pinRows && ok && v == 0
		})
		return m
	}

	first := testenv.Start(t, exe, env, args...)
	addr := metricsAddr(t, first)
	m := caughtUp(addr, 10)
	for name, want := range map[string]float64{
		`pinpipe_stream_table_rows{table="geo"}`:  1,
		`pinpipe_stream_table_rows{table="user"}`: 1,
		`pinpipe_stream_store_up`:                 1,
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
	if v, ok := m["pinpipe_stream_seconds_since_commit{partition=\"shardId-000000000000\",stream=\""+stream("pin")+"\"}"]; !ok || v < 0 || v > 60 {
		t.Errorf("seconds since the pin shard's commit: %v (%v)", v, ok)
	}
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
	caughtUp(addr, 25)
}
