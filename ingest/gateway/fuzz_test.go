package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/pinpipe/pinpipe/internal/kinesalite"
	"github.com/pinpipe/pinpipe/internal/testenv"
)

var kinesisSeeds = []string{
	`{"StreamName":"s","Data":{"index":1,"title":"caf\u00e9"},"PartitionKey":"k"}`,
	`{"Data":"a string","PartitionKey":"k"}`,
	`{"Data":null,"PartitionKey":"k"}`,
	`{"Data":1,"PartitionKey":""}`,
	`{"Data":1,"PartitionKey":1}`,
	`{"records":[{"data":"x","partition-key":"k"},{"data":{"a":[1,2]},"partition-key":"k2"}]}`,
	`{"records":[]}`, `{"records":null}`, `{"records":[{"data":"x"}]}`, `{"records":[1]}`,
	"{\"Data\":\"\xff\",\"PartitionKey\":\"k\"}",
	`{"Data":"\ud800","PartitionKey":"k"}`,
	`{"Data":"\ud83d\ude00","PartitionKey":"\u00e9"}`,
	`{"Data":` + strings.Repeat("[", 200) + strings.Repeat("]", 200) + `,"PartitionKey":"k"}`,
	`{"Data":` + strings.Repeat("9", 2000) + `,"PartitionKey":"k"}`,
	`{"Data":1,"PartitionKey":"` + strings.Repeat("k", 257) + `"}`,
	``, `null`, `[]`, `{"Data":1`,
}

// FuzzKinesisBodies: for any body, the Kinesis proxy's readers refuse it
// with a SerializationException or ValidationException, or accept records
// within Kinesis's limits whose data is UTF-8 (JSON text for PutRecord).
func FuzzKinesisBodies(f *testing.F) {
	for _, s := range kinesisSeeds {
		f.Add([]byte(s))
	}
	lim := jsonLimits{depth: DefaultMaxJSONDepth, number: DefaultMaxNumberChars}
	f.Fuzz(func(t *testing.T, body []byte) {
		checkErr := func(e *kinesisRequestError) {
			if e.typ != "SerializationException" && e.typ != "ValidationException" || e.msg == "" {
				t.Fatalf("refusal %+v", *e)
			}
		}
		data, pk, rerr := parsePutRecord(body, lim)
		if rerr != nil {
			checkErr(rerr)
		} else {
			if !json.Valid(data) || !utf8.Valid(data) || checkJSON(data, lim) != "" {
				t.Fatalf("PutRecord accepted data %q", data)
			}
			if pk == "" || utf8.RuneCountInString(pk) > kinesisMaxPartitionKey || !utf8.ValidString(pk) || len(data)+len(pk) > kinesisMaxRecordBytes {
				t.Fatalf("PutRecord accepted key %q, %d bytes of data", pk, len(data))
			}
		}
		entries, rerr := parsePutRecords(body, lim)
		if rerr != nil {
			checkErr(rerr)
			return
		}
		if len(entries) == 0 || len(entries) > kinesisMaxBatchRecords {
			t.Fatalf("PutRecords accepted %d records", len(entries))
		}
		total := 0
		for i, e := range entries {
			pk := *e.PartitionKey
			if !utf8.Valid(e.Data) || pk == "" || !utf8.ValidString(pk) || utf8.RuneCountInString(pk) > kinesisMaxPartitionKey ||
				len(e.Data)+len(pk) > kinesisMaxRecordBytes {
				t.Fatalf("PutRecords accepted record %d: key %q, data %q", i, pk, e.Data)
			}
			total += len(e.Data) + len(pk)
		}
		if total > kinesisMaxBatchBytes {
			t.Fatalf("PutRecords accepted %d bytes", total)
		}
	})
}

// fuzzGateway is the gateway FuzzHandler drives: Kafka from kfake (topics
// fz.* created on first use) and, when kinesalite is installed, Kinesis
// with the stream streaming-fz-s.
func fuzzGateway(f *testing.F) *Server {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.DefaultNumPartitions(2), kfake.AllowAutoTopicCreation(), kfake.SeedTopics(2, "fz.t"))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(c.Close)
	cfg := Config{KafkaBrokers: c.ListenAddrs(), TopicPrefix: "fz", BackendTimeout: 5 * time.Second,
		APIKeys: []string{"fuzz-key"}, MaxBodyBytes: 1 << 20, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if kinesalite.Installed(kinesalite.Dir()) == nil {
		kc := testenv.KinesisClient(testenv.Kinesalite(f))
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		name := "streaming-fz-s"
		_, err := kc.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: &name, ShardCount: new(int32(1))})
		if err != nil && !strings.Contains(err.Error(), "ResourceInUseException") {
			f.Fatal(err)
		}
		cfg.Kinesis = kc
	}
	s, err := New(cfg)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(s.Close)
	return s
}

