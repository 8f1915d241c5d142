// Package gwserve runs the gateway benchmark's servers under test, each in
// a process of its own started from the small gwserve binary
// (bench/cmd/gwserve), so that neither the load generator's work and
// garbage collection nor the benchmark binary's size (DuckDB is linked
// into it: about 115 MiB of its pages are resident in any process it
// starts) are counted as the server's CPU or memory:
//
//	bare     net/http answering 200 to everything (the baseline)
//	gateway  the pinpipe gateway (ingest/gateway), as `pinpipe gateway` runs it
//	kafka    a Kafka broker (kfake, ingest/devserver/kafka)
//	s3       an S3 server (gofakes3, ingest/devserver/s3)
package gwserve

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime/pprof"
	"time"

	devkafka "github.com/pinpipe/pinpipe/ingest/devserver/kafka"
	devs3 "github.com/pinpipe/pinpipe/ingest/devserver/s3"
	"github.com/pinpipe/pinpipe/ingest/gateway"
	"github.com/pinpipe/pinpipe/io/kafkaio"
)

// Bucket is the S3 bucket the s3 server creates.
const Bucket = "bench"

// Options say which server to run and how.
type Options struct {
	Mode    string // bare, gateway, kafka or s3
	Listen  string // the address to listen on
	Brokers string // the gateway's Kafka brokers (host:port, comma separated)
	// CPUProfile is a file for the server's CPU profile ("": none).
	CPUProfile string
	// KafkaLinger and MaxInFlight are the gateway's Config fields of the
	// same names (0: the gateway's defaults).
	KafkaLinger time.Duration
	MaxInFlight int
	// Ready is called with the address once the server listens.
	Ready func(addr string)
}

// Serve runs the server until ctx ends.
func Serve(ctx context.Context, o Options) error {
	if o.CPUProfile != "" {
		f, err := os.Create(o.CPUProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	// Problems only, as `pinpipe gateway` logs by default.
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ready := o.Ready
	if ready == nil {
		ready = func(string) {}
	}
	switch o.Mode {
	case "bare":
		ln, err := net.Listen("tcp", o.Listen)
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
		// The defaults of `pinpipe gateway --kinesis=off` (unless the
		// options say otherwise).
		gw, err := gateway.New(gateway.Config{KafkaBrokers: kafkaio.ParseBrokers(o.Brokers), Logger: log, KafkaLinger: o.KafkaLinger, MaxInFlight: o.MaxInFlight})
		if err != nil {
			return err
		}
		ln, err := net.Listen("tcp", o.Listen)
		if err != nil {
			return err
		}
		ready(ln.Addr().String())
		return gw.Serve(ctx, ln)
	case "kafka":
		k, err := devkafka.Start(ctx, devkafka.Options{Listen: o.Listen, Partitions: 3, Logger: log})
		if err != nil {
			return err
		}
		ready(k.Addr())
		<-ctx.Done()
		return k.Close()
	case "s3":
		s, err := devs3.Start(ctx, devs3.Options{Listen: o.Listen, Buckets: []string{Bucket}, Logger: log})
		if err != nil {
			return err
		}
		ready(s.Addr())
		<-ctx.Done()
		return s.Close()
	}
	return fmt.Errorf("unknown server %q: bare, gateway, kafka or s3", o.Mode)
}
