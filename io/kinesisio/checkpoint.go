package kinesisio

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// CheckpointTable is the PostgreSQL table that keeps each job's position in
// each shard, as the KCL's lease table does in DynamoDB: one row per (job,
// stream, shard) with the sequence number of the last record whose outputs
// are durable, and whether the shard was closed (split or merged) and read
// to its end.
const CheckpointTable = "kinesis_checkpoints"

const (
	checkpointConnectTimeout = 10 * time.Second
	checkpointTimeout        = 10 * time.Second
	// checkpointEvery is how often a shard's position is recorded while it
	// is read: a restart re-reads at most about this much, plus the bundle
	// in flight. A closed shard is recorded at once.
	checkpointEvery = time.Second
)

// checkpointDDL creates the table. It runs under an advisory transaction
// lock, since concurrent CREATE TABLE IF NOT EXISTS collide in PostgreSQL's
// catalog.
const checkpointDDL = `CREATE TABLE IF NOT EXISTS ` + CheckpointTable + ` (
	job text NOT NULL,
	stream text NOT NULL,
	shard text NOT NULL,
	sequence_number text NOT NULL DEFAULT '',
	closed boolean NOT NULL DEFAULT false,
	updated_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (job, stream, shard))`

// checkpointConfig is the serialisable part of a checkpoint store: what a
// DoFn carries to the workers. An empty DSN means no store.
type checkpointConfig struct {
	DSN string
	Job string
	// Durable: the sinks record the positions (RecordSpans) once the
	// records' outputs are written; the reader records only where shards
	// end (see ReadDurablePositions).
	Durable bool
}

func (c checkpointConfig) enabled() bool { return c.DSN != "" }

// shardPosition is what the store holds for one shard.
type shardPosition struct {
	Seq    string // the last record read whose outputs are durable ("": none)
	Closed bool   // the shard ended and was read to its end
}

// checkpointStore is an open connection to the checkpoint table.
type checkpointStore struct {
	cfg  checkpointConfig
	conn *pgx.Conn
}

// openCheckpoints connects to the store and creates its table if missing.
func openCheckpoints(ctx context.Context, cfg checkpointConfig, app string) (*checkpointStore, error) {
	if cfg.Job == "" {
		return nil, errors.New("kinesisio: checkpoints need a job name")
	}
	conn, err := connectPG(ctx, cfg.DSN, app)
	if err != nil {
		return nil, err
	}
	if err := CreatePositionTables(ctx, conn); err != nil {
		conn.Close(context.WithoutCancel(ctx))
		return nil, err
	}
	return &checkpointStore{cfg: cfg, conn: conn}, nil
}

// connectPG opens a connection, naming it app in pg_stat_activity. Its
// errors name the server but never the password.
func connectPG(ctx context.Context, dsn, app string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("kinesisio: bad PostgreSQL DSN for the checkpoints: %w", err)
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = checkpointConnectTimeout
	}
	if app != "" {
		cfg.RuntimeParams["application_name"] = app
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("kinesisio: cannot reach the checkpoints' PostgreSQL at %s:%d (database %q): %w", cfg.Host, cfg.Port, cfg.Database, err)
	}
	return conn, nil
}

