package main

// The overload measurement (issue 13): open-loop load at -overload-factor
// times the gateway's measured peak (2 by default), over more connections
// than the gateway serves at once, while -idle-conns idle keep-alive
// connections (2,000) stay open to the server; the same for the bare
// handler in the same run. For each: the latency of the accepted requests
// (200), how many got a 429 and how fast, how many timed out or failed,
// whether the idle connections stayed open, and the server's peak RSS.
// Bounded: -overload-duration of load (10 s), requests scheduled at the
// rate for that long and no more, each with -overload-timeout (5 s).

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// gwOverloadStats is one server's overload measurement.
type gwOverloadStats struct {
	Mode             string
	Rate             float64 // scheduled requests a second
	Conns, Idle      int     // load connections; idle connections held open
	Sent             int64
	OK, Throttled    int64 // 200s; 429s
	Timeouts, Errors int64 // requests past the timeout; other failures (other statuses, connection errors)
	FirstError       string
	Elapsed          time.Duration
	P50, P99, Max    time.Duration // of the 200s, from when each was sent: the server's answer time
	DueP99           time.Duration // of the 200s, from when each was due (includes the load generator's own lag)
	ThrottledP99     time.Duration // of the 429s, from when each was sent
	SendLagP99       time.Duration // how late the requests were sent after they were due
	SentRate         float64       // requests sent a second, from the first due time to the last send
	IdleOpen         int           // idle connections still open after the load
	RSSIdle, PeakRSS int64         // the server's RSS with the idle connections open, before the load; its peak (VmHWM)
	MaxInFlight      int           // the gateway's bound (0 for the bare handler)
	Dials            int64
	ThrottledNoRetry int64 // 429s without a Retry-After
}

// gwOverloadOK says whether the gateway met the targets: p99 of the
// accepted requests under 50 ms, the 429s answered quickly (p99 under
// 50 ms), none timed out, peak RSS under 256 MiB with the idle connections
// open, and every idle connection still open.
func (s gwOverloadStats) gwOverloadOK() bool {
	return s.OK > 0 && s.P99 < 50*time.Millisecond && s.ThrottledP99 < 50*time.Millisecond && s.Timeouts == 0 &&
		s.PeakRSS > 0 && s.PeakRSS < 256<<20 && s.IdleOpen == s.Idle && s.ThrottledNoRetry == 0
}

// gwIdleConns opens n keep-alive connections to addr, each after one
// answered GET /healthz, and leaves them idle.
func gwIdleConns(addr string, n int) ([]net.Conn, error) {
	conns := make([]net.Conn, 0, n)
	for range n {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			gwCloseAll(conns)
			return nil, fmt.Errorf("idle connection %d: %w", len(conns)+1, err)
		}
		conns = append(conns, c)
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Write([]byte("GET /healthz HTTP/1.1\r\nHost: " + addr + "\r\n\r\n")); err != nil {
			gwCloseAll(conns)
			return nil, err
		}
		status, keep, err := gwReadResponse(bufio.NewReaderSize(c, 512))
		if err != nil || status != http.StatusOK || !keep {
			gwCloseAll(conns)
			return nil, fmt.Errorf("idle connection %d: status %d, keep-alive %v: %v", len(conns), status, keep, err)
		}
		_ = c.SetDeadline(time.Time{})
	}
	return conns, nil
}

func gwCloseAll(conns []net.Conn) {
	for _, c := range conns {
		c.Close()
	}
}

// gwStillOpen counts the connections the server has not closed.
func gwStillOpen(conns []net.Conn) int {
	n := 0
	one := make([]byte, 1)
	for _, c := range conns {
		_ = c.SetReadDeadline(time.Now().Add(time.Millisecond))
		_, err := c.Read(one)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			n++
		}
	}
	return n
}

