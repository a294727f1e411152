#!/usr/bin/env bash
# Makes (or refreshes) target/fhir-venv with the pinned tests/fhir/requirements.txt: the FHIR
# validators and fhirpy, which tests/fhir/run.sh and the e2e consumer test
# (tests/e2e/src/fhir.rs) use. Idempotent: reinstalls only when the requirements change. Needs
# python3 (3.11) with venv and pip (tests/python-venv.sh). Prints the venv's python.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
venv="$root/target/fhir-venv"
requirements="$root/tests/fhir/requirements.txt"
"$root/tests/python-venv.sh" "$venv" "$requirements" >&2
echo "$venv/bin/python"
