package emulator

import (
	"bytes"
	"math"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/pinpipe/pinpipe/ingest/sourcedb"
)

func TestHistogram(t *testing.T) {
	var h histogram
	if h.quantile(0.5) != 0 {
		t.Error("quantile of no samples")
	}
	for i := 1; i <= 1000; i++ {
		h.add(time.Duration(i) * time.Microsecond)
	}
	h.add(-time.Second)   // clamped to 0
	h.add(24 * time.Hour) // far out, still counted
	near := func(got, want time.Duration) bool { return math.Abs(float64(got-want)) <= 0.07*float64(want) }
	if p := h.quantile(0.5); !near(p, 500*time.Microsecond) {
		t.Errorf("p50 = %s, want about 500µs", p)
	}
	if p := h.quantile(0.99); !near(p, 990*time.Microsecond) {
		t.Errorf("p99 = %s, want about 990µs", p)
	}
	if p := h.quantile(1); !near(p, 24*time.Hour) {
		t.Errorf("max = %s, want about 24h", p)
	}
	var m histogram
	m.merge(&h)
	m.merge(&h)
	if m.n != 2*h.n || m.quantile(0.5) != h.quantile(0.5) {
		t.Errorf("merge: %d samples, p50 %s", m.n, m.quantile(0.5))
	}
	// Buckets are ordered and every value lands within 1/16 of its bucket's middle.
	prev := 0
	for v := uint64(0); v < 1<<40; v = v + 1 + v/7 {
		b := bucketOf(v)
		if b < prev || b >= len(h.counts) {
			t.Fatalf("bucketOf(%d) = %d after %d", v, b, prev)
		}
		prev = b
		if mid := bucketMid(b); math.Abs(float64(mid)-float64(v)) > float64(v)/16+1 {
			t.Fatalf("value %d in a bucket around %d", v, mid)
		}
	}
	if b := bucketOf(math.MaxUint64); b >= len(h.counts) {
		t.Fatalf("bucketOf(max) = %d", b)
	}
}

func TestBackoff(t *testing.T) {
	s := &sender{baseBackoff: 100 * time.Millisecond, maxBackoff: 10 * time.Second}
	for attempt := 1; attempt <= 80; attempt++ {
		ceil := min(s.maxBackoff, s.baseBackoff<<min(attempt-1, 30))
		var top time.Duration
		for range 500 {
			d := s.backoff(attempt, 0)
			if d < 0 || d > ceil {
				t.Fatalf("attempt %d: backoff %s outside [0, %s]", attempt, d, ceil)
			}
			top = max(top, d)
		}
		if top < ceil/2 {
			t.Errorf("attempt %d: the largest of 500 backoffs is %s, of up to %s: not full jitter", attempt, top, ceil)
		}
	}
	for range 100 {
		if d := s.backoff(1, 3*time.Second); d < 3*time.Second {
			t.Fatalf("Retry-After 3s, backoff %s", d)
		}
		if d := s.backoff(1, time.Hour); d > maxRetryAfter {
			t.Fatalf("Retry-After 1h, backoff %s", d)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	for in, want := range map[string]time.Duration{"": 0, "0": 0, "3": 3 * time.Second, "-1": 0, "soon": 0} {
		if got := parseRetryAfter(in); got != want {
			t.Errorf("parseRetryAfter(%q) = %s, want %s", in, got, want)
		}
	}
	if d := parseRetryAfter(time.Now().Add(time.Hour).UTC().Format(http.TimeFormat)); d < 59*time.Minute || d > time.Hour {
		t.Errorf("an HTTP date an hour ahead: %s", d)
	}
}

func TestPacer(t *testing.T) {
	p := &pacer{interval: 25 * time.Millisecond}
	t0 := time.Now()
	for i := range 10 {
		if d := p.reserve(t0); d != time.Duration(i)*25*time.Millisecond {
			t.Fatalf("slot %d is %s after now", i, d)
		}
	}
	// After an idle spell, no burst to catch up: the next slot is now.
	if d := p.reserve(t0.Add(time.Hour)); d != 0 {
		t.Errorf("after an hour idle, wait %s", d)
	}
	if d := p.reserve(t0.Add(time.Hour)); d != 25*time.Millisecond {
		t.Errorf("then %s", d)
	}
}

func TestSeedPace(t *testing.T) {
	e := &run{}
	n := map[time.Duration]int{}
	for k := range int64(1000) {
		n[seedPace(e.postRNG(k))]++
	}
	if len(n) != 2 || n[0] < 400 || n[time.Second] < 400 {
		t.Errorf("waits %v, want 0 s and 1 s about equally", n)
	}
}

func TestPayloadValues(t *testing.T) {
	zone := time.FixedZone("UTC+13", 13*3600)
	row := &sourcedb.Row{
		Columns: []string{"z", "a", "t", "tz", "f", "nan", "i", "u", "s"},
		Values: []any{nil, int32(7), time.Date(2020, 8, 28, 3, 52, 47, 999, time.UTC), time.Date(2020, 8, 28, 16, 52, 47, 0, zone),
			-5.34, math.NaN(), int64(1) << 60, [16]byte{0xfb, 0xe5, 0x3c, 0x66, 0x34, 0x42, 0x47, 0x73, 0xb1, 0x9f, 0xd3, 0xec, 0x6f, 0x54, 0xdd, 0xdf},
			`Zoë's <b>"tips"</b> & more`},
	}
	var b bytes.Buffer
	if err := appendObject(&b, row); err != nil {
		t.Fatal(err)
	}
	want := `{"z":null,"a":7,"t":"2020-08-28 03:52:47","tz":"2020-08-28 03:52:47","f":-5.34,"nan":null,"i":1152921504606846976,` +
		`"u":"fbe53c66-3442-4773-b19f-d3ec6f54dddf","s":"Zoë's <b>\"tips\"</b> & more"}`
	if b.String() != want {
		t.Errorf("object\n got %s\nwant %s", b.String(), want)
	}
}

func TestJoinURL(t *testing.T) {
	for base, want := range map[string]string{
		"http://127.0.0.1:8082":       "http://127.0.0.1:8082/topics/p.pin",
		"http://127.0.0.1:8082/":      "http://127.0.0.1:8082/topics/p.pin",
		"https://x.example/prod":      "https://x.example/prod/topics/p.pin",
		"https://x.example/prod/v1/":  "https://x.example/prod/v1/topics/p.pin",
		"https://x.example/a%2Fb/api": "https://x.example/a%2Fb/api/topics/p.pin",
	} {
		u, err := url.Parse(base)
		if err != nil {
			t.Fatal(err)
		}
		if got := joinURL(u, "topics", "p.pin"); got != want {
			t.Errorf("joinURL(%s) = %s, want %s", base, got, want)
		}
	}
	u, _ := url.Parse("http://h")
	if got := joinURL(u, "streams", "streaming-a b/c-pin", "record"); got != "http://h/streams/streaming-a%20b%2Fc-pin/record" {
		t.Errorf("escaping: %s", got)
	}
}
