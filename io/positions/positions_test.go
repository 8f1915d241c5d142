package positions

import (
	"slices"
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
