package kinesisio

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/pinpipe/pinpipe/internal/testenv"
)

func TestMain(m *testing.M) {
	// kinesalite takes any credentials; the pipelines' workers run in this
	// process (prism, loopback) and read the same environment. Never reach
	// for real credentials or the instance metadata service.
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID":           "test",
		"AWS_SECRET_ACCESS_KEY":       "test",
		"AWS_SESSION_TOKEN":           "",
		"AWS_REGION":                  "us-east-1",
		"AWS_PROFILE":                 "",
		"AWS_EC2_METADATA_DISABLED":   "true",
		"AWS_CONFIG_FILE":             os.DevNull,
		"AWS_SHARED_CREDENTIALS_FILE": os.DevNull,
	} {
		os.Setenv(k, v)
	}
	os.Exit(ptest.MainRet(m))
}

// kinesaliteEndpoint is the test binary's shared kinesalite (skipped when
// it is not installed, a failure under CI=true).
func kinesaliteEndpoint(t testing.TB) string { return testenv.Kinesalite(t) }

// testClient talks to kinesalite with static credentials.
func testClient(endpoint string) *kinesis.Client { return testenv.KinesisClient(endpoint) }

// streamName is a stream name unique to the test.
func streamName(t testing.TB) string {
	name := strings.NewReplacer("/", "-", " ", "-").Replace(t.Name())
	return fmt.Sprintf("%s-%d", name, time.Now().UnixNano()%1e9)
}

// createStream creates a stream and waits until it is active.
func createStream(t testing.TB, c *kinesis.Client, name string, shards int32) {
	t.Helper()
	ctx := context.Background()
	if _, err := c.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(name), ShardCount: aws.Int32(shards)}); err != nil {
		t.Fatalf("CreateStream %s: %v", name, err)
	}
	waitActive(t, c, name)
}

func waitActive(t testing.TB, c *kinesis.Client, name string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		out, err := c.DescribeStreamSummary(context.Background(), &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(name)})
		if err == nil && out.StreamDescriptionSummary.StreamStatus == types.StreamStatusActive {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("stream %s not active after 20 s (last error %v)", name, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// putResult is one record put by a test, and where Kinesis put it.
type putResult struct {
	Key, Data, Shard, Seq string
}

// putRecords puts records ("key" -> data) and returns where each went,
// retrying the entries that fail.
func putRecords(t testing.TB, c *kinesis.Client, stream string, recs []types.PutRecordsRequestEntry) []putResult {
	t.Helper()
	var res []putResult
	for len(recs) > 0 {
		n := min(len(recs), 500)
		batch := recs[:n]
		recs = recs[n:]
		for attempt := 0; len(batch) > 0; attempt++ {
			if attempt == 10 {
				t.Fatalf("PutRecords to %s: entries still failing", stream)
			}
			out, err := c.PutRecords(context.Background(), &kinesis.PutRecordsInput{StreamName: aws.String(stream), Records: batch})
			if err != nil {
				t.Fatalf("PutRecords to %s: %v", stream, err)
			}
			var failed []types.PutRecordsRequestEntry
			for i, r := range out.Records {
				if r.ErrorCode != nil {
					failed = append(failed, batch[i])
					continue
				}
				res = append(res, putResult{Key: aws.ToString(batch[i].PartitionKey), Data: string(batch[i].Data), Shard: aws.ToString(r.ShardId), Seq: aws.ToString(r.SequenceNumber)})
			}
			batch = failed
		}
	}
	return res
}

// entries makes n records "<prefix>-<i>", keyed by themselves.
func entries(prefix string, from, n int) []types.PutRecordsRequestEntry {
	out := make([]types.PutRecordsRequestEntry, n)
	for i := range out {
		k := fmt.Sprintf("%s-%05d", prefix, from+i)
		out[i] = types.PutRecordsRequestEntry{PartitionKey: aws.String(k), Data: []byte(k)}
	}
	return out
}

// collected holds what collectFn saw, per test; the workers run in this
// process. seen counts the records as they arrive, for tests that wait for
// the pipeline to have started reading.
var collected = struct {
	sync.Mutex
	m map[string][]Record
}{m: map[string][]Record{}}

type collectFn struct{ Key string }

func (f *collectFn) ProcessElement(r Record) {
	collected.Lock()
	defer collected.Unlock()
	collected.m[f.Key] = append(collected.m[f.Key], r)
}

func collectedCount(key string) int {
	collected.Lock()
	defer collected.Unlock()
	return len(collected.m[key])
}

func takeCollected(key string) []Record {
	collected.Lock()
	defer collected.Unlock()
	defer delete(collected.m, key)
	return collected.m[key]
}

func init() {
	register.DoFn1x0[Record](&collectFn{})
}

// runPipeline runs p on the test runner (prism by default), failing the test
// if it fails or takes longer than timeout.
func runPipeline(t testing.TB, p *beam.Pipeline, timeout time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if _, err := beam.Run(ctx, testRunner(), p); err != nil {
		t.Fatalf("pipeline failed: %v", err)
	}
}

// testRunner is the runner ptest would use: -runner, else prism.
func testRunner() string {
	if *ptest.Runner != "" {
		return *ptest.Runner
	}
	return ptest.DefaultRunner()
}

// beamRoundTrip encodes v with the coder Beam has for its type and decodes
// it again: what crossing a shuffle or a checkpoint does to it.
func beamRoundTrip[T any](t *testing.T, v T) T {
	t.Helper()
	enc := beam.NewElementEncoder(reflect.TypeOf(v))
	dec := beam.NewElementDecoder(reflect.TypeOf(v))
	var buf bytes.Buffer
	if err := enc.Encode(v, &buf); err != nil {
		t.Fatal(err)
	}
	got, err := dec.Decode(&buf)
	if err != nil {
		t.Fatal(err)
	}
	return got.(T)
}
