package transforms

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/pinpipe/pinpipe/internal/jsonscan"
)

// The clean tables' JSON-lines form, written and read through the schema
// straight from and to encoded rows: no row structs, no reflection. The
// bytes are those the batch job wrote through a JSON encoder of the row
// structs (github.com/segmentio/encoding/json, HTML escaping off), so the
// tables written before and after are the same files: every column in the
// schema's order, a null as null, strings escaped as that encoder does,
// numbers as Go's shortest form (ES6 cut-offs for floats), timestamps as
// RFC 3339 with nanoseconds in UTC.

// AppendJSON appends the JSON object of an encoded row of the table (no
// newline). A corrupt row, or a float JSON cannot hold (NaN, ±Inf), is an
// error.
func (s *Schema) AppendJSON(dst, row []byte) ([]byte, error) {
	d := decoder{b: row}
	dst = append(dst, '{')
	for i, c := range s.Columns {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, '"')
		dst = append(dst, c.Name...)
		dst = append(dst, '"', ':')
		if c.Nullable && !d.present() {
			dst = append(dst, "null"...)
			continue
		}
		switch c.Type {
		case Int64:
			dst = strconv.AppendInt(dst, d.varint(), 10)
		case Text:
			dst = appendJSONString(dst, d.bytes())
		case Float64List:
			n := d.count()
			if len(d.b) < 8*n {
				d.fail()
				break
			}
			dst = append(dst, '[')
			for j := range n {
				if j > 0 {
					dst = append(dst, ',')
				}
				f := math.Float64frombits(binary.LittleEndian.Uint64(d.b[8*j:]))
				if math.IsNaN(f) || math.IsInf(f, 0) {
					return dst, fmt.Errorf("transforms: %s column %s holds %v, which JSON cannot", s.Table, c.Name, f)
				}
				dst = appendJSONFloat(dst, f)
			}
			d.b = d.b[8*n:]
			dst = append(dst, ']')
		case Timestamp:
			sec, nsec := d.varint(), d.varint()
			dst = append(dst, '"')
			dst = time.Unix(sec, nsec).UTC().AppendFormat(dst, time.RFC3339Nano)
			dst = append(dst, '"')
		}
	}
	if err := d.done(); err != nil {
		return dst, err
	}
	return append(dst, '}'), nil
}

