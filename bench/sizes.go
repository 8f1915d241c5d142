package main

import (
	"flag"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// postsList is the -posts flag: the input sizes, ascending.
type postsList []int

func postsFlag(name string, def []int, usage string) *postsList {
	p := postsList(def)
	flag.Var(&p, name, usage)
	return &p
}

func (p *postsList) String() string {
	if p == nil {
		return ""
	}
	var parts []string
	for _, n := range *p {
		parts = append(parts, strconv.Itoa(n))
	}
	return strings.Join(parts, ",")
}

func (p *postsList) Set(s string) error {
	l, err := parsePosts(s)
	if err != nil {
		return err
	}
	*p = l
	return nil
}

// parsePosts reads a comma-separated list of post counts: digits, with
// optional _ separators and a k or M suffix (1000000, 1_000_000, 1M, 500k).
// The sizes come back ascending; zero, negative and repeated sizes are
// errors.
func parsePosts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		f = strings.ReplaceAll(strings.TrimSpace(f), "_", "")
		mult := 1
		switch {
		case strings.HasSuffix(f, "k"):
			mult, f = 1_000, strings.TrimSuffix(f, "k")
		case strings.HasSuffix(f, "M"):
			mult, f = 1_000_000, strings.TrimSuffix(f, "M")
		}
		n, err := strconv.Atoi(f)
		if err != nil || f == "" || f[0] < '0' || f[0] > '9' {
			return nil, fmt.Errorf("posts %q: not a number of posts", s)
		}
		if n <= 0 || n > 1<<40/mult {
			return nil, fmt.Errorf("posts %q: sizes must be positive", s)
		}
		n *= mult
		if slices.Contains(out, n) {
			return nil, fmt.Errorf("posts %q: %d twice", s, n)
		}
		out = append(out, n)
	}
	slices.Sort(out)
	return out, nil
}

// sizesName is the sizes for a file name: 20000 or 20000-50000.
func sizesName(sizes []int) string {
	var parts []string
	for _, n := range sizes {
		parts = append(parts, strconv.Itoa(n))
	}
	return strings.Join(parts, "-")
}

// sizesText is the sizes for a sentence: "1,000,000, 3,000,000 and
// 10,000,000".
func sizesText(sizes []int) string {
	var parts []string
	for _, n := range sizes {
		parts = append(parts, thousands(int64(n)))
	}
	if len(parts) <= 1 {
		return strings.Join(parts, "")
	}
	return strings.Join(parts[:len(parts)-1], ", ") + " and " + parts[len(parts)-1]
}

// thousands formats n with commas: 1,000,000.
func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}
