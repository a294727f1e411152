"""Validates every FHIR response body the Rust tests wrote (see `fhir_samples_of_every_response_kind`
in shared/src/api/fhir.rs) against two independent FHIR R4 (4.0.1) implementations:

- fhir.resources 6.4.0: pydantic models generated from the R4 StructureDefinitions (the last
  major version whose default package is R4 4.0.1; 6.5 moved to R4B, 7 and 8 to R5): element
  names, cardinalities, primitive formats, contained and Bundle entry resources;
- fhirclient 4.4.0 (SMART on FHIR): its own R4 4.0.1 models, parsed strictly: unknown elements,
  wrong types, missing required elements and badly formed dates are errors.

Neither checks the required value-set bindings nor a few invariants of the specification, so this
file checks those it matters for (the codes below are the R4 value sets, from the specification).

Run by tests/fhir/run.sh; the samples directory is `$CPIS_FHIR_SAMPLES_DIR` (default
`target/fhir-samples` under the repository root). No sample found is a failure, not a pass.
"""

import copy
import json
import os
import re
from pathlib import Path

import pytest
from fhir.resources import __fhir_version__ as FHIR_RESOURCES_VERSION
from fhir.resources import construct_fhir_element
from fhirclient.models.fhirabstractbase import FHIRValidationError
from fhirclient.models.fhirelementfactory import FHIRElementFactory

ROOT = Path(__file__).resolve().parents[2]
SAMPLES_DIR = Path(os.environ.get("CPIS_FHIR_SAMPLES_DIR", ROOT / "target" / "fhir-samples"))
if not SAMPLES_DIR.is_absolute():
    SAMPLES_DIR = ROOT / SAMPLES_DIR
SAMPLES = sorted(SAMPLES_DIR.glob("*.json")) if SAMPLES_DIR.is_dir() else []

# Every kind of response the API gives; each must be among the samples.
EXPECTED_KINDS = {
    "Bundle-CareTeam",
    "Bundle-AuditEvent",
    "CapabilityStatement",
    "OperationOutcome",
}

NHS_NUMBER_SYSTEM = "https://fhir.nhs.uk/Id/nhs-number"
ODS_SYSTEM = "https://fhir.nhs.uk/Id/ods-organization-code"
SPINE_ERROR_SYSTEM = "https://fhir.nhs.uk/CodeSystem/England-SpineErrorOrWarningCode"
ROLE_CLASS_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-RoleClass"
PLAN_TYPES = {"342191000000101", "764841000000100", "818901000000100"}

# Required bindings of the elements the API emits, by path (R4 4.0.1 value sets).
CONTACT_POINT = {
    "system": {"phone", "fax", "email", "pager", "url", "sms", "other"},
    "use": {"home", "work", "temp", "old", "mobile"},
}
ISSUE_TYPES = {
    "invalid", "structure", "required", "value", "invariant", "security", "login", "unknown",
    "expired", "forbidden", "suppressed", "processing", "not-supported", "duplicate",
    "multiple-matches", "not-found", "deleted", "too-long", "code-invalid", "extension",
    "too-costly", "business-rule", "conflict", "transient", "lock-error", "no-store",
    "exception", "timeout", "incomplete", "throttled", "informational",
}
REQUIRED_BINDINGS = {
    "Bundle.type": {
        "document", "message", "transaction", "transaction-response", "batch",
        "batch-response", "history", "searchset", "collection",
    },
    "Bundle.entry.search.mode": {"match", "include", "outcome"},
    "CareTeam.status": {"proposed", "active", "suspended", "inactive", "entered-in-error"},
    "CareTeam.telecom.system": CONTACT_POINT["system"],
    "CareTeam.telecom.use": CONTACT_POINT["use"],
    "AuditEvent.action": {"C", "R", "U", "D", "E"},
    "AuditEvent.outcome": {"0", "4", "8", "12"},
    "OperationOutcome.issue.severity": {"fatal", "error", "warning", "information"},
    "OperationOutcome.issue.code": ISSUE_TYPES,
    "CapabilityStatement.status": {"draft", "active", "retired", "unknown"},
    "CapabilityStatement.kind": {"instance", "capability", "requirements"},
    "CapabilityStatement.fhirVersion": {"4.0.0", "4.0.1"},
    "CapabilityStatement.rest.mode": {"client", "server"},
    "CapabilityStatement.rest.resource.type": {"CareTeam", "AuditEvent"},
    "CapabilityStatement.rest.resource.interaction.code": {
        "read", "vread", "update", "patch", "delete", "history-instance", "history-type",
        "create", "search-type",
    },
    "CapabilityStatement.rest.resource.searchParam.type": {
        "number", "date", "string", "token", "reference", "composite", "quantity", "uri",
        "special",
    },
}
# CapabilityStatement.format is bound (required) to the MIME types.
MIME_TYPE = re.compile(r"^[a-z]+/[a-z0-9.+-]+(;.*)?$")


