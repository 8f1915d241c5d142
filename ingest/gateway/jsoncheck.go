package gateway

import (
	"fmt"
	"unicode/utf8"

	"github.com/pinpipe/pinpipe/internal/jsonscan"
)

// Limits on the JSON text of a record that the gateway passes on as JSON (a
// REST Proxy json-format key or value, a Kinesis Data), so that what reaches
// Kafka or Kinesis is JSON every consumer can read: encoding/json accepts
// invalid UTF-8 inside strings, lone UTF-16 surrogate escapes, 10,000
// levels of nesting and numbers of any length, where stricter decoders
// (Jackson, serde_json, Python's json) refuse them or run out of stack.
const (
	// DefaultMaxJSONDepth is the deepest nesting of a record's JSON accepted
	// by default (Config.MaxJSONDepth).
	DefaultMaxJSONDepth = 128
	// DefaultMaxNumberChars is the longest JSON number accepted by default
	// (Config.MaxNumberChars): Jackson's default limit.
	DefaultMaxNumberChars = 1000
)

// jsonLimits are the limits checkJSON applies.
type jsonLimits struct {
	depth, number int
}

// checkJSON checks valid JSON text raw (its syntax already checked, by
// encoding/json or the produce scanner) against the limits, and says what
// is wrong with it ("" if nothing): bytes that are not UTF-8, a lone
// surrogate escape, nesting deeper than lim.depth, a number longer than
// lim.number characters.
func checkJSON(raw []byte, lim jsonLimits) string {
	if !utf8.Valid(raw) {
		return "is not valid UTF-8"
	}
	depth := 0
	for i := 0; i < len(raw); {
		switch c := raw[i]; {
		case c == '"':
			j, ok := skipString(raw, i+1)
			if !ok {
				return `holds a lone UTF-16 surrogate escape (\uD800 to \uDFFF without its pair), which is not Unicode text`
			}
			i = j
		case c == '[' || c == '{':
			if depth++; depth > lim.depth {
				return fmt.Sprintf("nests deeper than the limit of %d levels", lim.depth)
			}
			i++
		case c == ']' || c == '}':
			depth--
			i++
		case c == '-' || (c >= '0' && c <= '9'):
			n := jsonscan.Number(raw[i:])
			if n == 0 {
				n = 1
			}
			if n > lim.number {
				return fmt.Sprintf("holds a number of %d characters, over the limit of %d", n, lim.number)
			}
			i += n
		default:
			i++
		}
	}
	return ""
}

// skipString skips a valid JSON string's text from start (just after its
// opening quote) and returns the index after its closing quote; ok is false
// if it holds a lone surrogate escape.
func skipString(d []byte, start int) (end int, ok bool) {
	for i := start; i < len(d); {
		switch d[i] {
		case '"':
			return i + 1, true
		case '\\':
			if i+1 < len(d) && d[i+1] == 'u' {
				n, ok := surrogateEscape(d, i)
				if !ok {
					return 0, false
				}
				i += n
				continue
			}
			i += 2
		default:
			i++
		}
	}
	return len(d), true
}

// surrogateEscape looks at the \u escape at d[i:] (its four hex digits
// already validated) and returns its length: 6, or 12 for a surrogate
// pair. ok is false for a lone surrogate.
func surrogateEscape(d []byte, i int) (n int, ok bool) {
	r := hex4(d[i+2 : i+6])
	switch {
	case r < 0xD800 || r > 0xDFFF:
		return 6, true
	case r >= 0xDC00: // a low surrogate first
		return 0, false
	}
	if i+12 > len(d) || d[i+6] != '\\' || d[i+7] != 'u' || !isHex4(d[i+8:i+12]) {
		return 0, false
	}
	if lo := hex4(d[i+8 : i+12]); lo < 0xDC00 || lo > 0xDFFF {
		return 0, false
	}
	return 12, true
}

func isHex4(b []byte) bool {
	return jsonscan.IsHex(b[0]) && jsonscan.IsHex(b[1]) && jsonscan.IsHex(b[2]) && jsonscan.IsHex(b[3])
}

func hex4(b []byte) rune {
	var r rune
	for _, c := range b[:4] {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		case c >= 'A' && c <= 'F':
			r |= rune(c - 'A' + 10)
		}
	}
	return r
}
