package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strings"
	"unicode/utf8"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"
)

// Kinesis's limits: a record (data plus partition key) up to 1 MiB, a
// PutRecords call up to 500 records and 5 MiB.
const (
	kinesisMaxRecordBytes   = 1 << 20
	kinesisMaxBatchRecords  = 500
	kinesisMaxBatchBytes    = 5 << 20
	kinesisMaxPartitionKey  = 256 // characters
	kinesisMaxStreamNameLen = 128
)

// validStream reports whether name is a legal Kinesis stream name.
// (Kinesis's pattern allows "." and "..", but no one means them for a
// stream, and they are path tricks in a URL.)
func validStream(name string) bool { return validName(name, kinesisMaxStreamNameLen) }

// checkStream answers 400 or 404 and returns false for a stream the gateway
// does not serve.
func (s *Server) checkStream(w *respWriter, name string) bool {
	if !validStream(name) {
		s.fail(w, http.StatusBadRequest, 0, fmt.Sprintf("stream name %q is not valid: it must be 1 to %d characters of a-z, A-Z, 0-9, '_', '-' and '.' (not . or ..)",
			name, kinesisMaxStreamNameLen), "ValidationException")
		return false
	}
	if p := s.cfg.TopicPrefix; p != "" && !strings.HasPrefix(name, "streaming-"+p+"-") {
		s.fail(w, http.StatusNotFound, 0, fmt.Sprintf("stream %s is not served by this gateway: it serves the streams streaming-%s-*", name, p),
			"ResourceNotFoundException")
		return false
	}
	return true
}

// kinesisFailure passes a Kinesis error on: its type and message as Kinesis
// gave them, with an HTTP status that says who should act (404 unknown
// stream, 409 stream busy, 429 slow down and retry, 400 bad request (a
// LimitExceededException too: mostly a quota, which retrying does not
// lift), 502/504 the gateway's side).
func (s *Server) kinesisFailure(w *respWriter, err error) {
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		status, typ, msg := http.StatusBadGateway, "ServiceUnavailable", "Kinesis could not be reached: "+err.Error()
		if errors.Is(err, context.DeadlineExceeded) {
			// The SDK may have sent the put before the time was up, as
			// the Kafka routes' timeout says too.
			status, typ = http.StatusGatewayTimeout, "RequestTimeout"
			msg = "Kinesis could not be reached in time (the record may still be written): " + err.Error()
		}
		w.errKind = errBackend
		s.fail(w, status, 0, msg, typ)
		return
	}
	upstream := 0
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		upstream = re.HTTPStatusCode()
	}
	code, msg := ae.ErrorCode(), ae.ErrorMessage()
	status := http.StatusBadRequest
	switch code {
	case "ResourceNotFoundException":
		status = http.StatusNotFound
	case "ResourceInUseException":
		status = http.StatusConflict
	case "ProvisionedThroughputExceededException", "KMSThrottlingException", "ThrottlingException":
		status = http.StatusTooManyRequests
	case "AccessDeniedException", "UnrecognizedClientException", "InvalidSignatureException", "IncompleteSignature",
		"MissingAuthenticationToken", "ExpiredTokenException":
		status = http.StatusBadGateway
		msg = "Kinesis refused the gateway's credentials: " + msg
	default:
		if upstream >= 500 {
			status = http.StatusBadGateway
		}
	}
	s.fail(w, status, 0, msg, code)
}

// kinesisCtx bounds one Kinesis call by the backend timeout.
func (s *Server) kinesisCtx(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), s.cfg.BackendTimeout)
}

