package kafkaio

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
)

// PositionTable is the PostgreSQL table of durable positions: for each job,
// topic and partition, the offset ranges [from_offset, to_offset] whose
// records have every output written. The sinks record them (RecordSpans),
// in the same transaction as the outputs that depended on them; a read
// with ReadPositions starts each partition at the end of the first
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

// Span is a run of a partition's offsets, [From, To], that a sink made
// durable: every record of it has all its outputs written. A record's span
// is [Record.From, Record.Offset].
type Span struct {
	Topic     string
	Partition int32
	From      int64
	To        int64
}

// RecordSpan is the span a record Read emitted accounts for.
func RecordSpan(r Record) Span {
	return Span{Topic: r.Topic, Partition: r.Partition, From: r.From, To: r.Offset}
}

// MergeSpans sorts spans and joins those that touch or overlap.
func MergeSpans(spans []Span) []Span {
	slices.SortFunc(spans, func(a, b Span) int {
		if a.Topic != b.Topic {
			if a.Topic < b.Topic {
				return -1
			}
			return 1
		}
		if a.Partition != b.Partition {
			return int(a.Partition) - int(b.Partition)
		}
		switch {
		case a.From < b.From:
			return -1
		case a.From > b.From:
			return 1
		}
		return 0
	})
	out := spans[:0]
	for _, s := range spans {
		if n := len(out); n > 0 && out[n-1].Topic == s.Topic && out[n-1].Partition == s.Partition && s.From <= out[n-1].To+1 {
			out[n-1].To = max(out[n-1].To, s.To)
			continue
		}
		out = append(out, s)
	}
	return out
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

// RecordSpans adds spans to job's durable positions, inside tx: the caller
// writes, in the same transaction, the outputs that made them durable. The
// ranges of each partition are kept merged.
func RecordSpans(ctx context.Context, tx pgx.Tx, job string, spans []Span) error {
	spans = MergeSpans(slices.Clone(spans))
	for i := 0; i < len(spans); {
		j := i
		for j < len(spans) && spans[j].Topic == spans[i].Topic && spans[j].Partition == spans[i].Partition {
			j++
		}
		if err := recordPartition(ctx, tx, job, spans[i:j]); err != nil {
			return fmt.Errorf("kafkaio: recording the durable positions of %s/%d: %w", spans[i].Topic, spans[i].Partition, err)
		}
		i = j
	}
	return nil
}

func recordPartition(ctx context.Context, tx pgx.Tx, job string, spans []Span) error {
	topic, part := spans[0].Topic, spans[0].Partition
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", positionLockKey("part", job, topic, fmt.Sprint(part))); err != nil {
		return err
	}
	old, err := loadSpans(ctx, tx, job, topic, part)
	if err != nil {
		return err
	}
	all := MergeSpans(append(old, spans...))
	if slices.Equal(all, old) {
		return nil
	}
	// Replace the ranges the new ones touched (a base [s, s-1] is kept as
	// long as nothing starts at s).
	if _, err := tx.Exec(ctx, `DELETE FROM `+PositionTable+` WHERE job = $1 AND topic = $2 AND partition = $3`, job, topic, part); err != nil {
		return err
	}
	for _, s := range all {
		if _, err := tx.Exec(ctx, `INSERT INTO `+PositionTable+` (job, topic, partition, from_offset, to_offset) VALUES ($1, $2, $3, $4, $5)`,
			job, topic, part, s.From, s.To); err != nil {
			return err
		}
	}
	return nil
}

type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

func loadSpans(ctx context.Context, q querier, job, topic string, part int32) ([]Span, error) {
	rows, err := q.Query(ctx, `SELECT from_offset, to_offset FROM `+PositionTable+`
		WHERE job = $1 AND topic = $2 AND partition = $3 ORDER BY from_offset`, job, topic, part)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Span
	for rows.Next() {
		s := Span{Topic: topic, Partition: part}
		if err := rows.Scan(&s.From, &s.To); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// durableStart is where the first unbroken run of spans ends (the base
// range's start, if only the base is there), or false when the job has no
// position in the partition.
func durableStart(spans []Span) (int64, bool) {
	spans = MergeSpans(slices.Clone(spans))
	if len(spans) == 0 {
		return 0, false
	}
	return spans[0].To + 1, true
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
	at, ok := durableStart(spans)
	return at, ok, nil
}

// positionConfig is what a Read with ReadPositions carries to its workers.
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