// FuzzHandler drives the whole handler with any method, path, media type,
// key and body: never a 5xx or a panic, and every answer is a JSON object
// (an error one in its API's envelope).
func FuzzHandler(f *testing.F) {
	for _, b := range produceSeeds[:12] {
		f.Add(uint8(0), "fz.t", ctJSON, "fuzz-key", []byte(b))
		f.Add(uint8(0), "fz.t", ctBinary, "fuzz-key", []byte(b))
	}
	for _, b := range kinesisSeeds[:12] {
		f.Add(uint8(2), "streaming-fz-s", "application/json", "fuzz-key", []byte(b))
		f.Add(uint8(3), "streaming-fz-s", "", "fuzz-key", []byte(b))
	}
	f.Add(uint8(1), "fz.t", "", "fuzz-key", []byte(nil))
	f.Add(uint8(4), "streaming-fz-x", "application/json", "fuzz-key", []byte(`{"ShardCount":1}`))
	f.Add(uint8(5), "/topics/fz.t/../x", "text/plain", "", []byte("x"))
	f.Add(uint8(0), "..%2F..", ctJSON, "wrong", []byte(`{}`))
	s := fuzzGateway(f)
	f.Fuzz(func(t *testing.T, route uint8, name, ctype, key string, body []byte) {
		var method, target string
		esc := strings.NewReplacer("%", "%25", "/", "%2F", "?", "%3F", "#", "%23", " ", "%20").Replace(name)
		switch route % 6 {
		case 0:
			method, target = "POST", "/topics/"+esc
		case 1:
			method, target = "GET", "/topics/"+esc
		case 2:
			method, target = "PUT", "/streams/"+esc+"/record"
		case 3:
			method, target = "PUT", "/streams/"+esc+"/records"
		case 4:
			method, target = "POST", "/streams/"+esc
		default:
			method = []string{"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"}[int(route/6)%7]
			target = "/" + strings.TrimPrefix(name, "/")
		}
		if method == "DELETE" || route%6 == 4 && !strings.HasPrefix(name, "streaming-fz-x") {
			// Streams are created and deleted under one name only, so
			// that the fuzzing does not fill kinesalite.
			method = "GET"
		}
		req, err := http.NewRequest(method, "http://gateway"+target, bytes.NewReader(body))
		if err != nil || req.URL.Opaque != "" || req.URL.RawQuery != "" || req.URL.Fragment != "" {
			return // not a request a client could send
		}
		req.RequestURI = req.URL.RequestURI()
		if ctype != "" {
			if !validHeaderValue(ctype) {
				return
			}
			req.Header.Set("Content-Type", ctype)
		}
		if key != "" {
			if !validHeaderValue(key) {
				return
			}
			req.Header.Set("x-api-key", key)
		}
		w := httptest.NewRecorder()
		s.ServeHTTP(w, req)
		res := w.Result()
		if res.StatusCode >= 500 {
			t.Fatalf("%s %s (%q): %d %s", method, target, ctype, res.StatusCode, w.Body.Bytes())
		}
		if method == "HEAD" || res.StatusCode == http.StatusOK && strings.HasPrefix(target, "/metrics") {
			return
		}
		var v map[string]any
		if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil {
			// A list of topics or streams is a JSON array.
			var a []any
			if res.StatusCode != 200 || json.Unmarshal(w.Body.Bytes(), &a) != nil {
				t.Fatalf("%s %s: %d, not JSON: %q", method, target, res.StatusCode, w.Body.Bytes())
			}
			return
		}
		if res.StatusCode >= 400 {
			if _, ok := v["message"].(string); !ok {
				t.Fatalf("%s %s: %d without a message: %s", method, target, res.StatusCode, w.Body.Bytes())
			}
		}
	})
}

// validHeaderValue reports whether net/http's client would send v as a
// header value.
func validHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return strings.TrimSpace(v) == v
}
