package demo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"regexp"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	devkafka "github.com/pinpipe/pinpipe/ingest/devserver/kafka"
	devs3 "github.com/pinpipe/pinpipe/ingest/devserver/s3"
	"github.com/pinpipe/pinpipe/ingest/emulator"
	"github.com/pinpipe/pinpipe/ingest/gateway"
	"github.com/pinpipe/pinpipe/ingest/s3sink"
	"github.com/pinpipe/pinpipe/internal/kinesalite"
	"github.com/pinpipe/pinpipe/transforms"
)

// Static credentials and region of the local servers: gofakes3 and
// kinesalite accept any, and fixing them keeps the SDK from looking for real
// ones (a profile, instance metadata).
const (
	AccessKeyID     = "dev"
	SecretAccessKey = "dev"
	Region          = "us-east-1"
)

// SystemOptions say which parts Start runs and where. The zero value of each
// field means its default.
type SystemOptions struct {
	// Dir keeps the servers' data: Dir/kafka (topics, offsets) and Dir/s3
	// (s3.db). Required.
	Dir string
	// TopicPrefix names the topics <prefix>.pin|geo|user and the Kinesis
	// streams streaming-<prefix>-pin|geo|user (default "pinpipe").
	TopicPrefix string
	// Bucket is the S3 bucket the sink lands in (default "lake"), under
	// SinkPrefix (default "raw").
	Bucket, SinkPrefix string
	// Listen addresses (default 127.0.0.1:0: a free port each).
	KafkaListen, S3Listen, GatewayListen string
	// Partitions of each topic (default 3).
	Partitions int
	// SinkFlushSize and SinkRotate are the sink's flush size (default 250)
	// and rotate interval (default 2 s): small, so that several objects
	// land and a quiet partition is written soon.
	SinkFlushSize int
	SinkRotate    time.Duration
	// Kinesis starts kinesalite (see kinesalite.Dir) and turns on the
	// gateway's Kinesis routes, with the three streams created.
	Kinesis bool
	// KinesaliteDir is where scripts/kinesalite.sh installed kinesalite
	// (default $PINPIPE_KINESALITE_DIR, else .cache/kinesalite in the
	// repository).
	KinesaliteDir string
	// Logger gets the servers' logs (default slog.Default()).
	Logger *slog.Logger
}

func (o *SystemOptions) setDefaults() error {
	if o.Dir == "" {
		return errors.New("demo: no data directory")
	}
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&o.TopicPrefix, "pinpipe")
	def(&o.Bucket, "lake")
	def(&o.SinkPrefix, "raw")
	def(&o.KafkaListen, "127.0.0.1:0")
	def(&o.S3Listen, "127.0.0.1:0")
	def(&o.GatewayListen, "127.0.0.1:0")
	if o.Partitions == 0 {
		o.Partitions = 3
	}
	if o.SinkFlushSize == 0 {
		o.SinkFlushSize = 250
	}
	if o.SinkRotate == 0 {
		o.SinkRotate = 2 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return nil
}

// System is the ingestion path running in this process: Kafka (kfake), S3
// (gofakes3), the gateway, the S3 sink and, optionally, kinesalite. Close
// stops all of it.
type System struct {
	o       SystemOptions
	Kafka   *devkafka.Server
	S3      *devs3.Server
	gwURL   string
	kinesis *kinesalite.Server

	gwStop context.CancelFunc
	gwDone chan error

	sinkStop  context.CancelFunc
	sinkDone  chan sinkResult
	sinkOnce  sync.Once
	sinkStats s3sink.Stats
	sinkErr   error

	closeOnce sync.Once
	closeErr  error
}

type sinkResult struct {
	st  s3sink.Stats
	err error
}

// Start starts every part, each on its listen address, and the sink landing
// the topics in S3. On an error what was started is stopped again.
func Start(ctx context.Context, o SystemOptions) (_ *System, err error) {
	if err := o.setDefaults(); err != nil {
		return nil, err
	}
	s := &System{o: o}
	// The servers stop in Close, in order, not when ctx ends: the sink
	// must write what it holds to S3 before S3 goes.
	srvCtx := context.WithoutCancel(ctx)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	if s.Kafka, err = devkafka.Start(srvCtx, devkafka.Options{Listen: o.KafkaListen, DataDir: filepath.Join(o.Dir, "kafka"),
		Partitions: o.Partitions, Logger: o.Logger}); err != nil {
		return nil, err
	}
	if s.S3, err = devs3.Start(srvCtx, devs3.Options{Listen: o.S3Listen, DataDir: filepath.Join(o.Dir, "s3"),
		Buckets: []string{o.Bucket}, Logger: o.Logger}); err != nil {
		return nil, err
	}
	// The topics exist before anything reads them, so that a streaming job
	// started now finds all their partitions at its first listing.
	if err := s.createTopics(ctx); err != nil {
		return nil, err
	}
	gcfg := gateway.Config{KafkaBrokers: []string{s.Kafka.Addr()}, TopicPrefix: o.TopicPrefix, Logger: o.Logger,
		ShutdownTimeout: 10 * time.Second}
	if o.Kinesis {
		if s.kinesis, err = kinesalite.Start(ctx, o.KinesaliteDir); err != nil {
			return nil, err
		}
		gcfg.Kinesis = s.KinesisClient()
		if err := s.createStreams(ctx); err != nil {
			return nil, err
		}
	}
	if err := s.startGateway(gcfg); err != nil {
		return nil, err
	}
	sinkCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	s.sinkStop, s.sinkDone = stop, make(chan sinkResult, 1)
	sinkOpts := s3sink.Options{Brokers: []string{s.Kafka.Addr()}, Topics: regexp.QuoteMeta(o.TopicPrefix) + `\.(pin|geo|user)`,
		Dest: s.SinkURL(), FlushSize: o.SinkFlushSize, RotateInterval: o.SinkRotate, S3: s.S3Client(), Logger: o.Logger}
	go func() {
		st, err := s3sink.Run(sinkCtx, sinkOpts)
		s.sinkDone <- sinkResult{st, err}
	}()
	return s, nil
}

