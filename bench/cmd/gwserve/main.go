// Command gwserve is one server of the gateway benchmark (see package
// gwserve), started by `bench gateway` as a child process: it prints
// "listening ADDR" once it serves, and stops on SIGTERM and when its stdin
// ends (when the benchmark is gone, however it went).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/pinpipe/pinpipe/bench/gwserve"
)

func main() {
	var o gwserve.Options
	flag.StringVar(&o.Mode, "serve", "", "the server: bare, gateway, kafka or s3")
	flag.StringVar(&o.Listen, "listen", "127.0.0.1:0", "the address to listen on")
	flag.StringVar(&o.Brokers, "brokers", "", "the gateway's Kafka brokers")
	flag.StringVar(&o.CPUProfile, "cpuprofile", "", "CPU profile file of the server")
	flag.DurationVar(&o.KafkaLinger, "kafka-linger", 0, "the gateway's Config.KafkaLinger (0: its default; negative: none)")
	flag.IntVar(&o.MaxInFlight, "max-in-flight", 0, "the gateway's Config.MaxInFlight (0: its default)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		stop()
	}()
	o.Ready = func(addr string) { fmt.Printf("listening %s\n", addr) }
	if err := gwserve.Serve(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "gwserve:", err)
		os.Exit(1)
	}
}
