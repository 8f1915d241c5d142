package main

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pinpipe/pinpipe/transforms"
)

// The targets of the issue, at every size.
const (
	targetCleanVsDuck = 1.5     // Beam clean-only throughput >= 1.5x DuckDB's clean
	targetCleanVsGo   = 0.8     // Beam clean-only throughput >= 0.8x the plain Go clean
	targetFullWall    = 1.0     // Beam full wall time on prism <= 1.0x DuckDB's full
	targetRSS         = 1 << 30 // Beam full peak RSS on prism < 1 GiB
)

func (b *bench) find(name string) *run {
	for _, r := range b.runs {
		if r.name == name && r.Err == nil {
			return r
		}
	}
	return nil
}

// target is one target's verdict.
type target struct {
	what, value, goal string
	met               *bool // nil: not measured
}

func verdict(t target) string {
	switch {
	case t.met == nil:
		return "not measured"
	case *t.met:
		return "MET"
	}
	return "NOT MET"
}

func (b *bench) targets() []target {
	var ts []target
	cleans := []struct{ engine, what string }{
		{"beam-clean-prism", "Beam clean-only (prism; ReadLines + Clean*)"},
		{"beam-cleanfiles-prism", "Beam clean-only (prism; CleanToRuns, the batch job's clean)"},
	}
	for _, base := range []struct {
		engine, what string
		goal         float64
	}{{"duckdb-clean", "DuckDB clean", targetCleanVsDuck}, {"go-clean", "plain Go clean", targetCleanVsGo}} {
		den := b.find(base.engine)
		for _, v := range cleans {
			bc := b.find(v.engine)
			t := target{what: v.what + " throughput vs " + base.what, goal: fmt.Sprintf(">= %.2fx", base.goal)}
			if bc != nil && den != nil {
				x := bc.rate() / den.rate()
				t.value, t.met = fmt.Sprintf("%.2fx", x), ptr(x >= base.goal)
			}
			if bc != nil || v.engine == "beam-clean-prism" {
				ts = append(ts, t)
			}
		}
	}
	bf, df := b.find("beam-prism"), b.find("duckdb-full")
	t := target{what: "Beam full (prism) wall time vs DuckDB full", goal: fmt.Sprintf("<= %.2fx", targetFullWall)}
	if bf != nil && df != nil {
		x := bf.Wall.Seconds() / df.Wall.Seconds()
		t.value, t.met = fmt.Sprintf("%.2fx", x), ptr(x <= targetFullWall)
	}
	ts = append(ts, t)
	t = target{what: "Beam full (prism) peak RSS", goal: "< 1024 MiB"}
	if bf != nil {
		t.value, t.met = fmt.Sprintf("%.0f MiB", mib(bf.MaxRSS)), ptr(bf.MaxRSS < targetRSS)
	}
	ts = append(ts, t)
	return ts
}

func ptr[T any](v T) *T { return &v }

// otherRatios are informative comparisons, not targets.
func (b *bench) otherRatios() []string {
	var out []string
	pair := func(label, num, den string, wall bool) {
		x, y := b.find(num), b.find(den)
		if x == nil || y == nil {
			return
		}
		if wall {
			out = append(out, fmt.Sprintf("%s: %.2fx (wall time %s / %s)", label, x.Wall.Seconds()/y.Wall.Seconds(), num, den))
		} else {
			out = append(out, fmt.Sprintf("%s: %.2fx (throughput %s / %s)", label, x.rate()/y.rate(), num, den))
		}
	}
	cpu := func(label, num, den string) {
		x, y := b.find(num), b.find(den)
		if x == nil || y == nil || y.CPU == 0 {
			return
		}
		out = append(out, fmt.Sprintf("%s: %.2fx (CPU time %s / %s, i.e. the first uses that many times the CPU of the second; less sensitive than wall time to other load on the machine)",
			label, x.CPU.Seconds()/y.CPU.Seconds(), num, den))
	}
	cpu("Beam clean-only (prism; ReadLines + Clean*) vs DuckDB clean, CPU", "beam-clean-prism", "duckdb-clean")
	cpu("Beam clean-only (prism; CleanToRuns) vs DuckDB clean, CPU", "beam-cleanfiles-prism", "duckdb-clean")
	cpu("Beam full (prism) vs DuckDB full, CPU", "beam-prism", "duckdb-full")
	pair("plain Go clean vs DuckDB clean", "go-clean", "duckdb-clean", false)
	pair("Beam full (direct) vs DuckDB full", "beam-direct", "duckdb-full", true)
	pair("Beam full (prism) vs plain Go full", "beam-prism", "go-full", true)
	pair("plain Go full vs DuckDB full", "go-full", "duckdb-full", true)
	return out
}

