#!/usr/bin/env bash
# icebird (npm), an Apache Iceberg reader nobody here wrote, which the tests
# run with Node.js to read the tables we write (internal/icebird).
#
#   scripts/icebird.sh install      install it once into .cache/icebird; print that dir
#
# Needs Node.js and npm (Debian: apt-get install nodejs npm). The version is
# pinned so every machine reads with the reader the tests were written
# against. PINPIPE_ICEBIRD_DIR overrides the install dir; tests read the
# same variable.
set -euo pipefail

VERSION=0.3.1
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DIR=${PINPIPE_ICEBIRD_DIR:-$ROOT/.cache/icebird}

case "${1:-}" in
  install)
    "$ROOT/scripts/npm-pinned.sh" icebird "$VERSION" "$DIR"
    echo "$DIR"
    ;;
  *)
    echo "usage: $0 install" >&2
    exit 2
    ;;
esac
