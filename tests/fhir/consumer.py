"""A consumer of the national CP-IS FHIR R4 API, written from NHS England's implementation guide
and driving a live CP-IS through fhirpy, a FHIR client library no one here wrote. Every body it
receives is also parsed by the two independent R4 implementations of validate.py.

    python consumer.py --base http://127.0.0.1:3000/fhir/r4 --child 9990000018 \
        --unknown-child 9876543210 --system-token T1 --system "Symphony ED" \
        --responsible-person "Dr Jo Bloggs" --responsible-role "ED Clinical Lead" \
        --bare-token T2 --la-token T3 --plans 1

`--system-token` is a care setting's credential with a registered system and responsible
person, `--bare-token` one without. The child must hold `--plans` visible plans and no access
history yet (the script counts what it adds); `--unknown-child` must be held by no one.
Run by the e2e suite (tests/e2e/src/fhir.rs) with target/fhir-venv's python. Exits 1 when any
expectation fails, listing each.
"""

import argparse
import json
import re
import sys
import uuid
from pathlib import Path

from fhirpy import SyncFHIRClient
from fhirpy.base.exceptions import AuthorizationError, ForbiddenError, OperationOutcome

sys.path.insert(0, str(Path(__file__).resolve().parent))
from validate import parse_with_fhir_resources, parse_with_fhirclient  # noqa: E402

NHS_NUMBER = "https://fhir.nhs.uk/Id/nhs-number"
ROLE_CLASS = "http://terminology.hl7.org/CodeSystem/v3-RoleClass"
SPINE_ERRORS = "https://fhir.nhs.uk/CodeSystem/England-SpineErrorOrWarningCode"
PLAN_TYPES = {"342191000000101", "764841000000100", "818901000000100"}
USER = {
    "NHSD-End-User-Id": "555021935107",
    "NHSD-End-User-Name": "Dr Asha Patel",
    "NHSD-End-User-Role": "Emergency Department Doctor",
}

failures = []
checks = 0


def expect(condition, what):
    global checks
    checks += 1
    if not condition:
        failures.append(what)
        print(f"FAILED: {what}", file=sys.stderr)


def validated(body):
    """Parses a body with both independent R4 implementations; returns it as plain JSON."""
    body = json.loads(json.dumps(body))
    for name, parse in [("fhir.resources", parse_with_fhir_resources), ("fhirclient", parse_with_fhirclient)]:
        try:
            parse(body)
            expect(True, "")
        except Exception as error:  # noqa: BLE001 - any failure to parse is the finding
            expect(False, f"{name} rejects a {body.get('resourceType')}: {error}")
    return body


def client(args, token, headers=None, trace=True):
    extra = {"IsUnscheduledAccessEvent": "true"}
    if trace:
        extra["TraceID"] = str(uuid.uuid4())
    extra.update(headers or {})
    return SyncFHIRClient(args.base, authorization=token and f"Bearer {token}", extra_headers=extra)


def patient(nhs):
    return {"patient:identifier": f"{NHS_NUMBER}|{nhs}"}


def the_include(search):
    """The consumer guide's search-with-includes, through the library's own `include`."""
    return search.include("AuditEvent", f"entity-type={ROLE_CLASS}|ASSIGNED")


def matches(bundle):
    return [e["resource"] for e in bundle.get("entry", []) if e["search"]["mode"] == "match"]


def resolve(reference, full_url):
    if reference.startswith(("urn:", "http://", "https://")):
        return reference
    return f"{re.sub(r'/[A-Za-z]+/[^/]+$', '', full_url)}/{reference}"


