package emulator_test

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/pinpipe/pinpipe/ingest/emulator"
	"github.com/pinpipe/pinpipe/ingest/generate"
	"github.com/pinpipe/pinpipe/ingest/sourcedb"
	"github.com/pinpipe/pinpipe/internal/testenv"
)

var sourceTime = regexp.MustCompile(`^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$`)

// checkRecord checks a sent record against the generator's: the same
// fields, in the source's column order, with the same values, datetimes
// as "YYYY-MM-DD HH:MM:SS".
func checkRecord(t *testing.T, g *generate.Generator, rec record) {
	t.Helper()
	var tb sourcedb.Table
	var fields map[string]any
	p := g.Post(rec.ind)
	switch rec.table {
	case "pin":
		tb, fields = sourcedb.PinTable, p.Pin.Fields()
	case "geo":
		tb, fields = sourcedb.GeoTable, p.Geo.Fields()
	case "user":
		tb, fields = sourcedb.UserTable, p.User.Fields()
	default:
		t.Fatalf("record for table %q", rec.table)
	}
	keys, vals := objectKeys(t, rec.value)
	if diff := cmp.Diff(tb.ColumnNames(), keys); diff != "" {
		t.Errorf("%s record's fields (-want +got):\n%s", rec.table, diff)
	}
	want, _ := json.Marshal(fields)
	if diff := cmp.Diff(decodeNumbers(t, want), decodeNumbers(t, rec.value)); diff != "" {
		t.Errorf("%s record %d differs from the generator's (-want +got):\n%s", rec.table, rec.ind, diff)
	}
	for _, k := range []string{"timestamp", "date_joined"} {
		if v, ok := vals[k]; ok {
			var s string
			if json.Unmarshal(v, &s) != nil || !sourceTime.MatchString(s) {
				t.Errorf("%s = %s, want \"YYYY-MM-DD HH:MM:SS\"", k, v)
			}
		}
	}
}

// checkPosts checks that the requests are whole posts, pin, geo then user,
// one request each (with concurrency 1 and no failures), and returns the
// keys of the posts in order.
func checkPosts(t *testing.T, recs []record) []int64 {
	t.Helper()
	if len(recs)%3 != 0 {
		t.Fatalf("%d records: not whole posts", len(recs))
	}
	var inds []int64
	for i := 0; i < len(recs); i += 3 {
		for j, table := range []string{"pin", "geo", "user"} {
			if recs[i+j].table != table || recs[i+j].ind != recs[i].ind {
				t.Fatalf("record %d is %s %d, want %s %d", i+j, recs[i+j].table, recs[i+j].ind, table, recs[i].ind)
			}
		}
		inds = append(inds, recs[i].ind)
	}
	return inds
}

