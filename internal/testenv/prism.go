package testenv

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// PrismJobServer builds Beam's prism and starts it as a standalone job
// server on a free loopback port, for jobs submitted with
// --runner=universal --endpoint=<the returned host:port>, the path a Flink
// job server takes. It stops when the test ends, and its log is shown if
// the test failed.
func PrismJobServer(t testing.TB) string {
	t.Helper()
	return StartPrismJobServer(t, nil).Endpoint
}

// prismBin is Beam's prism, built once per test binary.
var prismBin struct {
	once sync.Once
	dir  string
	err  error
	out  []byte
}

// JobServer is a standalone prism job server started by the test.
type JobServer struct {
	Endpoint string
	cmd      *exec.Cmd
	cancel   context.CancelFunc
}

// StartPrismJobServer starts prism as a job server with env added to its
// environment (its SDK workers inherit it), in a process group of its own,
// so that KillGroup kills it and every worker it started.
func StartPrismJobServer(t testing.TB, env []string) *JobServer {
	t.Helper()
	prismBin.once.Do(func() {
		prismBin.dir, prismBin.err = os.MkdirTemp("", "prism-test")
		if prismBin.err == nil {
			prismBin.out, prismBin.err = exec.Command("go", "build", "-o", filepath.Join(prismBin.dir, "prism"), "github.com/apache/beam/sdks/v2/go/cmd/prism").CombinedOutput()
		}
	})
	if prismBin.err != nil {
		t.Fatalf("building prism: %v\n%s", prismBin.err, prismBin.out)
	}
	dir := t.TempDir()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	logFile, err := os.Create(filepath.Join(dir, "prism.log"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, filepath.Join(prismBin.dir, "prism"), fmt.Sprintf("--job_port=%d", port), "--serve_http=false")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Env = append(os.Environ(), env...)
	// Workers started by Beam's boot program write files (pipeline_options.json)
	// into the job server's working directory: keep them out of the source tree.
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	js := &JobServer{Endpoint: fmt.Sprintf("localhost:%d", port), cmd: cmd, cancel: cancel}
	t.Cleanup(func() {
		js.KillGroup()
		logFile.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logFile.Name())
			t.Logf("prism job server log:\n%.20000s", b)
		}
	})
	WaitFor(t, 30*time.Second, "the prism job server to listen", func() bool {
		c, err := net.Dial("tcp", js.Endpoint)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return js
}

// KillGroup kills the job server and every process of its group (its SDK
// workers) with SIGKILL, and waits for the server.
func (js *JobServer) KillGroup() {
	if js.cmd.Process != nil {
		syscall.Kill(-js.cmd.Process.Pid, syscall.SIGKILL)
	}
	js.cancel()
	js.cmd.Wait()
}

// ProcessEnvironment builds Beam's Go boot program (sdks/go/container) and
// a wrapper for it, and returns the --environment_config that makes a
// portable runner start SDK workers with it (--environment_type=PROCESS):
// the boot program fetches the staged job binary and runs it in its own
// process, as Flink's and Dataflow's workers do. The wrapper strips the
// single quotes prism puts around the worker id, which the boot program
// otherwise rejects, and gives each boot a directory of its own under the
// test's temporary directory.
func ProcessEnvironment(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	boot := filepath.Join(dir, "boot")
	if out, err := exec.Command("go", "build", "-o", boot, "github.com/apache/beam/sdks/v2/go/container").CombinedOutput(); err != nil {
		t.Fatalf("building Beam's boot program: %v\n%s", err, out)
	}
	wrapper := filepath.Join(dir, "boot-wrapper")
	// Each boot gets its own --semi_persist_dir: the default, /tmp, makes
	// every boot program on the machine fetch the staged binary into the
	// same /tmp/staged/worker, so two jobs starting workers at once (the
	// batch and streaming packages' tests run in parallel) overwrite each
	// other's binary mid-copy: "exec format error" or a worker dying of
	// SIGSEGV.
	persist := filepath.Join(dir, "persist")
	script := "#!/bin/sh\nid=$(printf '%s' \"$1\" | tr -d \"'\")\nshift\n" +
		"mkdir -p " + persist + "-$$\n" +
		"exec " + boot + " \"$id\" \"$@\" --semi_persist_dir=" + persist + "-$$\n"
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(removeBootCopies)
	return fmt.Sprintf(`{"command":%q}`, wrapper)
}

// removeBootCopies removes the copies of the job binary Beam's boot program
// leaves behind: it copies the staged binary to a fresh /tmp/bin*/worker
// (the path is hard-coded, TMPDIR does not move it) for every worker it
// starts and never removes it, so each PROCESS-environment test left a few
// hundred MB per worker and repeated runs filled the disk. A copy is removed
// once it is older than a few seconds: a copy still being written (by
// another package's test running in parallel) is newer than that, and one a
// worker is running from stays usable after the unlink, as any running
// executable does on Linux.
func removeBootCopies() {
	dirs, _ := filepath.Glob("/tmp/bin*")
	for _, dir := range dirs {
		entries, err := os.ReadDir(dir)
		if err != nil || len(entries) != 1 || entries[0].Name() != "worker" {
			continue // not a boot program's copy
		}
		info, err := entries[0].Info()
		if err != nil || time.Since(info.ModTime()) < 10*time.Second {
			continue
		}
		os.RemoveAll(dir)
	}
}
