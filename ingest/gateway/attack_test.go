package gateway

import (
	"bufio"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/pinpipe/pinpipe/internal/testenv"
)

// The attacks of RELIABILITY.md, each sent to a gateway serving on a
// loopback socket, with the answer's status and envelope checked, and a
// normal request served afterwards.

// expectProduceOK sends a normal produce and fails the test unless it is
// acknowledged: the gateway still serves after an attack.
func expectProduceOK(t testing.TB, g *gw, topic string, hdr ...string) {
	t.Helper()
	r := do(t, "POST", g.url+"/topics/"+topic, ctJSON, []byte(`{"records":[{"value":{"normal":true}}]}`), hdr...)
	if r.status != 200 {
		t.Fatalf("a normal produce after the attack: %d %s", r.status, r.body)
	}
}

// expectEnvelope checks that an error answer is one JSON object in the
// REST Proxy's envelope, with its media type.
func expectEnvelope(t testing.TB, r resp) {
	t.Helper()
	if ct := r.header.Get("Content-Type"); ct != kafkaV2JSON {
		t.Errorf("Content-Type %q, want %s", ct, kafkaV2JSON)
	}
	var env struct {
		ErrorCode *int    `json:"error_code"`
		Message   *string `json:"message"`
	}
	if err := json.Unmarshal(r.body, &env); err != nil || env.ErrorCode == nil || env.Message == nil {
		t.Fatalf("not the REST Proxy's envelope (%v): %s", err, r.body)
	}
}

