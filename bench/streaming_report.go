package main

// The streaming benchmark's report, STREAMING.md.

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"
)

// stProcOrder is the order processes are listed in.
var stProcOrder = []string{"sender", "gateway", "kfake", "kinesalite", "stream job", "postgres"}

// stBroker is the broker process of a source.
func stBroker(source string) string {
	if source == "kinesis" {
		return "kinesalite"
	}
	return "kfake"
}

// stCPUCells are the CPUs kept busy by the sender, the gateway, the
// broker, the job and PostgreSQL, all of them, and the rest of the machine.
func stCPUCells(source string, cpu map[string]float64) string {
	ours := 0.0
	var cells []string
	for _, n := range []string{"sender", "gateway", stBroker(source), "stream job", "postgres"} {
		cells = append(cells, fmt.Sprintf("%.2f", cpu[n]))
		ours += cpu[n]
	}
	return strings.Join(cells, " | ") + fmt.Sprintf(" | %.2f | %.2f", ours, max(0, cpu["machine"]-ours))
}

// stRunOK is whether a run measured what it was asked to: the rate was
// sent and answered, and every row arrived.
func stRunOK(a stAnalysis) bool {
	return a.Errors == 0 && a.NotSent == 0 && a.Missing == 0 && a.Achieved >= 0.95*a.Rate
}

func stVerdict(ok bool) string {
	if ok {
		return "MET"
	}
	return "**NOT MET**"
}

func stPlural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// stPerRecordCells are the µs of CPU per record of the sender, the
// gateway, the broker, the job and PostgreSQL.
func stPerRecordCells(source string, per map[string]time.Duration) string {
	var cells []string
	for _, n := range []string{"sender", "gateway", stBroker(source), "stream job", "postgres"} {
		cells = append(cells, fmt.Sprintf("%.0f", float64(per[n])/float64(time.Microsecond)))
	}
	return strings.Join(cells, " | ")
}

