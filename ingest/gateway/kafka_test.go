package gateway

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const (
	ctJSON   = "application/vnd.kafka.json.v2+json"
	ctBinary = "application/vnd.kafka.binary.v2+json"
)

// A pin record as the original emulator posts it.
const pinValue = `{"index": 7528, "unique_id": "fbe53c66-3442-4773-b19e-d3ec6f54dddf", "title": "No Title Data Available",
 "description": "No description available Story format", "follower_count": "User Info Error", "downloaded": 0,
 "tag_list": "N,o, ,T,a,g,s, ,A,v,a,i,l,a,b,l,e", "caf\u00e9": "na\u00efve \"q\"", "n": 1.50, "big": 12345678901234567890}`

func compact(t testing.TB, s string) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := json.Compact(&b, []byte(s)); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

type produceAnswer struct {
	KeySchemaID   *int `json:"key_schema_id"`
	ValueSchemaID *int `json:"value_schema_id"`
	ErrorCode     *int `json:"error_code"`
	Offsets       []struct {
		Partition *int32  `json:"partition"`
		Offset    *int64  `json:"offset"`
		ErrorCode *int    `json:"error_code"`
		Error     *string `json:"error"`
	} `json:"offsets"`
}

func parseProduceAnswer(t testing.TB, r resp) produceAnswer {
	t.Helper()
	var a produceAnswer
	if err := json.Unmarshal(r.body, &a); err != nil {
		t.Fatalf("produce answer: %v: %s", err, r.body)
	}
	return a
}

func TestKafkaProduceJSONReadBack(t *testing.T) {
	c := newCluster(t, kfake.AllowAutoTopicCreation(), kfake.SeedTopics(3, "pinpipe.pin"))
	g := startGateway(t, Config{KafkaBrokers: c.ListenAddrs()})

	body := `{"records":[{"value":` + pinValue + `},{"value":"just a string"},{"value":42,"key":{"k":[1, 2]}},{"value":null,"key":"tomb"}]}`
	r := do(t, "POST", g.url+"/topics/pinpipe.pin", ctJSON, []byte(body))
	if r.status != 200 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/vnd.kafka.v2+json" {
		t.Errorf("Content-Type %q", ct)
	}
	// The REST Proxy's exact shape, nulls included.
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(r.body, &raw); err != nil {
		t.Fatal(err)
	}
	if len(raw) != 3 || string(raw["key_schema_id"]) != "null" || string(raw["value_schema_id"]) != "null" {
		t.Fatalf("answer %s", r.body)
	}
	var offs []map[string]json.RawMessage
	if err := json.Unmarshal(raw["offsets"], &offs); err != nil || len(offs) != 4 {
		t.Fatalf("offsets %s (%v)", raw["offsets"], err)
	}
	for _, o := range offs {
		if len(o) != 4 || string(o["error_code"]) != "null" || string(o["error"]) != "null" || string(o["partition"]) == "null" || string(o["offset"]) == "null" {
			t.Fatalf("offset entry %v", o)
		}
	}
	a := parseProduceAnswer(t, r)

	recs := consume(t, c.ListenAddrs(), "pinpipe.pin", 4)
	want := map[string][2][]byte{ // value -> key, value
		string(compact(t, pinValue)): {nil, compact(t, pinValue)},
		`"just a string"`:            {nil, []byte(`"just a string"`)},
		`42`:                         {[]byte(`{"k":[1,2]}`), []byte(`42`)},
		``:                           {[]byte(`"tomb"`), nil},
	}
	for _, rec := range recs {
		w, ok := want[string(rec.Value)]
		if !ok {
			t.Fatalf("unexpected record value %q", rec.Value)
		}
		if !bytes.Equal(rec.Key, w[0]) || !bytes.Equal(rec.Value, w[1]) {
			t.Errorf("record key %q value %q, want key %q value %q", rec.Key, rec.Value, w[0], w[1])
		}
		if string(rec.Value) == "" && rec.Value != nil {
			t.Errorf("a null value must be a tombstone (no value), got %q", rec.Value)
		}
		found := false
		for _, o := range a.Offsets {
			found = found || (*o.Partition == rec.Partition && *o.Offset == rec.Offset)
		}
		if !found {
			t.Errorf("record at %d/%d is not in the answer's offsets", rec.Partition, rec.Offset)
		}
	}
	// Byte for byte: numbers and escapes as sent, only whitespace gone.
	if !strings.Contains(string(compact(t, pinValue)), `"n":1.50,"big":12345678901234567890`) {
		t.Fatal("compaction changed numbers")
	}
}

