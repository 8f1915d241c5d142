package kafkaio

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

const (
	// commitTimeout bounds one offset commit.
	commitTimeout = 10 * time.Second
	// commitEvery is how often a partition's offset is committed while it
	// is read, like a Kafka consumer's auto-commit but faster: a restart
	// from the group's offsets re-reads at most about this much.
	commitEvery = time.Second
)

// committed is the last offset this process committed per group and
// partition. Calls on one partition can overlap (a retried bundle, the two
// halves of a split), so commits only ever move a group's offset forward.
var committed = struct {
	sync.Mutex
	m map[string]*commitState
}{m: map[string]*commitState{}}

type commitState struct {
	mu   sync.Mutex // held across the commit, so commits of one partition are in order
	last int64
	at   time.Time
}

func commitStateFor(brokers []string, group, topic string, partition int32) *commitState {
	k := fmt.Sprintf("%s\x00%s\x00%s\x00%d", strings.Join(brokers, ","), group, topic, partition)
	committed.Lock()
	defer committed.Unlock()
	st, ok := committed.m[k]
	if !ok {
		st = &commitState{last: -1}
		committed.m[k] = st
	}
	return st
}

// commitOffset commits next (the offset of the first record not yet done
// with) for topic/partition to group, unless this process already committed
// as much, or committed less than every ago. It commits outside any group
// generation, as a consumer that assigns its partitions itself does.
func commitOffset(adm *kadm.Client, brokers []string, group, topic string, partition int32, next int64, every time.Duration) error {
	st := commitStateFor(brokers, group, topic, partition)
	st.mu.Lock()
	defer st.mu.Unlock()
	if next <= st.last || time.Since(st.at) < every {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), commitTimeout)
	defer cancel()
	os := make(kadm.Offsets)
	os.Add(kadm.Offset{Topic: topic, Partition: partition, At: next, LeaderEpoch: -1})
	resp, err := adm.CommitOffsets(ctx, group, os)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		return fmt.Errorf("kafkaio: commit %s/%d at %d for group %s: %w", topic, partition, next, group, err)
	}
	st.last, st.at = next, time.Now()
	return nil
}
