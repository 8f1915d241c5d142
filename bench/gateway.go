package main

// The gateway benchmark (issue 3, item 7): the gateway's throughput and
// latency for single-record REST Proxy POSTs over keep-alive connections,
// against a bare net/http handler answering 200 on the same port under the
// same load, measured in the same run; and the S3 sink's records per second
// from Kafka (kfake) to S3 (gofakes3). It writes GATEWAY.md.
//
//	cd bench && go build -mod=mod -o work/bench . && ./work/bench gateway [flags]
//
// It is a subcommand of this binary, hooked in by this file's init
// function (which runs it and exits before main), so that main.go needs no
// change; `./work/bench gateway -help` lists its flags.

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/pinpipe/pinpipe/ingest/gateway"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

func init() {
	if len(os.Args) > 1 && os.Args[1] == "gateway" {
		// Not in this goroutine: during package initialisation the runtime
		// keeps it on the main OS thread, so that every time it woke (the
		// fixed-rate loop's scheduler, every 100 µs) the runtime had to
		// hand it over to that one thread, a futex round trip that cost
		// the load generator more CPU than its requests did.
		errc := make(chan error, 1)
		go func() { errc <- gatewayMain(os.Args[2:]) }()
		if err := <-errc; err != nil {
			fmt.Fprintf(os.Stderr, "bench gateway: %v\n", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
}

// gwTopic is the topic the load goes to.
const gwTopic = "bench.pin"

// gwOptions are the benchmark's flags.
type gwOptions struct {
	duration, warmup, rateDuration time.Duration
	conns                          []int
	rateConns                      int
	rateFraction                   float64
	rate                           float64
	port                           int
	repeat                         int
	sinkPosts                      int
	out                            string
	profileDir                     string
	kafkaLinger                    time.Duration
	// The overload measurement (gateway_overload.go).
	overloadFactor                    float64
	overloadConns, idleConns          int
	overloadMaxInFlight               int
	overloadDuration, overloadTimeout time.Duration
}

func gatewayMain(args []string) error {
	fs := flag.NewFlagSet("bench gateway", flag.ContinueOnError)
	var o gwOptions
	var conns string
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "length of each peak (closed-loop) measurement")
	fs.DurationVar(&o.warmup, "warmup", 2*time.Second, "unmeasured load before each measurement (opens the connections, warms the gateway's Kafka client)")
	fs.StringVar(&conns, "conns", "1,16,64,256", "keep-alive connection counts of the peak measurements; the peak is the best of them")
	fs.Float64Var(&o.rateFraction, "rate-fraction", 0.5, "fixed-rate run at this fraction of the gateway's peak requests/s")
	fs.Float64Var(&o.rate, "rate", 0, "fixed-rate run at this many requests/s instead of -rate-fraction of the gateway's peak (for experiments: the report's verdict is about the fraction)")
	fs.DurationVar(&o.rateDuration, "rate-duration", 20*time.Second, "length of each fixed-rate (open-loop) measurement")
	fs.IntVar(&o.rateConns, "rate-conns", 64, "most connections the fixed-rate load may use")
	fs.IntVar(&o.repeat, "repeat", 1, "measure everything this many times, bare and gateway alternating, and report the median (all runs are listed)")
	fs.IntVar(&o.port, "port", 0, "loopback port the servers take in turn (0: a free one)")
	fs.IntVar(&o.sinkPosts, "sink-posts", 100000, "posts (three records each) the S3 sink lands; 0 skips the sink")
	fs.StringVar(&o.out, "out", "GATEWAY.md", "markdown file to write the results to")
	fs.StringVar(&o.profileDir, "server-cpuprofile", "", "directory for CPU profiles of the gateway server, one a measurement (gateway-peak-<conns>.pprof, gateway-rate.pprof)")
	fs.StringVar(&gwServerBin, "server-bin", "", "the gwserve binary the servers run from (default: gwserve beside this binary)")
	fs.DurationVar(&o.kafkaLinger, "kafka-linger", 0, "the gateway's Config.KafkaLinger (0: its default; negative: none), for experiments")
	fs.Float64Var(&o.overloadFactor, "overload-factor", 2, "overload run at this multiple of the gateway's peak requests/s (0 skips it)")
	fs.IntVar(&o.overloadConns, "overload-conns", 1024, "connections (workers) of the overload run: more than the gateway serves at once")
	fs.IntVar(&o.idleConns, "idle-conns", 2000, "idle keep-alive connections held open to the server during the overload run")
	fs.IntVar(&o.overloadMaxInFlight, "overload-max-in-flight", 0, "the gateway's --max-in-flight in the overload run (0: its default, 512)")
	fs.DurationVar(&o.overloadDuration, "overload-duration", 10*time.Second, "length of the overload run")
	fs.DurationVar(&o.overloadTimeout, "overload-timeout", 5*time.Second, "a request of the overload run that takes longer has timed out")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	for _, c := range strings.Split(conns, ",") {
		if conns == "" && o.rate > 0 { // no peak runs: -rate says the rate
			break
		}
		n, err := strconv.Atoi(strings.TrimSpace(c))
		if err != nil || n < 1 {
			return fmt.Errorf("-conns: %q is not a positive number", c)
		}
		o.conns = append(o.conns, n)
	}
	if o.rateFraction <= 0 || o.rateConns < 1 || o.duration <= 0 || o.rateDuration <= 0 || o.repeat < 1 {
		return errors.New("-rate-fraction, -rate-conns, -duration, -rate-duration and -repeat must be positive")
	}
	if o.overloadFactor > 0 && (o.overloadConns < 1 || o.idleConns < 0 || o.overloadDuration <= 0 || o.overloadTimeout <= 0) {
		return errors.New("-overload-conns, -overload-duration and -overload-timeout must be positive, -idle-conns not negative")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := gwBench(ctx, o)
	if err != nil {
		return err
	}
	root, _ := filepath.Abs("..")
	now := res.figures(root)
	before, ok := readFigures(figuresPath(o.out))
	md := res.markdown(o, before, ok)
	if err := os.WriteFile(o.out, []byte(md), 0o644); err != nil {
		return err
	}
	fj, err := json.MarshalIndent(now, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(figuresPath(o.out), append(fj, '\n'), 0o644); err != nil {
		return err
	}
	fmt.Print(md)
	fmt.Fprintf(os.Stderr, "bench gateway: wrote %s\n", o.out)
	return nil
}

// gwResults is everything one run measured.
type gwResults struct {
	started            time.Time
	loadBefore, loadAt string
	addr               string
	bodyBytes          float64
	// bare and gw are the median runs by o.conns, of bareRuns and gwRuns
	// (by o.conns, then by repetition).
	bare, gw                 []gwStats
	bareRuns, gwRuns         [][]gwStats
	rate                     float64
	rateGW, rateBare         gwStats // the median runs by p99
	rateGWRuns, rateBareRuns []gwStats
	sinkFill                 time.Duration
	sinkRecords              int64
	sink                     []gwSinkStats
	overload                 []gwOverloadStats // the gateway's, then the bare handler's
}

func gwLog(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench gateway: "+format+"\n", args...)
}

func gwBench(ctx context.Context, o gwOptions) (*gwResults, error) {
	r := &gwResults{started: time.Now(), loadBefore: loadAvg()}
	if o.port == 0 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		o.port = ln.Addr().(*net.TCPAddr).Port
		ln.Close()
	}
	r.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(o.port))

	kafka, err := startGWChild("kafka", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	defer kafka.stop()
	if err := gwCreateTopic(ctx, kafka.addr); err != nil {
		return nil, err
	}
	bodies := gwBodies(1000)
	for _, b := range bodies {
		r.bodyBytes += float64(len(b))
	}
	r.bodyBytes /= float64(len(bodies))
	load := &gwLoad{url: "http://" + r.addr + "/topics/" + gwTopic, bodies: bodies}

	// measure runs one server on the port for one measurement.
	if o.profileDir != "" {
		if err := os.MkdirAll(o.profileDir, 0o755); err != nil {
			return nil, err
		}
	}
	measure := func(mode, name string, fn func() gwStats) (gwStats, error) {
		var extra []string
		if mode == "gateway" {
			extra = []string{"-brokers=" + kafka.addr, "-kafka-linger=" + o.kafkaLinger.String()}
			if o.profileDir != "" {
				extra = append(extra, "-cpuprofile="+filepath.Join(o.profileDir, "gateway-"+name+".pprof"))
			}
		}
		srv, err := startGWChild(mode, r.addr, extra...)
		if err != nil {
			return gwStats{}, err
		}
		load.cpu = func() gwCPU {
			return gwCPU{Load: gwProcCPU(os.Getpid()), Server: gwProcCPU(srv.cmd.Process.Pid), Broker: gwProcCPU(kafka.cmd.Process.Pid),
				Machine: machineBusyCPU()}
		}
		st := fn()
		if err := srv.stop(); err != nil {
			return st, fmt.Errorf("stopping the %s server: %w", mode, err)
		}
		if ctx.Err() != nil {
			return st, ctx.Err()
		}
		return st, nil
	}

	// Peak: closed loop, bare and gateway in turn at each connection
	// count, the whole sweep o.repeat times.
	r.bareRuns, r.gwRuns = make([][]gwStats, len(o.conns)), make([][]gwStats, len(o.conns))
	for rep := range o.repeat {
		for i, c := range o.conns {
			for _, mode := range []string{"bare", "gateway"} {
				name := fmt.Sprintf("peak-%d", c)
				if o.repeat > 1 {
					name += fmt.Sprintf("-run%d", rep+1)
				}
				st, err := measure(mode, name, func() gwStats { return load.closedLoop(ctx, c, o.warmup, o.duration) })
				if err != nil {
					return nil, err
				}
				gwLog("peak %-7s %4d conns: %8.0f req/s, p50 %s, p99 %s, %d errors, %d new connections", mode, c, st.RPS(),
					gwMS(st.P50), gwMS(st.P99), st.Errors, st.Dials)
				if mode == "bare" {
					r.bareRuns[i] = append(r.bareRuns[i], st)
				} else {
					r.gwRuns[i] = append(r.gwRuns[i], st)
				}
			}
		}
	}
	for i := range o.conns {
		r.bare = append(r.bare, gwMedian(r.bareRuns[i], func(s gwStats) float64 { return s.RPS() }))
		r.gw = append(r.gw, gwMedian(r.gwRuns[i], func(s gwStats) float64 { return s.RPS() }))
	}

	// Fixed rate: a fraction of the gateway's (median) peak, open loop.
	r.rate = o.rateFraction * gwPeak(r.gw).RPS()
	if o.rate > 0 {
		r.rate = o.rate
	}
	for rep := range o.repeat {
		for _, mode := range []string{"gateway", "bare"} {
			name := "rate"
			if o.repeat > 1 {
				name += fmt.Sprintf("-run%d", rep+1)
			}
			st, err := measure(mode, name, func() gwStats { return load.openLoop(ctx, r.rate, o.rateConns, o.warmup, o.rateDuration) })
			if err != nil {
				return nil, err
			}
			gwLog("rate %-7s %8.0f req/s scheduled: %8.0f answered/s, p50 %s, p99 %s, p99.9 %s, %d errors", mode, r.rate, st.RPS(),
				gwMS(st.P50), gwMS(st.P99), gwMS(st.P999), st.Errors)
			if mode == "gateway" {
				r.rateGWRuns = append(r.rateGWRuns, st)
			} else {
				r.rateBareRuns = append(r.rateBareRuns, st)
			}
		}
	}
	p99 := func(s gwStats) float64 { return float64(s.P99) }
	r.rateGW, r.rateBare = gwMedian(r.rateGWRuns, p99), gwMedian(r.rateBareRuns, p99)

	// Overload: a multiple of the gateway's peak, with idle connections
	// open.
	if o.overloadFactor > 0 {
		r.overload, err = gwOverload(ctx, o, r.addr, kafka.addr, bodies, gwPeak(r.gw).RPS())
		if err != nil {
			return nil, fmt.Errorf("overload: %w", err)
		}
	}
	r.loadAt = loadAvg()

	// The sink.
	if o.sinkPosts > 0 {
		s3srv, err := startGWChild("s3", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer s3srv.stop()
		if r.sinkRecords, r.sinkFill, err = gwFillKafka(ctx, kafka.addr, o.sinkPosts); err != nil {
			return nil, fmt.Errorf("filling Kafka for the sink: %w", err)
		}
		gwLog("sink: %d records in Kafka (produced in %s)", r.sinkRecords, r.sinkFill.Round(time.Millisecond))
		for _, compress := range []bool{false, true} {
			st, err := gwSinkRun(ctx, kafka.addr, "http://"+s3srv.addr, r.sinkRecords, compress)
			if err != nil {
				return nil, fmt.Errorf("sink (compress %v): %w", compress, err)
			}
			gwLog("sink compress=%v: %d records in %s: %.0f records/s, %d objects", compress, st.Records,
				st.Elapsed.Round(time.Millisecond), st.RPS(), st.Stats.Objects)
			r.sink = append(r.sink, st)
		}
	}
	return r, nil
}

// gwCreateTopic creates the load's topic with 3 partitions, so that no
// measurement includes its creation.
func gwCreateTopic(ctx context.Context, brokers string) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers))
	if err != nil {
		return err
	}
	defer cl.Close()
	res, err := kadm.NewClient(cl).CreateTopics(ctx, 3, 1, nil, gwTopic)
	if err == nil {
		err = res.Error()
	}
	return err
}

// gwEach formats every run with f, separated by slashes.
func gwEach(runs []gwStats, f func(gwStats) string) string {
	out := make([]string, len(runs))
	for i, s := range runs {
		out[i] = f(s)
	}
	return strings.Join(out, " / ")
}

// gwMedian is the run in the middle when sorted by key (of an even
// number, the lower of the two middle ones).
func gwMedian(runs []gwStats, key func(gwStats) float64) gwStats {
	s := slices.Clone(runs)
	slices.SortFunc(s, func(a, b gwStats) int { return cmp.Compare(key(a), key(b)) })
	return s[(len(s)-1)/2]
}

// gwPeak is the measurement with the most requests per second.
func gwPeak(sts []gwStats) gwStats {
	var best gwStats
	for _, s := range sts {
		if s.OK > 0 && (best.OK == 0 || s.RPS() > best.RPS()) {
			best = s
		}
	}
	return best
}

// gwBestPerCPU is the most requests per CPU-second among the measurements.
func gwBestPerCPU(sts []gwStats) float64 {
	best := 0.0
	for _, s := range sts {
		best = max(best, s.PerCPUSecond())
	}
	return best
}

// gwCPUCells are a measurement's CPU µs per request by process, and the
// CPUs they kept busy.
func gwCPUCells(s gwStats) string {
	us := func(d time.Duration) string {
		return strconv.FormatFloat(float64(s.CPUPerRequest(d))/float64(time.Microsecond), 'f', 1, 64)
	}
	c := s.CPU
	busy := float64(c.Load+c.Server+c.Broker) / float64(s.Elapsed)
	others := float64(c.Others()) / float64(s.Elapsed)
	return fmt.Sprintf("%s | %s | %s | %.2f | %.2f", us(c.Load), us(c.Server), us(c.Broker), busy, others)
}

func gwMS(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 2, 64) + " ms"
}

