// Package kinesisio reads from and writes to Amazon Kinesis Data Streams
// natively in Go, in the shape of Beam's own unbounded IO (io/natsio): Beam's
// Go SDK has no Kinesis IO, and a cross-language one would need a Java
// expansion service.
//
// Read is an unbounded splittable DoFn. One element is started per shard
// that has data for the chosen start position; its restriction holds, for
// each shard it owns, the sequence number of the last record it emitted, so a
// checkpoint resumes AFTER_SEQUENCE_NUMBER and a record is never emitted
// twice nor skipped. When a shard is split or merged, the element that drains
// the parent (reaches its SHARD_END) takes the children on, so a child is
// never read before its parent ends; the children then stay with that
// element, unless the runner splits whole shards off to another one. A
// merged shard has two parents and belongs to the element of the one named
// ParentShardId; the other, adjacent, parent is drained by its own element,
// and as Beam gives elements no shared state, the child may start while that
// one's last records are still being read. GetRecords calls stay within
// Kinesis's per-shard limits (5 calls and 2 MiB a second) and back off when
// throttled. Event time is the record's ApproximateArrivalTimestamp; the
// watermark is the oldest arrival time still to come over the element's
// shards, and moves to "now minus the max delay" (ReadMaxDelay) when a
// shard has nothing more to give.
//
// # Checkpoints
//
// A runner's own checkpoints (Flink's, Dataflow's) hold the restrictions,
// but a new job, or any job on prism (which keeps nothing across a crash),
// starts again from the read's start position. With ReadCheckpoints the
// reader also records each shard's position in a PostgreSQL table,
// CheckpointTable (job, stream, shard, sequence_number, closed,
// updated_at), as the KCL does in its DynamoDB lease table, and
// ReadCommitted starts from it: each shard resumes AFTER_SEQUENCE_NUMBER
// its recorded position, shards recorded closed (split or merged, and read
// to their end) are skipped, shards without a position start at
// TRIM_HORIZON, and a child is still read only after its parents ended.
//
// When a position is written: at the start of a ProcessElement call, before
// it claims anything, for the restriction the call got. That restriction is
// the residual of the previous call's checkpoint, which the runner receives
// only in the response that ends the previous bundle, after every transform
// fused with the read has finished that bundle (their FinishBundle has
// returned): so a position is written only once the outputs that these
// transforms produced from the records up to it are written. This is how
// kafkaio commits offsets; bundle finalization would be the documented
// hook, but on prism it runs right after the runner's in-memory commit,
// and in Beam Go v2.77.0 only a plan's first bundle's callbacks run at all.
// A shard that ends is kept in the restriction (Finished) until the next
// call has recorded it closed, with its children's positions in the same
// transaction. Positions are written at most every second per shard
// (closed shards at once), never move backwards, and a failure to write
// one is logged and retried, so a restart re-reads at most about a second
// of each shard plus the bundle in flight. With a store, the reader declines
// runners' dynamic splits and splits only at the end of a call: prism
// reschedules a dynamic split's residual at once, and its first call would
// record a position whose bundle is still running.
//
// What that guarantees: on prism (tested, by SIGKILL of a running job and
// a restart), every output written by a transform fused with the read (in
// pinpipe's streaming job, the table upserts and the dead letters) holds
// every record up to the recorded positions. Outputs behind a GroupByKey
// (windowed counts, windowed files) live in prism's memory until their
// window fires, so a crash loses the records of windows that had not fired
// even though their positions were recorded; a source cannot wait for them,
// since Beam Go shows it no downstream watermark holds. On Flink and
// Dataflow (not tested here) the residual likewise comes back only once the
// runner has committed the bundle's outputs, which a runner restoring its
// own checkpoint or savepoint never needs this table for; a job started
// afresh (no savepoint, a Dataflow job replaced without update) resumes from
// the table, and loses the records whose outputs were still held in a
// GroupByKey's state when the old job died.
//
// ReadDurablePositions closes that gap: the pipeline's sinks record each
// record's span of sequence numbers (Record.From to SequenceNumber,
// RecordSpans) in the transaction that writes its last output, window
// panes included, and a shard's sequence_number moves only along the
// unbroken run of such spans from the shard's start (later runs wait in
// SpanTable). The reader then records only the shards it reads and where
// closed ones ended (a shard is recorded closed once its checkpoint
// reaches its last record), and ReadCommitted resumes from the same
// table. pinpipe's streaming job reads this way whenever it has a
// PostgreSQL; on prism a SIGKILL with windows open then loses nothing
// (tested in pipelines/streaming).
//
// Two jobs with the same name must not read the same stream: AcquireLease
// takes an advisory lock per (job, stream) in the same PostgreSQL, held by
// one session for the job's lifetime, and refuses, naming the holder, while
// another session has it.
//
// Write sends records with PutRecords, in batches of at most 500 records
// and 5 MiB, and retries only the entries Kinesis failed.
//
// Both use the AWS SDK's default credential chain and settings: AWS_REGION,
// AWS_PROFILE, and AWS_ENDPOINT_URL_KINESIS (or the options) to point them
// at another endpoint such as kinesalite.
package kinesisio

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/smithy-go"
)

