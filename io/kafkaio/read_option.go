package kafkaio

import (
	"errors"
	"fmt"
	"time"
)

// StartPosition is where a partition is first read from.
type StartPosition int

const (
	// StartCommitted starts at the consumer group's committed offset, or at
	// the earliest offset when the group has none for the partition. It is
	// the default when a group is set, and needs one.
	StartCommitted StartPosition = iota
	// StartEarliest starts at the oldest record the partition still keeps.
	// It is the default without a group.
	StartEarliest
	// StartLatest starts after the last record present when the partition
	// is first listed.
	StartLatest
)

func (p StartPosition) String() string {
	switch p {
	case StartCommitted:
		return "committed"
	case StartEarliest:
		return "earliest"
	case StartLatest:
		return "latest"
	}
	return fmt.Sprintf("StartPosition(%d)", int(p))
}

// The read's defaults, each the one home of its value: the options below
// and the commands that offer them use these.
const (
	// DefaultPollInterval is how long a caught-up partition waits before
	// it asks the broker again (ReadPollInterval).
	DefaultPollInterval = 100 * time.Millisecond
	// DefaultDiscoveryInterval is how often the topics are listed again for
	// new partitions (ReadDiscoveryInterval).
	DefaultDiscoveryInterval = 10 * time.Second
	// DefaultMaxDelay is how late a record may be and still be on time
	// (ReadMaxDelay).
	DefaultMaxDelay = time.Second
)

type readOption struct {
	Group             string
	Start             StartPosition
	startSet          bool
	ProcessingTime    bool
	MaxDelay          time.Duration
	PollInterval      time.Duration
	DiscoveryInterval time.Duration
	UntilLatest       bool
	Ends              []partitionOffset
	Positions         positionConfig
	DrainMarker       string
}

// ReadOptionFn configures Read.
type ReadOptionFn func(*readOption) error

// ReadGroup names the consumer group whose committed offsets the read
// starts from (by default) and to which it commits the progress the runner
// has made durable. Without a group nothing is committed. The group is
// used for its offsets only: the pipeline is not a member, so other
// members would not share its partitions.
func ReadGroup(group string) ReadOptionFn {
	return func(o *readOption) error {
		if group == "" {
			return errors.New("empty group")
		}
		o.Group = group
		return nil
	}
}

// ReadDurablePositions makes the read start each partition from job's
// durable positions in PositionTable, in the PostgreSQL at dsn, rather than
// from the group's offsets: StartCommitted resumes at DurableStart, and a
// partition the job has no position in starts from the group's offset (or
// its beginning), recorded there as the job's base. An explicit
// StartEarliest or StartLatest forgets the job's positions. The positions
// are recorded by the pipeline's sinks, with RecordSpans, only once every
// output of a range's records is written: the read records none itself.
// Group offsets, if ReadGroup is set too, are still committed, and then
// tell how far the read got, not what is durable.
func ReadDurablePositions(dsn, job string) ReadOptionFn {
	return func(o *readOption) error {
		if dsn == "" || job == "" {
			return errors.New("ReadDurablePositions needs a DSN and a job name")
		}
		o.Positions = positionConfig{DSN: dsn, Job: job}
		return nil
	}
}

// ReadStart sets where the partitions listed when the pipeline starts are
// read from. Partitions added to a topic later are always read from the
// group's committed offset or else from their beginning, since everything
// in them is new.
func ReadStart(p StartPosition) ReadOptionFn {
	return func(o *readOption) error {
		if p < StartCommitted || p > StartLatest {
			return fmt.Errorf("unknown start position %d", int(p))
		}
		o.Start, o.startSet = p, true
		return nil
	}
}

// ReadProcessingTime stamps records with the time they are read instead of
// their Kafka timestamp; the watermark is then the read time.
func ReadProcessingTime() ReadOptionFn {
	return func(o *readOption) error {
		o.ProcessingTime = true
		return nil
	}
}

