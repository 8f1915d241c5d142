package rawline

import (
	"bytes"
	"encoding/json"
	"testing"
)

func TestEncodeDecode(t *testing.T) {
	for _, c := range []struct {
		in, line string
		plain    bool
	}{
		{`{"a":1}`, `{"a":1}`, true},
		{`{"s":"x\ny"}`, `{"s":"x\ny"}`, true}, // an escaped newline is no line break
		{"not json", "not json", true},
		{"caf\u00e9 \U0001F600", "caf\u00e9 \U0001F600", true},
		{`{ "__pinpipe_raw_base64":"aGk="}`, `{ "__pinpipe_raw_base64":"aGk="}`, true}, // not the form: a space
		{"{\n  \"a\": 2\n}\n", `{"__pinpipe_raw_base64":"ewogICJhIjogMgp9Cg=="}`, false},
		{"line\r", `{"__pinpipe_raw_base64":"bGluZQ0="}`, false},
		{"bad \xff bytes", `{"__pinpipe_raw_base64":"YmFkIP8gYnl0ZXM="}`, false},
		{"\xed\xa0\x80", `{"__pinpipe_raw_base64":"7aCA"}`, false}, // a surrogate in UTF-8: not UTF-8
		{"", `{"__pinpipe_raw_base64":""}`, false},
		{"\x00\x01", `{"__pinpipe_raw_base64":"AAE="}`, false},
		{"a\tb", "a\tb", true},
		{"del\x7f", `{"__pinpipe_raw_base64":"ZGVsfw=="}`, false},
		// A real record in the wrapped form is wrapped again, so that
		// Decode gives it back as it was.
		{`{"__pinpipe_raw_base64":"aGk="}`, `{"__pinpipe_raw_base64":"eyJfX3BpbnBpcGVfcmF3X2Jhc2U2NCI6ImFHaz0ifQ=="}`, false},
		{`{"__pinpipe_raw_base64":1,"a":2}`, `{"__pinpipe_raw_base64":"eyJfX3BpbnBpcGVfcmF3X2Jhc2U2NCI6MSwiYSI6Mn0="}`, false},
	} {
		line := Encode([]byte(c.in))
		if string(line) != c.line || Plain([]byte(c.in)) != c.plain {
			t.Errorf("Encode(%q) = %q (plain %v); want %q (plain %v)", c.in, line, Plain([]byte(c.in)), c.line, c.plain)
		}
		if bytes.ContainsAny(line, "\r\n") || !json.Valid(line) && !c.plain {
			t.Errorf("Encode(%q) = %q: a line break, or a wrapped line that is not JSON", c.in, line)
		}
		got, wrapped := Unwrap(line)
		if string(got) != c.in || wrapped == c.plain {
			t.Errorf("Unwrap(%q) = %q, %v; want %q, %v", line, got, wrapped, c.in, !c.plain)
		}
	}
	// Lines that look like the form but are not exactly it pass as they
	// are: records for the batch job to refuse.
	for _, line := range []string{
		`{"__pinpipe_raw_base64":"not base64!"}`,
		`{"__pinpipe_raw_base64":"aGk="} `,
		`{"__pinpipe_raw_base64":"aGk"}`,
		`{"__pinpipe_raw_base64":"aGk=","x":1}`,
		`{"__pinpipe_raw_base64":"`,
		`{"__pinpipe_raw_base64"}`,
		`{"__pinpipe_raw_base64":"aGl="}`, // padding bits set
		"{\"__pinpipe_raw_base64\":\"aG\nk=\"}",
	} {
		if got, wrapped := Unwrap([]byte(line)); wrapped || string(got) != line {
			t.Errorf("Unwrap(%q) = %q, %v", line, got, wrapped)
		}
	}
}

// FuzzRoundTrip: every value comes back byte for byte through its line,
// and no line holds a line break; any line decodes without a panic.
func FuzzRoundTrip(f *testing.F) {
	for _, s := range []string{`{"a":1}`, "a\nb", "\xff", "", `{"__pinpipe_raw_base64":"aGk="}`, `{"__pinpipe_raw_base64":""}`, "\r\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, v []byte) {
		line := Encode(v)
		if bytes.ContainsAny(line, "\r\n") || len(line) == 0 {
			t.Fatalf("Encode(%q) = %q", v, line)
		}
		if got := Decode(line); !bytes.Equal(got, v) {
			t.Fatalf("Decode(Encode(%q)) = %q", v, got)
		}
		// v read as a line (as the batch job reads any line).
		if got, wrapped := Unwrap(v); wrapped {
			if !bytes.Equal(AppendWrapped(nil, got), v) {
				t.Fatalf("a wrapped line %q decodes to %q, which wraps to %q", v, got, AppendWrapped(nil, got))
			}
		} else if !bytes.Equal(got, v) {
			t.Fatalf("Unwrap changed an unwrapped line %q to %q", v, got)
		}
	})
}

func BenchmarkDecodePlain(b *testing.B) {
	line := []byte(`{"index":7528,"unique_id":"fbe53c66-3442-4773-b19e-d3ec6f54dddf","title":"No Title Data Available","follower_count":"0"}`)
	b.SetBytes(int64(len(line)))
	for b.Loop() {
		Decode(line)
	}
}
