package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCompareInsight(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	goStyle := write("a.json", `[
  {"join_year": 2015, "median_follower_count": 35800},
  {"join_year": 2016, "median_follower_count": 25200.5}
]`)
	duckStyle := write("b.json", "[\n\t{\"join_year\":2015,\"median_follower_count\":35800.0},\n\t{\"join_year\":2016,\"median_follower_count\":25200.5000000001}\n]")
	swapped := write("c.json", `[{"join_year": 2016, "median_follower_count": 25200.5}, {"join_year": 2015, "median_follower_count": 35800}]`)
	other := write("d.json", `[{"join_year": 2015, "median_follower_count": 35800}, {"join_year": 2016, "median_follower_count": 25201}]`)
	short := write("e.json", `[{"join_year": 2015, "median_follower_count": 35800}]`)

	if d := compareInsight(goStyle, duckStyle); d != "" {
		t.Errorf("equal insights differ: %s", d)
	}
	for _, c := range []struct{ file, want string }{
		{swapped, "another order"}, {other, "row 1"}, {short, "2 rows vs 1 rows"}, {"", "missing file"},
	} {
		if d := compareInsight(goStyle, c.file); !strings.Contains(d, c.want) {
			t.Errorf("compareInsight(%s) = %q, want it to say %q", c.file, d, c.want)
		}
	}
}
