package main

// The streaming benchmark's processes, each a child of this one: a
// PostgreSQL server, the Kafka broker (`pinpipe dev kafka`, kfake),
// kinesalite (Node.js), the gateway (`pinpipe gateway`) and, per run, the
// streaming job (`pinpipe stream`, prism in process). Every child is killed
// by the kernel if this process dies (Pdeathsig), so none outlives a
// crashed or interrupted benchmark.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// stChild is a running child process whose output goes to a log file.
type stChild struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error // the exit status, once done is closed
	// ready gets the first submatch of the ready pattern in the output.
	ready chan string
	stdin io.WriteCloser
}

// stStart starts bin with args, its output to logPath; readyRE, when set,
// is matched against each line of output and its first submatch sent on
// ready. cred runs it as another user.
func stStart(name, logPath string, env []string, cred *syscall.Credential, readyRE string, bin string, args ...string) (*stChild, error) {
	lf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Credential: cred}
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	// Children that exit at the end of their stdin (kinesalite) go when we do.
	stdin, err := cmd.StdinPipe()
	if err != nil {
		lf.Close()
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	c := &stChild{name: name, cmd: cmd, done: make(chan struct{}), ready: make(chan string, 1), stdin: stdin}
	var re *regexp.Regexp
	if readyRE != "" {
		re = regexp.MustCompile(readyRE)
	}
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(lf, line)
			if re != nil {
				if m := re.FindStringSubmatch(line); m != nil {
					c.ready <- m[1]
					re = nil
				}
			}
		}
		_, _ = io.Copy(lf, pr)
		lf.Close()
	}()
	go func() {
		c.err = cmd.Wait()
		pw.Close()
		close(c.done)
	}()
	return c, nil
}

// waitReady waits for the ready pattern.
func (c *stChild) waitReady(timeout time.Duration) (string, error) {
	select {
	case s := <-c.ready:
		return s, nil
	case <-c.done:
		return "", fmt.Errorf("%s exited before it was ready: %v (see its log)", c.name, c.err)
	case <-time.After(timeout):
		return "", fmt.Errorf("%s was not ready within %s (see its log)", c.name, timeout)
	}
}

func (c *stChild) pid() int { return c.cmd.Process.Pid }

// stop sends sig and waits up to timeout for the child to exit, then kills
// it. It reports whether the child exited on its own.
func (c *stChild) stop(sig os.Signal, timeout time.Duration) bool {
	select {
	case <-c.done:
		return true
	default:
	}
	_ = c.cmd.Process.Signal(sig)
	select {
	case <-c.done:
		return true
	case <-time.After(timeout):
		_ = c.cmd.Process.Kill()
		<-c.done
		return false
	}
}

// stFreePort is a loopback port free now.
func stFreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// stPG is the benchmark's PostgreSQL server.
type stPG struct {
	*stChild
	bin     string
	port    int
	version string
}