func TestKafkaPayloads(t *testing.T) {
	s := newStub(t, nil)
	cfg := emulator.Config{Gateway: s.URL, Target: "kafka", TopicPrefix: "0a1b2c", Count: 25, Seed: 3, Posts: 500, APIKey: "k3y"}
	sum, err := emulator.Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Posts != 25 || sum.Sent != 25 || sum.Records != 75 || sum.Failed != 0 || sum.RecordsFailed != 0 || sum.Retried != 0 {
		t.Errorf("summary %+v, want 25 posts and 75 records sent, no failures or retries", sum)
	}
	if sum.LatencyP50 <= 0 || sum.LatencyP99 < sum.LatencyP50 {
		t.Errorf("latencies p50 %s, p99 %s", sum.LatencyP50, sum.LatencyP99)
	}
	g := generate.New(3, 500)
	var recs []record
	for _, r := range s.requests() {
		if r.APIKey != "k3y" {
			t.Errorf("x-api-key %q", r.APIKey)
		}
		rec := parseKafka(t, r, "0a1b2c")
		checkRecord(t, g, rec)
		recs = append(recs, rec)
	}
	inds := checkPosts(t, recs)
	distinct := map[int64]bool{}
	for _, ind := range inds {
		if ind < 0 || ind >= 500 {
			t.Errorf("post %d is outside the generated keys 0-499", ind)
		}
		distinct[ind] = true
	}
	if len(distinct) < 20 {
		t.Errorf("only %d distinct posts of 25: not random", len(distinct))
	}

	// The same seed picks the same posts; another seed, others.
	s2 := newStub(t, nil)
	cfg.Gateway = s2.URL
	if _, err := emulator.Run(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	var again []record
	for _, r := range s2.requests() {
		again = append(again, parseKafka(t, r, "0a1b2c"))
	}
	if !slices.Equal(inds, checkPosts(t, again)) {
		t.Errorf("the same seed picked other posts")
	}
}

func TestKinesisPayloads(t *testing.T) {
	s := newStub(t, func(recorded) reply {
		return reply{body: `{"SequenceNumber":"49590338271490256608559692538361571095921575989136588898","ShardId":"shardId-000000000000"}`}
	})
	// A gateway URL with a path, as an API Gateway stage has.
	sum, err := emulator.Run(context.Background(), emulator.Config{Gateway: s.URL + "/prod/", Target: "kinesis",
		TopicPrefix: "0a1b2c", Count: 10, Seed: 4, Posts: 100})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Sent != 10 || sum.Records != 30 {
		t.Errorf("summary %+v", sum)
	}
	g := generate.New(4, 100)
	var recs []record
	for _, r := range s.requests() {
		if r.APIKey != "" {
			t.Errorf("x-api-key %q sent without one configured", r.APIKey)
		}
		rec := parseKinesis(t, r, "/prod", "0a1b2c")
		checkRecord(t, g, rec)
		recs = append(recs, rec)
	}
	checkPosts(t, recs)
}

func TestRetriesTransientFailures(t *testing.T) {
	// Each request fails with 503, then 429 (with Retry-After), then
	// succeeds.
	s := newStub(t, func(r recorded) reply {
		switch r.Try {
		case 1:
			return reply{status: 503, body: `{"error_code":50003,"message":"Kafka retriable error"}`}
		case 2:
			return reply{status: 429, header: map[string]string{"Retry-After": "0"}, body: `{"message":"Too Many Requests"}`}
		}
		return reply{}
	})
	var logs testenv.Buffer
	cfg := fastRetries(emulator.Config{Gateway: s.URL, Target: "kafka", TopicPrefix: "p", Count: 5, Seed: 1, Posts: 100, Logger: logger(&logs)})
	sum, err := emulator.Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Sent != 5 || sum.Records != 15 || sum.Failed != 0 || sum.Retried != 30 {
		t.Errorf("summary %+v, want 5 posts sent after 30 retries", sum)
	}
	if n := len(s.requests()); n != 45 {
		t.Errorf("%d requests, want 45 (three tries of 15 records)", n)
	}
	if n := strings.Count(logs.String(), "emulator: retrying"); n != 30 {
		t.Errorf("%d retries logged, want 30", n)
	}
}

func TestRetriesDroppedConnections(t *testing.T) {
	// The first try of each request has its connection closed unanswered.
	s := newStub(t, func(r recorded) reply { return reply{hijack: r.Try == 1} })
	sum, err := emulator.Run(context.Background(), fastRetries(emulator.Config{Gateway: s.URL, Target: "kinesis", TopicPrefix: "p",
		Count: 4, Seed: 1, Posts: 100, Concurrency: 2}))
	if err != nil {
		t.Fatal(err)
	}
	if sum.Sent != 4 || sum.Records != 12 || sum.Failed != 0 || sum.Retried != 12 {
		t.Errorf("summary %+v, want 4 posts sent after 12 retries", sum)
	}
	if n := s.count(func(r recorded) bool { return r.Try == 2 }); n != 12 {
		t.Errorf("%d second tries, want 12", n)
	}
}

// TestGatewayHung: a gateway that accepts connections and never answers
// fails the run after ProbeTimeout, before any post, naming the gateway.
func TestGatewayHung(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		var held []net.Conn // accepted, never answered, closed at the end
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	addr := ln.Addr().String()
	cfg := emulator.Config{Gateway: "http://" + addr, Target: "kafka", TopicPrefix: "p", Count: 10, Seed: 1, Posts: 100,
		ProbeTimeout: 300 * time.Millisecond}
	began := time.Now()
	sum, err := emulator.Run(context.Background(), cfg)
	if err == nil || !strings.Contains(err.Error(), "the gateway http://"+addr+" accepts connections but did not answer a request within 300ms") {
		t.Errorf("a gateway that never answers: %v", err)
	}
	if took := time.Since(began); took > 2*time.Second {
		t.Errorf("the run took %v to fail, want about the probe's 300ms", took)
	}
	if sum.Posts != 0 {
		t.Errorf("summary %+v, want no post attempted", sum)
	}
}

// TestConnectionRefused: a gateway that is down at the start fails the run
// at once, before any post.
func TestConnectionRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cfg := emulator.Config{Gateway: "http://" + addr, Target: "kafka", TopicPrefix: "p", Count: 10, Seed: 1, Posts: 100}
	began := time.Now()
	sum, err := emulator.Run(context.Background(), cfg)
	if err == nil || !strings.Contains(err.Error(), "the gateway http://"+addr+" is unreachable") || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("a gateway that is down: %v", err)
	}
	if took := time.Since(began); took > 2*time.Second {
		t.Errorf("the run took %v to fail, want at once", took)
	}
	if sum.Posts != 0 {
		t.Errorf("summary %+v, want no post attempted", sum)
	}
}

