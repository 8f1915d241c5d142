package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam/log"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Retrying is a streaming writer's connection to PostgreSQL that outlasts
// an outage of PostgreSQL: Do runs a unit of work on it, and when the work
// fails because PostgreSQL cannot be reached or went away (a restart, a
// failover, a network cut), it reconnects and runs the work again, waiting
// 250 ms doubling to MaxBackoff between tries and logging one line a try
// (not one a row), until the work succeeds or ctx ends. The bundle waits
// meanwhile, and with it the source positions that depend on its writes,
// so a job outlives the outage instead of failing: on a local runner a
// failed bundle ends the job.
//
// Any other error (a constraint, a bad value) is returned at once. The work
// must be safe to run again: a transaction (rolled back when its
// connection broke) or an idempotent write; a COMMIT whose answer was lost
// is run again, which every streaming write here makes harmless (keyed
// upserts, ON CONFLICT DO NOTHING).
type Retrying struct {
	// DSN is the database's.
	DSN string
	// Init runs on each new connection before the work (creating the
	// tables the work writes).
	Init func(context.Context, *pgx.Conn) error
	// MaxBackoff bounds the wait between tries. Default 10 s.
	MaxBackoff time.Duration

	conn *pgx.Conn
}

// Do runs work on the connection, reconnecting and retrying as above;
// what names the work in the logs.
func (r *Retrying) Do(ctx context.Context, what string, work func(*pgx.Conn) error) error {
	maxWait := r.MaxBackoff
	if maxWait <= 0 {
		maxWait = 10 * time.Second
	}
	wait := 250 * time.Millisecond
	var outage time.Time
	for attempt := 1; ; attempt++ {
		retry, err := r.try(ctx, work)
		if err == nil {
			if !outage.IsZero() {
				log.Infof(ctx, "postgres: %s succeeded after %d tries over %s: PostgreSQL is back", what, attempt, time.Since(outage).Round(time.Millisecond))
			}
			return nil
		}
		if !retry || ctx.Err() != nil {
			return err
		}
		if outage.IsZero() {
			outage = time.Now()
		}
		log.Warnf(ctx, "postgres: %s failed (try %d, PostgreSQL unavailable for %s); retrying in %s: %v",
			what, attempt, time.Since(outage).Round(time.Millisecond), wait, err)
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return fmt.Errorf("%w (stopped while retrying: %v)", err, ctx.Err())
		}
		wait = min(2*wait, maxWait)
	}
}

// try runs work once, connecting first if needed, and says whether a
// failure is worth another try.
func (r *Retrying) try(ctx context.Context, work func(*pgx.Conn) error) (bool, error) {
	if r.conn != nil && r.conn.IsClosed() {
		r.Close()
	}
	if r.conn == nil {
		conn, err := Connect(ctx, r.DSN)
		if err != nil {
			return Unavailable(err), err
		}
		if r.Init != nil {
			if err := r.Init(ctx, conn); err != nil {
				conn.Close(context.WithoutCancel(ctx))
				return Unavailable(err), err
			}
		}
		r.conn = conn
	}
	err := work(r.conn)
	if err == nil {
		return false, nil
	}
	// A connection that broke mid-work may be in any state: start afresh.
	retry := r.conn.IsClosed() || Unavailable(err)
	if retry {
		r.Close()
	}
	return retry, err
}

// Close closes the connection, if open.
func (r *Retrying) Close() {
	if r.conn != nil {
		r.conn.Close(context.Background())
		r.conn = nil
	}
}

// Unavailable reports whether err says PostgreSQL could not be reached or
// is (for now) not serving: a failed connection or dial, a connection cut
// mid-statement, or a server shutting down or starting up. Such work may
// succeed when tried again on a new connection.
func Unavailable(err error) bool {
	if err == nil {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code[:2] {
		case "08": // connection exception
			return true
		case "57": // operator intervention: shutdown, crash, cannot connect now
			return pgErr.Code != "57014" // but not a cancelled query
		}
		return pgErr.Code == "53300" // too many connections
	}
	var connectErr *pgconn.ConnectError
	var netErr net.Error
	return errors.As(err, &connectErr) || errors.As(err, &netErr) || errors.Is(err, io.EOF) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) || pgconn.SafeToRetry(err)
}