def kind_of(path: Path) -> str:
    """`Bundle-CareTeam-two-plans.json` -> `Bundle-CareTeam`; `OperationOutcome-x.json` ->
    `OperationOutcome`."""
    parts = path.stem.split("-")
    return "-".join(parts[:2]) if parts[0] == "Bundle" else parts[0]


def load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def parse_with_fhir_resources(resource: dict):
    return construct_fhir_element(resource["resourceType"], copy.deepcopy(resource))


def parse_with_fhirclient(resource: dict):
    return FHIRElementFactory.instantiate(resource["resourceType"], copy.deepcopy(resource))


def walk(value, path: str):
    """Yields (path, value) for every primitive, paths as `Type.element.element` (no indices),
    restarting at each nested resource's type."""
    if isinstance(value, dict):
        if "resourceType" in value:
            path = value["resourceType"]
        for name, member in value.items():
            if name != "resourceType":
                yield from walk(member, f"{path}.{name}")
    elif isinstance(value, list):
        for item in value:
            yield from walk(item, path)
    else:
        yield path, value


def containers_in(resource: dict):
    """The resource and every Bundle entry's resource: those that may contain others."""
    yield resource
    for entry in resource.get("entry", []):
        yield from containers_in(entry["resource"])


def local_references(resource: dict) -> set:
    """Every `Reference.reference` in the resource and its contained resources, not looking into
    Bundle entries (each is a container of its own)."""
    without_entries = {k: v for k, v in resource.items() if k != "entry"}
    return {
        value for where, value in walk(without_entries, resource["resourceType"])
        if where.endswith(".reference") and isinstance(value, str)
    }


ids = [p.name for p in SAMPLES]


def test_the_samples_cover_every_kind_of_response():
    assert SAMPLES, (
        f"no FHIR samples in {SAMPLES_DIR}: run tests/fhir/run.sh, which writes them with "
        "CPIS_FHIR_SAMPLES_DIR=... cargo test -p cpis-shared fhir"
    )
    missing = EXPECTED_KINDS - {kind_of(p) for p in SAMPLES}
    assert not missing, f"no sample of {sorted(missing)} in {SAMPLES_DIR}"


def test_the_validating_library_is_r4():
    assert FHIR_RESOURCES_VERSION == "4.0.1"


@pytest.mark.parametrize("path", SAMPLES, ids=ids)
def test_the_resource_type_is_what_the_file_name_says(path):
    resource = load(path)
    kind = kind_of(path)
    resource_type = kind.split("-")[0]
    assert resource["resourceType"] == resource_type
    if resource_type == "Bundle":
        entry_type = kind.split("-")[1]
        assert resource["type"] == "searchset"
        for entry in resource.get("entry", []):
            included = entry["search"]["mode"] == "include"
            expected = "PractitionerRole" if included else entry_type
            assert entry["resource"]["resourceType"] == expected


@pytest.mark.parametrize("path", SAMPLES, ids=ids)
def test_fhir_resources_parses_it_as_valid_r4(path):
    resource = load(path)
    parsed = parse_with_fhir_resources(resource)
    assert parsed.resource_type == resource["resourceType"]


@pytest.mark.parametrize("path", SAMPLES, ids=ids)
def test_fhirclient_parses_it_strictly_as_valid_r4(path):
    resource = load(path)
    parsed = parse_with_fhirclient(resource)
    assert parsed.resource_type == resource["resourceType"]
    # And it writes back what it read: nothing was dropped on the way.
    assert parsed.as_json() == resource


@pytest.mark.parametrize("path", SAMPLES, ids=ids)
def test_codes_are_from_their_required_value_sets(path):
    resource = load(path)
    for where, value in walk(resource, resource["resourceType"]):
        allowed = REQUIRED_BINDINGS.get(where)
        if allowed is not None:
            assert value in allowed, f"{where} = {value!r} is not in its required value set"
        if where == "CapabilityStatement.format":
            assert MIME_TYPE.match(value), f"{where} = {value!r} is not a MIME type"


@pytest.mark.parametrize("path", SAMPLES, ids=ids)
def test_json_follows_the_fhir_json_rules(path):
    """ele-1 and the JSON format: no null, no empty string, array or object anywhere."""

    def check(value, where):
        assert value is not None, f"null at {where}"
        if isinstance(value, (str, list, dict)):
            assert len(value) > 0, f"empty at {where}"
        if isinstance(value, str):
            assert value.strip() == value, f"leading or trailing whitespace at {where}"
        if isinstance(value, dict):
            for name, member in value.items():
                check(member, f"{where}.{name}")
        if isinstance(value, list):
            for i, item in enumerate(value):
                check(item, f"{where}[{i}]")

    check(load(path), path.stem)


