package gateway

import (
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
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
var latencyBuckets = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}

// maxStatus bounds the HTTP status codes counted (all are below it).
const maxStatus = 600

// metrics are the gateway's Prometheus metrics (client_golang). A series
// appears once it has something to count, but the records counters of the
// routes that write records, which are there from the start.
type metrics struct {
	inFlight prometheus.Gauge
	requests lazy[prometheus.Counter]  // index: route*maxStatus + status
	errors   lazy[prometheus.Counter]  // index: route*numErrKinds + kind
	duration lazy[prometheus.Observer] // index: route
	// recordsOK and recordsFailed are nil for the routes that write no
	// records.
	recordsOK, recordsFailed [numRoutes]prometheus.Counter
}

// newMetrics registers the gateway's metrics on reg, those of its guards
// (read from s when scraped) among them.
func newMetrics(reg prometheus.Registerer, s *Server) (*metrics, error) {
	const ns, sub = "pinpipe", "gateway"
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "requests_total",
		Help: "HTTP requests answered, by route and status code."}, []string{"route", "code"})
	errors := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "errors_total",
		Help: "Failed requests, by route and kind (request, auth, not_found, backend, panic, throttled)."}, []string{"route", "kind"})
	records := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "records_total",
		Help: "Records sent to Kafka or Kinesis, by route and result (ok: acknowledged)."}, []string{"route", "result"})
	duration := prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "request_duration_seconds",
		Help: "Time to answer a request, by route.", Buckets: latencyBuckets}, []string{"route"})
	m := &metrics{
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "in_flight_requests",
			Help: "Requests being served now."}),
		requests: newLazy(int(numRoutes)*maxStatus, func(i int) prometheus.Counter {
			return requests.WithLabelValues(routeNames[i/maxStatus], strconv.Itoa(i%maxStatus))
		}),
		errors: newLazy(int(numRoutes)*int(numErrKinds), func(i int) prometheus.Counter {
			return errors.WithLabelValues(routeNames[i/int(numErrKinds)], errKindNames[i%int(numErrKinds)])
		}),
		duration: newLazy(int(numRoutes), func(i int) prometheus.Observer { return duration.WithLabelValues(routeNames[i]) }),
	}
	for _, rt := range []route{routeProduce, routePutRecord, routePutRecords} {
		m.recordsOK[rt] = records.WithLabelValues(routeNames[rt], "ok")
		m.recordsFailed[rt] = records.WithLabelValues(routeNames[rt], "failed")
	}
	gauge := func(name, help string, v func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: name, Help: help}, v)
	}
	cs := []prometheus.Collector{requests, errors, records, duration, m.inFlight,
		gauge("start_time_seconds", "When the gateway started (Unix time).",
			func(t time.Time) func() float64 { return func() float64 { return float64(t.UnixNano()) / 1e9 } }(time.Now())),
		gauge("admitted_requests", "Requests counted against --max-in-flight now.",
			func() float64 { return float64(s.serving.Load()) }),
		gauge("body_bytes_in_flight", "Bytes of request bodies being read or served now.",
			func() float64 { return float64(s.bodyBytes.Load()) }),
		gauge("connections_open", "Client connections open now.", func() float64 {
			if ll := s.conns.Load(); ll != nil {
				return float64(ll.open.Load())
			}
			return 0
		}),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "connections_refused_total",
			Help: "Connections refused past --max-conns (none idle to close)."}, func() float64 {
			if ll := s.conns.Load(); ll != nil {
				return float64(ll.refused.Load())
			}
			return 0
		}),
	}
	if len(s.cfg.KafkaBrokers) > 0 {
		cs = append(cs, gauge("kafka_available", "1 while a Kafka broker answers, 0 when none has for --kafka-unavailable-after.",
			func() float64 {
				if s.health.isDown() {
					return 0
				}
				return 1
			}))
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *metrics) observe(rt route, status int, kind errKind, ok, failed int, d time.Duration) {
	if status >= 100 && status < maxStatus {
		m.requests.get(int(rt)*maxStatus + status).Inc()
	}
	if kind != errNone {
		m.errors.get(int(rt)*int(numErrKinds) + int(kind)).Inc()
	}
	if ok > 0 && m.recordsOK[rt] != nil {
		m.recordsOK[rt].Add(float64(ok))
	}
	if failed > 0 && m.recordsFailed[rt] != nil {
		m.recordsFailed[rt].Add(float64(failed))
	}
	m.duration.get(int(rt)).Observe(d.Seconds())
}

// lazy holds a metric vector's children by index, made on first use, so
// that a request finds its series without hashing label values.
type lazy[T any] struct {
	newChild func(i int) T
	children []atomic.Pointer[T]
}

func newLazy[T any](n int, newChild func(i int) T) lazy[T] {
	return lazy[T]{newChild: newChild, children: make([]atomic.Pointer[T], n)}
}

func (l *lazy[T]) get(i int) T {
	if p := l.children[i].Load(); p != nil {
		return *p
	}
	// Two requests may make the child at once: the vector gives both the
	// same one.
	v := l.newChild(i)
	l.children[i].Store(&v)
	return v
}

// serveMetrics handles GET /metrics: the registry the gateway's metrics
// are on (Config.Registry), in the exposition format the scraper asks for.
func (s *Server) serveMetrics(w *respWriter, r *http.Request) {
	s.metricsHandler.ServeHTTP(w, r)
}