func stUS(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

func stDur(sec float64) time.Duration { return time.Duration(sec * float64(time.Second)) }

func stSec(d time.Duration) string {
	return fmt.Sprintf("%.2f s", d.Seconds())
}

func (r *stResults) markdown(o stOptions) string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")

	p("# pinpipe benchmark: streaming end-to-end latency\n\n")
	p("Produced by `cd bench && go build -mod=mod -o work/bench . && ./work/bench streaming%s` (issue 4, item 6). "+
		"Every number below comes from that one run, which took %s.\n\n", strings.TrimRight(" "+strings.Join(os.Args[2:], " "), " "),
		r.elapsed.Round(time.Second))

	p("## Machine\n\n")
	p("- date: %s\n", r.started.UTC().Format(time.RFC3339))
	p("- nproc: %d (GOMAXPROCS %d)\n", runtime.NumCPU(), runtime.GOMAXPROCS(0))
	p("- CPU: %s\n- memory: %s\n- kernel: %s\n- go: %s\n", cpuModel(), memTotal(), strings.TrimSpace(string(kernel)), runtime.Version())
	p("- PostgreSQL: %s\n", r.pgVersion)
	p("- pinpipe: %s\n", r.git)
	p("- load average (1, 5, 15 min) before the benchmark: %s; at its end: %s; before and after each run: in the tables below\n",
		stLoad3(r.loadBefore), stLoad3(r.loadEnd))
	p("- everything ran on this one machine and shared its %d CPUs with whatever else ran on it (other builds and tests): "+
		"the sender (this process), the gateway, the broker (kfake or kinesalite), the streaming job and PostgreSQL\n\n", runtime.NumCPU())

	p("## How it was measured\n\n")
	p("- **Path**: the sender → `pinpipe gateway` (REST Proxy v2 for Kafka, the API Gateway Kinesis proxy for Kinesis) → the broker: "+
		"`pinpipe dev kafka` (kfake) or kinesalite (Node.js, in memory) → `pinpipe stream --source=kafka|kinesis --start=earliest --sink=postgres://...` "+
		"(the streaming job on prism, in process: it reads every partition or shard, cleans the records and upserts each bundle's rows "+
		"into `pin_stream`, `geo_stream` and `user_stream`, keyed by ind) → PostgreSQL %s. Each of them is a process of its own.\n", r.pgVersion)
	p("- **Fresh per run**: topics `<run>.pin|geo|user` with %d partitions each (created before the job starts), or streams "+
		"`streaming-<run>-pin|geo|user` with the shard counts in the tables; a database of its own; a streaming job of its own. "+
		"**Kinesis shards** are sized to the run's highest rate at 80%% of a shard's write limit of 1,000 records a second "+
		"(`ceil(rate / 800)` per stream, each stream taking one record per post; the records are 0.3 to 0.5 KiB, so the 1 MiB/s "+
		"limit binds later); the job polls each shard at most 5 times a second (kinesisio's pacing), within the 5 reads a second per shard. "+
		"kinesalite enforces neither limit.\n", o.partitions)
	p("- **Start**: once the job runs, probe posts are sent one at a time until one is visible in all three tables within 2 s of being "+
		"sent (the time from the job's start is in the tables: *live after*); then the load starts: %s of warm-up at the run's rate, "+
		"then the %s measured.\n", o.warmup, o.duration)
	p("- **Load**: open loop from a Go sender in this process (`bench/streaming_send.go`): each post is three records (pin, geo, user) "+
		"generated by `ingest/generate` (seed 1, each post its own ind), each record its own request, `POST /topics/<run>.<table>` with "+
		"`{\"records\":[{\"value\":{...}}]}` or `PUT /streams/streaming-<run>-<table>/record` with "+
		"`{\"StreamName\":..,\"Data\":{...},\"PartitionKey\":\"<ind>\"}`, as the posting emulator sends them. Requests are due at fixed "+
		"times, evenly spaced at three times the post rate, whatever the answers to earlier ones, over up to %d keep-alive connections. "+
		"*Answered posts/s* counts the posts whose three records were answered 200; *HTTP p99* is from a request being due to its 200, "+
		"so a sender or gateway that falls behind shows there.\n", o.conns)
	p("- **Latency** of a record = the commit time of the transaction that made its row visible − the time the sender had the " +
		"record's 200 (the whole answer read). PostgreSQL runs with `track_commit_timestamp=on`, and `pg_xact_commit_timestamp(xmin)` " +
		"of each row, read after the run, is stamped by the server just before the commit becomes visible, on the same machine clock " +
		"the sender reads: exact to the microsecond, with no polling interval added and no polling load during the run. " +
		"(A row written twice, by a replayed bundle, would carry its second commit and only look later; every post here has its own ind.) " +
		"The percentiles (nearest rank) are over every record of the measured part whose row is visible. A few rows can commit before " +
		"the sender has read its 200 (the answer was still on its way, or the sender's goroutine was waiting for a CPU): their " +
		"latencies are negative and are kept as they are (counted in the tables).\n")
	p("- **Not sent**: requests still waiting for a free connection %s after the last one was due are dropped, so that a gateway "+
		"that cannot keep up does not hold the run for ever; such a run is short of its rate, and says so.\n", o.sendGrace)
	p("- **Missing**: after the load, the rows are counted until all records answered 200 have theirs, or no new row has become "+
		"visible for %s. A record answered 200 without a row by then is missing.\n", o.drainTimeout)
	p("- **PostgreSQL** runs from `%s` in a fresh cluster under `work/streaming/pg`, with `%s`: fsync and full-page "+
		"writes off, so commits cost no disk flush (the disk is not what is measured; a durable server adds its fsync to each commit).\n",
		"initdb", strings.Join(stPGSettings, "`, `"))
	p("- **CPU**: user plus system time of each process from `/proc/PID/stat` (PostgreSQL: its postmaster and backends), over the " +
		"measured part, as the number of CPUs it kept busy; *others* is the rest of the machine's busy time from `/proc/stat`.\n\n")

	if len(r.runs) > 0 {
		p("## Latency at fixed rates (%s measured per run)\n\n", o.duration)
		p("| source | posts/s scheduled | answered posts/s | partitions / shards | live after | records measured | p50 | p95 | p99 | max | " +
			"negative | errors | not sent | missing | HTTP p99 | sender lag p99 | last row visible after the load | load avg before → after |\n")
		p("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n")
		for _, run := range r.runs {
			a := run.A
			parts := stPlural(run.Partitions, "partition")
			if run.Source == "kinesis" {
				parts = stPlural(run.Shards, "shard")
			}
			p("| %s | %.0f | %.0f | %s | %s | %d | %s | %s | %s | %s | %d | %d | %d | %d | %s | %s | %s | %s → %s |\n",
				run.Source, run.Rate, a.Achieved, parts, run.Live.Round(10*time.Millisecond), a.Visible, stMS(a.Lat.P50), stMS(a.Lat.P95),
				stMS(a.Lat.P99), stMS(a.Lat.Max), a.Negative, a.Errors, a.NotSent, a.Missing, stMS(a.HTTP.P99), stMS(a.Lag.P99),
				run.Drain.Round(10*time.Millisecond), stLoad3(run.LoadBefore), stLoad3(run.LoadAfter))
		}
		p("\nBy table (p50 / p99):\n\n| source | posts/s | pin | geo | user |\n|---|---:|---|---|---|\n")
		for _, run := range r.runs {
			p("| %s | %.0f |", run.Source, run.Rate)
			for t := range 3 {
				p(" %s / %s |", stMS(run.A.ByTable[t].P50), stMS(run.A.ByTable[t].P99))
			}
			p("\n")
		}
		p("\nCPUs kept busy during the measured part:\n\n| source | posts/s | sender | gateway | broker | stream job | PostgreSQL | all five | others |\n")
		p("|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		for _, run := range r.runs {
			p("| %s | %.0f | %s |\n", run.Source, run.Rate, stCPUCells(run.Source, run.CPU))
		}
		p("\nCPU time per record answered 200 while it was measured (µs; 10 ms ticks over about a minute, so ±1 µs or so at " +
			"1,000 posts/s): what each step of the path costs. At 100 posts/s the processes' fixed work (the job's polls every " +
			"100 or 250 ms, timers, the sender's row counting) weighs on each of few records.\n\n")
		p("| source | posts/s | sender | gateway | broker | stream job | PostgreSQL |\n|---|---:|---:|---:|---:|---:|---:|\n")
		for _, run := range r.runs {
			p("| %s | %.0f | %s |\n", run.Source, run.Rate, stPerRecordCells(run.Source, run.PerRecord))
		}
		p("\nOver time (p50 / p99 of the records answered in each slice of the measured part, seconds from its start):\n\n")
		for _, run := range r.runs {
			var cells []string
			for _, w := range run.A.Timeline {
				if w.Lat.N == 0 {
					cells = append(cells, fmt.Sprintf("%.0f–%.0f s: none answered", w.From, w.To))
					continue
				}
				cells = append(cells, fmt.Sprintf("%.0f–%.0f s: %s / %s", w.From, w.To, stMS(w.Lat.P50), stMS(w.Lat.P99)))
			}
			p("- %s at %.0f posts/s: %s\n", run.Source, run.Rate, strings.Join(cells, "; "))
		}
		p("\nThe sink's transactions (one per bundle and table) that made the measured rows visible: how many a second, rows in each, " +
			"the median time between two commits, and the median latency of the newest record of each transaction (the shortest way " +
			"through the job: from the 200 to the commit with no wait for the next poll):\n\n")
		p("| source | posts/s | table | commits/s | rows per commit | gap between commits p50 | newest record's latency p50 |\n")
		p("|---|---:|---|---:|---:|---:|---:|\n")
		for _, run := range r.runs {
			for t, table := range stTables {
				x := run.A.Txn[t]
				p("| %s | %.0f | %s | %.1f | %.1f | %s | %s |\n", run.Source, run.Rate, table, x.PerSecond, x.RowsPerTxn, stMS(x.GapP50), stMS(x.NewestP50))
			}
		}
		p("\n")
		for _, run := range r.runs {
			if run.FirstError != "" {
				p("- %s at %.0f posts/s, first failed request: `%s`\n", run.Source, run.Rate, run.FirstError)
			}
		}
		for _, run := range r.runs {
			if a := run.A; !stRunOK(a) {
				p("- **%s at %.0f posts/s fell short of its rate**: %.0f posts/s answered of %.0f scheduled (%d records not sent, %d errors, "+
					"%d missing); requests were answered up to %s after they were due (p99) while the sender released them on time "+
					"(lag p99 %s): the gateway and %s could not answer faster, on CPUs that were %.0f%% busy. The latencies of this "+
					"run are those of the records that were sent; %d of them (%.1f%%) committed before the sender had read their "+
					"late 200.\n", stTitle(run.Source), run.Rate, a.Achieved, run.Rate, a.NotSent, a.Errors, a.Missing, stMS(a.HTTP.P99),
					stMS(a.Lag.P99), stBroker(run.Source), 100*run.CPU["machine"]/float64(runtime.NumCPU()), a.Negative,
					100*float64(a.Negative)/float64(max(1, a.Visible)))
				gw, br := run.PerRecord["gateway"], run.PerRecord[stBroker(run.Source)]
				p("  At the %.0f µs of gateway and %.0f µs of %s CPU time each record took, the %.0f records a second scheduled "+
					"need %.1f CPUs for those two alone, of the %d this machine has for everything.\n", stUS(gw), stUS(br), stBroker(run.Source),
					3*run.Rate, 3*run.Rate*(gw+br).Seconds(), runtime.NumCPU())
			}
		}
		p("\nStreaming jobs' exits: ")
		var exits []string
		for _, run := range r.runs {
			exits = append(exits, fmt.Sprintf("%s at %.0f: %s", run.Source, run.Rate, run.JobExit))
		}
		p("%s.\n\n", strings.Join(exits, "; "))
	}

	for _, pk := range r.peaks {
		p("## Peak sustained rate on %s\n\n", pk.Source)
		parts := stPlural(pk.Partitions, "partition") + " per topic"
		if pk.Source == "kinesis" {
			parts = stPlural(pk.Shards, "shard") + " per stream (sized for the highest step)"
		}
		p("One streaming job (%s, live after %s), steps of %s at increasing rates, each sent open loop and then waited for until its rows "+
			"were visible (so each step starts with no backlog), stopping at the first step not sustained. A step is sustained when "+
			"nothing queued up without bound: the sender released the requests of the step's last quarter on time (median lateness ≤ %s); "+
			"every request was answered 200, at least %.0f%% of the posts a second were answered, and the requests of the last quarter "+
			"were answered within %s of being due (median), a time that did not grow faster than %.0f ms per second (the gateway and "+
			"the broker kept up); every row became visible, and the median end-to-end latency did not grow faster than %.0f ms per "+
			"second and stayed under %s in the last quarter (the job kept up). Growth is the least-squares slope of the 1-second "+
			"medians after the step's first quarter: a stage that handles a fraction f of the load grows it by 1 − f. A stall (other "+
			"work taking the CPUs for a moment) shows in the p99 columns but fails no test. Load average before: %s, after: %s.\n\n",
			parts, pk.Live.Round(10*time.Millisecond), o.peakStep, stMS(o.criteria.MaxLag), 100*o.criteria.MinRate, stMS(o.criteria.MaxLag),
			1000*o.criteria.MaxSlope, 1000*o.criteria.MaxSlope, stSec(o.criteria.MaxLateP50), stLoad3(pk.LoadBefore), stLoad3(pk.LoadAfter))
		p("| posts/s scheduled | answered posts/s | HTTP last-quarter p50 | HTTP growth (ms/s) | HTTP p99 | visible posts/s during the step | " +
			"p50 | p99 | max | last-quarter p50 | growth (ms/s) | sender | gateway | broker | stream job | PostgreSQL | all five | others | verdict |\n")
		p("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n")
		for _, s := range pk.Steps {
			verdict := "sustained"
			if !s.OK {
				verdict = "**not sustained**: " + s.Why
			}
			p("| %.0f | %.0f | %s | %.0f | %s | %.0f | %s | %s | %s | %s | %.0f | %s | %s |\n", s.Rate, s.Achieved, stMS(s.HTTPLate),
				1000*s.HTTPSlope, stMS(s.HTTPP99), s.A.Committed, stMS(s.A.Lat.P50), stMS(s.A.Lat.P99), stMS(s.A.Lat.Max), stMS(s.LateP50),
				1000*s.Slope, stCPUCells(pk.Source, s.CPU), verdict)
		}
		p("\n%s\n\n", stPeakSummary(pk))
	}

	if len(r.runs) > 0 {
		p("## Where the latency goes\n\n")
		p("A record waits for the next read of its partition or shard, then goes through the job in that read's bundle " +
			"(fetch, decode, clean, buffer, then one `COPY` into a temporary table and one `INSERT ... ON CONFLICT` per table at the " +
			"end of the bundle, one transaction). The transactions above measure both parts: the newest record of a transaction " +
			"had no wait, so its latency is the way through; the others waited for the read, on average about half the gap between " +
			"two commits.\n\n")
		for _, run := range r.runs {
			a := run.A
			var gap, newest, n float64
			for t := range 3 {
				if a.Txn[t].Txns > 0 {
					gap += a.Txn[t].GapP50.Seconds()
					newest += a.Txn[t].NewestP50.Seconds()
					n++
				}
			}
			if n == 0 {
				continue
			}
			gap, newest = gap/n, newest/n
			p("- %s at %.0f posts/s: a commit every %s per table (median), the newest record through in %s (median): "+
				"expected median ≈ %s + %s / 2 = %s; measured p50 %s, p99 %s.\n", stTitle(run.Source), run.Rate, stMS(stDur(gap)),
				stMS(stDur(newest)), stMS(stDur(newest)), stMS(stDur(gap)), stMS(stDur(newest+gap/2)), stMS(a.Lat.P50), stMS(a.Lat.P99))
		}
		p("\nThe gap is the read's cycle: kafkaio asks prism to resume a caught-up partition after its poll interval " +
			"(`kafkaio.ReadPollInterval`, 100 ms by default, which `pinpipe stream` keeps), and the cycle is that plus the bundle's " +
			"own time and prism's scheduling; the commit counts show about one transaction per table per cycle, not one per " +
			"partition. kinesisio calls each shard at most every 250 ms (`kinesisio.ReadPollInterval`'s default, and never more than " +
			"Kinesis's 5 reads a second per shard), hence its longer gap with one shard a stream; with two, their polls interleave. The tail (p95, p99) is bundles that were late or slow, " +
			"which on this shared machine means mostly waiting for a CPU (see *others* in the CPU tables) and garbage collection; " +
			"the time lines above show when it happened.\n\n")
	}

	p("## Targets\n\n| target | measured | goal | verdict |\n|---|---|---|---|\n")
	for _, run := range r.runs {
		if run.Source != "kafka" || run.Rate != 1000 {
			continue
		}
		a := run.A
		note := ""
		if !stRunOK(a) {
			note = fmt.Sprintf(" (but the run was not clean: %.0f posts/s answered, %d errors, %d not sent, %d missing)", a.Achieved, a.Errors, a.NotSent, a.Missing)
		}
		p("| Kafka, 1,000 posts/s: p99 | %s%s | < 1 s | %s |\n", stMS(a.Lat.P99), note, stVerdict(stRunOK(a) && a.Lat.P99 < time.Second))
		p("| Kafka, 1,000 posts/s: p50 | %s%s | < 250 ms | %s |\n", stMS(a.Lat.P50), note, stVerdict(stRunOK(a) && a.Lat.P50 < 250*time.Millisecond))
	}
	for _, run := range r.runs {
		if run.Source == "kafka" && run.Rate == 1000 {
			continue
		}
		a := run.A
		p("| (reported) %s, %.0f posts/s: p50 / p95 / p99 | %s / %s / %s, %.0f posts/s answered, %d not sent, %d missing | none set | - |\n",
			stTitle(run.Source), run.Rate, stMS(a.Lat.P50), stMS(a.Lat.P95), stMS(a.Lat.P99), a.Achieved, a.NotSent, a.Missing)
	}
	for _, pk := range r.peaks {
		p("| (reported) peak sustained posts/s on %s | %s | none set | - |\n", stTitle(pk.Source), stPeakCell(pk))
	}
	p("\n## Caveats\n\n")
	p("- One run on a shared machine of %d CPUs: every process of the path competed for them with each other and with other "+
		"people's builds and tests (the load averages above, *others* in the CPU tables). Latency tails and peak rates move "+
		"from run to run with that load; the medians and the costs per record much less.\n", runtime.NumCPU())
	p("- The brokers are emulators, each one process holding everything in memory: kfake for Kafka and kinesalite (single-threaded "+
		"Node.js) for Kinesis. Their throughput says nothing about a Kafka cluster's or AWS Kinesis's; the Kinesis rates here are "+
		"kinesalite's and the gateway's AWS SDK client's, sharing %d CPUs, not Kinesis's limits (which the shard counts respect).\n", runtime.NumCPU())
	p("- PostgreSQL ran without fsync: on a durable server each bundle's commit also waits for its WAL flush.\n")
	p("- Logs of every process of the last run are in `work/streaming/logs/` and `work/streaming/postgres.log`.\n")
	return b.String()
}

