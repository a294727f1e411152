"""Attacks the live CP-IS JSON API with Schemathesis, one run per role, and checks the app
survived. Started by tests/openapi/run.sh, which starts the app and stops it afterwards.

Usage: fuzz.py BASE_URL ADMIN_TOKEN SPIN_STATE_DIR SPIN_LOG
Exits non-zero on any finding: a Schemathesis failure, the served description differing from
shared/openapi.json, a request that took the app down, or a component that trapped or panicked.
"""

import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DESCRIPTION = ROOT / "shared" / "openapi.json"
VENV_BIN = Path(sys.executable).parent
REPORTS = ROOT / "target" / "openapi-reports"
# Cases per operation in the fuzzing phase, and per run in the stateful phase. With the examples
# and the coverage phase this comes to a few thousand cases in all, in a few minutes on two cores.
MAX_EXAMPLES = int(os.environ.get("CPIS_OPENAPI_MAX_EXAMPLES", "60"))
SEED = os.environ.get("CPIS_OPENAPI_SEED", "20261125")

LA_ODS, LA_NAME = "LA1", "Leeds City Council"
SETTING_ODS, SETTING_NAME = "RR8", "Leeds General Infirmary ED"
CHILD = "9434765919"
LA = {"ods_code": LA_ODS, "name": LA_NAME, "office_hours_phone": "0113 222 4401",
      "emergency_duty_team_phone": "0113 535 0600"}


def call(base, method, path, token=None, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, method=method)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def expect(base, status, method, path, token=None, body=None):
    got, raw = call(base, method, path, token, body)
    if got != status:
        sys.exit(f"fuzz.py: setting up, {method} {path} answered {got}, not {status}: {raw[:300]!r}")
    return json.loads(raw) if raw else None


def wait_until_up(base, seconds=60):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            status, _ = call(base, "GET", "/api/v1/flag/" + CHILD)
            if status == 401:
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.25)
    sys.exit(f"fuzz.py: the app did not answer on {base} within {seconds} s")


def seed(base, admin):
    """Credentials for each role, and data for them to find: a child with a plan, a visit (so an
    alert), a case without NHS number, and a system registered with the care setting's credential
    (so that an access without `user` is recorded, not refused)."""
    issue = lambda ods, name, kind: expect(base, 201, "POST", "/api/v1/admin/credentials", admin,
                                           {"ods_code": ods, "name": name, "kind": kind})
    la = issue(LA_ODS, LA_NAME, "local_authority")["token"]
    issued = issue(SETTING_ODS, SETTING_NAME, "care_setting")
    setting = issued["token"]
    expect(base, 200, "PUT", f"/api/v1/admin/credentials/{issued['credential_id']}/system", admin, {
        "system": "Symphony ED (RR8)", "responsible_person": {
            "id": "555021935107", "name": "Dr Jo Bloggs", "role": "ED Clinical Lead"}})
    expect(base, 201, "POST", "/api/v1/plans", la, {
        "nhs_number": CHILD, "case_ref": "LEEDS-2026-0042", "plan_type": "342191000000101",
        "start_date": "2026-01-10", "local_authority": LA})
    expect(base, 200, "POST", "/api/v1/plans", la, {
        "case_ref": "LEEDS-2026-0043", "plan_type": "764841000000100",
        "start_date": "2026-02-01", "stage": "looked_after", "local_authority": LA})
    expect(base, 200, "POST", "/api/v1/access", setting, {
        "nhs_number": CHILD, "user": {"id": "555021935107", "name": "Dr Asha Patel",
                                      "role": "Emergency Department Doctor"}})
    return {"public": None, "care-setting": setting, "local-authority": la, "administrator": admin}


# Roles whose operations the description links (issueCredential → revokeCredential and
# registerSystem → getSystem and unregisterSystem; submitPlan → withdrawPlan) also get stateful
# tests along those links.
STATEFUL = {"administrator", "local-authority"}


def schemathesis(base, tag, token):
    """Runs Schemathesis on the operations of one role; returns (exit code, cases generated)."""
    REPORTS.mkdir(parents=True, exist_ok=True)
    report = REPORTS / f"{tag}.ndjson"
    command = [
        # The description as the app serves it (checked against shared/openapi.json below).
        str(VENV_BIN / "schemathesis"), "--config-file", str(Path(__file__).parent / "schemathesis.toml"),
        "run", base + "/api/v1/openapi.json", "--url", base,
        "--include-tag", tag, "--checks", "all", "--mode", "all",
        "--phases", "examples,coverage,fuzzing" + (",stateful" if tag in STATEFUL else ""),
        "--max-examples", str(MAX_EXAMPLES), "--seed", SEED,
        # One worker: with two, Hypothesis' lambda descriptions call ast.parse from two threads,
        # which CPython 3.11 does not survive reliably ("AST constructor recursion depth mismatch").
        "--workers", "1",
        "--request-timeout", "10", "--suppress-health-check", "all",
        "--report", "ndjson", "--report-ndjson-path", str(report),
    ]
    if token:
        command += ["--header", f"Authorization: Bearer {token}"]
    env = dict(os.environ, SCHEMATHESIS_HOOKS="hooks", CPIS_OPENAPI_LA_ODS=LA_ODS,
               PYTHONPATH=str(Path(__file__).parent))
    print(f"\n--- schemathesis: operations tagged {tag!r}", flush=True)
    # Schemathesis keeps a cache in its working directory: under target/, not in the repository.
    code = subprocess.run(command, env=env, cwd=REPORTS).returncode
    return code, count_cases(report)


def count_cases(report):
    """The number of test cases Schemathesis generated and sent, from its ndjson events."""
    cases = set()
    for line in report.read_text().splitlines():
        event = json.loads(line)
        for name, body in event.items():
            if name == "ScenarioFinished":
                for case_id in (body.get("recorder") or {}).get("cases", {}):
                    cases.add(case_id)
    return len(cases)


def main():
    base, admin = sys.argv[1], sys.argv[2]
    spin_logs = [Path(sys.argv[4]), *sorted(Path(sys.argv[3]).glob("logs/*"))]
    started = time.monotonic()
    wait_until_up(base)
    status, served = call(base, "GET", "/api/v1/openapi.json")
    if status != 200 or served != DESCRIPTION.read_bytes():
        sys.exit(f"fuzz.py: GET /api/v1/openapi.json without a credential answered {status}, "
                 "not shared/openapi.json byte for byte")
    tokens = seed(base, admin)
    problems, total = [], 0
    # The administrator last: its runs revoke organisations, the others' among them.
    for tag in ["public", "care-setting", "local-authority", "administrator"]:
        code, cases = schemathesis(base, tag, tokens[tag])
        total += cases
        print(f"--- {tag}: {cases} cases generated, exit code {code}", flush=True)
        if code != 0:
            problems.append(f"schemathesis found problems in the {tag} operations (exit code {code})")
        status, _ = call(base, "GET", "/api/v1/flag/" + CHILD)
        if status != 401:
            problems.append(f"after the {tag} run the app no longer answers as it should ({status})")
    crashes = [f"{log.name}: {line}" for log in spin_logs if log.is_file()
               for line in log.read_text(errors="replace").splitlines()
               if re.search(r"panicked|wasm trap|trapped|unreachable|error while executing", line, re.I)]
    if crashes:
        problems.append("a component trapped or panicked:\n  " + "\n  ".join(crashes[:20]))
    print(f"\nschemathesis: {total} cases generated in all, {time.monotonic() - started:.0f} s")
    for problem in problems:
        print(f"FAILED: {problem}", file=sys.stderr)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