func TestKafkaProduceBinaryKeysAndPartitions(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(4, "bin"))
	g := startGateway(t, Config{KafkaBrokers: c.ListenAddrs()})
	val := []byte{0, 1, 2, 0xff, 0xfe, '\n', '"'}
	b64 := base64.StdEncoding.EncodeToString
	body := fmt.Sprintf(`{"records":[{"key":%q,"value":%q,"partition":2},{"value":%q,"partition":3},{"key":%q,"value":%q}]}`,
		b64([]byte("k1")), b64(val), b64([]byte("to three")), b64([]byte("keyed")), base64.RawStdEncoding.EncodeToString([]byte("unpadded!")))
	r := do(t, "POST", g.url+"/topics/bin", ctBinary, []byte(body))
	if r.status != 200 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	a := parseProduceAnswer(t, r)
	if *a.Offsets[0].Partition != 2 || *a.Offsets[1].Partition != 3 {
		t.Fatalf("explicit partitions not kept: %s", r.body)
	}
	recs := consume(t, c.ListenAddrs(), "bin", 3)
	byValue := map[string]int32{}
	for _, rec := range recs {
		byValue[string(rec.Value)] = rec.Partition
		if string(rec.Value) == string(val) && string(rec.Key) != "k1" {
			t.Errorf("key %q", rec.Key)
		}
	}
	if byValue[string(val)] != 2 || byValue["to three"] != 3 {
		t.Fatalf("records landed in %v", byValue)
	}
	if _, ok := byValue["unpadded!"]; !ok {
		t.Fatalf("unpadded base64 value missing: %v", byValue)
	}

	// application/json names no embedded format: binary, as in the REST Proxy.
	r = do(t, "POST", g.url+"/topics/bin", "application/json; charset=utf-8", []byte(`{"records":[{"value":"aGVsbG8="}]}`))
	if r.status != 200 {
		t.Fatalf("application/json: status %d: %s", r.status, r.body)
	}
	if recs := consume(t, c.ListenAddrs(), "bin", 4); !slices.ContainsFunc(recs, func(r2 *kgo.Record) bool { return string(r2.Value) == "hello" }) {
		t.Fatal("application/json value was not base64-decoded")
	}
	r = do(t, "POST", g.url+"/topics/bin", "application/json", []byte(`{"records":[{"value":{"a":1}}]}`))
	expectError(t, r, 400, 400, "application/vnd.kafka.json.v2+json")
}