func gwVerdict(ok bool) string {
	if ok {
		return "MET"
	}
	return "**NOT MET**"
}

// markdown is the report; before, when known, are the previous report's
// figures to compare with.
func (r *gwResults) markdown(o gwOptions, before gwFigures, known bool) string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	root, _ := filepath.Abs("..")
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	barePeak, gwPk := gwPeak(r.bare), gwPeak(r.gw)
	ratio := gwPk.RPS() / barePeak.RPS()

	p("# pinpipe benchmark: the gateway and the S3 sink\n\n")
	p("Produced by `make bench-bin && cd bench && ./work/bench gateway%s` (issues 3 and 13). "+
		"Every number below comes from that one run.\n\n", " "+strings.Join(os.Args[2:], " "))
	p("## Machine\n\n")
	p("- date: %s\n", r.started.UTC().Format(time.RFC3339))
	p("- nproc: %d (GOMAXPROCS %d in every process)\n", runtime.NumCPU(), runtime.GOMAXPROCS(0))
	p("- CPU: %s\n- memory: %s\n- kernel: %s\n- go: %s\n", cpuModel(), memTotal(), strings.TrimSpace(string(kernel)), runtime.Version())
	p("- pinpipe: %s\n", gitState(root))
	p("- load average before the runs: %s; after the HTTP runs: %s\n", r.loadBefore, r.loadAt)
	p("- everything ran on this one machine and shared its %d CPUs: the load generator (this process), the server under test "+
		"and the Kafka broker (two child processes), and for the sink the S3 server (a third child)\n\n", runtime.NumCPU())

	lingerWhat := gateway.DefaultKafkaLinger.String() + " for more records before it sends a batch, the gateway's default"
	if o.kafkaLinger != 0 {
		lingerWhat = max(o.kafkaLinger, 0).String() + " for more records before it sends a batch (-kafka-linger)"
	}
	p("## How it was measured\n\n")
	p("- **Requests**: single-record REST Proxy v2 POSTs, `POST /topics/%s` with `Content-Type: %s` and "+
		"`{\"records\":[{\"value\":{...}}]}`, the value a generated pin record as the posting emulator sends it "+
		"(1,000 different bodies in turn, %.0f bytes on average).\n", gwTopic, gwRESTContentType, r.bodyBytes)
	p("- **Servers**, in turn on the same port %s, each started afresh for each measurement in a child process "+
		"of the small `work/gwserve` binary (`bench/cmd/gwserve`: the server's code and nothing else, so its RSS is the server's): "+
		"the **bare** handler, `net/http` reading the body and answering 200; the **gateway**, `gateway.New` with the defaults "+
		"of `pinpipe gateway --kinesis=off` (logs at warn), producing to a kfake broker (`ingest/devserver/kafka`, another child, "+
		"topic created beforehand with 3 partitions) and answering 200 only after the broker acknowledged the record (acks=all; "+
		"the producer lingers %s).\n", r.addr, lingerWhat)
	rateWhat := fmt.Sprintf("%.0f%% of the gateway's peak", 100*o.rateFraction)
	if o.rate > 0 {
		rateWhat = fmt.Sprintf("%.0f req/s (-rate)", o.rate)
	}
	p("- **Load**, from a load generator in this process (`bench/gateway_load.go`): HTTP/1.1 spoken by hand over keep-alive "+
		"connections, as wrk does (a request is one write of prepared header lines and the body; an answer is read for its status, "+
		"its framing and its body; only a 200 counts as answered, anything else as an error), the same for both servers. "+
		"Each worker has its own connection, dialled at its first request and again after a failure; each measurement reports "+
		"the connections opened after its warm-up, against the hundreds of thousands of requests sent. "+
		"**Peak**: closed loop, one worker and one request in flight per connection, %s warm-up then %s, at %v connections; "+
		"the peak is the best of them. **Fixed rate**: open loop, requests scheduled evenly at %s, handed to the first free of %d workers, "+
		"%s warm-up then %s; each latency counts from when its request was due, so queueing behind a slow answer counts too.\n",
		o.warmup, o.duration, o.conns, rateWhat, o.rateConns, o.warmup, o.rateDuration)
	if o.repeat > 1 {
		p("- **Repeated** %d times, bare and gateway alternating, each measurement with a fresh server: the tables show the median run "+
			"(by requests/s for the peaks, by p99 for the fixed rate), and list every run's figure.\n", o.repeat)
	}
	p("\n")

	p("## Peak throughput (closed loop)\n\n")
	p("| connections | bare req/s | bare p50 | bare p99 | gateway req/s | gateway p50 | gateway p99 | gateway / bare | errors (bare / gateway) | new connections (bare / gateway) | every run's req/s (bare; gateway) |\n")
	p("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n")
	for i := range r.bare {
		a, g := r.bare[i], r.gw[i]
		p("| %d | %.0f | %s | %s | %.0f | %s | %s | %.2f | %d / %d | %d / %d | %s; %s |\n", a.Conns, a.RPS(), gwMS(a.P50), gwMS(a.P99),
			g.RPS(), gwMS(g.P50), gwMS(g.P99), g.RPS()/a.RPS(), a.Errors, g.Errors, a.Dials, g.Dials,
			gwEach(r.bareRuns[i], func(s gwStats) string { return strconv.FormatFloat(s.RPS(), 'f', 0, 64) }),
			gwEach(r.gwRuns[i], func(s gwStats) string { return strconv.FormatFloat(s.RPS(), 'f', 0, 64) }))
	}
	p("\nPeaks (of the median runs): bare %.0f req/s (at %d connections), gateway %.0f req/s (at %d connections): the gateway does %.2f× the bare handler's requests/s.\n\n",
		barePeak.RPS(), barePeak.Conns, gwPk.RPS(), gwPk.Conns, ratio)
	p("Where the CPU went during those runs (user plus system time from `/proc/PID/stat`, 10 ms ticks), per answered request, "+
		"how many of the %d CPUs the three processes kept busy together, and how many the rest of the machine (other people's work; "+
		"from `/proc/stat`) kept busy meanwhile:\n\n", runtime.NumCPU())
	p("| connections | server | load generator µs/req | server µs/req | broker µs/req | CPUs busy (ours) | CPUs busy (others) | req per CPU-second (ours) |\n|---:|---|---:|---:|---:|---:|---:|---:|\n")
	for i := range r.bare {
		for _, x := range []struct {
			name string
			s    gwStats
		}{{"bare", r.bare[i]}, {"gateway", r.gw[i]}} {
			p("| %d | %s | %s | %.0f |\n", x.s.Conns, x.name, gwCPUCells(x.s), x.s.PerCPUSecond())
		}
	}
	bareEff, gwEff := gwBestPerCPU(r.bare), gwBestPerCPU(r.gw)
	p("\nRequests per CPU-second of the three processes depend much less on what else the machine was doing than requests per second: "+
		"best of each, bare %.0f, gateway %.0f (%.2f×).\n\n", bareEff, gwEff, gwEff/bareEff)

	p("## Latency at a fixed rate (open loop, %.0f req/s = %s)\n\n", r.rate, rateWhat)
	p("| server | scheduled req/s | answered req/s | p50 | p90 | p99 | p99.9 | max | errors | new connections | load generator µs/req | server µs/req | broker µs/req | CPUs busy (ours) | CPUs busy (others) |\n")
	p("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, x := range []struct {
		name string
		s    gwStats
	}{{"gateway", r.rateGW}, {"bare", r.rateBare}} {
		p("| %s | %.0f | %.0f | %s | %s | %s | %s | %s | %d | %d | %s |\n", x.name, x.s.Rate, x.s.RPS(), gwMS(x.s.P50), gwMS(x.s.P90),
			gwMS(x.s.P99), gwMS(x.s.P999), gwMS(x.s.Max), x.s.Errors, x.s.Dials, gwCPUCells(x.s))
	}
	if o.repeat > 1 {
		p99s := func(s gwStats) string { return gwMS(s.P99) }
		p("\nEvery run's p99: gateway %s; bare %s.\n", gwEach(r.rateGWRuns, p99s), gwEach(r.rateBareRuns, p99s))
	}
	p("\n")

	r.overloadMarkdown(p, o)

	if known {
		changes(p, before, r.figures(root))
	}

	if len(r.sink) > 0 {
		p("## S3 sink: Kafka (kfake) to S3 (gofakes3)\n\n")
		p("%d records (%d generated posts: pin, geo and user, keyed by ind) were produced into three topics of 3 partitions "+
			"before the sink started (in %s). `s3sink.Run` then ran in this process (flush size 1000, rotate interval 500 ms, "+
			"8 uploads at once), the broker and gofakes3 (in memory) each in a child process; the time is from its start until "+
			"its consumer group had committed every record, which it does only after the objects holding them are written.\n\n",
			r.sinkRecords, r.sinkRecords/3, r.sinkFill.Round(time.Millisecond))
		p("| format | records | seconds | records/s | objects written | MiB written |\n|---|---:|---:|---:|---:|---:|\n")
		for _, s := range r.sink {
			kind := "`.json`"
			if s.Compress {
				kind = "`.json.gz` (`--compress`)"
			}
			p("| %s | %d | %.2f | %.0f | %d | %.1f |\n", kind, s.Records, s.Elapsed.Seconds(), s.RPS(), s.Stats.Objects, float64(s.Stats.Bytes)/(1<<20))
		}
		p("\n")
	}

	p("## Targets\n\n| target | measured | goal | verdict |\n|---|---:|---|---|\n")
	p("| gateway peak req/s vs the bare handler's | %.2f× (%.0f / %.0f) | ≥ 0.50× | %s |\n", ratio, gwPk.RPS(), barePeak.RPS(), gwVerdict(ratio >= 0.5))
	rateOK := r.rateGW.Errors == 0 && r.rateGW.RPS() >= 0.95*r.rate
	p("| gateway p99 at %s (%.0f req/s scheduled, %.0f answered/s) | %s | < 10 ms | %s |\n", rateWhat, r.rate,
		r.rateGW.RPS(), gwMS(r.rateGW.P99), gwVerdict(o.rate == 0 && rateOK && r.rateGW.P99 < 10*time.Millisecond))
	p("| (informative) gateway vs bare, requests per CPU-second of load generator + server + broker, best of each | %.2f× (%.0f / %.0f) | - | - |\n",
		gwEff/bareEff, gwEff, bareEff)
	if len(r.overload) > 0 {
		g := r.overload[0]
		p("| gateway at %.0f× its peak (%.0f req/s scheduled, %.0f sent), %d idle connections open: accepted p99; 429s; timeouts; peak RSS | %s; %d (p99 %s); %d; %d MiB | "+
			"p99 < 50 ms, the rest 429 quickly, none time out, < 256 MiB | %s |\n", o.overloadFactor, g.Rate, g.SentRate, g.Idle, gwMS(g.P99), g.Throttled,
			gwMS(g.ThrottledP99), g.Timeouts, g.PeakRSS>>20, gwVerdict(g.gwOverloadOK()))
	}
	for _, s := range r.sink {
		name := "S3 sink records/s"
		if s.Compress {
			name += " (gzip)"
		}
		p("| %s | %.0f | none set: reported | - |\n", name, s.RPS())
	}
	if o.repeat > 1 {
		// Each repetition's own peaks: the spread of the verdicts.
		var ratios []string
		missedRatio := 0
		for k := range o.repeat {
			var bk, gk []gwStats
			for i := range r.bareRuns {
				bk, gk = append(bk, r.bareRuns[i][k]), append(gk, r.gwRuns[i][k])
			}
			rk := gwPeak(gk).RPS() / gwPeak(bk).RPS()
			ratios = append(ratios, strconv.FormatFloat(rk, 'f', 2, 64))
			if rk < 0.5 {
				missedRatio++
			}
		}
		missedP99 := 0
		for _, s := range r.rateGWRuns {
			if s.P99 >= 10*time.Millisecond {
				missedP99++
			}
		}
		p("\nThe verdicts are on the median runs. Run by run, the peak ratio was %s (%d of %d below 0.50), and the gateway's "+
			"fixed-rate p99 was %s (%d of %d at or over 10 ms).\n", strings.Join(ratios, " / "), missedRatio, o.repeat,
			gwEach(r.rateGWRuns, func(s gwStats) string { return gwMS(s.P99) }), missedP99, o.repeat)
	}
	if !rateOK {
		p("\nThe fixed-rate run did not keep up with its schedule (or had errors), so its latencies understate the problem.\n")
	}
	if r.rateBare.P99 >= r.rateGW.P99 {
		p("\nAt the same fixed rate the bare handler's p99 (%s) was no better than the gateway's (%s): that tail comes from the machine "+
			"(CPU contention, see the CPUs busy by others), not from the server under test.\n", gwMS(r.rateBare.P99), gwMS(r.rateGW.P99))
	}
	p("\n## Caveats\n\n")
	p("- The load generator, the server and the broker compete for the same %d CPUs, and other work on the machine shows in the "+
		"load averages above: the absolute numbers are this machine's at that time; the ratios, measured under the same conditions "+
		"minutes apart, are the point.\n", runtime.NumCPU())
	var others, elapsed time.Duration
	worst := 0.0
	for _, runs := range append(slices.Clone(r.bareRuns), r.gwRuns...) {
		for _, s := range runs {
			others, elapsed = others+s.CPU.Others(), elapsed+s.Elapsed
			worst = max(worst, float64(s.CPU.Others())/float64(s.Elapsed))
		}
	}
	if avg := float64(others) / float64(max(elapsed, 1)); avg > 0.2 {
		p("- Other work used %.2f of the %d CPUs on average during the peak runs (%.2f in the worst one): the peaks are below what "+
			"this machine does alone, the bare handler's and the gateway's alike, and the fixed rate, a fraction of the gateway's "+
			"measured peak, is lower than it would be on an idle machine, which makes the latency target easier to meet.\n",
			avg, runtime.NumCPU(), worst)
	}
	p("- Closed-loop latencies are service times at saturation (more connections: more queueing), not what a client sees at a moderate rate; the open-loop table is that.\n")
	p("- The gateway's work per request beyond the bare handler's: decoding and validating the JSON body, producing the record and "+
		"waiting for the broker's acknowledgement (acks=all), so its latencies include the broker's, and the producer's linger "+
		"(up to %v while other requests are producing: it is what limits the gateway's closed loop over a few connections). "+
		"`-server-cpuprofile=DIR` writes the gateway's CPU profile of each measurement "+
		"(`go tool pprof -top work/bench DIR/gateway-peak-256.pprof`).\n", gateway.DefaultKafkaLinger)
	if busy := float64(r.rateGW.CPU.Machine) / float64(r.rateGW.Elapsed); busy > 0.8*float64(runtime.NumCPU()) {
		p("- During the gateway's fixed-rate run the machine's CPUs were %.0f%% busy (%.2f of %d: %.2f ours, %.2f others'): "+
			"at that rate the load generator, the gateway and the broker alone need %.0f%% of this machine, so its latency tail "+
			"is largely queueing for a CPU.\n", 100*busy/float64(runtime.NumCPU()), busy, runtime.NumCPU(),
			float64(r.rateGW.CPU.Load+r.rateGW.CPU.Server+r.rateGW.CPU.Broker)/float64(r.rateGW.Elapsed),
			float64(r.rateGW.CPU.Others())/float64(r.rateGW.Elapsed),
			100*float64(r.rateGW.CPU.Load+r.rateGW.CPU.Server+r.rateGW.CPU.Broker)/float64(r.rateGW.Elapsed)/float64(runtime.NumCPU()))
	}
	return b.String()
}

