package gateway

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kgo"
)

// This file reads REST Proxy v2 produce requests: the embedded formats a
// Content-Type names, and the reference decoding of a body on encoding/json
// (produce_scan.go holds the fast path that gives way to it).

// embedded is the REST Proxy's "embedded format": how record keys and values
// sit in the JSON request.
type embedded int

const (
	embeddedBinary embedded = iota // base64 strings
	embeddedJSON                   // any JSON value, stored as its JSON text
)

// kafkaFormat reads the embedded format from a Content-Type. The REST Proxy
// assumes binary when the type names none (application/json,
// application/vnd.kafka.v2+json, application/octet-stream); the Avro,
// Protobuf and JSON Schema formats need a Schema Registry, which this
// gateway does not have.
func kafkaFormat(contentType string) (embedded, string, bool) {
	switch contentType { // the usual ones, as ParseMediaType would find them
	case "application/vnd.kafka.json.v2+json":
		return embeddedJSON, contentType, true
	case "application/vnd.kafka.binary.v2+json":
		return embeddedBinary, contentType, true
	}
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return 0, "", false
	}
	switch mt {
	case "application/vnd.kafka.json.v2+json":
		return embeddedJSON, mt, true
	case "application/vnd.kafka.binary.v2+json", "application/vnd.kafka.v2+json", "application/vnd.kafka+json",
		"application/json", "application/octet-stream":
		return embeddedBinary, mt, true
	}
	return 0, mt, false
}

// produceRequest is the REST Proxy v2 produce body. Keys and values stay raw
// so that JSON values reach Kafka as sent (compacted), numbers and all.
type produceRequest struct {
	Records []struct {
		Key       json.RawMessage `json:"key"`
		Value     json.RawMessage `json:"value"`
		Partition json.RawMessage `json:"partition"`
	} `json:"records"`
}

// requestError is a 4xx answer found while reading a request.
type requestError struct {
	status, code int
	msg          string
}

func (e *requestError) Error() string { return e.msg }

func badRequest(format string, args ...any) *requestError {
	return &requestError{http.StatusBadRequest, 400, fmt.Sprintf(format, args...)}
}

func unprocessable(format string, args ...any) *requestError {
	return &requestError{http.StatusUnprocessableEntity, 422, fmt.Sprintf(format, args...)}
}

// jsonError turns a decoding error into a message that says where the body
// is wrong.
func jsonError(err error, what string) *requestError {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return badRequest("malformed JSON in the request body at byte %d: %s", se.Offset, se.Error())
	case errors.Is(err, errEmptyBody):
		return badRequest("the request body is empty; expected %s", what)
	case errors.As(err, &te):
		if te.Field == "" {
			return badRequest("the request body must be %s, not a JSON %s", what, te.Value)
		}
		return badRequest("field %q has the wrong type: got a JSON %s, expected %s", te.Field, te.Value, jsonKind(te.Type.Kind().String()))
	}
	return badRequest("malformed JSON in the request body: %s", err.Error())
}

func jsonKind(goKind string) string {
	switch goKind {
	case "slice":
		return "an array"
	case "struct", "map":
		return "an object"
	case "string":
		return "a string"
	}
	return "a " + goKind
}

var errEmptyBody = errors.New("empty body")

// decodeJSON unmarshals a whole body, refusing trailing data.
func decodeJSON(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return errEmptyBody
	}
	return json.Unmarshal(body, v)
}

func isNull(raw json.RawMessage) bool {
	return len(raw) == 0 || string(raw) == "null"
}