func TestKafkaTopicsAndAutoCreate(t *testing.T) {
	c := newCluster(t, kfake.AllowAutoTopicCreation(), kfake.SeedTopics(2, "pinpipe.geo", "pinpipe.user"))
	g := startGateway(t, Config{KafkaBrokers: c.ListenAddrs(), AutoCreateTopics: true})

	r := do(t, "GET", g.url+"/topics", "", nil)
	var names []string
	if r.status != 200 || json.Unmarshal(r.body, &names) != nil {
		t.Fatalf("GET /topics: %d %s", r.status, r.body)
	}
	if !slices.Equal(names, []string{"pinpipe.geo", "pinpipe.user"}) {
		t.Fatalf("topics %v", names)
	}

	// With AutoCreateTopics, as a stock REST Proxy's producer does, the
	// gateway lets the brokers create a topic on its first use when they are
	// configured to (auto.create.topics.enable).
	r = do(t, "POST", g.url+"/topics/pinpipe.pin", ctJSON, []byte(`{"records":[{"value":{"index":1}}]}`))
	if r.status != 200 {
		t.Fatalf("produce to a new topic: %d %s", r.status, r.body)
	}
	r = do(t, "GET", g.url+"/topics/pinpipe.pin", "", nil)
	if r.status != 200 {
		t.Fatalf("GET /topics/pinpipe.pin: %d %s", r.status, r.body)
	}
	var topic struct {
		Name       string             `json:"name"`
		Configs    map[string]*string `json:"configs"`
		Partitions []struct {
			Partition int32 `json:"partition"`
			Leader    int32 `json:"leader"`
			Replicas  []struct {
				Broker int32 `json:"broker"`
				Leader bool  `json:"leader"`
				InSync bool  `json:"in_sync"`
			} `json:"replicas"`
		} `json:"partitions"`
	}
	if err := json.Unmarshal(r.body, &topic); err != nil {
		t.Fatal(err)
	}
	if topic.Name != "pinpipe.pin" || len(topic.Partitions) != 3 || topic.Configs == nil {
		t.Fatalf("topic %s", r.body)
	}
	for i, p := range topic.Partitions {
		if p.Partition != int32(i) || len(p.Replicas) != 1 || !p.Replicas[0].Leader || !p.Replicas[0].InSync || p.Replicas[0].Broker != p.Leader {
			t.Fatalf("partition %d: %+v", i, p)
		}
	}

	// Explicit partitions are checked before anything is written, and the
	// check, like the producer, lets the brokers create the topic.
	r = do(t, "POST", g.url+"/topics/pinpipe.geo", ctJSON, []byte(`{"records":[{"value":1,"partition":0},{"value":2,"partition":2}]}`))
	expectError(t, r, 404, 40402, "Partition not found.")
	r = do(t, "POST", g.url+"/topics/fresh", ctJSON, []byte(`{"records":[{"value":1,"partition":2}]}`))
	if r.status != 200 {
		t.Fatalf("explicit partition on a new topic: %d %s", r.status, r.body)
	}
	r = do(t, "GET", g.url+"/topics/pinpipe.geo", "", nil)
	if r.status != 200 {
		t.Fatal(r.status)
	}
	// Nothing of the refused request reached pinpipe.geo.
	if end := endOffset(t, g, "pinpipe.geo", 0); end != 0 {
		t.Fatalf("pinpipe.geo partition 0 has %d records after a refused request", end)
	}

	r = do(t, "GET", g.url+"/topics/nope", "", nil)
	expectError(t, r, 404, 40401, "Topic not found.")
	r = do(t, "GET", g.url+"/topics/bad%20name", "", nil)
	expectError(t, r, 404, 40401, "Topic not found.")
}

// endOffset asks the brokers for a partition's end offset.
func endOffset(t testing.TB, g *gw, topic string, partition int32) int64 {
	t.Helper()
	req := kmsg.NewPtrListOffsetsRequest()
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Partition, rp.Timestamp = partition, -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	res, err := req.RequestWith(t.Context(), g.srv.kafka)
	if err != nil {
		t.Fatal(err)
	}
	p := res.Topics[0].Partitions[0]
	if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
		t.Fatal(err)
	}
	return p.Offset
}

