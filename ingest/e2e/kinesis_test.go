package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/google/go-cmp/cmp"

	"github.com/pinpipe/pinpipe/ingest/emulator"
	"github.com/pinpipe/pinpipe/ingest/gateway"
	"github.com/pinpipe/pinpipe/internal/testenv"
	"github.com/pinpipe/pinpipe/transforms"
)

// TestKinesisGetRecords: seed → emulate --target=kinesis → gateway →
// kinesalite → every record readable with GetRecords: exactly the payloads
// the gateway accepted, which are the source's rows.
func TestKinesisGetRecords(t *testing.T) {
	began := time.Now()
	step := func(what string) { t.Logf("%5.1fs %s", time.Since(began).Seconds(), what) }
	endpoint := testenv.Kinesalite(t)
	kc := testenv.KinesisClient(endpoint)
	dsn := seededSource(t, 22)
	step("seeded, kinesalite up")

	prefix := runPrefix("e2e")
	gw := startGateway(t, gateway.Config{Kinesis: kc, TopicPrefix: prefix})
	t.Cleanup(http.DefaultClient.CloseIdleConnections) // before the gateway stops
	// The streams, created through the gateway's API as a user would.
	for _, table := range transforms.Tables {
		createStream(t, gw, emulator.StreamName(prefix, table), 2)
	}
	step("streams active")

	// emulate --target=kinesis --all, recording what the gateway accepted.
	rec := &recorder{base: http.DefaultTransport.(*http.Transport).Clone()}
	client := &http.Client{Transport: rec}
	t.Cleanup(rec.base.CloseIdleConnections) // before the gateway stops
	sum, err := emulator.Run(context.Background(), emulator.Config{Source: dsn, Gateway: gw, Target: emulator.TargetKinesis, TopicPrefix: prefix,
		All: true, Seed: 8, Concurrency: 8, HTTPClient: client, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Posts != posts || sum.Sent != posts || sum.Records != 3*posts || sum.Failed != 0 {
		t.Fatalf("emulator: %+v, want %d posts and %d records sent", sum, posts, 3*posts)
	}
	step("emulated: " + sum.String())

	want := sourceRecords(t, dsn)
	accepted := rec.accepted(t, prefix)
	for _, table := range transforms.Tables {
		stream := emulator.StreamName(prefix, table)
		got := readStream(t, kc, stream)
		// Exactly the payloads the gateway answered 200 to, each once...
		if diff := cmp.Diff(accepted[stream], got); diff != "" {
			t.Errorf("%s: the records differ from the accepted payloads (-accepted +read):\n%s", stream, diff)
		}
		if len(accepted[stream]) != posts {
			t.Errorf("%s: the gateway accepted %d records, want %d", stream, len(accepted[stream]), posts)
		}
		// ...which are the source's rows, as the original scripts sent them.
		var rows []kinesisRecord
		for _, r := range want[table] {
			rows = append(rows, kinesisRecord{PartitionKey: strconv.FormatInt(r.ind, 10), Data: r.json})
		}
		sortRecords(rows)
		if diff := cmp.Diff(rows, got); diff != "" {
			t.Errorf("%s: the records differ from the source rows (-want +got):\n%s", stream, diff)
		}
	}
	step("checked")
}

// kinesisRecord is a record's partition key and data.
type kinesisRecord struct{ PartitionKey, Data string }

func sortRecords(rs []kinesisRecord) {
	slices.SortFunc(rs, func(a, b kinesisRecord) int {
		if c := strings.Compare(a.PartitionKey, b.PartitionKey); c != 0 {
			return c
		}
		return strings.Compare(a.Data, b.Data)
	})
}

// recorder is the emulator's HTTP transport, keeping every request the
// gateway answered, with its answer's status.
type recorder struct {
	base *http.Transport
	mu   sync.Mutex
	sent []sent
}

type sent struct {
	path   string
	body   []byte
	status int
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.GetBody != nil {
		rc, err := req.GetBody()
		if err != nil {
			return nil, err
		}
		body, err = io.ReadAll(rc)
		rc.Close()
		if err != nil {
			return nil, err
		}
	}
	res, err := r.base.RoundTrip(req)
	if err == nil {
		r.mu.Lock()
		r.sent = append(r.sent, sent{path: req.URL.Path, body: body, status: res.StatusCode})
		r.mu.Unlock()
	}
	return res, err
}

// accepted returns the records of the PUT .../record requests the gateway
// answered 200, by stream, sorted: the Data as sent (its JSON text) and the
// PartitionKey.
func (r *recorder) accepted(t *testing.T, prefix string) map[string][]kinesisRecord {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string][]kinesisRecord{}
	for _, s := range r.sent {
		if s.status != http.StatusOK {
			continue
		}
		stream, ok := strings.CutPrefix(s.path, "/streams/")
		stream, ok2 := strings.CutSuffix(stream, "/record")
		if !ok || !ok2 || !strings.HasPrefix(stream, "streaming-"+prefix+"-") {
			t.Fatalf("the emulator sent a request to %s", s.path)
		}
		var body struct {
			StreamName   string
			Data         json.RawMessage
			PartitionKey string
		}
		if err := json.Unmarshal(s.body, &body); err != nil {
			t.Fatalf("request body %s: %v", s.body, err)
		}
		if body.StreamName != stream {
			t.Errorf("StreamName %q sent to %s", body.StreamName, s.path)
		}
		out[stream] = append(out[stream], kinesisRecord{PartitionKey: body.PartitionKey, Data: string(body.Data)})
	}
	for _, rs := range out {
		sortRecords(rs)
	}
	return out
}

// createStream creates a stream through the gateway (POST /streams/{name})
// and waits until it is ACTIVE.
func createStream(t *testing.T, gw, name string, shards int) {
	t.Helper()
	res, err := http.Post(gw+"/streams/"+name, "application/json", strings.NewReader(fmt.Sprintf(`{"ShardCount":%d}`, shards)))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("creating stream %s: %d %s", name, res.StatusCode, b)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		res, err := http.Get(gw + "/streams/" + name)
		if err != nil {
			t.Fatal(err)
		}
		var d struct{ StreamDescription struct{ StreamStatus string } }
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode == http.StatusOK && json.Unmarshal(b, &d) == nil && d.StreamDescription.StreamStatus == "ACTIVE" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("stream %s is not ACTIVE after 10 s: %d %s", name, res.StatusCode, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// readStream reads every record of every shard of a stream from its start
// with GetRecords, sorted.
func readStream(t *testing.T, kc *kinesis.Client, name string) []kinesisRecord {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	desc, err := kc.DescribeStream(ctx, &kinesis.DescribeStreamInput{StreamName: &name})
	if err != nil {
		t.Fatal(err)
	}
	shards := desc.StreamDescription.Shards
	if len(shards) == 0 || *desc.StreamDescription.HasMoreShards {
		t.Fatalf("stream %s has %d shards (more: %v)", name, len(shards), *desc.StreamDescription.HasMoreShards)
	}
	var out []kinesisRecord
	for _, sh := range shards {
		it, err := kc.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: &name, ShardId: sh.ShardId,
			ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
		if err != nil {
			t.Fatal(err)
		}
		for iter := it.ShardIterator; iter != nil; {
			res, err := kc.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter})
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range res.Records {
				out = append(out, kinesisRecord{PartitionKey: *r.PartitionKey, Data: string(r.Data)})
			}
			// An open shard's iterator never ends, and kinesalite's
			// MillisBehindLatest is always 0: an empty page is the end of
			// what was written.
			if len(res.Records) == 0 {
				break
			}
			iter = res.NextShardIterator
		}
	}
	sortRecords(out)
	return out
}