// gwFigures are a report's headline figures, kept beside it in a JSON
// file (GATEWAY.md's is GATEWAY.json) so that the next run can say what
// changed since, from measurements rather than from numbers typed in.
type gwFigures struct {
	Date, Commit                 string
	LoadBefore                   string
	BarePeak, GatewayPeak        float64 // requests/s, the median runs' best connection count
	Rate                         float64 // the fixed rate, requests/s
	RateP99MS                    float64 // the gateway's p99 at the fixed rate
	RateBusy                     float64 // CPUs our three processes kept busy at the fixed rate
	OverloadSent                 float64 // requests/s the overload run sent
	OverloadP99MS, ThrottleP99MS float64 // the gateway's accepted and 429 p99 under overload
	OverloadPeakRSSMiB           float64
}

// figures are r's headline figures.
func (r *gwResults) figures(root string) gwFigures {
	f := gwFigures{Date: r.started.UTC().Format(time.RFC3339), Commit: gitState(root), LoadBefore: r.loadBefore,
		BarePeak: gwPeak(r.bare).RPS(), GatewayPeak: gwPeak(r.gw).RPS(), Rate: r.rate, RateP99MS: millis(r.rateGW.P99)}
	if g := r.rateGW; g.Elapsed > 0 {
		f.RateBusy = float64(g.CPU.Load+g.CPU.Server+g.CPU.Broker) / float64(g.Elapsed)
	}
	if len(r.overload) > 0 {
		g := r.overload[0]
		f.OverloadSent, f.OverloadP99MS, f.ThrottleP99MS = g.SentRate, millis(g.P99), millis(g.ThrottledP99)
		f.OverloadPeakRSSMiB = float64(g.PeakRSS) / (1 << 20)
	}
	return f
}

