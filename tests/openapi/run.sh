#!/usr/bin/env bash
# The OpenAPI check of the JSON API: shared/openapi.json validated by an independent validator,
# then Schemathesis run against the live app on real Spin with a credential for each role
# (tests/openapi/fuzz.py). Run from anywhere in the repository, after scripts/build-components.sh.
# Needs python3 (3.11) with venv and pip, and the Spin CLI: $CPIS_SPIN, else `spin` on PATH. The
# first run installs tests/openapi/requirements.txt from PyPI into target/openapi-venv; later runs
# reuse it until the requirements change. With --validate-only: the validator only (no Spin, no
# built components needed).
# Usage: tests/openapi/run.sh [--validate-only]
set -euo pipefail
validate_only=""
case "${1:-}" in
    --validate-only) validate_only=1 ;;
    "") ;;
    *) echo "usage: tests/openapi/run.sh [--validate-only]" >&2; exit 2 ;;
esac

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
venv="$root/target/openapi-venv"
requirements="$root/tests/openapi/requirements.txt"

"$root/tests/python-venv.sh" "$venv" "$requirements"

echo "--- openapi-spec-validator: shared/openapi.json"
"$venv/bin/openapi-spec-validator" shared/openapi.json
[ -z "$validate_only" ] || exit 0

spin="${CPIS_SPIN:-$(command -v spin || true)}"
if [ -z "$spin" ] || [ ! -x "$spin" ]; then
    echo "run.sh: no Spin CLI: set CPIS_SPIN to the spin binary, or put spin on PATH" >&2
    exit 1
fi
for component in submit query access_notify alert; do
    if [ ! -f "target/wasm32-wasip2/release/cpis_$component.wasm" ]; then
        echo "run.sh: target/wasm32-wasip2/release/cpis_$component.wasm is missing; run scripts/build-components.sh first" >&2
        exit 1
    fi
done

state="$(mktemp -d)"
spin_pid=""
stop() {
    if [ -n "$spin_pid" ]; then
        kill "$spin_pid" 2>/dev/null || true
        wait "$spin_pid" 2>/dev/null || true
    fi
    rm -rf "$state"
}
trap stop EXIT
port="$("$venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
admin="admin-$("$venv/bin/python" -c 'import secrets; print(secrets.token_hex(16))')"
echo "--- spin up on 127.0.0.1:$port ($spin)"
SPIN_VARIABLE_ADMIN_TOKEN="$admin" "$spin" up --listen "127.0.0.1:$port" --state-dir "$state/spin" \
    > "$state/spin.log" 2>&1 &
spin_pid=$!

status=0
"$venv/bin/python" "$root/tests/openapi/fuzz.py" "http://127.0.0.1:$port" "$admin" "$state/spin" "$state/spin.log" \
    || status=$?
if [ "$status" -ne 0 ]; then
    echo "--- spin's log (last 50 lines)" >&2
    tail -n 50 "$state/spin.log" >&2
fi
exit "$status"
