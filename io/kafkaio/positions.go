package kafkaio

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pinpipe/pinpipe/io/positions"
)

// PositionTable is the PostgreSQL table of durable positions: for each job,
// topic and partition, the offset ranges [from_offset, to_offset] whose
// records have every output written. The sinks record them (RecordSpans),
// in the same transaction as the outputs that depended on them; a read
// with ReadDurablePositions starts each partition at the end of the first
// unbroken run of ranges (see DurableStart), not at what the group
// committed.
//
// An empty range [s, s-1] is the base: where the job's reading of the
// partition started.
const PositionTable = "kafka_positions"

const positionTimeout = 10 * time.Second

const positionDDL = `CREATE TABLE IF NOT EXISTS ` + PositionTable + ` (
	job text NOT NULL,
	topic text NOT NULL,
	partition integer NOT NULL,
	from_offset bigint NOT NULL,
	to_offset bigint NOT NULL,
	updated_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (job, topic, partition, from_offset))`

// RecordSpan is the span a record Read emitted accounts for: its offsets
// [Record.From, Record.Offset] as decimal positions.
func RecordSpan(r Record) positions.Span {
	return positions.Span{Stream: r.Topic, Part: strconv.Itoa(int(r.Partition)),
		From: strconv.FormatInt(r.From, 10), To: strconv.FormatInt(r.Offset, 10)}
}

// CreatePositionTable creates PositionTable if it is missing.
func CreatePositionTable(ctx context.Context, conn *pgx.Conn) error {
	err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", positionLockKey("ddl")); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, positionDDL)
		return err
	})
	if err != nil {
		return fmt.Errorf("kafkaio: creating %s: %w", PositionTable, err)
	}
	return nil
}

func positionLockKey(parts ...string) int64 {
	h := sha256.Sum256([]byte("pinpipe/kafkaio/positions"))
	for _, p := range parts {
		h = sha256.Sum256(append(h[:], p...))
	}
	return int64(binary.BigEndian.Uint64(h[:8]))
}

// RecordSpans adds spans (Kafka offsets: Part is the partition number) to
// job's durable positions, inside tx: the caller writes, in the same
// transaction, the outputs that made them durable. The ranges of each
// partition are kept merged.
func RecordSpans(ctx context.Context, tx pgx.Tx, job string, spans []positions.Span) error {
	for _, part := range positions.ByPart(spans) {
		if err := recordPartition(ctx, tx, job, part); err != nil {
			return fmt.Errorf("kafkaio: recording the durable positions of %s/%s: %w", part[0].Stream, part[0].Part, err)
		}
	}
	return nil
}

