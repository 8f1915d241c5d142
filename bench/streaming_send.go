package main

// The streaming benchmark's sender: an open-loop load of posts, each post
// three records (pin, geo, user) POSTed (Kafka, REST Proxy v2) or PUT
// (Kinesis proxy) separately to the gateway, each request due at a fixed
// time (the records of a phase evenly spaced at three times its post rate)
// whatever the answers to the earlier ones, over keep-alive connections.
// For every record it keeps when it was due, when it was sent and when its
// 200 came: the start of its end-to-end latency.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pinpipe/pinpipe/ingest/generate"
)

// stTables are a post's records, in the order they are sent.
var stTables = [3]string{"pin", "geo", "user"}

// stPhase is a stretch of the load at one rate.
type stPhase struct {
	Name string
	Rate float64 // posts a second
	Dur  time.Duration
}

func (p stPhase) posts() int { return int(p.Rate*p.Dur.Seconds() + 0.5) }

// stTarget is where the records go: the gateway's Kafka or Kinesis API for
// the topics <prefix>.<table> or the streams streaming-<prefix>-<table>.
type stTarget struct {
	source  string // kafka or kinesis
	gateway string // base URL
	prefix  string
}

func (t stTarget) url(table string) string {
	if t.source == "kinesis" {
		return t.gateway + "/streams/streaming-" + t.prefix + "-" + table + "/record"
	}
	return t.gateway + "/topics/" + t.prefix + "." + table
}

// body wraps a record as the emulator sends it: {"records":[{"value":R}]}
// for the REST Proxy, {"StreamName":..,"Data":R,"PartitionKey":"<ind>"}
// for the Kinesis proxy.
func (t stTarget) body(table string, ind int64, rec []byte) []byte {
	var b bytes.Buffer
	if t.source == "kinesis" {
		b.WriteString(`{"StreamName":"streaming-` + t.prefix + `-` + table + `","Data":`)
		b.Write(rec)
		b.WriteString(`,"PartitionKey":"` + strconv.FormatInt(ind, 10) + `"}`)
		return b.Bytes()
	}
	b.WriteString(`{"records":[{"value":`)
	b.Write(rec)
	b.WriteString(`}]}`)
	return b.Bytes()
}

func (t stTarget) method() string {
	if t.source == "kinesis" {
		return http.MethodPut
	}
	return http.MethodPost
}

func (t stTarget) contentType() string {
	if t.source == "kinesis" {
		return "application/json"
	}
	return "application/vnd.kafka.json.v2+json"
}

// stGenerator makes the benchmark's posts: the same generator and seed for
// every run, each run its own inds.
var stGenerator = generate.New(1, 1_000_000)

// stSent is what one open-loop load did. Records are numbered k = 3*i + t
// for the i'th post of the load (ind First+i) and table stTables[t].
type stSent struct {
	Phases []stPhase
	First  int64     // ind of the first post
	Start  time.Time // when the first request was due
	// PhasePosts[p] is the index of the first post of phase p; its last
	// element is the number of posts.
	PhasePosts []int
	// Unix nanoseconds of each record: due, released by the schedule to
	// the connections' workers (late only when the sender itself lags),
	// sent (a worker, and so a connection, was free; 0 if none was before
	// the cutoff) and answered 200 (0 when it was not).
	Due, Released, Sent, OK []int64
	Errors                  int64
	FirstError              string
	Dials                   int64
	// CPU at the start of each phase, and at the end of the load.
	CPU []stCPUTimes
}

// Posts is the number of posts scheduled.
func (s *stSent) Posts() int { return s.PhasePosts[len(s.PhasePosts)-1] }

