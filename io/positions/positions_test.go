package positions

import (
	"slices"
	"strconv"
	"testing"
)

func TestMerge(t *testing.T) {
	big := "49590338271490256608559692538361571095921575989136588898"
	got := Merge([]Span{
		{Stream: "s", Part: "b", From: "0", To: "4"},
		{Stream: "s", Part: "a", From: "10", To: "12"},
		{Stream: "s", Part: "a", From: "0", To: "9"}, // touches 10
		{Stream: "s", Part: "a", From: "14", To: "20"},
		{Stream: "s", Part: "a", From: "15", To: "16"}, // inside
		{Stream: "s", Part: "b", From: Next(big), To: Next(Next(big))},
		{Stream: "s", Part: "b", From: "5", To: big},
	})
	want := []Span{
		{Stream: "s", Part: "a", From: "0", To: "12"},
		{Stream: "s", Part: "a", From: "14", To: "20"},
		{Stream: "s", Part: "b", From: "0", To: Next(Next(big))},
	}
	if !slices.Equal(got, want) {
		t.Errorf("Merge: %v, want %v", got, want)
	}
	if Compare("9", "10") >= 0 || Compare("10", "9") <= 0 || Compare("7", "7") != 0 || Next("99") != "100" {
		t.Error("Compare or Next is not numeric")
	}
}

func TestParseReadCounter(t *testing.T) {
	name := readCounterName("kinesis", "streaming-p-pin", "shardId-000000000001")
	source, stream, part, ok := ParseReadCounter(name)
	if !ok || source != "kinesis" || stream != "streaming-p-pin" || part != "shardId-000000000001" {
		t.Errorf("ParseReadCounter(%q) = %q %q %q %v", name, source, stream, part, ok)
	}
	for _, bad := range []string{"", "kafka", "kafka/t", "kafka//0", "/t/0", "kafka/t/", "kafka/t/0/1"} {
		if _, _, _, ok := ParseReadCounter(bad); ok {
			t.Errorf("ParseReadCounter(%q) ok", bad)
		}
	}
}

// TestMergeOffsets: Kafka's offsets, a base at 0 ([0, -1]) among them.
func TestMergeOffsets(t *testing.T) {
	o := func(topic string, part, from, to int) Span {
		return Span{Stream: topic, Part: strconv.Itoa(part), From: strconv.Itoa(from), To: strconv.Itoa(to)}
	}
	got := Merge([]Span{
		o("b", 0, 5, 9), o("a", 1, 0, 3), o("a", 0, 10, 12), o("a", 0, 0, -1), o("a", 0, 0, 4),
		o("a", 0, 5, 5), o("a", 0, 8, 9), o("a", 1, 2, 2),
	})
	want := []Span{o("a", 0, 0, 5), o("a", 0, 8, 12), o("a", 1, 0, 3), o("b", 0, 5, 9)}
	if !slices.Equal(got, want) {
		t.Errorf("Merge: %v, want %v", got, want)
	}
}

func TestCompare(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"9", "10", -1}, {"10", "9", 1}, {"7", "7", 0}, {"123", "124", -1},
		{"-1", "0", -1}, {"0", "-1", 1}, {"-1", "-1", 0}, {"-2", "-1", -1}, {"-10", "-9", -1}, {"-1", "5", -1},
		{"49590338271490256608559692538361571095921575989136588898", "9223372036854775807", 1},
	} {
		if got := Compare(tc.a, tc.b); got != tc.want {
			t.Errorf("Compare(%s, %s) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}

// sp is a span of partition part of stream "t".
func sp(part, from, to string) Span { return Span{Stream: "t", Part: part, From: from, To: to} }

// TestSettle is the unbroken run of written spans as both stores keep it:
// a base (the empty run where a read began), spans beyond a gap waiting,
// a gap closed, overlaps, spans already recorded.
func TestSettle(t *testing.T) {
	for _, tc := range []struct {
		name            string
		recorded, added []Span
		want            []Span
		changed         bool
		run             Span // FirstRun(want)
	}{
		{name: "first spans", added: []Span{sp("0", "0", "4")}, want: []Span{sp("0", "0", "4")}, changed: true, run: sp("0", "0", "4")},
		{name: "the base at 0 joins the first span",
			recorded: []Span{sp("0", "0", "-1")}, added: []Span{sp("0", "0", "4")},
			want: []Span{sp("0", "0", "4")}, changed: true, run: sp("0", "0", "4")},
		{name: "the base alone", recorded: []Span{sp("0", "100", "99")},
			want: []Span{sp("0", "100", "99")}, run: sp("0", "100", "99")},
		{name: "a span beyond a gap waits",
			recorded: []Span{sp("0", "100", "99")}, added: []Span{sp("0", "150", "199")},
			want: []Span{sp("0", "100", "99"), sp("0", "150", "199")}, changed: true, run: sp("0", "100", "99")},
		{name: "the gap closes",
			recorded: []Span{sp("0", "100", "120"), sp("0", "150", "199")}, added: []Span{sp("0", "121", "149"), sp("0", "130", "140")},
			want: []Span{sp("0", "100", "199")}, changed: true, run: sp("0", "100", "199")},
		{name: "already recorded",
			recorded: []Span{sp("0", "100", "120")}, added: []Span{sp("0", "105", "110"), sp("0", "100", "120")},
			want: []Span{sp("0", "100", "120")}, run: sp("0", "100", "120")},
		{name: "recorded unmerged, nothing added",
			recorded: []Span{sp("0", "5", "9"), sp("0", "0", "4")},
			want:     []Span{sp("0", "0", "9")}, run: sp("0", "0", "9")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			all, changed := Settle(tc.recorded, tc.added)
			if !slices.Equal(all, tc.want) || changed != tc.changed {
				t.Errorf("Settle = %v, changed %v; want %v, changed %v", all, changed, tc.want, tc.changed)
			}
			if run, ok := FirstRun(all); !ok || run != tc.run {
				t.Errorf("FirstRun = %v, %v; want %v", run, ok, tc.run)
			}
		})
	}
	if _, ok := FirstRun(nil); ok {
		t.Error("FirstRun of no spans is a run")
	}
}

func TestByPart(t *testing.T) {
	got := ByPart([]Span{sp("1", "0", "3"), sp("0", "10", "12"), {Stream: "s", Part: "0", From: "0", To: "1"},
		sp("0", "0", "4"), sp("1", "2", "2"), sp("0", "5", "5")})
	want := [][]Span{
		{{Stream: "s", Part: "0", From: "0", To: "1"}},
		{sp("0", "0", "5"), sp("0", "10", "12")},
		{sp("1", "0", "3")},
	}
	if len(got) != len(want) {
		t.Fatalf("ByPart = %v, want %v", got, want)
	}
	for i := range want {
		if !slices.Equal(got[i], want[i]) {
			t.Errorf("ByPart[%d] = %v, want %v", i, got[i], want[i])
		}
	}
}
