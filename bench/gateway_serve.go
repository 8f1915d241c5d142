package main

// The gateway benchmark's servers run as child processes of the small
// gwserve binary (bench/cmd/gwserve, package gwserve), built beside this
// one by `make bench-bin`.

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/pinpipe/pinpipe/bench/gwserve"
)

// gwBucket is the S3 bucket the s3 child creates.
const gwBucket = gwserve.Bucket

// gwServerBin is the gwserve binary: -server-bin, or gwserve beside this
// binary.
var gwServerBin string

func gwServerPath() (string, error) {
	if gwServerBin != "" {
		return gwServerBin, nil
	}
	exe, err := os.Executable()
	if err != nil {
		return "", err
	}
	p := filepath.Join(filepath.Dir(exe), "gwserve")
	if _, err := os.Stat(p); err != nil {
		return "", errors.New("the servers' binary " + p + " is missing: build it with `make bench-bin` (cd bench && go build -o work/gwserve ./cmd/gwserve), or give -server-bin")
	}
	return p, nil
}

// gwChild is a child server.
type gwChild struct {
	mode  string
	cmd   *exec.Cmd
	stdin io.WriteCloser
	addr  string
	done  chan error
}

// startGWChild starts a gwserve child server and waits until it listens.
func startGWChild(mode, listen string, extra ...string) (*gwChild, error) {
	exe, err := gwServerPath()
	if err != nil {
		return nil, err
	}
	args := append([]string{"-serve=" + mode, "-listen=" + listen}, extra...)
	cmd := exec.Command(exe, args...)
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
		return nil, fmt.Errorf("starting the %s server: %w", mode, err)
	}
	c := &gwChild{mode: mode, cmd: cmd, stdin: stdin, done: make(chan error, 1)}
	line := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		if sc.Scan() {
			line <- sc.Text()
		}
		close(line)
		_, _ = io.Copy(io.Discard, out)
		c.done <- cmd.Wait()
	}()
	select {
	case l, ok := <-line:
		addr, found := strings.CutPrefix(l, "listening ")
		if !ok || !found {
			c.stop()
			return nil, fmt.Errorf("the %s server exited before listening", mode)
		}
		c.addr = addr
		return c, nil
	case <-time.After(30 * time.Second):
		c.stop()
		return nil, fmt.Errorf("the %s server did not listen within 30 s", mode)
	}
}

// stop ends the child (SIGTERM, then SIGKILL after 15 s) and waits for it.
func (c *gwChild) stop() error {
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-c.done:
		return err
	case <-time.After(15 * time.Second):
		_ = c.cmd.Process.Kill()
		return fmt.Errorf("the %s server did not stop within 15 s: killed: %v", c.mode, <-c.done)
	}
}
