package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// produceSeeds are bodies for the differential tests: the usual shapes and
// the corners where encoding/json has rules of its own.
var produceSeeds = []string{
	`{"records":[{"value":` + pinValue + `}]}`,
	`{"records":[{"value":{"index":7528,"unique_id":"fbe53c66","title":"t","n":1.5e3,"neg":-0.0,"ok":true,"no":false,"nil":null,"a":[1,[2,{}],[]]}}]}`,
	`{"records":[{"value":"just a string"},{"value":42,"key":{"k":[1, 2]}},{"value":null,"key":"tomb"}]}`,
	"  {\n\t\"records\" : [ { \"value\" : { \"a\" : [ 1 , 2 ] , \"b\" : \"x y\\n\" } , \"key\" : \" k \" } ] } \r\n",
	`{"records":[{"key":"azE=","value":"AAEC//4KIg==","partition":2},{"value":"dG8gdGhyZWU=","partition":3},{"key":"a2V5ZWQ=","value":"dW5wYWRkZWQh"}]}`,
	`{"records":[{"value":"aGVsbG8="}]}`,
	`{"records":[{"value":""},{"key":"","value":"\u0061GVsbG8="}]}`,
	`{"records":[{"value":"not base64!"}]}`,
	`{"records":[{"key":"%%%","value":"aGk="}]}`,
	`{"records":[{"value":{"a":1}}]}`,
	`{"records":[{"value":1}`,
	`{"records":[{"value":1}]} x`,
	``, `   `, `null`, `[1,2]`, `"x"`, `{}`, `{"value":1}`,
	`{"records":{"value":1}}`, `{"records":[1]}`, `{"records":[null]}`, `{"records":[]}`, `{"records":null}`,
	`{"records":[{"value":1,"partition":"0"}]}`,
	`{"records":[{"value":1,"partition":1.5}]}`,
	`{"records":[{"value":1,"partition":99999999999}]}`,
	`{"records":[{"value":1},{"value":1,"partition":-1}]}`,
	`{"records":[{"value":1,"partition":-0}]}`,
	`{"records":[{"value":1,"partition":null}]}`,
	`{"records":[{"value":1,"partition":5}]}`,
	`{"records":[{"value":"` + strings.Repeat("y", 1001) + `"}]}`,
	`{"Records":[{"VALUE":1,"Key":2,"PARTITION":0}]}`,
	`{"records":[{"value":1,"value":2,"Value":3}]}`,
	`{"records":[{"key":"a","value":1}],"records":[{"value":2}]}`,
	`{"records":[{"value":1}],"records":null}`,
	"{\"\u212Aey\":1,\"records\":[{\"\u212Aey\":\"k\",\"value\":1}]}", // KELVIN SIGN folds to k
	"{\"recordſ\":[{\"value\":1}]}",                                   // LATIN SMALL LETTER LONG S folds to s
	`{"re\u0063ords":[{"value":1}]}`,
	`{"records":[{"va\u006cue":1}]}`,
	`{"records":[{"value":"\ud800\udc00 \u00e9 \"q\" \\ \/ \b\f\n\r\t"}]}`,
	"{\"records\":[{\"value\":\"\xff\xfe invalid utf-8\"}]}",
	"{\"records\":[{\"value\":\"\x01\"}]}",
	`{"records":[{"value":"\x"}]}`,
	`{"records":[{"value":"\u12"}]}`,
	`{"records":[{"value":01}]}`, `{"records":[{"value":-}]}`, `{"records":[{"value":1.}]}`, `{"records":[{"value":1e}]}`,
	`{"records":[{"value":1E+2}]}`, `{"records":[{"value":tru}]}`, `{"records":[{"value":nulls}]}`,
	`{"records":[{"value":[1,]}]}`, `{"records":[{"value":{"a":1,}}]}`, `{"records":[{"value":{1:1}}]}`,
	`{"key_schema":"x","value_schema_id":1,"records":[{"value":1}],"extra":{"records":[1]}}`,
	`{"records":[{"value":` + strings.Repeat("[", 300) + strings.Repeat("]", 300) + `}]}`,
	`{"records":[{"value":` + strings.Repeat("[", 10001) + strings.Repeat("]", 10001) + `}]}`,
	`{"records":[{}]}`,
	`{"records":[{"key":null,"value":null}]}`,
	// The limits of testServer: 5 records, 20 levels, numbers of 30 characters.
	`{"records":[{"value":1},{"value":2},{"value":3},{"value":4},{"value":5}]}`,
	`{"records":[{"value":1},{"value":2},{"value":3},{"value":4},{"value":5},{"value":6}]}`,
	`{"records":[{"value":1},{"value":2},{"value":3},{"value":4},{"value":5},{"value":6}],"x":[}`,
	`{"records":[{"value":` + strings.Repeat("[", 20) + strings.Repeat("]", 20) + `}]}`,
	`{"records":[{"value":` + strings.Repeat("[", 21) + strings.Repeat("]", 21) + `}]}`,
	`{"records":[{"value":1}],"other":` + strings.Repeat("[", 25) + strings.Repeat("]", 25) + `}`,
	`{"records":[{"value":` + strings.Repeat("9", 30) + `}]}`,
	`{"records":[{"value":` + strings.Repeat("9", 31) + `}]}`,
	`{"records":[{"value":-1.` + strings.Repeat("5", 40) + `e7}]}`,
	`{"records":[{"value":1}],"n":` + strings.Repeat("9", 31) + `}`,
	"{\"records\":[{\"key\":\"\xc3\x28\",\"value\":1}]}",
	"{\"records\":[{\"value\":1}],\"x\":\"\xed\xa0\x80\"}",
	"{\"records\":[{\"value\":\"caf\xc3\xa9 \xf0\x9f\x98\x80\"}]}",
	`{"records":[{"value":"\ud83d\ude00 pair"}]}`,
	`{"records":[{"value":"\ud83d lone high"}]}`,
	`{"records":[{"value":"\ude00 lone low"}]}`,
	`{"records":[{"value":"\ud83d\u0041 high then not low"}]}`,
	`{"records":[{"value":{"\udfff":1}}]}`,
	`{"records":[{"value":"\ud83d"}]}`,
}