// checks compares what the engines produced: the clean rows and the rows
// after deduplication per table, and the eight insights of the full jobs.
func (b *bench) checks() (notes, warnings []string) {
	for _, field := range []string{"read", "clean", "rejected", "rows"} {
		for _, t := range transforms.Tables {
			vals := map[int64][]string{}
			for _, r := range b.runs {
				if r.Err != nil {
					continue
				}
				c, ok := r.Counts[t]
				if !ok {
					continue
				}
				v := map[string]int64{"read": c.Read, "clean": c.Clean, "rejected": c.rejected(), "rows": c.Rows}[field]
				if v == unknown {
					continue
				}
				vals[v] = append(vals[v], r.name)
			}
			switch len(vals) {
			case 0:
			case 1:
				for v, names := range vals {
					notes = append(notes, fmt.Sprintf("%s: %s %d, the same in %d engines", t, countLabel[field], v, len(names)))
				}
			default:
				var parts []string
				for v, names := range vals {
					parts = append(parts, fmt.Sprintf("%d (%s)", v, strings.Join(names, ", ")))
				}
				slices.Sort(parts)
				warnings = append(warnings, fmt.Sprintf("WARNING: %s: %s differ between engines: %s", t, countLabel[field], strings.Join(parts, "; ")))
			}
		}
	}
	notes, warnings = b.checkReasons(notes, warnings)
	if r := b.find("go-full"); r != nil && r.Counts["pin"].Read >= 0 {
		var read int64
		for _, t := range transforms.Tables {
			read += r.Counts[t].Read
		}
		if read != b.input.Total {
			warnings = append(warnings, fmt.Sprintf("WARNING: plain Go read %d records, the input has %d", read, b.input.Total))
		}
	}

	if busy := b.busy(); busy != "" {
		warnings = append(warnings, busy)
	}

	// Insights: every full run against the first one that has them.
	var ref *run
	var refFiles map[string]string
	for _, r := range b.runs {
		if r.Err != nil || r.step != "full" {
			continue
		}
		files := insightFiles(r.Out)
		if len(files) == 0 {
			warnings = append(warnings, fmt.Sprintf("WARNING: %s wrote no insights", r.name))
			continue
		}
		if ref == nil {
			ref, refFiles = r, files
			continue
		}
		same := 0
		for _, n := range insightNames() {
			d := compareInsight(refFiles[n], files[n])
			if d == "" {
				same++
				continue
			}
			warnings = append(warnings, fmt.Sprintf("WARNING: insight %s differs between %s and %s: %s", n, ref.name, r.name, d))
		}
		notes = append(notes, fmt.Sprintf("insights of %s vs %s: %d of %d identical", r.name, ref.name, same, len(insightNames())))
	}
	return notes, warnings
}

func insightNames() []string {
	var in transforms.Insights
	var names []string
	for _, n := range in.Named() {
		names = append(names, n.Name)
	}
	return names
}

// compareInsight compares two insight files row by row: the same fields,
// numbers equal to 1e-9 relative. "" means equal.
func compareInsight(a, b string) string {
	ra, err := readInsight(a)
	if err != nil {
		return err.Error()
	}
	rb, err := readInsight(b)
	if err != nil {
		return err.Error()
	}
	if len(ra) != len(rb) {
		return fmt.Sprintf("%d rows vs %d rows", len(ra), len(rb))
	}
	for i := range ra {
		if ra[i] != rb[i] {
			sa, sb := slices.Sorted(slices.Values(ra)), slices.Sorted(slices.Values(rb))
			if slices.Equal(sa, sb) {
				return "the same rows in another order"
			}
			return fmt.Sprintf("row %d: %s vs %s", i, ra[i], rb[i])
		}
	}
	return ""
}

