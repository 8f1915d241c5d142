package report

import (
	"testing"
	"time"
)

func TestFormat(t *testing.T) {
	for _, c := range []struct {
		v              float64
		exact, compact string
	}{
		{0, "0", "0"},
		{7, "7", "7"},
		{875, "875", "875"},
		{948.5, "948.5", "948.5"},
		{1000, "1,000", "1k"},
		{43750, "43,750", "43.8k"},
		{43750.5, "43,750.5", "43.8k"},
		{81500, "81,500", "81.5k"},
		{100750, "100,750", "101k"},
		{497514, "497,514", "498k"},
		{999999, "999,999", "1M"},
		{1000000, "1,000,000", "1M"},
		{7000000, "7,000,000", "7M"},
		{2500000000, "2,500,000,000", "2.5B"},
		{-1234, "-1,234", "-1.23k"},
	} {
		if got := exact(c.v); got != c.exact {
			t.Errorf("exact(%v) = %q, want %q", c.v, got, c.exact)
		}
		if got := compact(c.v); got != c.compact {
			t.Errorf("compact(%v) = %q, want %q", c.v, got, c.compact)
		}
	}
}

func TestNiceScale(t *testing.T) {
	for _, c := range []struct {
		max       float64
		whole     bool
		top, step float64
	}{
		{0, true, 1, 1},
		{3, true, 3, 1},
		{16, true, 20, 5},
		{39, true, 40, 10},
		{307000, false, 400000, 100000},
		{1000000, false, 1000000, 200000},
		{0.3, false, 0.3, 0.1},
	} {
		top, step := niceScale(c.max, c.whole)
		if !near(top, c.top) || !near(step, c.step) {
			t.Errorf("niceScale(%v, %v) = %v, %v; want %v, %v", c.max, c.whole, top, step, c.top, c.step)
		}
	}
}

func near(a, b float64) bool { return a-b < 1e-9 && b-a < 1e-9 }

func TestFit(t *testing.T) {
	if got := fit("Antigua and Barbuda", 1000, 12); got != "Antigua and Barbuda" {
		t.Errorf("fit changed a label that fits: %q", got)
	}
	got := fit("Saint Vincent and the Grenadines", 80, 12)
	if textWidth(got, 12) > 80 || got[len(got)-len("…"):] != "…" {
		t.Errorf("fit = %q (%.0fpx), want at most 80px ending in an ellipsis", got, textWidth(got, 12))
	}
}

func TestDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "–", 450 * time.Millisecond: "450ms", 3200 * time.Millisecond: "3.2 s", 95 * time.Second: "1m35s",
	} {
		if got := duration(d); got != want {
			t.Errorf("duration(%v) = %q, want %q", d, got, want)
		}
	}
}
