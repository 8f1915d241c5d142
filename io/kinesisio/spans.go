package kinesisio

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/pinpipe/pinpipe/io/positions"
)

// SpanTable holds, for a job reading with ReadDurablePositions, the runs of
// each shard's sequence numbers whose records have every output written
// but which do not continue the shard's checkpoint yet (an earlier record
// of the shard still waits for its window). RecordSpans folds every run
// that reaches the checkpoint into CheckpointTable's sequence_number, so
// this table holds only what is ahead of it.
const SpanTable = "kinesis_spans"

const spanDDL = `CREATE TABLE IF NOT EXISTS ` + SpanTable + ` (
	job text NOT NULL,
	stream text NOT NULL,
	shard text NOT NULL,
	from_seq text NOT NULL,
	to_seq text NOT NULL,
	updated_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (job, stream, shard, from_seq))`

// checkpointColumnsDDL adds the columns of a shard's end to a checkpoint
// table made before they existed.
const checkpointColumnsDDL = `ALTER TABLE ` + CheckpointTable + `
	ADD COLUMN IF NOT EXISTS ended boolean NOT NULL DEFAULT false,
	ADD COLUMN IF NOT EXISTS end_sequence_number text NOT NULL DEFAULT ''`

// spanFrom is the first sequence number a record accounts for, after the
// previous one emitted from its shard ("": none).
func spanFrom(prev string) string {
	if prev == "" {
		return "0"
	}
	return positions.Next(prev)
}

// RecordSpan is the span of sequence numbers a record Read emitted
// accounts for.
func RecordSpan(r Record) positions.Span {
	return positions.Span{Stream: r.Stream, Part: r.ShardID, From: r.From, To: r.SequenceNumber}
}

// CreatePositionTables creates CheckpointTable and SpanTable if missing.
func CreatePositionTables(ctx context.Context, conn *pgx.Conn) error {
	err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", lockKey("ddl", CheckpointTable)); err != nil {
			return err
		}
		for _, ddl := range []string{checkpointDDL, checkpointColumnsDDL, spanDDL} {
			if _, err := tx.Exec(ctx, ddl); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("kinesisio: creating %s and %s: %w", CheckpointTable, SpanTable, err)
	}
	return nil
}

// RecordSpans adds spans to job's durable positions, inside tx: the caller
// writes, in the same transaction, the outputs that made them durable.
// Per shard, the checkpoint (CheckpointTable's sequence_number) moves to
// the end of the unbroken run of durable sequence numbers from the shard's
// start through the old checkpoint; spans beyond a gap wait in SpanTable.
// A shard whose end the reader saw (see recordEnd) is recorded closed once
// its checkpoint reaches its last record.
func RecordSpans(ctx context.Context, tx pgx.Tx, job string, spans []positions.Span) error {
	for _, shard := range positions.ByPart(spans) {
		if err := settleShard(ctx, tx, job, shard[0].Stream, shard[0].Part, shard, nil); err != nil {
			return fmt.Errorf("kinesisio: recording the durable positions of %s/%s: %w", shard[0].Stream, shard[0].Part, err)
		}
	}
	return nil
}

// recordEnd records that the reader reached the shard's end after last
// (its last record; "" when it had none after the reader's start).
func recordEnd(ctx context.Context, tx pgx.Tx, job, stream, shard, last string) error {
	return settleShard(ctx, tx, job, stream, shard, nil, &last)
}

// recordReading makes sure the shard has a row: the job reads it, so its
// children's positions do not make it finished (see rootsFromCheckpoints).
func recordReading(ctx context.Context, tx pgx.Tx, job, stream, shard string) error {
	_, err := tx.Exec(ctx, `INSERT INTO `+CheckpointTable+` (job, stream, shard) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`, job, stream, shard)
	return err
}

// lockShards takes the shard locks of every shard in reading and ends,
// in the order RecordSpans takes them (by stream, then shard), before
// saveEnds writes any of their rows: taken one by one as its rows are
// written, a sink's RecordSpans holding one shard and waiting for another
// could wait on this transaction's row of the first, and PostgreSQL ended
// one of them with "deadlock detected" (the split of a shard under a
// running job did this).
func lockShards(ctx context.Context, tx pgx.Tx, job, stream string, reading []string, ends map[string]string) error {
	shards := slices.Concat(reading, slices.Collect(maps.Keys(ends)))
	slices.Sort(shards)
	for _, shard := range slices.Compact(shards) {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", lockKey("shard", job, stream, shard)); err != nil {
			return err
		}
	}
	return nil
}

