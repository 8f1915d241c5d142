package transforms

import (
	"context"
	"runtime"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"

	"github.com/pinpipe/pinpipe/io/files"
)

func init() {
	register.DoFn5x1[context.Context, string, func(int, Batch), func(DeadLetter), func(TableStats), error](&cleanFilesFn{})
}

// CleanFiles is the bounded pipelines' form of the clean composites: its
// elements are whole files of one table's raw records (a PCollection of file
// names), and it emits the clean rows already packed into per-shard Batches
// (KV<int, Batch>, ready for JoinBatches), the dead letters and TableStats.
// The cleaning is the same functions the per-record composites apply.
//
// Taking files rather than records as elements keeps the runner's
// per-element cost off the per-record path, and the records of a bundle are
// cleaned by one goroutine per core, since local runners run a stage's
// bundle on one core.
func CleanFiles(s beam.Scope, table string, shards int, names beam.PCollection) Cleaned {
	s = s.Scope("transforms.CleanFiles")
	rows, dead, stats := beam.ParDo3(s, &cleanFilesFn{Table: table, Shards: shards}, names)
	return Cleaned{rows, dead, stats}
}

// chunkLines is how many lines travel to a cleaning goroutine at a time.
const chunkLines = 1024

// lineChunk holds lines back to back in one buffer.
type lineChunk struct {
	data []byte
	ends []int
}

// cleanResult is what a cleaning goroutine hands back to the DoFn, which
// alone may emit.
type cleanResult struct {
	batch *Batch
	dead  []DeadLetter
	stats *TableStats
}

type cleanFilesFn struct {
	Table  string
	Shards int

	chunks  chan *lineChunk
	results chan cleanResult
	done    chan struct{}
	stats   TableStats
}

func (f *cleanFilesFn) StartBundle(_ context.Context, _ func(int, Batch), _ func(DeadLetter), _ func(TableStats)) {
	workers := runtime.GOMAXPROCS(0)
	f.chunks = make(chan *lineChunk, 2*workers)
	f.results = make(chan cleanResult, 4*workers)
	f.done = make(chan struct{})
	f.stats = TableStats{Table: f.Table}
	finished := make(chan struct{}, workers)
	for range workers {
		go f.work(finished)
	}
	go func() {
		for range workers {
			<-finished
		}
		close(f.done)
	}()
}

func (f *cleanFilesFn) ProcessElement(ctx context.Context, name string, emit func(int, Batch), dead func(DeadLetter), _ func(TableStats)) error {
	chunk := &lineChunk{}
	send := func() {
		for {
			select {
			case f.chunks <- chunk:
				chunk = &lineChunk{data: make([]byte, 0, cap(chunk.data)), ends: make([]int, 0, chunkLines)}
				return
			case r := <-f.results:
				f.emit(r, emit, dead)
			}
		}
	}
	err := files.ReadFileLines(ctx, name, func(line []byte) {
		chunk.data = append(chunk.data, line...)
		chunk.ends = append(chunk.ends, len(chunk.data))
		if len(chunk.ends) == chunkLines {
			send()
		}
	})
	if len(chunk.ends) > 0 {
		send()
	}
	return err
}

func (f *cleanFilesFn) FinishBundle(_ context.Context, emit func(int, Batch), dead func(DeadLetter), stats func(TableStats)) {
	close(f.chunks)
	for {
		select {
		case r := <-f.results:
			f.emit(r, emit, dead)
			continue
		case <-f.done:
		}
		break
	}
	for {
		select {
		case r := <-f.results:
			f.emit(r, emit, dead)
			continue
		default:
		}
		break
	}
	if f.stats.Read > 0 {
		stats(f.stats)
	}
}

func (f *cleanFilesFn) emit(r cleanResult, emit func(int, Batch), dead func(DeadLetter)) {
	if r.batch != nil {
		emit(r.batch.Shard, *r.batch)
	}
	for _, d := range r.dead {
		dead(d)
	}
	if r.stats != nil {
		f.stats.Add(*r.stats)
	}
}

// work cleans chunks until they run out, packing rows into per-shard
// batches that it hands back when full, and the rest at the end.
func (f *cleanFilesFn) work(finished chan<- struct{}) {
	defer func() { finished <- struct{}{} }()
	bufs := make([]*Batch, f.Shards)
	var c cleanStats
	var vals [12][]byte
	fields := fieldsOf(f.Table)
	for chunk := range f.chunks {
		var dead []DeadLetter
		start := 0
		for _, end := range chunk.ends {
			line := chunk.data[start:end]
			start = end
			if isBlank(line) {
				continue
			}
			ind, bad, row, err := cleanRow(f.Table, line, vals[:len(fields)])
			if err != nil {
				reason := err.(*RejectError).Reason
				c.stats.countReject(reason)
				dead = append(dead, NewDeadLetter(f.Table, reason, line))
				continue
			}
			c.clean(fields, bad)
			shard := ShardOf(ind, f.Shards)
			b := bufs[shard]
			if b == nil {
				b = &Batch{Shard: shard}
				bufs[shard] = b
			}
			switch r := row.(type) {
			case *Pin:
				b.Pins = append(b.Pins, *r)
			case *Geo:
				b.Geos = append(b.Geos, *r)
			case *User:
				b.Users = append(b.Users, *r)
			}
			if b.Len() >= batchSize {
				f.results <- cleanResult{batch: b}
				bufs[shard] = nil
			}
		}
		if dead != nil {
			f.results <- cleanResult{dead: dead}
		}
	}
	for _, b := range bufs {
		if b != nil {
			f.results <- cleanResult{batch: b}
		}
	}
	f.results <- cleanResult{stats: &c.stats}
}

func fieldsOf(table string) []string {
	switch table {
	case TablePin:
		return PinFields
	case TableGeo:
		return GeoFields
	case TableUser:
		return UserFields
	}
	panic("transforms: unknown table " + table)
}

// cleanRow cleans one record of the table with the table's rule.
func cleanRow(table string, line []byte, vals [][]byte) (int64, Unparsable, any, error) {
	switch table {
	case TablePin:
		p, bad, err := cleanPin(line, vals, objectFields)
		return p.Ind, bad, &p, err
	case TableGeo:
		g, bad, err := cleanGeo(line, vals, objectFields)
		return g.Ind, bad, &g, err
	default:
		u, bad, err := cleanUser(line, vals, objectFields)
		return u.Ind, bad, &u, err
	}
}
