package kinesisio

import (
	"errors"
	"time"
)

// The read's defaults, each the one home of its value: the options below
// and the commands that offer them use these.
const (
	// DefaultPollInterval is how long a caught-up shard waits before it
	// asks for new records (ReadPollInterval).
	DefaultPollInterval = 250 * time.Millisecond
	// DefaultMaxDelay is how far behind the wall clock a caught-up shard's
	// watermark is held (ReadMaxDelay).
	DefaultMaxDelay = 2 * time.Second
	// maxGetRecordsLimit is GetRecords' largest Limit, and the default
	// (ReadMaxRecordsPerCall).
	maxGetRecordsLimit = 10000
)

type readOption struct {
	client       clientConfig
	start        startPos
	until        time.Time
	pollInterval time.Duration
	maxDelay     time.Duration
	limit        int
	checkpoints  checkpointConfig
	committed    bool
	drainMarker  string
}

// ReadOptionFn configures Read.
type ReadOptionFn func(*readOption) error

// ReadTrimHorizon starts at the oldest record the stream still holds. It is
// the default: a new pipeline then misses nothing the stream kept.
func ReadTrimHorizon() ReadOptionFn {
	return func(o *readOption) error {
		o.start = startPos{Kind: startTrimHorizon}
		return nil
	}
}

// ReadLatest starts at each shard's tip when the shard is first opened:
// only records that arrive after the pipeline starts are read.
func ReadLatest() ReadOptionFn {
	return func(o *readOption) error {
		o.start = startPos{Kind: startLatest}
		return nil
	}
}

// ReadAtTimestamp starts at the first record that arrived at or after t.
func ReadAtTimestamp(t time.Time) ReadOptionFn {
	return func(o *readOption) error {
		if t.UnixMilli() <= 0 {
			return errors.New("the start time must be after 1970")
		}
		o.start = startPos{Kind: startAtTimestamp, Millis: t.UnixMilli()}
		return nil
	}
}

// ReadUntil ends the read at t: a shard is finished at its first record that
// arrived at or after t (which is not emitted), or once it is caught up at a
// time later than t plus the max delay (ReadMaxDelay). The output is then
// finite and the pipeline ends by itself, which is what tests and backfills
// of a time range need (cancelling a streaming pipeline is not a drain).
func ReadUntil(t time.Time) ReadOptionFn {
	return func(o *readOption) error {
		if t.UnixMilli() <= 0 {
			return errors.New("the end time must be after 1970")
		}
		o.until = t
		return nil
	}
}

// ReadPollInterval sets how long a caught-up shard waits before it asks for
// new records (default DefaultPollInterval). Kinesis allows 5 GetRecords calls a second
// per shard, shared by all consumers of the stream; the reader never calls
// more often than that, whatever this says. Records reach the pipeline about
// half an interval after they arrive, on average.
func ReadPollInterval(d time.Duration) ReadOptionFn {
	return func(o *readOption) error {
		if d <= 0 {
			return errors.New("the poll interval must be positive")
		}
		o.pollInterval = d
		return nil
	}
}

// ReadMaxDelay sets how far behind the wall clock the watermark of a
// caught-up shard is put (default DefaultMaxDelay): the allowance for
// records that Kinesis accepted but did not yet make readable, and for
// clock skew between the workers and Kinesis. A record that shows up later
// than that is late. kafkaio.ReadMaxDelay is the same setting for Kafka.
// It must also exceed the time the reader takes to see that a split or
// merged shard ended (one or two polls), since until then the parent's
// watermark moves while its children already receive records.
func ReadMaxDelay(d time.Duration) ReadOptionFn {
	return func(o *readOption) error {
		if d < 0 {
			return errors.New("the max delay must not be negative")
		}
		o.maxDelay = d
		return nil
	}
}

// ReadMaxRecordsPerCall sets GetRecords' Limit (1 to 10000, the default).
func ReadMaxRecordsPerCall(n int) ReadOptionFn {
	return func(o *readOption) error {
		if n < 1 || n > maxGetRecordsLimit {
			return errors.New("the records per call must be between 1 and 10000")
		}
		o.limit = n
		return nil
	}
}

// ReadEndpoint sends the reader's calls to url (e.g. a kinesalite) instead
// of the endpoint the AWS settings give.
func ReadEndpoint(url string) ReadOptionFn {
	return func(o *readOption) error {
		o.client.Endpoint = url
		return nil
	}
}

// ReadRegion sets the AWS region instead of the one the AWS settings give.
func ReadRegion(region string) ReadOptionFn {
	return func(o *readOption) error {
		o.client.Region = region
		return nil
	}
}

// ReadCheckpoints records, in the table CheckpointTable of the PostgreSQL
// at dsn (created if missing), how far job has read each shard: the last
// sequence number whose outputs the runner has made durable, and which
// closed shards were read to their end. See the package documentation for
// when a position is written. Reading a stream under one job name from two
// pipelines at once makes their positions meaningless: hold an AcquireLease
// for as long as the pipeline runs.
func ReadCheckpoints(dsn, job string) ReadOptionFn {
	return func(o *readOption) error {
		if dsn == "" || job == "" {
			return errors.New("the checkpoints need a PostgreSQL DSN and a job name")
		}
		o.checkpoints = checkpointConfig{DSN: dsn, Job: job}
		return nil
	}
}

// ReadDurablePositions is ReadCheckpoints for a pipeline whose sinks record
// the positions themselves, once every output of the records is written,
// window panes included: they pass each record's RecordSpan to RecordSpans
// in the transaction that writes its last output. The reader records only
// which shards it reads and where closed ones end, so that ReadCommitted
// still skips the shards read whole and keeps parents before children.
func ReadDurablePositions(dsn, job string) ReadOptionFn {
	return func(o *readOption) error {
		if dsn == "" || job == "" {
			return errors.New("the durable positions need a PostgreSQL DSN and a job name")
		}
		o.checkpoints = checkpointConfig{DSN: dsn, Job: job, Durable: true}
		return nil
	}
}

// ReadCommitted starts from the positions ReadCheckpoints recorded: each
// shard resumes after its recorded sequence number, shards recorded as read
// to their end are skipped, and shards with no position start at
// TRIM_HORIZON (after their parents, as always). It needs ReadCheckpoints or ReadDurablePositions.
func ReadCommitted() ReadOptionFn {
	return func(o *readOption) error {
		o.start = startPos{Kind: startTrimHorizon}
		o.committed = true
		return nil
	}
}

// ReadDrainMarker makes the read end when the drain marker at path (see
// io/drain) appears: each shard once it has caught up, as ReadUntil's time
// ends it. The path reaches the workers in the read's configuration, so a
// worker in a process of its own on the launcher's machine sees the
// request too.
func ReadDrainMarker(path string) ReadOptionFn {
	return func(o *readOption) error {
		if path == "" {
			return errors.New("empty drain marker path")
		}
		o.drainMarker = path
		return nil
	}
}
