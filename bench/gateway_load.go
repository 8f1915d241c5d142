package main

// The gateway benchmark's load generator: single-record REST Proxy POSTs
// over keep-alive connections, closed loop (each connection sends its next
// request when the answer to the last has come: the peak rate) or open loop
// (requests scheduled at a fixed rate, each latency measured from when the
// request was due, so that a stall is not hidden by the requests it held
// back).

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pinpipe/pinpipe/ingest/generate"
)

// gwRESTContentType is the REST Proxy's JSON embedded format, as the
// original posting script sent it.
const gwRESTContentType = "application/vnd.kafka.json.v2+json"

// gwBodies are n single-record REST Proxy bodies, each a generated pin
// record as the emulator sends it: {"records":[{"value":{...}}]}.
func gwBodies(n int) [][]byte {
	g := generate.New(1, n)
	out := make([][]byte, n)
	for i := range out {
		v := g.Records(g.Post(int64(i)))["pin"]
		out[i] = append(append([]byte(`{"records":[{"value":`), v...), `}]}`...)
	}
	return out
}

// gwLoad sends POSTs to url with the bodies in turn.
type gwLoad struct {
	url    string
	bodies [][]byte
	// cpu, when set, reads the CPU time used so far by the processes
	// involved, at the start and the end of each measurement.
	cpu func() gwCPU
}

// gwCPU is CPU time (user plus system) by process: the load generator, the
// server under test and the Kafka broker; and the busy time of the whole
// machine, all its CPUs and processes.
type gwCPU struct{ Load, Server, Broker, Machine time.Duration }

func (c gwCPU) sub(o gwCPU) gwCPU {
	return gwCPU{c.Load - o.Load, c.Server - o.Server, c.Broker - o.Broker, c.Machine - o.Machine}
}

// Others is the CPU time the rest of the machine used.
func (c gwCPU) Others() time.Duration { return max(0, c.Machine-c.Load-c.Server-c.Broker) }

// measure runs fn, reading the CPU times around it.
func (l *gwLoad) measure(fn func()) gwCPU {
	if l.cpu == nil {
		fn()
		return gwCPU{}
	}
	before := l.cpu()
	fn()
	return l.cpu().sub(before)
}

// gwStats are one measurement's results.
type gwStats struct {
	// Conns is the number of keep-alive connections; Rate the scheduled
	// requests per second (0 in a closed loop).
	Conns int
	Rate  float64
	// OK and Errors count the answers (an error is a non-200 or a failed
	// request); Elapsed is from the first request to the last answer.
	OK, Errors int64
	FirstError string
	Elapsed    time.Duration
	// Dials are the connections opened during the measurement, after the
	// warm-up had opened them all: 0 when keep-alive held.
	Dials int64
	// Latency quantiles of the OK requests.
	P50, P90, P99, P999, Max time.Duration
	// CPU is the CPU time each process used during the measurement.
	CPU gwCPU
}

// PerCPUSecond is the answered requests per second of CPU time the load
// generator, the server and the broker used together.
func (s gwStats) PerCPUSecond() float64 {
	ours := s.CPU.Load + s.CPU.Server + s.CPU.Broker
	if ours <= 0 {
		return 0
	}
	return float64(s.OK) / ours.Seconds()
}

// CPUPerRequest is a process's CPU time per answered request.
func (s gwStats) CPUPerRequest(d time.Duration) time.Duration {
	if s.OK == 0 {
		return 0
	}
	return d / time.Duration(s.OK)
}

// RPS is the answered requests per second.
func (s gwStats) RPS() float64 { return float64(s.OK) / s.Elapsed.Seconds() }

// gwConn is one keep-alive HTTP/1.1 connection of the load generator,
// spoken by hand, as wrk and other load generators do: a request is one
// write of prepared header lines and the body, an answer is read for its
// status line, its framing (Content-Length, chunked, or until the server
// closes) and its body, which is discarded. net/http's client costs more
// CPU per request than the bare server under test does (two goroutines a
// connection, header maps, a request and a response object every time), and
// on a machine the load generator shares with the servers, that CPU is
// taken from them.
type gwConn struct {
	c        net.Conn
	br       *bufio.Reader
	wbuf     []byte
	deadline time.Time
}

// gwTarget is where the load goes: the dial address and the request's
// header lines up to the Content-Length value.
type gwTarget struct {
	addr string
	head []byte
}

func newGWTarget(rawURL string) (*gwTarget, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "http" {
		return nil, fmt.Errorf("load generator: %s: only http:// URLs", rawURL)
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "80")
	}
	head := "POST " + u.RequestURI() + " HTTP/1.1\r\nHost: " + u.Host + "\r\nContent-Type: " + gwRESTContentType + "\r\nContent-Length: "
	return &gwTarget{addr: addr, head: []byte(head)}, nil
}

// gwConns are the connections of one loop, one a worker, dialled when a
// worker first needs one and after a failure, counted in dials.
type gwConns struct {
	t     *gwTarget
	conns []*gwConn
	dials atomic.Int64
}

