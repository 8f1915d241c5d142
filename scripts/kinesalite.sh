#!/usr/bin/env bash
# kinesalite (a local Kinesis, from npm) for development and tests, bound to
# loopback only (its own CLI binds every interface).
#
#   scripts/kinesalite.sh install      install it once into .cache/kinesalite; print that dir
#   scripts/kinesalite.sh [PORT]       install if needed, then run it on 127.0.0.1:PORT (default 4567)
#
# Needs Node.js and npm (Debian: apt-get install nodejs npm). The version is
# pinned so every machine runs the same emulator the tests were written against.
# PINPIPE_KINESALITE_DIR overrides the install dir; tests read the same variable.
set -euo pipefail

VERSION=3.3.3
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DIR=${PINPIPE_KINESALITE_DIR:-$ROOT/.cache/kinesalite}

install() {
  if [ -f "$DIR/node_modules/kinesalite/package.json" ] &&
     grep -q "\"version\": \"$VERSION\"" "$DIR/node_modules/kinesalite/package.json"; then
    return 0
  fi
  command -v npm >/dev/null || { echo "kinesalite.sh: npm is missing (Debian: apt-get install nodejs npm)" >&2; exit 1; }
  mkdir -p "$DIR"
  # A lock dir keeps concurrent callers (parallel test packages) from
  # installing over each other.
  local lock="$DIR.lock" i
  for i in $(seq 1 600); do
    mkdir "$lock" 2>/dev/null && break
    sleep 0.2
  done
  trap 'rmdir "$lock" 2>/dev/null || true' EXIT
  if ! [ -f "$DIR/node_modules/kinesalite/package.json" ]; then
    echo "kinesalite.sh: installing kinesalite@$VERSION into $DIR" >&2
    npm install --prefix "$DIR" --no-audit --no-fund --loglevel=error "kinesalite@$VERSION" >&2
  fi
  rmdir "$lock" 2>/dev/null || true
  trap - EXIT
}

case "${1:-}" in
  install)
    install
    echo "$DIR"
    ;;
  ""|[0-9]*)
    install
    PORT=${1:-4567}
    echo "kinesalite on 127.0.0.1:$PORT" >&2
    exec node -e "require(process.argv[1])({createStreamMs:50,deleteStreamMs:50,updateStreamMs:50}).listen(+process.argv[2],'127.0.0.1')" \
      "$DIR/node_modules/kinesalite" "$PORT"
    ;;
  *)
    echo "usage: $0 install | [PORT]" >&2
    exit 2
    ;;
esac