// readInsight reads an insight as canonical row strings.
func readInsight(name string) ([]string, error) {
	if name == "" {
		return nil, fmt.Errorf("missing file")
	}
	blob, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	var rows []map[string]any
	if err := json.Unmarshal(blob, &rows); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	out := make([]string, len(rows))
	for i, row := range rows {
		keys := slices.Sorted(func(yield func(string) bool) {
			for k := range row {
				if !yield(k) {
					return
				}
			}
		})
		var parts []string
		for _, k := range keys {
			v := row[k]
			if f, ok := v.(float64); ok {
				// Round to 9 significant digits: medians are x or x.5.
				v = strconv.FormatFloat(roundSig(f, 9), 'g', -1, 64)
			}
			parts = append(parts, fmt.Sprintf("%s=%v", k, v))
		}
		out[i] = strings.Join(parts, " ")
	}
	return out, nil
}

func roundSig(f float64, digits int) float64 {
	if f == 0 || math.IsInf(f, 0) || math.IsNaN(f) {
		return f
	}
	p := math.Pow(10, float64(digits)-math.Ceil(math.Log10(math.Abs(f))))
	return math.Round(f*p) / p
}

// machine describes where the benchmark ran.
func (b *suite) machine() []string {
	cpu, mem := cpuModel(), memTotal()
	gover := runtime.Version()
	if out, err := exec.Command("go", "version").Output(); err == nil {
		gover = strings.TrimSpace(string(out))
	}
	kernel := "unknown"
	if blob, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		kernel = strings.TrimSpace(string(blob))
	}
	beamVer, duckVer := "unknown", duckVersion()
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			switch d.Path {
			case "github.com/apache/beam/sdks/v2":
				beamVer = d.Version
			case "github.com/duckdb/duckdb-go/v2":
				duckVer = d.Version + " (DuckDB " + duckVer + ")"
			}
		}
	}
	return []string{
		fmt.Sprintf("date: %s", b.started.UTC().Format(time.RFC3339)),
		fmt.Sprintf("nproc: %d (GOMAXPROCS %d)", runtime.NumCPU(), runtime.GOMAXPROCS(0)),
		fmt.Sprintf("CPU: %s", cpu),
		fmt.Sprintf("memory: %s", mem),
		fmt.Sprintf("kernel: %s", kernel),
		fmt.Sprintf("go: %s", gover),
		fmt.Sprintf("Beam Go SDK: %s", beamVer),
		fmt.Sprintf("duckdb-go: %s", duckVer),
		fmt.Sprintf("pinpipe built from: %s", b.git),
	}
}

func duckVersion() string {
	db, err := sql.Open("duckdb", "")
	if err != nil {
		return "unknown"
	}
	defer db.Close()
	var v string
	if err := db.QueryRow(`SELECT version()`).Scan(&v); err != nil {
		return "unknown"
	}
	return v
}

func counts3(r *run, field func(tableCounts) int64) string {
	var parts []string
	for _, t := range transforms.Tables {
		c, ok := r.Counts[t]
		if !ok || field(c) == unknown {
			parts = append(parts, "-")
			continue
		}
		parts = append(parts, strconv.FormatInt(field(c), 10))
	}
	return strings.Join(parts, " / ")
}

func phasesText(r *run) string {
	var parts []string
	for _, p := range r.Phases {
		parts = append(parts, fmt.Sprintf("%s %.2fs", p.Name, p.Seconds))
	}
	return strings.Join(parts, ", ")
}