func TestAttackKafkaBodies(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(1, "t"))
	// The defaults, but for the body limit (a smaller one is quicker to
	// send; the default is checked in TestAttackDefaultLimits).
	g := startGateway(t, Config{KafkaBrokers: c.ListenAddrs(), MaxBodyBytes: 4 << 20})
	rec := func(v string) string { return `{"records":[{"value":` + v + `}]}` }
	manyRecords := `{"records":[` + strings.Repeat(`{"value":1},`, 10_000) + `{"value":1}]}`
	cases := []struct {
		name, ct, path, body string
		status, code         int
		msg                  string
	}{
		{"invalid UTF-8 in a value", ctJSON, "/topics/t", rec("\"caf\xe9\""), 422, 422, "records[0].value is not valid UTF-8"},
		{"invalid UTF-8 in a nested value", ctJSON, "/topics/t", `{"records":[{"value":1},{"value":{"a":["` + "\xc3\x28" + `"]}}]}`, 422, 422, "records[1].value is not valid UTF-8"},
		{"invalid UTF-8 in a key", ctJSON, "/topics/t", "{\"records\":[{\"key\":\"\xff\",\"value\":1}]}", 422, 422, "records[0].key is not valid UTF-8"},
		{"invalid UTF-8 in an object key", ctJSON, "/topics/t", rec("{\"\xed\xa0\x80\":1}"), 422, 422, "records[0].value is not valid UTF-8"},
		{"invalid UTF-8 elsewhere", ctJSON, "/topics/t", "{\"records\":[{\"value\":1}],\"x\":\"\xfe\"}", 422, 422, "not valid UTF-8"},
		{"invalid UTF-8, binary format", ctBinary, "/topics/t", "{\"records\":[{\"value\":\"aGk\xff\"}]}", 422, 422, "records[0].value contains invalid base64"},
		{"lone surrogate escape", ctJSON, "/topics/t", rec(`"\ud800"`), 422, 422, "records[0].value holds a lone UTF-16 surrogate"},
		{"100,000 [", ctJSON, "/topics/t", rec(strings.Repeat("[", 100_000)), 400, 400, "malformed JSON"},
		{"100,000 [ closed", ctJSON, "/topics/t", rec(strings.Repeat("[", 100_000) + strings.Repeat("]", 100_000)), 400, 400, "exceeded max depth"},
		{"129 levels", ctJSON, "/topics/t", rec(strings.Repeat("[", 129) + strings.Repeat("]", 129)), 422, 422, "records[0].value nests deeper than the limit of 128 levels"},
		{"a million digits", ctJSON, "/topics/t", rec(strings.Repeat("7", 1_000_000)), 422, 422, "records[0].value holds a number of 1000000 characters, over the limit of 1000"},
		{"a long exponent", ctJSON, "/topics/t", rec("1e" + strings.Repeat("9", 2000)), 422, 422, "over the limit of 1000"},
		{"10,001 records", ctJSON, "/topics/t", manyRecords, 422, 422, "10001 records, over the gateway's limit of 10000"},
		{"a record over max.message.bytes", ctJSON, "/topics/t", `{"records":[{"value":1},{"value":"` + strings.Repeat("x", 1_000_000) + `"}]}`, 422, 422, "records[1] is 1000002 bytes (key plus value), over the limit of 1000000"},
		{"a body over the limit", ctJSON, "/topics/t", rec(`"` + strings.Repeat("x", 5<<20) + `"`), 413, 413, "larger than the gateway's limit of 4194304 bytes"},
		{"bad base64", ctBinary, "/topics/t", rec(`"!!!!"`), 422, 422, "records[0].value contains invalid base64"},
		{"base64 of JSON type", ctBinary, "/topics/t", rec(`[1]`), 400, 400, "records[0].value must be a base64 string"},
		{"text/plain", "text/plain", "/topics/t", rec("1"), 415, 415, "Unsupported Media Type"},
		{"text/html", "text/html; charset=utf-8", "/topics/t", rec("1"), 415, 415, "Unsupported Media Type"},
		{"no content type", "", "/topics/t", rec("1"), 415, 415, "Unsupported Media Type"},
		{"protobuf", "application/vnd.kafka.protobuf.v2+json", "/topics/t", rec("1"), 415, 415, "Schema Registry"},
		{"a broken media type", "application/vnd.kafka.json.v2+json; =", "/topics/t", rec("1"), 415, 415, "Unsupported Media Type"},
		{"a slash in the topic", ctJSON, "/topics/t%2F..%2Fx", rec("1"), 404, 40401, "Topic not found."},
		{"dot-dot topic", ctJSON, "/topics/..", rec("1"), 404, 40401, "Topic not found."},
		{"escaped dot-dot topic", ctJSON, "/topics/%2e%2e", rec("1"), 404, 40401, "Topic not found."},
		{"dot topic", ctJSON, "/topics/%2E", rec("1"), 404, 40401, "Topic not found."},
		{"NUL in the topic", ctJSON, "/topics/t%00", rec("1"), 404, 40401, "Topic not found."},
		{"newline in the topic", ctJSON, "/topics/t%0D%0AX-Injected:%201", rec("1"), 404, 40401, "Topic not found."},
		{"unicode topic", ctJSON, "/topics/t%C3%A9", rec("1"), 404, 40401, "Topic not found."},
		{"250-character topic", ctJSON, "/topics/" + strings.Repeat("a", 250), rec("1"), 404, 40401, "Topic not found."},
		{"a path below the topic", ctJSON, "/topics/t/../t", rec("1"), 404, 404, "Not Found"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := do(t, "POST", g.url+tc.path, tc.ct, []byte(tc.body))
			expectError(t, r, tc.status, tc.code, tc.msg)
			expectEnvelope(t, r)
			if r.header.Get("X-Injected") != "" {
				t.Fatal("a header was injected")
			}
		})
	}
	// Nothing refused reached Kafka, and the gateway still serves.
	if end := endOffset(t, g, "t", 0); end != 0 {
		t.Fatalf("refused requests wrote %d records", end)
	}
	expectProduceOK(t, g, "t")
	recs := consume(t, c.ListenAddrs(), "t", 1)
	if string(recs[0].Value) != `{"normal":true}` {
		t.Fatalf("record %q", recs[0].Value)
	}

	// The limits are settings.
	gs := startGateway(t, Config{KafkaBrokers: c.ListenAddrs(), MaxRecordsPerRequest: 2, MaxJSONDepth: 3, MaxNumberChars: 5})
	expectError(t, do(t, "POST", gs.url+"/topics/t", ctJSON, []byte(`{"records":[{"value":1},{"value":2},{"value":3}]}`)), 422, 422, "3 records, over the gateway's limit of 2")
	expectError(t, do(t, "POST", gs.url+"/topics/t", ctJSON, []byte(rec(`[[[[1]]]]`))), 422, 422, "nests deeper than the limit of 3 levels")
	expectError(t, do(t, "POST", gs.url+"/topics/t", ctJSON, []byte(rec(`123456`))), 422, 422, "a number of 6 characters, over the limit of 5")
	if r := do(t, "POST", gs.url+"/topics/t", ctJSON, []byte(`{"records":[{"value":[[[12345]]]},{"key":"ok","value":-1.5}]}`)); r.status != 200 {
		t.Fatalf("within the limits: %d %s", r.status, r.body)
	}
}

