// Package s3 runs an S3-compatible server (gofakes3) for development and
// tests. With a data directory the buckets and objects are kept in one bbolt
// file, which writes each object in one transaction, so that, as on S3, an
// object is either wholly there or not at all, even when a client or the
// server dies mid-upload. Without one, everything is in memory.
package s3

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3bolt"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// Options say where the server listens and what it keeps.
type Options struct {
	// Listen is the host:port to bind; port 0 picks a free one. Default
	// 127.0.0.1:9000.
	Listen string
	// DataDir, when set, makes the server persistent (DataDir/s3.db).
	DataDir string
	// Buckets are created at start when missing.
	Buckets []string
	// Logger gets the server's logs. Default slog.Default().
	Logger *slog.Logger
}

// Server is a running S3 server.
type Server struct {
	http   *http.Server
	addr   string
	db     *bolt.DB
	served chan struct{}
	stop   func() bool
	once   sync.Once
	err    error
}

// Start starts the server. It is closed by Close or when ctx is done.
func Start(ctx context.Context, o Options) (*Server, error) {
	if o.Listen == "" {
		o.Listen = "127.0.0.1:9000"
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var backend gofakes3.Backend
	var db *bolt.DB
	if o.DataDir != "" {
		if err := os.MkdirAll(o.DataDir, 0o755); err != nil {
			return nil, fmt.Errorf("dev s3: %w", err)
		}
		path := filepath.Join(o.DataDir, "s3.db")
		// bbolt locks the file; without a timeout a second server on the
		// same directory would wait forever. Without fsync an object
		// survives the server's crash but not the machine's, which is
		// enough here, and writes are many times faster.
		var err error
		db, err = bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second, NoSync: true})
		if errors.Is(err, bolterrors.ErrTimeout) {
			return nil, fmt.Errorf("dev s3: %s is in use by another server", path)
		}
		if err != nil {
			return nil, fmt.Errorf("dev s3: opening %s: %w", path, err)
		}
		backend = s3bolt.New(db)
	} else {
		backend = s3mem.New()
	}
	closeDB := func() {
		if db != nil {
			db.Close()
		}
	}
	for _, b := range o.Buckets {
		if err := gofakes3.ValidateBucketName(b); err != nil {
			closeDB()
			return nil, fmt.Errorf("dev s3: bucket %q: %w", b, err)
		}
		exists, err := backend.BucketExists(b)
		if err == nil && !exists {
			err = backend.CreateBucket(b)
		}
		if err != nil {
			closeDB()
			return nil, fmt.Errorf("dev s3: creating bucket %s: %w", b, err)
		}
	}
	ln, err := net.Listen("tcp", o.Listen)
	if err != nil {
		closeDB()
		return nil, fmt.Errorf("dev s3: %w", err)
	}
	faker := gofakes3.New(backend, gofakes3.WithLogger(slogAdapter{o.Logger}))
	s := &Server{
		http: &http.Server{
			Handler:           faker.Server(),
			ReadHeaderTimeout: 30 * time.Second,
			ErrorLog:          slog.NewLogLogger(o.Logger.Handler(), slog.LevelWarn),
		},
		addr:   ln.Addr().String(),
		db:     db,
		served: make(chan struct{}),
	}
	go func() {
		defer close(s.served)
		if err := s.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			o.Logger.Error("dev s3 stopped serving", "err", err)
		}
	}()
	s.stop = context.AfterFunc(ctx, func() { s.Close() })
	o.Logger.Info("dev s3 started", "addr", s.addr, "data_dir", o.DataDir, "buckets", o.Buckets)
	return s, nil
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return s.addr }

// URL is the endpoint for S3 clients (AWS_ENDPOINT_URL_S3).
func (s *Server) URL() string { return "http://" + s.addr }

// Close stops accepting requests, lets those in flight finish (for up to 10
// seconds) and closes the data file. Calling it again returns the same
// result.
func (s *Server) Close() error {
	s.once.Do(func() {
		s.stop()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s.err = s.http.Shutdown(ctx)
		<-s.served
		if s.db != nil {
			if err := s.db.Close(); s.err == nil {
				s.err = err
			}
		}
	})
	return s.err
}

// slogAdapter sends gofakes3's logs to slog.
type slogAdapter struct{ l *slog.Logger }

func (a slogAdapter) Print(level gofakes3.LogLevel, v ...any) {
	l := slog.LevelDebug
	switch level {
	case gofakes3.LogErr:
		l = slog.LevelError
	case gofakes3.LogWarn:
		l = slog.LevelWarn
	}
	ctx := context.Background()
	if a.l.Enabled(ctx, l) {
		a.l.Log(ctx, l, fmt.Sprint(v...), "component", "gofakes3")
	}
}