// table is the per-size results table.
func (b *bench) table() (header []string, rows [][]string) {
	header = []string{"engine", "step", "wall s", "records/s", "peak RSS MiB", "CPU s", "load before", "other procs (cores)",
		"clean rows pin/geo/user", "rejected pin/geo/user", "rows after dedup pin/geo/user"}
	for _, r := range b.runs {
		if r.Err != nil {
			rows = append(rows, []string{r.name, r.step, "FAILED", "-", "-", "-", r.LoadBefore, "-", r.Err.Error(), "", ""})
			continue
		}
		rows = append(rows, []string{r.name, r.step, fmt.Sprintf("%.2f", r.Wall.Seconds()), fmt.Sprintf("%.0f", r.rate()),
			fmt.Sprintf("%.0f", mib(r.MaxRSS)), fmt.Sprintf("%.1f", r.CPU.Seconds()), r.LoadBefore, fmt.Sprintf("%.2f", r.otherCores()),
			counts3(r, func(c tableCounts) int64 { return c.Clean }), counts3(r, tableCounts.rejected),
			counts3(r, func(c tableCounts) int64 { return c.Rows })})
	}
	return header, rows
}

// text is one size's results as plain text, for the terminal.
func (b *bench) text() string {
	var txt strings.Builder
	header, rows := b.table()
	widths := make([]int, len(header))
	for i, h := range header {
		widths[i] = len(h)
	}
	for _, row := range rows {
		for i, c := range row {
			widths[i] = max(widths[i], len(c))
		}
	}
	line := func(cells []string) {
		for i, c := range cells {
			if i < 2 {
				fmt.Fprintf(&txt, "%-*s  ", widths[i], c)
			} else {
				fmt.Fprintf(&txt, "%*s  ", widths[i], c)
			}
		}
		txt.WriteString("\n")
	}
	fmt.Fprintf(&txt, "%s posts:\n", thousands(int64(b.posts)))
	line(header)
	for _, row := range rows {
		line(row)
	}
	txt.WriteString("\ntargets:\n")
	for _, t := range b.targets() {
		v := t.value
		if v == "" {
			v = "-"
		}
		fmt.Fprintf(&txt, "  %-90s %10s  (target %s)  %s\n", t.what, v, t.goal, verdict(t))
	}
	if others := b.otherRatios(); len(others) > 0 {
		txt.WriteString("other ratios:\n")
		for _, o := range others {
			fmt.Fprintf(&txt, "  %s\n", o)
		}
	}
	_, warnings := b.checks()
	txt.WriteString("checks:\n")
	for _, w := range warnings {
		fmt.Fprintf(&txt, "  %s\n", w)
	}
	if len(warnings) == 0 {
		txt.WriteString("  all engines agree on the row counts, the rejects and the insights\n")
	}
	return txt.String()
}

// svgName is the plot's file next to the results file.
func svgName(results string) string {
	return strings.TrimSuffix(results, filepath.Ext(results)) + ".svg"
}

// writeResults writes the markdown and the plot.
func (s *suite) writeResults(name string) error {
	svg := svgName(name)
	f, err := os.Create(svg)
	if err != nil {
		return err
	}
	if err := writeSVG(f, s.charts()); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.WriteFile(name, []byte(s.markdown(filepath.Base(svg))), 0o644)
}

// charts are the plot: wall time and peak RSS against posts, a line per
// engine.
func (s *suite) charts() []chart {
	wall := chart{title: "Wall time", yLabel: "wall time (s)", xLabel: "posts"}
	rss := chart{title: "Peak RSS", yLabel: "peak RSS (MiB)", xLabel: "posts", limit: mib(targetRSS), limitLabel: "1 GiB target (full job)"}
	for _, e := range allEngines {
		var w, m series
		w.name, m.name = e.name, e.name
		w.dashed, m.dashed = e.step == "clean", e.step == "clean"
		for _, b := range s.sizes {
			if r := b.find(e.name); r != nil {
				w.points = append(w.points, point{float64(b.posts), r.Wall.Seconds()})
				m.points = append(m.points, point{float64(b.posts), mib(r.MaxRSS)})
			}
		}
		if len(w.points) > 0 {
			wall.series = append(wall.series, w)
			rss.series = append(rss.series, m)
		}
	}
	return []chart{wall, rss}
}

