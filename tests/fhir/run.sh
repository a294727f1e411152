#!/usr/bin/env bash
# The FHIR R4 conformance check: the Rust tests write one body of every kind of response the FHIR
# API gives (CPIS_FHIR_SAMPLES_DIR), then pytest parses each with independent FHIR R4
# implementations (tests/fhir/validate.py). Run from anywhere in the repository. Needs python3
# (3.11) with venv and pip; the first run installs tests/fhir/requirements.txt from PyPI into
# target/fhir-venv, later runs reuse it until the requirements change.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
venv="$root/target/fhir-venv"
requirements="$root/tests/fhir/requirements.txt"
samples="$root/target/fhir-samples"

"$root/tests/python-venv.sh" "$venv" "$requirements"

rm -rf "$samples"
mkdir -p "$samples"
CPIS_FHIR_SAMPLES_DIR="$samples" cargo test -p cpis-shared fhir
CPIS_FHIR_SAMPLES_DIR="$samples" "$venv/bin/python" -m pytest "$root/tests/fhir" -q