// listStreams handles GET /streams, following the pages so that the answer
// holds every stream.
func (s *Server) listStreams(w *respWriter, r *http.Request) {
	ctx, cancel := s.kinesisCtx(r)
	defer cancel()
	names := []string{}
	in := &kinesis.ListStreamsInput{}
	for page := 0; page < 1000; page++ {
		out, err := s.kinesis.ListStreams(ctx, in)
		if err != nil {
			s.kinesisFailure(w, err)
			return
		}
		names = append(names, out.StreamNames...)
		if out.HasMoreStreams == nil || !*out.HasMoreStreams || len(out.StreamNames) == 0 {
			break
		}
		last := out.StreamNames[len(out.StreamNames)-1]
		in = &kinesis.ListStreamsInput{ExclusiveStartStreamName: &last}
	}
	if p := s.cfg.TopicPrefix; p != "" {
		kept := names[:0]
		for _, n := range names {
			if strings.HasPrefix(n, "streaming-"+p+"-") {
				kept = append(kept, n)
			}
		}
		names = kept
	}
	writeJSON(w, http.StatusOK, struct {
		HasMoreStreams bool
		StreamNames    []string
	}{false, names})
}

// createStream handles POST /streams/{name} with an optional
// {"ShardCount": n}.
func (s *Server) createStream(w *respWriter, r *http.Request) {
	name := r.PathValue("name")
	if !s.checkStream(w, name) {
		return
	}
	body, buf, ok := s.readBody(w, r)
	if !ok {
		return
	}
	defer s.releaseBody(buf)
	var in struct {
		ShardCount *int32
	}
	if len(bytes.TrimSpace(body)) > 0 {
		if !s.checkKinesisContentType(w, r) {
			return
		}
		if err := decodeJSON(body, &in); err != nil {
			e := jsonError(err, `an object like {"ShardCount": 1}`)
			s.fail(w, http.StatusBadRequest, 0, e.msg, "SerializationException")
			return
		}
	}
	shards := s.cfg.DefaultShardCount
	if in.ShardCount != nil {
		if *in.ShardCount < 1 {
			s.fail(w, http.StatusBadRequest, 0, fmt.Sprintf("ShardCount must be at least 1, got %d", *in.ShardCount), "ValidationException")
			return
		}
		shards = *in.ShardCount
	}
	ctx, cancel := s.kinesisCtx(r)
	defer cancel()
	if _, err := s.kinesis.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: &name, ShardCount: &shards}); err != nil {
		s.kinesisFailure(w, err)
		return
	}
	writeJSON(w, http.StatusOK, struct{}{})
}

// deleteStream handles DELETE /streams/{name}.
func (s *Server) deleteStream(w *respWriter, r *http.Request) {
	name := r.PathValue("name")
	if !s.checkStream(w, name) {
		return
	}
	ctx, cancel := s.kinesisCtx(r)
	defer cancel()
	if _, err := s.kinesis.DeleteStream(ctx, &kinesis.DeleteStreamInput{StreamName: &name}); err != nil {
		s.kinesisFailure(w, err)
		return
	}
	writeJSON(w, http.StatusOK, struct{}{})
}