// TestKafkaNoAutoCreateByDefault: brokers that create topics on first use
// (Kafka's default, and pinpipe dev kafka's) still get no topic from a
// mistyped name: without AutoCreateTopics the gateway answers 404 40401, as
// emulate's 404 for a wrong prefix does, and creates nothing.
func TestKafkaNoAutoCreateByDefault(t *testing.T) {
	c := newCluster(t, kfake.AllowAutoTopicCreation(), kfake.SeedTopics(2, "pinpipe.pin"))
	g := startGateway(t, Config{KafkaBrokers: c.ListenAddrs()})
	r := do(t, "POST", g.url+"/topics/pinpipe.pn", ctJSON, []byte(`{"records":[{"value":{"index":1}}]}`))
	expectError(t, r, 404, 40401, "Topic not found.")
	r = do(t, "POST", g.url+"/topics/pinpipe.pn", ctJSON, []byte(`{"records":[{"value":1,"partition":0}]}`))
	expectError(t, r, 404, 40401, "Topic not found.")
	expectError(t, do(t, "GET", g.url+"/topics/pinpipe.pn", "", nil), 404, 40401, "Topic not found.")
	r = do(t, "GET", g.url+"/topics", "", nil)
	var names []string
	if r.status != 200 || json.Unmarshal(r.body, &names) != nil {
		t.Fatalf("GET /topics: %d %s", r.status, r.body)
	}
	if !slices.Equal(names, []string{"pinpipe.pin"}) {
		t.Fatalf("topics after producing to a mistyped one: %v, want only pinpipe.pin", names)
	}
	// Existing topics are served as before.
	r = do(t, "POST", g.url+"/topics/pinpipe.pin", ctJSON, []byte(`{"records":[{"value":{"index":1}},{"value":2,"partition":1}]}`))
	if r.status != 200 {
		t.Fatalf("produce to an existing topic: %d %s", r.status, r.body)
	}
}

func TestKafkaUnknownTopicWithoutAutoCreate(t *testing.T) {
	c := newCluster(t) // brokers that do not create topics
	g := startGateway(t, Config{KafkaBrokers: c.ListenAddrs()})
	start := time.Now()
	r := do(t, "POST", g.url+"/topics/missing", ctJSON, []byte(`{"records":[{"value":1}]}`))
	expectError(t, r, 404, 40401, "Topic not found.")
	t.Logf("unknown topic answered in %v", time.Since(start))
	r = do(t, "POST", g.url+"/topics/missing", ctJSON, []byte(`{"records":[{"value":1,"partition":0}]}`))
	expectError(t, r, 404, 40401, "Topic not found.")
}

