#!/usr/bin/env bash
# Every test of CP-IS, as CI runs it (.ci/run). Installs what it needs, idempotently.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n=== %s\n' "$*"; }

step "wasm32-wasip2 toolchain, and the real programs the tests run (redis-server, sqlite3, wrk)"
scripts/install-test-deps.sh
toolchain=$(scripts/setup-wasm-toolchain.sh | tail -n 1)

step "native tests of the domain crate (cpis-shared)"
cargo test --locked -p cpis-shared

step "release build of the four components for wasm32-wasip2"
scripts/build-components.sh

# The Spin targets run with the Spin CLI from CPIS_SPIN, else `spin` on PATH.
if [ -n "${CPIS_SPIN:-}" ]; then
  spin_cli="$CPIS_SPIN"
else
  spin_cli="$(command -v spin || true)"
fi
if [ -n "$spin_cli" ]; then
  "$spin_cli" --version >/dev/null || { echo "test.sh: the Spin CLI $spin_cli does not run" >&2; exit 1; }
  export CPIS_SPIN="$spin_cli"
  targets="test host (fresh instances, instance reuse), Spin + SQLite, Spin + Redis ($("$spin_cli" --version))"
else
  targets="test host (fresh instances, instance reuse)"
  echo "test.sh: Spin targets SKIPPED: neither CPIS_SPIN nor 'spin' on PATH; the e2e suite runs on the test host only"
fi

step "the Python venv of the FHIR checks (validators, fhirpy), which the e2e suite's national consumer needs"
tests/fhir/venv.sh >/dev/null

step "end to end on: $targets"
# The host's tests build a small fixture component with the same toolchain; the CLI's end-to-end
# tests run the built `cpis` against the app.
CPIS_WASM_TOOLCHAIN="$toolchain" cargo test --locked -p cpis-host-kit -p cpis-spin-launcher -p cpis-e2e -p cpis-cli

if [ -n "$spin_cli" ]; then
  step "OpenAPI: the JSON API's description validated, then Schemathesis against the app on Spin"
  tests/openapi/run.sh
else
  step "OpenAPI: the JSON API's description validated"
  tests/openapi/run.sh --validate-only
  echo "test.sh: OpenAPI Schemathesis run SKIPPED: it needs the app on real Spin, and neither CPIS_SPIN nor 'spin' is on PATH"
fi

if [ -n "$spin_cli" ]; then
  step "benchmark, short run on Spin + SQLite (rollback journal and WAL) and Spin + Redis (keeps it working; speed is never pass/fail)"
  CPIS_WASM_TOOLCHAIN="$toolchain" cargo run --locked -q -p cpis-bench -- --quick
fi

step "FHIR R4 conformance: every kind of FHIR response parsed by independent R4 libraries"
tests/fhir/run.sh
