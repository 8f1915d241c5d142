package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"strings"

	devkafka "github.com/pinpipe/pinpipe/ingest/devserver/kafka"
	devs3 "github.com/pinpipe/pinpipe/ingest/devserver/s3"
)

func init() {
	addCommand("dev kafka", "run a local Kafka-protocol broker (kfake) for development", devKafkaCmd)
	addCommand("dev s3", "run a local S3 server (gofakes3) for development", devS3Cmd)
}

func devKafkaCmd(fs *flag.FlagSet) func(context.Context) error {
	var o devkafka.Options
	fs.StringVar(&o.Listen, "listen", "127.0.0.1:9092", "host:port to listen on and advertise (port 0 picks a free one)")
	fs.StringVar(&o.DataDir, "data-dir", "", "directory that keeps topics, records and group offsets across restarts (default: in memory)")
	fs.IntVar(&o.Partitions, "partitions", 3, "partitions of a topic created on first use")
	return func(ctx context.Context) error {
		srv, err := devkafka.Start(ctx, o)
		if err != nil {
			return err
		}
		fmt.Printf("pinpipe dev kafka: listening on %s (%s; new topics get %d partitions)\n", srv.Addr(), storage(o.DataDir), o.Partitions)
		<-ctx.Done()
		slog.Info("dev kafka shutting down")
		return srv.Close()
	}
}

func devS3Cmd(fs *flag.FlagSet) func(context.Context) error {
	var o devs3.Options
	var buckets string
	fs.StringVar(&o.Listen, "listen", "127.0.0.1:9000", "host:port to listen on (port 0 picks a free one)")
	fs.StringVar(&o.DataDir, "data-dir", "", "directory that keeps buckets and objects across restarts (default: in memory)")
	fs.StringVar(&buckets, "buckets", "", "comma-separated buckets to create at start when missing")
	return func(ctx context.Context) error {
		for _, b := range strings.Split(buckets, ",") {
			if b = strings.TrimSpace(b); b != "" {
				o.Buckets = append(o.Buckets, b)
			}
		}
		srv, err := devs3.Start(ctx, o)
		if err != nil {
			return err
		}
		fmt.Printf("pinpipe dev s3: listening on %s (%s); clients: AWS_ENDPOINT_URL_S3=%s with any AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY\n",
			srv.Addr(), storage(o.DataDir), srv.URL())
		<-ctx.Done()
		slog.Info("dev s3 shutting down")
		return srv.Close()
	}
}

func storage(dataDir string) string {
	if dataDir == "" {
		return "in memory"
	}
	return "data in " + dataDir
}