// The DescribeStream answer in Kinesis's JSON shape (field names are
// Kinesis's; timestamps are epoch seconds, as on the wire).
type (
	streamDescription struct {
		StreamName              string
		StreamARN               string
		StreamStatus            string
		StreamModeDetails       *streamMode `json:",omitempty"`
		Shards                  []shard
		HasMoreShards           bool
		RetentionPeriodHours    int32
		StreamCreationTimestamp float64
		EnhancedMonitoring      []enhancedMetrics
		EncryptionType          string  `json:",omitempty"`
		KeyId                   *string `json:",omitempty"`
	}
	streamMode      struct{ StreamMode string }
	enhancedMetrics struct{ ShardLevelMetrics []string }
	shard           struct {
		ShardId               string
		ParentShardId         *string `json:",omitempty"`
		AdjacentParentShardId *string `json:",omitempty"`
		HashKeyRange          struct{ StartingHashKey, EndingHashKey string }
		SequenceNumberRange   struct {
			StartingSequenceNumber string
			EndingSequenceNumber   *string `json:",omitempty"`
		}
	}
)

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// describeStream handles GET /streams/{name}.
func (s *Server) describeStream(w *respWriter, r *http.Request) {
	name := r.PathValue("name")
	if !s.checkStream(w, name) {
		return
	}
	ctx, cancel := s.kinesisCtx(r)
	defer cancel()
	out, err := s.kinesis.DescribeStream(ctx, &kinesis.DescribeStreamInput{StreamName: &name})
	if err != nil {
		s.kinesisFailure(w, err)
		return
	}
	d := out.StreamDescription
	if d == nil {
		s.kinesisFailure(w, errors.New("DescribeStream answered without a StreamDescription"))
		return
	}
	sd := streamDescription{
		StreamName:           deref(d.StreamName),
		StreamARN:            deref(d.StreamARN),
		StreamStatus:         string(d.StreamStatus),
		Shards:               []shard{},
		HasMoreShards:        deref(d.HasMoreShards),
		RetentionPeriodHours: deref(d.RetentionPeriodHours),
		EnhancedMonitoring:   []enhancedMetrics{},
		EncryptionType:       string(d.EncryptionType),
		KeyId:                d.KeyId,
	}
	if d.StreamModeDetails != nil {
		sd.StreamModeDetails = &streamMode{string(d.StreamModeDetails.StreamMode)}
	}
	if d.StreamCreationTimestamp != nil {
		sd.StreamCreationTimestamp = float64(d.StreamCreationTimestamp.UnixMilli()) / 1000
	}
	for _, em := range d.EnhancedMonitoring {
		m := enhancedMetrics{ShardLevelMetrics: []string{}}
		for _, x := range em.ShardLevelMetrics {
			m.ShardLevelMetrics = append(m.ShardLevelMetrics, string(x))
		}
		sd.EnhancedMonitoring = append(sd.EnhancedMonitoring, m)
	}
	for _, sh := range d.Shards {
		o := shard{ShardId: deref(sh.ShardId), ParentShardId: sh.ParentShardId, AdjacentParentShardId: sh.AdjacentParentShardId}
		if sh.HashKeyRange != nil {
			o.HashKeyRange.StartingHashKey = deref(sh.HashKeyRange.StartingHashKey)
			o.HashKeyRange.EndingHashKey = deref(sh.HashKeyRange.EndingHashKey)
		}
		if sh.SequenceNumberRange != nil {
			o.SequenceNumberRange.StartingSequenceNumber = deref(sh.SequenceNumberRange.StartingSequenceNumber)
			o.SequenceNumberRange.EndingSequenceNumber = sh.SequenceNumberRange.EndingSequenceNumber
		}
		sd.Shards = append(sd.Shards, o)
	}
	writeJSON(w, http.StatusOK, struct{ StreamDescription streamDescription }{sd})
}

// partitionKey reads a partition key: a non-empty JSON string of at most
// 256 characters.
func partitionKey(raw json.RawMessage, field string) (string, string) {
	if isNull(raw) {
		return "", field + " is required"
	}
	var pk string
	if raw[0] != '"' || json.Unmarshal(raw, &pk) != nil {
		return "", fmt.Sprintf("%s must be a string, got %s", field, truncate(raw))
	}
	if pk == "" {
		return "", field + " must not be empty"
	}
	if n := utf8.RuneCountInString(pk); n > kinesisMaxPartitionKey {
		return "", fmt.Sprintf("%s is %d characters, over Kinesis's limit of %d", field, n, kinesisMaxPartitionKey)
	}
	return pk, ""
}

func compactJSON(raw json.RawMessage) []byte {
	var b bytes.Buffer
	b.Grow(len(raw))
	if json.Compact(&b, raw) != nil { // cannot happen: raw was validated
		return append([]byte(nil), raw...)
	}
	return b.Bytes()
}

// kinesisRequestError is a refusal found while reading a Kinesis proxy
// body: a 400 with Kinesis's error type.
type kinesisRequestError struct {
	typ, msg string
}

func validationError(format string, args ...any) *kinesisRequestError {
	return &kinesisRequestError{"ValidationException", fmt.Sprintf(format, args...)}
}