// settleShard merges spans into the shard's durable positions and, with
// end, records the shard's end; then it moves the checkpoint and the
// closed flag to what the positions now say.
func settleShard(ctx context.Context, tx pgx.Tx, job, stream, shard string, spans []positions.Span, end *string) error {
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", lockKey("shard", job, stream, shard)); err != nil {
		return err
	}
	var seq, endSeq string
	var ended, closed bool
	err := tx.QueryRow(ctx, `SELECT sequence_number, ended, end_sequence_number, closed FROM `+CheckpointTable+`
		WHERE job = $1 AND stream = $2 AND shard = $3`, job, stream, shard).Scan(&seq, &ended, &endSeq, &closed)
	if err != nil && err != pgx.ErrNoRows {
		return err
	}
	if end != nil {
		ended, endSeq = true, *end
	}
	var waiting []positions.Span
	if len(spans) > 0 {
		rows, err := tx.Query(ctx, `SELECT from_seq, to_seq FROM `+SpanTable+` WHERE job = $1 AND stream = $2 AND shard = $3`, job, stream, shard)
		if err != nil {
			return err
		}
		for rows.Next() {
			s := positions.Span{Stream: stream, Part: shard}
			if err := rows.Scan(&s.From, &s.To); err != nil {
				rows.Close()
				return err
			}
			waiting = append(waiting, s)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		old := len(waiting)
		recorded := waiting
		if seq != "" {
			// The checkpoint is the run from the shard's start.
			recorded = append(recorded, positions.Span{Stream: stream, Part: shard, From: "0", To: seq})
		}
		all, _ := positions.Settle(recorded, spans)
		if run, _ := positions.FirstRun(all); run.From == "0" {
			seq, all = run.To, all[1:]
		}
		if old > 0 || len(all) > 0 {
			if _, err := tx.Exec(ctx, `DELETE FROM `+SpanTable+` WHERE job = $1 AND stream = $2 AND shard = $3`, job, stream, shard); err != nil {
				return err
			}
			for _, s := range all {
				if _, err := tx.Exec(ctx, `INSERT INTO `+SpanTable+` (job, stream, shard, from_seq, to_seq) VALUES ($1, $2, $3, $4, $5)`,
					job, stream, shard, s.From, s.To); err != nil {
					return err
				}
			}
		}
	}
	closed = closed || (ended && (endSeq == "" || (seq != "" && compareSeq(seq, endSeq) >= 0)))
	_, err = tx.Exec(ctx, `INSERT INTO `+CheckpointTable+` AS c (job, stream, shard, sequence_number, closed, ended, end_sequence_number, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, now())
		ON CONFLICT (job, stream, shard) DO UPDATE SET sequence_number = EXCLUDED.sequence_number, closed = EXCLUDED.closed,
			ended = EXCLUDED.ended, end_sequence_number = EXCLUDED.end_sequence_number, updated_at = now()`,
		job, stream, shard, seq, closed, ended, endSeq)
	return err
}

// DurableStart is the sequence number job's read of stream's shard resumes
// at after a restart: the one after the shard's checkpoint (the end of the
// unbroken run of durable sequence numbers from the shard's start).
// Records after it that were durable already (spans waiting beyond a gap
// in SpanTable) are read again, as kafkaio.DurableStart's are. False when
// the job has no checkpoint in the shard.
func DurableStart(ctx context.Context, conn *pgx.Conn, job, stream, shard string) (string, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, checkpointConnectTimeout)
	defer cancel()
	var seq string
	err := conn.QueryRow(ctx, `SELECT sequence_number FROM `+CheckpointTable+` WHERE job = $1 AND stream = $2 AND shard = $3`,
		job, stream, shard).Scan(&seq)
	if err == pgx.ErrNoRows || (err == nil && seq == "") {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("kinesisio: reading the checkpoint of %s/%s: %w", stream, shard, err)
	}
	return positions.Next(seq), true, nil
}
