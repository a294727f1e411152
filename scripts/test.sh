#!/usr/bin/env bash
# Every test of CP-IS, as CI runs it (.ci/run). Installs what it needs, idempotently.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n=== %s\n' "$*"; }

step "native tests of the domain crate (cpis-shared)"
cargo test --locked -p cpis-shared

step "release build of the four components for wasm32-wasip2"
scripts/build-components.sh

step "FHIR R4 conformance: every kind of FHIR response parsed by independent R4 libraries"
tests/fhir/run.sh