func (cs *gwConns) closeAll() {
	for i, c := range cs.conns {
		if c != nil {
			c.c.Close()
			cs.conns[i] = nil
		}
	}
}

// gwIOTimeout bounds each request, as the client's timeout did.
const gwIOTimeout = 30 * time.Second

// post sends one body over worker w's connection and reads the whole
// answer; a non-200 is an error. After any other failure the connection is
// closed, and the worker's next request dials a new one.
func (cs *gwConns) post(w int, body []byte) error {
	c := cs.conns[w]
	if c == nil {
		cs.dials.Add(1)
		nc, err := net.DialTimeout("tcp", cs.t.addr, 5*time.Second)
		if err != nil {
			return err
		}
		c = &gwConn{c: nc, br: bufio.NewReaderSize(nc, 4096)}
		cs.conns[w] = c
	}
	status, keep, err := c.roundTrip(cs.t.head, body)
	if err != nil || !keep {
		c.c.Close()
		cs.conns[w] = nil
	}
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return fmt.Errorf("status %d", status)
	}
	return nil
}

func (c *gwConn) roundTrip(head, body []byte) (status int, keep bool, err error) {
	if now := time.Now(); c.deadline.Sub(now) < gwIOTimeout-5*time.Second {
		// Moving the deadline now and then is enough: it only has to catch
		// a server that stopped answering.
		c.deadline = now.Add(gwIOTimeout)
		if err := c.c.SetDeadline(c.deadline); err != nil {
			return 0, false, err
		}
	}
	b := append(c.wbuf[:0], head...)
	b = strconv.AppendInt(b, int64(len(body)), 10)
	b = append(b, "\r\n\r\n"...)
	b = append(b, body...)
	c.wbuf = b
	if _, err := c.c.Write(b); err != nil {
		return 0, false, err
	}
	return gwReadResponse(c.br)
}

var errGWResponse = errors.New("load generator: malformed HTTP response")

// gwReadResponse reads an HTTP/1.1 answer whole, discarding its body, and
// reports its status and whether the connection stays open.
func gwReadResponse(br *bufio.Reader) (status int, keep bool, err error) {
	for {
		status, keep, err = gwReadOneResponse(br)
		if err != nil || status >= 200 {
			return status, keep, err
		}
		// An interim answer (1xx): the real one follows.
	}
}

func gwReadOneResponse(br *bufio.Reader) (status int, keep bool, err error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		return 0, false, err
	}
	// "HTTP/1.1 200 OK\r\n"
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' {
		return 0, false, errGWResponse
	}
	if status, err = strconv.Atoi(string(line[9:12])); err != nil {
		return 0, false, errGWResponse
	}
	keep = line[7] == '1' // HTTP/1.0 closes unless told otherwise; not worth more
	length, chunked := int64(-1), false
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return 0, false, err
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return 0, false, errGWResponse
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			if length, err = strconv.ParseInt(string(value), 10, 64); err != nil || length < 0 {
				return 0, false, errGWResponse
			}
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			chunked = bytes.EqualFold(value, []byte("chunked"))
		case bytes.EqualFold(name, []byte("Connection")):
			keep = !bytes.EqualFold(value, []byte("close"))
		}
	}
	switch {
	case status < 200 || status == http.StatusNoContent || status == http.StatusNotModified:
		// No body.
	case chunked:
		if err := gwDiscardChunked(br); err != nil {
			return 0, false, err
		}
	case length >= 0:
		if _, err := br.Discard(int(length)); err != nil {
			return 0, false, err
		}
	default: // the body runs until the server closes
		if _, err := io.Copy(io.Discard, br); err != nil {
			return 0, false, err
		}
		keep = false
	}
	return status, keep, nil
}

func gwDiscardChunked(br *bufio.Reader) error {
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return err
		}
		size, _, _ := bytes.Cut(bytes.TrimRight(line, "\r\n"), []byte(";"))
		n, err := strconv.ParseInt(string(bytes.TrimSpace(size)), 16, 64)
		if err != nil || n < 0 {
			return errGWResponse
		}
		if n == 0 { // trailers, then an empty line
			for {
				line, err := br.ReadSlice('\n')
				if err != nil {
					return err
				}
				if len(bytes.TrimRight(line, "\r\n")) == 0 {
					return nil
				}
			}
		}
		if _, err := br.Discard(int(n) + 2); err != nil { // the data and its CRLF
			return err
		}
	}
}

// gwRecorder collects one measurement's latencies and errors from many
// goroutines, each with its own slice.
type gwRecorder struct {
	lats     [][]time.Duration
	errors   atomic.Int64
	mu       sync.Mutex
	firstErr string
}

func newGWRecorder(workers int) *gwRecorder {
	return &gwRecorder{lats: make([][]time.Duration, workers)}
}

func (r *gwRecorder) add(worker int, lat time.Duration, err error) {
	if err == nil {
		r.lats[worker] = append(r.lats[worker], lat)
		return
	}
	if r.errors.Add(1) == 1 {
		r.mu.Lock()
		r.firstErr = err.Error()
		r.mu.Unlock()
	}
	time.Sleep(time.Millisecond) // no busy loop against a failing server
}