// kinesisContentType reports whether a Kinesis route takes a body of this
// Content-Type: JSON (API Gateway's mapping templates are for
// application/json, which it assumes when the header is absent) or
// Kinesis's own application/x-amz-json-1.x.
func kinesisContentType(ct string) bool {
	if ct == "" || ct == "application/json" {
		return true
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	switch mt {
	case "application/json", "application/x-amz-json-1.1", "application/x-amz-json-1.0":
		return true
	}
	return false
}

// checkKinesisContentType answers API Gateway's 415 for a body in another
// media type and returns false.
func (s *Server) checkKinesisContentType(w *respWriter, r *http.Request) bool {
	if kinesisContentType(r.Header.Get("Content-Type")) {
		return true
	}
	s.fail(w, http.StatusUnsupportedMediaType, 0, "Unsupported Media Type", "")
	return false
}

// parsePutRecord reads a PutRecord body: the record's data (the JSON text
// of Data, compacted) and partition key.
func parsePutRecord(body []byte, lim jsonLimits) (data []byte, pk string, rerr *kinesisRequestError) {
	var in struct {
		Data         json.RawMessage
		PartitionKey json.RawMessage
	}
	if err := decodeJSON(body, &in); err != nil {
		e := jsonError(err, `an object like {"StreamName":..,"Data":{..},"PartitionKey":".."}`)
		return nil, "", &kinesisRequestError{"SerializationException", e.msg}
	}
	if isNull(in.Data) {
		return nil, "", validationError("Data is required")
	}
	if p := checkJSON(in.Data, lim); p != "" {
		return nil, "", validationError("Data %s", p)
	}
	pk, msg := partitionKey(in.PartitionKey, "PartitionKey")
	if msg != "" {
		return nil, "", validationError("%s", msg)
	}
	if !utf8.Valid(body) {
		return nil, "", validationError("the request body is not valid UTF-8")
	}
	data = compactJSON(in.Data)
	if n := len(data) + len(pk); n > kinesisMaxRecordBytes {
		return nil, "", validationError("the record is %d bytes (Data as JSON plus PartitionKey), over Kinesis's limit of %d", n, kinesisMaxRecordBytes)
	}
	return data, pk, nil
}

// putRecord handles PUT /streams/{name}/record with
// {"StreamName":..,"Data":..,"PartitionKey":..}: as in the AWS tutorial's
// mapping template ($input.json('$.Data')), the record holds the JSON text
// of Data, so an object arrives as that object and a string with its
// quotes. The stream is the path's; a StreamName in the body is ignored.
func (s *Server) putRecord(w *respWriter, r *http.Request) {
	name, body, buf, ok := s.putBody(w, r)
	if !ok {
		return
	}
	data, pk, rerr := parsePutRecord(body, s.jsonLimits())
	s.releaseBody(buf)
	if rerr != nil {
		s.fail(w, http.StatusBadRequest, 0, rerr.msg, rerr.typ)
		return
	}
	ctx, cancel := s.kinesisCtx(r)
	defer cancel()
	out, err := s.kinesis.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: &name, Data: data, PartitionKey: &pk})
	if err != nil {
		w.recordsFailed = 1
		s.kinesisFailure(w, err)
		return
	}
	w.recordsOK = 1
	writeJSON(w, http.StatusOK, struct {
		SequenceNumber string
		ShardId        string
		EncryptionType string `json:",omitempty"`
	}{deref(out.SequenceNumber), deref(out.ShardId), string(out.EncryptionType)})
}

// putBody checks a put request's stream name and media type and reads its
// body, which the caller gives back with releaseBody. On failure it has
// answered already.
func (s *Server) putBody(w *respWriter, r *http.Request) (name string, body []byte, buf *[]byte, ok bool) {
	name = r.PathValue("name")
	if !s.checkStream(w, name) || !s.checkKinesisContentType(w, r) {
		return "", nil, nil, false
	}
	body, buf, ok = s.readBody(w, r)
	return name, body, buf, ok
}

type putRecordsResult struct {
	SequenceNumber string `json:",omitempty"`
	ShardId        string `json:",omitempty"`
	ErrorCode      string `json:",omitempty"`
	ErrorMessage   string `json:",omitempty"`
}

