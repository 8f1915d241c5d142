package gateway

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// This file writes answers: the response writer that remembers what was
// answered, the two APIs' error envelopes, and JSON bodies.

// respWriter remembers what was answered, for the metrics and the log.
type respWriter struct {
	http.ResponseWriter
	route                    route // routeOther until an endpoint's handler runs
	api                      api
	admitted                 bool  // counted in Server.serving
	sampled                  bool  // logged one a second (429s, 503s while Kafka is down)
	bodyBytes                int64 // counted in Server.bodyBytes
	code                     int
	wroteHeader              bool
	written                  int64
	recordsOK, recordsFailed int
	errKind                  errKind
	errMsg                   string
}

func (w *respWriter) WriteHeader(code int) {
	if !w.wroteHeader {
		w.code, w.wroteHeader = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *respWriter) Write(b []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	n, err := w.ResponseWriter.Write(b)
	w.written += int64(n)
	return n, err
}

func (w *respWriter) status() int {
	if !w.wroteHeader {
		return http.StatusOK
	}
	return w.code
}

// Unwrap lets http.ResponseController reach the connection.
func (w *respWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// api tells which error style a path answers in: the REST Proxy's envelope
// or API Gateway's / Kinesis's.
type api int

const (
	apiKafka api = iota
	apiKinesis
)

// fail answers an error in the style of the path's API: the REST Proxy's
// {"error_code","message"} (code 0 means the HTTP status), or Kinesis's
// {"__type","message"} (no __type: API Gateway's {"message"}).
func (s *Server) fail(w *respWriter, status, code int, msg, kinesisType string) {
	if w.errKind == errNone {
		w.errKind = kindFor(status)
	}
	w.errMsg = msg
	if w.api == apiKinesis {
		body := map[string]string{"message": msg}
		if kinesisType != "" {
			body["__type"] = kinesisType
		}
		writeJSON(w, status, body)
		return
	}
	if code == 0 {
		code = status
	}
	w.Header().Set("Content-Type", kafkaV2JSON)
	writeJSONRaw(w, status, errorEnvelope{ErrorCode: code, Message: msg})
}

type errorEnvelope struct {
	ErrorCode int    `json:"error_code"`
	Message   string `json:"message"`
}

// writeKafkaJSON answers in the REST Proxy's media type.
func writeKafkaJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", kafkaV2JSON)
	writeJSONRaw(w, status, v)
}

// writeJSON answers application/json.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	writeJSONRaw(w, status, v)
}

func writeJSONRaw(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil { // our own types: cannot happen
		b = []byte(`{"message":"internal error encoding the response"}`)
		status = http.StatusInternalServerError
	}
	b = append(b, '\n')
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// kafkaV2JSON is the REST Proxy v2's media type, its answers' Content-Type.
const kafkaV2JSON = "application/vnd.kafka.v2+json"

// hdrKafkaV2JSON is the REST Proxy's Content-Type as a header value. Header
// values are only ever replaced or appended to, never written in place, so
// every answer can share it.
var hdrKafkaV2JSON = []string{kafkaV2JSON}

// contentLengths are the Content-Length header values of short answers,
// shared like hdrKafkaV2JSON.
var contentLengths = func() (v [1024][]string) {
	for i := range v {
		v[i] = []string{strconv.Itoa(i)}
	}
	return v
}()

// writeRaw answers b, a whole JSON answer, with its length, so that
// net/http neither chunks it nor allocates for the headers.
func writeRaw(w http.ResponseWriter, status int, contentType []string, b []byte) {
	h := w.Header()
	h["Content-Type"] = contentType
	if len(b) < len(contentLengths) {
		h["Content-Length"] = contentLengths[len(b)]
	} else {
		h["Content-Length"] = []string{strconv.Itoa(len(b))}
	}
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