// parseBoth reads body on the fast path and with the reference and fails
// the test where they differ: the same records (keys and values byte for
// byte, nil apart from empty, partitions and whether the request chose
// them), or the same error.
func parseBoth(t *testing.T, s *Server, body []byte, format embedded, mt string) {
	t.Helper()
	got, gotManual, gotErr := s.parseProduce(body, format, mt)
	want, wantManual, wantErr := s.parseProduceStd(body, format, mt)
	if (gotErr == nil) != (wantErr == nil) {
		t.Fatalf("body %q: fast path error %v, reference error %v", body, gotErr, wantErr)
	}
	if gotErr != nil {
		if *gotErr != *wantErr {
			t.Fatalf("body %q: fast path error %+v, reference error %+v", body, *gotErr, *wantErr)
		}
		return
	}
	if len(got) != len(want) || (gotManual == nil) != (wantManual == nil) {
		t.Fatalf("body %q: fast path %d records (manual %v), reference %d (manual %v)", body, len(got), gotManual, len(want), wantManual)
	}
	for i := range got {
		g, w := got[i], want[i]
		if !sameBytes(g.Key, w.Key) || !sameBytes(g.Value, w.Value) || g.Partition != w.Partition ||
			(gotManual != nil && gotManual[i] != wantManual[i]) {
			t.Fatalf("body %q: record %d: fast path key %q value %q partition %d, reference key %q value %q partition %d",
				body, i, g.Key, g.Value, g.Partition, w.Key, w.Value, w.Partition)
		}
	}
}

func sameBytes(a, b []byte) bool { return bytes.Equal(a, b) && (a == nil) == (b == nil) }

var testLimits = jsonLimits{depth: DefaultMaxJSONDepth, number: DefaultMaxNumberChars}

func testServer() *Server {
	cfg := Config{KafkaBrokers: []string{"unused:9092"}, MaxKafkaRecordBytes: 1000, MaxRecordsPerRequest: 5, MaxJSONDepth: 20, MaxNumberChars: 30}
	cfg.setDefaults()
	return &Server{cfg: cfg}
}

func TestParseProduceMatchesStd(t *testing.T) {
	s := testServer()
	for _, body := range produceSeeds {
		parseBoth(t, s, []byte(body), embeddedJSON, ctJSON)
		parseBoth(t, s, []byte(body), embeddedBinary, ctBinary)
	}
}