// TestGatewayDiesMidRun: once the gateway goes away, the run ends within
// GiveUpAfter, although every record has retries left (8 attempts with
// backoffs up to 10 s, the defaults: 20 posts would take minutes).
func TestGatewayDiesMidRun(t *testing.T) {
	var served atomic.Int64
	dead := make(chan struct{})
	var once sync.Once
	s := newStub(t, func(r recorded) reply {
		if served.Add(1) == 30 { // 10 posts delivered, then the gateway dies
			once.Do(func() { close(dead) })
		}
		return reply{}
	})
	go func() {
		<-dead
		s.CloseClientConnections()
		s.Listener.Close()
		s.CloseClientConnections()
	}()
	var logs testenv.Buffer
	cfg := emulator.Config{Gateway: s.URL, Target: "kafka", TopicPrefix: "p", Seed: 1, Posts: 100, Concurrency: 2,
		GiveUpAfter: 2 * time.Second, Logger: logger(&logs)}
	began := time.Now()
	sum, err := emulator.Run(context.Background(), cfg)
	took := time.Since(began)
	if err == nil || !strings.Contains(err.Error(), "giving up: requests have failed and none succeeded for 2s") {
		t.Fatalf("a gateway that died: %v", err)
	}
	if took > 5*time.Second {
		t.Errorf("the run took %v to give up, want about 2 s", took)
	}
	if sum.Sent < 9 || sum.Failed == 0 {
		t.Errorf("summary %+v, want about 10 posts sent and the rest failed", sum)
	}
}