// TestAttackDefaultLimits: the default body limit is API Gateway's 10 MiB.
func TestAttackDefaultLimits(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(1, "t"))
	g := startGateway(t, Config{KafkaBrokers: c.ListenAddrs()})
	big := `{"records":[{"value":"` + strings.Repeat("x", 10<<20) + `"}]}`
	r := do(t, "POST", g.url+"/topics/t", ctJSON, []byte(big))
	expectError(t, r, 413, 413, "larger than the gateway's limit of 10485760 bytes")
	expectEnvelope(t, r)
	// Without a Content-Length (chunked), the limit holds too.
	r = doReader(t, "POST", g.url+"/topics/t", ctJSON, struct{ io.Reader }{strings.NewReader(big)})
	expectError(t, r, 413, 413, "larger than the gateway's limit")
	expectProduceOK(t, g, "t")
}

// TestKafkaBrokerDown: with the brokers stopped, a produce request gets a
// 503 in about KafkaUnavailableAfter, not after the 30 s backend timeout,
// later ones at once, and none a 200; when a broker is back, produce
// requests succeed again.
func TestKafkaBrokerDown(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "t"))
	if err != nil {
		t.Fatal(err)
	}
	addrs := c.ListenAddrs()
	_, port, _ := strings.Cut(addrs[0], "127.0.0.1:")
	g := startGateway(t, Config{KafkaBrokers: addrs}) // BackendTimeout: the default 30 s
	if g.srv.cfg.BackendTimeout != 30*time.Second {
		t.Fatal(g.srv.cfg.BackendTimeout)
	}
	expectProduceOK(t, g, "t")

	c.Close()
	start := time.Now()
	r := do(t, "POST", g.url+"/topics/t", ctJSON, []byte(`{"records":[{"value":"while down"}]}`))
	d := time.Since(start)
	expectError(t, r, 503, 50003, "Kafka is unavailable")
	expectEnvelope(t, r)
	if r.header.Get("Retry-After") == "" {
		t.Error("no Retry-After")
	}
	if d > 5*time.Second {
		t.Fatalf("the first request with the broker down took %v", d)
	}
	t.Logf("first answer with the broker down after %v", d)
	for _, path := range []string{"/topics/t", "/topics/t"} {
		start = time.Now()
		r = do(t, "POST", g.url+path, ctJSON, []byte(`{"records":[{"value":"while down","partition":0}]}`))
		expectError(t, r, 503, 50003, "Kafka is unavailable")
		if d := time.Since(start); d > time.Second {
			t.Fatalf("a request while the broker is known down took %v", d)
		}
	}
	expectError(t, do(t, "GET", g.url+"/topics", "", nil), 503, 50003, "Kafka is unavailable")
	expectError(t, do(t, "GET", g.url+"/topics/t", "", nil), 503, 50003, "Kafka is unavailable")
	if r := do(t, "GET", g.url+"/healthz", "", nil); r.status != 200 {
		t.Fatalf("healthz: %d", r.status)
	}
	if m := scrape(t, g); m["pinpipe_gateway_kafka_available"] != 0 || m[`pinpipe_gateway_errors_total{route="POST /topics/{topic}",kind="backend"}`] != 3 {
		t.Fatalf("metrics while Kafka is down: available %v, backend errors %v", m["pinpipe_gateway_kafka_available"],
			m[`pinpipe_gateway_errors_total{route="POST /topics/{topic}",kind="backend"}`])
	}

	// The broker back on its port: the gateway finds it.
	p, _ := strconv.Atoi(port)
	c2, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(p), kfake.SeedTopics(1, "back"))
	if err != nil {
		t.Skipf("cannot restart the broker on port %d: %v", p, err)
	}
	defer c2.Close()
	deadline := time.Now().Add(15 * time.Second)
	for {
		// (A topic the producer has not seen: the new broker's topics have
		// new IDs, which a real broker's restart would keep.)
		r := do(t, "POST", g.url+"/topics/back", ctJSON, []byte(`{"records":[{"value":"back"}]}`))
		if r.status == 200 {
			break
		}
		if r.status != 503 && r.status != 500 {
			t.Fatalf("while the broker comes back: %d %s", r.status, r.body)
		}
		if time.Now().After(deadline) {
			t.Fatalf("the gateway did not find the broker again: %d %s", r.status, r.body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	recs := consume(t, c2.ListenAddrs(), "back", 1)
	if m := scrape(t, g); m["pinpipe_gateway_kafka_available"] != 1 {
		t.Fatalf("pinpipe_gateway_kafka_available %v after the broker came back", m["pinpipe_gateway_kafka_available"])
	}
	if string(recs[0].Value) != `"back"` {
		t.Fatalf("record %q", recs[0].Value)
	}
}

// TestKafkaBrokerSlow: a broker that does not answer within the backend
// timeout gets the request a 5xx, never a 200.
func TestKafkaBrokerSlow(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(1, "t"))
	g := startGateway(t, Config{KafkaBrokers: c.ListenAddrs(), BackendTimeout: time.Second})
	expectProduceOK(t, g, "t")
	release := make(chan struct{})
	c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		select {
		case <-release:
		case <-time.After(3 * time.Second):
		}
		return nil, nil, false
	})
	start := time.Now()
	r := do(t, "POST", g.url+"/topics/t", ctJSON, []byte(`{"records":[{"value":"slow"}]}`))
	close(release)
	if r.status < 500 {
		t.Fatalf("a record the broker did not acknowledge in time: %d %s", r.status, r.body)
	}
	expectEnvelope(t, r)
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("took %v with a 1 s backend timeout", d)
	}
}

