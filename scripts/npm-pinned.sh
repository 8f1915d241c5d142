#!/usr/bin/env bash
# Installs one npm package at a pinned version into DIR/node_modules (no
# global install), unless that version is already there. A lock dir keeps
# concurrent callers (parallel test packages) from installing over each
# other. Progress goes to stderr.
#
#   scripts/npm-pinned.sh PACKAGE VERSION DIR
set -euo pipefail

[ $# -eq 3 ] || { echo "usage: $0 PACKAGE VERSION DIR" >&2; exit 2; }
PKG=$1 VERSION=$2 DIR=$3

has_version() {
  [ -f "$DIR/node_modules/$PKG/package.json" ] &&
    grep -q "\"version\": \"$VERSION\"" "$DIR/node_modules/$PKG/package.json"
}

has_version && exit 0
command -v npm >/dev/null || { echo "npm-pinned.sh: npm is missing (Debian: apt-get install nodejs npm)" >&2; exit 1; }
mkdir -p "$DIR"
lock="$DIR.lock"
for _ in $(seq 1 600); do
  mkdir "$lock" 2>/dev/null && break
  sleep 0.2
done
trap 'rmdir "$lock" 2>/dev/null || true' EXIT
if ! has_version; then
  echo "npm-pinned.sh: installing $PKG@$VERSION into $DIR" >&2
  npm install --prefix "$DIR" --no-audit --no-fund --loglevel=error "$PKG@$VERSION" >&2
fi