// markdown is the results file: the sizes side by side, the plot and the
// targets at every size, then each size in detail.
func (s *suite) markdown(svg string) string {
	var md strings.Builder
	var sizes []int
	for _, b := range s.sizes {
		sizes = append(sizes, b.posts)
	}
	fmt.Fprintf(&md, "# pinpipe benchmark: %s posts\n\n", sizesText(sizes))
	fmt.Fprintf(&md, "Produced by `cd bench && go build -mod=mod -o work/bench . && ./work/bench%s` (`make bench-batch` runs this at "+
		"1,000,000, 3,000,000 and 10,000,000 posts). At each size every engine ran %s, one after another, in its own child process; "+
		"wall time and peak RSS (`ru_maxrss` of the child from `cmd.ProcessState.SysUsage()`) are the child's, from start to exit. "+
		"Records/s is the input records of all three tables divided by the wall time. The input was read once before the runs, "+
		"so every engine read it from the page cache. Before each run the harness waited (up to %s) for the 1-minute load average "+
		"to drop to %.2f (0.85 per core; the previous engine's run is in it too); \"other procs\" is the CPU the rest of the "+
		"machine used during the run (busy time in `/proc/stat` less the child's), in cores: above %.2f the run counts as disturbed "+
		"and is run once more%s.\n\n",
		argsText(), runsText(), *loadWait, quietLoad(), busyCores, retryText())
	md.WriteString("DuckDB does the contract's work in SQL: it counts the rejected lines by the contract's reasons (checked " +
		"against the pinpipe batch job's summary below) and writes them as dead letters, and keeps, per ind, the smallest row " +
		"compared column by column; the Go and Beam engines keep the row with the smallest binary encoding. The generator " +
		"re-sends a post as identical records, so both rules keep the same rows. What DuckDB still does differently from " +
		"`transforms` (none of it in the generated data) is listed in [README.md](README.md#the-duckdb-baseline-and-the-contract).\n\n")
	md.WriteString("The other benchmarks write their own files: the gateway and the S3 sink in [GATEWAY.md](GATEWAY.md) " +
		"(`./work/bench gateway`), the streaming job's end-to-end latency in [STREAMING.md](STREAMING.md) " +
		"(`./work/bench streaming`); `make bench` runs all three.\n\n")
	md.WriteString("## Machine\n\n")
	for _, m := range s.machine() {
		fmt.Fprintf(&md, "- %s\n", m)
	}
	for _, b := range s.sizes {
		fmt.Fprintf(&md, "- load average before the %s-post runs: %s\n", thousands(int64(b.posts)), b.load)
	}

	md.WriteString("\n## All sizes\n\n")
	fmt.Fprintf(&md, "![wall time and peak RSS against posts, a line per engine](%s)\n\n", svg)
	md.WriteString("Wall time and peak RSS per engine and size:\n\n| engine | step |")
	for _, b := range s.sizes {
		fmt.Fprintf(&md, " %s posts |", thousands(int64(b.posts)))
	}
	md.WriteString("\n|---|---|" + strings.Repeat("---:|", len(s.sizes)) + "\n")
	for _, e := range allEngines {
		var cells []string
		ran := false
		for _, b := range s.sizes {
			var r *run
			for _, x := range b.runs {
				if x.name == e.name {
					r = x
				}
			}
			switch {
			case r == nil:
				cells = append(cells, "-")
			case r.Err != nil:
				ran = true
				cells = append(cells, "FAILED")
			default:
				ran = true
				cells = append(cells, fmt.Sprintf("%.2f s, %.0f MiB", r.Wall.Seconds(), mib(r.MaxRSS)))
			}
		}
		if ran {
			fmt.Fprintf(&md, "| %s | %s | %s |\n", e.name, e.step, strings.Join(cells, " | "))
		}
	}
	md.WriteString("\nTargets (the issue's, at every size):\n\n| target | goal |")
	for _, b := range s.sizes {
		fmt.Fprintf(&md, " %s posts |", thousands(int64(b.posts)))
	}
	md.WriteString(" at every size |\n|---|---|" + strings.Repeat("---|", len(s.sizes)+1) + "\n")
	if len(s.sizes) > 0 {
		first := s.sizes[0].targets()
		for i, t := range first {
			fmt.Fprintf(&md, "| %s | %s |", t.what, t.goal)
			all, measured := true, true
			for _, b := range s.sizes {
				ts := b.targets()
				if i >= len(ts) || ts[i].what != t.what {
					md.WriteString(" - |")
					measured = false
					continue
				}
				v := ts[i].value
				if v == "" {
					v = "-"
				}
				fmt.Fprintf(&md, " %s %s |", v, verdict(ts[i]))
				if ts[i].met == nil {
					measured = false
				} else if !*ts[i].met {
					all = false
				}
			}
			switch {
			case !all:
				md.WriteString(" **NOT MET** |\n")
			case !measured:
				md.WriteString(" not measured at every size |\n")
			default:
				md.WriteString(" **MET** |\n")
			}
		}
	}
	for _, b := range s.sizes {
		b.sizeMarkdown(&md)
	}
	return md.String()
}

