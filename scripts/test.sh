#!/usr/bin/env bash
# Every test of CP-IS, as CI runs it (.ci/run). Installs what it needs, idempotently.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n=== %s\n' "$*"; }

step "wasm32-wasip2 toolchain"
toolchain=$(scripts/setup-wasm-toolchain.sh | tail -n 1)

step "native tests of the domain crate (cpis-shared)"
cargo test --locked -p cpis-shared

step "release build of the four components for wasm32-wasip2"
scripts/build-components.sh

step "end to end: the test host's own tests, then the suite against the built components"
# The host's tests build a small fixture component with the same toolchain.
CPIS_WASM_TOOLCHAIN="$toolchain" cargo test --locked -p cpis-host-kit -p cpis-e2e

step "FHIR R4 conformance: every kind of FHIR response parsed by independent R4 libraries"
tests/fhir/run.sh
