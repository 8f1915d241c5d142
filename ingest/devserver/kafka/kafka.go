// Package kafka runs a one-broker Kafka-protocol cluster (franz-go's kfake)
// for development and tests: topics are created on first use, as a stock
// broker with auto.create.topics.enable does, and with a data directory the
// log, the topics and the consumer groups' offsets survive a restart.
package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"

	"github.com/twmb/franz-go/pkg/kfake"
)

// Options say where the cluster listens and what it keeps.
type Options struct {
	// Listen is the host:port the broker binds and advertises to clients;
	// port 0 picks a free one. Default 127.0.0.1:9092.
	Listen string
	// DataDir, when set, makes the cluster persistent; empty keeps
	// everything in memory.
	DataDir string
	// Partitions is the partition count of topics created on first use or
	// by a CreateTopics request without a count. Default 3.
	Partitions int
	// Logger gets the broker's logs (its per-request logs at debug level).
	// Default slog.Default().
	Logger *slog.Logger
}

// Server is a running cluster.
type Server struct {
	cluster *kfake.Cluster
	addr    string
	stop    func() bool
	once    sync.Once
	unlock  func()
}

// Start starts the cluster. It is closed by Close or when ctx is done.
func Start(ctx context.Context, o Options) (*Server, error) {
	if o.Listen == "" {
		o.Listen = "127.0.0.1:9092"
	}
	if o.Partitions == 0 {
		o.Partitions = 3
	}
	if o.Partitions < 1 {
		return nil, fmt.Errorf("dev kafka: partitions must be at least 1, got %d", o.Partitions)
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// Bind before starting the cluster so that a busy port is a plain error.
	ln, err := net.Listen("tcp", o.Listen)
	if err != nil {
		return nil, fmt.Errorf("dev kafka: %w", err)
	}
	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		// kfake binds 127.0.0.1 itself; hand it our listener instead, so
		// that --listen decides the address it binds and advertises.
		kfake.ListenFn(func(string, string) (net.Listener, error) {
			if ln == nil {
				return nil, errors.New("dev kafka: the listener was already used")
			}
			l := ln
			ln = nil
			return l, nil
		}),
		kfake.AllowAutoTopicCreation(),
		kfake.DefaultNumPartitions(o.Partitions),
		kfake.ClusterID("pinpipe-dev"),
		kfake.WithLogger(slogAdapter{o.Logger}),
	}
	var unlock func()
	if o.DataDir != "" {
		// kfake does not guard its directory; two brokers writing one
		// would corrupt it.
		if unlock, err = lockDir(o.DataDir); err != nil {
			ln.Close()
			return nil, fmt.Errorf("dev kafka: %w", err)
		}
		opts = append(opts, kfake.DataDir(o.DataDir))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		if ln != nil {
			ln.Close()
		}
		if unlock != nil {
			unlock()
		}
		return nil, fmt.Errorf("dev kafka: %w", err)
	}
	s := &Server{cluster: c, addr: c.ListenAddrs()[0], unlock: unlock}
	s.stop = context.AfterFunc(ctx, func() { s.Close() })
	o.Logger.Info("dev kafka started", "addr", s.addr, "data_dir", o.DataDir, "partitions", o.Partitions)
	return s, nil
}

// Addr is the broker's host:port, the bootstrap address for clients.
func (s *Server) Addr() string { return s.addr }

// Close stops the broker; with a data directory it first saves what is not
// on disk yet. Calling it again does nothing.
func (s *Server) Close() error {
	s.once.Do(func() {
		s.stop()
		s.cluster.Close()
		if s.unlock != nil {
			s.unlock()
		}
	})
	return nil
}

// slogAdapter sends kfake's logs to slog. kfake logs every request at its
// info level, which is debugging detail here.
type slogAdapter struct{ l *slog.Logger }

func (a slogAdapter) Logf(level kfake.LogLevel, format string, args ...any) {
	var l slog.Level
	switch level {
	case kfake.LogLevelError:
		l = slog.LevelError
	case kfake.LogLevelWarn:
		l = slog.LevelWarn
	case kfake.LogLevelInfo:
		l = slog.LevelDebug
	default:
		l = slog.LevelDebug - 4
	}
	ctx := context.Background()
	if !a.l.Enabled(ctx, l) {
		return
	}
	a.l.Log(ctx, l, fmt.Sprintf(format, args...), "component", "kfake")
}