// gwProcMem reads a memory figure (VmRSS, VmHWM) of process pid, in bytes.
func gwProcMem(pid int, field string) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			f := strings.Fields(rest)
			if len(f) >= 1 {
				kb, err := strconv.ParseInt(f[0], 10, 64)
				if err == nil {
					return kb << 10
				}
			}
		}
	}
	return 0
}

// gwOverloadLoad sends the load: requests scheduled evenly at rate for d,
// handed to the first free of conns workers (a connection each), each
// answer classified, its latency counted from when it was due.
func (l *gwLoad) overloadLoop(ctx context.Context, rate float64, conns int, d, timeout time.Duration) gwOverloadStats {
	st := gwOverloadStats{Rate: rate, Conns: conns}
	t, err := newGWTarget(l.url)
	if err != nil {
		st.Errors, st.FirstError = 1, err.Error()
		return st
	}
	n := int(rate * d.Seconds())
	lats := make([][]time.Duration, conns)
	dueLats := make([][]time.Duration, conns)
	lags := make([][]time.Duration, conns)
	thr := make([][]time.Duration, conns)
	var lastSend atomic.Int64
	var ok, throttled, timeouts, errs, noRetry, dials atomic.Int64
	var firstErr atomic.Pointer[string]
	due := make(chan time.Time, n)
	start := time.Now()
	var wg sync.WaitGroup
	for w := range conns {
		wg.Go(func() {
			var c *gwConn
			i := w
			for at := range due {
				if c == nil {
					nc, err := net.DialTimeout("tcp", t.addr, timeout)
					dials.Add(1)
					if err != nil {
						errs.Add(1)
						s := err.Error()
						firstErr.CompareAndSwap(nil, &s)
						continue
					}
					c = &gwConn{c: nc, br: bufio.NewReaderSize(nc, 4096)}
				}
				sentAt := time.Now()
				lags[w] = append(lags[w], sentAt.Sub(at))
				if ns := sentAt.UnixNano(); ns > lastSend.Load() {
					lastSend.Store(ns) // a race between workers loses at most a microsecond
				}
				_ = c.c.SetDeadline(sentAt.Add(timeout))
				status, retry, keep, err := c.overloadRoundTrip(t.head, l.bodies[i%len(l.bodies)])
				i += conns
				lat := time.Since(sentAt)
				switch {
				case err != nil:
					var ne net.Error
					if errors.As(err, &ne) && ne.Timeout() {
						timeouts.Add(1)
					} else {
						errs.Add(1)
					}
					s := err.Error()
					firstErr.CompareAndSwap(nil, &s)
				case status == http.StatusOK:
					ok.Add(1)
					lats[w] = append(lats[w], lat)
					dueLats[w] = append(dueLats[w], time.Since(at))
				case status == http.StatusTooManyRequests:
					throttled.Add(1)
					thr[w] = append(thr[w], lat)
					if !retry {
						noRetry.Add(1)
					}
				default:
					errs.Add(1)
					s := "status " + strconv.Itoa(status)
					firstErr.CompareAndSwap(nil, &s)
				}
				if err != nil || !keep {
					c.c.Close()
					c = nil
				}
			}
			if c != nil {
				c.c.Close()
			}
		})
	}
	sent := pace(ctx, start, rate, n, due)
	close(due)
	wg.Wait()
	st.Elapsed = time.Since(start)
	st.Sent = int64(sent)
	st.OK, st.Throttled, st.Timeouts, st.Errors = ok.Load(), throttled.Load(), timeouts.Load(), errs.Load()
	st.ThrottledNoRetry, st.Dials = noRetry.Load(), dials.Load()
	if p := firstErr.Load(); p != nil {
		st.FirstError = *p
	}
	q := func(all []time.Duration, p float64) time.Duration {
		if len(all) == 0 {
			return 0
		}
		return all[min(len(all)-1, int(p*float64(len(all))))]
	}
	all := slices.Concat(lats...)
	slices.Sort(all)
	st.P50, st.P99 = q(all, 0.5), q(all, 0.99)
	if len(all) > 0 {
		st.Max = all[len(all)-1]
	}
	allThr := slices.Concat(thr...)
	slices.Sort(allThr)
	st.ThrottledP99 = q(allThr, 0.99)
	allDue := slices.Concat(dueLats...)
	slices.Sort(allDue)
	st.DueP99 = q(allDue, 0.99)
	allLags := slices.Concat(lags...)
	slices.Sort(allLags)
	st.SendLagP99 = q(allLags, 0.99)
	if last := lastSend.Load(); last > start.UnixNano() {
		st.SentRate = float64(sent) / time.Duration(last-start.UnixNano()).Seconds()
	}
	return st
}

