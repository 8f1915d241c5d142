package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParsePosts(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []int
	}{
		{"1000000", []int{1_000_000}},
		{"1000000,3000000,10000000", []int{1_000_000, 3_000_000, 10_000_000}},
		{"10M, 1M,3M", []int{1_000_000, 3_000_000, 10_000_000}},
		{"500k,1_000_000", []int{500_000, 1_000_000}},
		{"20000", []int{20_000}},
	} {
		got, err := parsePosts(c.in)
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("parsePosts(%q) = %v, %v; want %v", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{"", "0", "-5", "1M,1000000", "abc", "1,,2", "1G", "+5", "k", "3.5M"} {
		if got, err := parsePosts(bad); err == nil {
			t.Errorf("parsePosts(%q) = %v, want an error", bad, got)
		}
	}
}

func TestPostsFlag(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	p := postsList{1_000_000}
	fs.Var(&p, "posts", "")
	if err := fs.Parse([]string{"-posts=3000000,1000000"}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(p, postsList{1_000_000, 3_000_000}) || p.String() != "1000000,3000000" {
		t.Errorf("-posts: %v (%q)", p, p.String())
	}
	if err := fs.Parse([]string{"-posts=0"}); err == nil {
		t.Error("-posts=0 accepted")
	}
	if got := sizesText([]int{1_000_000, 3_000_000, 10_000_000}); got != "1,000,000, 3,000,000 and 10,000,000" {
		t.Errorf("sizesText: %q", got)
	}
	if got := sizesName([]int{5000, 20000}); got != "5000-20000" {
		t.Errorf("sizesName: %q", got)
	}
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 123456789: "123,456,789", -1234: "-1,234"} {
		if got := thousands(n); got != want {
			t.Errorf("thousands(%d) = %q, want %q", n, got, want)
		}
	}
}

// TestBestRun: of an engine's tries the report takes a successful one, then
// a quiet one (other processes under busyCores), then the fastest; busy()
// warns about a disturbed or loaded run.
func TestBestRun(t *testing.T) {
	e := engine{name: "x"}
	fastBusy := &run{engine: e, Wall: 10 * time.Second, OtherCPU: 5 * time.Second, LoadBefore: "0.10"}
	slowQuiet := &run{engine: e, Wall: 12 * time.Second, OtherCPU: time.Second, LoadBefore: "0.10"}
	slowerQuiet := &run{engine: e, Wall: 13 * time.Second, LoadBefore: "0.10"}
	failed := &run{engine: e, Wall: time.Second, Err: errors.New("boom")}
	if got := bestRun([]*run{fastBusy, slowerQuiet, slowQuiet, failed}); got != slowQuiet {
		t.Errorf("bestRun picked %+v, want the fastest quiet run", got)
	}
	if got := bestRun([]*run{failed, fastBusy}); got != fastBusy {
		t.Errorf("bestRun picked %+v, want the successful run", got)
	}
	if !fastBusy.busy() || slowQuiet.busy() {
		t.Errorf("busy: %.2f cores %v, %.2f cores %v", fastBusy.otherCores(), fastBusy.busy(), slowQuiet.otherCores(), slowQuiet.busy())
	}
	b := &bench{runs: []*run{slowQuiet}}
	if w := b.busy(); w != "" {
		t.Errorf("a quiet run warned: %s", w)
	}
	loaded := &run{engine: engine{name: "y"}, Wall: time.Second, LoadBefore: fmt.Sprintf("%.2f", quietLoad()+1)}
	b.runs = append(b.runs, fastBusy, loaded)
	if w := b.busy(); !strings.Contains(w, "x (0.50 cores)") || !strings.Contains(w, "at the start of y") {
		t.Errorf("busy() = %q", w)
	}
}