// TestScanProduceTakesTheUsualBodies: the fast path decides the bodies
// clients send, rather than handing everything to encoding/json.
func TestScanProduceTakesTheUsualBodies(t *testing.T) {
	for _, body := range []string{produceSeeds[0], produceSeeds[1], produceSeeds[2], produceSeeds[3], produceSeeds[4],
		`{"Records":[{"VALUE":1,"Key":2,"PARTITION":0}]}`, `{"records":[]}`} {
		if _, _, ok := scanProduce([]byte(body), nil, testLimits, 10); !ok {
			t.Errorf("fast path gave up on %s", body)
		}
	}
	recs, _, ok := scanProduce([]byte(produceSeeds[3]), nil, testLimits, 10)
	if !ok || len(recs) != 1 || !recs[0].valueSpaced || recs[0].keySpaced {
		t.Fatalf("whitespace flags: %+v", recs)
	}
}

func TestAppendProduceOK(t *testing.T) {
	recs := []*kgo.Record{{Partition: 0, Offset: 0}, {Partition: 2, Offset: 1234567890123}, {Partition: 1, Offset: -1}}
	for n := 1; n <= len(recs); n++ {
		resp := produceResponse{Offsets: make([]partitionOffset, n)}
		for i, r := range recs[:n] {
			p, o := r.Partition, r.Offset
			resp.Offsets[i] = partitionOffset{Partition: &p, Offset: &o}
		}
		want, err := json.Marshal(resp)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, '\n')
		if got := appendProduceOK(nil, recs[:n]); string(got) != string(want) {
			t.Fatalf("got  %s\nwant %s", got, want)
		}
	}
}

// FuzzParseProduce: for any body, the fast path and encoding/json give the
// same records or the same error.
func FuzzParseProduce(f *testing.F) {
	for _, body := range produceSeeds {
		f.Add([]byte(body), false)
		f.Add([]byte(body), true)
	}
	s := testServer()
	f.Fuzz(func(t *testing.T, body []byte, binary bool) {
		if binary {
			parseBoth(t, s, body, embeddedBinary, ctBinary)
		} else {
			parseBoth(t, s, body, embeddedJSON, ctJSON)
		}
	})
}

