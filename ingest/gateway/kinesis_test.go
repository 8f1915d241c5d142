package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/pinpipe/pinpipe/internal/testenv"
)

var streamSeq atomic.Int64

// newStream creates a stream through the gateway and waits until it is
// ACTIVE; each test gets its own name, as they share one kinesalite.
func newStream(t testing.TB, g *gw, prefix string, shards int) string {
	t.Helper()
	name := fmt.Sprintf("%s-%d-%d", prefix, time.Now().UnixNano()%1e6, streamSeq.Add(1))
	r := do(t, "POST", g.url+"/streams/"+name, "application/json", []byte(fmt.Sprintf(`{"ShardCount": %d}`, shards)))
	if r.status != 200 || string(bytes.TrimSpace(r.body)) != "{}" {
		t.Fatalf("create stream: %d %s", r.status, r.body)
	}
	waitStatus(t, g, name, "ACTIVE")
	return name
}

func waitStatus(t testing.TB, g *gw, name, status string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := do(t, "GET", g.url+"/streams/"+name, "", nil)
		if r.status == 200 {
			d := r.json(t)["StreamDescription"].(map[string]any)
			if d["StreamStatus"] == status {
				return d
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("stream %s not %s: %d %s", name, status, r.status, r.body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// readStream reads every record of every shard of a stream from the start,
// straight from Kinesis (kinesalite), keyed by sequence number; want is
// how many there must be (-1: any number).
func readStream(t testing.TB, kc *kinesis.Client, name string, want int) map[string]types.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	desc, err := kc.DescribeStream(ctx, &kinesis.DescribeStreamInput{StreamName: &name})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]types.Record{}
	for _, sh := range desc.StreamDescription.Shards {
		it, err := kc.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: &name, ShardId: sh.ShardId, ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
		if err != nil {
			t.Fatal(err)
		}
		iter := it.ShardIterator
		for iter != nil {
			res, err := kc.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter, Limit: new(int32(10000))})
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range res.Records {
				out[*r.SequenceNumber] = r
			}
			// kinesalite's MillisBehindLatest is always 0: stop on an
			// empty page instead.
			if len(res.Records) == 0 {
				break
			}
			iter = res.NextShardIterator
		}
	}
	if want >= 0 && len(out) != want {
		t.Fatalf("read %d records from %s, want %d", len(out), name, want)
	}
	return out
}

func kinesisGateway(t testing.TB, cfg Config) (*gw, *kinesis.Client) {
	t.Helper()
	ep := testenv.Kinesalite(t)
	kc := testenv.KinesisClient(ep)
	cfg.Kinesis = kc
	return startGateway(t, cfg), kc
}

