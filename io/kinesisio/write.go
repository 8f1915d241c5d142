package kinesisio

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"time"
	"unicode/utf8"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/log"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

func init() {
	register.DoFn2x1[context.Context, WriteRecord, error](&writeFn{})
	beam.RegisterType(reflect.TypeOf((*WriteRecord)(nil)).Elem())
}

// Kinesis's PutRecords limits: 500 records and 5 MiB a call, a record (data
// and partition key) up to 1 MiB, a partition key up to 256 characters.
const (
	maxBatchRecords = 500
	maxBatchBytes   = 5 << 20
	maxRecordBytes  = 1 << 20
	maxPartitionKey = 256
)

// WriteRecord is one record to put on a stream.
type WriteRecord struct {
	PartitionKey    string // required: decides the shard, and the order within it
	ExplicitHashKey string // optional: decides the shard instead of the partition key's hash
	Data            []byte
}

// Write puts every WriteRecord of col on the stream with PutRecords, in
// batches of up to 500 records and 5 MiB per bundle, retrying only the
// entries that failed. Delivery is at least once: a retried bundle puts its
// records again.
func Write(s beam.Scope, stream string, col beam.PCollection, opts ...WriteOptionFn) {
	s = s.Scope("kinesisio.Write")
	if stream == "" {
		panic("kinesisio.Write: the stream name is empty")
	}
	o := &writeOption{maxAttempts: defaultWriteMaxAttempts}
	for _, opt := range opts {
		if err := opt(o); err != nil {
			panic(fmt.Sprintf("kinesisio.Write: invalid option: %v", err))
		}
	}
	beam.ParDo0(s, &writeFn{clientConfig: o.client, Stream: stream, MaxAttempts: o.maxAttempts}, col)
}

// putRecordsAPI is the part of the Kinesis client the writer uses; tests
// substitute it.
type putRecordsAPI interface {
	PutRecords(context.Context, *kinesis.PutRecordsInput, ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error)
}

type writeFn struct {
	clientConfig
	Stream      string
	MaxAttempts int

	client *client
	api    putRecordsAPI
	batch  []types.PutRecordsRequestEntry
	bytes  int
	sleep  func(context.Context, time.Duration) error
}

func (fn *writeFn) Setup(ctx context.Context) error {
	if fn.sleep == nil {
		fn.sleep = sleep
	}
	if fn.api != nil {
		return nil
	}
	c, err := fn.open(ctx, false)
	if err != nil {
		return err
	}
	fn.client, fn.api = c, c
	return nil
}

func (fn *writeFn) Teardown() { fn.client.close() }

func (fn *writeFn) StartBundle(context.Context) {
	fn.batch, fn.bytes = fn.batch[:0], 0
}

func (fn *writeFn) ProcessElement(ctx context.Context, r WriteRecord) error {
	if err := r.validate(); err != nil {
		return fmt.Errorf("kinesisio.Write to %s: %w", fn.Stream, err)
	}
	size := len(r.Data) + len(r.PartitionKey)
	if len(fn.batch) == maxBatchRecords || fn.bytes+size > maxBatchBytes {
		if err := fn.flush(ctx); err != nil {
			return err
		}
	}
	e := types.PutRecordsRequestEntry{PartitionKey: aws.String(r.PartitionKey), Data: r.Data}
	if r.ExplicitHashKey != "" {
		e.ExplicitHashKey = aws.String(r.ExplicitHashKey)
	}
	fn.batch = append(fn.batch, e)
	fn.bytes += size
	return nil
}

func (fn *writeFn) FinishBundle(ctx context.Context) error {
	return fn.flush(ctx)
}

func (fn *writeFn) flush(ctx context.Context) error {
	if len(fn.batch) == 0 {
		return nil
	}
	err := putAll(ctx, fn.api, fn.Stream, fn.batch, fn.MaxAttempts, fn.sleep)
	fn.batch, fn.bytes = fn.batch[:0], 0
	return err
}

func (r WriteRecord) validate() error {
	if n := utf8.RuneCountInString(r.PartitionKey); n < 1 || n > maxPartitionKey {
		return fmt.Errorf("partition key of %d characters: it must have 1 to %d", n, maxPartitionKey)
	}
	if n := len(r.Data) + len(r.PartitionKey); n > maxRecordBytes {
		return fmt.Errorf("record of %d bytes (data and partition key %q): Kinesis takes up to %d", n, r.PartitionKey, maxRecordBytes)
	}
	return nil
}

// putAll puts entries, retrying only those that failed, after a backoff,
// until all are in or maxAttempts calls were made.
func putAll(ctx context.Context, api putRecordsAPI, stream string, entries []types.PutRecordsRequestEntry,
	maxAttempts int, wait func(context.Context, time.Duration) error) error {
	pending := entries
	for attempt := 1; ; attempt++ {
		out, err := api.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String(stream), Records: pending})
		switch {
		case err != nil:
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if !retryableCall(err) || attempt >= maxAttempts {
				return fmt.Errorf("kinesisio.Write: PutRecords of %d records to %s (attempt %d): %w", len(pending), stream, attempt, err)
			}
			log.Warnf(ctx, "kinesisio.Write: PutRecords to %s failed (attempt %d), retrying: %v", stream, attempt, err)
		case aws.ToInt32(out.FailedRecordCount) == 0:
			return nil
		default:
			if len(out.Records) != len(pending) {
				return fmt.Errorf("kinesisio.Write: PutRecords to %s answered %d results for %d records", stream, len(out.Records), len(pending))
			}
			var failed []types.PutRecordsRequestEntry
			var first types.PutRecordsResultEntry
			for i, r := range out.Records {
				if r.ErrorCode != nil {
					if len(failed) == 0 {
						first = r
					}
					failed = append(failed, pending[i])
				}
			}
			if attempt >= maxAttempts {
				return fmt.Errorf("kinesisio.Write: %d of %d records to %s still failing after %d attempts, first: %s: %s",
					len(failed), len(entries), stream, attempt, aws.ToString(first.ErrorCode), aws.ToString(first.ErrorMessage))
			}
			pending = failed
		}
		if err := wait(ctx, backoff(attempt, 100*time.Millisecond, 5*time.Second)); err != nil {
			return err
		}
	}
}

// retryableCall reports whether a failed PutRecords call may succeed when
// repeated: throttling, a server error, or no answer at all.
func retryableCall(err error) bool {
	if isThrottle(err) {
		return true
	}
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode() >= 500
	}
	return errorCode(err) == ""
}