func BenchmarkParseProduce(b *testing.B) {
	s := testServer()
	s.cfg.MaxKafkaRecordBytes = 1_000_000
	body := []byte(`{"records":[{"value":` + string(compactString(pinValue)) + `}]}`)
	for _, bc := range []struct {
		name  string
		parse func([]byte, embedded, string) ([]*kgo.Record, []bool, *requestError)
	}{{"fast", s.parseProduce}, {"encoding-json", s.parseProduceStd}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if _, _, err := bc.parse(body, embeddedJSON, ctJSON); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func compactString(s string) []byte {
	var b bytes.Buffer
	if err := json.Compact(&b, []byte(s)); err != nil {
		panic(fmt.Sprint(err))
	}
	return b.Bytes()
}

// TestDeadlines: requests that start close together share a deadline
// context, which ends BackendTimeout after each of them started, or at most
// deadlineSlack later.
func TestDeadlines(t *testing.T) {
	d := &deadlines{timeout: time.Hour}
	before := time.Now()
	ctx := d.get()
	after := time.Now()
	dl, ok := ctx.Deadline()
	if !ok || dl.Before(after.Add(time.Hour)) || dl.After(after.Add(time.Hour+deadlineSlack)) {
		t.Fatalf("deadline %v for a request started between %v and %v", dl, before, after)
	}
	if d.get() != ctx && time.Since(before) < deadlineSlack {
		t.Fatal("a request started within the slack got a context of its own")
	}
	time.Sleep(deadlineSlack)
	if d.get() == ctx {
		t.Fatal("a request started after the slack got an earlier request's deadline")
	}

	d = &deadlines{timeout: 20 * time.Millisecond}
	ctx = d.get()
	select {
	case <-ctx.Done():
		t.Fatal("done at once")
	default:
	}
	<-ctx.Done()
	if ctx.Err() != context.DeadlineExceeded {
		t.Fatal(ctx.Err())
	}
}

// TestKafkaFormatShortcut: the Content-Types taken without
// mime.ParseMediaType read as ParseMediaType reads them.
func TestKafkaFormatShortcut(t *testing.T) {
	for _, ct := range []string{ctJSON, ctBinary} {
		f, mt, ok := kafkaFormat(ct)
		f2, mt2, ok2 := kafkaFormat(ct + "; charset=utf-8") // not the shortcut
		if f != f2 || mt != mt2 || !ok || !ok2 {
			t.Errorf("%s: %v %q %v, through ParseMediaType %v %q %v", ct, f, mt, ok, f2, mt2, ok2)
		}
	}
}

// TestParseProduceRandomBodies compares the two paths on generated bodies
// of the usual shape, valid and nearly valid, with whitespace, escapes,
// odd numbers, field names in any case and extra fields, where the fuzzer
// would take long to wander.
func TestParseProduceRandomBodies(t *testing.T) {
	s := testServer()
	rng := rand.New(rand.NewPCG(1, 2))
	ws := func() string {
		if rng.IntN(3) > 0 {
			return ""
		}
		return []string{" ", "\n", "\t", "\r\n  ", "  "}[rng.IntN(5)]
	}
	var value func(depth int) string
	value = func(depth int) string {
		switch k := rng.IntN(9); {
		case k == 0 && depth < 4:
			var b strings.Builder
			b.WriteString("{" + ws())
			for i := range rng.IntN(4) {
				if i > 0 {
					b.WriteString("," + ws())
				}
				b.WriteString(`"` + []string{"a", "b c", `\"k\"`, "é", `\u00e9`}[rng.IntN(5)] + `"` + ws() + ":" + ws() + value(depth+1) + ws())
			}
			return b.String() + "}"
		case k == 1 && depth < 4:
			var b strings.Builder
			b.WriteString("[" + ws())
			for i := range rng.IntN(4) {
				if i > 0 {
					b.WriteString(ws() + "," + ws())
				}
				b.WriteString(value(depth + 1))
			}
			return b.String() + ws() + "]"
		case k == 2:
			return []string{"0", "-1", "1.50", "12345678901234567890", "1e3", "-0.0E-2", "2147483647", "2147483648", "-2147483648"}[rng.IntN(9)]
		case k == 3:
			return []string{"true", "false", "null"}[rng.IntN(3)]
		case k == 4:
			return `"` + []string{"", "aGVsbG8=", "aGVsbG8", "aGk=aGk=", "x y", `\n\t\"\\\/`, `\u0041\u00e9\ud83d\ude00`, "\xff", "é", `a\/b`, "YQ==", "YQ"}[rng.IntN(12)] + `"`
		}
		return `"` + strings.Repeat("x", rng.IntN(40)) + `"`
	}
	field := func(name string) string {
		b := []byte(name)
		for i := range b {
			if rng.IntN(4) == 0 {
				b[i] -= 'a' - 'A'
			}
		}
		return `"` + string(b) + `"`
	}
	const n = 20000
	fast := 0
	for range n {
		var b strings.Builder
		b.WriteString(ws() + "{" + ws())
		if rng.IntN(4) == 0 {
			b.WriteString(`"key_schema":` + ws() + value(1) + "," + ws())
		}
		b.WriteString(field("records") + ws() + ":" + ws() + "[" + ws())
		for i := range rng.IntN(4) {
			if i > 0 {
				b.WriteString("," + ws())
			}
			b.WriteString("{" + ws())
			var parts []string
			if rng.IntN(2) == 0 {
				parts = append(parts, field("key")+":"+ws()+value(1))
			}
			if rng.IntN(5) > 0 {
				parts = append(parts, field("value")+ws()+":"+value(1))
			}
			if rng.IntN(4) == 0 {
				parts = append(parts, field("partition")+":"+[]string{"0", "2", "-1", "1.0", "null", `"1"`, "99999999999", value(2)}[rng.IntN(8)])
			}
			if rng.IntN(5) == 0 {
				parts = append(parts, `"other":`+value(1))
			}
			rng.Shuffle(len(parts), func(i, j int) { parts[i], parts[j] = parts[j], parts[i] })
			b.WriteString(strings.Join(parts, ","+ws()) + ws() + "}")
		}
		b.WriteString(ws() + "]" + ws() + "}" + ws())
		body := []byte(b.String())
		if rng.IntN(10) == 0 && len(body) > 0 { // break it somewhere
			body[rng.IntN(len(body))] = "{}[],:\" x\\"[rng.IntN(10)]
		}
		parseBoth(t, s, body, embeddedJSON, ctJSON)
		parseBoth(t, s, body, embeddedBinary, ctBinary)
		if _, _, ok := scanProduce(body, nil, testLimits, 10_000); ok {
			fast++
		}
	}
	t.Logf("the fast path decided %d of %d bodies", fast, n)
	if fast < n/2 {
		t.Errorf("the fast path decided only %d of %d bodies", fast, n)
	}
}