// stLoad3 is the three load averages of a /proc/loadavg line.
func stLoad3(s string) string {
	f := strings.Fields(s)
	if len(f) < 3 {
		return s
	}
	return strings.Join(f[:3], " ")
}

func stTitle(s string) string {
	if s == "kafka" {
		return "Kafka"
	}
	return "Kinesis"
}

func stPeakCell(pk *stPeakRun) string {
	if len(pk.Steps) == 0 {
		return "not measured"
	}
	last := pk.Steps[len(pk.Steps)-1]
	if last.OK {
		return fmt.Sprintf("≥ %.0f (every step sustained, up to the highest)", pk.Peak)
	}
	if pk.Peak == 0 {
		return fmt.Sprintf("< %.0f (the lowest step was not sustained)", last.Rate)
	}
	return fmt.Sprintf("%.0f (%.0f was not)", pk.Peak, last.Rate)
}

// stPeakSummary says what the search found and which limit was hit.
func stPeakSummary(pk *stPeakRun) string {
	if len(pk.Steps) == 0 {
		return "No step ran."
	}
	last := pk.Steps[len(pk.Steps)-1]
	if last.OK {
		return fmt.Sprintf("**Peak sustained: at least %.0f posts a second**, the highest step tried; raise -peak-rates-%s to search further.",
			pk.Peak, pk.Source)
	}
	var procs []string
	for _, n := range stBusiest(last.CPU) {
		if last.CPU[n] >= 0.05 {
			procs = append(procs, fmt.Sprintf("%s %.2f", n, last.CPU[n]))
		}
	}
	cpus := float64(runtime.NumCPU())
	machine := last.CPU["machine"]
	head := fmt.Sprintf("**Peak sustained: %.0f posts a second**", pk.Peak)
	if pk.Peak == 0 {
		head = fmt.Sprintf("**Peak sustained: below %.0f posts a second**, the lowest step", last.Rate)
	}
	s := fmt.Sprintf("%s. At %.0f posts/s the step was not sustained: %s. "+
		"During that step the machine's CPUs were %.0f%% busy (%.2f of %.0f; by process, CPUs: %s), and the job made %.0f posts a second visible.",
		head, last.Rate, last.Why, 100*machine/cpus, machine, cpus, strings.Join(procs, ", "), last.A.Committed)
	if strings.HasPrefix(last.Why, "gateway") {
		br := stBroker(pk.Source)
		s += fmt.Sprintf(" Of the two, the gateway used %.2f CPUs (%.0f µs per record) and %s %.2f (%.0f µs per record); the sender's "+
			"HTTP client, on the same CPUs, %.2f (%.0f µs per record).", last.CPU["gateway"], stUS(last.PerRecord["gateway"]), br, last.CPU[br],
			stUS(last.PerRecord[br]), last.CPU["sender"], stUS(last.PerRecord["sender"]))
	}
	if last.A.Committed >= 0.95*last.Achieved && !strings.HasPrefix(last.Why, "pipeline") {
		s += fmt.Sprintf(" The job kept up with everything the gateway answered (%.0f posts/s answered, %.0f made visible) on %.2f CPUs: "+
			"it was not the limit.", last.Achieved, last.A.Committed, last.CPU["stream job"])
	}
	if machine >= 0.9*cpus {
		s += " The limit hit is the machine's CPUs: every process of the path ran on the same " + fmt.Sprint(runtime.NumCPU()) +
			" CPUs, so the first to fall behind (named in the verdict) did so for want of CPU time that the others were using."
	}
	return s
}