// stSend runs the phases back to back, from post ind first on, over up to
// conns connections. cpu is read at each phase's start and at the end.
// Requests still waiting for a connection grace after the last one was
// due are not sent: a gateway that cannot keep up does not make the run
// last for ever.
func stSend(ctx context.Context, t stTarget, phases []stPhase, first int64, conns int, grace time.Duration, cpu func() stCPUTimes) *stSent {
	s := &stSent{Phases: phases, First: first, PhasePosts: []int{0}}
	for _, p := range phases {
		s.PhasePosts = append(s.PhasePosts, s.PhasePosts[len(s.PhasePosts)-1]+p.posts())
	}
	n := s.Posts()
	s.Due, s.Released, s.Sent, s.OK = make([]int64, 3*n), make([]int64, 3*n), make([]int64, 3*n), make([]int64, 3*n)

	// Bodies are made ahead of the schedule by one goroutine (generating
	// costs CPU too, but not in the requests' path).
	type post [3][]byte
	gen := make(chan post, 4096)
	gctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		defer close(gen)
		for i := range n {
			ind := first + int64(i)
			recs := stGenerator.Records(stGenerator.Post(ind))
			var p post
			for j, table := range stTables {
				p[j] = t.body(table, ind, recs[table])
			}
			select {
			case gen <- p:
			case <-gctx.Done():
				return
			}
		}
	}()

	var dials atomic.Int64
	d := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			dials.Add(1)
			return d.DialContext(ctx, network, addr)
		},
		MaxIdleConns: conns, MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns,
		IdleConnTimeout: 5 * time.Minute, DisableCompression: true,
	}
	defer tr.CloseIdleConnections()
	cl := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	var urls [3]string
	for j, table := range stTables {
		urls[j] = t.url(table)
	}
	method, ctype := t.method(), t.contentType()

	type item struct {
		k    int
		body []byte
	}
	// Buffered for the whole load: the schedule never waits for the
	// workers, so a slow answer makes the requests behind it late, and
	// their lateness counts.
	due := make(chan item, 3*n)
	s.Start = time.Now().Add(50 * time.Millisecond)
	cutoff := s.Start.Add(grace)
	for _, p := range phases {
		cutoff = cutoff.Add(p.Dur)
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range conns {
		wg.Go(func() {
			for it := range due {
				now := time.Now()
				if now.After(cutoff) {
					continue // not sent
				}
				s.Sent[it.k] = now.UnixNano()
				err := stPost(cl, method, urls[it.k%3], ctype, it.body)
				if err == nil {
					s.OK[it.k] = time.Now().UnixNano()
					continue
				}
				if atomic.AddInt64(&s.Errors, 1) == 1 {
					mu.Lock()
					s.FirstError = err.Error()
					mu.Unlock()
				}
			}
		})
	}

	phaseStart := s.Start
	var p post
	for ph, phase := range phases {
		if ctx.Err() != nil {
			break
		}
		first, last := s.PhasePosts[ph], s.PhasePosts[ph+1]
		interval := float64(time.Second) / (3 * phase.Rate)
		time.Sleep(time.Until(phaseStart))
		if cpu != nil {
			s.CPU = append(s.CPU, cpu())
		}
		for k := 3 * first; k < 3*last && ctx.Err() == nil; k++ {
			at := phaseStart.Add(time.Duration(float64(k-3*first) * interval))
			if k%3 == 0 {
				var ok bool
				if p, ok = <-gen; !ok {
					break
				}
			}
			if wait := time.Until(at); wait > 0 {
				time.Sleep(wait)
			}
			s.Due[k], s.Released[k] = at.UnixNano(), time.Now().UnixNano()
			due <- item{k, p[k%3]}
		}
		phaseStart = phaseStart.Add(phase.Dur)
	}
	close(due)
	wg.Wait()
	if cpu != nil {
		s.CPU = append(s.CPU, cpu())
	}
	s.Dials = dials.Load()
	return s
}

// stPost sends one request and reads the whole answer, so that the
// connection goes back to the pool; anything but a 200 is an error.
func stPost(cl *http.Client, method, url, ctype string, body []byte) error {
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", ctype)
	res, err := cl.Do(req)
	if err != nil {
		return err
	}
	b, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		return err
	}
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d: %.200s", res.StatusCode, b)
	}
	return nil
}
