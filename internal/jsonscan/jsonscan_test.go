package jsonscan

import "testing"

func TestNumber(t *testing.T) {
	for in, want := range map[string]int{
		"0": 1, "-0": 2, "12,": 2, "1.5e+3]": 6, "-1.25E-2}": 8, "3e7": 3,
		"": 0, "-": 0, "01": 1, ".5": 0, "1.": 0, "1e": 0, "1e+": 0, "x": 0, "+1": 0,
	} {
		if got := Number([]byte(in)); got != want {
			t.Errorf("Number(%q) = %d, want %d", in, got, want)
		}
	}
}

func TestIsHex(t *testing.T) {
	for c := range 256 {
		want := (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
		if IsHex(byte(c)) != want {
			t.Errorf("IsHex(%q) = %v", byte(c), !want)
		}
	}
}
