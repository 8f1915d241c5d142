// Package kinesalite starts kinesalite, a local Kinesis API on Node.js
// (installed from npm by scripts/kinesalite.sh), bound to loopback, for
// pinpipe demo/up and for the tests (internal/testenv): one way to start it.
package kinesalite

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// ErrNotInstalled says that kinesalite or Node.js is missing.
var ErrNotInstalled = errors.New("kinesalite is not installed")

// script starts kinesalite (its module dir is the argument) on a loopback
// port the kernel picks, prints the port, and exits when stdin ends.
// Streams are created, deleted and updated within 50 ms, and up to 1000
// shards may exist.
const script = `// kinesalite throws from a request's 'error' event when its client goes
// away mid-request (a job killed with SIGKILL while it reads), which ended
// the whole server: that request is over, the server serves on.
process.on('uncaughtException', (err) => {
  if (err && (err.code === 'ECONNRESET' || err.message === 'aborted')) {
    console.error('kinesalite: a client went away mid-request (' + err.message + '); serving on');
    return;
  }
  console.error(err);
  process.exit(1);
});
const s = require(process.argv[1])({createStreamMs: 50, deleteStreamMs: 50, updateStreamMs: 50, shardLimit: 1000});
s.listen(0, '127.0.0.1', () => console.log(s.address().port));
process.stdin.on('end', () => process.exit(0));
process.stdin.on('error', () => process.exit(0));
process.stdin.resume();`

// Dir is where scripts/kinesalite.sh installs kinesalite:
// $PINPIPE_KINESALITE_DIR, else .cache/kinesalite in the repository holding
// the working directory (or in the working directory itself).
func Dir() string {
	if d := os.Getenv("PINPIPE_KINESALITE_DIR"); d != "" {
		return d
	}
	wd, _ := os.Getwd()
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "scripts", "kinesalite.sh")); err == nil {
			return filepath.Join(d, ".cache", "kinesalite")
		}
		if filepath.Dir(d) == d {
			return filepath.Join(wd, ".cache", "kinesalite")
		}
	}
}

// Installed reports whether kinesalite is installed in dir and node is on
// PATH; the error says what is missing (it wraps ErrNotInstalled).
func Installed(dir string) error {
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "kinesalite", "package.json")); err != nil {
		return fmt.Errorf("%w in %s: run scripts/kinesalite.sh install (needs Node.js and npm), "+
			"or set PINPIPE_KINESALITE_DIR to where it is installed", ErrNotInstalled, dir)
	}
	if _, err := exec.LookPath("node"); err != nil {
		return fmt.Errorf("%w: it needs Node.js, and node is not on PATH (Debian: apt-get install nodejs)", ErrNotInstalled)
	}
	return nil
}

// Server is a kinesalite this process started. It exits when its stdin
// closes, so it also goes when this process dies without calling Close.
type Server struct {
	// URL is its endpoint, http://127.0.0.1:PORT.
	URL    string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	exited chan struct{}
}

// Start starts kinesalite from dir (Dir() when empty).
func Start(ctx context.Context, dir string) (*Server, error) {
	if dir == "" {
		dir = Dir()
	}
	if err := Installed(dir); err != nil {
		return nil, err
	}
	cmd := exec.Command("node", "-e", script, filepath.Join(dir, "node_modules", "kinesalite"))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting kinesalite with node: %w", err)
	}
	k := &Server{cmd: cmd, stdin: stdin, exited: make(chan struct{})}
	line := make(chan string, 1)
	go func() {
		defer close(k.exited)
		sc := bufio.NewScanner(out)
		if sc.Scan() {
			line <- sc.Text()
		}
		close(line)
		_, _ = io.Copy(io.Discard, out)
		_ = cmd.Wait()
	}()
	select {
	case port, ok := <-line:
		if port = strings.TrimSpace(port); !ok || port == "" {
			k.Close()
			return nil, errors.New("kinesalite exited before listening")
		}
		k.URL = "http://127.0.0.1:" + port
		return k, nil
	case <-time.After(20 * time.Second):
		k.Close()
		return nil, errors.New("kinesalite did not start within 20 s")
	case <-ctx.Done():
		k.Close()
		return nil, ctx.Err()
	}
}

// Close ends kinesalite: its stdin closes, and if it has not exited within
// 5 s it is killed.
func (k *Server) Close() error {
	k.stdin.Close()
	select {
	case <-k.exited:
		return nil
	case <-time.After(5 * time.Second):
		_ = k.cmd.Process.Kill()
		<-k.exited
		return errors.New("kinesalite did not exit when asked; killed it")
	}
}