// expectAPIGatewayEnvelope checks that an error answer is one JSON object
// with a message, as API Gateway and Kinesis answer.
func expectAPIGatewayEnvelope(t testing.TB, r resp) {
	t.Helper()
	var env map[string]any
	if err := json.Unmarshal(r.body, &env); err != nil {
		t.Fatalf("not a JSON object (%v): %s", err, r.body)
	}
	if _, ok := env["message"].(string); !ok {
		t.Fatalf("no message: %s", r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
}

func TestAttackKinesisBodies(t *testing.T) {
	g, kc := kinesisGateway(t, Config{MaxBodyBytes: 6 << 20})
	name := newStream(t, g, "attack", 1)
	one := func(data string) string { return `{"StreamName":"x","Data":` + data + `,"PartitionKey":"k"}` }
	many := func(data string) string {
		return `{"records":[{"data":"ok","partition-key":"k"},{"data":` + data + `,"partition-key":"k"}]}`
	}
	var batch strings.Builder
	batch.WriteString(`{"records":[`)
	for i := range 501 {
		if i > 0 {
			batch.WriteByte(',')
		}
		batch.WriteString(`{"data":"x","partition-key":"k"}`)
	}
	batch.WriteString(`]}`)
	cases := []struct {
		name, ct, path, body string
		status               int
		typ, msg             string
	}{
		{"invalid UTF-8 in Data", "application/json", "/record", one("\"caf\xe9\""), 400, "ValidationException", "Data is not valid UTF-8"},
		{"invalid UTF-8 in an object", "application/json", "/record", one("{\"a\":\"\xff\"}"), 400, "ValidationException", "Data is not valid UTF-8"},
		{"invalid UTF-8 in PartitionKey", "application/json", "/record", "{\"Data\":1,\"PartitionKey\":\"\xff\"}", 400, "ValidationException", "not valid UTF-8"},
		{"invalid UTF-8 in a batch record", "application/json", "/records", many("\"\xc3\x28\""), 400, "ValidationException", "records[1].data is not valid UTF-8"},
		{"invalid UTF-8 in a batch key", "application/json", "/records", "{\"records\":[{\"data\":1,\"partition-key\":\"\xff\"}]}", 400, "ValidationException", "not valid UTF-8"},
		{"lone surrogate", "application/json", "/record", one(`"\udc00"`), 400, "ValidationException", "lone UTF-16 surrogate"},
		{"lone surrogate in a batch", "application/json", "/records", many(`"\ud800x"`), 400, "ValidationException", "records[1].data holds a lone UTF-16 surrogate"},
		{"100,000 [", "application/json", "/record", one(strings.Repeat("[", 100_000)), 400, "SerializationException", "malformed JSON"},
		{"129 levels", "application/json", "/record", one(strings.Repeat("[", 129) + strings.Repeat("]", 129)), 400, "ValidationException", "Data nests deeper than the limit of 128"},
		{"a million digits", "application/json", "/record", one(strings.Repeat("1", 1_000_000)), 400, "ValidationException", "Data holds a number of 1000000 characters"},
		{"a million digits in a batch", "application/json", "/records", many(strings.Repeat("1", 1_000_000)), 400, "ValidationException", "records[1].data holds a number of 1000000 characters"},
		{"501 records", "application/json", "/records", batch.String(), 400, "ValidationException", "501 records, over Kinesis's limit of 500"},
		{"a record over 1 MiB", "application/json", "/record", one(`"` + strings.Repeat("x", 1<<20) + `"`), 400, "ValidationException", "over Kinesis's limit of 1048576"},
		{"a batch record over 1 MiB", "application/json", "/records", many(`"` + strings.Repeat("x", 1<<20) + `"`), 400, "ValidationException", "records[1] is 1048577 bytes"},
		{"a body over the limit", "application/json", "/record", one(`"` + strings.Repeat("x", 7<<20) + `"`), 413, "ValidationException", "larger than the gateway's limit"},
		{"text/plain", "text/plain", "/record", one("1"), 415, "", "Unsupported Media Type"},
		{"form", "application/x-www-form-urlencoded", "/records", many("1"), 415, "", "Unsupported Media Type"},
		{"xml", "application/xml", "/record", one("1"), 415, "", "Unsupported Media Type"},
		{"broken media type", "application/json; =", "/record", one("1"), 415, "", "Unsupported Media Type"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := do(t, "PUT", g.url+"/streams/"+name+tc.path, tc.ct, []byte(tc.body))
			if tc.typ == "" {
				if r.status != tc.status || strings.TrimSpace(string(r.body)) != `{"message":"`+tc.msg+`"}` {
					t.Fatalf("%d %s", r.status, r.body)
				}
			} else {
				expectKinesisError(t, r, tc.status, tc.typ, tc.msg)
			}
			expectAPIGatewayEnvelope(t, r)
		})
	}
	// Stream names outside Kinesis's rules never reach it.
	for _, path := range []string{"/streams/a%2F..%2Fb/record", "/streams/..%2F" + name + "/record", "/streams/%2e%2e/record",
		"/streams/a%00/record", "/streams/" + strings.Repeat("s", 129) + "/record", "/streams/a%20b/record", "/streams/%C3%A9/record"} {
		r := do(t, "PUT", g.url+path, "application/json", []byte(one("1")))
		expectKinesisError(t, r, 400, "ValidationException", "is not valid")
		expectAPIGatewayEnvelope(t, r)
	}
	for _, path := range []string{"/streams/" + name + "/record/x", "/streams/" + name + "/../" + name + "/record", "/streams/%zz"} {
		if path == "/streams/%zz" {
			continue // not a URL net/http's client sends
		}
		r := do(t, "PUT", g.url+path, "application/json", []byte(one("1")))
		if r.status != 404 {
			t.Fatalf("%s: %d %s", path, r.status, r.body)
		}
		expectAPIGatewayEnvelope(t, r)
	}
	// With stream administration off, clients cannot create or delete
	// streams, and still put records.
	gn := startGateway(t, Config{Kinesis: kc, NoStreamAdmin: true})
	for _, m := range []string{"POST", "DELETE"} {
		r := do(t, m, gn.url+"/streams/"+name, "application/json", []byte(`{"ShardCount":1}`))
		expectKinesisError(t, r, 403, "AccessDeniedException", "turned off")
	}
	waitStatus(t, gn, name, "ACTIVE")

	// Nothing refused was written; a normal record is, as sent.
	readStream(t, kc, name, 0)
	r := do(t, "PUT", g.url+"/streams/"+name+"/record", "application/json", []byte(one(`{"caf\u00e9":"ok \ud83d\ude00"}`)))
	if r.status != 200 {
		t.Fatalf("a normal record after the attacks: %d %s", r.status, r.body)
	}
	for _, rec := range readStream(t, kc, name, 1) {
		if string(rec.Data) != `{"caf\u00e9":"ok \ud83d\ude00"}` {
			t.Fatalf("record %q", rec.Data)
		}
	}
}

// TestAttackHugeHeader: a 2 MiB header gets net/http's 431 before any
// handler runs, and the gateway serves on.
func TestAttackHugeHeader(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(1, "t"))
	g := startGateway(t, Config{KafkaBrokers: c.ListenAddrs()})
	cn, err := net.Dial("tcp", strings.TrimPrefix(g.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer cn.Close()
	go func() {
		cn.Write([]byte("POST /topics/t HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 2<<20) + "\r\n\r\n"))
	}()
	_ = cn.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReader(cn).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "HTTP/1.1 431 ") {
		t.Fatalf("answer to a 2 MiB header: %q %v", line, err)
	}
	if scrape(t, g)[`pinpipe_gateway_request_duration_seconds_count{route="POST /topics/{topic}"}`] != 0 {
		t.Fatal("the handler ran")
	}
	expectProduceOK(t, g, "t")
}

// TestKafkaBrokerHung: a "broker" that accepts connections and never
// answers (a hung process, a black-holed network) gets the request a 503
// in a few seconds, not at the 30 s backend timeout.
func TestKafkaBrokerHung(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var mu sync.Mutex
	var held []net.Conn
	defer func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range held {
			c.Close()
		}
	}()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c) // read nothing, answer nothing
			mu.Unlock()
		}
	}()
	var logs testenv.Buffer
	g := startGateway(t, Config{KafkaBrokers: []string{ln.Addr().String()}, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	start := time.Now()
	r := do(t, "POST", g.url+"/topics/t", ctJSON, []byte(`{"records":[{"value":"into the void"}]}`))
	d := time.Since(start)
	expectError(t, r, 503, 50003, "Kafka is unavailable")
	if d > 5*time.Second {
		t.Fatalf("a hung broker was noticed after %v", d)
	}
	t.Logf("a hung broker answered 503 after %v", d)
	start = time.Now()
	expectError(t, do(t, "POST", g.url+"/topics/t", ctJSON, []byte(`{"records":[{"value":1}]}`)), 503, 50003, "Kafka is unavailable")
	if d := time.Since(start); d > time.Second {
		t.Fatalf("the next request took %v", d)
	}
	// The flood of 503s is logged one line a second, with a count.
	for range 20 {
		do(t, "POST", g.url+"/topics/t", ctJSON, []byte(`{"records":[{"value":1}]}`))
	}
	time.Sleep(1100 * time.Millisecond)
	do(t, "POST", g.url+"/topics/t", ctJSON, []byte(`{"records":[{"value":1}]}`))
	out := logs.String()
	if n := strings.Count(out, "status=503"); n != 2 || !strings.Contains(out, "similar_not_logged=21") {
		t.Fatalf("%d lines for 23 503s:\n%s", n, out)
	}
}
