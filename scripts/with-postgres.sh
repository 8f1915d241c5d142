#!/usr/bin/env bash
# Runs a command with a throwaway PostgreSQL server, for tests:
#   scripts/with-postgres.sh go test ./...
# exports PINPIPE_TEST_PG_DSN for the command and stops the server after it.
# With PINPIPE_TEST_PG_DSN already set, it uses that server and starts none.
# Installs PostgreSQL from Debian's packages when it is missing and we are root.
set -euo pipefail

if [ -n "${PINPIPE_TEST_PG_DSN:-}" ]; then
  exec "$@"
fi

find_bin() {
  local d
  for d in /usr/lib/postgresql/*/bin; do
    [ -x "$d/initdb" ] && { echo "$d"; return 0; }
  done
  return 1
}

PGBIN=$(find_bin || true)
if [ -z "$PGBIN" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "with-postgres: installing PostgreSQL from Debian's packages" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq postgresql >/dev/null
    PGBIN=$(find_bin)
  else
    echo "with-postgres: PostgreSQL is not installed. Install it (Debian/Ubuntu: sudo apt-get install postgresql)," >&2
    echo "or point the tests at a server: PINPIPE_TEST_PG_DSN=postgres://user:pass@127.0.0.1:5432/db?sslmode=disable" >&2
    exit 1
  fi
fi

DIR=$(mktemp -d /tmp/pinpipe-pg.XXXXXX)
PORT=${PINPIPE_TEST_PG_PORT:-$((20000 + RANDOM % 20000))}
RUN=()
if [ "$(id -u)" = 0 ]; then
  # initdb refuses to run as root.
  chown postgres "$DIR"
  RUN=(runuser -u postgres --)
fi

cleanup() {
  "${RUN[@]}" "$PGBIN/pg_ctl" -D "$DIR/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$DIR"
}
trap cleanup EXIT

"${RUN[@]}" "$PGBIN/initdb" -D "$DIR/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
"${RUN[@]}" "$PGBIN/pg_ctl" -D "$DIR/data" -l "$DIR/log" -w -o "-p $PORT -k $DIR -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" start >/dev/null

export PINPIPE_TEST_PG_DSN="postgres://postgres@127.0.0.1:$PORT/postgres?sslmode=disable"
echo "with-postgres: PostgreSQL on 127.0.0.1:$PORT" >&2
set +e
"$@"
status=$?
exit $status
