#!/usr/bin/env bash
# Installs what the tests need beyond Go, when it is missing: PostgreSQL
# (started per run by with-postgres.sh), Node.js + npm, kinesalite (a
# local Kinesis) and icebird (an Iceberg reader), and Chromium (the
# report's rendering test). As root with apt it installs Debian's
# packages; otherwise it says what to install.
# Prints nothing but progress on stderr.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
command -v chromium >/dev/null || missing+=(chromium)
if command -v dpkg >/dev/null; then dpkg -s fonts-liberation >/dev/null 2>&1 || missing+=(fonts-liberation); fi

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "test-deps: installing ${missing[*]} from Debian's packages" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "test-deps: missing ${missing[*]}; install them (Debian/Ubuntu: sudo apt-get install ${missing[*]})." >&2
    echo "test-deps: tests that need them are skipped (and fail under CI=true)." >&2
  fi
fi

if command -v npm >/dev/null; then
  scripts/kinesalite.sh install >/dev/null
  scripts/icebird.sh install >/dev/null
fi