// ReadMaxDelay is how far behind the newest timestamp seen, or behind now
// when a partition is caught up, a record's Kafka timestamp may be and
// still be on time: the partition's watermark is held that far back.
// Producers that batch or retry for longer need more. Default
// DefaultMaxDelay. kinesisio.ReadMaxDelay is the same setting for Kinesis.
func ReadMaxDelay(d time.Duration) ReadOptionFn {
	return func(o *readOption) error {
		if d < 0 {
			return errors.New("negative max delay")
		}
		o.MaxDelay = d
		return nil
	}
}

// ReadPollInterval is how long a caught-up partition waits before it asks
// the broker again; records reach the pipeline about half of it after they
// arrive. Default DefaultPollInterval.
func ReadPollInterval(d time.Duration) ReadOptionFn {
	return func(o *readOption) error {
		if d <= 0 {
			return errors.New("poll interval must be positive")
		}
		o.PollInterval = d
		return nil
	}
}

// ReadDiscoveryInterval is how often the topics are listed again for
// partitions added while the pipeline runs; 0 lists them only once.
// Default DefaultDiscoveryInterval. Records written to a new partition before it is discovered
// may be behind the watermark by up to this interval, so keep windows'
// allowed lateness above it.
func ReadDiscoveryInterval(d time.Duration) ReadOptionFn {
	return func(o *readOption) error {
		if d < 0 {
			return errors.New("negative discovery interval")
		}
		o.DiscoveryInterval = d
		return nil
	}
}

// ReadUntilLatest makes the read bounded: each partition is read up to the
// last record present when it is listed, then the read ends, and with it a
// pipeline that has no other unbounded input. Topics are listed once. For
// backfills and tests.
func ReadUntilLatest() ReadOptionFn {
	return func(o *readOption) error {
		o.UntilLatest = true
		return nil
	}
}

// ReadEndOffsets stops each given partition before the given offset
// (exclusive), waiting for records up to it if they are not there yet.
// Topics are listed once. A pipeline ends only when every partition it
// reads has an end (here or through ReadUntilLatest, which gives the
// partitions not named here theirs).
func ReadEndOffsets(ends map[string]map[int32]int64) ReadOptionFn {
	return func(o *readOption) error {
		for t, ps := range ends {
			for p, off := range ps {
				if off < 0 {
					return fmt.Errorf("negative end offset for %s/%d", t, p)
				}
				o.Ends = append(o.Ends, partitionOffset{Topic: t, Partition: p, Offset: off})
			}
		}
		return nil
	}
}

// ReadDrainMarker makes the read end when the drain marker at path (see
// io/drain) appears: each unbounded partition once it has caught up and
// committed what it read, and the listing of new partitions at once. The
// path reaches the workers in the read's configuration, so a worker in a
// process of its own on the launcher's machine sees the request too.
func ReadDrainMarker(path string) ReadOptionFn {
	return func(o *readOption) error {
		if path == "" {
			return errors.New("empty drain marker path")
		}
		o.DrainMarker = path
		return nil
	}
}

// partitionOffset is an offset of one partition, in a form the DoFns'
// JSON serialisation keeps.
type partitionOffset struct {
	Topic     string
	Partition int32
	Offset    int64
}

func newReadOption(opts []ReadOptionFn) (*readOption, error) {
	o := &readOption{MaxDelay: DefaultMaxDelay, PollInterval: DefaultPollInterval, DiscoveryInterval: DefaultDiscoveryInterval}
	for _, opt := range opts {
		if err := opt(o); err != nil {
			return nil, err
		}
	}
	if !o.startSet {
		o.Start = StartEarliest
		if o.Group != "" {
			o.Start = StartCommitted
		}
	}
	if !o.startSet && o.Positions.enabled() {
		o.Start = StartCommitted
	}
	if o.Start == StartCommitted && o.Group == "" && !o.Positions.enabled() {
		return nil, errors.New("StartCommitted needs ReadGroup or ReadDurablePositions")
	}
	if o.UntilLatest || len(o.Ends) > 0 {
		o.DiscoveryInterval = 0
	}
	return o, nil
}