// overloadRoundTrip sends one request and reads its answer: the status,
// whether a 429 said when to retry, and whether the connection stays open.
func (c *gwConn) overloadRoundTrip(head, body []byte) (status int, retryAfter, keep bool, err error) {
	b := append(c.wbuf[:0], head...)
	b = strconv.AppendInt(b, int64(len(body)), 10)
	b = append(b, "\r\n\r\n"...)
	b = append(b, body...)
	c.wbuf = b
	if _, err := c.c.Write(b); err != nil {
		return 0, false, false, err
	}
	res, err := http.ReadResponse(c.br, nil)
	if err != nil {
		return 0, false, false, err
	}
	_, err = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode, res.Header.Get("Retry-After") != "", !res.Close, err
}

// gwOverload measures the gateway, then the bare handler, each in a fresh
// child on addr, at factor times peak requests a second.
func gwOverload(ctx context.Context, o gwOptions, addr, brokers string, bodies [][]byte, peak float64) ([]gwOverloadStats, error) {
	rate := o.overloadFactor * peak
	var out []gwOverloadStats
	for _, mode := range []string{"gateway", "bare"} {
		var extra []string
		maxInFlight := 0
		if mode == "gateway" {
			extra = []string{"-brokers=" + brokers, "-kafka-linger=" + o.kafkaLinger.String()}
			if o.overloadMaxInFlight > 0 {
				extra = append(extra, "-max-in-flight="+strconv.Itoa(o.overloadMaxInFlight))
				maxInFlight = o.overloadMaxInFlight
			} else {
				maxInFlight = 512 // the gateway's default
			}
		}
		srv, err := startGWChild(mode, addr, extra...)
		if err != nil {
			return out, err
		}
		idle, err := gwIdleConns(addr, o.idleConns)
		if err != nil {
			srv.stop()
			return out, err
		}
		time.Sleep(200 * time.Millisecond)
		rssIdle := gwProcMem(srv.cmd.Process.Pid, "VmRSS")
		load := &gwLoad{url: "http://" + addr + "/topics/" + gwTopic, bodies: bodies}
		st := load.overloadLoop(ctx, rate, o.overloadConns, o.overloadDuration, o.overloadTimeout)
		st.Mode, st.Idle, st.MaxInFlight, st.RSSIdle = mode, o.idleConns, maxInFlight, rssIdle
		st.PeakRSS = gwProcMem(srv.cmd.Process.Pid, "VmHWM")
		st.IdleOpen = gwStillOpen(idle)
		gwCloseAll(idle)
		gwLog("overload %-7s %8.0f req/s scheduled (%.0f sent, lag p99 %s) over %d connections, %d idle: %d ok (p50 %s, p99 %s), "+
			"%d throttled (p99 %s), %d timeouts, %d errors %q; %d of %d idle connections open; RSS %d MiB idle, peak %d MiB",
			mode, rate, st.SentRate, gwMS(st.SendLagP99), st.Conns, st.Idle, st.OK, gwMS(st.P50), gwMS(st.P99), st.Throttled, gwMS(st.ThrottledP99),
			st.Timeouts, st.Errors, st.FirstError, st.IdleOpen, st.Idle, st.RSSIdle>>20, st.PeakRSS>>20)
		if err := srv.stop(); err != nil {
			return out, fmt.Errorf("stopping the %s server: %w", mode, err)
		}
		out = append(out, st)
		if ctx.Err() != nil {
			return out, ctx.Err()
		}
	}
	return out, nil
}

