#!/usr/bin/env bash
# Makes (or refreshes) target/fhir-venv with the pinned tests/fhir/requirements.txt: the FHIR
# validators and fhirpy, which tests/fhir/run.sh and the e2e consumer test
# (tests/e2e/src/fhir.rs) use. Idempotent: reinstalls only when the requirements change. Needs
# python3 (3.11) with venv and pip. Prints the venv's python.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
venv="$root/target/fhir-venv"
requirements="$root/tests/fhir/requirements.txt"
stamp="$venv/.requirements.sha256"

if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv" >&2 || {
        echo "venv.sh: 'python3 -m venv' failed; install Python's venv module (Debian: python3-venv)" >&2
        exit 1
    }
fi
wanted="$(sha256sum "$requirements" | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$wanted" ]; then
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input -r "$requirements" >&2
    echo "$wanted" > "$stamp"
fi
echo "$venv/bin/python"
