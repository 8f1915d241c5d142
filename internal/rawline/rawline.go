// Package rawline is the lossless line form of the records the S3 sink
// writes (one record a line) and the batch job reads: every record value
// reaches the batch job, or its dead letters, byte for byte.
//
// A value is written as it is when it is a line of UTF-8 text: not empty,
// valid UTF-8, without a line break or another control character but tab,
// and not beginning as the wrapped form does. Any other value (multi-line JSON, binary, invalid
// UTF-8, empty, or text that begins like the wrapped form) is written
// wrapped, as a JSON object with one field holding its bytes in standard
// base64:
//
//	{"__pinpipe_raw_base64":"AAEC/w=="}
//
// Decode turns a line back into the value: it unwraps exactly that form and
// returns every other line unchanged. A real record never collides with
// the wrapped form, because a value that begins with its prefix is always
// written wrapped; so Decode(Encode(v)) == v for every v.
package rawline

import (
	"bytes"
	"encoding/base64"
	"unicode/utf8"
)

// Field is the wrapped form's one field.
const Field = "__pinpipe_raw_base64"

var (
	prefix = []byte(`{"` + Field + `":"`)
	suffix = []byte(`"}`)
	// marker is what a value may not begin with to be written as it is.
	marker = []byte(`{"` + Field + `"`)
	strict = base64.StdEncoding.Strict()
)

// Plain reports whether v is written as it is: a non-empty line of UTF-8
// text (no control character but tab) that does not begin as the wrapped
// form does.
func Plain(v []byte) bool {
	if len(v) == 0 || bytes.HasPrefix(v, marker) {
		return false
	}
	for _, c := range v {
		if c < 0x20 && c != '\t' || c == 0x7f {
			return false
		}
	}
	return utf8.Valid(v)
}

// Encode returns the line for value v (without the newline): v itself if
// Plain(v), else the wrapped form. It never holds a line break.
func Encode(v []byte) []byte {
	if Plain(v) {
		return v
	}
	return AppendWrapped(nil, v)
}

// AppendWrapped appends the wrapped form of v to dst.
func AppendWrapped(dst, v []byte) []byte {
	dst = append(dst, prefix...)
	dst = base64.StdEncoding.AppendEncode(dst, v)
	return append(dst, suffix...)
}

// Decode returns the value a line stands for: the bytes of a wrapped line,
// any other line as it is. The batch job calls it on every line it reads.
func Decode(line []byte) []byte {
	v, _ := Unwrap(line)
	return v
}

// Unwrap is Decode that also reports whether the line was wrapped. A line
// that begins as the wrapped form but is not exactly what Encode writes
// (other fields, spaces, base64 that is not canonical) is returned as it
// is, unwrapped: a record for the batch job to refuse.
func Unwrap(line []byte) (v []byte, wrapped bool) {
	if len(line) < len(prefix)+len(suffix) || !bytes.HasPrefix(line, prefix) || !bytes.HasSuffix(line, suffix) {
		return line, false
	}
	b64 := line[len(prefix) : len(line)-len(suffix)]
	out, err := strict.AppendDecode(make([]byte, 0, strict.DecodedLen(len(b64))), b64)
	if err != nil || strict.EncodedLen(len(out)) != len(b64) { // (the decoder skips line breaks)
		return line, false
	}
	return out, true
}