func TestKinesisStreams(t *testing.T) {
	g, _ := kinesisGateway(t, Config{})
	name := newStream(t, g, "streaming-pp-pin", 2)

	d := waitStatus(t, g, name, "ACTIVE")
	if d["StreamName"] != name || len(d["Shards"].([]any)) != 2 || !strings.HasPrefix(d["StreamARN"].(string), "arn:aws:kinesis:") {
		t.Fatalf("description %v", d)
	}
	sh := d["Shards"].([]any)[0].(map[string]any)
	if sh["ShardId"] != "shardId-000000000000" || sh["HashKeyRange"].(map[string]any)["StartingHashKey"] != "0" {
		t.Fatalf("shard %v", sh)
	}
	if ts, _ := d["StreamCreationTimestamp"].(float64); ts < 1e9 {
		t.Fatalf("StreamCreationTimestamp %v", d["StreamCreationTimestamp"])
	}

	r := do(t, "GET", g.url+"/streams", "", nil)
	var list struct {
		HasMoreStreams bool
		StreamNames    []string
	}
	if r.status != 200 || json.Unmarshal(r.body, &list) != nil || !slices.Contains(list.StreamNames, name) || list.HasMoreStreams {
		t.Fatalf("list: %d %s", r.status, r.body)
	}

	// Creating it again: Kinesis's ResourceInUseException, as a 409.
	r = do(t, "POST", g.url+"/streams/"+name, "", nil)
	expectKinesisError(t, r, 409, "ResourceInUseException", name)

	// Without a body the stream gets the default shard count (the
	// tutorial's 5).
	other := fmt.Sprintf("defaults-%d", streamSeq.Add(1))
	if r := do(t, "POST", g.url+"/streams/"+other, "", nil); r.status != 200 {
		t.Fatalf("create without a body: %d %s", r.status, r.body)
	}
	if d := waitStatus(t, g, other, "ACTIVE"); len(d["Shards"].([]any)) != 5 {
		t.Fatalf("default shards: %d", len(d["Shards"].([]any)))
	}

	r = do(t, "DELETE", g.url+"/streams/"+other, "", nil)
	if r.status != 200 {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		r = do(t, "GET", g.url+"/streams/"+other, "", nil)
		if r.status == 404 {
			expectKinesisError(t, r, 404, "ResourceNotFoundException", other)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("deleted stream still there: %d %s", r.status, r.body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	expectKinesisError(t, do(t, "DELETE", g.url+"/streams/"+other, "", nil), 404, "ResourceNotFoundException", other)
}

func TestKinesisPutRecordReadBack(t *testing.T) {
	g, kc := kinesisGateway(t, Config{})
	name := newStream(t, g, "streaming-pp-geo", 2)

	// The original emulator's payload: Data an object.
	geo := `{"ind": 7528, "timestamp": "2020-08-28 03:52:47", "latitude": -89.9787, "longitude": -173.293, "country": "Albania", "note": "caf\u00e9 \"x\""}`
	bodies := map[string][]byte{ // body -> expected record bytes
		`{"StreamName":"` + name + `","Data":` + geo + `,"PartitionKey":"partition-1"}`: compact(t, geo),
		`{"StreamName":"ignored","Data":"plain text","PartitionKey":"pk"}`:              []byte(`"plain text"`),
		`{"Data":[1, 2.50, {"a": null}],"PartitionKey":"ü-key"}`:                        []byte(`[1,2.50,{"a":null}]`),
	}
	want := map[string][]byte{} // sequence number -> bytes
	for body, rec := range bodies {
		r := do(t, "PUT", g.url+"/streams/"+name+"/record", "application/json", []byte(body))
		if r.status != 200 {
			t.Fatalf("put record: %d %s", r.status, r.body)
		}
		var a map[string]string
		if err := json.Unmarshal(r.body, &a); err != nil || a["SequenceNumber"] == "" || !strings.HasPrefix(a["ShardId"], "shardId-") {
			t.Fatalf("answer %s", r.body)
		}
		want[a["SequenceNumber"]] = rec
	}
	got := readStream(t, kc, name, len(want))
	for seq, b := range want {
		if !bytes.Equal(got[seq].Data, b) {
			t.Errorf("record %s holds %q, want %q", seq, got[seq].Data, b)
		}
	}
}

func TestKinesisPutRecordsReadBack(t *testing.T) {
	g, kc := kinesisGateway(t, Config{})
	name := newStream(t, g, "streaming-pp-user", 3)
	body := `{"records":[
		{"data":"some data","partition-key":"some key"},
		{"data":{"ind":1,"first_name":"Ann"},"partition-key":"k2"},
		{"data":12.0,"partition-key":"k3"},
		{"data":"\u00e9\n","partition-key":"k4"}]}`
	wantData := [][]byte{[]byte("some data"), []byte(`{"ind":1,"first_name":"Ann"}`), []byte("12.0"), []byte("é\n")}
	wantKeys := []string{"some key", "k2", "k3", "k4"}
	r := do(t, "PUT", g.url+"/streams/"+name+"/records", "application/json", []byte(body))
	if r.status != 200 {
		t.Fatalf("put records: %d %s", r.status, r.body)
	}
	var a struct {
		FailedRecordCount int
		Records           []map[string]string
	}
	if err := json.Unmarshal(r.body, &a); err != nil || a.FailedRecordCount != 0 || len(a.Records) != 4 {
		t.Fatalf("answer %s", r.body)
	}
	got := readStream(t, kc, name, 4)
	for i, res := range a.Records {
		rec, ok := got[res["SequenceNumber"]]
		if !ok || !bytes.Equal(rec.Data, wantData[i]) || rec.PartitionKey == nil || *rec.PartitionKey != wantKeys[i] || res["ShardId"] == "" {
			t.Errorf("record %d (%v): %q, want %q under key %q", i, res, rec.Data, wantData[i], wantKeys[i])
		}
	}
}

func TestKinesisErrors(t *testing.T) {
	g, _ := kinesisGateway(t, Config{MaxBodyBytes: 8 << 20})
	name := newStream(t, g, "errs", 1)
	rec := func(n int) string { return fmt.Sprintf(`{"data":%q,"partition-key":"k"}`, strings.Repeat("x", n)) }
	many := func(n int, each int) string {
		rs := make([]string, n)
		for i := range rs {
			rs[i] = rec(each)
		}
		return `{"records":[` + strings.Join(rs, ",") + `]}`
	}
	put := "/streams/" + name + "/record"
	puts := "/streams/" + name + "/records"
	cases := []struct {
		name, method, path, body string
		status                   int
		typ, msg                 string
	}{
		{"unknown stream put", "PUT", "/streams/nope/record", `{"Data":{},"PartitionKey":"k"}`, 404, "ResourceNotFoundException", "nope"},
		{"unknown stream puts", "PUT", "/streams/nope/records", `{"records":[{"data":"x","partition-key":"k"}]}`, 404, "ResourceNotFoundException", "nope"},
		{"unknown stream describe", "GET", "/streams/nope", ``, 404, "ResourceNotFoundException", "nope"},
		{"invalid stream name", "GET", "/streams/bad%20name", ``, 400, "ValidationException", "not valid"},
		{"stream name too long", "PUT", "/streams/" + strings.Repeat("s", 129) + "/record", `{}`, 400, "ValidationException", "not valid"},
		{"malformed JSON", "PUT", put, `{"Data":`, 400, "SerializationException", "malformed JSON"},
		{"empty body", "PUT", put, ``, 400, "SerializationException", "empty"},
		{"not an object", "PUT", put, `[]`, 400, "SerializationException", "must be an object"},
		{"no Data", "PUT", put, `{"PartitionKey":"k"}`, 400, "ValidationException", "Data is required"},
		{"null Data", "PUT", put, `{"Data":null,"PartitionKey":"k"}`, 400, "ValidationException", "Data is required"},
		{"no PartitionKey", "PUT", put, `{"Data":{}}`, 400, "ValidationException", "PartitionKey is required"},
		{"empty PartitionKey", "PUT", put, `{"Data":{},"PartitionKey":""}`, 400, "ValidationException", "must not be empty"},
		{"PartitionKey number", "PUT", put, `{"Data":{},"PartitionKey":7}`, 400, "ValidationException", "must be a string"},
		{"PartitionKey too long", "PUT", put, `{"Data":{},"PartitionKey":"` + strings.Repeat("é", 257) + `"}`, 400, "ValidationException", "257 characters"},
		{"record over 1 MiB", "PUT", put, `{"Data":"` + strings.Repeat("x", 1<<20) + `","PartitionKey":"k"}`, 400, "ValidationException", "over Kinesis's limit of 1048576"},
		{"records malformed", "PUT", puts, `{"records":[`, 400, "SerializationException", "malformed JSON"},
		{"records not array", "PUT", puts, `{"records":{}}`, 400, "SerializationException", `"records"`},
		{"records empty", "PUT", puts, `{"records":[]}`, 400, "ValidationException", "records may not be empty"},
		{"records missing data", "PUT", puts, `{"records":[{"partition-key":"k"}]}`, 400, "ValidationException", "records[0].data is required"},
		{"records missing key", "PUT", puts, `{"records":[{"data":"x"}]}`, 400, "ValidationException", "records[0].partition-key is required"},
		{"records 501", "PUT", puts, many(501, 1), 400, "ValidationException", "501 records, over Kinesis's limit of 500"},
		{"records one over 1 MiB", "PUT", puts, many(1, 1<<20), 400, "ValidationException", "records[0] is 1048577 bytes"},
		{"records over 5 MiB", "PUT", puts, many(6, 1<<20-10), 400, "ValidationException", "over Kinesis's limit of 5242880"},
		{"body over limit", "PUT", puts, many(9, 1<<20-10), 413, "ValidationException", "larger than the gateway's limit"},
		{"shard count zero", "POST", "/streams/zero-shards", `{"ShardCount":0}`, 400, "ValidationException", "ShardCount must be at least 1"},
		{"shard count string", "POST", "/streams/zero-shards", `{"ShardCount":"2"}`, 400, "SerializationException", "ShardCount"},
		{"wrong method", "POST", put, `{}`, 405, "MethodNotAllowed", "Method Not Allowed"},
		{"wrong method stream", "PUT", "/streams/" + name, `{}`, 405, "MethodNotAllowed", "Method Not Allowed"},
		{"unknown path", "GET", "/streams/" + name + "/shards", ``, 404, "UnknownOperationException", "Not Found"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := do(t, tc.method, g.url+tc.path, "application/json", []byte(tc.body))
			expectKinesisError(t, r, tc.status, tc.typ, tc.msg)
		})
	}

	// Kinesis's own validation is passed on: kinesalite refuses more
	// shards than its limit allows.
	r := do(t, "POST", g.url+"/streams/too-many-shards", "application/json", []byte(`{"ShardCount":100000}`))
	expectKinesisError(t, r, 400, "LimitExceededException", "shard limit")

	// With a prefix, only the prefix's streams are served.
	gp, _ := kinesisGateway(t, Config{TopicPrefix: "pp"})
	expectKinesisError(t, do(t, "GET", gp.url+"/streams/"+name, "", nil), 404, "ResourceNotFoundException", "streaming-pp-*")
	if r := do(t, "GET", gp.url+"/streams", "", nil); r.status != 200 || strings.Contains(string(r.body), name) {
		t.Fatalf("prefixed list: %d %s", r.status, r.body)
	}
}

func TestKinesisUnreachable(t *testing.T) {
	// A Kinesis that is not there: 502, and the SDK's reason.
	kc := kinesis.New(testenv.KinesisClient("http://127.0.0.1:1").Options(), func(o *kinesis.Options) { o.RetryMaxAttempts = 1 })
	g := startGateway(t, Config{Kinesis: kc, BackendTimeout: 3 * time.Second})
	r := do(t, "PUT", g.url+"/streams/s/record", "application/json", []byte(`{"Data":{},"PartitionKey":"k"}`))
	if r.status != http.StatusBadGateway && r.status != http.StatusGatewayTimeout {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	if m := r.json(t); !strings.Contains(m["message"].(string), "Kinesis could not be reached") {
		t.Fatalf("answer %s", r.body)
	}
}

func TestKinesisConcurrentPuts(t *testing.T) {
	g, kc := kinesisGateway(t, Config{})
	name := newStream(t, g, "streaming-pp-conc", 4)
	const workers, each = 50, 4
	var wg sync.WaitGroup
	var mu sync.Mutex
	want := map[string][]byte{}
	errs := make(chan string, workers*each)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				data := fmt.Sprintf(`{"w":%d,"i":%d}`, w, i)
				body := fmt.Sprintf(`{"StreamName":%q,"Data":%s,"PartitionKey":"pk-%d-%d"}`, name, data, w, i)
				path := "/record"
				if i%2 == 1 { // half through PutRecords
					body = fmt.Sprintf(`{"records":[{"data":%s,"partition-key":"pk-%d-%d"}]}`, data, w, i)
					path = "/records"
				}
				req, _ := http.NewRequest("PUT", g.url+"/streams/"+name+path, strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				res, err := client.Do(req)
				if err != nil {
					errs <- err.Error()
					return
				}
				var a struct {
					SequenceNumber    string
					FailedRecordCount int
					Records           []struct{ SequenceNumber, ErrorCode string }
				}
				err = json.NewDecoder(res.Body).Decode(&a)
				res.Body.Close()
				if res.StatusCode != 200 || err != nil {
					errs <- fmt.Sprintf("%d %v", res.StatusCode, err)
					continue
				}
				seq := a.SequenceNumber
				if path == "/records" {
					if a.FailedRecordCount != 0 {
						errs <- fmt.Sprintf("failed: %+v", a.Records)
						continue
					}
					seq = a.Records[0].SequenceNumber
				}
				mu.Lock()
				want[seq] = []byte(data)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
	got := readStream(t, kc, name, workers*each)
	for seq, b := range want {
		if !bytes.Equal(got[seq].Data, b) {
			t.Fatalf("record %s holds %q, want %q", seq, got[seq].Data, b)
		}
	}
}
