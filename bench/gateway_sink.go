package main

// The S3 sink's throughput: records already in Kafka (kfake, a child
// process) landed in S3 (gofakes3, another child) by s3sink.Run in this
// process, from its start until its consumer group has committed every
// record.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pinpipe/pinpipe/ingest/generate"
	"github.com/pinpipe/pinpipe/ingest/s3sink"
)

// gwSinkTopics are the topics the sink benchmark fills, 3 partitions each.
var gwSinkTopics = []string{"sinkbench.pin", "sinkbench.geo", "sinkbench.user"}

// gwSinkStats are one sink run's results.
type gwSinkStats struct {
	Compress bool
	Records  int64
	Elapsed  time.Duration
	Stats    s3sink.Stats
}

func (s gwSinkStats) RPS() float64 { return float64(s.Records) / s.Elapsed.Seconds() }

// gwFillKafka writes posts generated posts (three records each, keyed by
// ind) into the sink benchmark's topics, and returns the record count and
// how long producing took.
func gwFillKafka(ctx context.Context, brokers string, posts int) (int64, time.Duration, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers), kgo.ProducerBatchMaxBytes(1<<20))
	if err != nil {
		return 0, 0, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	created, err := adm.CreateTopics(ctx, 3, 1, nil, gwSinkTopics...)
	if err == nil {
		err = created.Error()
	}
	if err != nil {
		return 0, 0, fmt.Errorf("creating the sink's topics: %w", err)
	}
	start := time.Now()
	g := generate.New(7, posts)
	var n int64
	batch := make([]*kgo.Record, 0, 3000)
	for i := range posts {
		p := g.Post(int64(i))
		recs := g.Records(p)
		key := []byte(strconv.Itoa(i))
		for j, table := range []string{"pin", "geo", "user"} {
			batch = append(batch, &kgo.Record{Topic: gwSinkTopics[j], Key: key, Value: recs[table]})
		}
		if len(batch) == cap(batch) || i == posts-1 {
			if err := cl.ProduceSync(ctx, batch...).FirstErr(); err != nil {
				return n, 0, err
			}
			n += int64(len(batch))
			batch = batch[:0]
		}
	}
	return n, time.Since(start), nil
}

// gwSinkRun lands the topics with a sink of its own group and prefix and
// returns how long it took until every record was committed.
func gwSinkRun(ctx context.Context, brokers, s3URL string, records int64, compress bool) (gwSinkStats, error) {
	client := s3.New(s3.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(s3URL),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider("bench", "bench", ""),
	})
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers))
	if err != nil {
		return gwSinkStats{}, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ends, err := adm.ListEndOffsets(ctx, gwSinkTopics...)
	if err != nil {
		return gwSinkStats{}, err
	}
	var total int64
	ends.Each(func(o kadm.ListedOffset) { total += o.Offset })
	if total != records {
		return gwSinkStats{}, fmt.Errorf("the topics hold %d records, want %d", total, records)
	}

	group := "bench-sink"
	dest := "s3://" + gwBucket + "/raw"
	if compress {
		group, dest = "bench-sink-gz", "s3://"+gwBucket+"/raw-gz"
	}
	sinkCtx, stop := context.WithCancel(ctx)
	defer stop()
	type result struct {
		st  s3sink.Stats
		err error
	}
	done := make(chan result, 1)
	start := time.Now()
	go func() {
		st, err := s3sink.Run(sinkCtx, s3sink.Options{Brokers: []string{brokers}, Topics: `sinkbench\.(pin|geo|user)`, Dest: dest,
			Group: group, FlushSize: 1000, RotateInterval: 500 * time.Millisecond, Compress: compress, S3: client,
			Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
		done <- result{st, err}
	}()
	var elapsed time.Duration
	for elapsed == 0 {
		select {
		case r := <-done:
			return gwSinkStats{}, fmt.Errorf("the sink stopped early: %v", r.err)
		case <-ctx.Done():
			return gwSinkStats{}, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		ok, err := gwCommitted(ctx, adm, group, ends)
		if err != nil {
			return gwSinkStats{}, err
		}
		if ok {
			elapsed = time.Since(start)
		}
	}
	stop()
	r := <-done
	if r.err != nil {
		return gwSinkStats{}, r.err
	}
	if r.st.ObjectRecords != records {
		return gwSinkStats{}, fmt.Errorf("the sink wrote %d records into objects, want %d", r.st.ObjectRecords, records)
	}
	return gwSinkStats{Compress: compress, Records: records, Elapsed: elapsed, Stats: r.st}, nil
}

// gwCommitted says whether group has committed every partition up to its
// end offset.
func gwCommitted(ctx context.Context, adm *kadm.Client, group string, ends kadm.ListedOffsets) (bool, error) {
	committed, err := adm.FetchOffsets(ctx, group)
	if errors.Is(err, kerr.GroupIDNotFound) || errors.Is(err, kerr.CoordinatorLoadInProgress) || errors.Is(err, kerr.CoordinatorNotAvailable) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	done := true
	ends.Each(func(e kadm.ListedOffset) {
		at := int64(0)
		if c, ok := committed.Lookup(e.Topic, e.Partition); ok && c.Err == nil {
			at = c.At
		}
		if at < e.Offset {
			done = false
		}
	})
	return done, nil
}