func millis(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// figuresPath is where the figures of the report at out are kept.
func figuresPath(out string) string {
	return strings.TrimSuffix(out, filepath.Ext(out)) + ".json"
}

// readFigures reads the previous report's figures, if it left any.
func readFigures(path string) (gwFigures, bool) {
	var f gwFigures
	b, err := os.ReadFile(path)
	if err != nil || json.Unmarshal(b, &f) != nil {
		return f, false
	}
	return f, true
}

// changes compares this run's figures with the previous report's: what
// changed between them is in git's history between the two commits.
func changes(p func(string, ...any), before, now gwFigures) {
	p("## Compared with the previous report\n\n")
	p("The previous report was measured at %s (pinpipe %s, load average before it %s); the code changes between the two are "+
		"`git log` between those commits. Both on this kind of machine, with the same command; the ratios matter more than the "+
		"absolute figures (see Caveats).\n\n", before.Date, before.Commit, before.LoadBefore)
	p("| | previous report | this run |\n|---|---:|---:|\n")
	p("| bare peak req/s | %.0f | %.0f |\n", before.BarePeak, now.BarePeak)
	p("| gateway peak req/s | %.0f | %.0f |\n", before.GatewayPeak, now.GatewayPeak)
	if before.BarePeak > 0 && now.BarePeak > 0 {
		p("| gateway / bare, peak | %.2f× | %.2f× |\n", before.GatewayPeak/before.BarePeak, now.GatewayPeak/now.BarePeak)
	}
	p("| fixed rate: req/s | %.0f | %.0f |\n", before.Rate, now.Rate)
	p("| fixed rate: CPUs busy (ours) | %.2f | %.2f |\n", before.RateBusy, now.RateBusy)
	p("| fixed rate: gateway p99 | %.2f ms | %.2f ms |\n", before.RateP99MS, now.RateP99MS)
	if before.OverloadSent > 0 || now.OverloadSent > 0 {
		p("| overload: req/s sent | %.0f | %.0f |\n", before.OverloadSent, now.OverloadSent)
		p("| overload: accepted p99 | %.2f ms | %.2f ms |\n", before.OverloadP99MS, now.OverloadP99MS)
		p("| overload: 429 p99 | %.2f ms | %.2f ms |\n", before.ThrottleP99MS, now.ThrottleP99MS)
		p("| overload: gateway peak RSS | %.0f MiB | %.0f MiB |\n", before.OverloadPeakRSSMiB, now.OverloadPeakRSSMiB)
	}
	p("\n")
}