// appendJSONFloat writes a float as encoding/json does: like %g but with
// ES6's exponent cut-offs, and e-09 shortened to e-9.
func appendJSONFloat(dst []byte, f float64) []byte {
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	dst = strconv.AppendFloat(dst, f, format, -1, 64)
	if format == 'e' {
		n := len(dst)
		if n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst
}

const hexDigits = "0123456789abcdef"

// appendJSONString quotes s as the batch job's JSON encoder does with HTML
// escaping off: \" \\ \b \f \n \r \t by name, other control bytes as
// \u00XX, invalid UTF-8 bytes as \ufffd, U+2028 and U+2029 escaped, the
// rest (DEL included) as is.
func appendJSONString(dst, s []byte) []byte {
	dst = append(dst, '"')
	i := 0 // s[i:j] is pending, unescaped
	j := 0
	for j < len(s) {
		c := s[j]
		if c >= 0x20 && c <= 0x7f && c != '\\' && c != '"' {
			j++
			continue
		}
		if c < utf8.RuneSelf {
			dst = append(dst, s[i:j]...)
			switch c {
			case '\\', '"':
				dst = append(dst, '\\', c)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			j++
			i = j
			continue
		}
		r, size := utf8.DecodeRune(s[j:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, s[i:j]...)
			dst = append(dst, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			dst = append(dst, s[i:j]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
		default:
			j += size
			continue
		}
		j += size
		i = j
	}
	dst = append(dst, s[i:]...)
	return append(dst, '"')
}

// JSONRowParser parses JSON lines of one table back into encoded rows:
// the inverse of AppendJSON, and as lenient as decoding into the row
// structs with encoding/json in what matters: keys in any order, white
// space, a missing nullable column is null, a later duplicate key wins,
// escapes and surrogate pairs in strings (invalid UTF-8 and lone
// surrogates become U+FFFD). It is stricter where a silent change would
// lose data: an unknown key (or one in another case), a missing ind, or a
// value of the wrong type is an error. It allocates nothing per row once
// warm. Not safe for concurrent use.
type JSONRowParser struct {
	schema  *Schema
	fields  []Field
	spans   []span
	scratch []byte
	key     []byte
	row     []byte
}

// span is where a Bytes field's value is before it is set: in the line or
// in the scratch buffer (which may move while a row is parsed).
type span struct {
	inScratch  bool
	start, end int
}

// NewJSONRowParser returns a parser of the table's JSON lines.
func NewJSONRowParser(s *Schema) *JSONRowParser {
	return &JSONRowParser{schema: s, fields: make([]Field, len(s.Columns)), spans: make([]span, len(s.Columns))}
}

// Parse parses one JSON object (a line, white space around it allowed)
// and returns the row's ind and its encoded row, valid until the next call.
func (p *JSONRowParser) Parse(line []byte) (ind int64, row []byte, err error) {
	cols := p.schema.Columns
	for i := range p.fields {
		p.fields[i] = Field{Null: true}
		p.spans[i] = span{}
	}
	p.scratch = p.scratch[:0]
	seenKey := false
	s := jsonScanner{line: line, b: line}
	s.skipSpace()
	if !s.consume('{') {
		return 0, nil, s.errorf("want an object")
	}
	s.skipSpace()
	next := 0 // the column expected next: AppendJSON's order
	if !s.consume('}') {
		for {
			s.skipSpace()
			key, ok := s.rawString()
			if !ok {
				return 0, nil, s.errorf("want a key")
			}
			if bytes.IndexByte(key, '\\') >= 0 {
				var ok bool
				if p.key, ok = unescapeJSON(p.key[:0], key); !ok {
					return 0, nil, s.errorf("bad escape in a key")
				}
				key = p.key
			}
			col := -1
			if next < len(cols) && string(key) == cols[next].Name {
				col = next
			} else {
				for i := range cols {
					if string(key) == cols[i].Name {
						col = i
						break
					}
				}
			}
			if col < 0 {
				return 0, nil, s.errorf("unknown field %q", key)
			}
			next = col + 1
			s.skipSpace()
			if !s.consume(':') {
				return 0, nil, s.errorf("want a colon")
			}
			s.skipSpace()
			if err := p.value(&s, col); err != nil {
				return 0, nil, err
			}
			if col == 0 {
				seenKey = true
			}
			s.skipSpace()
			if s.consume(',') {
				continue
			}
			if s.consume('}') {
				break
			}
			return 0, nil, s.errorf("want a comma or a closing brace")
		}
	}
	s.skipSpace()
	if len(s.b) != 0 {
		return 0, nil, s.errorf("data after the object")
	}
	for i, c := range cols {
		f := &p.fields[i]
		if f.Null {
			if !c.Nullable {
				if i == 0 && !seenKey {
					return 0, nil, fmt.Errorf("transforms: %s row has no %s", p.schema.Table, c.Name)
				}
				return 0, nil, fmt.Errorf("transforms: %s row: %s is null", p.schema.Table, c.Name)
			}
			continue
		}
		if sp := p.spans[i]; sp.inScratch {
			f.Bytes = p.scratch[sp.start:sp.end:sp.end]
		} else if c.Type == Text {
			f.Bytes = line[sp.start:sp.end:sp.end]
		}
	}
	p.row = p.schema.AppendFields(p.row[:0], p.fields)
	return p.fields[0].Int, p.row, nil
}

// value parses column col's value.
func (p *JSONRowParser) value(s *jsonScanner, col int) error {
	c := &p.schema.Columns[col]
	f := &p.fields[col]
	*f = Field{}
	if s.literal("null") {
		f.Null = true
		return nil
	}
	switch c.Type {
	case Int64:
		lit, ok := s.number()
		if !ok {
			return s.errorf("%s: want an integer", c.Name)
		}
		v, err := strconv.ParseInt(string(lit), 10, 64)
		if err != nil {
			return s.errorf("%s: %v", c.Name, err)
		}
		f.Int = v
	case Text:
		start := len(s.line) - len(s.b) + 1
		raw, ok := s.rawString()
		if !ok {
			return s.errorf("%s: want a string", c.Name)
		}
		if bytes.IndexByte(raw, '\\') < 0 && utf8.Valid(raw) {
			p.spans[col] = span{start: start, end: start + len(raw)}
			return nil
		}
		from := len(p.scratch)
		if p.scratch, ok = unescapeJSON(p.scratch, raw); !ok {
			return s.errorf("%s: bad escape", c.Name)
		}
		p.spans[col] = span{inScratch: true, start: from, end: len(p.scratch)}
	case Float64List:
		if !s.consume('[') {
			return s.errorf("%s: want a list of numbers", c.Name)
		}
		from := len(p.scratch)
		s.skipSpace()
		if !s.consume(']') {
			for {
				s.skipSpace()
				lit, ok := s.number()
				if !ok {
					return s.errorf("%s: want a number", c.Name)
				}
				v, err := strconv.ParseFloat(string(lit), 64)
				if err != nil {
					return s.errorf("%s: %v", c.Name, err)
				}
				p.scratch = binary.LittleEndian.AppendUint64(p.scratch, math.Float64bits(v))
				s.skipSpace()
				if s.consume(',') {
					continue
				}
				if s.consume(']') {
					break
				}
				return s.errorf("%s: want a comma or a closing bracket", c.Name)
			}
		}
		p.spans[col] = span{inScratch: true, start: from, end: len(p.scratch)}
	case Timestamp:
		start := len(s.line) - len(s.b)
		if _, ok := s.rawString(); !ok {
			return s.errorf("%s: want a timestamp string", c.Name)
		}
		// As decoding into a time.Time does: the literal as is, quotes
		// included, strict RFC 3339.
		var t time.Time
		if err := t.UnmarshalJSON(s.line[start : len(s.line)-len(s.b)]); err != nil {
			return s.errorf("%s: %v", c.Name, err)
		}
		f.Int, f.Nsec = t.Unix(), int64(t.Nanosecond())
	}
	return nil
}

// jsonScanner walks one line of JSON.
type jsonScanner struct {
	line, b []byte
}

func (s *jsonScanner) errorf(format string, args ...any) error {
	return fmt.Errorf("transforms: bad JSON row at offset %d: %s", len(s.line)-len(s.b), fmt.Sprintf(format, args...))
}

func (s *jsonScanner) skipSpace() {
	for len(s.b) > 0 && (s.b[0] == ' ' || s.b[0] == '\t' || s.b[0] == '\n' || s.b[0] == '\r') {
		s.b = s.b[1:]
	}
}

func (s *jsonScanner) consume(c byte) bool {
	if len(s.b) > 0 && s.b[0] == c {
		s.b = s.b[1:]
		return true
	}
	return false
}

func (s *jsonScanner) literal(lit string) bool {
	if len(s.b) >= len(lit) && string(s.b[:len(lit)]) == lit {
		s.b = s.b[len(lit):]
		return true
	}
	return false
}

// rawString reads a string and returns its contents as written (escapes
// not undone); control bytes inside it are an error, as in JSON.
func (s *jsonScanner) rawString() ([]byte, bool) {
	if len(s.b) == 0 || s.b[0] != '"' {
		return nil, false
	}
	for i := 1; i < len(s.b); i++ {
		switch c := s.b[i]; {
		case c == '"':
			raw := s.b[1:i]
			s.b = s.b[i+1:]
			return raw, true
		case c == '\\':
			i++
		case c < 0x20:
			return nil, false
		}
	}
	return nil, false
}

// number reads a number literal, checked against JSON's grammar
// (strconv alone would take "+1", "01", "0x1p3", "inf").
func (s *jsonScanner) number() ([]byte, bool) {
	n := jsonscan.Number(s.b)
	if n == 0 {
		return nil, false
	}
	lit := s.b[:n]
	s.b = s.b[n:]
	return lit, true
}

// unescapeJSON appends a string's contents with its escapes undone, as
// encoding/json does: invalid UTF-8 and lone surrogates become U+FFFD.
func unescapeJSON(dst, raw []byte) ([]byte, bool) {
	for i := 0; i < len(raw); {
		c := raw[i]
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRune(raw[i:])
			if r == utf8.RuneError && size == 1 {
				dst = utf8.AppendRune(dst, utf8.RuneError)
			} else {
				dst = append(dst, raw[i:i+size]...)
			}
			i += size
			continue
		}
		if c != '\\' {
			dst = append(dst, c)
			i++
			continue
		}
		if i+1 >= len(raw) {
			return dst, false
		}
		switch e := raw[i+1]; e {
		case '"', '\\', '/':
			dst = append(dst, e)
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r, ok := hex4(raw[i+2:])
			if !ok {
				return dst, false
			}
			i += 6
			if utf16.IsSurrogate(r) {
				if r2, ok := hex4(raw[min(i+2, len(raw)):]); ok && i+1 < len(raw) && raw[i] == '\\' && raw[i+1] == 'u' {
					if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
						dst = utf8.AppendRune(dst, dec)
						i += 6
						continue
					}
				}
				r = utf8.RuneError
			}
			dst = utf8.AppendRune(dst, r)
			continue
		default:
			return dst, false
		}
		i += 2
	}
	return dst, true
}

func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// JSONLinesReader reads a stream of one table's JSON lines (a table file
// the batch job wrote) as encoded rows, one line at a time: memory is the
// longest line, not the stream. Blank lines are skipped. Errors name the
// row's line number.
type JSONLinesReader struct {
	r      *bufio.Reader
	parser *JSONRowParser
	long   []byte // a line longer than the buffer, put together
	line   int
	key    int64
	row    []byte
	err    error
}

// NewJSONLinesReader returns a reader of the table's JSON lines from r.
func NewJSONLinesReader(r io.Reader, s *Schema) *JSONLinesReader {
	return &JSONLinesReader{r: bufio.NewReaderSize(r, 1<<16), parser: NewJSONRowParser(s)}
}

// Next reads the next row; false at the end or on an error (Err).
func (j *JSONLinesReader) Next() bool {
	for j.err == nil {
		line, err := j.r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			j.long = append(j.long[:0], line...)
			for errors.Is(err, bufio.ErrBufferFull) {
				line, err = j.r.ReadSlice('\n')
				j.long = append(j.long, line...)
			}
			line = j.long
		}
		if err != nil && err != io.EOF {
			j.err = err
			return false
		}
		if len(line) == 0 && err == io.EOF {
			return false
		}
		j.line++
		if len(bytes.TrimSpace(line)) == 0 {
			if err == io.EOF {
				return false
			}
			continue
		}
		key, row, perr := j.parser.Parse(line)
		if perr != nil {
			j.err = fmt.Errorf("row %d: %w", j.line, perr)
			return false
		}
		j.key, j.row = key, row
		return true
	}
	return false
}

// Key is the row's ind; Row its encoding, valid until Next.
func (j *JSONLinesReader) Key() int64  { return j.key }
func (j *JSONLinesReader) Row() []byte { return j.row }
func (j *JSONLinesReader) Err() error  { return j.err }