// overloadMarkdown writes the overload section of the report.
func (r *gwResults) overloadMarkdown(p func(string, ...any), o gwOptions) {
	if len(r.overload) == 0 {
		return
	}
	p("## Overload: %.0f× the gateway's peak, with %d idle connections open\n\n", o.overloadFactor, o.idleConns)
	p("Open loop: %.0f requests a second scheduled evenly (%.0f× the gateway's median peak above) for %s, handed to the first free of "+
		"%d workers, each with its own keep-alive connection and a %s timeout a request. Latencies count from when a request was "+
		"sent (the server's answer time; the targets are about it), and for the 200s also from when it was due, which adds the "+
		"load generator's own lag: on this machine the generator shares the 2 CPUs with the server and the broker, so it cannot "+
		"always send at the scheduled rate; the rate it did send at and how late are in the table. Before the load, %d keep-alive "+
		"connections each had one `GET /healthz` answered and then stayed idle, open to the "+
		"server throughout. Each server ran in a fresh child process; its RSS is read from /proc (VmRSS with the idle connections "+
		"open, before the load; VmHWM, the peak, after it). The gateway serves at most %s requests at once (`--max-in-flight`) and "+
		"answers the rest 429 with Retry-After at once; the bare handler has no bound.\n\n",
		r.overload[0].Rate, o.overloadFactor, o.overloadDuration, o.overloadConns, o.overloadTimeout, o.idleConns,
		strconv.Itoa(r.overload[0].MaxInFlight))
	p("| server | scheduled req/s | sent req/s | send lag p99 | sent | 200 | 200 p50 | 200 p99 | 200 max | 200 p99 from due | 429 | 429 p99 | 429 without Retry-After | timeouts | other errors | idle connections still open | RSS idle | peak RSS |\n")
	p("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, s := range r.overload {
		p("| %s | %.0f | %.0f | %s | %d | %d | %s | %s | %s | %s | %d | %s | %d | %d | %d | %d of %d | %d MiB | %d MiB |\n", s.Mode, s.Rate,
			s.SentRate, gwMS(s.SendLagP99), s.Sent, s.OK, gwMS(s.P50), gwMS(s.P99), gwMS(s.Max), gwMS(s.DueP99), s.Throttled,
			gwMS(s.ThrottledP99), s.ThrottledNoRetry, s.Timeouts, s.Errors, s.IdleOpen, s.Idle, s.RSSIdle>>20, s.PeakRSS>>20)
	}
	g := r.overload[0]
	p("\nTargets (issue 13), the gateway, under %.0f requests a second sent (%.2f× its peak): p99 of the accepted requests under "+
		"50 ms (%s: %s); the rest answered 429 quickly (p99 %s, all with Retry-After: %s); none timed out (%d: %s); peak RSS under "+
		"256 MiB with %d idle connections open (%d MiB: %s); the idle connections kept (%d of %d). Overall: %s.\n",
		g.SentRate, g.SentRate/(g.Rate/o.overloadFactor),
		gwMS(g.P99), gwVerdict(g.P99 < 50*time.Millisecond), gwMS(g.ThrottledP99), gwVerdict(g.ThrottledP99 < 50*time.Millisecond && g.ThrottledNoRetry == 0),
		g.Timeouts, gwVerdict(g.Timeouts == 0), g.Idle, g.PeakRSS>>20, gwVerdict(g.PeakRSS > 0 && g.PeakRSS < 256<<20),
		g.IdleOpen, g.Idle, gwVerdict(g.gwOverloadOK()))
	if g.FirstError != "" || len(r.overload) > 1 && r.overload[1].FirstError != "" {
		p("\nFirst error seen: gateway %q", g.FirstError)
		if len(r.overload) > 1 {
			p(", bare %q", r.overload[1].FirstError)
		}
		p(".\n")
	}
	p("\n")
}
