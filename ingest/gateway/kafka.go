package gateway

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The REST Proxy's error codes (kafka-rest's Errors and rest-utils'
// KafkaExceptionMapper): the HTTP status times 100 plus a detail.
const (
	codeTopicNotFound      = 40401
	codePartitionNotFound  = 40402
	codeKafkaAuthn         = 40101
	codeKafkaAuthz         = 40301
	codeKafkaError         = 50002
	codeKafkaRetriable     = 50003
	kafkaV2JSON            = "application/vnd.kafka.v2+json"
	msgTopicNotFound       = "Topic not found."
	msgPartitionNotFound   = "Partition not found."
	msgUnsupportedMedia    = "HTTP 415 Unsupported Media Type"
	kafkaMaxTopicNameBytes = 249
)

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

// newKafkaClient makes the producer: acks from all in-sync replicas
// (idempotent, so its own retries do not duplicate), a short linger
// (Config.KafkaLinger, 0.5 ms by default: without one, a busy gateway sends
// a produce request for nearly every record, which costs it and the
// brokers more CPU than the records do; a request alone in the gateway does
// not wait for it, see produceAll; the Java producer's default linger is
// 5 ms since Kafka 4.0), and, with Config.AutoCreateTopics only, topics
// created on first use if the brokers allow it, as the Java producer behind
// a stock REST Proxy does.
func newKafkaClient(cfg Config, health *kafkaHealth) (*kgo.Client, error) {
	opts := []kgo.Opt{
		kgo.WithHooks(health),
		kgo.SeedBrokers(cfg.KafkaBrokers...),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(max(cfg.KafkaLinger, 0)),
		kgo.RecordPartitioner(restPartitioner{kgo.StickyKeyPartitioner(nil)}),
		kgo.RecordDeliveryTimeout(cfg.BackendTimeout),
		kgo.ProducerBatchMaxBytes(int32(cfg.MaxKafkaRecordBytes) + 4096),
		kgo.ClientID("pinpipe-gateway"),
	}
	if cfg.AutoCreateTopics {
		opts = append(opts, kgo.AllowAutoTopicCreation())
	}
	return kgo.NewClient(append(opts, cfg.KafkaOptions...)...)
}

// manualPartition marks, in a record's context, a record whose partition the
// request chose.
type manualPartition struct{}

// restPartitioner sends a record to the partition its request named, and
// the others as the Java producer does (murmur2 of the key, sticky without
// one), so keyed records land where other Kafka clients put them.
type restPartitioner struct{ base kgo.Partitioner }

func (p restPartitioner) ForTopic(t string) kgo.TopicPartitioner {
	return &restTopicPartitioner{base: p.base.ForTopic(t)}
}

type restTopicPartitioner struct{ base kgo.TopicPartitioner }

func isManual(r *kgo.Record) bool {
	return r.Context != nil && r.Context.Value(manualPartition{}) != nil
}

func (p *restTopicPartitioner) RequiresConsistency(r *kgo.Record) bool {
	return isManual(r) || p.base.RequiresConsistency(r)
}

func (p *restTopicPartitioner) Partition(r *kgo.Record, n int) int {
	if isManual(r) {
		return int(r.Partition) // out of range: kgo fails the record
	}
	return p.base.Partition(r, n)
}

