package demo

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

// kinesalite is a kinesalite (a local Kinesis on Node.js) this process
// started. It exits when its stdin closes, so that it also goes when this
// process dies without calling close.
type kinesalite struct {
	url    string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	exited chan struct{}
}

// kinesaliteScript starts kinesalite (its module dir is the argument) on a
// loopback port the kernel picks, prints the port, and exits when stdin
// ends. As internal/testenv's, which the tests use.
const kinesaliteScript = `const s = require(process.argv[1])({createStreamMs: 50, deleteStreamMs: 50, updateStreamMs: 50, shardLimit: 1000});
s.listen(0, '127.0.0.1', () => console.log(s.address().port));
process.stdin.on('end', () => process.exit(0));
process.stdin.on('error', () => process.exit(0));
process.stdin.resume();`

// KinesaliteDir is where scripts/kinesalite.sh installs kinesalite:
// $PINPIPE_KINESALITE_DIR, else .cache/kinesalite in the repository holding
// the working directory (or in the working directory itself).
func KinesaliteDir() string {
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

func startKinesalite(ctx context.Context, dir string) (*kinesalite, error) {
	if dir == "" {
		dir = KinesaliteDir()
	}
	mod := filepath.Join(dir, "node_modules", "kinesalite")
	if _, err := os.Stat(filepath.Join(mod, "package.json")); err != nil {
		return nil, fmt.Errorf("kinesalite is not installed in %s: run scripts/kinesalite.sh install (needs Node.js and npm), "+
			"or set PINPIPE_KINESALITE_DIR to where it is installed", dir)
	}
	if _, err := exec.LookPath("node"); err != nil {
		return nil, errors.New("kinesalite needs Node.js, and node is not on PATH (Debian: apt-get install nodejs)")
	}
	cmd := exec.Command("node", "-e", kinesaliteScript, mod)
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
	k := &kinesalite{cmd: cmd, stdin: stdin, exited: make(chan struct{})}
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
			k.close()
			return nil, errors.New("kinesalite exited before listening")
		}
		k.url = "http://127.0.0.1:" + port
		return k, nil
	case <-time.After(20 * time.Second):
		k.close()
		return nil, errors.New("kinesalite did not start within 20 s")
	case <-ctx.Done():
		k.close()
		return nil, ctx.Err()
	}
}

// close ends kinesalite: its stdin closes, and if it has not exited within
// 5 s it is killed.
func (k *kinesalite) close() error {
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