func retryText() string {
	if !*busyRetry {
		return " (-busy-retry=false: here it was not)"
	}
	return " (the quieter run is reported)"
}

// sizeMarkdown is one size's section of the results file.
func (b *bench) sizeMarkdown(md *strings.Builder) {
	fmt.Fprintf(md, "\n## %s posts\n\n", thousands(int64(b.posts)))
	fmt.Fprintf(md, "Input: `pinpipe generate --posts %d --malformed-rate %s` (default seed and other rates), S3-sink layout: %d files, %.0f MiB, "+
		"%d records (pin %d, geo %d, user %d). Generator: %s\n\n",
		b.posts, strconv.FormatFloat(*malformed, 'g', -1, 64), b.input.Files, float64(b.input.Bytes)/(1<<20), b.input.Total,
		b.input.Records["pin"], b.input.Records["geo"], b.input.Records["user"], b.input.GenLine)
	fmt.Fprintf(md, "Full jobs write the clean tables as %s, the eight insights as JSON and the dead letters (%d shards where applicable).\n\n", *format, *shards)
	header, rows := b.table()
	md.WriteString("| " + strings.Join(header, " | ") + " |\n|")
	for i := range header {
		if i < 2 {
			md.WriteString("---|")
		} else {
			md.WriteString("---:|")
		}
	}
	md.WriteString("\n")
	for _, row := range rows {
		md.WriteString("| " + strings.Join(row, " | ") + " |\n")
	}
	md.WriteString("\nEngines:\n\n")
	for _, r := range b.runs {
		fmt.Fprintf(md, "- `%s` (%s): %s", r.name, r.step, r.desc)
		if p := phasesText(r); p != "" {
			fmt.Fprintf(md, ". Its own step timings: %s", p)
		}
		if len(r.Tries) > 1 {
			var ts []string
			for _, t := range r.Tries {
				if t.Err != nil {
					ts = append(ts, "failed")
					continue
				}
				ts = append(ts, fmt.Sprintf("%.2fs/%.0f MiB/other procs %.2f cores", t.Wall.Seconds(), mib(t.MaxRSS), t.otherCores()))
			}
			fmt.Fprintf(md, ". All %d runs (wall/peak RSS/other processes): %s; the table has the fastest quiet one (other processes under %.2f cores), or the fastest when none was quiet",
				len(r.Tries), strings.Join(ts, ", "), busyCores)
		}
		fmt.Fprintf(md, ". Load average (1 min) %s at its start", r.LoadBefore)
		if r.Waited >= time.Second {
			fmt.Fprintf(md, " (after waiting %s for it to drop)", r.Waited.Round(time.Second))
		}
		fmt.Fprintf(md, ", %s at its end.\n", r.LoadAfter)
	}
	md.WriteString("\nTargets:\n\n| target | measured | goal | verdict |\n|---|---:|---|---|\n")
	for _, t := range b.targets() {
		v := t.value
		if v == "" {
			v = "-"
		}
		fmt.Fprintf(md, "| %s | %s | %s | **%s** |\n", t.what, v, t.goal, verdict(t))
	}
	if others := b.otherRatios(); len(others) > 0 {
		md.WriteString("\nOther ratios (informative):\n\n")
		for _, o := range others {
			fmt.Fprintf(md, "- %s\n", o)
		}
	}
	notes, warnings := b.checks()
	md.WriteString("\nChecks:\n\n")
	for _, w := range warnings {
		fmt.Fprintf(md, "- **%s**\n", w)
	}
	for _, n := range notes {
		fmt.Fprintf(md, "- %s\n", n)
	}
	if len(warnings) == 0 {
		md.WriteString("- all engines agree on the row counts, the rejects and the insights\n")
	}
}

