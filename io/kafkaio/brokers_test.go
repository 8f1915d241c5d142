package kafkaio

import (
	"slices"
	"testing"
)

func TestParseBrokers(t *testing.T) {
	for in, want := range map[string][]string{
		"127.0.0.1:9092": {"127.0.0.1:9092"},
		"a:1,b:2":        {"a:1", "b:2"},
		" a:1 , b:2 ,":   {"a:1", "b:2"},
		"a:1,,\tb:2\n":   {"a:1", "b:2"},
		"":               nil,
		" , ":            nil,
	} {
		if got := ParseBrokers(in); !slices.Equal(got, want) {
			t.Errorf("ParseBrokers(%q) = %q, want %q", in, got, want)
		}
	}
}