func TestClientErrorsNotRetried(t *testing.T) {
	// geo records are refused (422) every time; user records come back 200
	// with a retriable per-record error the first time; pin records with a
	// non-retriable one for post 7.
	s := newStub(t, func(r recorded) reply {
		switch {
		case strings.HasSuffix(r.Path, ".geo"):
			return reply{status: 422, body: `{"error_code":42206,"message":"Unprocessable entity"}`}
		case strings.HasSuffix(r.Path, ".user") && r.Try == 1:
			return reply{body: `{"offsets":[{"partition":null,"offset":null,"error_code":2,"error":"NOT_LEADER"}]}`}
		}
		return reply{}
	})
	var logs testenv.Buffer
	sum, err := emulator.Run(context.Background(), fastRetries(emulator.Config{Gateway: s.URL, Target: "kafka",
		TopicPrefix: "p", Count: 4, Seed: 2, Posts: 100, Logger: logger(&logs)}))
	if err != nil {
		t.Fatal(err)
	}
	if n := s.count(func(r recorded) bool { return strings.HasSuffix(r.Path, ".geo") }); n != 4 {
		t.Errorf("%d geo requests for 4 posts: a 422 was retried", n)
	}
	if sum.Failed != 4 || sum.Sent != 0 || sum.Records != 8 || sum.RecordsFailed != 4 || sum.Retried != 4 {
		t.Errorf("summary %+v, want 4 failed posts (their geo records), 8 records in, 4 retries (the user records)", sum)
	}
	if n := strings.Count(logs.String(), "422 Unprocessable Entity"); n != 4 {
		t.Errorf("%d 422s logged, want 4:\n%s", n, logs.String())
	}

	// A per-record error_code 1 is not retriable.
	s1 := newStub(t, func(r recorded) reply {
		return reply{body: `{"offsets":[{"partition":null,"offset":null,"error_code":1,"error":"RECORD_TOO_LARGE"}]}`}
	})
	sum, err = emulator.Run(context.Background(), fastRetries(emulator.Config{Gateway: s1.URL, Target: "kafka",
		TopicPrefix: "p", Count: 1, Seed: 2, Posts: 100, Logger: logger(&logs)}))
	if err != nil || sum.Failed != 1 || sum.RecordsFailed != 3 || sum.Retried != 0 || len(s1.requests()) != 3 {
		t.Errorf("error_code 1: %v, summary %+v, %d requests", err, sum, len(s1.requests()))
	}
}

func TestRate(t *testing.T) {
	s := newStub(t, nil)
	// At most 1 + rate·t posts start in t, whatever the machine's speed: an
	// upper bound on the count, which cannot flake.
	const rate = 40
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	sum, err := emulator.Run(ctx, emulator.Config{Gateway: s.URL, Target: "kafka", TopicPrefix: "p", Rate: rate, Concurrency: 4, Posts: 100})
	elapsed := time.Since(start)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("a run ended by its context: %v", err)
	}
	if limit := 1 + int64(rate*elapsed.Seconds()); sum.Posts > limit || sum.Posts < 1 {
		t.Errorf("%d posts in %s at %d/s, want 1 to %d", sum.Posts, elapsed, rate, limit)
	}
	if sum.Failed != 0 || sum.Sent != sum.Posts || int64(len(s.requests())) != 3*sum.Posts {
		t.Errorf("summary %+v, %d requests", sum, len(s.requests()))
	}

	// With a count, all of it is sent.
	s2 := newStub(t, nil)
	sum, err = emulator.Run(context.Background(), emulator.Config{Gateway: s2.URL, Target: "kafka", TopicPrefix: "p", Rate: 200, Count: 12, Concurrency: 3, Posts: 100})
	if err != nil || sum.Sent != 12 || len(s2.requests()) != 36 {
		t.Errorf("rate with a count: %v, summary %+v, %d requests", err, sum, len(s2.requests()))
	}

	// The original's pace: at most a second before each post.
	s3 := newStub(t, nil)
	sum, err = emulator.Run(context.Background(), emulator.Config{Gateway: s3.URL, Target: "kinesis", TopicPrefix: "p", Pace: "seed", Count: 3, Concurrency: 3, Posts: 100})
	if err != nil || sum.Sent != 3 || len(s3.requests()) != 9 {
		t.Errorf("pace=seed: %v, summary %+v, %d requests", err, sum, len(s3.requests()))
	}
}

