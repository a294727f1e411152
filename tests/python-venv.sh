#!/usr/bin/env bash
# Makes the Python virtual environment VENV hold the pinned REQUIREMENTS, idempotently: the first
# run creates it and installs them from PyPI; later runs reuse it until the requirements change.
# Used by tests/fhir/venv.sh and tests/openapi/run.sh. Needs python3 with venv and pip.
# Usage: tests/python-venv.sh VENV REQUIREMENTS
set -euo pipefail
venv="$1"
requirements="$2"
stamp="$venv/.requirements.sha256"

if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv" || {
        echo "python-venv.sh: 'python3 -m venv' failed; install Python's venv module (Debian: python3-venv)" >&2
        exit 1
    }
fi
wanted="$(sha256sum "$requirements" | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$wanted" ]; then
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input -r "$requirements"
    echo "$wanted" > "$stamp"
fi