// Topics are the three topics, pin, geo and user.
func (s *System) Topics() []string {
	var ts []string
	for _, t := range transforms.Tables {
		ts = append(ts, emulator.TopicName(s.o.TopicPrefix, t))
	}
	return ts
}

// Streams are the three Kinesis streams.
func (s *System) Streams() []string {
	var ss []string
	for _, t := range transforms.Tables {
		ss = append(ss, emulator.StreamName(s.o.TopicPrefix, t))
	}
	return ss
}

// GatewayURL is the gateway's base URL; /metrics serves its Prometheus
// metrics.
func (s *System) GatewayURL() string { return s.gwURL }

// KinesisURL is kinesalite's endpoint (AWS_ENDPOINT_URL_KINESIS), empty
// without Kinesis.
func (s *System) KinesisURL() string {
	if s.kinesis == nil {
		return ""
	}
	return s.kinesis.URL
}

// SinkURL is where the sink lands the topics: s3://bucket/prefix.
func (s *System) SinkURL() string { return "s3://" + s.o.Bucket + "/" + s.o.SinkPrefix }

// S3Env is the environment that points AWS SDK clients (the batch job's
// S3 filesystem, pinpipe s3sink) at the local S3 with the static
// credentials, away from any profile or instance role.
func (s *System) S3Env() map[string]string {
	env := map[string]string{
		"AWS_ENDPOINT_URL_S3":         s.S3.URL(),
		"AWS_ACCESS_KEY_ID":           AccessKeyID,
		"AWS_SECRET_ACCESS_KEY":       SecretAccessKey,
		"AWS_SESSION_TOKEN":           "",
		"AWS_REGION":                  Region,
		"AWS_PROFILE":                 "",
		"AWS_EC2_METADATA_DISABLED":   "true",
		"AWS_CONFIG_FILE":             "/dev/null",
		"AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
		// gofakes3 sends no checksums: validate them only when an
		// operation requires it, or the SDK warns about every read.
		"AWS_REQUEST_CHECKSUM_CALCULATION": "when_required",
		"AWS_RESPONSE_CHECKSUM_VALIDATION": "when_required",
	}
	if s.kinesis != nil {
		env["AWS_ENDPOINT_URL_KINESIS"] = s.kinesis.URL
	}
	return env
}

func staticCredentials() aws.CredentialsProvider {
	return aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		return aws.Credentials{AccessKeyID: AccessKeyID, SecretAccessKey: SecretAccessKey, Source: "pinpipe demo"}, nil
	})
}

// S3Client is a client of the local S3, built without the environment so
// that the parts work whatever AWS settings the shell has.
func (s *System) S3Client() *s3.Client {
	return s3.New(s3.Options{Region: Region, BaseEndpoint: aws.String(s.S3.URL()), UsePathStyle: true, Credentials: staticCredentials(),
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired})
}

// KinesisClient is a client of kinesalite; nil without Kinesis.
func (s *System) KinesisClient() *kinesis.Client {
	if s.kinesis == nil {
		return nil
	}
	return kinesis.New(kinesis.Options{Region: Region, BaseEndpoint: aws.String(s.kinesis.URL), Credentials: staticCredentials()})
}

// kafkaClient is an admin client of the local Kafka; close its kgo.Client.
func (s *System) kafkaClient() (*kgo.Client, *kadm.Client, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(s.Kafka.Addr()))
	if err != nil {
		return nil, nil, err
	}
	return cl, kadm.NewClient(cl), nil
}

func (s *System) createTopics(ctx context.Context) error {
	cl, adm, err := s.kafkaClient()
	if err != nil {
		return err
	}
	defer cl.Close()
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	res, err := adm.CreateTopics(cctx, int32(s.o.Partitions), 1, nil, s.Topics()...)
	if err != nil {
		return fmt.Errorf("demo: creating the topics: %w", err)
	}
	for _, r := range res {
		// A data directory kept from an earlier run (pinpipe up) has them.
		if r.Err != nil && !errors.Is(r.Err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("demo: creating topic %s: %w", r.Topic, r.Err)
		}
	}
	return nil
}

