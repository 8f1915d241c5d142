package main

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pinpipe/pinpipe/transforms"
)

// The targets of the issue.
const (
	targetCleanSpeedup = 2.0     // Beam clean-only throughput >= 2x DuckDB's clean
	targetFullWall     = 1.5     // Beam full wall time <= 1.5x DuckDB's full
	targetRSS          = 1 << 30 // Beam full peak RSS on prism < 1 GiB
)

type report struct{ text, markdown string }

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
	dc := b.find("duckdb-clean")
	for _, v := range []struct{ engine, what string }{
		{"beam-clean-prism", "Beam clean-only (prism; ReadLines + Clean*) throughput vs DuckDB clean"},
		{"beam-cleanfiles-prism", "Beam clean-only (prism; CleanFiles, the batch job's clean) throughput vs DuckDB clean"},
	} {
		bc := b.find(v.engine)
		t := target{what: v.what, goal: ">= 2.00x"}
		if bc != nil && dc != nil {
			x := bc.rate() / dc.rate()
			t.value, t.met = fmt.Sprintf("%.2fx", x), ptr(x >= targetCleanSpeedup)
		}
		if bc != nil || v.engine == "beam-clean-prism" {
			ts = append(ts, t)
		}
	}
	bf, df := b.find("beam-prism"), b.find("duckdb-full")
	t := target{what: "Beam full (prism) wall time vs DuckDB full", goal: "<= 1.50x"}
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
	cpu("Beam clean-only (prism; CleanFiles) vs DuckDB clean, CPU", "beam-cleanfiles-prism", "duckdb-clean")
	cpu("Beam full (prism) vs DuckDB full, CPU", "beam-prism", "duckdb-full")
	pair("Beam clean-only (prism; ReadLines + Clean*) vs plain Go clean", "beam-clean-prism", "go-clean", false)
	pair("Beam clean-only (prism; CleanFiles) vs plain Go clean", "beam-cleanfiles-prism", "go-clean", false)
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
func (b *bench) machine() []string {
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
		fmt.Sprintf("load average before the runs: %s", b.load),
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

func (b *bench) report() report {
	var txt, md strings.Builder
	header := []string{"engine", "step", "wall s", "records/s", "peak RSS MiB", "CPU s", "clean rows pin/geo/user", "rows after dedup pin/geo/user"}
	var rows [][]string
	for _, r := range b.runs {
		if r.Err != nil {
			rows = append(rows, []string{r.name, r.step, "FAILED", "-", "-", "-", r.Err.Error(), ""})
			continue
		}
		rows = append(rows, []string{r.name, r.step, fmt.Sprintf("%.2f", r.Wall.Seconds()), fmt.Sprintf("%.0f", r.rate()),
			fmt.Sprintf("%.0f", mib(r.MaxRSS)), fmt.Sprintf("%.1f", r.CPU.Seconds()),
			counts3(r, func(c tableCounts) int64 { return c.Clean }), counts3(r, func(c tableCounts) int64 { return c.Rows })})
	}
	// Plain text table.
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
	line(header)
	for _, row := range rows {
		line(row)
	}
	txt.WriteString("\ntargets:\n")
	targets := b.targets()
	for _, t := range targets {
		v := t.value
		if v == "" {
			v = "-"
		}
		fmt.Fprintf(&txt, "  %-86s %10s  (target %s)  %s\n", t.what, v, t.goal, verdict(t))
	}
	others := b.otherRatios()
	if len(others) > 0 {
		txt.WriteString("other ratios:\n")
		for _, o := range others {
			fmt.Fprintf(&txt, "  %s\n", o)
		}
	}
	notes, warnings := b.checks()
	txt.WriteString("checks:\n")
	for _, w := range warnings {
		fmt.Fprintf(&txt, "  %s\n", w)
	}
	if len(warnings) == 0 {
		txt.WriteString("  all engines agree on the row counts and the insights\n")
	}

	// Markdown.
	fmt.Fprintf(&md, "# pinpipe benchmark: %d posts\n\n", *posts)
	fmt.Fprintf(&md, "Produced by `cd bench && go build -mod=mod -o work/bench . && ./work/bench%s` (`make bench` runs this). "+
		"Every engine ran %s, one after another, in its own child process; wall time and peak RSS "+
		"(`ru_maxrss` of the child from `cmd.ProcessState.SysUsage()`) are the child's, from start to exit. "+
		"Records/s is the input records of all three tables (%d) divided by the wall time. "+
		"The input was read once before the runs, so every engine read it from the page cache.\n\n",
		argsText(), runsText(), b.input.Total)
	md.WriteString("The other benchmarks write their own files: the gateway and the S3 sink in [GATEWAY.md](GATEWAY.md) " +
		"(`./work/bench gateway`), the streaming job's end-to-end latency in [STREAMING.md](STREAMING.md) " +
		"(`./work/bench streaming`); `make bench` runs all three.\n\n")
	md.WriteString("## Machine\n\n")
	for _, m := range b.machine() {
		fmt.Fprintf(&md, "- %s\n", m)
	}
	md.WriteString("\n## Input\n\n")
	fmt.Fprintf(&md, "`pinpipe generate --posts %d` (default seed and rates), S3-sink layout: %d files, %.0f MiB, "+
		"%d records (pin %d, geo %d, user %d). Generator: %s\n\n",
		*posts, b.input.Files, float64(b.input.Bytes)/(1<<20), b.input.Total,
		b.input.Records["pin"], b.input.Records["geo"], b.input.Records["user"], b.input.GenLine)
	fmt.Fprintf(&md, "Full jobs write the clean tables as %s, the eight insights as JSON and the dead letters (%d shards where applicable).\n\n", *format, *shards)
	md.WriteString("## Results\n\n")
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
		fmt.Fprintf(&md, "- `%s` (%s): %s", r.name, r.step, r.desc)
		if p := phasesText(r); p != "" {
			fmt.Fprintf(&md, ". Its own step timings: %s", p)
		}
		if len(r.Tries) > 1 {
			var ts []string
			for _, t := range r.Tries {
				if t.Err != nil {
					ts = append(ts, "failed")
					continue
				}
				ts = append(ts, fmt.Sprintf("%.2fs/%.0f MiB", t.Wall.Seconds(), mib(t.MaxRSS)))
			}
			fmt.Fprintf(&md, ". All %d runs (wall/peak RSS): %s; the fastest is in the table", len(r.Tries), strings.Join(ts, ", "))
		}
		if r.LoadAfter != "" {
			fmt.Fprintf(&md, ". Load average (1 min) at its end: %s", r.LoadAfter)
		}
		md.WriteString(".\n")
	}
	md.WriteString("\n## Targets\n\n| target | measured | goal | verdict |\n|---|---:|---|---|\n")
	for _, t := range targets {
		v := t.value
		if v == "" {
			v = "-"
		}
		fmt.Fprintf(&md, "| %s | %s | %s | **%s** |\n", t.what, v, t.goal, verdict(t))
	}
	if len(others) > 0 {
		md.WriteString("\nOther ratios (informative):\n\n")
		for _, o := range others {
			fmt.Fprintf(&md, "- %s\n", o)
		}
	}
	md.WriteString("\n## Checks\n\n")
	for _, w := range warnings {
		fmt.Fprintf(&md, "- **%s**\n", w)
	}
	for _, n := range notes {
		fmt.Fprintf(&md, "- %s\n", n)
	}
	if len(warnings) == 0 {
		md.WriteString("- all engines agree on the row counts and the insights\n")
	}
	return report{txt.String(), md.String()}
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

// busy warns when other work loaded the machine during the runs: the 1-minute
// load average before the runs, or at the end of a run, above what the
// benchmark itself puts on it (one child using every core).
func (b *bench) busy() string {
	cores := float64(runtime.NumCPU())
	worst, when := 0.0, ""
	if f := strings.Fields(b.load); len(f) > 0 {
		if l, err := strconv.ParseFloat(f[0], 64); err == nil && l > worst {
			worst, when = l, "before the runs"
		}
	}
	for _, r := range b.runs {
		for _, t := range append([]*run{r}, r.Tries...) {
			if l, err := strconv.ParseFloat(t.LoadAfter, 64); err == nil && l > worst {
				worst, when = l, "at the end of "+t.name
			}
		}
	}
	if worst <= cores+0.5 {
		return ""
	}
	return fmt.Sprintf("WARNING: the machine was busy with other work: 1-minute load average up to %.2f (%s) on %d cores, "+
		"where the benchmark alone makes about %d. Wall times (and so records/s and the wall-time ratios) are inflated, and "+
		"unevenly between engines; CPU times are the steadier comparison.", worst, when, runtime.NumCPU(), runtime.NumCPU())
}