func (p *restTopicPartitioner) OnNewBatch() {
	if o, ok := p.base.(kgo.TopicPartitionerOnNewBatch); ok {
		o.OnNewBatch()
	}
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

type partitionOffset struct {
	Partition *int32  `json:"partition"`
	Offset    *int64  `json:"offset"`
	ErrorCode *int    `json:"error_code"`
	Error     *string `json:"error"`
}

type produceResponse struct {
	// Set only when a record failed: the REST Proxy's error envelope beside
	// the per-record results, so clients of either shape see the failure.
	ErrorCode     *int              `json:"error_code,omitempty"`
	Message       *string           `json:"message,omitempty"`
	KeySchemaID   *int              `json:"key_schema_id"`
	ValueSchemaID *int              `json:"value_schema_id"`
	Offsets       []partitionOffset `json:"offsets"`
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

// validTopic reports whether name is a legal Kafka topic name.
func validTopic(name string) bool {
	if name == "" || len(name) > kafkaMaxTopicNameBytes || name == "." || name == ".." {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// topicAllowed reports whether the gateway serves this topic: a legal name
// and, with a prefix, one of the prefix's topics.
func (s *Server) topicAllowed(name string) bool {
	if !validTopic(name) {
		return false
	}
	return s.cfg.TopicPrefix == "" || strings.HasPrefix(name, s.cfg.TopicPrefix+".")
}

// produce handles POST /topics/{topic}.
func (s *Server) produce(w *respWriter, r *http.Request, topic string) {
	format, mt, ok := kafkaFormat(r.Header.Get("Content-Type"))
	if !ok {
		msg := msgUnsupportedMedia + ": use Content-Type application/vnd.kafka.json.v2+json (JSON values) or application/vnd.kafka.binary.v2+json (base64 values)"
		if strings.HasPrefix(mt, "application/vnd.kafka.") {
			msg += "; the avro, protobuf and jsonschema formats need a Schema Registry, which this gateway does not have"
		}
		s.fail(w, http.StatusUnsupportedMediaType, 415, msg, "")
		return
	}
	if !s.topicAllowed(topic) {
		s.fail(w, http.StatusNotFound, codeTopicNotFound, msgTopicNotFound, "")
		return
	}
	body, buf, ok := s.readBody(w, r)
	if !ok {
		return
	}
	recs, manual, rerr := s.parseProduce(body, format, mt)
	s.releaseBody(buf)
	if rerr != nil {
		s.fail(w, rerr.status, rerr.code, rerr.msg, "")
		return
	}
	down, downCh := s.health.unavailable()
	if down {
		s.kafkaUnavailable(w)
		return
	}
	// The request's deadline, BackendTimeout from now: for the records in
	// kgo (those not yet sent by then fail) and for the wait below.
	ctx := s.deadlines.get()
	if manual != nil {
		// Check the partitions first, so that a bad one fails the request
		// before any of its records is written.
		pctx, cancel := s.kafkaCtx(ctx)
		n, status, code, msg := s.partitionCount(pctx, topic)
		cancel()
		if status != 0 && s.health.isDown() {
			s.kafkaUnavailable(w)
			return
		}
		if status != 0 {
			s.fail(w, status, code, msg, "")
			return
		}
		for i, rec := range recs {
			if manual[i] && rec.Partition >= n {
				s.fail(w, http.StatusNotFound, codePartitionNotFound, msgPartitionNotFound, "")
				return
			}
		}
	}
	c, all := s.produceAll(ctx, r.Context(), downCh, topic, recs, manual)
	if all && len(recs) <= 1024 {
		// Every promise has run: kgo is done with the records and their
		// contexts, so the call can serve another request (unless it grew
		// large for this one).
		defer s.calls.Put(c)
	}

	errs := c.errs
	var firstErr error
	failed, notFound, retriable, unavailable := 0, 0, 0, 0
	for _, err := range errs {
		if err == nil {
			continue
		}
		failed++
		if _, ok := err.(errUnavailable); ok {
			unavailable++
		}
		switch kafkaErrorCode(err) {
		case codeTopicNotFound:
			notFound++
		case codeKafkaRetriable:
			retriable++
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	w.recordsOK, w.recordsFailed = len(recs)-failed, failed
	if failed == 0 {
		c.out = appendProduceOK(c.out[:0], recs)
		writeRaw(w, http.StatusOK, hdrKafkaV2JSON, c.out)
		return
	}
	if unavailable == failed && failed == len(recs) {
		// No broker answers: nothing was acknowledged.
		s.kafkaUnavailable(w)
		return
	}
	if notFound == failed && failed == len(recs) {
		// The topic does not exist and the brokers do not create topics.
		s.fail(w, http.StatusNotFound, codeTopicNotFound, msgTopicNotFound, "")
		return
	}
	resp := produceResponse{Offsets: make([]partitionOffset, len(recs))}
	for i, err := range errs {
		if err == nil {
			p, o := recs[i].Partition, recs[i].Offset
			resp.Offsets[i] = partitionOffset{Partition: &p, Offset: &o}
			continue
		}
		code := kafkaErrorCode(err)
		msg := err.Error()
		resp.Offsets[i] = partitionOffset{ErrorCode: &code, Error: &msg}
	}
	code := codeKafkaError
	if retriable == failed {
		code = codeKafkaRetriable
	}
	msg := fmt.Sprintf("Kafka error: %d of %d records were not written: %v", failed, len(recs), firstErr)
	resp.ErrorCode, resp.Message = &code, &msg
	w.errKind, w.errMsg = errBackend, msg
	writeKafkaJSON(w, http.StatusInternalServerError, resp)
}

// appendProduceOK appends the answer to a produce request whose records
// were all written, byte for byte what encoding/json makes of a
// produceResponse, without its reflection.
func appendProduceOK(b []byte, recs []*kgo.Record) []byte {
	b = append(b, `{"key_schema_id":null,"value_schema_id":null,"offsets":[`...)
	for i, rec := range recs {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"partition":`...)
		b = strconv.AppendInt(b, int64(rec.Partition), 10)
		b = append(b, `,"offset":`...)
		b = strconv.AppendInt(b, rec.Offset, 10)
		b = append(b, `,"error_code":null,"error":null}`...)
	}
	return append(b, "]}\n"...)
}

// errNoAck stands for a record Kafka had not acknowledged when the request's
// time was up. The producer keeps it, so it may still be written: the
// client's retry may then duplicate it, as at-least-once delivery allows.
type errNoAck struct{ after time.Duration }

func (e errNoAck) Error() string {
	return fmt.Sprintf("Kafka did not acknowledge the record within %v (it may still be written)", e.after)
}

func (errNoAck) Timeout() bool   { return true }
func (errNoAck) Temporary() bool { return true }

// produceCall is one produce request's records on their way to Kafka: the
// results as their promises come. A call whose promises have all run goes
// back to Server.calls for another request.
type produceCall struct {
	mu     sync.Mutex
	errs   []error
	done   []bool
	left   int
	closed bool          // the request stopped waiting: late results are dropped
	fin    chan struct{} // gets a value when the last result is in
	out    []byte        // the answer
	// progress is the server's kafkaProgress, which every result moves.
	progress *atomic.Int64
}

// recordCtx is a record's context: the request's deadline, and what the
// promise and the partitioner need to know about the record.
type recordCtx struct {
	context.Context
	call   *produceCall
	i      int
	manual bool // the request chose the record's partition
}

func (c *recordCtx) Value(key any) any {
	if _, ok := key.(manualPartition); ok && c.manual {
		return true
	}
	return c.Context.Value(key)
}

// producePromise is every record's promise: it files the record's result
// with its call.
func producePromise(r *kgo.Record, err error) {
	rc := r.Context.(*recordCtx)
	c := rc.call
	c.progress.Store(time.Now().UnixNano())
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.done[rc.i] {
		return
	}
	c.errs[rc.i], c.done[rc.i] = err, true
	if c.left--; c.left == 0 {
		c.fin <- struct{}{}
	}
}

// produceAll produces recs and waits for each record's acknowledgement, or
// its failure, until ctx is done (the request's deadline) or reqCtx is (the
// client went away): the idempotent producer does not give up on a batch
// whose fate it does not know (a broker that died mid-request), and the
// request must not wait for it forever. all reports that every record's
// promise has run; if not, the call's records may still be written, and
// the call must not be reused.
func (s *Server) produceAll(ctx, reqCtx context.Context, downCh <-chan struct{}, topic string, recs []*kgo.Record, manual []bool) (c *produceCall, all bool) {
	n := len(recs)
	c, _ = s.calls.Get().(*produceCall)
	if c == nil {
		c = &produceCall{fin: make(chan struct{}, 1)}
	}
	c.errs, c.done = resize(c.errs, n), resize(c.done, n)
	c.left, c.closed, c.progress = n, false, &s.kafkaProgress
	// The records' contexts are the request's own, never reused: kgo may
	// look at a record's context after its promise ran (a goroutine waiting
	// for a new topic's metadata holds the first record's).
	ctxs := make([]recordCtx, n)
	for i, rec := range recs {
		ctxs[i] = recordCtx{Context: ctx, call: c, i: i, manual: manual != nil && manual[i]}
		rec.Topic, rec.Context = topic, &ctxs[i]
	}
	alone := s.producing.Add(1) == 1
	defer s.producing.Add(-1)
	if alone {
		// The watchdog measures from here while nothing else produces.
		s.kafkaProgress.Store(time.Now().UnixNano())
	}
	for _, rec := range recs {
		s.kafka.Produce(ctx, rec, producePromise)
	}
	if alone && s.cfg.KafkaLinger > 0 {
		// No other request is producing, so no other record is likely to
		// join this one's batch within the linger: send it now. (Flush
		// ends the partitions' lingers and starts sending before it waits,
		// and with a done context it does not wait.)
		_ = s.kafka.Flush(doneCtx)
	}
	var noAck error = errNoAck{s.cfg.BackendTimeout}
	select {
	case <-c.fin:
		return c, true
	case <-ctx.Done():
	case <-reqCtx.Done():
	case <-downCh:
		noAck = errUnavailable{s.cfg.KafkaUnavailableAfter}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.left == 0 { // the last result came meanwhile
		<-c.fin
		return c, true
	}
	c.closed = true
	for i := range c.errs {
		if !c.done[i] {
			c.errs[i] = noAck
		}
	}
	return c, false
}

// doneCtx is a context that is already done.
var doneCtx = func() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}()

// resize returns s with length n, zeroed, reusing its array when it can.
func resize[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	s = s[:n]
	clear(s)
	return s
}

// deadlines hands out the requests' deadline contexts: each ends
// BackendTimeout after its request started, or up to deadlineSlack later,
// because the requests that start within deadlineSlack of each other share
// one, so that a request needs no timer of its own.
type deadlines struct {
	timeout time.Duration
	cur     atomic.Pointer[deadline]
	mu      sync.Mutex
}

// deadlineSlack is how much longer than BackendTimeout a request may wait.
const deadlineSlack = 10 * time.Millisecond

type deadline struct {
	ctx    context.Context
	cancel context.CancelFunc // never needed: the deadline passes
	until  time.Time          // the last start time the context serves
}

func (d *deadlines) get() context.Context {
	now := time.Now()
	if dl := d.cur.Load(); dl != nil && now.Before(dl.until) {
		return dl.ctx
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if dl := d.cur.Load(); dl != nil && now.Before(dl.until) {
		return dl.ctx
	}
	until := now.Add(deadlineSlack)
	dl := &deadline{until: until}
	dl.ctx, dl.cancel = context.WithDeadline(context.Background(), until.Add(d.timeout))
	d.cur.Store(dl)
	return dl.ctx
}

// kafkaErrorCode maps a producer error to the REST Proxy's per-record code.
func kafkaErrorCode(err error) int {
	switch {
	case errors.Is(err, kerr.UnknownTopicOrPartition), errors.Is(err, kerr.UnknownTopicID):
		return codeTopicNotFound
	case errors.Is(err, kerr.TopicAuthorizationFailed), errors.Is(err, kerr.ClusterAuthorizationFailed),
		errors.Is(err, kerr.TransactionalIDAuthorizationFailed):
		return codeKafkaAuthz
	case errors.Is(err, kerr.SaslAuthenticationFailed):
		return codeKafkaAuthn
	case kerr.IsRetriable(err), errors.Is(err, kgo.ErrRecordTimeout), errors.Is(err, kgo.ErrRecordRetries),
		errors.Is(err, kgo.ErrClientClosed), errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return codeKafkaRetriable
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return codeKafkaRetriable
	}
	return codeKafkaError
}

// kafkaUnavailable answers a request that needs Kafka while no broker
// answers: 503 with Retry-After, and the REST Proxy's code for a retriable
// Kafka error.
func (s *Server) kafkaUnavailable(w *respWriter) {
	w.errKind, w.sampled = errBackend, true
	w.Header().Set("Retry-After", "1")
	s.fail(w, http.StatusServiceUnavailable, codeKafkaRetriable,
		fmt.Sprintf("Kafka is unavailable: no broker has answered for %v; retry later", s.cfg.KafkaUnavailableAfter), "")
}

// kafkaFailure answers a failed metadata call.
func (s *Server) kafkaFailure(w *respWriter, err error) {
	if s.health.isDown() {
		s.kafkaUnavailable(w)
		return
	}
	code := kafkaErrorCode(err)
	status := code / 100
	if code == codeKafkaRetriable || code == codeKafkaError {
		status = http.StatusInternalServerError
	}
	w.errKind = errBackend
	s.fail(w, status, code, "Kafka error: "+err.Error(), "")
}

// topicMetadata asks the brokers about one topic, or about all of them when
// topic is "". It never creates topics.
func (s *Server) topicMetadata(ctx context.Context, topic string, autoCreate bool) (*kmsg.MetadataResponse, error) {
	req := kmsg.NewPtrMetadataRequest()
	if topic != "" {
		t := kmsg.NewMetadataRequestTopic()
		t.Topic = kmsg.StringPtr(topic)
		req.Topics = append(req.Topics, t)
	}
	req.AllowAutoTopicCreation = autoCreate
	return req.RequestWith(ctx, s.kafka)
}

// partitionCount returns a topic's partition count, or the error to answer.
// With Config.AutoCreateTopics, like the Java producer's metadata lookup, it
// lets brokers that create topics on first use create this one.
func (s *Server) partitionCount(ctx context.Context, topic string) (n int32, status, code int, msg string) {
	resp, err := s.topicMetadata(ctx, topic, s.cfg.AutoCreateTopics)
	if err != nil {
		c := kafkaErrorCode(err)
		return 0, http.StatusInternalServerError, c, "Kafka error: " + err.Error()
	}
	for _, t := range resp.Topics {
		if t.Topic == nil || *t.Topic != topic {
			continue
		}
		if len(t.Partitions) > 0 {
			return int32(len(t.Partitions)), 0, 0, ""
		}
		if err := kerr.ErrorForCode(t.ErrorCode); err != nil && !errors.Is(err, kerr.UnknownTopicOrPartition) {
			return 0, http.StatusInternalServerError, kafkaErrorCode(err), "Kafka error: " + err.Error()
		}
	}
	return 0, http.StatusNotFound, codeTopicNotFound, msgTopicNotFound
}

// listTopics handles GET /topics: the topic names, internal ones left out,
// as the REST Proxy lists them.
func (s *Server) listTopics(w *respWriter, r *http.Request) {
	if s.health.isDown() {
		s.kafkaUnavailable(w)
		return
	}
	ctx, cancel := s.kafkaCtx(r.Context())
	defer cancel()
	resp, err := s.topicMetadata(ctx, "", false)
	if err != nil {
		s.kafkaFailure(w, err)
		return
	}
	names := []string{}
	for _, t := range resp.Topics {
		if t.Topic == nil || t.IsInternal || t.ErrorCode != 0 || !s.topicAllowed(*t.Topic) {
			continue
		}
		names = append(names, *t.Topic)
	}
	slices.Sort(names)
	writeKafkaJSON(w, http.StatusOK, names)
}

type topicReplica struct {
	Broker int32 `json:"broker"`
	Leader bool  `json:"leader"`
	InSync bool  `json:"in_sync"`
}

type topicPartition struct {
	Partition int32          `json:"partition"`
	Leader    int32          `json:"leader"`
	Replicas  []topicReplica `json:"replicas"`
}

type topicResponse struct {
	Name       string             `json:"name"`
	Configs    map[string]*string `json:"configs"`
	Partitions []topicPartition   `json:"partitions"`
}

// getTopic handles GET /topics/{topic}: name, configs and partitions with
// their replicas, in the REST Proxy's shape.
func (s *Server) getTopic(w *respWriter, r *http.Request, topic string) {
	if !s.topicAllowed(topic) {
		s.fail(w, http.StatusNotFound, codeTopicNotFound, msgTopicNotFound, "")
		return
	}
	if s.health.isDown() {
		s.kafkaUnavailable(w)
		return
	}
	ctx, cancel := s.kafkaCtx(r.Context())
	defer cancel()
	resp, err := s.topicMetadata(ctx, topic, false)
	if err != nil {
		s.kafkaFailure(w, err)
		return
	}
	var md *kmsg.MetadataResponseTopic
	for i := range resp.Topics {
		if t := &resp.Topics[i]; t.Topic != nil && *t.Topic == topic {
			md = t
		}
	}
	if md == nil || errors.Is(kerr.ErrorForCode(md.ErrorCode), kerr.UnknownTopicOrPartition) {
		s.fail(w, http.StatusNotFound, codeTopicNotFound, msgTopicNotFound, "")
		return
	}
	if err := kerr.ErrorForCode(md.ErrorCode); err != nil && len(md.Partitions) == 0 {
		s.kafkaFailure(w, err)
		return
	}
	out := topicResponse{Name: topic, Configs: map[string]*string{}, Partitions: []topicPartition{}}
	for _, p := range md.Partitions {
		tp := topicPartition{Partition: p.Partition, Leader: p.Leader, Replicas: []topicReplica{}}
		for _, b := range p.Replicas {
			tp.Replicas = append(tp.Replicas, topicReplica{Broker: b, Leader: b == p.Leader, InSync: slices.Contains(p.ISR, b)})
		}
		out.Partitions = append(out.Partitions, tp)
	}
	slices.SortFunc(out.Partitions, func(a, b topicPartition) int { return int(a.Partition - b.Partition) })

	dreq := kmsg.NewPtrDescribeConfigsRequest()
	res := kmsg.NewDescribeConfigsRequestResource()
	res.ResourceType = kmsg.ConfigResourceTypeTopic
	res.ResourceName = topic
	dreq.Resources = append(dreq.Resources, res)
	dresp, err := dreq.RequestWith(ctx, s.kafka)
	if err != nil {
		s.kafkaFailure(w, err)
		return
	}
	for _, rr := range dresp.Resources {
		if err := kerr.ErrorForCode(rr.ErrorCode); err != nil {
			s.kafkaFailure(w, err)
			return
		}
		for _, c := range rr.Configs {
			out.Configs[c.Name] = c.Value
		}
	}
	writeKafkaJSON(w, http.StatusOK, out)
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
