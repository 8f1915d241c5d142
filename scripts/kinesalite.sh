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
  "$ROOT/scripts/npm-pinned.sh" kinesalite "$VERSION" "$DIR"
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
