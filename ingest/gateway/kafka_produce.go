package gateway

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"
)

// This file answers POST /topics/{topic}: it checks the request, hands its
// records to the producer and answers per record, in the REST Proxy's shape.

// produce handles POST /topics/{topic}.
func (s *Server) produce(w *respWriter, r *http.Request) {
	topic := r.PathValue("topic")
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