@pytest.mark.parametrize("path", SAMPLES, ids=ids)
def test_contained_resources_are_referenced_and_references_resolve(path):
    """dom-2, dom-3 and local references: every contained resource is referred to from its
    container, and every `#id` reference names a contained resource."""
    for resource in containers_in(load(path)):
        contained = resource.get("contained", [])
        contained_ids = [c["id"] for c in contained]
        assert len(set(contained_ids)) == len(contained_ids), "contained ids are unique"
        references = local_references(resource)
        for c in contained:
            assert "contained" not in c, "dom-2: no nested contained resources"
            assert f"#{c['id']}" in references, f"dom-3: contained {c['id']} is never referenced"
        for reference in references:
            if reference.startswith("#"):
                assert reference[1:] in contained_ids, f"{reference} resolves to nothing"


def resolve(reference: str, full_url: str) -> str:
    """A Bundle entry's reference resolved as R4 says (Bundle, "Resolving references in
    Bundles"): a relative `Type/id` against the RESTful base of the referring entry's fullUrl."""
    if reference.startswith(("urn:", "http://", "https://")):
        return reference
    match = re.match(r"^(https?://.+)/[A-Za-z]+/[A-Za-z0-9\-.]{1,64}$", full_url)
    assert match, f"relative reference {reference} from an entry whose fullUrl {full_url} has no base"
    return f"{match.group(1)}/{reference}"


@pytest.mark.parametrize("path", [p for p in SAMPLES if kind_of(p).startswith("Bundle")], ids=lambda p: p.name)
def test_searchset_bundles_are_consistent(path):
    bundle = load(path)
    entries = bundle.get("entry", [])
    matches = [e for e in entries if e["search"]["mode"] == "match"]
    assert bundle["total"] == len(matches), "total counts the matches, not the includes"
    assert [e["search"]["mode"] for e in entries] == ["match"] * len(matches) + ["include"] * (
        len(entries) - len(matches)
    )
    assert [link["relation"] for link in bundle["link"]] == ["self"]
    assert f"patient:identifier={NHS_NUMBER_SYSTEM}|" in bundle["link"][0]["url"]
    full_urls = [e["fullUrl"] for e in entries]
    assert len(set(full_urls)) == len(full_urls), "bdl-7: fullUrl is unique"
    for entry in entries:
        resource_type, id_ = entry["resource"]["resourceType"], entry["resource"]["id"]
        absolute = re.fullmatch(rf"https?://[^/?#]+(/[^?#]*)?/{resource_type}/{id_}", entry["fullUrl"])
        assert absolute or entry["fullUrl"] == f"urn:uuid:{id_}", entry["fullUrl"]


@pytest.mark.parametrize("path", [p for p in SAMPLES if kind_of(p).startswith("Bundle")], ids=lambda p: p.name)
def test_references_between_entries_resolve_to_an_entry(path):
    bundle = load(path)
    by_full_url = {e["fullUrl"]: e["resource"] for e in bundle.get("entry", [])}
    for entry in bundle.get("entry", []):
        for where, value in walk(entry["resource"], entry["resource"]["resourceType"]):
            if where.endswith(".reference"):
                target = resolve(value, entry["fullUrl"])
                assert target in by_full_url, f"{where} {value} resolves to {target}, not an entry"


@pytest.mark.parametrize("path", [p for p in SAMPLES if kind_of(p) == "Bundle-CareTeam"], ids=lambda p: p.name)
def test_care_teams_carry_what_a_clinician_needs(path):
    for entry in load(path).get("entry", []):
        team = entry["resource"]
        assert team["category"][0]["coding"][0]["system"] == "http://snomed.info/sct"
        assert team["category"][0]["coding"][0]["code"] in PLAN_TYPES
        assert team["subject"]["identifier"]["system"] == NHS_NUMBER_SYSTEM
        assert team["managingOrganization"][0]["identifier"]["system"] == ODS_SYSTEM
        assert team["name"]
        assert "start" in team["period"]
        assert sorted(t["use"] for t in team["telecom"]) == ["mobile", "work"]
        assert "identifier" not in team, "no LA case reference"


