package gateway

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"strconv"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pinpipe/pinpipe/internal/jsonscan"
)

// The produce body's fast path: one pass over the bytes that validates the
// JSON, finds each record's key, value and partition, and notes which of
// them hold whitespace to compact. It decides only the bodies it fully
// understands, the valid ones of the usual shape; for anything else (a
// syntax error, a field of the wrong type, an escaped or non-ASCII field
// name, "records" twice, deep nesting) it gives up and the reference path,
// encoding/json (parseProduceStd), decides, so every error is answered
// exactly as before. FuzzParseProduce keeps the two in agreement.

// rawRecord is one record of a produce body: the JSON text of its key, value
// and partition as sent (nil when absent), and whether the key or value
// holds whitespace that compaction removes.
type rawRecord struct {
	key, value, partition  []byte
	keySpaced, valueSpaced bool
}

// scanMaxDepth bounds the nesting the fast path follows; deeper bodies go
// to encoding/json, which allows 10,000 levels.
const scanMaxDepth = 200

// produceScanner walks a produce body.
type produceScanner struct {
	data []byte
	i    int
	// spaced records that whitespace was skipped since it was last reset.
	spaced bool
	// maxDepth and maxNumber are the deepest nesting and the longest
	// number the fast path takes: past them, the reference path decides
	// (and refuses a record's key or value).
	maxDepth, maxNumber int
	// maxRecords is the most records kept; count counts them all.
	maxRecords, count int
}

// scanProduce reads a produce body's records, appending them to recs, up
// to maxRecords of them; count is how many it holds. ok is false when the
// fast path cannot decide: the caller must then use parseProduceStd. A body
// the fast path decides is valid UTF-8 and holds no lone surrogate escape,
// no nesting deeper than lim.depth and no number longer than lim.number.
func scanProduce(body []byte, recs []rawRecord, lim jsonLimits, maxRecords int) (_ []rawRecord, count int, ok bool) {
	s := produceScanner{data: body, maxDepth: min(lim.depth, scanMaxDepth) + 1, maxNumber: lim.number, maxRecords: maxRecords}
	recs, ok = s.body(recs)
	return recs, s.count, ok
}

func (s *produceScanner) body(recs []rawRecord) (_ []rawRecord, ok bool) {
	s.space()
	if !s.eat('{') {
		return recs, false
	}
	s.space()
	if s.eat('}') {
		return recs, s.atEnd()
	}
	seen := false
	for {
		s.space()
		f, ok := s.field()
		if !ok {
			return recs, false
		}
		s.space()
		if !s.eat(':') {
			return recs, false
		}
		s.space()
		if f == fieldRecords {
			if seen {
				return recs, false // encoding/json's reuse of the first array's elements: leave it to encoding/json
			}
			seen = true
			if recs, ok = s.records(recs); !ok {
				return recs, false
			}
		} else if !s.value(0) {
			return recs, false
		}
		s.space()
		if s.eat(',') {
			continue
		}
		if s.eat('}') {
			return recs, s.atEnd()
		}
		return recs, false
	}
}

// records reads the records field's value: null or an array of objects.
func (s *produceScanner) records(recs []rawRecord) ([]rawRecord, bool) {
	if s.literal("null") {
		return recs, true
	}
	if !s.eat('[') {
		return recs, false
	}
	s.space()
	if s.eat(']') {
		return recs, true
	}
	for {
		s.space()
		rec, ok := s.record()
		if !ok {
			return recs, false
		}
		if s.count++; s.count <= s.maxRecords {
			recs = append(recs, rec)
		}
		s.space()
		if s.eat(',') {
			continue
		}
		return recs, s.eat(']')
	}
}

// record reads one record object; a repeated field keeps its last value, as
// with encoding/json.
func (s *produceScanner) record() (rec rawRecord, ok bool) {
	if !s.eat('{') {
		return rec, false
	}
	s.space()
	if s.eat('}') {
		return rec, true
	}
	for {
		s.space()
		f, ok := s.field()
		if !ok {
			return rec, false
		}
		s.space()
		if !s.eat(':') {
			return rec, false
		}
		s.space()
		start := s.i
		s.spaced = false
		if !s.value(1) {
			return rec, false
		}
		v := s.data[start:s.i:s.i]
		switch f {
		case fieldKey:
			rec.key, rec.keySpaced = v, s.spaced
		case fieldValue:
			rec.value, rec.valueSpaced = v, s.spaced
		case fieldPartition:
			rec.partition = v
		}
		s.space()
		if s.eat(',') {
			continue
		}
		return rec, s.eat('}')
	}
}