func recordPartition(ctx context.Context, tx pgx.Tx, job string, spans []positions.Span) error {
	topic := spans[0].Stream
	part, err := strconv.ParseInt(spans[0].Part, 10, 32)
	if err != nil {
		return fmt.Errorf("partition %q is not a number", spans[0].Part)
	}
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", positionLockKey("part", job, topic, fmt.Sprint(part))); err != nil {
		return err
	}
	old, err := loadSpans(ctx, tx, job, topic, int32(part))
	if err != nil {
		return err
	}
	all, changed := positions.Settle(old, spans)
	if !changed {
		return nil
	}
	// Replace the ranges the new ones touched (a base [s, s-1] is kept as
	// long as nothing starts at s).
	if _, err := tx.Exec(ctx, `DELETE FROM `+PositionTable+` WHERE job = $1 AND topic = $2 AND partition = $3`, job, topic, part); err != nil {
		return err
	}
	for _, s := range all {
		from, err1 := strconv.ParseInt(s.From, 10, 64)
		to, err2 := strconv.ParseInt(s.To, 10, 64)
		if err := errors.Join(err1, err2); err != nil {
			return fmt.Errorf("a span that is not offsets: %+v: %w", s, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO `+PositionTable+` (job, topic, partition, from_offset, to_offset) VALUES ($1, $2, $3, $4, $5)`,
			job, topic, part, from, to); err != nil {
			return err
		}
	}
	return nil
}

type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

func loadSpans(ctx context.Context, q querier, job, topic string, part int32) ([]positions.Span, error) {
	rows, err := q.Query(ctx, `SELECT from_offset, to_offset FROM `+PositionTable+`
		WHERE job = $1 AND topic = $2 AND partition = $3 ORDER BY from_offset`, job, topic, part)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []positions.Span
	for rows.Next() {
		var from, to int64
		if err := rows.Scan(&from, &to); err != nil {
			return nil, err
		}
		out = append(out, positions.Span{Stream: topic, Part: strconv.Itoa(int(part)),
			From: strconv.FormatInt(from, 10), To: strconv.FormatInt(to, 10)})
	}
	return out, rows.Err()
}

// DurableStart is the offset job's read of topic/partition resumes at:
// the end of the first unbroken run of durable ranges. Records after it
// that were durable already are read again, which the sinks must make
// harmless (keyed upserts, whole panes). False when the job has no
// position in the partition.
func DurableStart(ctx context.Context, conn *pgx.Conn, job, topic string, partition int32) (int64, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, positionTimeout)
	defer cancel()
	spans, err := loadSpans(ctx, conn, job, topic, partition)
	if err != nil {
		return 0, false, fmt.Errorf("kafkaio: reading the durable positions of %s/%d: %w", topic, partition, err)
	}
	run, ok := positions.FirstRun(spans)
	if !ok {
		return 0, false, nil
	}
	to, err := strconv.ParseInt(run.To, 10, 64)
	return to + 1, true, err
}

// positionConfig is what a Read with ReadDurablePositions carries to its workers.
type positionConfig struct {
	DSN string
	Job string
}

func (c positionConfig) enabled() bool { return c.DSN != "" }

// positionStore is the discover step's connection to PositionTable.
type positionStore struct {
	cfg  positionConfig
	conn *pgx.Conn
}

func openPositions(ctx context.Context, cfg positionConfig) (*positionStore, error) {
	if cfg.Job == "" {
		return nil, errors.New("kafkaio: durable positions need a job name")
	}
	pc, err := pgx.ParseConfig(cfg.DSN)
	if err != nil {
		return nil, fmt.Errorf("kafkaio: bad PostgreSQL DSN for the positions: %w", err)
	}
	if pc.ConnectTimeout == 0 {
		pc.ConnectTimeout = positionTimeout
	}
	pc.RuntimeParams["application_name"] = "pinpipe kafkaio positions job=" + cfg.Job
	conn, err := pgx.ConnectConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("kafkaio: cannot reach the positions' PostgreSQL at %s:%d (database %q): %w", pc.Host, pc.Port, pc.Database, err)
	}
	if err := CreatePositionTable(ctx, conn); err != nil {
		conn.Close(context.WithoutCancel(ctx))
		return nil, err
	}
	return &positionStore{cfg: cfg, conn: conn}, nil
}

func (s *positionStore) close() {
	if s != nil && s.conn != nil {
		s.conn.Close(context.Background())
	}
}

// start returns where the partition resumes, if the job has a position.
func (s *positionStore) start(ctx context.Context, topic string, part int32) (int64, bool, error) {
	return DurableStart(ctx, s.conn, s.cfg.Job, topic, part)
}

// base records that the job reads the partition from offset at: with
// reset, whatever it had recorded is forgotten (an explicit --start).
func (s *positionStore) base(ctx context.Context, topic string, part int32, at int64, reset bool) error {
	ctx, cancel := context.WithTimeout(ctx, positionTimeout)
	defer cancel()
	err := pgx.BeginFunc(ctx, s.conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", positionLockKey("part", s.cfg.Job, topic, fmt.Sprint(part))); err != nil {
			return err
		}
		if reset {
			if _, err := tx.Exec(ctx, `DELETE FROM `+PositionTable+` WHERE job = $1 AND topic = $2 AND partition = $3`, s.cfg.Job, topic, part); err != nil {
				return err
			}
		}
		_, err := tx.Exec(ctx, `INSERT INTO `+PositionTable+` (job, topic, partition, from_offset, to_offset)
			VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING`, s.cfg.Job, topic, part, at, at-1)
		return err
	})
	if err != nil {
		return fmt.Errorf("kafkaio: recording where %s/%d starts: %w", topic, part, err)
	}
	return nil
}