// saveEnds records, for a reader with durable positions, the shards it
// reads and the ends it reached (by shard: the last record's sequence
// number, "" for none).
func (s *checkpointStore) saveEnds(ctx context.Context, stream string, reading []string, ends map[string]string) error {
	ctx, cancel := context.WithTimeout(ctx, checkpointTimeout)
	defer cancel()
	err := pgx.BeginFunc(ctx, s.conn, func(tx pgx.Tx) error {
		if err := lockShards(ctx, tx, s.cfg.Job, stream, reading, ends); err != nil {
			return err
		}
		for _, shard := range reading {
			if err := recordReading(ctx, tx, s.cfg.Job, stream, shard); err != nil {
				return err
			}
		}
		for shard, last := range ends {
			if err := recordEnd(ctx, tx, s.cfg.Job, stream, shard, last); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("kinesisio: recording the shards of %s: %w", stream, err)
	}
	return nil
}

func (s *checkpointStore) close() {
	if s != nil && s.conn != nil {
		s.conn.Close(context.Background())
	}
}

// load returns the positions recorded for the job in stream, by shard.
func (s *checkpointStore) load(ctx context.Context, stream string) (map[string]shardPosition, error) {
	ctx, cancel := context.WithTimeout(ctx, checkpointTimeout)
	defer cancel()
	rows, err := s.conn.Query(ctx, `SELECT shard, sequence_number, closed FROM `+CheckpointTable+` WHERE job = $1 AND stream = $2`, s.cfg.Job, stream)
	if err != nil {
		return nil, fmt.Errorf("kinesisio: reading the checkpoints of %s: %w", stream, err)
	}
	defer rows.Close()
	out := map[string]shardPosition{}
	for rows.Next() {
		var shard string
		var p shardPosition
		if err := rows.Scan(&shard, &p.Seq, &p.Closed); err != nil {
			return nil, err
		}
		out[shard] = p
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("kinesisio: reading the checkpoints of %s: %w", stream, err)
	}
	return out, nil
}

// save records positions of stream's shards, in one transaction. A shard
// once recorded closed stays closed, and a recorded sequence number never
// moves backwards: a re-read from an earlier start (ReadTrimHorizon over a
// job's existing checkpoints) takes a position over only once it passes
// it.
func (s *checkpointStore) save(ctx context.Context, stream string, pos map[string]shardPosition) error {
	if len(pos) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, checkpointTimeout)
	defer cancel()
	b := &pgx.Batch{}
	for shard, p := range pos {
		b.Queue(`INSERT INTO `+CheckpointTable+` AS c (job, stream, shard, sequence_number, closed, updated_at)
			VALUES ($1, $2, $3, $4, $5, now())
			ON CONFLICT (job, stream, shard) DO UPDATE SET
				sequence_number = CASE WHEN c.closed OR EXCLUDED.sequence_number = '' THEN c.sequence_number
					WHEN c.sequence_number = '' THEN EXCLUDED.sequence_number
					ELSE greatest(c.sequence_number::numeric, EXCLUDED.sequence_number::numeric)::text END,
				closed = c.closed OR EXCLUDED.closed,
				updated_at = now()`,
			s.cfg.Job, stream, shard, p.Seq, p.Closed)
	}
	err := pgx.BeginFunc(ctx, s.conn, func(tx pgx.Tx) error {
		return tx.SendBatch(ctx, b).Close()
	})
	if err != nil {
		return fmt.Errorf("kinesisio: recording the checkpoints of %d shards of %s: %w", len(pos), stream, err)
	}
	return nil
}

// lockKey is a 64-bit advisory lock key for the parts, in a space of
// kinesisio's own.
func lockKey(parts ...string) int64 {
	h := sha256.Sum256([]byte("pinpipe/kinesisio\x00" + strings.Join(parts, "\x00")))
	return int64(binary.BigEndian.Uint64(h[:8]))
}

// Lease is a job's exclusive hold on its streams: a PostgreSQL session
// holding an advisory lock per (job, stream) for as long as it is open, as
// the KCL's leases keep two workers of one application off the same
// shards. A second job with the same name cannot take it while the first
// holds it; the locks go with the session, so a job that dies (even by
// SIGKILL) frees them as soon as PostgreSQL sees its connection close.
type Lease struct {
	mu      sync.Mutex // Check and Close may come from different goroutines
	conn    *pgx.Conn
	job     string
	streams []string
}

// AcquireLease takes the lease of job on streams in the PostgreSQL at dsn,
// or fails at once, saying who holds it, when another session does.
func AcquireLease(ctx context.Context, dsn, job string, streams []string) (*Lease, error) {
	if job == "" {
		return nil, errors.New("kinesisio: a lease needs a job name")
	}
	host, _ := os.Hostname()
	app := fmt.Sprintf("pinpipe kinesis job=%s host=%s pid=%d", job, host, os.Getpid())
	if len(app) > 63 { // PostgreSQL truncates application_name to 63 bytes
		app = app[:63]
	}
	conn, err := connectPG(ctx, dsn, app)
	if err != nil {
		return nil, err
	}
	l := &Lease{conn: conn, job: job}
	for _, stream := range streams {
		var ok bool
		if err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", lockKey("lease", job, stream)).Scan(&ok); err != nil {
			l.Close()
			return nil, fmt.Errorf("kinesisio: taking the lease of job %q on %s: %w", job, stream, err)
		}
		if !ok {
			holder := l.holder(ctx, lockKey("lease", job, stream))
			l.Close()
			return nil, fmt.Errorf("kinesisio: job %q is already reading stream %s: its lease is held by %s; "+
				"stop that job or give this one another --job-name", job, stream, holder)
		}
		l.streams = append(l.streams, stream)
	}
	return l, nil
}

// holder describes the session that holds the advisory lock key.
func (l *Lease) holder(ctx context.Context, key int64) string {
	var app, client string
	var pid int32
	var since time.Time
	err := l.conn.QueryRow(ctx, `SELECT a.pid, coalesce(a.application_name, ''), coalesce(host(a.client_addr), 'local socket'), a.backend_start
		FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
		WHERE l.locktype = 'advisory' AND l.granted AND l.classid = $1 AND l.objid = $2 AND l.objsubid = 1
		LIMIT 1`, uint32(uint64(key)>>32), uint32(uint64(key))).Scan(&pid, &app, &client, &since)
	if err != nil {
		return fmt.Sprintf("another PostgreSQL session (not visible to this user: %v)", err)
	}
	return fmt.Sprintf("%q (PostgreSQL backend pid %d, client %s, connected since %s)", app, pid, client, since.UTC().Format(time.RFC3339))
}

// Check pings the lease's session: an error means the session, and with
// it the lease, may be lost.
func (l *Lease) Check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, checkpointTimeout)
	defer cancel()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conn == nil {
		return fmt.Errorf("kinesisio: the lease of job %q was given up", l.job)
	}
	if err := l.conn.Ping(ctx); err != nil {
		return fmt.Errorf("kinesisio: the lease of job %q: %w", l.job, err)
	}
	return nil
}

// Close gives the lease up.
func (l *Lease) Close() {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conn == nil {
		return
	}
	defer func() { l.conn = nil }()
	ctx, cancel := context.WithTimeout(context.Background(), checkpointTimeout)
	defer cancel()
	// Unlocked before the session ends: a closed connection's backend
	// lets go of its locks only as it exits, a moment later.
	l.conn.Exec(ctx, "SELECT pg_advisory_unlock_all()")
	l.conn.Close(ctx)
}
