package kinesisio

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"
	"github.com/google/go-cmp/cmp"
)

// fakePut records PutRecords calls and fails the entries (by partition key)
// and calls it is told to.
type fakePut struct {
	mu        sync.Mutex
	calls     [][]string     // partition keys per call
	failTimes map[string]int // partition key -> how many more times its entry fails
	callErrs  []error        // errors for the next calls
	bytes     []int          // data and partition key bytes per call
	stored    map[string]int // partition key -> times stored
}

func (f *fakePut) PutRecords(_ context.Context, in *kinesis.PutRecordsInput, _ ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var keys []string
	n := 0
	for _, e := range in.Records {
		keys = append(keys, aws.ToString(e.PartitionKey))
		n += len(e.Data) + len(aws.ToString(e.PartitionKey))
	}
	f.calls = append(f.calls, keys)
	f.bytes = append(f.bytes, n)
	if len(f.callErrs) > 0 {
		err := f.callErrs[0]
		f.callErrs = f.callErrs[1:]
		return nil, err
	}
	if f.stored == nil {
		f.stored = map[string]int{}
	}
	out := &kinesis.PutRecordsOutput{}
	failed := int32(0)
	for _, k := range keys {
		if f.failTimes[k] > 0 {
			f.failTimes[k]--
			failed++
			out.Records = append(out.Records, types.PutRecordsResultEntry{
				ErrorCode: aws.String("ProvisionedThroughputExceededException"), ErrorMessage: aws.String("slow down")})
			continue
		}
		f.stored[k]++
		out.Records = append(out.Records, types.PutRecordsResultEntry{ShardId: aws.String("shardId-000000000000"), SequenceNumber: aws.String("1")})
	}
	out.FailedRecordCount = aws.Int32(failed)
	return out, nil
}

func noWait(context.Context, time.Duration) error { return nil }

func keyed(keys ...string) []types.PutRecordsRequestEntry {
	var out []types.PutRecordsRequestEntry
	for _, k := range keys {
		out = append(out, types.PutRecordsRequestEntry{PartitionKey: aws.String(k), Data: []byte("d" + k)})
	}
	return out
}

func TestPutAllRetriesOnlyFailedEntries(t *testing.T) {
	f := &fakePut{failTimes: map[string]int{"b": 1, "d": 2}}
	if err := putAll(context.Background(), f, "s", keyed("a", "b", "c", "d", "e"), 5, noWait); err != nil {
		t.Fatal(err)
	}
	want := [][]string{{"a", "b", "c", "d", "e"}, {"b", "d"}, {"d"}}
	if diff := cmp.Diff(want, f.calls); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
	for _, k := range []string{"a", "b", "c", "d", "e"} {
		if f.stored[k] != 1 {
			t.Errorf("%s stored %d times", k, f.stored[k])
		}
	}
}

func TestPutAllGivesUp(t *testing.T) {
	f := &fakePut{failTimes: map[string]int{"b": 10}}
	err := putAll(context.Background(), f, "s", keyed("a", "b"), 3, noWait)
	if err == nil || !strings.Contains(err.Error(), "1 of 2 records") || !strings.Contains(err.Error(), "ProvisionedThroughputExceededException") {
		t.Errorf("error = %v, want one record failing with its code", err)
	}
	if len(f.calls) != 3 {
		t.Errorf("%d calls, want 3", len(f.calls))
	}
}

func TestPutAllCallErrors(t *testing.T) {
	// A throttled or failed call is repeated; a bad request is not.
	throttled := &types.ProvisionedThroughputExceededException{Message: aws.String("slow")}
	f := &fakePut{callErrs: []error{throttled, errors.New("connection reset")}}
	if err := putAll(context.Background(), f, "s", keyed("a"), 5, noWait); err != nil {
		t.Fatalf("retryable call errors: %v", err)
	}
	if len(f.calls) != 3 || f.stored["a"] != 1 {
		t.Errorf("calls %v, stored %v", f.calls, f.stored)
	}
	bad := &smithy.GenericAPIError{Code: "ResourceNotFoundException", Message: "no stream"}
	f = &fakePut{callErrs: []error{bad}}
	if err := putAll(context.Background(), f, "s", keyed("a"), 5, noWait); err == nil || len(f.calls) != 1 {
		t.Errorf("non-retryable error: err %v after %d calls, want an error after 1", err, len(f.calls))
	}
}