def viewers(bundle):
    """(AuditEvent, PractitionerRole of its ASSIGNED agent, the other agents) for each match, the
    PractitionerRole found among the included entries as the guide's consumer finds it."""
    included = {e["fullUrl"]: e["resource"] for e in bundle.get("entry", []) if e["search"]["mode"] == "include"}
    out = []
    for entry in bundle.get("entry", []):
        if entry["search"]["mode"] != "match":
            continue
        event = entry["resource"]
        by_type = {a["type"]["coding"][0]["code"]: a for a in event["agent"]}
        assigned = by_type.get("ASSIGNED")
        expect(assigned is not None, "an AuditEvent has an ASSIGNED agent")
        role = included.get(resolve(assigned["who"]["reference"], entry["fullUrl"])) if assigned else None
        expect(role is not None and role["resourceType"] == "PractitionerRole",
               "the ASSIGNED agent refers to an included PractitionerRole")
        pat = by_type.get("PAT", {})
        expect(pat.get("who", {}).get("identifier", {}).get("system") == NHS_NUMBER, "the PAT agent is the child")
        out.append((event, role or {}, by_type))
    return out


def search(args, token, resource, nhs, headers=None, include=False):
    s = client(args, token, headers).resources(resource).search(**patient(nhs))
    if include:
        s = the_include(s)
    return validated(s.fetch_raw())


