#!/usr/bin/env bash
# The FHIR R4 conformance check: the Rust tests write one body of every kind of response the FHIR
# API gives (CPIS_FHIR_SAMPLES_DIR), then pytest parses each with independent FHIR R4
# implementations (tests/fhir/validate.py). Run from anywhere in the repository. The Python
# packages come from tests/fhir/venv.sh (target/fhir-venv, made on first use).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
python="$(tests/fhir/venv.sh)"
samples="$root/target/fhir-samples"

rm -rf "$samples"
mkdir -p "$samples"
CPIS_FHIR_SAMPLES_DIR="$samples" cargo test -p cpis-shared fhir
CPIS_FHIR_SAMPLES_DIR="$samples" "$python" -m pytest "$root/tests/fhir" -q
