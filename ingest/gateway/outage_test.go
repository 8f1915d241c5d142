package gateway

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	devkafka "github.com/pinpipe/pinpipe/ingest/devserver/kafka"
	"github.com/pinpipe/pinpipe/internal/faultproxy"
	"github.com/pinpipe/pinpipe/internal/testenv"
)

// answered is what clients of the gateway were told: the values of the
// requests answered 200, and those answered otherwise.
type answered struct {
	mu       sync.Mutex
	ok, fail []string
	firstOK  time.Time // the first 200 after markFault
	faultEnd time.Time
	done     chan struct{} // closed when every client has stopped
}

func (a *answered) add(v string, status int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if status != http.StatusOK {
		a.fail = append(a.fail, v)
		return
	}
	a.ok = append(a.ok, v)
	if !a.faultEnd.IsZero() && a.firstOK.IsZero() {
		a.firstOK = time.Now()
	}
}

func (a *answered) markFaultEnd() {
	a.mu.Lock()
	a.faultEnd = time.Now()
	a.mu.Unlock()
}

// sendForever has clients send one record a request, each with a value
// of its own (a retry is a new value: an answer other than 200 may still
// have been written), at about rate requests a second until stop closes.
func sendForever(stop <-chan struct{}, clients, rate int, send func(value string) int) *answered {
	a := &answered{done: make(chan struct{})}
	var wg sync.WaitGroup
	for c := range clients {
		wg.Go(func() {
			tick := time.NewTicker(time.Second * time.Duration(clients) / time.Duration(rate))
			defer tick.Stop()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				v := fmt.Sprintf(`{"client":%d,"seq":%d}`, c, i)
				a.add(v, send(v))
			}
		})
	}
	go func() { <-stop; wg.Wait(); close(a.done) }()
	return a
}

// afterFault marks the fault's end, waits up to within for a request
// answered 200 (what: which), lets the clients go on for settle, stops
// them (closing stop) and returns what they were told: the values answered
// 200 and those answered otherwise, and how long after the fault's end
// the first 200 came.
func (a *answered) afterFault(t *testing.T, stop chan<- struct{}, within, settle time.Duration, what string) (ok, fail []string, recovered time.Duration) {
	t.Helper()
	a.markFaultEnd()
	testenv.WaitFor(t, within, what, func() bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		return !a.firstOK.IsZero()
	})
	time.Sleep(settle)
	close(stop)
	<-a.done
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.ok), slices.Clone(a.fail), a.firstOK.Sub(a.faultEnd)
}

// reportLanded reports the outage from the values answered 200 and the
// values found in the backend (each as often as found): each value
// answered 200 must be there once. It returns how many values found were
// not answered 200 (a 5xx may or may not have been written).
func reportLanded(t *testing.T, fault string, d time.Duration, ok []string, found map[string]int, recovered time.Duration) (others int) {
	t.Helper()
	landed, others := onlyOf(ok, found)
	distinct, lost, doubled := faultproxy.Count(ok, landed)
	faultproxy.Report(t, faultproxy.Outcome{Fault: fault, Duration: d, Sent: len(ok), Landed: distinct,
		Lost: lost, Doubled: doubled, Recover: recovered})
	return others
}

