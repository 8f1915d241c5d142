package kinesisio

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// fakeKinesis is an in-memory stream for the reader's unit tests: shards
// with records, parents and a closed flag, iterators "shard/index", errors
// injected per operation, and a log of the calls.
type fakeKinesis struct {
	mu     sync.Mutex
	shards []*fakeShard
	seq    int
	errs   map[string][]error // operation -> errors returned by its next calls
	calls  []string
	// hangAtTimestamp makes AT_TIMESTAMP calls block until their context
	// ends, as kinesalite does when no record is that recent.
	hangAtTimestamp bool
}

type fakeShard struct {
	id, parent, adjacent string
	recs                 []types.Record
	closed               bool
}

func newFake(shards ...string) *fakeKinesis {
	f := &fakeKinesis{errs: map[string][]error{}, seq: 1000000}
	for _, id := range shards {
		f.shards = append(f.shards, &fakeShard{id: id})
	}
	return f
}

func (f *fakeKinesis) shard(id string) *fakeShard {
	for _, s := range f.shards {
		if s.id == id {
			return s
		}
	}
	return nil
}

// put appends records with the given data to a shard, arriving at `at`.
func (f *fakeKinesis) put(shard string, at time.Time, data ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.shard(shard)
	for _, d := range data {
		f.seq++
		s.recs = append(s.recs, types.Record{
			SequenceNumber:              aws.String(strconv.Itoa(f.seq)),
			PartitionKey:                aws.String("pk-" + d),
			Data:                        []byte(d),
			ApproximateArrivalTimestamp: aws.Time(at),
		})
	}
}

// reshard closes parents and adds a child.
func (f *fakeKinesis) addChild(id, parent, adjacent string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, p := range []string{parent, adjacent} {
		if s := f.shard(p); s != nil {
			s.closed = true
		}
	}
	f.shards = append(f.shards, &fakeShard{id: id, parent: parent, adjacent: adjacent})
}

func (f *fakeKinesis) failNext(op string, errs ...error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.errs[op] = append(f.errs[op], errs...)
}

func (f *fakeKinesis) injected(op string) error {
	if q := f.errs[op]; len(q) > 0 {
		f.errs[op] = q[1:]
		return q[0]
	}
	return nil
}

func (f *fakeKinesis) log() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

func (f *fakeKinesis) ListShards(_ context.Context, in *kinesis.ListShardsInput, _ ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "ListShards "+aws.ToString(in.ExclusiveStartShardId))
	if err := f.injected("ListShards"); err != nil {
		return nil, err
	}
	out := &kinesis.ListShardsOutput{}
	for _, s := range f.shards {
		if in.ExclusiveStartShardId != nil && s.id <= *in.ExclusiveStartShardId {
			continue
		}
		sh := types.Shard{ShardId: aws.String(s.id), SequenceNumberRange: &types.SequenceNumberRange{StartingSequenceNumber: aws.String("1")}}
		if s.parent != "" {
			sh.ParentShardId = aws.String(s.parent)
		}
		if s.adjacent != "" {
			sh.AdjacentParentShardId = aws.String(s.adjacent)
		}
		if s.closed {
			sh.SequenceNumberRange.EndingSequenceNumber = aws.String("9")
		}
		out.Shards = append(out.Shards, sh)
	}
	return out, nil
}

func (f *fakeKinesis) GetShardIterator(ctx context.Context, in *kinesis.GetShardIteratorInput, _ ...func(*kinesis.Options)) (*kinesis.GetShardIteratorOutput, error) {
	f.mu.Lock()
	call := fmt.Sprintf("GetShardIterator %s %s", aws.ToString(in.ShardId), in.ShardIteratorType)
	if in.StartingSequenceNumber != nil {
		call += " " + *in.StartingSequenceNumber
	}
	f.calls = append(f.calls, call)
	if err := f.injected("GetShardIterator"); err != nil {
		f.mu.Unlock()
		return nil, err
	}
	if in.ShardIteratorType == types.ShardIteratorTypeAtTimestamp && f.hangAtTimestamp {
		f.mu.Unlock()
		<-ctx.Done()
		return nil, fmt.Errorf("operation error Kinesis: GetShardIterator: %w", ctx.Err())
	}
	defer f.mu.Unlock()
	s := f.shard(aws.ToString(in.ShardId))
	if s == nil {
		return nil, &types.ResourceNotFoundException{Message: aws.String("no shard")}
	}
	idx := 0
	switch in.ShardIteratorType {
	case types.ShardIteratorTypeTrimHorizon:
	case types.ShardIteratorTypeLatest:
		idx = len(s.recs)
	case types.ShardIteratorTypeAfterSequenceNumber:
		i := slices.IndexFunc(s.recs, func(r types.Record) bool { return *r.SequenceNumber == *in.StartingSequenceNumber })
		if i < 0 {
			return nil, &types.InvalidArgumentException{Message: aws.String("no such sequence number")}
		}
		idx = i + 1
	case types.ShardIteratorTypeAtTimestamp:
		idx = len(s.recs)
		for i, r := range s.recs {
			if !r.ApproximateArrivalTimestamp.Before(*in.Timestamp) {
				idx = i
				break
			}
		}
	default:
		return nil, errors.New("unsupported iterator type")
	}
	return &kinesis.GetShardIteratorOutput{ShardIterator: aws.String(fmt.Sprintf("%s/%d", s.id, idx))}, nil
}

func (f *fakeKinesis) GetRecords(_ context.Context, in *kinesis.GetRecordsInput, _ ...func(*kinesis.Options)) (*kinesis.GetRecordsOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	it := aws.ToString(in.ShardIterator)
	f.calls = append(f.calls, "GetRecords "+it)
	if err := f.injected("GetRecords"); err != nil {
		return nil, err
	}
	id, n, _ := strings.Cut(it, "/")
	idx, _ := strconv.Atoi(n)
	s := f.shard(id)
	end := min(len(s.recs), idx+int(aws.ToInt32(in.Limit)))
	out := &kinesis.GetRecordsOutput{
		Records:            slices.Clone(s.recs[idx:end]),
		MillisBehindLatest: aws.Int64(0),
	}
	if end < len(s.recs) {
		out.MillisBehindLatest = aws.Int64(1000)
	}
	if !(s.closed && end == len(s.recs)) {
		out.NextShardIterator = aws.String(fmt.Sprintf("%s/%d", id, end))
	}
	return out, nil
}