// parseProduceStd is the reference reading of a produce body, on
// encoding/json: parseProduce's fast path gives way to it for every body it
// does not fully understand (all the invalid ones among them), so that
// errors are answered as this function answers them, and
// FuzzParseProduce checks that the two agree.
func (s *Server) parseProduceStd(body []byte, format embedded, mt string) (recs []*kgo.Record, manual []bool, rerr *requestError) {
	var req produceRequest
	if err := decodeJSON(body, &req); err != nil {
		return nil, nil, jsonError(err, `an object like {"records":[{"value":...}]}`)
	}
	if len(req.Records) == 0 {
		return nil, nil, unprocessable(`records may not be empty: send {"records":[{"value":...}, ...]}`)
	}
	if n := len(req.Records); n > s.cfg.MaxRecordsPerRequest {
		return nil, nil, tooManyRecords(n, s.cfg.MaxRecordsPerRequest)
	}
	lim := s.jsonLimits()
	recs = make([]*kgo.Record, len(req.Records))
	for i, in := range req.Records {
		rec := &kgo.Record{}
		var err *requestError
		if rec.Key, err = embeddedBytes(in.Key, format, mt, lim, i, "key"); err != nil {
			return nil, nil, err
		}
		if rec.Value, err = embeddedBytes(in.Value, format, mt, lim, i, "value"); err != nil {
			return nil, nil, err
		}
		if n := len(rec.Key) + len(rec.Value); n > s.cfg.MaxKafkaRecordBytes {
			return nil, nil, unprocessable("records[%d] is %d bytes (key plus value), over the limit of %d bytes a record", i, n, s.cfg.MaxKafkaRecordBytes)
		}
		if !isNull(in.Partition) {
			p, perr := strconv.ParseInt(string(in.Partition), 10, 32)
			if perr != nil {
				return nil, nil, badRequest("records[%d].partition must be an integer, got %s", i, truncate(in.Partition))
			}
			if p < 0 {
				return nil, nil, unprocessable("records[%d].partition must be zero or more, got %d", i, p)
			}
			rec.Partition = int32(p)
			if manual == nil {
				manual = make([]bool, len(req.Records))
			}
			manual[i] = true
		}
		recs[i] = rec
	}
	if !utf8.Valid(body) {
		return nil, nil, unprocessable("the request body is not valid UTF-8 (outside the records' keys and values)")
	}
	return recs, manual, nil
}

// tooManyRecords is the answer to a request with more than max records.
func tooManyRecords(n, max int) *requestError {
	return unprocessable("the request has %d records, over the gateway's limit of %d a request: split it", n, max)
}

// jsonLimits are the limits on a record's JSON text.
func (s *Server) jsonLimits() jsonLimits {
	return jsonLimits{depth: s.cfg.MaxJSONDepth, number: s.cfg.MaxNumberChars}
}

// embeddedBytes decodes one key or value: base64 for the binary format, the
// compacted JSON text for the json format (which must be UTF-8 and within
// lim); null or absent is no bytes.
func embeddedBytes(raw json.RawMessage, format embedded, mt string, lim jsonLimits, i int, field string) ([]byte, *requestError) {
	if isNull(raw) {
		return nil, nil
	}
	if format == embeddedJSON {
		if p := checkJSON(raw, lim); p != "" {
			return nil, unprocessable("records[%d].%s %s", i, field, p)
		}
		var b bytes.Buffer
		b.Grow(len(raw))
		if err := json.Compact(&b, raw); err != nil { // cannot happen: raw was validated
			return nil, badRequest("records[%d].%s: %v", i, field, err)
		}
		return b.Bytes(), nil
	}
	if raw[0] != '"' {
		return nil, badRequest("records[%d].%s must be a base64 string with Content-Type %s (the binary embedded format); "+
			"to send JSON as it is, use Content-Type application/vnd.kafka.json.v2+json", i, field, mt)
	}
	var str string
	if err := json.Unmarshal(raw, &str); err != nil {
		return nil, badRequest("records[%d].%s: %v", i, field, err)
	}
	b, err := base64.StdEncoding.DecodeString(str)
	if err != nil {
		if b, err = base64.RawStdEncoding.DecodeString(str); err != nil {
			return nil, unprocessable("records[%d].%s contains invalid base64 encoding", i, field)
		}
	}
	return b, nil
}

func truncate(raw []byte) string {
	if len(raw) > 40 {
		return string(raw[:40]) + "..."
	}
	return string(raw)
}
