package emulator_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pinpipe/pinpipe/ingest/emulator"
	"github.com/pinpipe/pinpipe/internal/testenv"
)

// recorded is one request the stub gateway received.
type recorded struct {
	Method, Path, ContentType, APIKey string
	Body                              []byte
	// Try is how many times this exact request (path and body) had come
	// before, counting this one: 1 for the first.
	Try int
}

// reply is what the stub answers; the zero value is a REST Proxy-like 200.
type reply struct {
	status int
	header map[string]string
	body   string
	hijack bool // close the connection without answering
	// wait, when set, is waited on before answering (or the request's end).
	wait <-chan struct{}
}

// stub stands in for the gateway's HTTP contract: it records every request
// and answers as the test's respond function says.
type stub struct {
	*httptest.Server
	mu       sync.Mutex
	reqs     []recorded
	seen     map[string]int
	inflight int
	peak     int
	respond  func(r recorded) reply
}

func newStub(t *testing.T, respond func(r recorded) reply) *stub {
	t.Helper()
	s := &stub{seen: map[string]int{}, respond: respond}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

func (s *stub) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet {
		// Run's probe of the base URL (the emulator sends nothing else
		// with GET): not part of what the tests count.
		http.NotFound(w, r)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	rec := recorded{Method: r.Method, Path: r.URL.EscapedPath(), ContentType: r.Header.Get("Content-Type"),
		APIKey: r.Header.Get("x-api-key"), Body: body}
	s.mu.Lock()
	key := rec.Path + "\x00" + string(body)
	s.seen[key]++
	rec.Try = s.seen[key]
	s.reqs = append(s.reqs, rec)
	s.inflight++
	s.peak = max(s.peak, s.inflight)
	s.mu.Unlock()
	// Out of flight before the answer goes: the client may send its next
	// request as soon as it has it.
	done := sync.OnceFunc(func() {
		s.mu.Lock()
		s.inflight--
		s.mu.Unlock()
	})
	defer done()

	rep := reply{}
	if s.respond != nil {
		rep = s.respond(rec)
	}
	if rep.wait != nil {
		select {
		case <-rep.wait:
		case <-r.Context().Done():
			return
		}
	}
	done()
	if rep.hijack {
		c, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			c.Close()
		}
		return
	}
	for k, v := range rep.header {
		w.Header().Set(k, v)
	}
	if rep.status == 0 {
		rep.status = 200
	}
	if rep.body == "" && rep.status == 200 {
		rep.body = `{"offsets":[{"partition":0,"offset":1,"error_code":null,"error":null}],"key_schema_id":null,"value_schema_id":null}`
	}
	w.WriteHeader(rep.status)
	io.WriteString(w, rep.body)
}

// maxInFlight is the most requests the stub has had in flight at once.
func (s *stub) maxInFlight() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peak
}

func (s *stub) requests() []recorded {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]recorded(nil), s.reqs...)
}

// count is the number of requests pred holds for.
func (s *stub) count(pred func(recorded) bool) int {
	n := 0
	for _, r := range s.requests() {
		if pred(r) {
			n++
		}
	}
	return n
}

// objectKeys returns the keys of a JSON object in their order, and the
// object's values.
func objectKeys(t *testing.T, raw []byte) ([]string, map[string]json.RawMessage) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("not a JSON object: %s", raw)
	}
	var keys []string
	vals := map[string]json.RawMessage{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		k := tok.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
		vals[k] = v
	}
	if _, err := dec.Token(); err != nil {
		t.Fatal(err)
	}
	if dec.More() {
		t.Fatalf("trailing data after the object: %s", raw)
	}
	return keys, vals
}

// decodeNumbers unmarshals JSON with numbers kept as written.
func decodeNumbers(t *testing.T, raw []byte) any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("%v: %s", err, raw)
	}
	return v
}

// record is a request's record (the value or Data) and the table it went
// to, checked against the exact payload shape of the target.
type record struct {
	table string
	ind   int64
	value json.RawMessage
}

func parseKafka(t *testing.T, r recorded, prefix string) record {
	t.Helper()
	if r.Method != "POST" || r.ContentType != "application/vnd.kafka.json.v2+json" {
		t.Fatalf("kafka request %s %s with Content-Type %q", r.Method, r.Path, r.ContentType)
	}
	table, ok := strings.CutPrefix(r.Path, "/topics/"+prefix+".")
	if !ok {
		t.Fatalf("kafka request to %s", r.Path)
	}
	keys, top := objectKeys(t, r.Body)
	if fmt.Sprint(keys) != "[records]" {
		t.Fatalf("kafka body keys %v, want [records]: %s", keys, r.Body)
	}
	var recs []json.RawMessage
	if err := json.Unmarshal(top["records"], &recs); err != nil || len(recs) != 1 {
		t.Fatalf("records is not a one-element array: %s", r.Body)
	}
	keys, elem := objectKeys(t, recs[0])
	if fmt.Sprint(keys) != "[value]" {
		t.Fatalf("kafka record keys %v, want [value]: %s", keys, r.Body)
	}
	return record{table: table, ind: keyOf(t, table, elem["value"]), value: elem["value"]}
}

func parseKinesis(t *testing.T, r recorded, pathPrefix, prefix string) record {
	t.Helper()
	if r.Method != "PUT" || r.ContentType != "application/json" {
		t.Fatalf("kinesis request %s %s with Content-Type %q", r.Method, r.Path, r.ContentType)
	}
	rest, ok := strings.CutPrefix(r.Path, pathPrefix+"/streams/streaming-"+prefix+"-")
	table, ok2 := strings.CutSuffix(rest, "/record")
	if !ok || !ok2 {
		t.Fatalf("kinesis request to %s", r.Path)
	}
	keys, top := objectKeys(t, r.Body)
	if fmt.Sprint(keys) != "[StreamName Data PartitionKey]" {
		t.Fatalf("kinesis body keys %v, want [StreamName Data PartitionKey]: %s", keys, r.Body)
	}
	var stream, pk string
	if json.Unmarshal(top["StreamName"], &stream) != nil || stream != "streaming-"+prefix+"-"+table {
		t.Errorf("StreamName %s for the stream streaming-%s-%s", top["StreamName"], prefix, table)
	}
	ind := keyOf(t, table, top["Data"])
	if json.Unmarshal(top["PartitionKey"], &pk) != nil || pk != fmt.Sprint(ind) {
		t.Errorf("PartitionKey %s, want the post's key %q", top["PartitionKey"], fmt.Sprint(ind))
	}
	return record{table: table, ind: ind, value: top["Data"]}
}

func keyOf(t *testing.T, table string, value json.RawMessage) int64 {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(value, &m); err != nil {
		t.Fatalf("record value is not an object: %s", value)
	}
	k := "ind"
	if table == "pin" {
		k = "index"
	}
	f, ok := m[k].(float64)
	if !ok {
		t.Fatalf("record of %s without a numeric %s: %s", table, k, value)
	}
	return int64(f)
}

// logger returns a logger into a buffer (and stderr with -v).
func logger(buf *testenv.Buffer) *slog.Logger {
	var w io.Writer = buf
	if testing.Verbose() {
		w = io.MultiWriter(buf, os.Stderr)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// fastRetries are retry settings for tests that go through many retries.
func fastRetries(c emulator.Config) emulator.Config {
	c.BaseBackoff, c.MaxBackoff = time.Millisecond, 5*time.Millisecond
	return c
}