// The fields of a produce body the fast path tells apart.
const (
	fieldOther = iota
	fieldRecords
	fieldKey
	fieldValue
	fieldPartition
)

// field reads an object member's name and tells which field it names,
// matching as encoding/json does (case-insensitively). ok is false for a
// name with escapes or non-ASCII bytes: encoding/json decodes those and
// folds them with Unicode's rules, which the fast path leaves to it.
func (s *produceScanner) field() (f int, ok bool) {
	if !s.eat('"') {
		return 0, false
	}
	start := s.i
	for ; s.i < len(s.data); s.i++ {
		c := s.data[s.i]
		if c == '"' {
			break
		}
		if c == '\\' || c < 0x20 || c >= 0x80 {
			return 0, false
		}
	}
	if s.i >= len(s.data) {
		return 0, false
	}
	name := s.data[start:s.i]
	s.i++
	switch {
	case asciiEqualFold(name, "records"):
		return fieldRecords, true
	case asciiEqualFold(name, "key"):
		return fieldKey, true
	case asciiEqualFold(name, "value"):
		return fieldValue, true
	case asciiEqualFold(name, "partition"):
		return fieldPartition, true
	}
	return fieldOther, true
}

// asciiEqualFold compares an ASCII name with a lower-case ASCII word,
// ignoring case.
func asciiEqualFold(name []byte, word string) bool {
	if len(name) != len(word) {
		return false
	}
	for i := range len(name) {
		c := name[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != word[i] {
			return false
		}
	}
	return true
}

func (s *produceScanner) eat(c byte) bool {
	if s.i < len(s.data) && s.data[s.i] == c {
		s.i++
		return true
	}
	return false
}

func (s *produceScanner) space() {
	start := s.i
	for s.i < len(s.data) {
		switch s.data[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
			continue
		}
		break
	}
	if s.i != start {
		s.spaced = true
	}
}

func (s *produceScanner) atEnd() bool {
	s.space()
	return s.i == len(s.data)
}

func (s *produceScanner) literal(w string) bool {
	if len(s.data)-s.i >= len(w) && string(s.data[s.i:s.i+len(w)]) == w {
		s.i += len(w)
		return true
	}
	return false
}

// value skips one JSON value, validating it as encoding/json does.
func (s *produceScanner) value(depth int) bool {
	if s.i >= len(s.data) {
		return false
	}
	switch c := s.data[s.i]; {
	case c == '"':
		return s.str()
	case c == '{' || c == '[':
		return s.container(depth + 1)
	case c == '-' || (c >= '0' && c <= '9'):
		n := jsonscan.Number(s.data[s.i:])
		s.i += n
		return n > 0 && n <= s.maxNumber
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	}
	return false
}

func (s *produceScanner) container(depth int) bool {
	if depth > s.maxDepth {
		return false
	}
	closing := byte(']')
	obj := s.data[s.i] == '{'
	if obj {
		closing = '}'
	}
	s.i++
	s.space()
	if s.eat(closing) {
		return true
	}
	for {
		s.space()
		if obj {
			if !s.str() {
				return false
			}
			s.space()
			if !s.eat(':') {
				return false
			}
			s.space()
		}
		if !s.value(depth) {
			return false
		}
		s.space()
		if s.eat(',') {
			continue
		}
		return s.eat(closing)
	}
}

// str skips a JSON string. Unlike encoding/json, it refuses invalid UTF-8
// and lone surrogate escapes (the reference path then says where they are).
func (s *produceScanner) str() bool {
	if !s.eat('"') {
		return false
	}
	d := s.data
	for i := s.i; i < len(d); {
		c := d[i]
		switch {
		case c == '"':
			s.i = i + 1
			return true
		case c == '\\':
			if i+1 >= len(d) {
				return false
			}
			switch d[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(d) || !isHex4(d[i+2:i+6]) {
					return false
				}
				n, ok := surrogateEscape(d, i)
				if !ok {
					return false
				}
				i += n
			default:
				return false
			}
		case c < 0x20:
			return false
		case c >= utf8.RuneSelf:
			r, n := utf8.DecodeRune(d[i:])
			if r == utf8.RuneError && n == 1 {
				return false
			}
			i += n
		default:
			i++
		}
	}
	return false
}

// appendCompact appends valid JSON text src without the whitespace outside
// its strings, as json.Compact writes it.
func appendCompact(dst, src []byte) []byte {
	start, inStr := 0, false
	for i := 0; i < len(src); i++ {
		c := src[i]
		if inStr {
			switch c {
			case '\\':
				i++
			case '"':
				inStr = false
			}
			continue
		}
		switch c {
		case '"':
			inStr = true
		case ' ', '\t', '\n', '\r':
			dst = append(dst, src[start:i]...)
			start = i + 1
		}
	}
	return append(dst, src[start:]...)
}

// parseProduce turns a produce body into records, or says what is wrong
// with it. manual flags the records whose partition the request chose (nil
// if none did). The records share one allocation, and so do their keys and
// values. Bodies scanProduce cannot decide go to parseProduceStd.
func (s *Server) parseProduce(body []byte, format embedded, mt string) (recs []*kgo.Record, manual []bool, rerr *requestError) {
	var scratch [4]rawRecord
	raws, count, ok := scanProduce(body, scratch[:0], s.jsonLimits(), s.cfg.MaxRecordsPerRequest)
	if !ok {
		return s.parseProduceStd(body, format, mt)
	}
	if count == 0 {
		return nil, nil, unprocessable(`records may not be empty: send {"records":[{"value":...}, ...]}`)
	}
	if count > s.cfg.MaxRecordsPerRequest {
		return nil, nil, tooManyRecords(count, s.cfg.MaxRecordsPerRequest)
	}
	size := 0
	for i := range raws {
		size += len(raws[i].key) + len(raws[i].value)
	}
	// Compacted JSON and decoded base64 are no longer than their text.
	buf := make([]byte, 0, size)
	slab := make([]kgo.Record, len(raws))
	recs = make([]*kgo.Record, len(raws))
	for i := range raws {
		in, rec := &raws[i], &slab[i]
		var err *requestError
		if rec.Key, buf, err = appendEmbedded(buf, in.key, in.keySpaced, format, mt, i, "key"); err != nil {
			return nil, nil, err
		}
		if rec.Value, buf, err = appendEmbedded(buf, in.value, in.valueSpaced, format, mt, i, "value"); err != nil {
			return nil, nil, err
		}
		if n := len(rec.Key) + len(rec.Value); n > s.cfg.MaxKafkaRecordBytes {
			return nil, nil, unprocessable("records[%d] is %d bytes (key plus value), over the limit of %d bytes a record", i, n, s.cfg.MaxKafkaRecordBytes)
		}
		if !isNull(in.partition) {
			p, perr := strconv.ParseInt(string(in.partition), 10, 32)
			if perr != nil {
				return nil, nil, badRequest("records[%d].partition must be an integer, got %s", i, truncate(in.partition))
			}
			if p < 0 {
				return nil, nil, unprocessable("records[%d].partition must be zero or more, got %d", i, p)
			}
			rec.Partition = int32(p)
			if manual == nil {
				manual = make([]bool, len(raws))
			}
			manual[i] = true
		}
		recs[i] = rec
	}
	return recs, manual, nil
}

// appendEmbedded is embeddedBytes on the fast path: it appends the key's or
// value's bytes to buf and returns them (nil for null or absent) and buf.
func appendEmbedded(buf, raw []byte, spaced bool, format embedded, mt string, i int, field string) (_, _ []byte, _ *requestError) {
	if isNull(raw) {
		return nil, buf, nil
	}
	start := len(buf)
	if format == embeddedJSON {
		if spaced {
			buf = appendCompact(buf, raw)
		} else {
			buf = append(buf, raw...)
		}
		return buf[start:len(buf):len(buf)], buf, nil
	}
	if raw[0] != '"' {
		return nil, buf, badRequest("records[%d].%s must be a base64 string with Content-Type %s (the binary embedded format); "+
			"to send JSON as it is, use Content-Type application/vnd.kafka.json.v2+json", i, field, mt)
	}
	text := raw[1 : len(raw)-1]
	if bytes.IndexByte(text, '\\') >= 0 {
		var str string
		if err := json.Unmarshal(raw, &str); err != nil { // cannot happen: raw was validated
			return nil, buf, badRequest("records[%d].%s: %v", i, field, err)
		}
		text = []byte(str)
	}
	var err error
	if buf, err = base64.StdEncoding.AppendDecode(buf, text); err != nil {
		if buf, err = base64.RawStdEncoding.AppendDecode(buf[:start], text); err != nil {
			return nil, buf[:start], unprocessable("records[%d].%s contains invalid base64 encoding", i, field)
		}
	}
	return buf[start:len(buf):len(buf)], buf, nil
}