def refused(args, what, call, status_exception, code, location=None):
    """Runs `call`, which must fail with `status_exception` carrying an OperationOutcome with the
    national `code` (and the `location`)."""
    try:
        call()
    except status_exception as error:
        body = error.resource if isinstance(error, OperationOutcome) else json.loads(error.args[0])
        body = validated(body)
        issue = body["issue"][0]
        coding = issue.get("details", {}).get("coding", [{}])[0]
        expect(coding.get("system") == SPINE_ERRORS, f"{what}: the national code system, not {coding.get('system')}")
        expect(coding.get("code") == code, f"{what}: {code}, not {coding.get('code')}")
        if location:
            expect(issue.get("location") == [location], f"{what}: location {location}, not {issue.get('location')}")
        return
    except Exception as error:  # noqa: BLE001
        expect(False, f"{what}: expected {status_exception.__name__}, got {type(error).__name__}: {error}")
        return
    expect(False, f"{what}: accepted, expected a refusal with {code}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name in ["base", "child", "unknown-child", "system-token", "system", "responsible-person",
                 "responsible-role", "bare-token", "la-token"]:
        parser.add_argument(f"--{name}", required=True)
    parser.add_argument("--plans", type=int, required=True)
    args = parser.parse_args()
    system_token, bare_token = args.system_token, args.bare_token

    # The capabilities: what the server says it supports.
    capabilities = validated(client(args, None).execute("metadata", method="get"))
    resources = {r["type"]: r for r in capabilities["rest"][0]["resource"]}
    expect(set(resources) == {"CareTeam", "AuditEvent"}, f"CareTeam and AuditEvent only: {set(resources)}")
    expect(resources["AuditEvent"].get("searchInclude") == [f"AuditEvent:entity-type={ROLE_CLASS}|ASSIGNED"],
           "the AuditEvent search declares the national _include")

    # The national header set: Authorization, TraceID, IsUnscheduledAccessEvent only.
    before = search(args, system_token, "AuditEvent", args.child)
    expect(before["total"] == 0, f"the child starts with no history: {before['total']}")
    teams = search(args, system_token, "CareTeam", args.child)
    expect(teams["total"] == args.plans, f"{args.plans} CareTeam(s): {teams['total']}")
    for entry in teams.get("entry", []):
        team = entry["resource"]
        expect(entry["fullUrl"] == f"{args.base}/CareTeam/{team['id']}", f"absolute fullUrl: {entry['fullUrl']}")
        expect(team["category"][0]["coding"][0]["code"] in PLAN_TYPES, "category is a plan type")
        expect(bool(team.get("name")), "name is the responsible LA")
        expect(team["subject"]["identifier"] == {"system": NHS_NUMBER, "value": args.child}, "subject is the child")
        expect(sorted(t["use"] for t in team["telecom"]) == ["mobile", "work"], "telecom work and mobile")
        expect("start" in team["period"], "period.start")
    expect(teams["link"][0]["url"].startswith(f"{args.base}/CareTeam?"), f"self link: {teams['link'][0]['url']}")

    # Both AuditEvent search forms: the access above is there, the system's, its person the viewer.
    for include in (True, False):
        history = search(args, system_token, "AuditEvent", args.child, include=include)
        form = "with _include" if include else "without _include"
        expect(history["total"] == 1, f"{form}: one access: {history['total']}")
        expect(len(history.get("entry", [])) == 2, f"{form}: the AuditEvent and its PractitionerRole")
        for event, role, agents in viewers(history):
            expect(role.get("practitioner", {}).get("display") == args.responsible_person,
                   f"{form}: the viewer is the responsible person: {role.get('practitioner')}")
            expect(role["code"][0]["coding"][0]["display"] == args.responsible_role, f"{form}: the role")
            expect(bool(role.get("organization", {}).get("display")), f"{form}: the organisation")
            expect(agents.get("110150", {}).get("who", {}).get("display") == args.system,
                   f"{form}: the access is shown as the system's: {list(agents)}")
            expect(bool(event.get("recorded")), f"{form}: recorded")

    # The user header set: the user is the viewer; a scheduled access is not in the history.
    search(args, system_token, "CareTeam", args.child, headers=USER)
    search(args, bare_token, "CareTeam", args.child, headers={**USER, "IsUnscheduledAccessEvent": "false"})
    history = search(args, bare_token, "AuditEvent", args.child, headers=USER, include=True)
    expect(history["total"] == 2, f"two unscheduled accesses: {history['total']}")
    newest = viewers(history)[0]
    expect(newest[1].get("practitioner", {}).get("display") == USER["NHSD-End-User-Name"], "the named user")
    expect("110150" not in newest[2], "a named user's access has no system agent")

    # A child CP-IS does not hold: empty Bundles, nothing disclosed.
    for resource in ("CareTeam", "AuditEvent"):
        empty = search(args, system_token, resource, args.unknown_child)
        expect(empty["total"] == 0 and "entry" not in empty, f"{resource} of an unknown child is empty")

    # Every error case of the guide.
    def run(token, resource="CareTeam", params=None, headers=None, include=False):
        def go():
            s = client(args, token, headers).resources(resource).search(**(params or patient(args.child)))
            if include:
                s = the_include(s)
            s.fetch_raw()
        return go

    refused(args, "an invalid NHS number", run(system_token, params=patient("9434765918")),
            OperationOutcome, "INVALID_SEARCH_DATA", "http.patient:identifier")
    refused(args, "no patient:identifier", run(system_token, params={"_count": "1"}),
            OperationOutcome, "INVALID_SEARCH_DATA")
    refused(args, "an unknown parameter", run(system_token, params={**patient(args.child), "_count": "5"}),
            OperationOutcome, "INVALID_SEARCH_DATA", "http._count")
    refused(args, "another _include", lambda: client(args, system_token).resources("AuditEvent")
            .search(**patient(args.child)).include("AuditEvent", "agent").fetch_raw(),
            OperationOutcome, "INVALID_SEARCH_DATA", "http._include")
    refused(args, "_include on CareTeam", run(system_token, include=True),
            OperationOutcome, "INVALID_SEARCH_DATA", "http._include")
    refused(args, "no user headers and no registered system", run(bare_token),
            OperationOutcome, "PRECONDITION_FAILED", "http.NHSD-End-User-Id")
    refused(args, "some user headers only", run(system_token, headers={"NHSD-End-User-Name": "Dr A"}),
            OperationOutcome, "PRECONDITION_FAILED", "http.NHSD-End-User-Id")
    refused(args, "IsUnscheduledAccessEvent not a boolean", run(system_token, headers={"IsUnscheduledAccessEvent": "maybe"}),
            OperationOutcome, "PRECONDITION_FAILED", "http.IsUnscheduledAccessEvent")
    refused(args, "TraceID not a UUID", run(system_token, headers={"TraceID": "trace-1"}),
            OperationOutcome, "PRECONDITION_FAILED", "http.TraceID")
    refused(args, "no credential", run(None), AuthorizationError, "ACCESS_DENIED")
    refused(args, "an LA's credential", run(args.la_token, "AuditEvent"), ForbiddenError, "ACCESS_DENIED")

    # The refusals recorded nothing.
    after = search(args, bare_token, "AuditEvent", args.child, headers=USER)
    expect(after["total"] == 2, f"refused searches record nothing: {after['total']}")

    print(f"consumer: {checks - len(failures)} checks passed, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