func TestKafkaRequestErrors(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(1, "t", "pp.pin"))
	g := startGateway(t, Config{KafkaBrokers: c.ListenAddrs(), MaxBodyBytes: 64 << 10, MaxKafkaRecordBytes: 1000})
	big := strings.Repeat("x", 70<<10)
	cases := []struct {
		name, ct, path, body string
		status, code         int
		msg                  string
	}{
		{"no content type", "", "/topics/t", `{"records":[{"value":1}]}`, 415, 415, "Unsupported Media Type"},
		{"text/plain", "text/plain", "/topics/t", `{"records":[{"value":1}]}`, 415, 415, "application/vnd.kafka.json.v2+json"},
		{"avro", "application/vnd.kafka.avro.v2+json", "/topics/t", `{"records":[{"value":1}]}`, 415, 415, "Schema Registry"},
		{"v1 json", "application/vnd.kafka.json.v1+json", "/topics/t", `{"records":[{"value":1}]}`, 415, 415, "Unsupported Media Type"},
		{"bad media type", "a/b/c;;", "/topics/t", `{}`, 415, 415, "Unsupported Media Type"},
		{"malformed JSON", ctJSON, "/topics/t", `{"records":[{"value":1}`, 400, 400, "malformed JSON"},
		{"trailing garbage", ctJSON, "/topics/t", `{"records":[{"value":1}]} x`, 400, 400, "malformed JSON"},
		{"empty body", ctJSON, "/topics/t", ``, 400, 400, "empty"},
		{"not an object", ctJSON, "/topics/t", `[1,2]`, 400, 400, "must be an object"},
		{"records not an array", ctJSON, "/topics/t", `{"records":{"value":1}}`, 400, 400, `"records"`},
		{"record not an object", ctJSON, "/topics/t", `{"records":[1]}`, 400, 400, `"records"`},
		{"no records", ctJSON, "/topics/t", `{"value":1}`, 422, 422, "records may not be empty"},
		{"empty records", ctJSON, "/topics/t", `{"records":[]}`, 422, 422, "records may not be empty"},
		{"null records", ctJSON, "/topics/t", `{"records":null}`, 422, 422, "records may not be empty"},
		{"partition string", ctJSON, "/topics/t", `{"records":[{"value":1,"partition":"0"}]}`, 400, 400, "records[0].partition must be an integer"},
		{"partition float", ctJSON, "/topics/t", `{"records":[{"value":1,"partition":1.5}]}`, 400, 400, "must be an integer"},
		{"partition too big", ctJSON, "/topics/t", `{"records":[{"value":1,"partition":99999999999}]}`, 400, 400, "must be an integer"},
		{"partition negative", ctJSON, "/topics/t", `{"records":[{"value":1},{"value":1,"partition":-1}]}`, 422, 422, "records[1].partition must be zero or more"},
		{"partition out of range", ctJSON, "/topics/t", `{"records":[{"value":1,"partition":5}]}`, 404, 40402, "Partition not found."},
		{"binary not base64", ctBinary, "/topics/t", `{"records":[{"value":"not base64!"}]}`, 422, 422, "records[0].value contains invalid base64"},
		{"binary key not base64", ctBinary, "/topics/t", `{"records":[{"key":"%%%","value":"aGk="}]}`, 422, 422, "records[0].key contains invalid base64"},
		{"binary value object", ctBinary, "/topics/t", `{"records":[{"value":{"a":1}}]}`, 400, 400, "must be a base64 string"},
		{"record too large", ctJSON, "/topics/t", `{"records":[{"value":"` + strings.Repeat("y", 1001) + `"}]}`, 422, 422, "over the limit of 1000 bytes"},
		{"body too large", ctJSON, "/topics/t", `{"records":[{"value":"` + big + `"}]}`, 413, 413, "larger than the gateway's limit of 65536 bytes"},
		{"invalid topic name", ctJSON, "/topics/a%20b", `{"records":[{"value":1}]}`, 404, 40401, "Topic not found."},
		{"topic name too long", ctJSON, "/topics/" + strings.Repeat("a", 250), `{"records":[{"value":1}]}`, 404, 40401, "Topic not found."},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := do(t, "POST", g.url+tc.path, tc.ct, []byte(tc.body))
			expectError(t, r, tc.status, tc.code, tc.msg)
			if ct := r.header.Get("Content-Type"); ct != "application/vnd.kafka.v2+json" {
				t.Errorf("error Content-Type %q", ct)
			}
		})
	}
	if end := endOffset(t, g, "t", 0); end != 0 {
		t.Fatalf("refused requests wrote %d records", end)
	}

	// Routes that do not exist.
	expectError(t, do(t, "DELETE", g.url+"/topics/t", "", nil), 405, 405, "Method Not Allowed")
	expectError(t, do(t, "PUT", g.url+"/topics", "", nil), 405, 405, "Method Not Allowed")
	expectError(t, do(t, "GET", g.url+"/topics/t/partitions", "", nil), 404, 404, "Not Found")
	expectError(t, do(t, "GET", g.url+"/nothing", "", nil), 404, 404, "Not Found")
	if r := do(t, "DELETE", g.url+"/topics/t", "", nil); r.header.Get("Allow") != "GET, HEAD, POST" {
		t.Errorf("Allow %q", r.header.Get("Allow"))
	}

	// With a prefix, the gateway serves only the prefix's topics.
	gp := startGateway(t, Config{KafkaBrokers: c.ListenAddrs(), TopicPrefix: "pp"})
	expectError(t, do(t, "POST", gp.url+"/topics/t", ctJSON, []byte(`{"records":[{"value":1}]}`)), 404, 40401, "Topic not found.")
	if r := do(t, "POST", gp.url+"/topics/pp.pin", ctJSON, []byte(`{"records":[{"value":1}]}`)); r.status != 200 {
		t.Fatalf("prefixed topic: %d %s", r.status, r.body)
	}
	if r := do(t, "GET", gp.url+"/topics", "", nil); string(bytes.TrimSpace(r.body)) != `["pp.pin"]` {
		t.Fatalf("prefixed listing %s", r.body)
	}
}