// TestOutageKafkaRestartGateway stops the Kafka broker under the gateway
// while clients produce through it, and starts it again after the fault's
// duration on the same port with the same data (kfake saving its log and
// offsets to its data directory on close and loading them at start, so
// that the topics keep their IDs, as a broker restart does; every
// connection of the gateway's producer is closed and refused meanwhile).
// The gateway reconnects by itself, and every request it answered 200 is
// in Kafka exactly once. (What it answers while Kafka is down, 503 with
// Retry-After, is TestKafkaBrokerDown's.)
func TestOutageKafkaRestartGateway(t *testing.T) {
	t.Parallel()
	d := faultproxy.Duration(t)
	dir := t.TempDir()
	opts := devkafka.Options{Listen: "127.0.0.1:0", DataDir: filepath.Join(dir, "kafka"), Partitions: 3, Logger: testLogger(t)}
	k, err := devkafka.Start(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { k.Close() }()
	opts.Listen = k.Addr()
	g := startGateway(t, Config{KafkaBrokers: []string{k.Addr()}, BackendTimeout: 5 * time.Second})
	const topic = "outage.gw"
	adm, err := kgo.NewClient(kgo.SeedBrokers(k.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	created, err := kadm.NewClient(adm).CreateTopics(t.Context(), 3, 1, nil, topic)
	if err == nil {
		err = created.Error()
	}
	adm.Close()
	if err != nil {
		t.Fatal(err)
	}
	expectProduceOK(t, g, topic)

	stop := make(chan struct{})
	sent := sendForever(stop, 4, 100, func(v string) int {
		req, _ := http.NewRequest("POST", g.url+"/topics/"+topic, strings.NewReader(`{"records":[{"value":`+v+`}]}`))
		req.Header.Set("Content-Type", ctJSON)
		res, err := client.Do(req)
		if err != nil {
			return 0
		}
		res.Body.Close()
		return res.StatusCode
	})
	time.Sleep(time.Second)
	k.Close()
	time.Sleep(d)
	if k, err = devkafka.Start(context.Background(), opts); err != nil {
		t.Fatalf("restarting Kafka on %s: %v", opts.Listen, err)
	}
	ok, fail, recovered := sent.afterFault(t, stop, 2*time.Minute, 2*time.Second, "a produce answered 200 after the restart")

	inKafka := map[string]int{}
	for _, v := range readAll(t, k.Addr(), topic) {
		inKafka[v]++
	}
	alsoWritten := reportLanded(t, "Kafka broker restarted (gateway)", d, ok, inKafka, recovered)
	t.Logf("%d answered 200, %d otherwise (%d of those written anyway, as a 5xx from Kafka's side allows)", len(ok), len(fail), alsoWritten)
	if len(fail) == 0 {
		t.Error("no request failed: the broker was never seen down")
	}
}

// onlyOf keeps the counts of the values in keep, and says how many other
// values there were.
func onlyOf(keep []string, counts map[string]int) (map[string]int, int) {
	in := map[string]bool{}
	for _, v := range keep {
		in[v] = true
	}
	out, others := map[string]int{}, 0
	for v, n := range counts {
		if in[v] {
			out[v] = n
		} else {
			others++
		}
	}
	return out, others
}

// readAll reads every value of a topic, from the start to its end now.
func readAll(t *testing.T, addr, topic string) []string {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	ends.Each(func(o kadm.ListedOffset) { total += o.Offset })
	var out []string
	for int64(len(out)) < total {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d records of %s", len(out), total, topic)
		}
		fs.EachRecord(func(r *kgo.Record) { out = append(out, string(r.Value)) })
	}
	return out
}

// TestOutageKinesisThrottledGateway puts kinesalite behind a proxy that
// answers every PutRecord and PutRecords with
// ProvisionedThroughputExceededException for the fault's duration, while
// clients put records through the gateway: the gateway's SDK client backs
// off, the gateway answers 429 (a client's cue to retry) when throttling
// outlasts its retries or 504 when they outlast the backend timeout, never
// 200 for a record not written, and every record answered 200 is in the
// stream exactly once.
func TestOutageKinesisThrottledGateway(t *testing.T) {
	t.Parallel()
	// The throttling must outlast the SDK's retries (3 attempts, up to 2 s
	// and 4 s of jittered backoff between them) for a put to see all its
	// attempts refused: with a shorter fault every put may back off past
	// its end and succeed, and the 429 path goes untested.
	d := max(faultproxy.Duration(t), 10*time.Second)
	proxy, err := faultproxy.Start(testenv.Kinesalite(t))
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	kc := testenv.KinesisClient(proxy.URL)
	g := startGateway(t, Config{Kinesis: kc, BackendTimeout: 5 * time.Second})
	name := newStream(t, g, "outage-gw", 2)

	statuses := map[int]int{}
	timedOut := map[string]bool{} // answered 504: their put may have been sent in time
	var smu sync.Mutex
	stop := make(chan struct{})
	sent := sendForever(stop, 4, 100, func(v string) int {
		body := `{"Data":` + v + `,"PartitionKey":` + fmt.Sprintf("%q", v) + `}`
		res, err := client.Do(mustRequest("PUT", g.url+"/streams/"+name+"/record", body))
		status := 0
		if err == nil {
			res.Body.Close()
			status = res.StatusCode
		}
		smu.Lock()
		statuses[status]++
		if status == http.StatusGatewayTimeout {
			timedOut[v] = true
		}
		smu.Unlock()
		return status
	})
	time.Sleep(time.Second)
	proxy.Set(faultproxy.KinesisThrottled(faultproxy.KinesisOps("PutRecord", "PutRecords")))
	time.Sleep(d)
	proxy.Set(nil)
	ok, fail, recovered := sent.afterFault(t, stop, time.Minute, time.Second, "a put answered 200 after the throttling")

	inStream := map[string]int{}
	for _, r := range readStream(t, testenv.KinesisClient(testenv.Kinesalite(t)), name, -1) {
		inStream[string(r.Data)]++
	}
	// A put answered 504 may have reached Kinesis before the backend
	// timeout, as the answer says: once at most, and not counted as
	// throttled.
	smu.Lock()
	for v := range timedOut {
		if n := inStream[v]; n > 1 {
			t.Errorf("a record answered 504 is in the stream %d times", n)
		}
		delete(inStream, v)
	}
	smu.Unlock()
	others := reportLanded(t, "Kinesis throttles puts (gateway)", d, ok, inStream, recovered)
	smu.Lock()
	t.Logf("answers: %v; %d throttled calls", statuses, proxy.Faulted())
	// 429 when Kinesis's throttling outlasts the SDK's retries (the
	// record was not written), 504 when the retries outlast the backend
	// timeout (it may have been: the last try may have been sent in time):
	// both tell the client to retry.
	if statuses[http.StatusTooManyRequests] == 0 || statuses[http.StatusTooManyRequests]+statuses[http.StatusGatewayTimeout] != len(fail) {
		t.Errorf("answers %v: want 429 or 504 for every put not answered 200 (%d), and some 429", statuses, len(fail))
	}
	smu.Unlock()
	if others != 0 {
		t.Errorf("%d records not answered 200 are in the stream: a throttled put reached Kinesis", others)
	}
}

func mustRequest(method, url, body string) *http.Request {
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		panic(err)
	}
	req.Header.Set("Content-Type", "application/json")
	return req
}