func (r *gwRecorder) stats(conns int, rate float64, elapsed time.Duration, dials int64) gwStats {
	all := slices.Concat(r.lats...)
	slices.Sort(all)
	q := func(p float64) time.Duration {
		if len(all) == 0 {
			return 0
		}
		return all[min(len(all)-1, int(p*float64(len(all))))]
	}
	s := gwStats{Conns: conns, Rate: rate, OK: int64(len(all)), Errors: r.errors.Load(), FirstError: r.firstErr,
		Elapsed: elapsed, Dials: dials, P50: q(0.50), P90: q(0.90), P99: q(0.99), P999: q(0.999)}
	if len(all) > 0 {
		s.Max = all[len(all)-1]
	}
	return s
}

// closedLoop keeps conns requests in flight, one a connection, for warm (not
// measured: it opens the connections) then for d, and returns d's results.
func (l *gwLoad) closedLoop(ctx context.Context, conns int, warm, d time.Duration) gwStats {
	t, err := newGWTarget(l.url)
	if err != nil {
		return gwStats{Conns: conns, Errors: 1, FirstError: err.Error()}
	}
	cs := &gwConns{t: t, conns: make([]*gwConn, conns)}
	defer cs.closeAll()
	run := func(d time.Duration) (*gwRecorder, time.Duration) {
		rec := newGWRecorder(conns)
		start := time.Now()
		deadline := start.Add(d)
		var wg sync.WaitGroup
		for w := range conns {
			wg.Go(func() {
				for i := w; ctx.Err() == nil; i += conns {
					t0 := time.Now()
					if !t0.Before(deadline) {
						return
					}
					err := cs.post(w, l.bodies[i%len(l.bodies)])
					rec.add(w, time.Since(t0), err)
				}
			})
		}
		wg.Wait()
		return rec, time.Since(start)
	}
	run(warm)
	cs.dials.Store(0)
	var rec *gwRecorder
	var elapsed time.Duration
	cpu := l.measure(func() { rec, elapsed = run(d) })
	st := rec.stats(conns, 0, elapsed, cs.dials.Load())
	st.CPU = cpu
	return st
}

// openLoop schedules rate requests a second, evenly, for warm (not
// measured) then for d, sent over up to conns connections; each latency
// counts from when its request was due.
func (l *gwLoad) openLoop(ctx context.Context, rate float64, conns int, warm, d time.Duration) gwStats {
	t, err := newGWTarget(l.url)
	if err != nil {
		return gwStats{Conns: conns, Rate: rate, Errors: 1, FirstError: err.Error()}
	}
	cs := &gwConns{t: t, conns: make([]*gwConn, conns)}
	defer cs.closeAll()
	run := func(d time.Duration) (*gwRecorder, time.Duration) {
		n := int(rate * d.Seconds())
		rec := newGWRecorder(conns)
		// Buffered for the whole run: the schedule never waits for the
		// workers, so a slow server makes requests late, and their
		// lateness counts.
		due := make(chan time.Time, n)
		start := time.Now()
		var wg sync.WaitGroup
		for w := range conns {
			wg.Go(func() {
				i := w
				for at := range due {
					err := cs.post(w, l.bodies[i%len(l.bodies)])
					rec.add(w, time.Since(at), err)
					i += conns
				}
			})
		}
		pace(ctx, start, rate, n, due)
		close(due)
		wg.Wait()
		return rec, time.Since(start)
	}
	run(warm)
	cs.dials.Store(0)
	var rec *gwRecorder
	var elapsed time.Duration
	cpu := l.measure(func() { rec, elapsed = run(d) })
	st := rec.stats(conns, rate, elapsed, cs.dials.Load())
	st.CPU = cpu
	return st
}

// gwProcCPU is the CPU time (user plus system) process pid has used, from
// /proc/PID/stat (in clock ticks of 1/100 s, Linux's USER_HZ); 0 when it
// cannot be read.
func gwProcCPU(pid int) time.Duration {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// The command name, in parentheses, may hold spaces: count the fields
	// after its closing parenthesis (utime and stime are fields 14 and 15).
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0
	}
	return time.Duration(ut+st) * 10 * time.Millisecond
}

// pace is the open-loop load's clock: it hands due the times of n requests
// at rate per second from start, each once it falls due (so a slow server
// delays no request's scheduled time), and returns how many it handed out
// before ctx ended.
func pace(ctx context.Context, start time.Time, rate float64, n int, due chan<- time.Time) int {
	at := func(i int) time.Time { return start.Add(time.Duration(float64(i) / rate * float64(time.Second))) }
	sent := 0
	for sent < n && ctx.Err() == nil {
		now := time.Now()
		for ; sent < n && !at(sent).After(now); sent++ {
			due <- at(sent)
		}
		if sent < n {
			time.Sleep(time.Until(at(sent)))
		}
	}
	return sent
}
