package testenv

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// bin is the pinpipe binary built for the test binary, on first use.
var bin struct {
	once sync.Once
	dir  string
	err  error
	out  []byte
}

// Pinpipe builds cmd/pinpipe once per test binary and returns its path, for
// tests that run the real command as a separate process (to kill it, say).
// The package's TestMain must call RemoveBuilds after the tests.
func Pinpipe(t testing.TB) string {
	t.Helper()
	bin.once.Do(func() {
		bin.dir, bin.err = os.MkdirTemp("", "pinpipe-test")
		if bin.err == nil {
			cmd := exec.Command("go", "build", "-o", filepath.Join(bin.dir, "pinpipe"), "github.com/pinpipe/pinpipe/cmd/pinpipe")
			bin.out, bin.err = cmd.CombinedOutput()
		}
	})
	if bin.err != nil {
		t.Fatalf("building pinpipe: %v\n%s", bin.err, bin.out)
	}
	return filepath.Join(bin.dir, "pinpipe")
}

// RemoveBuilds removes what Pinpipe and StartPrismJobServer built.
func RemoveBuilds() {
	if bin.dir != "" {
		os.RemoveAll(bin.dir)
	}
	if prismBin.dir != "" {
		os.RemoveAll(prismBin.dir)
	}
}

// Proc is a command running as a subprocess of the test, its output kept.
type Proc struct {
	Name string
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  bytes.Buffer
	err  bytes.Buffer
	done chan struct{}
	exit error
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// Start starts bin with args and env added to the test's environment. It
// is killed when the test ends if still running, and its output is logged
// if the test failed.
func Start(t testing.TB, bin string, env []string, args ...string) *Proc {
	t.Helper()
	p := &Proc{cmd: exec.Command(bin, args...), Name: strings.Join(args[:min(2, len(args))], " "), done: make(chan struct{})}
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout = lockedWriter{&p.mu, &p.out}
	p.cmd.Stderr = lockedWriter{&p.mu, &p.err}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.exit = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("%s: stdout:\n%s\nstderr:\n%s", p.Name, p.Stdout(), tail(p.Stderr(), 20000))
		}
	})
	return p
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// Stdout is what the process wrote to its stdout so far.
func (p *Proc) Stdout() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// Stderr is what the process wrote to its stderr so far.
func (p *Proc) Stderr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err.String()
}

// Exited reports whether the process ended, and how.
func (p *Proc) Exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.exit
	default:
		return false, nil
	}
}

// ListenAddr waits for the server's "listening on <addr>" line on stdout.
func (p *Proc) ListenAddr(t testing.TB) string {
	t.Helper()
	return p.WaitBetween(t, p.Stdout, "listening on ", " ")
}

// WaitBetween waits up to 20 s for out (Stdout or Stderr) to hold after,
// then before, and returns what is between them (an address the process
// announces); it fails the test if the process exits first.
func (p *Proc) WaitBetween(t testing.TB, out func() string, after, before string) string {
	t.Helper()
	var found string
	WaitFor(t, 20*time.Second, fmt.Sprintf("%s to print %q", p.Name, after), func() bool {
		if done, err := p.Exited(); done {
			t.Fatalf("%s exited: %v\n%s", p.Name, err, p.Stderr())
		}
		_, rest, ok := strings.Cut(out(), after)
		if ok {
			found, _, ok = strings.Cut(rest, before)
		}
		return ok
	})
	return found
}

// Signal sends sig and waits up to timeout for the process to exit.
func (p *Proc) Signal(sig os.Signal, timeout time.Duration) error {
	p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
		return p.exit
	case <-time.After(timeout):
		return fmt.Errorf("%s still running %s after %v", p.Name, timeout, sig)
	}
}

// Stop sends SIGTERM and waits up to 30 s for the exit.
func (p *Proc) Stop() error { return p.Signal(syscall.SIGTERM, 30*time.Second) }

// Kill sends SIGKILL and waits for the exit.
func (p *Proc) Kill() {
	p.cmd.Process.Kill()
	<-p.done
}

// WaitFor polls cond until it holds, failing the test after timeout.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// PID is the process's id.
func (p *Proc) PID() int { return p.cmd.Process.Pid }
