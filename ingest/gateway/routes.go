package gateway

import (
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"
)

// This file routes requests: net/http's ServeMux with a method-and-path
// pattern for each endpoint, and around every handler the API key check,
// the admission, the metrics, a log line and a last-resort recover.

// route identifies an endpoint: it labels the metrics and the log.
type route int

const (
	routeOther route = iota // no endpoint: a 404 or a 405
	routeListTopics
	routeGetTopic
	routeProduce
	routeListStreams
	routeCreateStream
	routeDescribeStream
	routeDeleteStream
	routePutRecord
	routePutRecords
	routeHealthz
	routeMetrics
	numRoutes
)

// backend is what an endpoint needs configured.
type backend int

const (
	needsNothing backend = iota
	needsKafka
	needsKinesis
)

// endpoint is one route: its ServeMux pattern and its handler.
type endpoint struct {
	route   route // its pattern is its name, routeNames[route]
	backend backend
	// admitEarly counts the request in flight before the handler runs; the
	// routes with a body are admitted once it is read (readBody), so that
	// slow senders do not keep others out.
	admitEarly bool
	// streamAdmin routes are turned off by Config.NoStreamAdmin.
	streamAdmin bool
	handle      func(s *Server, w *respWriter, r *http.Request)
}

// endpoints are the gateway's routes: the REST Proxy v2's produce and
// topic metadata routes, the API Gateway Kinesis proxy's, and the
// operator's /healthz and /metrics.
var endpoints = []endpoint{
	{route: routeListTopics, backend: needsKafka, admitEarly: true, handle: (*Server).listTopics},
	{route: routeGetTopic, backend: needsKafka, admitEarly: true, handle: (*Server).getTopic},
	{route: routeProduce, backend: needsKafka, handle: (*Server).produce},
	{route: routeListStreams, backend: needsKinesis, admitEarly: true, handle: (*Server).listStreams},
	{route: routeCreateStream, backend: needsKinesis, streamAdmin: true, handle: (*Server).createStream},
	{route: routeDescribeStream, backend: needsKinesis, admitEarly: true, handle: (*Server).describeStream},
	{route: routeDeleteStream, backend: needsKinesis, admitEarly: true, streamAdmin: true, handle: (*Server).deleteStream},
	{route: routePutRecord, backend: needsKinesis, handle: (*Server).putRecord},
	{route: routePutRecords, backend: needsKinesis, handle: (*Server).putRecords},
	{route: routeHealthz, handle: (*Server).healthz},
	{route: routeMetrics, handle: (*Server).serveMetrics},
}

// routeNames are the routes' ServeMux patterns, and their names in the
// metrics and the log.
var routeNames = [numRoutes]string{
	routeOther:          "other",
	routeListTopics:     "GET /topics",
	routeGetTopic:       "GET /topics/{topic}",
	routeProduce:        "POST /topics/{topic}",
	routeListStreams:    "GET /streams",
	routeCreateStream:   "POST /streams/{name}",
	routeDescribeStream: "GET /streams/{name}",
	routeDeleteStream:   "DELETE /streams/{name}",
	routePutRecord:      "PUT /streams/{name}/record",
	routePutRecords:     "PUT /streams/{name}/records",
	routeHealthz:        "GET /healthz",
	routeMetrics:        "GET /metrics",
}

// newMux routes the endpoints, answers 405 with an Allow header on their
// paths for other methods, and 404 elsewhere, each in the style of the
// path's API.
func (s *Server) newMux() *http.ServeMux {
	mux := http.NewServeMux()
	methods := map[string][]string{} // path: its methods
	var paths []string
	for _, e := range endpoints {
		pattern := routeNames[e.route]
		mux.Handle(pattern, s.endpointHandler(e))
		method, path, _ := strings.Cut(pattern, " ")
		if methods[path] == nil {
			paths = append(paths, path)
		}
		methods[path] = append(methods[path], method)
		if method == http.MethodGet {
			methods[path] = append(methods[path], http.MethodHead)
		}
	}
	for _, path := range paths {
		// A pattern without a method matches what the ones with a method
		// do not: the other methods.
		slices.Sort(methods[path])
		allow := strings.Join(methods[path], ", ")
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			rw := w.(*respWriter)
			if !s.authorized(rw, r) {
				return
			}
			rw.Header().Set("Allow", allow)
			s.fail(rw, http.StatusMethodNotAllowed, 405, "HTTP 405 Method Not Allowed", "MethodNotAllowed")
		})
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { s.notFound(w.(*respWriter), r) })
	return mux
}

// endpointHandler wraps an endpoint's handler in the checks every request
// to it passes, in this order: API key and rate limit (not for /healthz
// and /metrics), admission, a configured backend, stream administration.
func (s *Server) endpointHandler(e endpoint) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rw := w.(*respWriter)
		rw.route = e.route
		if e.route != routeHealthz && e.route != routeMetrics && !s.authorized(rw, r) {
			return
		}
		if e.admitEarly && !s.admit(rw) {
			return
		}
		switch {
		case e.backend == needsKafka && s.kafka == nil:
			s.fail(rw, http.StatusNotFound, 404, "Kafka is not configured on this gateway (start it with --kafka-brokers)", "")
			return
		case e.backend == needsKinesis && s.kinesis == nil:
			s.fail(rw, http.StatusNotFound, 0, "Kinesis is not configured on this gateway (set AWS_REGION and start it with Kinesis on)", "ResourceNotFoundException")
			return
		case e.streamAdmin && s.cfg.NoStreamAdmin:
			s.fail(rw, http.StatusForbidden, 0, "creating and deleting streams is turned off on this gateway", "AccessDeniedException")
			return
		}
		e.handle(s, rw, r)
	})
}

