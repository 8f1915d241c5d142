package main

// The gateway benchmark's servers, each in a child process of this binary
// (`bench gateway -serve=MODE -listen=ADDR`), so that the load generator's
// own work and garbage collection are not the server's:
//
//	bare     net/http answering 200 to everything (the baseline)
//	gateway  the pinpipe gateway (ingest/gateway), as `pinpipe gateway` runs it
//	kafka    a Kafka broker (kfake, ingest/devserver/kafka)
//	s3       an S3 server (gofakes3, ingest/devserver/s3)
//
// A child prints "listening ADDR" once it serves, stops on SIGTERM, and
// also when its stdin ends: when the parent is gone, however it went.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	devkafka "github.com/pinpipe/pinpipe/ingest/devserver/kafka"
	devs3 "github.com/pinpipe/pinpipe/ingest/devserver/s3"
	"github.com/pinpipe/pinpipe/ingest/gateway"
	"github.com/pinpipe/pinpipe/io/kafkaio"
)

// gwBucket is the S3 bucket the s3 child creates.
const gwBucket = "bench"

// gwMaxInFlight is the gateway child's Config.MaxInFlight (-max-in-flight;
// 0: the default).
var gwMaxInFlight int

// gwServe runs a child server until SIGTERM or the end of stdin, with a CPU
// profile into cpuProfile when it is set.
func gwServe(mode, listen, brokers, cpuProfile string, kafkaLinger time.Duration) error {
	if cpuProfile != "" {
		f, err := os.Create(cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		stop()
	}()
	// Problems only, as `pinpipe gateway` logs by default.
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ready := func(addr string) { fmt.Printf("listening %s\n", addr) }
	switch mode {
	case "bare":
		ln, err := net.Listen("tcp", listen)
		if err != nil {
			return err
		}
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			w.WriteHeader(http.StatusOK)
		})}
		go func() {
			<-ctx.Done()
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = srv.Shutdown(sctx)
		}()
		ready(ln.Addr().String())
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	case "gateway":
		bs := kafkaio.ParseBrokers(brokers)
		// The defaults of `pinpipe gateway --kinesis=off` (unless
		// -kafka-linger says otherwise).
		gw, err := gateway.New(gateway.Config{KafkaBrokers: bs, Logger: log, KafkaLinger: kafkaLinger, MaxInFlight: gwMaxInFlight})
		if err != nil {
			return err
		}
		ln, err := net.Listen("tcp", listen)
		if err != nil {
			return err
		}
		ready(ln.Addr().String())
		return gw.Serve(ctx, ln)
	case "kafka":
		k, err := devkafka.Start(ctx, devkafka.Options{Listen: listen, Partitions: 3, Logger: log})
		if err != nil {
			return err
		}
		ready(k.Addr())
		<-ctx.Done()
		return k.Close()
	case "s3":
		s, err := devs3.Start(ctx, devs3.Options{Listen: listen, Buckets: []string{gwBucket}, Logger: log})
		if err != nil {
			return err
		}
		ready(s.Addr())
		<-ctx.Done()
		return s.Close()
	}
	return fmt.Errorf("unknown -serve mode %q: bare, gateway, kafka or s3", mode)
}

// gwChild is a child server.
type gwChild struct {
	mode  string
	cmd   *exec.Cmd
	stdin io.WriteCloser
	addr  string
	done  chan error
}

// startGWChild starts this binary as a child server and waits until it
// listens.
func startGWChild(mode, listen string, extra ...string) (*gwChild, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	args := append([]string{"gateway", "-serve=" + mode, "-listen=" + listen}, extra...)
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
