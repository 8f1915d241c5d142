// Package sourcedbtest gives tests a PostgreSQL database of their own on the
// test server that scripts/with-postgres.sh starts (PINPIPE_TEST_PG_DSN), so
// that the source database's tests and the emulator's run against a real
// server without stepping on each other.
package sourcedbtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// SessionTimeZone is the session time zone of the DSNs NewDatabase returns:
// far from UTC, so that a timestamp shifted by the session's zone shows.
const SessionTimeZone = "Pacific/Kiritimati"

// AdminDSN is the test server, from PINPIPE_TEST_PG_DSN. Without it the
// test is skipped, except on CI (CI=true), where it fails.
func AdminDSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv("PINPIPE_TEST_PG_DSN")
	if dsn == "" {
		msg := "PINPIPE_TEST_PG_DSN is not set: run the test with scripts/with-postgres.sh, or point it at a server " +
			"(PINPIPE_TEST_PG_DSN=postgres://user@127.0.0.1:5432/db?sslmode=disable)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return dsn
}

// NewDatabase creates an empty database for the test, dropped when it
// ends, and returns its DSN.
func NewDatabase(t testing.TB) string {
	t.Helper()
	admin := AdminDSN(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("connecting to the test server: %v", err)
	}
	defer conn.Close(ctx)
	var b [6]byte
	rand.Read(b[:])
	name := "pinpipe_src_" + hex.EncodeToString(b[:])
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("creating database %s: %v", name, err)
	}
	t.Cleanup(func() {
		conn, err := pgx.Connect(ctx, admin)
		if err != nil {
			t.Errorf("dropping database %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Errorf("dropping database %s: %v", name, err)
		}
	})
	if strings.HasPrefix(admin, "postgres://") || strings.HasPrefix(admin, "postgresql://") {
		u, err := url.Parse(admin)
		if err != nil {
			t.Fatal(err)
		}
		u.Path = "/" + name
		q := u.Query()
		q.Set("timezone", SessionTimeZone)
		u.RawQuery = q.Encode()
		return u.String()
	}
	return admin + " dbname=" + name + " timezone=" + SessionTimeZone
}

// Connect opens a connection for the test, closed when it ends.
func Connect(t testing.TB, dsn string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}