// authorized checks the request's API key and its key's rate limit, and
// answers 401/403 or 429 when they fail.
func (s *Server) authorized(rw *respWriter, r *http.Request) bool {
	idx, deny := s.authorize(r)
	if deny != 0 {
		s.denyAuth(rw, deny)
		return false
	}
	if ok, wait := s.allowRate(idx); !ok {
		s.throttle(rw, wait, fmt.Sprintf("Request rate limit exceeded: %g requests a second (bursts of %d) for this API key", s.cfg.RateLimit, s.cfg.RateBurst))
		return false
	}
	return true
}

// notFound answers a path that is no endpoint's, once the request passed
// the API key check: no answer tells a client without a key which paths
// exist.
func (s *Server) notFound(rw *respWriter, r *http.Request) {
	if !s.authorized(rw, r) {
		return
	}
	s.fail(rw, http.StatusNotFound, 404, "HTTP 404 Not Found", "UnknownOperationException")
}

// healthz handles GET /healthz: the gateway serves.
func (s *Server) healthz(w *respWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// apiOf tells which API's error style a path answers in: Kinesis's under
// /streams, the REST Proxy's elsewhere.
func apiOf(escapedPath string) api {
	if rest, ok := strings.CutPrefix(escapedPath, "/streams"); ok && (rest == "" || rest[0] == '/') {
		return apiKinesis
	}
	return apiKafka
}

// literalPath returns r, or, when its path has "." or ".." segments, a
// copy whose path has them escaped. ServeMux would redirect such a path to
// its cleaned form; here a segment is a topic or stream name, so "/topics/.."
// names the (invalid) topic "..", answered as such, and a path through
// ".." matches no pattern. ok is false for a path with an empty segment,
// which ServeMux would redirect too: it is no endpoint's.
func literalPath(r *http.Request) (_ *http.Request, ok bool) {
	p := r.URL.EscapedPath()
	if strings.Contains(p, "//") {
		return r, false
	}
	if !strings.Contains(p, "/.") {
		return r, true
	}
	segs := strings.Split(p, "/")
	changed := false
	for i, seg := range segs {
		switch seg {
		case ".":
			segs[i], changed = "%2E", true
		case "..":
			segs[i], changed = "%2E%2E", true
		}
	}
	if !changed {
		return r, true
	}
	u := *r.URL
	u.RawPath = strings.Join(segs, "/")
	r2 := r.WithContext(r.Context())
	r2.URL = &u
	return r2, true
}

// ServeHTTP routes a request, with metrics, a log line and a last-resort
// recover around every handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rw := &respWriter{ResponseWriter: w, api: apiOf(r.URL.EscapedPath())}
	s.metrics.inFlight.Inc()
	defer func() {
		if rw.admitted {
			s.serving.Add(-1)
		}
		if rw.bodyBytes > 0 {
			s.bodyBytes.Add(-rw.bodyBytes)
		}
		p := recover()
		abort := false
		if p != nil && p != http.ErrAbortHandler {
			s.log.Error("gateway: panic serving request", "method", r.Method, "path", r.URL.Path, "panic", p)
			rw.errKind = errPanic
			if rw.wroteHeader {
				abort = true // a half-written answer must not pass for a whole one
			} else {
				rw.Header().Set("Connection", "close")
				s.fail(rw, http.StatusInternalServerError, 500, "internal error", "InternalFailure")
			}
		}
		s.metrics.inFlight.Dec()
		d := time.Since(start)
		s.metrics.observe(rw.route, rw.status(), rw.errKind, rw.recordsOK, rw.recordsFailed, d)
		s.logRequest(r, rw, d)
		if abort || p == http.ErrAbortHandler {
			panic(http.ErrAbortHandler)
		}
	}()
	lr, ok := literalPath(r)
	if !ok {
		s.notFound(rw, r)
		return
	}
	s.mux.ServeHTTP(rw, lr)
}

func (s *Server) logRequest(r *http.Request, rw *respWriter, d time.Duration) {
	var similar int64
	if rw.sampled {
		// A flood of 429s or of 503s while Kafka is down says one thing:
		// one line a second, with how many were like it.
		n := s.sampledLogs.Add(1)
		logged := false
		s.sampleLog.Do(func() { logged = true })
		if !logged {
			return
		}
		similar = n - 1
		s.sampledLogs.Add(-n)
	}
	level := slog.LevelDebug
	switch st := rw.status(); {
	case st >= 500:
		level = slog.LevelError
	case st >= 400:
		level = slog.LevelInfo
	}
	if !s.log.Enabled(r.Context(), level) {
		return
	}
	attrs := []slog.Attr{
		slog.String("method", r.Method),
		slog.String("path", r.URL.Path),
		slog.String("route", routeNames[rw.route]),
		slog.Int("status", rw.status()),
		slog.Duration("duration", d),
		slog.Int64("bytes_out", rw.written),
		slog.String("remote", r.RemoteAddr),
	}
	if rw.recordsOK+rw.recordsFailed > 0 {
		attrs = append(attrs, slog.Int("records_ok", rw.recordsOK), slog.Int("records_failed", rw.recordsFailed))
	}
	if rw.errMsg != "" {
		attrs = append(attrs, slog.String("error", rw.errMsg))
	}
	if similar > 0 {
		attrs = append(attrs, slog.Int64("similar_not_logged", similar))
	}
	s.log.LogAttrs(r.Context(), level, "gateway request", attrs...)
}