// clientConfig is the serialisable part of a Kinesis client: what a DoFn
// carries to the workers. Empty fields mean the SDK's default settings.
type clientConfig struct {
	Endpoint string
	Region   string
}

// client is one open Kinesis client and the HTTP client under it, kept so
// that Teardown can close its connections.
type client struct {
	*kinesis.Client
	http aws.HTTPClient
}

// open builds a client. handleThrottling leaves throttling errors to the
// caller instead of retrying them inside the SDK: the reader backs off per
// shard, and one throttled shard must not stall the others.
func (c clientConfig) open(ctx context.Context, handleThrottling bool) (*client, error) {
	var opts []func(*config.LoadOptions) error
	if c.Region != "" {
		opts = append(opts, config.WithRegion(c.Region))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("kinesisio: loading AWS configuration: %w", err)
	}
	// The SDK's HTTP client carries the settings (AWS_CA_BUNDLE, ...);
	// frozen, it is a plain *http.Client whose connections can be closed.
	if b, ok := cfg.HTTPClient.(*awshttp.BuildableClient); ok {
		cfg.HTTPClient = b.WithTransportOptions(func(tr *http.Transport) {
			tr.MaxIdleConnsPerHost = 32 // one element polls many shards, a worker runs many elements
		}).Freeze()
	}
	kc := kinesis.NewFromConfig(cfg, func(o *kinesis.Options) {
		if c.Endpoint != "" {
			o.BaseEndpoint = aws.String(c.Endpoint)
		}
		o.Retryer = retry.NewStandard(func(so *retry.StandardOptions) {
			// A client-side retry quota would turn a long throttling spell
			// into hard failures; the callers pace themselves instead.
			so.RateLimiter = ratelimit.None
			so.MaxAttempts = 5
			if handleThrottling {
				so.Retryables = append([]retry.IsErrorRetryable{noThrottleRetry{}}, so.Retryables...)
			}
		})
	})
	return &client{Client: kc, http: cfg.HTTPClient}, nil
}

// close releases the client's idle connections.
func (c *client) close() {
	if c == nil {
		return
	}
	if h, ok := c.http.(interface{ CloseIdleConnections() }); ok {
		h.CloseIdleConnections()
	}
}

// noThrottleRetry tells the SDK's retryer not to retry throttling errors,
// so that they reach the caller at once.
type noThrottleRetry struct{}

func (noThrottleRetry) IsErrorRetryable(err error) aws.Ternary {
	if isThrottle(err) {
		return aws.FalseTernary
	}
	return aws.UnknownTernary
}

// errorCode is the API error code of err, or "".
func errorCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// isThrottle reports whether err says "slow down".
func isThrottle(err error) bool {
	switch errorCode(err) {
	case "ProvisionedThroughputExceededException", "LimitExceededException",
		"KMSThrottlingException", "ThrottlingException":
		return true
	}
	var re *awshttp.ResponseError
	return errors.As(err, &re) && re.HTTPStatusCode() == http.StatusTooManyRequests
}

// backoff is the wait before attempt n+1 after n consecutive failures:
// exponential from base, capped, with jitter so that many shards or workers
// throttled together do not retry in step.
func backoff(n int, base, max time.Duration) time.Duration {
	d := base
	for i := 1; i < n && d < max; i++ {
		d *= 2
	}
	if d > max {
		d = max
	}
	return d/2 + rand.N(d/2+1)
}

// sleep waits for d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