func TestKafkaBrokerErrors(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(1, "t"))
	g := startGateway(t, Config{KafkaBrokers: c.ListenAddrs(), BackendTimeout: 2 * time.Second})

	// A non-retriable refusal from the broker: 50002, and not a 200.
	c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		pr := req.(*kmsg.ProduceRequest)
		res := pr.ResponseKind().(*kmsg.ProduceResponse)
		for _, rt := range pr.Topics {
			st := kmsg.NewProduceResponseTopic()
			st.Topic, st.TopicID = rt.Topic, rt.TopicID
			for _, rp := range rt.Partitions {
				sp := kmsg.NewProduceResponseTopicPartition()
				sp.Partition = rp.Partition
				sp.ErrorCode = kerr.InvalidRecord.Code
				st.Partitions = append(st.Partitions, sp)
			}
			res.Topics = append(res.Topics, st)
		}
		return res, nil, true
	})
	r := do(t, "POST", g.url+"/topics/t", ctJSON, []byte(`{"records":[{"value":1}]}`))
	if r.status != 500 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	a := parseProduceAnswer(t, r)
	if a.ErrorCode == nil || *a.ErrorCode != 50002 || a.Offsets[0].ErrorCode == nil || *a.Offsets[0].ErrorCode != 50002 ||
		a.Offsets[0].Partition != nil || !strings.Contains(*a.Offsets[0].Error, "INVALID_RECORD") {
		t.Fatalf("answer %s", r.body)
	}
	expectError(t, r, 500, 50002, "Kafka error")

	// The brokers gone: a 503 with the retriable failure's code, 50003
	// (TestKafkaBrokerDown has more).
	c.Close()
	r = do(t, "POST", g.url+"/topics/t", ctJSON, []byte(`{"records":[{"value":2}]}`))
	expectError(t, r, 503, 50003, "Kafka is unavailable")
	expectError(t, do(t, "GET", g.url+"/topics", "", nil), 503, 50003, "Kafka is unavailable")
}

func TestKafkaConcurrentProduce(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(3, "conc"))
	g := startGateway(t, Config{KafkaBrokers: c.ListenAddrs()})
	const workers, each = 50, 10
	var wg sync.WaitGroup
	errs := make(chan string, workers*each)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				body := fmt.Sprintf(`{"records":[{"value":{"w":%d,"i":%d}},{"key":"k%d","value":{"w":%d,"i":%d,"second":true}}]}`, w, i, w, w, i)
				req, _ := http.NewRequest("POST", g.url+"/topics/conc", strings.NewReader(body))
				req.Header.Set("Content-Type", ctJSON)
				res, err := client.Do(req)
				if err != nil {
					errs <- err.Error()
					return
				}
				var buf bytes.Buffer
				_, _ = buf.ReadFrom(res.Body)
				res.Body.Close()
				if res.StatusCode != 200 {
					errs <- fmt.Sprintf("%d %s", res.StatusCode, buf.String())
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
	recs := consume(t, c.ListenAddrs(), "conc", workers*each*2)
	seen := map[string]bool{}
	for _, r := range recs {
		if seen[string(r.Value)] {
			t.Fatalf("duplicate %s", r.Value)
		}
		seen[string(r.Value)] = true
	}
	for w := range workers {
		for i := range each {
			if !seen[fmt.Sprintf(`{"w":%d,"i":%d}`, w, i)] || !seen[fmt.Sprintf(`{"w":%d,"i":%d,"second":true}`, w, i)] {
				t.Fatalf("record %d/%d missing", w, i)
			}
		}
	}
}