@pytest.mark.parametrize("path", [p for p in SAMPLES if kind_of(p) == "Bundle-AuditEvent"], ids=lambda p: p.name)
def test_audit_events_are_in_the_national_shape(path):
    """As the national guide's consumer reads them: the child as agent PAT, the viewer as agent
    ASSIGNED referring to an included PractitionerRole (name, role, organisation)."""
    bundle = load(path)
    entries = bundle.get("entry", [])
    by_full_url = {e["fullUrl"]: e for e in entries}
    events = [e for e in entries if e["search"]["mode"] == "match"]
    assert len(events) <= 25
    recorded = [e["resource"]["recorded"] for e in events]
    assert recorded == sorted(recorded, reverse=True), "newest first"
    for entry in events:
        event = entry["resource"]
        assert event["type"]["system"] == "http://terminology.hl7.org/CodeSystem/iso-21089-lifecycle"
        agents = {a["type"]["coding"][0]["code"]: a for a in event["agent"]
                  if a["type"]["coding"][0].get("system") == ROLE_CLASS_SYSTEM}
        assert agents["PAT"]["who"]["identifier"]["system"] == NHS_NUMBER_SYSTEM
        assert agents["PAT"]["requestor"] is False
        assert isinstance(agents["ASSIGNED"]["requestor"], bool)
        viewer = by_full_url[resolve(agents["ASSIGNED"]["who"]["reference"], entry["fullUrl"])]
        assert viewer["search"]["mode"] == "include"
        role = viewer["resource"]
        assert role["resourceType"] == "PractitionerRole"
        assert role["practitioner"]["display"]
        assert role["code"][0]["coding"][0]["display"]
        assert role["organization"]["display"]
        assert role["organization"]["identifier"]["system"] == ODS_SYSTEM
        assert sum(a["requestor"] for a in event["agent"]) == 1, "exactly one requestor"


@pytest.mark.parametrize("path", [p for p in SAMPLES if kind_of(p) == "OperationOutcome"], ids=lambda p: p.name)
def test_operation_outcomes_carry_the_national_code_where_one_applies(path):
    expected = {
        "invalid-search-data": "INVALID_SEARCH_DATA",
        "precondition-failed": "PRECONDITION_FAILED",
        "access-denied": "ACCESS_DENIED",
    }
    issue = load(path)["issue"][0]
    assert issue["severity"] == "error"
    assert issue["diagnostics"]
    national = [slug for slug in expected if path.stem.startswith(f"OperationOutcome-{slug}")]
    if national:
        coding = issue["details"]["coding"][0]
        assert coding["system"] == SPINE_ERROR_SYSTEM
        assert coding["code"] == expected[national[0]]
    else:
        assert "details" not in issue


# Negative controls: the validators above do reject what is not R4, so a pass means something.
BROKEN = {
    "unknown element": ("CareTeam", {"resourceType": "CareTeam", "caseRef": "CASE-1"}),
    "R5 element": ("CareTeam", {"resourceType": "CareTeam", "status": "active", "name": "x",
                                "participant": [{"coveragePeriod": {"start": "2026-01-01"}}]}),
    "missing required element": ("AuditEvent", {
        "resourceType": "AuditEvent", "type": {"code": "110110"},
        "agent": [{"requestor": True}], "source": {"observer": {"display": "CP-IS"}},
    }),
    "bad date": ("CareTeam", {"resourceType": "CareTeam", "period": {"start": "2026-13-01"}}),
    "wrong type": ("Bundle", {"resourceType": "Bundle", "type": "searchset", "total": "two"}),
    "bad nested resource": ("Bundle", {"resourceType": "Bundle", "type": "searchset", "entry": [
        {"resource": {"resourceType": "AuditEvent", "recorded": "yesterday"}}]}),
}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_both_libraries_reject_what_is_not_r4(name):
    resource_type, resource = BROKEN[name]
    with pytest.raises(Exception):
        parse_with_fhir_resources(resource)
    with pytest.raises((FHIRValidationError, Exception)):
        parse_with_fhirclient(resource)


def test_the_binding_check_rejects_a_code_outside_its_value_set():
    bundle = {"resourceType": "Bundle", "type": "searchset", "entry": [
        {"resource": {"resourceType": "CareTeam", "status": "open",
                      "telecom": [{"system": "phone", "value": "1", "use": "cell"}]}}]}
    bad = [
        where for where, value in walk(bundle, "Bundle")
        if where in REQUIRED_BINDINGS and value not in REQUIRED_BINDINGS[where]
    ]
    assert bad == ["CareTeam.status", "CareTeam.telecom.use"]


def test_the_national_examples_string_requestor_is_not_r4():
    """The national guide's examples write AuditEvent.agent.requestor as the string "true"; R4
    has a boolean, which CP-IS follows. fhirclient (strict) rejects the string; fhir.resources
    (pydantic 1) would coerce it, so it is no witness here."""
    event = {
        "resourceType": "AuditEvent", "type": {"display": "Access/View Record Lifecycle Event"},
        "recorded": "2023-09-07T17:36:41+00:00", "source": {"observer": {"display": "x"}},
        "agent": [{"who": {"display": "x"}, "requestor": "true"}],
    }
    with pytest.raises(FHIRValidationError):
        parse_with_fhirclient(event)
    event["agent"][0]["requestor"] = True
    parse_with_fhirclient(event)