// stPostgresBin finds the newest PostgreSQL server binaries.
func stPostgresBin() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int {
		va, _ := strconv.Atoi(filepath.Base(filepath.Dir(a)))
		vb, _ := strconv.Atoi(filepath.Base(filepath.Dir(b)))
		return va - vb
	})
	for i := len(dirs) - 1; i >= 0; i-- {
		if _, err := os.Stat(filepath.Join(dirs[i], "initdb")); err == nil {
			return dirs[i], nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", errors.New("PostgreSQL's initdb not found (Debian/Ubuntu: apt-get install postgresql)")
}

// stPGSettings are the server settings beyond the defaults, as the report
// lists them.
var stPGSettings = []string{
	"listen_addresses=127.0.0.1",
	"track_commit_timestamp=on",
	"fsync=off",
	"full_page_writes=off",
	"max_connections=200",
	"log_min_messages=warning",
}

// stStartPG initialises a fresh cluster in dir and starts it on a free
// port. As root, initdb and the server run as the postgres user (they
// refuse to run as root).
func stStartPG(dir string) (*stPG, error) {
	bin, err := stPostgresBin()
	if err != nil {
		return nil, err
	}
	if err := os.RemoveAll(dir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("running as root needs a postgres user to run PostgreSQL as: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(dir, uid, gid); err != nil {
			return nil, err
		}
	}
	data := filepath.Join(dir, "data")
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := initdb.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("initdb: %v\n%s", err, out)
	}
	port, err := stFreePort()
	if err != nil {
		return nil, err
	}
	args := []string{"-D", data, "-p", strconv.Itoa(port), "-k", dir}
	for _, s := range stPGSettings {
		args = append(args, "-c", s)
	}
	c, err := stStart("postgres", filepath.Join(dir, "..", "postgres.log"), nil, cred, "", filepath.Join(bin, "postgres"), args...)
	if err != nil {
		return nil, err
	}
	pg := &stPG{stChild: c, bin: bin, port: port}
	deadline := time.Now().Add(60 * time.Second)
	for {
		conn, err := pgx.Connect(context.Background(), pg.dsn("postgres"))
		if err == nil {
			err = conn.QueryRow(context.Background(), "SHOW server_version").Scan(&pg.version)
			conn.Close(context.Background())
			if err == nil {
				return pg, nil
			}
		}
		if time.Now().After(deadline) {
			pg.stop(syscall.SIGKILL, time.Second)
			return nil, fmt.Errorf("PostgreSQL did not accept connections within 60 s: %v", err)
		}
		select {
		case <-c.done:
			return nil, fmt.Errorf("PostgreSQL exited: %v (see work/streaming/postgres.log)", c.err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (pg *stPG) dsn(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", pg.port, db)
}

// createDB creates a fresh database for one run.
func (pg *stPG) createDB(ctx context.Context, name string) error {
	conn, err := pgx.Connect(ctx, pg.dsn("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()); err != nil {
		return err
	}
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	return err
}

// stCPUTimes are the CPU times used so far by the benchmark's processes,
// by name, and the machine's busy time (all CPUs, all processes).
type stCPUTimes struct {
	At      time.Time
	Procs   map[string]time.Duration
	Machine time.Duration
}

// stProcStat reads utime, stime, cutime, cstime and the parent pid of a
// process from /proc/PID/stat.
func stProcStat(pid int) (cpu time.Duration, ppid int, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, false
	}
	// Fields after the command: state(3) ppid(4) ... utime(14) stime(15)
	// cutime(16) cstime(17), numbered from 1 as in proc(5).
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 15 {
		return 0, 0, false
	}
	ppid, _ = strconv.Atoi(f[1])
	var ticks int64
	for _, k := range []int{11, 12, 13, 14} {
		n, err := strconv.ParseInt(f[k], 10, 64)
		if err != nil {
			return 0, 0, false
		}
		ticks += n
	}
	return time.Duration(ticks) * 10 * time.Millisecond, ppid, true
}

// stTreeCPU is the CPU time of pid and of its children, living (their own)
// and exited (the cutime and cstime pid was credited with): PostgreSQL's
// backends are children of its postmaster.
func stTreeCPU(pid int) time.Duration {
	total, _, ok := stProcStat(pid)
	if !ok {
		return 0
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return total
	}
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil || p == pid {
			continue
		}
		if cpu, ppid, ok := stProcStat(p); ok && ppid == pid {
			total += cpu
		}
	}
	return total
}

// stEnv is the set of servers the runs share.
type stEnv struct {
	o          stOptions
	pinpipe    string
	work, logs string
	pg         *stPG
	kafka      *stChild
	kafkaAddr  string
	kinesalite *stChild
	kinesisURL string
	gateway    *stChild
	gatewayURL string
	http       *http.Client

	mu   sync.Mutex
	jobs map[string]int // running streaming jobs' pids, by name
}

// awsEnv is the environment that points the AWS SDK at kinesalite.
func (e *stEnv) awsEnv() []string {
	if e.kinesisURL == "" {
		return nil
	}
	return []string{"AWS_REGION=us-east-1", "AWS_ENDPOINT_URL_KINESIS=" + e.kinesisURL, "AWS_ACCESS_KEY_ID=bench",
		"AWS_SECRET_ACCESS_KEY=bench", "AWS_EC2_METADATA_DISABLED=true"}
}

// cpu reads the CPU time of every process of the benchmark.
func (e *stEnv) cpu() stCPUTimes {
	t := stCPUTimes{At: time.Now(), Procs: map[string]time.Duration{}, Machine: machineBusyCPU()}
	own, _, _ := stProcStat(os.Getpid())
	t.Procs["sender"] = own
	if e.gateway != nil {
		t.Procs["gateway"] = stTreeCPU(e.gateway.pid())
	}
	if e.kafka != nil {
		t.Procs["kfake"] = stTreeCPU(e.kafka.pid())
	}
	if e.kinesalite != nil {
		t.Procs["kinesalite"] = stTreeCPU(e.kinesalite.pid())
	}
	if e.pg != nil {
		t.Procs["postgres"] = stTreeCPU(e.pg.pid())
	}
	e.mu.Lock()
	for name, pid := range e.jobs {
		t.Procs[name] = stTreeCPU(pid)
	}
	e.mu.Unlock()
	return t
}

// stCPUBusy is how many CPUs each process kept busy between two readings,
// and the machine as a whole ("machine").
func stCPUBusy(a, b stCPUTimes) map[string]float64 {
	wall := b.At.Sub(a.At).Seconds()
	out := map[string]float64{}
	if wall <= 0 {
		return out
	}
	for name, t := range b.Procs {
		if t0, ok := a.Procs[name]; ok {
			out[name] = (t - t0).Seconds() / wall
		}
	}
	out["machine"] = (b.Machine - a.Machine).Seconds() / wall
	return out
}

// stStartEnv starts the servers.
func stStartEnv(ctx context.Context, o stOptions, pinpipe string) (*stEnv, error) {
	work, err := filepath.Abs(filepath.Join(o.work, "streaming"))
	if err != nil {
		return nil, err
	}
	e := &stEnv{o: o, pinpipe: pinpipe, work: work, jobs: map[string]int{}}
	e.logs = filepath.Join(e.work, "logs")
	if err := os.MkdirAll(e.logs, 0o755); err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			e.close()
		}
	}()
	stLog("starting PostgreSQL")
	if e.pg, err = stStartPG(filepath.Join(e.work, "pg")); err != nil {
		return nil, err
	}
	if slices.Contains(o.sources, "kafka") || slices.Contains(o.peakSources, "kafka") {
		stLog("starting the Kafka broker (kfake)")
		e.kafka, err = stStart("kfake", filepath.Join(e.logs, "kfake.log"), nil, nil, `listening on (\S+)`,
			pinpipe, "dev", "kafka", "--listen=127.0.0.1:0", "--partitions="+strconv.Itoa(o.partitions))
		if err != nil {
			return nil, err
		}
		if e.kafkaAddr, err = e.kafka.waitReady(30 * time.Second); err != nil {
			return nil, err
		}
	}
	if slices.Contains(o.sources, "kinesis") || slices.Contains(o.peakSources, "kinesis") {
		stLog("starting kinesalite")
		mod := filepath.Join(o.kinesaliteDir, "node_modules", "kinesalite")
		if _, err := os.Stat(filepath.Join(mod, "package.json")); err != nil {
			return nil, fmt.Errorf("kinesalite is not installed in %s (scripts/kinesalite.sh install, or -kinesalite-dir): %w", o.kinesaliteDir, err)
		}
		e.kinesalite, err = stStart("kinesalite", filepath.Join(e.logs, "kinesalite.log"), nil, nil, `^(\d+)$`,
			"node", "-e", stKinesaliteScript, mod)
		if err != nil {
			return nil, err
		}
		port, err := e.kinesalite.waitReady(30 * time.Second)
		if err != nil {
			return nil, err
		}
		e.kinesisURL = "http://127.0.0.1:" + port
	}
	port, err := stFreePort()
	if err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	args := []string{"gateway", "--listen=" + addr, "--kinesis=off"}
	if e.kafkaAddr != "" {
		args = append(args, "--kafka-brokers="+e.kafkaAddr)
	}
	if e.kinesisURL != "" {
		args[2] = "--kinesis=on"
	}
	stLog("starting the gateway")
	if e.gateway, err = stStart("gateway", filepath.Join(e.logs, "gateway.log"), e.awsEnv(), nil, "", pinpipe, args...); err != nil {
		return nil, err
	}
	e.gatewayURL = "http://" + addr
	e.http = &http.Client{Timeout: 10 * time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := e.http.Get(e.gatewayURL + "/healthz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return nil, fmt.Errorf("the gateway did not answer /healthz within 30 s: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	ok = true
	return e, nil
}

// close stops every server.
func (e *stEnv) close() {
	for _, c := range []*stChild{e.gateway, e.kafka, e.kinesalite} {
		if c != nil {
			c.stop(syscall.SIGTERM, 10*time.Second)
		}
	}
	if e.pg != nil {
		e.pg.stop(syscall.SIGINT, 20*time.Second) // fast shutdown
	}
}

// stKinesaliteScript starts kinesalite (its module dir is the argument)
// on a port the kernel picks, prints the port, and exits when stdin ends
// (as internal/testenv does).
const stKinesaliteScript = `const s = require(process.argv[1])({createStreamMs: 50, deleteStreamMs: 50, updateStreamMs: 50, shardLimit: 1000});
s.listen(0, '127.0.0.1', () => console.log(s.address().port));
process.stdin.on('end', () => process.exit(0));
process.stdin.on('error', () => process.exit(0));
process.stdin.resume();`
