package gateway

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"
)

// errKind classifies failed requests for the errors counter; a small fixed
// set keeps the metric's cardinality bounded.
type errKind int

const (
	errNone      errKind = iota
	errRequest           // malformed or invalid request (4xx)
	errAuth              // missing or wrong API key
	errNotFound          // unknown path, topic, partition or stream
	errBackend           // Kafka or Kinesis failed or refused
	errPanic             // a bug: the recover middleware caught a panic
	errThrottled         // refused by the bound on requests in flight or a rate limit
	numErrKinds
)

var errKindNames = [numErrKinds]string{"", "request", "auth", "not_found", "backend", "panic", "throttled"}

func kindFor(status int) errKind {
	switch {
	case status == http.StatusNotFound:
		return errNotFound
	case status == http.StatusForbidden || status == http.StatusUnauthorized:
		return errAuth
	case status == http.StatusTooManyRequests || status >= 500:
		return errBackend
	case status >= 400:
		return errRequest
	}
	return errNone
}

// latencyBuckets are the histogram's upper bounds in seconds: fine below
// 10 ms, where a healthy gateway answers.
var latencyBuckets = [...]float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}

// routeCounters are one route's counters, updated with atomics only so that
// the hot path takes no lock.
type routeCounters struct {
	byStatus      [600]atomic.Uint64 // index: HTTP status
	errors        [numErrKinds]atomic.Uint64
	recordsOK     atomic.Uint64
	recordsFailed atomic.Uint64
	buckets       [len(latencyBuckets)]atomic.Uint64 // not cumulative; summed when written
	count         atomic.Uint64
	sumNanos      atomic.Uint64
}

type metrics struct {
	routes   [numRoutes]routeCounters
	inFlight atomic.Int64
	started  time.Time
}

func newMetrics() *metrics { return &metrics{started: time.Now()} }

func (m *metrics) observe(rt route, status int, kind errKind, ok, failed int, d time.Duration) {
	r := &m.routes[rt]
	if status >= 100 && status < len(r.byStatus) {
		r.byStatus[status].Add(1)
	}
	if kind != errNone {
		r.errors[kind].Add(1)
	}
	if ok > 0 {
		r.recordsOK.Add(uint64(ok))
	}
	if failed > 0 {
		r.recordsFailed.Add(uint64(failed))
	}
	sec := d.Seconds()
	for i, ub := range latencyBuckets {
		if sec <= ub {
			r.buckets[i].Add(1)
			break
		}
	}
	r.count.Add(1)
	r.sumNanos.Add(uint64(d.Nanoseconds()))
}

// write renders the metrics in the Prometheus text exposition format
// (version 0.0.4), by hand: a few counters do not need a client library.
func (m *metrics) write(out io.Writer) {
	w := bufio.NewWriter(out)
	defer w.Flush()
	header := func(name, typ, help string) {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
	}

	header("pinpipe_gateway_requests_total", "counter", "HTTP requests answered, by route and status code.")
	for rt := range m.routes {
		r := &m.routes[rt]
		for code := range r.byStatus {
			if v := r.byStatus[code].Load(); v > 0 {
				fmt.Fprintf(w, "pinpipe_gateway_requests_total{route=%q,code=\"%d\"} %d\n", routeNames[rt], code, v)
			}
		}
	}

	header("pinpipe_gateway_errors_total", "counter", "Failed requests, by route and kind (request, auth, not_found, backend, panic, throttled).")
	for rt := range m.routes {
		r := &m.routes[rt]
		for k := errRequest; k < numErrKinds; k++ {
			if v := r.errors[k].Load(); v > 0 {
				fmt.Fprintf(w, "pinpipe_gateway_errors_total{route=%q,kind=%q} %d\n", routeNames[rt], errKindNames[k], v)
			}
		}
	}

	header("pinpipe_gateway_records_total", "counter", "Records sent to Kafka or Kinesis, by route and result (ok: acknowledged).")
	for rt := range m.routes {
		r := &m.routes[rt]
		if rt != int(routeProduce) && rt != int(routePutRecord) && rt != int(routePutRecords) {
			continue
		}
		fmt.Fprintf(w, "pinpipe_gateway_records_total{route=%q,result=\"ok\"} %d\n", routeNames[rt], r.recordsOK.Load())
		fmt.Fprintf(w, "pinpipe_gateway_records_total{route=%q,result=\"failed\"} %d\n", routeNames[rt], r.recordsFailed.Load())
	}

	header("pinpipe_gateway_request_duration_seconds", "histogram", "Time to answer a request, by route.")
	for rt := range m.routes {
		r := &m.routes[rt]
		count := r.count.Load()
		if count == 0 {
			continue
		}
		name := routeNames[rt]
		var cum uint64
		for i, ub := range latencyBuckets {
			cum += r.buckets[i].Load()
			fmt.Fprintf(w, "pinpipe_gateway_request_duration_seconds_bucket{route=%q,le=%q} %d\n", name, formatFloat(ub), cum)
		}
		// Read apart from the buckets, count can be ahead of them by the
		// requests finishing meanwhile; +Inf must not be below any bucket.
		if count < cum {
			count = cum
		}
		fmt.Fprintf(w, "pinpipe_gateway_request_duration_seconds_bucket{route=%q,le=\"+Inf\"} %d\n", name, count)
		fmt.Fprintf(w, "pinpipe_gateway_request_duration_seconds_sum{route=%q} %s\n", name, formatFloat(float64(r.sumNanos.Load())/1e9))
		fmt.Fprintf(w, "pinpipe_gateway_request_duration_seconds_count{route=%q} %d\n", name, count)
	}

	header("pinpipe_gateway_in_flight_requests", "gauge", "Requests being served now.")
	fmt.Fprintf(w, "pinpipe_gateway_in_flight_requests %d\n", m.inFlight.Load())
	header("pinpipe_gateway_uptime_seconds", "gauge", "Seconds since the gateway started.")
	fmt.Fprintf(w, "pinpipe_gateway_uptime_seconds %s\n", formatFloat(time.Since(m.started).Seconds()))
}

func formatFloat(f float64) string {
	if math.IsInf(f, 1) {
		return "+Inf"
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// serveMetrics handles GET /metrics.
func (s *Server) serveMetrics(w *respWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	s.metrics.write(w)
	s.writeGuardMetrics(w)
}