func (s *System) createStreams(ctx context.Context) error {
	kc := s.KinesisClient()
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for _, name := range s.Streams() {
		_, err := kc.CreateStream(cctx, &kinesis.CreateStreamInput{StreamName: aws.String(name), ShardCount: aws.Int32(2)})
		if err != nil {
			return fmt.Errorf("demo: creating Kinesis stream %s: %w", name, err)
		}
		w := kinesis.NewStreamExistsWaiter(kc, func(o *kinesis.StreamExistsWaiterOptions) { o.MinDelay = 50 * time.Millisecond })
		if err := w.Wait(cctx, &kinesis.DescribeStreamInput{StreamName: aws.String(name)}, 20*time.Second); err != nil {
			return fmt.Errorf("demo: Kinesis stream %s did not become active: %w", name, err)
		}
	}
	return nil
}

func (s *System) startGateway(cfg gateway.Config) error {
	ln, err := net.Listen("tcp", s.o.GatewayListen)
	if err != nil {
		return fmt.Errorf("demo: gateway: %w", err)
	}
	gw, err := gateway.New(cfg)
	if err != nil {
		ln.Close()
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.gwURL, s.gwStop, s.gwDone = "http://"+ln.Addr().String(), cancel, make(chan error, 1)
	go func() { s.gwDone <- gw.Serve(ctx, ln) }()
	// Serve has the listener already: requests made now wait for it.
	return nil
}

// EndOffsets are the records in each topic now (the sum of its partitions'
// end offsets).
func (s *System) EndOffsets(ctx context.Context) (map[string]int64, kadm.ListedOffsets, error) {
	cl, adm, err := s.kafkaClient()
	if err != nil {
		return nil, nil, err
	}
	defer cl.Close()
	ends, err := adm.ListEndOffsets(ctx, s.Topics()...)
	if err != nil {
		return nil, nil, fmt.Errorf("demo: listing end offsets: %w", err)
	}
	per := map[string]int64{}
	var ferr error
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err != nil && ferr == nil {
			ferr = fmt.Errorf("demo: end offset of %s/%d: %w", o.Topic, o.Partition, o.Err)
		}
		per[o.Topic] += o.Offset
	})
	return per, ends, ferr
}

// WaitSinkCaughtUp waits until the sink has committed every record the
// topics hold now: its commits follow the objects' writes, so everything is
// in S3 then.
func (s *System) WaitSinkCaughtUp(ctx context.Context, timeout time.Duration) error {
	_, ends, err := s.EndOffsets(ctx)
	if err != nil {
		return err
	}
	cl, adm, err := s.kafkaClient()
	if err != nil {
		return err
	}
	defer cl.Close()
	deadline := time.Now().Add(timeout)
	for {
		committed, err := adm.FetchOffsets(ctx, s3sink.DefaultGroup)
		switch {
		case err == nil:
			done := true
			ends.Each(func(e kadm.ListedOffset) {
				c, ok := committed.Lookup(e.Topic, e.Partition)
				if !ok || c.Err != nil || c.At < e.Offset {
					done = false
				}
			})
			if done {
				return nil
			}
		case errors.Is(err, kerr.GroupIDNotFound), errors.Is(err, kerr.CoordinatorLoadInProgress),
			errors.Is(err, kerr.CoordinatorNotAvailable):
			// Not joined yet.
		default:
			return fmt.Errorf("demo: fetching the sink's offsets: %w", err)
		}
		select {
		case r := <-s.sinkDone:
			s.sinkDone <- r // for StopSink
			return fmt.Errorf("demo: the S3 sink stopped early: %v", r.err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("demo: the S3 sink did not land every record within %s", timeout)
		}
	}
}

// StopSink stops the sink, which writes what it holds and commits, and
// returns what it did. Later calls return the same.
func (s *System) StopSink() (s3sink.Stats, error) {
	s.sinkOnce.Do(func() {
		if s.sinkStop == nil {
			return
		}
		s.sinkStop()
		select {
		case r := <-s.sinkDone:
			s.sinkStats, s.sinkErr = r.st, r.err
		case <-time.After(60 * time.Second):
			s.sinkErr = errors.New("demo: the S3 sink did not stop within 60 s")
		}
	})
	return s.sinkStats, s.sinkErr
}

// Close stops everything, in the order that lets each part finish: the
// sink, the gateway, kinesalite, then S3 and Kafka. It returns the first
// failure; calling it again returns the same.
func (s *System) Close() error {
	s.closeOnce.Do(func() {
		var errs []error
		if _, err := s.StopSink(); err != nil {
			errs = append(errs, err)
		}
		if s.gwStop != nil {
			s.gwStop()
			select {
			case err := <-s.gwDone:
				errs = append(errs, err)
			case <-time.After(20 * time.Second):
				errs = append(errs, errors.New("demo: the gateway did not stop within 20 s"))
			}
		}
		if s.kinesis != nil {
			errs = append(errs, s.kinesis.Close())
		}
		if s.S3 != nil {
			errs = append(errs, s.S3.Close())
		}
		if s.Kafka != nil {
			errs = append(errs, s.Kafka.Close())
		}
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}
