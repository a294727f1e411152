#!/usr/bin/env bash
# Debian packages the test suite runs for real: redis-server (the Redis store behind Spin),
# sqlite3 (to read Spin's SQLite store in tests) and wrk (the benchmark's load generator).
# Idempotent: installs only what is missing.
set -euo pipefail

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
need=()
for pkg in redis-server sqlite3 wrk; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "install-test-deps: installing ${need[*]}" >&2
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
# The package starts a system-wide server on port 6379; the tests start their own.
