package transforms

import (
	"bytes"
	"encoding/json"
	"errors"
	"unicode/utf8"

	"github.com/pinpipe/pinpipe/internal/jsonscan"
)

// Reasons a raw record is rejected. They are part of the dead-letter output
// and of the summary, so they are short and stable.
const (
	ReasonInvalidJSON   = "invalid JSON"
	ReasonNotObject     = "not a JSON object"
	ReasonMissingKey    = "missing key"
	ReasonNullKey       = "null key"
	ReasonKeyNotInteger = "key not an integer"
)

// maxDepth matches encoding/json's nesting limit, so that both parsers reject
// the same documents.
const maxDepth = 10000

var errSyntax = errors.New("syntax error")

// objectFields finds the values of the given top-level keys in a JSON object.
// vals[i] receives the raw bytes of keys[i]'s value (nil when absent); a
// repeated key keeps its last value, as encoding/json does. The returned
// reason is "" for a valid object, otherwise ReasonInvalidJSON or
// ReasonNotObject.
//
// It is a single pass over the bytes that validates the whole document and
// allocates nothing: the fast path of the cleaning functions. The reference
// behaviour is objectFieldsStd (encoding/json); a differential fuzz test keeps
// them in agreement.
func objectFields(data []byte, keys []string, vals [][]byte) string {
	for i := range vals {
		vals[i] = nil
	}
	s := scanner{data: data}
	s.skipSpace()
	if s.i >= len(data) {
		return ReasonInvalidJSON
	}
	if data[s.i] != '{' {
		if s.value(0) != nil || !s.atEnd() {
			return ReasonInvalidJSON
		}
		return ReasonNotObject
	}
	s.i++
	s.skipSpace()
	if s.peek() == '}' {
		s.i++
		if !s.atEnd() {
			return ReasonInvalidJSON
		}
		return ""
	}
	for {
		s.skipSpace()
		ks := s.i
		escaped, err := s.str()
		if err != nil {
			return ReasonInvalidJSON
		}
		key := data[ks+1 : s.i-1]
		s.skipSpace()
		if s.peek() != ':' {
			return ReasonInvalidJSON
		}
		s.i++
		s.skipSpace()
		vs := s.i
		if s.value(1) != nil {
			return ReasonInvalidJSON
		}
		val := data[vs:s.i]
		if escaped {
			var k string
			if json.Unmarshal(data[ks:ks+len(key)+2], &k) != nil {
				return ReasonInvalidJSON
			}
			key = []byte(k)
		}
		for i, want := range keys {
			if string(key) == want {
				vals[i] = val
				break
			}
		}
		s.skipSpace()
		switch s.peek() {
		case ',':
			s.i++
			continue
		case '}':
			s.i++
			if !s.atEnd() {
				return ReasonInvalidJSON
			}
			return ""
		default:
			return ReasonInvalidJSON
		}
	}
}

// objectFieldsStd is the reference for objectFields, built on encoding/json.
func objectFieldsStd(data []byte, keys []string, vals [][]byte) string {
	for i := range vals {
		vals[i] = nil
	}
	if !json.Valid(data) {
		return ReasonInvalidJSON
	}
	if t := bytes.TrimLeft(data, " \t\r\n"); t[0] != '{' {
		return ReasonNotObject
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return ReasonInvalidJSON
	}
	for i, k := range keys {
		if v, ok := m[k]; ok {
			vals[i] = v
		}
	}
	return ""
}

type scanner struct {
	data []byte
	i    int
}

func (s *scanner) peek() byte {
	if s.i < len(s.data) {
		return s.data[s.i]
	}
	return 0
}

func (s *scanner) skipSpace() {
	for s.i < len(s.data) {
		switch s.data[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *scanner) atEnd() bool {
	s.skipSpace()
	return s.i == len(s.data)
}

// value skips one JSON value, validating it.
func (s *scanner) value(depth int) error {
	switch c := s.peek(); {
	case c == '"':
		_, err := s.str()
		return err
	case c == '{' || c == '[':
		return s.container(depth + 1)
	case c == '-' || (c >= '0' && c <= '9'):
		n := jsonscan.Number(s.data[s.i:])
		if n == 0 {
			return errSyntax
		}
		s.i += n
		return nil
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	}
	return errSyntax
}

func (s *scanner) literal(w string) error {
	if !bytes.HasPrefix(s.data[s.i:], []byte(w)) {
		return errSyntax
	}
	s.i += len(w)
	return nil
}

func (s *scanner) container(depth int) error {
	if depth > maxDepth {
		return errSyntax
	}
	open := s.data[s.i]
	closing := byte('}')
	if open == '[' {
		closing = ']'
	}
	s.i++
	s.skipSpace()
	if s.peek() == closing {
		s.i++
		return nil
	}
	for {
		s.skipSpace()
		if open == '{' {
			if _, err := s.str(); err != nil {
				return err
			}
			s.skipSpace()
			if s.peek() != ':' {
				return errSyntax
			}
			s.i++
			s.skipSpace()
		}
		if err := s.value(depth); err != nil {
			return err
		}
		s.skipSpace()
		switch s.peek() {
		case ',':
			s.i++
		case closing:
			s.i++
			return nil
		default:
			return errSyntax
		}
	}
}

// str skips a JSON string starting at s.i and reports whether it holds
// escapes. Invalid UTF-8 is accepted, as encoding/json accepts it.
func (s *scanner) str() (escaped bool, err error) {
	if s.peek() != '"' {
		return false, errSyntax
	}
	s.i++
	for s.i < len(s.data) {
		c := s.data[s.i]
		switch {
		case c == '"':
			s.i++
			return escaped, nil
		case c == '\\':
			escaped = true
			if s.i+1 >= len(s.data) {
				return false, errSyntax
			}
			switch s.data[s.i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.i += 2
			case 'u':
				if s.i+6 > len(s.data) {
					return false, errSyntax
				}
				for _, h := range s.data[s.i+2 : s.i+6] {
					if !jsonscan.IsHex(h) {
						return false, errSyntax
					}
				}
				s.i += 6
			default:
				return false, errSyntax
			}
		case c < 0x20:
			return false, errSyntax
		default:
			s.i++
		}
	}
	return false, errSyntax
}

// stringValue decodes a raw JSON string value (with its quotes).
func stringValue(raw []byte) (string, bool) {
	inner := raw[1 : len(raw)-1]
	if bytes.IndexByte(inner, '\\') < 0 && utf8.Valid(inner) {
		return string(inner), true
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}