func TestWriteBatches(t *testing.T) {
	f := &fakePut{}
	fn := &writeFn{Stream: "s", MaxAttempts: 3, api: f, sleep: noWait}
	ctx := context.Background()
	fn.StartBundle(ctx)
	// 1200 small records: batches of 500, 500 and 200.
	for i := 0; i < 1200; i++ {
		if err := fn.ProcessElement(ctx, WriteRecord{PartitionKey: fmt.Sprint(i), Data: []byte("x")}); err != nil {
			t.Fatal(err)
		}
	}
	if err := fn.FinishBundle(ctx); err != nil {
		t.Fatal(err)
	}
	var sizes []int
	for _, c := range f.calls {
		sizes = append(sizes, len(c))
	}
	if diff := cmp.Diff([]int{500, 500, 200}, sizes); diff != "" {
		t.Errorf("batch sizes (-want +got):\n%s", diff)
	}
	// Large records: a batch stays within 5 MiB.
	f2 := &fakePut{}
	fn = &writeFn{Stream: "s", MaxAttempts: 3, api: f2, sleep: noWait}
	fn.StartBundle(ctx)
	big := make([]byte, 900<<10)
	for i := 0; i < 12; i++ {
		if err := fn.ProcessElement(ctx, WriteRecord{PartitionKey: fmt.Sprint(i), Data: big}); err != nil {
			t.Fatal(err)
		}
	}
	if err := fn.FinishBundle(ctx); err != nil {
		t.Fatal(err)
	}
	total := 0
	for i, n := range f2.bytes {
		if n > maxBatchBytes {
			t.Errorf("call %d sent %d bytes, over 5 MiB", i, n)
		}
		total += len(f2.calls[i])
	}
	if total != 12 || len(f2.calls) != 3 {
		t.Errorf("%d records in %d calls, want 12 in 3", total, len(f2.calls))
	}
}

func TestWriteRecordValidation(t *testing.T) {
	for _, r := range []WriteRecord{
		{PartitionKey: "", Data: []byte("x")},
		{PartitionKey: strings.Repeat("k", 257), Data: []byte("x")},
		{PartitionKey: "k", Data: make([]byte, maxRecordBytes)},
	} {
		if err := r.validate(); err == nil {
			t.Errorf("record with key of %d and data of %d bytes accepted", len(r.PartitionKey), len(r.Data))
		}
	}
	if err := (WriteRecord{PartitionKey: strings.Repeat("é", 256), Data: make([]byte, 1000)}).validate(); err != nil {
		t.Errorf("valid record rejected: %v", err)
	}
}

// makeRecordFn makes test record i: small ones, and every 150th large, so
// that some batches are cut by size.
type makeRecordFn struct{}

func (*makeRecordFn) ProcessElement(i int, emit func(WriteRecord)) {
	n := 20
	if i%150 == 0 {
		n = 700 << 10
	}
	emit(WriteRecord{PartitionKey: fmt.Sprintf("w-%05d", i), Data: recordData(i, n)})
}

func recordData(i, n int) []byte {
	b := []byte(strings.Repeat(fmt.Sprintf("%05d", i), n/5+1))
	return b[:n]
}

func init() {
	register.DoFn2x0[int, func(WriteRecord)](&makeRecordFn{})
	register.Emitter1[WriteRecord]()
}

func TestWriteRoundTrip(t *testing.T) {
	ep := kinesaliteEndpoint(t)
	c := testClient(ep)
	stream := streamName(t)
	createStream(t, c, stream, 3)

	const n = 1200
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	p, s := beam.NewPipelineWithRoot()
	Write(s, stream, beam.ParDo(s, &makeRecordFn{}, beam.CreateList(s, idx)), WriteEndpoint(ep))
	runPipeline(t, p, 60*time.Second)

	// Read everything back with GetRecords, shard by shard.
	got := map[string][32]byte{}
	ctx := context.Background()
	for _, sh := range listTestShards(t, c, stream) {
		it, err := c.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String(stream), ShardId: sh.ShardId, ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
		if err != nil {
			t.Fatal(err)
		}
		iter := it.ShardIterator
		for iter != nil {
			out, err := c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter})
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range out.Records {
				k := aws.ToString(r.PartitionKey)
				if _, dup := got[k]; dup {
					t.Errorf("record %s written twice", k)
				}
				got[k] = sha256.Sum256(r.Data)
			}
			if len(out.Records) == 0 {
				break
			}
			iter = out.NextShardIterator
		}
	}
	if len(got) != n {
		t.Fatalf("read back %d records, wrote %d", len(got), n)
	}
	for i := 0; i < n; i++ {
		size := 20
		if i%150 == 0 {
			size = 700 << 10
		}
		if got[fmt.Sprintf("w-%05d", i)] != sha256.Sum256(recordData(i, size)) {
			t.Errorf("record w-%05d: data differs or missing", i)
		}
	}
}