func TestConcurrency(t *testing.T) {
	// The first requests wait until four are in flight at once; then all
	// are answered at once.
	const workers = 4
	release := make(chan struct{})
	var once sync.Once
	var s *stub
	s = newStub(t, func(recorded) reply {
		s.mu.Lock()
		n := s.inflight
		s.mu.Unlock()
		if n >= workers {
			once.Do(func() { close(release) })
		}
		return reply{wait: release}
	})
	go func() { // never hang the test, whatever happens
		time.Sleep(20 * time.Second)
		once.Do(func() { close(release) })
	}()
	sum, err := emulator.Run(context.Background(), emulator.Config{Gateway: s.URL, Target: "kafka", TopicPrefix: "p",
		Count: 20, Concurrency: workers, Seed: 5, Posts: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Sent != 20 || sum.Records != 60 || len(s.requests()) != 60 {
		t.Errorf("summary %+v, %d requests", sum, len(s.requests()))
	}
	if peak := s.maxInFlight(); peak != workers {
		t.Errorf("at most %d requests in flight, want %d", peak, workers)
	}

	// The posts picked do not depend on the concurrency.
	s1 := newStub(t, nil)
	if _, err := emulator.Run(context.Background(), emulator.Config{Gateway: s1.URL, Target: "kafka", TopicPrefix: "p",
		Count: 20, Seed: 5, Posts: 1000}); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(bodies(s1), bodies(s)); diff != "" {
		t.Errorf("concurrency changed what was sent (-serial +concurrent):\n%s", diff)
	}
}

// bodies is the set of request bodies, by path, sorted.
func bodies(s *stub) []string {
	var out []string
	for _, r := range s.requests() {
		out = append(out, r.Path+" "+string(r.Body))
	}
	slices.Sort(out)
	return out
}

func TestStop(t *testing.T) {
	// ctx ends while a post is in flight: it is finished, no new one starts.
	got := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	s := newStub(t, func(r recorded) reply {
		if strings.HasSuffix(r.Path, ".pin") {
			once.Do(func() { close(got) })
			return reply{wait: release}
		}
		return reply{}
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	var sum emulator.Summary
	var err error
	go func() {
		defer close(done)
		sum, err = emulator.Run(ctx, emulator.Config{Gateway: s.URL, Target: "kafka", TopicPrefix: "p", Posts: 100})
	}()
	<-got
	cancel()
	close(release)
	<-done
	if !errors.Is(err, context.Canceled) {
		t.Errorf("a cancelled run: %v", err)
	}
	if sum.Posts != 1 || sum.Sent != 1 || sum.Records != 3 || len(s.requests()) != 3 {
		t.Errorf("summary %+v, %d requests: want the post in flight finished and no other", sum, len(s.requests()))
	}

	// A post that cannot finish within the grace period fails, and says so.
	s2 := newStub(t, func(r recorded) reply { return reply{wait: make(chan struct{})} })
	ctx, cancel = context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	var logs testenv.Buffer
	sum, err = emulator.Run(ctx, emulator.Config{Gateway: s2.URL, Target: "kafka", TopicPrefix: "p", Posts: 100,
		StopGrace: 50 * time.Millisecond, Logger: logger(&logs)})
	if !errors.Is(err, context.DeadlineExceeded) || sum.Posts != 1 || sum.Failed != 1 || sum.RecordsFailed != 3 || sum.Records != 0 {
		t.Errorf("past the grace period: %v, summary %+v", err, sum)
	}
	if n := strings.Count(logs.String(), "record not delivered"); n != 3 {
		t.Errorf("%d undelivered records logged, want 3:\n%s", n, logs.String())
	}
}

func TestConfigErrors(t *testing.T) {
	ok := emulator.Config{Gateway: "http://127.0.0.1:1", Target: "kafka", TopicPrefix: "p"}
	for name, c := range map[string]func(*emulator.Config){
		"no gateway":       func(c *emulator.Config) { c.Gateway = "" },
		"gateway scheme":   func(c *emulator.Config) { c.Gateway = "ftp://x" },
		"target":           func(c *emulator.Config) { c.Target = "kinesis2" },
		"prefix":           func(c *emulator.Config) { c.TopicPrefix = "" },
		"rate and pace":    func(c *emulator.Config) { c.Rate, c.Pace = 5, "seed" },
		"pace":             func(c *emulator.Config) { c.Pace = "fast" },
		"negative rate":    func(c *emulator.Config) { c.Rate = -1 },
		"negative count":   func(c *emulator.Config) { c.Count = -1 },
		"concurrency":      func(c *emulator.Config) { c.Concurrency = -2 },
		"backoff":          func(c *emulator.Config) { c.BaseBackoff, c.MaxBackoff = time.Second, time.Millisecond },
		"negative posts":   func(c *emulator.Config) { c.Posts = -5 },
		"negative timeout": func(c *emulator.Config) { c.RequestTimeout = -time.Second },
	} {
		cfg := ok
		c(&cfg)
		if _, err := emulator.Run(context.Background(), cfg); err == nil || !strings.HasPrefix(err.Error(), "emulator: ") {
			t.Errorf("%s: %v, want a config error", name, err)
		}
	}
}

// TestFromDatabase emulates from a seeded PostgreSQL: the records sent are
// the database's rows, byte for byte what the generator gives for the same
// seed, and gaps in the keys are handled.
func TestFromDatabase(t *testing.T) {
	dsn := testenv.PostgresDB(t, false)
	ctx := context.Background()
	if _, err := sourcedb.Seed(ctx, dsn, sourcedb.Options{Posts: 300, Seed: 9}); err != nil {
		t.Fatal(err)
	}
	fromDB := newStub(t, nil)
	sum, err := emulator.Run(ctx, emulator.Config{Source: dsn, Gateway: fromDB.URL, Target: "kafka", TopicPrefix: "p", Count: 40, Seed: 9})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Sent != 40 || sum.Records != 120 || sum.Incomplete != 0 {
		t.Errorf("summary %+v", sum)
	}
	fromGen := newStub(t, nil)
	if _, err := emulator.Run(ctx, emulator.Config{Posts: 300, Gateway: fromGen.URL, Target: "kafka", TopicPrefix: "p", Count: 40, Seed: 9}); err != nil {
		t.Fatal(err)
	}
	dbReqs, genReqs := fromDB.requests(), fromGen.requests()
	if len(dbReqs) != len(genReqs) {
		t.Fatalf("%d requests from the database, %d from the generator", len(dbReqs), len(genReqs))
	}
	g := generate.New(9, 300)
	for i := range dbReqs {
		if dbReqs[i].Path != genReqs[i].Path || string(dbReqs[i].Body) != string(genReqs[i].Body) {
			t.Errorf("request %d from the database:\n%s %s\nfrom the generator:\n%s %s", i, dbReqs[i].Path, dbReqs[i].Body, genReqs[i].Path, genReqs[i].Body)
		}
		checkRecord(t, g, parseKafka(t, dbReqs[i], "p"))
	}

	// Concurrent workers, each with its own connection, send the same.
	conc := newStub(t, nil)
	if _, err := emulator.Run(ctx, emulator.Config{Source: dsn, Gateway: conc.URL, Target: "kafka", TopicPrefix: "p", Count: 40, Seed: 9, Concurrency: 4}); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(bodies(fromDB), bodies(conc)); diff != "" {
		t.Errorf("concurrency changed what was sent (-serial +concurrent):\n%s", diff)
	}
}

func TestFromDatabaseWithGaps(t *testing.T) {
	dsn := testenv.PostgresDB(t, false)
	ctx := context.Background()
	if _, err := sourcedb.Seed(ctx, dsn, sourcedb.Options{Posts: 20, Seed: 2}); err != nil {
		t.Fatal(err)
	}
	conn := testenv.PostgresConnect(t, dsn)
	// Posts 5-14 are gone; post 3 has no geo row, post 17 no user row.
	for _, q := range []string{
		`DELETE FROM pinterest_data WHERE index BETWEEN 5 AND 14`,
		`DELETE FROM geolocation_data WHERE ind = 3`,
		`DELETE FROM user_data WHERE ind = 17`,
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	s := newStub(t, nil)
	var logs testenv.Buffer
	sum, err := emulator.Run(ctx, emulator.Config{Source: dsn, Gateway: s.URL, Target: "kinesis", TopicPrefix: "p", Count: 60, Seed: 1, Logger: logger(&logs)})
	if err != nil {
		t.Fatal(err)
	}
	g := generate.New(2, 20)
	picked := map[int64]int{}
	perTable := map[string]int{}
	for _, r := range s.requests() {
		rec := parseKinesis(t, r, "", "p")
		checkRecord(t, g, rec)
		perTable[rec.table]++
		if rec.table == "pin" {
			picked[rec.ind]++
		}
		if rec.ind >= 5 && rec.ind <= 14 {
			t.Errorf("sent %s of post %d, which is not in the database", rec.table, rec.ind)
		}
		if (rec.ind == 3 && rec.table == "geo") || (rec.ind == 17 && rec.table == "user") {
			t.Errorf("sent a %s record for post %d, which has none", rec.table, rec.ind)
		}
	}
	incomplete := int64(picked[3] + picked[17])
	if perTable["pin"] != 60 || perTable["geo"] != 60-picked[3] || perTable["user"] != 60-picked[17] {
		t.Errorf("records per table %v for 60 posts (%d of post 3, %d of post 17)", perTable, picked[3], picked[17])
	}
	if sum.Sent != 60 || sum.Incomplete != incomplete || sum.Records != 180-incomplete || sum.Failed != 0 {
		t.Errorf("summary %+v, want 60 posts sent, %d incomplete", sum, incomplete)
	}
	if len(picked) < 8 {
		t.Errorf("only %d of the 10 posts were picked in 60 draws: %v", len(picked), picked)
	}
	if incomplete > 0 && !strings.Contains(logs.String(), "no row in") {
		t.Errorf("incomplete posts not logged:\n%s", logs.String())
	}

	// Very sparse keys: three posts between 0 and 10^12.
	for _, q := range []string{
		`DELETE FROM pinterest_data WHERE index NOT IN (0, 1, 2)`,
		`UPDATE pinterest_data SET index = 1000000000000 WHERE index = 2`,
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	s2 := newStub(t, nil)
	sum, err = emulator.Run(ctx, emulator.Config{Source: dsn, Gateway: s2.URL, Target: "kafka", TopicPrefix: "p", Count: 30, Seed: 1, Logger: logger(&logs)})
	if err != nil || sum.Sent != 30 {
		t.Fatalf("sparse keys: %v, summary %+v", err, sum)
	}
	seen := map[int64]bool{}
	for _, r := range s2.requests() {
		rec := parseKafka(t, r, "p")
		if rec.table == "pin" {
			seen[rec.ind] = true
		}
	}
	if !seen[0] || !seen[1] || !seen[1000000000000] || len(seen) != 3 {
		t.Errorf("sparse keys: picked %v, want 0, 1 and 10^12", seen)
	}
}

func TestSourceErrors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, err = emulator.Run(context.Background(), emulator.Config{Source: "postgres://u@" + addr + "/db?sslmode=disable",
		Gateway: "http://127.0.0.1:1", Target: "kafka", TopicPrefix: "p", Count: 1})
	if err == nil || !strings.Contains(err.Error(), "cannot reach PostgreSQL at "+addr) {
		t.Errorf("unreachable source: %v", err)
	}

	dsn := testenv.PostgresDB(t, false)
	if _, err := sourcedb.Seed(context.Background(), dsn, sourcedb.Options{Posts: 0}); err != nil {
		t.Fatal(err)
	}
	_, err = emulator.Run(context.Background(), emulator.Config{Source: dsn, Gateway: "http://127.0.0.1:1", Target: "kafka", TopicPrefix: "p", Count: 1})
	if !errors.Is(err, sourcedb.ErrEmpty) {
		t.Errorf("empty source: %v, want ErrEmpty", err)
	}
}

// TestSourceReconnects kills the emulator's database connections mid-run:
// the worker reconnects and reads the same post again, nothing fails.
func TestSourceReconnects(t *testing.T) {
	dsn := testenv.PostgresDB(t, false)
	ctx := context.Background()
	if _, err := sourcedb.Seed(ctx, dsn, sourcedb.Options{Posts: 200, Seed: 6}); err != nil {
		t.Fatal(err)
	}
	admin := testenv.PostgresConnect(t, testenv.PostgresAdminDSN(t))
	var dbName string
	if err := testenv.PostgresConnect(t, dsn).QueryRow(ctx, `SELECT current_database()`).Scan(&dbName); err != nil {
		t.Fatal(err)
	}
	// The 10th pin request, while its worker's connection is idle,
	// terminates every connection to the source database.
	var mu sync.Mutex
	terminated := 0
	pins := 0
	s := newStub(t, func(r recorded) reply {
		if !strings.HasSuffix(r.Path, ".pin") {
			return reply{}
		}
		mu.Lock()
		defer mu.Unlock()
		pins++
		if pins == 10 {
			var n int
			if err := admin.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`, dbName).Scan(&n); err != nil {
				t.Errorf("terminating the connections: %v", err)
			}
			terminated = n
		}
		return reply{}
	})
	var logs testenv.Buffer
	sum, err := emulator.Run(ctx, emulator.Config{Source: dsn, Gateway: s.URL, Target: "kafka", TopicPrefix: "p", Count: 30, Seed: 2, Logger: logger(&logs)})
	if err != nil {
		t.Fatal(err)
	}
	if terminated < 1 {
		t.Fatalf("terminated %d connections: the test did not test", terminated)
	}
	if sum.Sent != 30 || sum.Failed != 0 || sum.Records != 90 {
		t.Errorf("summary %+v, want all 30 posts sent", sum)
	}
	if !strings.Contains(logs.String(), "lost the source database connection; reconnecting") {
		t.Errorf("the reconnection was not logged:\n%s", logs.String())
	}
	// And the posts are the ones an undisturbed run sends.
	calm := newStub(t, nil)
	if _, err := emulator.Run(ctx, emulator.Config{Source: dsn, Gateway: calm.URL, Target: "kafka", TopicPrefix: "p", Count: 30, Seed: 2}); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(bodies(calm), bodies(s)); diff != "" {
		t.Errorf("a reconnection changed what was sent (-calm +disturbed):\n%s", diff)
	}
}

// TestProgressLines: for logs and pipes, whole progress lines, with the
// counts and the rate.
func TestProgressLines(t *testing.T) {
	s := newStub(t, func(recorded) reply { return reply{} })
	var out testenv.Buffer
	cfg := emulator.Config{Gateway: s.URL, Target: "kafka", TopicPrefix: "p", Seed: 1, Posts: 100, Count: 40, Rate: 100,
		Progress: &out, ProgressLines: true, ProgressInterval: 50 * time.Millisecond}
	if _, err := emulator.Run(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) < 3 || strings.Contains(out.String(), "\r") || strings.Contains(out.String(), "\033") {
		t.Fatalf("progress %q, want several plain lines", out.String())
	}
	if !regexp.MustCompile(`^emulate: \d+/40 posts sent, 0 failed, 0 retried, [0-9.]+ posts/s$`).MatchString(lines[len(lines)-1]) {
		t.Errorf("progress line %q", lines[len(lines)-1])
	}
}
