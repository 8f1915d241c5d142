package kafkaio

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// fetchMaxBytes bounds one fetch of one partition; a larger first batch is
// still returned whole (KIP-74).
const fetchMaxBytes = 4 << 20

// fetcher reads one partition from one offset per call with a plain Fetch
// request to the partition's leader. A franz-go consumer would buffer ahead
// and own the position; here the position belongs to the restriction, so
// every call asks for exactly the records from that offset, and nothing is
// read that the runner has not asked for.
type fetcher struct {
	cl  *kgo.Client
	adm *kadm.Client

	mu     sync.Mutex
	topics map[string]topicMeta // refreshed on a miss or an error
}

func newFetcher(cl *kgo.Client) *fetcher {
	return &fetcher{cl: cl, adm: kadm.NewClient(cl), topics: map[string]topicMeta{}}
}

// topicMeta is what a fetch needs to know of a topic.
type topicMeta struct {
	id      [16]byte
	leaders map[int32]int32 // partition → leader broker, -1 while there is none
}

// describeTopic asks the cluster for topic's metadata, bypassing the
// client's cache (up to 5s old), so that a partition just added or a leader
// just moved is seen at once. A topic that does not exist has no partitions.
func describeTopic(ctx context.Context, cl *kgo.Client, topic string) (topicMeta, error) {
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return topicMeta{}, retryError{fmt.Errorf("kafkaio: metadata of %s: %w", topic, err)}
	}
	for _, t := range resp.Topics {
		if t.Topic == nil || *t.Topic != topic {
			continue
		}
		err := kerr.ErrorForCode(t.ErrorCode)
		switch {
		case errors.Is(err, kerr.UnknownTopicOrPartition):
			return topicMeta{}, nil
		case kerr.IsRetriable(err):
			return topicMeta{}, retryError{fmt.Errorf("kafkaio: metadata of %s: %w", topic, err)}
		case err != nil:
			return topicMeta{}, fmt.Errorf("kafkaio: metadata of %s: %w", topic, err)
		}
		m := topicMeta{id: t.TopicID, leaders: make(map[int32]int32, len(t.Partitions))}
		for _, p := range t.Partitions {
			m.leaders[p.Partition] = p.Leader
			if kerr.ErrorForCode(p.ErrorCode) != nil {
				m.leaders[p.Partition] = -1
			}
		}
		return m, nil
	}
	return topicMeta{}, retryError{fmt.Errorf("kafkaio: metadata of %s: not in the response", topic)}
}

// fetched is what one fetch returned.
type fetched struct {
	records []*kgo.Record
	next    int64 // the offset to fetch next: past the records and any control records or aborted batches
	hwm     int64 // the partition's high watermark: caught up when next >= hwm
}

// retryError marks a failure that is expected to pass (a leader moving, a
// broker restarting): the read waits a poll interval and tries again.
type retryError struct{ err error }

func (e retryError) Error() string { return e.err.Error() }
func (e retryError) Unwrap() error { return e.err }

func isRetry(err error) bool {
	_, ok := errors.AsType[retryError](err)
	return ok
}

// fetch returns the records of topic/partition from offset on, as many as
// the broker has now (it does not wait for more). It returns
// kerr.OffsetOutOfRange when offset is outside the partition's log.
func (f *fetcher) fetch(ctx context.Context, topic string, partition int32, offset int64) (fetched, error) {
	tm, err := f.topic(ctx, topic, false)
	if err != nil {
		return fetched{}, err
	}
	leader, ok := tm.leaders[partition]
	if !ok || leader < 0 {
		if tm, err = f.topic(ctx, topic, true); err != nil {
			return fetched{}, err
		}
		if leader, ok = tm.leaders[partition]; !ok || leader < 0 {
			return fetched{}, retryError{fmt.Errorf("kafkaio: no leader for %s/%d", topic, partition)}
		}
	}

	req := kmsg.NewPtrFetchRequest()
	req.MaxWaitMillis = 0 // return what is there; the runner's resume delay does the waiting
	req.MinBytes = 1
	req.MaxBytes = fetchMaxBytes
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = topic
	rt.TopicID = tm.id
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition = partition
	rp.FetchOffset = offset
	rp.PartitionMaxBytes = fetchMaxBytes
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)

	resp, err := req.RequestWith(ctx, f.cl.Broker(int(leader)))
	if err != nil {
		f.forget(topic)
		return fetched{}, retryError{fmt.Errorf("kafkaio: fetch %s/%d: %w", topic, partition, err)}
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		f.forget(topic)
		return fetched{}, retryError{fmt.Errorf("kafkaio: fetch %s/%d: %w", topic, partition, err)}
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		return fetched{}, retryError{fmt.Errorf("kafkaio: fetch %s/%d: response without the partition", topic, partition)}
	}
	fp, next := kgo.ProcessFetchPartition(kgo.ProcessFetchPartitionOpts{
		Offset:    offset,
		Topic:     topic,
		Partition: partition,
	}, &resp.Topics[0].Partitions[0], kgo.DefaultDecompressor(), nil)
	switch err := fp.Err; {
	case err == nil:
	case errors.Is(err, kerr.OffsetOutOfRange):
		return fetched{}, err
	case kerr.IsRetriable(err) || errors.Is(err, kerr.FencedLeaderEpoch) || errors.Is(err, kerr.UnknownLeaderEpoch):
		f.forget(topic)
		return fetched{}, retryError{fmt.Errorf("kafkaio: fetch %s/%d: %w", topic, partition, err)}
	default:
		if len(fp.Records) == 0 {
			return fetched{}, fmt.Errorf("kafkaio: fetch %s/%d at %d: %w", topic, partition, offset, err)
		}
		// A damaged batch after good ones: keep the good ones, the next
		// fetch starts at the damaged batch and reports it alone.
	}
	return fetched{records: fp.Records, next: max(next, offset), hwm: fp.HighWatermark}, nil
}

// bounds lists the partition's log start and end offsets.
func (f *fetcher) bounds(ctx context.Context, topic string, partition int32) (start, end int64, err error) {
	starts, err := f.adm.ListStartOffsets(ctx, topic)
	if err != nil {
		return 0, 0, retryError{err}
	}
	ends, err := f.adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return 0, 0, retryError{err}
	}
	s, ok1 := starts.Lookup(topic, partition)
	e, ok2 := ends.Lookup(topic, partition)
	if !ok1 || !ok2 || s.Err != nil || e.Err != nil {
		return 0, 0, retryError{fmt.Errorf("kafkaio: offsets of %s/%d: %v %v", topic, partition, s.Err, e.Err)}
	}
	return s.Offset, e.Offset, nil
}

// topic returns the metadata of topic, asking the cluster when it is not
// cached or refresh is set.
func (f *fetcher) topic(ctx context.Context, topic string, refresh bool) (topicMeta, error) {
	f.mu.Lock()
	tm, ok := f.topics[topic]
	f.mu.Unlock()
	if ok && !refresh {
		return tm, nil
	}
	tm, err := describeTopic(ctx, f.cl, topic)
	if err != nil {
		return tm, err
	}
	if len(tm.leaders) == 0 {
		return tm, retryError{fmt.Errorf("kafkaio: topic %s does not exist", topic)}
	}
	f.mu.Lock()
	f.topics[topic] = tm
	f.mu.Unlock()
	return tm, nil
}

func (f *fetcher) forget(topic string) {
	f.mu.Lock()
	delete(f.topics, topic)
	f.mu.Unlock()
}
