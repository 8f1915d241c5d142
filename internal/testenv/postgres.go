package testenv

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

// PostgresTimeZone is the session time zone of the DSNs PostgresDB
// returns: far from UTC, so that a timestamp shifted by the session's zone
// shows.
const PostgresTimeZone = "Pacific/Kiritimati"

// PostgresAdminDSN is the test server that scripts/with-postgres.sh starts,
// from PINPIPE_TEST_PG_DSN. Without it the test is skipped, except on CI
// (CI=true), where it fails.
func PostgresAdminDSN(t testing.TB) string {
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

// PostgresDB creates an empty database of the test's own on the test
// server, dropped when the test ends, and returns its DSN, with the session
// time zone PostgresTimeZone. With icu, the database's default collation is
// ICU's en-US, which does not sort by code point, when the server has ICU
// (else it logs that it has the server's default).
func PostgresDB(t testing.TB, icu bool) string {
	t.Helper()
	admin := PostgresAdminDSN(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("connecting to the test server: %v", err)
	}
	defer conn.Close(ctx)
	var b [6]byte
	rand.Read(b[:])
	name := "pinpipe_test_" + hex.EncodeToString(b[:])
	create := "CREATE DATABASE " + pgx.Identifier{name}.Sanitize()
	if icu {
		if _, err := conn.Exec(ctx, create+" TEMPLATE template0 ENCODING 'UTF8' LOCALE 'C.UTF-8' LOCALE_PROVIDER icu ICU_LOCALE 'en-US'"); err != nil {
			t.Logf("no ICU collation (%v): the database sorts as the server's default", err)
			icu = false
		}
	}
	if !icu {
		if _, err := conn.Exec(ctx, create); err != nil {
			t.Fatalf("creating database %s: %v", name, err)
		}
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
		q.Set("timezone", PostgresTimeZone)
		u.RawQuery = q.Encode()
		return u.String()
	}
	return admin + " dbname=" + name + " timezone=" + PostgresTimeZone
}

// PostgresConnect opens a connection for the test, closed when it ends.
func PostgresConnect(t testing.TB, dsn string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}
