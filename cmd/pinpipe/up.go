package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	"github.com/pinpipe/pinpipe/internal/demo"
	"github.com/pinpipe/pinpipe/io/postgres"
)

func init() {
	addCommand("up", "run Kafka, S3, the gateway and the S3 sink locally until stopped, and print how to use them", upCmd)
}

// upCmd is the development counterpart of demo: the same parts, left
// running, with the commands to drive them printed, so that each job can be
// run, changed and re-run against a live system.
func upCmd(fs *flag.FlagSet) func(context.Context) error {
	var (
		o     demo.SystemOptions
		pgDSN string
	)
	fs.StringVar(&o.Dir, "dir", "out/dev-system", "data directory of Kafka and S3 (kept across restarts)")
	fs.StringVar(&pgDSN, "postgres", "", "PostgreSQL DSN to put in the printed stream (--sink) and batch (--warehouse) commands; checked at start")
	fs.BoolVar(&o.Kinesis, "kinesis", false, "also start kinesalite (scripts/kinesalite.sh install; needs Node.js) and serve the gateway's Kinesis routes")
	fs.StringVar(&o.TopicPrefix, "topic-prefix", "pinpipe", "topics <prefix>.pin|geo|user and streams streaming-<prefix>-pin|geo|user")
	fs.StringVar(&o.KafkaListen, "kafka-listen", upKafkaListen, "Kafka's address, the README's; if its port is taken, a free one (port 0: always a free one)")
	fs.StringVar(&o.S3Listen, "s3-listen", upS3Listen, "S3's address, the README's; if its port is taken, a free one")
	fs.StringVar(&o.GatewayListen, "gateway-listen", upGatewayListen, "the gateway's address, the README's; if its port is taken, a free one")
	fs.IntVar(&o.SinkFlushSize, "flush-size", 500, "S3 sink: records per object")
	fs.DurationVar(&o.SinkRotate, "rotate-interval", 10*time.Second, "S3 sink: longest a record waits before its object is written")
	return func(ctx context.Context) error {
		if pgDSN != "" {
			if err := checkPostgres(ctx, pgDSN); err != nil {
				return err
			}
		}
		for _, l := range []struct {
			what string
			addr *string
		}{{"Kafka", &o.KafkaListen}, {"S3", &o.S3Listen}, {"the gateway", &o.GatewayListen}} {
			if free, taken := freeAddr(*l.addr); taken {
				warn("pinpipe up: %s is taken, so %s listens on a free port instead (the printed commands below use it; the README's use %s)", *l.addr, l.what, *l.addr)
				*l.addr = free
			}
		}
		sys, err := demo.Start(ctx, o)
		if err != nil {
			return err
		}
		fmt.Printf("pinpipe up: running; Ctrl-C stops everything\n\n")
		sys.Describe(os.Stdout, demo.DescribeOptions{Bin: selfName(), Postgres: pgDSN})
		<-ctx.Done()
		slog.Warn("pinpipe up: stopping: the S3 sink writes what it holds, then the gateway, S3 and Kafka stop")
		st, serr := sys.StopSink()
		err = sys.Close()
		fmt.Printf("pinpipe up: stopped; the S3 sink wrote %d objects (%d records) this run\n", st.Objects, st.ObjectRecords)
		if serr != nil {
			return serr
		}
		return err
	}
}

// checkPostgres fails early on a DSN the printed commands could not use.
func checkPostgres(ctx context.Context, dsn string) error {
	if err := postgres.Check(ctx, dsn); err != nil {
		return fmt.Errorf("--postgres: %w", err)
	}
	return nil
}

// selfName is how the printed commands invoke this binary: as it was
// invoked, unless that was a temporary `go run` build.
func selfName() string {
	name := os.Args[0]
	switch {
	case strings.Contains(name, "go-build"):
		return "go run ./cmd/pinpipe"
	case !strings.Contains(name, "/"):
		return "pinpipe"
	}
	return name
}

// The addresses up listens on by default: the README's and its commands'.
const (
	upKafkaListen   = "127.0.0.1:9092"
	upS3Listen      = "127.0.0.1:9000"
	upGatewayListen = "127.0.0.1:8082"
)

// freeAddr says whether addr's port is taken, and if so returns the same
// host with port 0 (a free port the server picks).
func freeAddr(addr string) (string, bool) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || port == "0" {
		return addr, false // an address the server itself reports on
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return net.JoinHostPort(host, "0"), true
	}
	l.Close()
	return addr, false
}
