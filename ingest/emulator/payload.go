package emulator

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"strconv"
	"time"

	"github.com/pinpipe/pinpipe/ingest/generate"
	"github.com/pinpipe/pinpipe/ingest/sourcedb"
)

// Targets: where the records go through the gateway.
const (
	// TargetKafka posts to the Confluent REST Proxy API: POST /topics/<prefix>.<table>.
	TargetKafka = "kafka"
	// TargetKinesis puts to the API Gateway Kinesis proxy API:
	// PUT /streams/streaming-<prefix>-<table>/record.
	TargetKinesis = "kinesis"
)

// Content types the original scripts sent.
const (
	kafkaContentType   = "application/vnd.kafka.json.v2+json"
	kinesisContentType = "application/json"
)

// request is one record's HTTP request, built once and sent as many times
// as retries need.
type request struct {
	method, url, contentType string
	body                     []byte
	table                    string
	kafka                    bool
}

// TopicName is the Kafka topic of a table's records ("pin", "geo", "user").
func TopicName(prefix, table string) string { return prefix + "." + table }

// StreamName is the Kinesis stream of a table's records.
func StreamName(prefix, table string) string { return "streaming-" + prefix + "-" + table }

// newRequest builds the request that sends row, a record of table, for the
// post with key ind, in the original scripts' exact shapes:
//
//	Kafka:   POST <gateway>/topics/<P>.<table>, {"records":[{"value":{...}}]}
//	Kinesis: PUT  <gateway>/streams/streaming-<P>-<table>/record,
//	         {"StreamName":"streaming-<P>-<table>","Data":{...},"PartitionKey":"<ind>"}
//
// The record's fields keep the table's column order, as the original's
// dict of the row did. The partition key is the post's key, so that a
// stream's records spread over its shards by post.
func newRequest(base *url.URL, target, prefix, table string, ind int64, row *sourcedb.Row) (*request, error) {
	var buf bytes.Buffer
	r := &request{table: table}
	switch target {
	case TargetKafka:
		r.method, r.contentType, r.kafka = "POST", kafkaContentType, true
		r.url = joinURL(base, "topics", TopicName(prefix, table))
		buf.WriteString(`{"records":[{"value":`)
		if err := appendObject(&buf, row); err != nil {
			return nil, err
		}
		buf.WriteString(`}]}`)
	case TargetKinesis:
		stream := StreamName(prefix, table)
		r.method, r.contentType = "PUT", kinesisContentType
		r.url = joinURL(base, "streams", stream, "record")
		buf.WriteString(`{"StreamName":`)
		appendJSON(&buf, stream)
		buf.WriteString(`,"Data":`)
		if err := appendObject(&buf, row); err != nil {
			return nil, err
		}
		buf.WriteString(`,"PartitionKey":`)
		appendJSON(&buf, strconv.FormatInt(ind, 10))
		buf.WriteString(`}`)
	default:
		return nil, fmt.Errorf("emulator: unknown target %q", target)
	}
	r.body = buf.Bytes()
	return r, nil
}

// joinURL appends escaped path segments to the gateway's base URL, which
// may carry a path of its own (an API Gateway stage, say).
func joinURL(base *url.URL, segs ...string) string {
	esc := make([]string, len(segs))
	for i, s := range segs {
		esc[i] = url.PathEscape(s)
	}
	return base.JoinPath(esc...).String()
}

// appendObject writes row as a JSON object with its columns in order.
func appendObject(buf *bytes.Buffer, row *sourcedb.Row) error {
	buf.WriteByte('{')
	for i, name := range row.Columns {
		if i > 0 {
			buf.WriteByte(',')
		}
		appendJSON(buf, name)
		buf.WriteByte(':')
		if err := appendValue(buf, row.Values[i]); err != nil {
			return fmt.Errorf("emulator: column %s: %w", name, err)
		}
	}
	buf.WriteByte('}')
	return nil
}

// appendValue writes one column's value as the original did
// (json.dumps(..., default=str)): numbers as numbers, text as text,
// datetimes as "YYYY-MM-DD HH:MM:SS" (UTC for zoned ones), NULL as null.
func appendValue(buf *bytes.Buffer, v any) error {
	switch x := v.(type) {
	case nil:
		buf.WriteString("null")
	case time.Time:
		appendJSON(buf, x.UTC().Format(generate.SourceTime))
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			buf.WriteString("null") // not representable in JSON
			return nil
		}
		appendJSON(buf, x)
	case float32:
		return appendValue(buf, float64(x))
	case [16]byte: // uuid columns
		appendJSON(buf, fmt.Sprintf("%x-%x-%x-%x-%x", x[0:4], x[4:6], x[6:8], x[8:10], x[10:16]))
	default:
		b, err := marshal(v)
		if err != nil {
			return err
		}
		buf.Write(b)
	}
	return nil
}

// appendJSON writes a plain value (string, number) as JSON.
func appendJSON(buf *bytes.Buffer, v any) {
	b, err := marshal(v)
	if err != nil {
		panic(err) // strings and finite numbers always marshal
	}
	buf.Write(b)
}

// marshal is json.Marshal without HTML escaping: the text goes out as it
// is in the database.
func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}