// putRecords handles PUT /streams/{name}/records with
// {"records":[{"data":..,"partition-key":..}]}: a string data is stored as
// its text (the tutorial's $util.base64Encode($elem.data)), any other JSON
// value as its JSON text. The answer is Kinesis's: records can fail one by
// one, counted in FailedRecordCount.
func (s *Server) putRecords(w *respWriter, r *http.Request) {
	name, body, buf, ok := s.putBody(w, r)
	if !ok {
		return
	}
	entries, rerr := parsePutRecords(body, s.jsonLimits())
	s.releaseBody(buf)
	if rerr != nil {
		s.fail(w, http.StatusBadRequest, 0, rerr.msg, rerr.typ)
		return
	}
	ctx, cancel := s.kinesisCtx(r)
	defer cancel()
	out, err := s.kinesis.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: &name, Records: entries})
	if err != nil {
		w.recordsFailed = len(entries)
		s.kinesisFailure(w, err)
		return
	}
	res := make([]putRecordsResult, len(out.Records))
	failed := 0
	for i, o := range out.Records {
		res[i] = putRecordsResult{deref(o.SequenceNumber), deref(o.ShardId), deref(o.ErrorCode), deref(o.ErrorMessage)}
		if o.ErrorCode != nil {
			failed++
		}
	}
	w.recordsOK, w.recordsFailed = len(res)-failed, failed
	writeJSON(w, http.StatusOK, struct {
		FailedRecordCount int
		Records           []putRecordsResult
		EncryptionType    string `json:",omitempty"`
	}{int(deref(out.FailedRecordCount)), res, string(out.EncryptionType)})
}

// parsePutRecords reads a PutRecords body into Kinesis's entries, checking
// Kinesis's limits: a string data is the string's text, any other JSON
// value its JSON text (compacted).
func parsePutRecords(body []byte, lim jsonLimits) ([]types.PutRecordsRequestEntry, *kinesisRequestError) {
	var in struct {
		Records []struct {
			Data         json.RawMessage `json:"data"`
			PartitionKey json.RawMessage `json:"partition-key"`
		} `json:"records"`
	}
	if err := decodeJSON(body, &in); err != nil {
		e := jsonError(err, `an object like {"records":[{"data":..,"partition-key":".."}]}`)
		return nil, &kinesisRequestError{"SerializationException", e.msg}
	}
	switch n := len(in.Records); {
	case n == 0:
		return nil, validationError(`records may not be empty: send {"records":[{"data":..,"partition-key":".."}, ...]}`)
	case n > kinesisMaxBatchRecords:
		return nil, validationError("%d records, over Kinesis's limit of %d a request", n, kinesisMaxBatchRecords)
	}
	entries := make([]types.PutRecordsRequestEntry, len(in.Records))
	total := 0
	for i, rec := range in.Records {
		if isNull(rec.Data) {
			return nil, validationError("records[%d].data is required", i)
		}
		if p := checkJSON(rec.Data, lim); p != "" {
			return nil, validationError("records[%d].data %s", i, p)
		}
		var data []byte
		if rec.Data[0] == '"' {
			var str string
			if err := json.Unmarshal(rec.Data, &str); err != nil {
				return nil, validationError("records[%d].data: %v", i, err)
			}
			data = []byte(str)
		} else {
			data = compactJSON(rec.Data)
		}
		pk, msg := partitionKey(rec.PartitionKey, fmt.Sprintf("records[%d].partition-key", i))
		if msg != "" {
			return nil, validationError("%s", msg)
		}
		n := len(data) + len(pk)
		if n > kinesisMaxRecordBytes {
			return nil, validationError("records[%d] is %d bytes (data plus partition key), over Kinesis's limit of %d", i, n, kinesisMaxRecordBytes)
		}
		total += n
		entries[i] = types.PutRecordsRequestEntry{Data: data, PartitionKey: &pk}
	}
	if !utf8.Valid(body) {
		return nil, validationError("the request body is not valid UTF-8")
	}
	if total > kinesisMaxBatchBytes {
		return nil, validationError("the records are %d bytes in all (data plus partition keys), over Kinesis's limit of %d a request", total, kinesisMaxBatchBytes)
	}
	return entries, nil
}
