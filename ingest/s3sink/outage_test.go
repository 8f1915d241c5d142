package s3sink

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	devkafka "github.com/pinpipe/pinpipe/ingest/devserver/kafka"
	devs3 "github.com/pinpipe/pinpipe/ingest/devserver/s3"
	"github.com/pinpipe/pinpipe/internal/faultproxy"
)

// outageEnv is a real Kafka broker (kfake, persistent so that it can be
// restarted with its data) and gofakes3 behind a fault proxy, with a
// producer sending numbered records at a steady rate.
type outageEnv struct {
	t      *testing.T
	dir    string
	addr   string
	kafka  *devkafka.Server
	direct *env // clients straight to the servers, for checking
	proxy  *faultproxy.Proxy
	topic  string
	sentMu sync.Mutex
	sent   []string
	sink   *running
}

func newOutageEnv(t *testing.T) *outageEnv {
	t.Helper()
	e := &outageEnv{t: t, dir: t.TempDir(), topic: "outage.pin"}
	var err error
	e.kafka, err = devkafka.Start(context.Background(), devkafka.Options{Listen: "127.0.0.1:0", DataDir: filepath.Join(e.dir, "kafka"),
		Partitions: 3, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	e.addr = e.kafka.Addr()
	t.Cleanup(func() { e.kafka.Close() })
	srv, err := devs3.Start(context.Background(), devs3.Options{Listen: "127.0.0.1:0", Buckets: []string{bucket}, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	if e.proxy, err = faultproxy.Start(srv.URL()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.proxy.Close() })
	// The producer retries without limit (franz-go's default), so that a
	// record sent while the broker is down is acknowledged once it is back.
	prod, err := kgo.NewClient(kgo.SeedBrokers(e.addr), kgo.AllowAutoTopicCreation(), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()),
		kgo.WithLogger(kgoLogger{quietLogger()}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(prod.Close)
	e.direct = &env{brokers: e.addr, s3: s3Client(srv.URL()), prod: prod, adm: kadm.NewClient(prod)}
	created, err := e.direct.adm.CreateTopics(t.Context(), 3, 1, nil, e.topic)
	if err == nil {
		err = created.Error()
	}
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// startProducing sends n records, rate a second, each value naming its
// number; it returns a channel closed when all are acknowledged.
func (e *outageEnv) startProducing(n, rate int) <-chan error {
	done := make(chan error, 1)
	go func() {
		tick := time.NewTicker(time.Second / time.Duration(rate))
		defer tick.Stop()
		var wg sync.WaitGroup
		var failed error
		var mu sync.Mutex
		for i := range n {
			<-tick.C
			v := `{"index":` + strconv.Itoa(i) + `}`
			wg.Add(1)
			e.direct.prod.Produce(context.Background(), &kgo.Record{Topic: e.topic, Value: []byte(v)}, func(_ *kgo.Record, err error) {
				defer wg.Done()
				if err != nil {
					mu.Lock()
					failed = err
					mu.Unlock()
					return
				}
				e.sentMu.Lock()
				e.sent = append(e.sent, v)
				e.sentMu.Unlock()
			})
		}
		wg.Wait()
		done <- failed
	}()
	return done
}

func (e *outageEnv) sentSoFar() []string {
	e.sentMu.Lock()
	defer e.sentMu.Unlock()
	return append([]string(nil), e.sent...)
}

// landed counts each line in S3 under the sink's prefix, read straight
// from the server.
func (e *outageEnv) landed() map[string]int {
	got := map[string]int{}
	for _, o := range e.direct.objects(e.t, "land/") {
		for _, l := range o.lines {
			got[l]++
		}
	}
	return got
}

// waitLanded waits until every record in want is in S3, and says how long
// that took.
func (e *outageEnv) waitLanded(want []string, timeout time.Duration) time.Duration {
	e.t.Helper()
	began := time.Now()
	for {
		got := e.landed()
		missing := 0
		for _, v := range want {
			if got[v] == 0 {
				missing++
			}
		}
		if missing == 0 {
			return time.Since(began)
		}
		select {
		case <-e.sink.done:
			e.t.Fatalf("the sink stopped with %d of %d records not in S3: %v", missing, len(want), e.sink.err)
		default:
		}
		if time.Since(began) > timeout {
			e.t.Fatalf("%d of %d records not in S3 %s after the fault", missing, len(want), timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// checkCommittedWritten checks that a partition's objects hold every offset
// below committed: no offset is committed for a record not written.
func (e *outageEnv) checkCommittedWritten(group string) {
	e.t.Helper()
	ends := map[int32][][2]int64{}
	for _, o := range e.direct.objects(e.t, "land/") {
		var p int32
		var first, last int64
		if _, err := fmt.Sscanf(o.meta[metaFirstOffset]+" "+o.meta[metaLastOffset], "%d %d", &first, &last); err != nil {
			e.t.Fatalf("%s: offsets in its metadata: %v", o.key, err)
		}
		fmt.Sscanf(filepath.Base(filepath.Dir(o.key)), "partition=%d", &p)
		ends[p] = append(ends[p], [2]int64{first, last})
	}
	for p := range int32(3) {
		c := e.direct.committed(e.t, group, e.topic, p)
		spans := ends[p]
		sort.Slice(spans, func(i, j int) bool { return spans[i][0] < spans[j][0] })
		var next int64
		for _, s := range spans {
			if s[0] > next {
				break
			}
			next = max(next, s[1]+1)
		}
		if c > next {
			e.t.Errorf("partition %d: offset %d committed, but S3 holds its records only up to %d", p, c, next)
		}
	}
}

// outageRate is the records a second the producer sends in the outage
// tests.
const outageRate = 100

// startOutage starts the sink under group and a producer that sends
// records for the fault's duration d and 6 s more, and waits for the first
// record in S3: the fault can begin. It returns the sink and the
// producer's end.
func (e *outageEnv) startOutage(group string, d time.Duration) (*running, <-chan error) {
	e.t.Helper()
	sink := e.startSinkVia(group)
	produced := e.startProducing(int((d+6*time.Second).Seconds())*outageRate, outageRate)
	e.waitLanded([]string{`{"index":0}`}, 30*time.Second)
	return sink, produced
}

// finishOutage waits for the producer and for every record it sent in S3,
// stops the sink, checks that no offset was committed past what is
// written, and reports the outage: every record once.
func (e *outageEnv) finishOutage(sink *running, produced <-chan error, group, fault string, d, recovered time.Duration) Stats {
	e.t.Helper()
	if err := <-produced; err != nil {
		e.t.Fatal(err)
	}
	all := e.sentSoFar()
	e.waitLanded(all, 2*time.Minute)
	st := sink.stop(e.t)
	e.checkCommittedWritten(group)
	landed, lost, doubled := faultproxy.Count(all, e.landed())
	faultproxy.Report(e.t, faultproxy.Outcome{Fault: fault, Duration: d, Sent: len(all), Landed: landed,
		Lost: lost, Doubled: doubled, Recover: recovered})
	return st
}

// TestOutageS3RefusesWrites puts S3 behind a proxy that refuses every
// write for the fault's duration (a third each of 503 SlowDown, 500
// InternalError and dropped connections) while records arrive: the sink
// retries, commits no offset past what is written, and afterwards every
// record is in S3 exactly once.
func TestOutageS3RefusesWrites(t *testing.T) {
	t.Parallel()
	d := faultproxy.Duration(t)
	e := newOutageEnv(t)
	const group = "outage-s3"
	sink, produced := e.startOutage(group, d)

	puts := faultproxy.Methods(http.MethodPut)
	for i, f := range []*faultproxy.Fault{faultproxy.S3SlowDown(puts), faultproxy.S3InternalError(puts), {Match: puts, Drop: true}} {
		e.proxy.Set(f)
		time.Sleep(d / 3)
		if i == 0 {
			t.Logf("S3 refusing writes; %d records sent", len(e.sentSoFar()))
		}
	}
	e.checkCommittedWritten(group)
	refused := e.proxy.Faulted()
	sentByEnd := e.sentSoFar()
	e.proxy.Set(nil)
	recovered := e.waitLanded(sentByEnd, 2*time.Minute)
	if refused == 0 {
		t.Fatal("no write was refused: the fault came at no moment that mattered")
	}
	st := e.finishOutage(sink, produced, group, "S3 refuses writes (s3sink)", d, recovered)
	t.Logf("%d writes refused; sink: %+v", refused, st)
}

// TestOutageKafkaRestartS3Sink stops the Kafka broker under the running
// sink and starts it again on the same port with the same data (kfake
// persisting its log, topics and group offsets to its data directory on
// close and reloading them, as a broker restart does): every connection
// of the sink's client is closed and refused while it is down, so the sink
// must reconnect, rejoin its group and go on by itself; every record is in
// S3 exactly once.
func TestOutageKafkaRestartS3Sink(t *testing.T) {
	t.Parallel()
	d := faultproxy.Duration(t)
	e := newOutageEnv(t)
	const group = "outage-kafka"
	sink, produced := e.startOutage(group, d)
	e.restartKafka(d)
	recovered := e.waitLanded(e.sentSoFar(), 2*time.Minute)
	e.finishOutage(sink, produced, group, "Kafka broker restarted (s3sink)", d, recovered)
}

// restartKafka closes the broker, waits d, and starts it again on the
// same address with the same data directory.
func (e *outageEnv) restartKafka(d time.Duration) {
	e.t.Helper()
	e.kafka.Close()
	time.Sleep(d)
	k, err := devkafka.Start(context.Background(), devkafka.Options{Listen: e.addr, DataDir: filepath.Join(e.dir, "kafka"),
		Partitions: 3, Logger: quietLogger()})
	if err != nil {
		e.t.Fatalf("restarting Kafka on %s: %v", e.addr, err)
	}
	e.kafka = k
}

// startSinkVia runs the sink with S3 through the fault proxy, small
// objects and a short rotation, so that writes happen all the time.
func (e *outageEnv) startSinkVia(group string) *running {
	e.t.Helper()
	o := Options{Brokers: []string{e.addr}, Topics: "outage\\..*", Dest: "s3://" + bucket + "/land", Group: group,
		FlushSize: 25, RotateInterval: 300 * time.Millisecond, S3: s3Client(e.proxy.URL), Logger: quietLogger()}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		r.stats, r.err = Run(ctx, o)
	}()
	e.sink = r
	e.t.Cleanup(func() {
		select {
		case <-r.done:
		default:
			r.stop(e.t)
		}
	})
	return r
}