var countLabel = map[string]string{"read": "records read", "clean": "clean rows", "rejected": "rejected lines", "rows": "rows after dedup"}

// checkReasons compares the rejects by reason per table between the engines
// that count them by reason (DuckDB and the pinpipe batch job).
func (b *bench) checkReasons(notes, warnings []string) ([]string, []string) {
	for _, t := range transforms.Tables {
		var ref *run
		same := 0
		for _, r := range b.runs {
			if r.Err != nil || r.Counts[t].RejectedBy == nil {
				continue
			}
			if ref == nil {
				ref = r
				same = 1
				continue
			}
			if a, c := reasonsText(ref.Counts[t].RejectedBy), reasonsText(r.Counts[t].RejectedBy); a != c {
				warnings = append(warnings, fmt.Sprintf("WARNING: %s: rejects by reason differ: %s in %s, %s in %s", t, a, ref.name, c, r.name))
				continue
			}
			same++
		}
		if ref != nil {
			notes = append(notes, fmt.Sprintf("%s: rejects by reason %s, the same in %d engines", t, reasonsText(ref.Counts[t].RejectedBy), same))
		}
	}
	return notes, warnings
}

// reasonsText is rejects by reason as "none" or "invalid JSON 3, null key 1".
func reasonsText(m map[string]int64) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if m[k] != 0 {
			parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

func runsText() string {
	if *repeat <= 1 {
		return "once"
	}
	return fmt.Sprintf("%d times (the fastest run is reported)", *repeat)
}

func argsText() string {
	if len(os.Args) < 2 {
		return ""
	}
	return " " + strings.Join(os.Args[1:], " ")
}

// gitState names the commit the pinpipe binary was built from, and whether
// the work tree differed from it outside bench/.
func gitState(root string) string {
	head, err := exec.Command("git", "-C", root, "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "unknown"
	}
	out := "commit " + strings.TrimSpace(string(head))
	status, err := exec.Command("git", "-C", root, "status", "--porcelain", "--untracked-files=no", "--", ".", ":!bench").Output()
	if err == nil && len(strings.TrimSpace(string(status))) > 0 {
		out += fmt.Sprintf(" plus uncommitted changes to %d tracked files", len(strings.Split(strings.TrimSpace(string(status)), "\n")))
	}
	return out
}

// busy warns when other work loaded the machine during the runs: a run
// that started with the 1-minute load average above quietLoad, or during
// which other processes used more than busyCores.
func (b *bench) busy() string {
	var loaded, disturbed []string
	for _, r := range b.runs {
		if l, err := strconv.ParseFloat(r.LoadBefore, 64); err == nil && l > quietLoad() {
			loaded = append(loaded, fmt.Sprintf("%s (%s)", r.name, r.LoadBefore))
		}
		if r.busy() {
			disturbed = append(disturbed, fmt.Sprintf("%s (%.2f cores)", r.name, r.otherCores()))
		}
	}
	if len(loaded) == 0 && len(disturbed) == 0 {
		return ""
	}
	var parts []string
	if len(loaded) > 0 {
		parts = append(parts, fmt.Sprintf("1-minute load average above %.2f at the start of %s", quietLoad(), strings.Join(loaded, ", ")))
	}
	if len(disturbed) > 0 {
		parts = append(parts, fmt.Sprintf("other processes using more than %.2f cores during %s", busyCores, strings.Join(disturbed, ", ")))
	}
	return fmt.Sprintf("WARNING: the machine was busy with other work on %d cores: %s. Those wall times (and so records/s and "+
		"the wall-time ratios) are inflated; CPU times are the steadier comparison. Rerun on a quiet machine.",
		runtime.NumCPU(), strings.Join(parts, "; "))
}
