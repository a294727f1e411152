//! FHIR R4 (4.0.1) renderings of what the NHS side is shown, in the shape of the national CP-IS
//! FHIR API: a plan is a `CareTeam`, a previous unscheduled access an `AuditEvent`, both returned
//! in `searchset` Bundles; failures are `OperationOutcome`s carrying the national Spine error
//! codes; `metadata` is a `CapabilityStatement`. Pure functions from domain values to JSON: no
//! store, no clock, no randomness (resource ids come from an [`Ids`] seeded by the caller).
//!
//! What is never rendered, as in the JSON API: an LA's case reference, a delete date, the
//! viewer's user id.

use crate::access::AccessEvent;
use crate::log::Entry;
use crate::nhs_number::NhsNumber;
use crate::plan::{ISO_DATE, Plan};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use time::{Date, OffsetDateTime, UtcOffset};

/// The FHIR version every resource here conforms to.
pub const FHIR_VERSION: &str = "4.0.1";
/// The media type of every response.
pub const CONTENT_TYPE: &str = "application/fhir+json";
pub const NHS_NUMBER_SYSTEM: &str = "https://fhir.nhs.uk/Id/nhs-number";
pub const ODS_SYSTEM: &str = "https://fhir.nhs.uk/Id/ods-organization-code";
pub const SNOMED_SYSTEM: &str = "http://snomed.info/sct";
/// The code system of the national error codes in `OperationOutcome.issue.details`.
pub const SPINE_ERROR_SYSTEM: &str =
    "https://fhir.nhs.uk/CodeSystem/England-SpineErrorOrWarningCode";
/// The one search parameter both searches take.
pub const PATIENT_IDENTIFIER: &str = "patient:identifier";
/// When the interface described by [`capability_statement`] last changed.
pub const CAPABILITY_DATE: &str = "2026-11-25";

/// A resource as the bytes of a response body: JSON whose objects put `resourceType`, `id` and
/// `meta` first, as FHIR JSON is conventionally read (the other members follow in name order).
pub fn to_body(resource: &Value) -> Vec<u8> {
    serde_json::to_vec(&Ordered(resource)).expect("a JSON value always serialises")
}

/// Leading members of every object, in this order.
const LEADING_MEMBERS: [&str; 3] = ["resourceType", "id", "meta"];

struct Ordered<'a>(&'a Value);

impl serde::Serialize for Ordered<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        match self.0 {
            Value::Object(members) => {
                let mut map = s.serialize_map(Some(members.len()))?;
                let leading = LEADING_MEMBERS
                    .iter()
                    .filter_map(|name| members.get_key_value(*name));
                let rest = members
                    .iter()
                    .filter(|(name, _)| !LEADING_MEMBERS.contains(&name.as_str()));
                for (name, value) in leading.chain(rest) {
                    map.serialize_entry(name, &Ordered(value))?;
                }
                map.end()
            }
            Value::Array(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(&Ordered(item))?;
                }
                seq.end()
            }
            scalar => scalar.serialize(s),
        }
    }
}

/// Resource ids for one response: version-4-shaped UUIDs derived from a random seed, so that
/// rendering stays deterministic for a given seed. Ids are per response: CP-IS offers no read by
/// id, and an id reveals nothing (not the NHS number, not the LA's case reference).
#[derive(Debug, Clone)]
pub struct Ids {
    seed: [u8; 16],
    issued: u64,
}

impl Ids {
    pub fn new(seed: [u8; 16]) -> Self {
        Self { seed, issued: 0 }
    }

    /// The next id, distinct from every one issued before it from this seed.
    pub fn next_id(&mut self) -> String {
        self.issued += 1;
        let mut hash = Sha256::new();
        hash.update(self.seed);
        hash.update(self.issued.to_be_bytes());
        let digest: [u8; 32] = hash.finalize().into();
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        uuid_v4(bytes)
    }
}

/// Formats 16 random bytes as a version-4 UUID (`xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx`).
pub fn uuid_v4(bytes: [u8; 16]) -> String {
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .hyphenated()
        .to_string()
}

/// Whether `text` is a UUID in its usual 8-4-4-4-12 hexadecimal form (any version, any case).
pub fn is_uuid(text: &str) -> bool {
    // `try_parse` also takes the braced, URN and unhyphenated forms; the API wants this one.
    text.len() == 36 && uuid::Uuid::try_parse(text).is_ok()
}

/// A FHIR `instant` in UTC to the second, as the national examples write it:
/// `2026-11-25T10:00:00+00:00`.
pub fn instant(at: OffsetDateTime) -> String {
    let utc = at.to_offset(UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}+00:00",
        utc.year(),
        u8::from(utc.month()),
        utc.day(),
        utc.hour(),
        utc.minute(),
        utc.second(),
    )
}

fn date(d: Date) -> String {
    d.format(ISO_DATE).expect("a calendar date always formats")
}

fn nhs_identifier(nhs: &NhsNumber) -> Value {
    json!({"system": NHS_NUMBER_SYSTEM, "value": nhs.as_str()})
}

fn patient(nhs: &NhsNumber) -> Value {
    json!({"type": "Patient", "identifier": nhs_identifier(nhs)})
}

/// One plan as a `CareTeam`: the plan type (SNOMED CT, England-ChildProtectionPlan) as its
/// category, the plan's dates as its period, the responsible LA as its name and managing
/// organisation (by ODS code), and whom to call: `use: work` the office-hours number, `use:
/// mobile` the emergency duty team. `inactive` once the plan has ended (it stays visible for a
/// while after its end date).
pub fn care_team(plan: &Plan, nhs: &NhsNumber, today: Date, id: String) -> Value {
    let la = &plan.responsible_la;
    let mut period = json!({"start": date(plan.start_date)});
    if let Some(end) = plan.end_date {
        period["end"] = json!(date(end));
    }
    let status = match plan.end_date {
        Some(end) if end < today => "inactive",
        _ => "active",
    };
    json!({
        "resourceType": "CareTeam",
        "id": id,
        "status": status,
        "category": [{
            "coding": [{
                "system": SNOMED_SYSTEM,
                "code": plan.plan_type.snomed_code(),
                "display": plan.plan_type.display(),
            }],
            "text": plan.plan_type.display(),
        }],
        "name": la.name.as_str(),
        "subject": patient(nhs),
        "period": period,
        "managingOrganization": [{
            "type": "Organization",
            "identifier": {"system": ODS_SYSTEM, "value": la.ods_code.as_str()},
            "display": la.name.as_str(),
        }],
        "telecom": [
            {"system": "phone", "value": la.office_hours_phone.as_str(), "use": "work"},
            {"system": "phone", "value": la.emergency_duty_team_phone.as_str(), "use": "mobile"},
        ],
    })
}

/// Where the resources of one response live: the FHIR base the request came to (absolute), so
/// that each entry's `fullUrl` is `{base}/{type}/{id}` and entries refer to each other as
/// `{type}/{id}`, as in the national API; or, when no base is known, `urn:uuid:{id}` for both
/// (still resolvable inside the Bundle).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Base(Option<String>);

impl Base {
    /// `base` is an absolute URL without a trailing `/`, e.g. `https://cpis.example/fhir/r4`.
    pub fn absolute(base: String) -> Self {
        Self(Some(base))
    }

    pub fn unknown() -> Self {
        Self(None)
    }

    /// The base as a prefix for links: the absolute URL, or `fallback` (a path) when unknown.
    pub fn or<'a>(&'a self, fallback: &'a str) -> &'a str {
        self.0.as_deref().unwrap_or(fallback)
    }

    pub fn full_url(&self, resource_type: &str, id: &str) -> String {
        match &self.0 {
            Some(base) => format!("{base}/{resource_type}/{id}"),
            None => format!("urn:uuid:{id}"),
        }
    }

    pub fn reference(&self, resource_type: &str, id: &str) -> String {
        match &self.0 {
            Some(_) => format!("{resource_type}/{id}"),
            None => format!("urn:uuid:{id}"),
        }
    }
}

/// The code system of the national AuditEvent agent types.
pub const ROLE_CLASS_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/v3-RoleClass";

fn role_class(code: &str, display: &str) -> Value {
    json!({"coding": [{"system": ROLE_CLASS_SYSTEM, "code": code, "display": display}]})
}

/// One recorded unscheduled access as an `AuditEvent`, in the national shape: `recorded` (when),
/// a `PAT` agent (the child, by NHS number) and an `ASSIGNED` agent referring to the viewer's
/// `PractitionerRole` ([`practitioner_role`], included in the Bundle, also the `source.observer`).
/// An access a system made without naming a user has a third agent, the system (DICOM
/// `Application`), which is then the requestor. The viewer's user id is not shown.
///
/// Where the national examples differ from R4, R4 wins: `requestor` is a boolean, not the
/// string `"true"`; `type` carries the code (`access`) with the display the examples show.
pub fn audit_event(visit: &Entry<AccessEvent>, nhs: &NhsNumber, id: String, viewer: &str) -> Value {
    let event = &visit.item;
    let by_system = event.via_system.is_some();
    let mut agents = vec![
        json!({
            "type": role_class("PAT", "patient"),
            "who": {"identifier": nhs_identifier(nhs)},
            "requestor": false,
        }),
        json!({
            "type": role_class("ASSIGNED", "assigned entity"),
            "who": {"reference": viewer},
            "requestor": !by_system,
        }),
    ];
    if let Some(system) = &event.via_system {
        agents.push(json!({
            "type": {"coding": [{
                "system": "http://dicom.nema.org/resources/ontology/DCM",
                "code": "110150",
                "display": "Application",
            }]},
            "who": {"type": "Device", "display": system.as_str()},
            "name": system.as_str(),
            "requestor": true,
        }));
    }
    json!({
        "resourceType": "AuditEvent",
        "id": id,
        "type": {
            "system": "http://terminology.hl7.org/CodeSystem/iso-21089-lifecycle",
            "code": "access",
            "display": "Access/View Record Lifecycle Event",
        },
        "recorded": instant(event.accessed_at),
        "agent": agents,
        "source": {"observer": {"reference": viewer}},
    })
}

/// The viewer of an access as the `PractitionerRole` a national consumer reads: the name
/// (`practitioner.display`), the role (`code.coding.display`: CP-IS is given the role as text,
/// so the coding has no system), and the care setting (`organization`, by ODS code, displayed
/// as the national examples do, `NAME (ODS)`). For a system's access, its responsible person.
pub fn practitioner_role(visit: &Entry<AccessEvent>, id: String) -> Value {
    let event = &visit.item;
    let role = event.user.role.as_str();
    let setting = &event.setting;
    json!({
        "resourceType": "PractitionerRole",
        "id": id,
        "practitioner": {"display": event.user.name.as_str()},
        "organization": {
            "identifier": {"system": ODS_SYSTEM, "value": setting.ods_code.as_str()},
            "display": format!("{} ({})", setting.name, setting.ods_code),
        },
        "code": [{"coding": [{"display": role}], "text": role}],
    })
}

/// A `searchset` Bundle: `matches` (each with an `id`) and the resources they refer to
/// (`includes`, `search.mode` `include`). `total` counts the matches only. An empty search is a
/// Bundle with `total: 0` and no `entry`.
pub fn searchset(
    matches: Vec<Value>,
    includes: Vec<Value>,
    self_url: &str,
    base: &Base,
    now: OffsetDateTime,
    ids: &mut Ids,
) -> Value {
    let mut bundle = json!({
        "resourceType": "Bundle",
        "id": ids.next_id(),
        "meta": {"lastUpdated": instant(now)},
        "type": "searchset",
        "total": matches.len(),
        "link": [{"relation": "self", "url": self_url}],
    });
    let entry = |resource: Value, mode: &str| {
        let resource_type = resource["resourceType"].as_str().unwrap_or_default();
        let id = resource["id"].as_str().unwrap_or_default();
        json!({
            "fullUrl": base.full_url(resource_type, id),
            "resource": resource,
            "search": {"mode": mode},
        })
    };
    let entries: Vec<Value> = matches
        .into_iter()
        .map(|r| entry(r, "match"))
        .chain(includes.into_iter().map(|r| entry(r, "include")))
        .collect();
    if !entries.is_empty() {
        bundle["entry"] = Value::Array(entries);
    }
    bundle
}

/// The national error codes this API answers with (Spine-ErrorOrWarningCode).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpineCode {
    /// 400: a search parameter or its value is wrong (e.g. an invalid NHS number).
    InvalidSearchData,
    /// 400: a required header is missing or has a value that is not allowed.
    PreconditionFailed,
    /// 401 / 403: no valid credential, or one that may not do this.
    AccessDenied,
}

impl SpineCode {
    pub fn code(self) -> &'static str {
        match self {
            Self::InvalidSearchData => "INVALID_SEARCH_DATA",
            Self::PreconditionFailed => "PRECONDITION_FAILED",
            Self::AccessDenied => "ACCESS_DENIED",
        }
    }

    pub fn display(self) -> &'static str {
        match self {
            Self::InvalidSearchData => "Invalid search data provided",
            Self::PreconditionFailed => "Required condition was not fulfilled",
            Self::AccessDenied => "Access has been denied to process this request",
        }
    }
}

/// What went wrong, as one `OperationOutcome` issue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    /// The FHIR IssueType code: `invalid`, `login`, `forbidden`, `not-found`, ...
    pub issue_type: &'static str,
    /// The national code, where one applies.
    pub spine_code: Option<SpineCode>,
    /// A sentence for people: what is wrong and what to do.
    pub diagnostics: String,
    /// The header or parameter at fault, rendered as `http.{name}`.
    pub location: Option<String>,
}

/// An `OperationOutcome` with one error issue.
pub fn operation_outcome(issue: &Issue) -> Value {
    let mut rendered = json!({
        "severity": "error",
        "code": issue.issue_type,
        "diagnostics": issue.diagnostics,
    });
    if let Some(code) = issue.spine_code {
        rendered["details"] = json!({
            "coding": [{
                "system": SPINE_ERROR_SYSTEM,
                "code": code.code(),
                "display": code.display(),
            }],
        });
    }
    if let Some(location) = &issue.location {
        rendered["location"] = json!([format!("http.{location}")]);
    }
    json!({"resourceType": "OperationOutcome", "issue": [rendered]})
}

/// The one `_include` the AuditEvent search accepts, as the national consumer guide spells it.
pub const AUDIT_EVENT_INCLUDE: &str =
    "AuditEvent:entity-type=http://terminology.hl7.org/CodeSystem/v3-RoleClass|ASSIGNED";

/// The CapabilityStatement of the national API, which this server follows.
const NATIONAL_CAPABILITIES: &str =
    "https://fhir.nhs.uk/CapabilityStatement/CPIS-FHIR-API-Producer";

/// The headers the two searches take, documented once for the CapabilityStatement.
const HEADERS_DOC: &str = "Headers: `Authorization: Bearer <credential>` (a care setting's \
CP-IS credential; it also gives the organisation and its ODS code); `TraceID` (a UUID, echoed \
back; generated when absent); `IsUnscheduledAccessEvent` (`true` or `false`, `true` when \
omitted); `NHSD-End-User-Id`, `NHSD-End-User-Name`, `NHSD-End-User-Role` (the user: all three, \
or none when the credential has a registered system, whose nominated responsible person the \
access is then recorded against; otherwise 400 PRECONDITION_FAILED).";

fn search_param(definition: &str, what: &str) -> Value {
    json!([{
        "name": "patient",
        "definition": definition,
        "type": "reference",
        "documentation": format!(
            "Required, exactly once, and only with the `:identifier` modifier and the NHS number \
             system: `patient:identifier={NHS_NUMBER_SYSTEM}|{{nhs-number}}`. {what} Any other \
             search parameter or modifier is refused with 400 INVALID_SEARCH_DATA. The national \
             guide gives this parameter the type `token`; in R4 `patient` is a reference \
             parameter searched by identifier, so it is declared as such."
        ),
    }])
}

/// The `CapabilityStatement` of this server: exactly the two searches it serves, the one
/// parameter each takes, the one `_include`, and JSON only.
pub fn capability_statement() -> Value {
    json!({
        "resourceType": "CapabilityStatement",
        "id": "cpis-fhir-r4",
        "version": env!("CARGO_PKG_VERSION"),
        "name": "CpisFhirR4",
        "title": "CP-IS FHIR R4 API (NHS query side)",
        "status": "active",
        "date": CAPABILITY_DATE,
        "publisher": "CP-IS",
        "description": "The clinician side of CP-IS (Child Protection - Information Sharing) in \
            the shape of the national FHIR R4 API: the child protection plans held for an NHS \
            number (CareTeam) and the previous unscheduled accesses to them (AuditEvent, with \
            the viewers as included PractitionerRoles).",
        "kind": "instance",
        "instantiates": [NATIONAL_CAPABILITIES],
        "software": {"name": "CP-IS", "version": env!("CARGO_PKG_VERSION")},
        "implementation": {"description": "CP-IS FHIR R4 query interface"},
        "fhirVersion": FHIR_VERSION,
        "format": [CONTENT_TYPE],
        "rest": [{
            "mode": "server",
            "documentation": format!(
                "Searches only; no read, history, create, update or delete. Entries' fullUrl \
                 are absolute URLs under the base the request came to. Errors are \
                 OperationOutcome resources with a code from {SPINE_ERROR_SYSTEM}: 400 \
                 INVALID_SEARCH_DATA, 400 PRECONDITION_FAILED, 401/403 ACCESS_DENIED. {HEADERS_DOC}"
            ),
            "security": {
                "description": "Every search needs a bearer credential issued by CP-IS to an NHS \
                    care setting: `Authorization: Bearer <credential>`. Without one: 401 \
                    ACCESS_DENIED; with another organisation's kind of credential: 403 \
                    ACCESS_DENIED. `metadata` needs none.",
            },
            "resource": [
                {
                    "type": "CareTeam",
                    "documentation": "One CareTeam per plan visible to the NHS side: category \
                        the plan type (SNOMED CT, England-ChildProtectionPlan), period the \
                        plan's dates, name and managingOrganization the responsible local \
                        authority (ODS code), telecom `use: work` its office-hours number and \
                        `use: mobile` its emergency duty team. The search is the user's access: \
                        when unscheduled (IsUnscheduledAccessEvent true or omitted) it is added \
                        to the child's access history and each responsible local authority is \
                        notified; a scheduled access is audited only. A child with no visible \
                        plan gives an empty searchset Bundle and leaves no trace. No `_include`.",
                    "interaction": [{"code": "search-type"}],
                    "searchParam": search_param(
                        "http://hl7.org/fhir/SearchParameter/clinical-patient",
                        "One CareTeam per visible plan.",
                    ),
                },
                {
                    "type": "AuditEvent",
                    "documentation": format!(
                        "The child's access history: the newest 25 unscheduled accesses, newest \
                         first, each with when (recorded), the child (agent PAT) and the viewer \
                         (agent ASSIGNED, a PractitionerRole: name, role and care setting); an \
                         access a system made without naming a user also has the system as an \
                         agent (DICOM 110150 Application) and its PractitionerRole is the \
                         system's nominated responsible person. The PractitionerRoles are \
                         always included (search.mode include), whether or not the search \
                         asks with `_include={AUDIT_EVENT_INCLUDE}`, the one _include value \
                         accepted. Reading the history records nothing and notifies nobody. A \
                         child with no visible plan gives an empty searchset Bundle."
                    ),
                    "interaction": [{"code": "search-type"}],
                    "searchInclude": [AUDIT_EVENT_INCLUDE],
                    "searchParam": search_param(
                        "http://hl7.org/fhir/SearchParameter/AuditEvent-patient",
                        "At most 25 AuditEvents, newest first.",
                    ),
                },
            ],
        }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::NhsUser;
    use crate::alerts::Setting;
    use crate::identifiers::{DisplayName, OdsCode};
    use crate::plan::PlanType;
    use crate::plan::tests::plan;
    use time::macros::{date, datetime};

    const NOW: OffsetDateTime = datetime!(2026-11-25 10:00 UTC);

    fn nhs() -> NhsNumber {
        NhsNumber::parse("9434765919").unwrap()
    }

    fn visit() -> Entry<AccessEvent> {
        Entry {
            seq: 7,
            written_at: NOW,
            item: AccessEvent {
                user: NhsUser {
                    id: DisplayName::parse("555021935107").unwrap(),
                    name: DisplayName::parse("Dr A Patel").unwrap(),
                    role: DisplayName::parse("ED Doctor").unwrap(),
                },
                setting: Setting {
                    ods_code: OdsCode::parse("RR8").unwrap(),
                    name: DisplayName::parse("Leeds General Infirmary ED").unwrap(),
                },
                via_system: None,
                unscheduled: true,
                accessed_at: datetime!(2026-11-24 23:15:02.123456 +01:00),
            },
        }
    }

    #[test]
    fn bodies_put_resource_type_id_and_meta_first_at_every_level() {
        let resource = json!({
            "type": "searchset",
            "meta": {"lastUpdated": "x"},
            "id": "b",
            "resourceType": "Bundle",
            "entry": [{"resource": {"status": "active", "resourceType": "CareTeam"}}],
        });
        let body = String::from_utf8(to_body(&resource)).unwrap();
        assert_eq!(
            body,
            r#"{"resourceType":"Bundle","id":"b","meta":{"lastUpdated":"x"},"entry":[{"resource":{"resourceType":"CareTeam","status":"active"}}],"type":"searchset"}"#
        );
        let back: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(back, resource);
    }

    #[test]
    fn ids_are_uuids_distinct_and_reproducible_from_the_seed() {
        let mut a = Ids::new([7; 16]);
        let mut b = Ids::new([7; 16]);
        let (a1, a2) = (a.next_id(), a.next_id());
        assert_ne!(a1, a2);
        assert_eq!(a1, b.next_id());
        assert!(is_uuid(&a1), "{a1}");
        assert_eq!(&a1[14..15], "4", "version 4: {a1}");
        assert!("89ab".contains(&a1[19..20]), "RFC 4122 variant: {a1}");
        assert_ne!(Ids::new([8; 16]).next_id(), a1);
    }

    #[test]
    fn uuid_check_accepts_only_the_8_4_4_4_12_form() {
        assert!(is_uuid("6ede3b9d-a81b-4c75-9d77-e1d64d85c323"));
        assert!(is_uuid("6EDE3B9D-A81B-4C75-9D77-E1D64D85C323"));
        for bad in [
            "",
            "6ede3b9d-a81b-4c75-9d77-e1d64d85c32",
            "6ede3b9da81b4c759d77e1d64d85c323",
            "6ede3b9d-a81b-4c75-9d77-e1d64d85c32g",
            "6ede3b9d_a81b-4c75-9d77-e1d64d85c323",
        ] {
            assert!(!is_uuid(bad), "{bad}");
        }
    }

    #[test]
    fn instants_are_utc_to_the_second_as_the_national_examples() {
        assert_eq!(instant(NOW), "2026-11-25T10:00:00+00:00");
        assert_eq!(
            instant(datetime!(2026-11-24 23:15:02.123456 +01:00)),
            "2026-11-24T22:15:02+00:00"
        );
    }

    #[test]
    fn a_plan_becomes_a_care_team_with_type_dates_la_and_both_phones() {
        let mut p = plan(
            PlanType::LookedAfterChild,
            date!(2026 - 01 - 01),
            Some(date!(2026 - 06 - 30)),
        );
        p.delete_date = Some(date!(2030 - 01 - 01));
        let team = care_team(&p, &nhs(), NOW.date(), "id-1".into());
        assert_eq!(team["resourceType"], "CareTeam");
        assert_eq!(team["status"], "inactive", "ended plans are inactive");
        assert_eq!(
            team["category"][0]["coding"][0],
            json!({"system": SNOMED_SYSTEM, "code": "764841000000100", "display": "Looked after child"})
        );
        assert_eq!(
            team["period"],
            json!({"start": "2026-01-01", "end": "2026-06-30"})
        );
        assert_eq!(team["name"], "LA LA1");
        assert_eq!(
            team["managingOrganization"][0]["identifier"],
            json!({"system": ODS_SYSTEM, "value": "LA1"})
        );
        assert_eq!(
            team["telecom"],
            json!([
                {"system": "phone", "value": "0113 222 4401", "use": "work"},
                {"system": "phone", "value": "0113 535 0600", "use": "mobile"},
            ])
        );
        assert_eq!(
            team["subject"]["identifier"],
            json!({"system": NHS_NUMBER_SYSTEM, "value": "9434765919"})
        );
        let text = team.to_string();
        assert!(!text.contains("CASE-1") && !text.contains("2030"), "{text}");
    }

    #[test]
    fn an_open_plan_is_active_with_no_period_end() {
        let p = plan(PlanType::ChildProtectionPlan, date!(2026 - 01 - 01), None);
        let team = care_team(&p, &nhs(), NOW.date(), "id-1".into());
        assert_eq!(team["status"], "active");
        assert_eq!(team["period"], json!({"start": "2026-01-01"}));
        let ending_today = plan(
            PlanType::ChildProtectionPlan,
            date!(2026 - 01 - 01),
            Some(NOW.date()),
        );
        assert_eq!(
            care_team(&ending_today, &nhs(), NOW.date(), "x".into())["status"],
            "active"
        );
    }

    #[test]
    fn a_visit_becomes_an_audit_event_with_pat_and_assigned_agents() {
        let event = audit_event(&visit(), &nhs(), "id-2".into(), "PractitionerRole/id-3");
        assert_eq!(event["recorded"], "2026-11-24T22:15:02+00:00");
        assert_eq!(
            event["type"]["system"],
            "http://terminology.hl7.org/CodeSystem/iso-21089-lifecycle"
        );
        assert_eq!(
            event["type"]["display"],
            "Access/View Record Lifecycle Event"
        );
        let agents = event["agent"].as_array().unwrap();
        assert_eq!(agents.len(), 2);
        assert_eq!(agents[0]["type"]["coding"][0]["system"], ROLE_CLASS_SYSTEM);
        assert_eq!(agents[0]["type"]["coding"][0]["code"], "PAT");
        assert_eq!(
            agents[0]["who"]["identifier"],
            json!({"system": NHS_NUMBER_SYSTEM, "value": "9434765919"})
        );
        assert_eq!(agents[0]["requestor"], false);
        assert_eq!(agents[1]["type"]["coding"][0]["code"], "ASSIGNED");
        assert_eq!(
            agents[1]["who"],
            json!({"reference": "PractitionerRole/id-3"})
        );
        assert_eq!(agents[1]["requestor"], true, "a boolean, as R4 has it");
        assert_eq!(
            event["source"]["observer"]["reference"],
            "PractitionerRole/id-3"
        );
        assert!(
            !event.to_string().contains("555021935107"),
            "the user id is not shown"
        );
    }

    #[test]
    fn the_viewer_is_a_practitioner_role_with_name_role_and_organisation() {
        let role = practitioner_role(&visit(), "id-3".into());
        assert_eq!(role["resourceType"], "PractitionerRole");
        assert_eq!(role["id"], "id-3");
        assert_eq!(role["practitioner"], json!({"display": "Dr A Patel"}));
        assert_eq!(
            role["code"][0]["coding"][0],
            json!({"display": "ED Doctor"})
        );
        assert_eq!(role["code"][0]["text"], "ED Doctor");
        assert_eq!(
            role["organization"]["display"],
            "Leeds General Infirmary ED (RR8)"
        );
        assert_eq!(
            role["organization"]["identifier"],
            json!({"system": ODS_SYSTEM, "value": "RR8"})
        );
        assert!(
            !role.to_string().contains("555021935107"),
            "the user id is not shown"
        );
    }

    #[test]
    fn a_systems_access_has_the_system_as_requestor_and_its_responsible_person_as_viewer() {
        let mut by_system = visit();
        by_system.item.via_system = Some(DisplayName::parse("Symphony ED").unwrap());
        let event = audit_event(&by_system, &nhs(), "id-2".into(), "PractitionerRole/id-3");
        let agents = event["agent"].as_array().unwrap();
        assert_eq!(agents.len(), 3);
        assert_eq!(agents[1]["requestor"], false, "the person did not ask");
        assert_eq!(agents[2]["type"]["coding"][0]["code"], "110150");
        assert_eq!(
            agents[2]["who"],
            json!({"type": "Device", "display": "Symphony ED"})
        );
        assert_eq!(agents[2]["requestor"], true);
        let role = practitioner_role(&by_system, "id-3".into());
        assert_eq!(role["practitioner"]["display"], "Dr A Patel");
    }

    #[test]
    fn a_searchset_counts_its_matches_and_gives_absolute_full_urls() {
        let mut ids = Ids::new([1; 16]);
        let p = plan(PlanType::ChildProtectionPlan, date!(2026 - 01 - 01), None);
        let team = care_team(&p, &nhs(), NOW.date(), ids.next_id());
        let team_id = team["id"].as_str().unwrap().to_string();
        let role = practitioner_role(&visit(), "r1".into());
        let base = Base::absolute("https://cpis.example/fhir/r4".into());
        let bundle = searchset(
            vec![team],
            vec![role],
            "https://x/CareTeam?x",
            &base,
            NOW,
            &mut ids,
        );
        assert_eq!(bundle["type"], "searchset");
        assert_eq!(bundle["total"], 1, "includes are not counted");
        assert_eq!(
            bundle["entry"][0]["fullUrl"],
            format!("https://cpis.example/fhir/r4/CareTeam/{team_id}")
        );
        assert_eq!(bundle["entry"][0]["search"]["mode"], "match");
        assert_eq!(
            bundle["entry"][1]["fullUrl"],
            "https://cpis.example/fhir/r4/PractitionerRole/r1"
        );
        assert_eq!(bundle["entry"][1]["search"]["mode"], "include");
        assert_eq!(bundle["link"][0]["url"], "https://x/CareTeam?x");
        assert_eq!(bundle["meta"]["lastUpdated"], "2026-11-25T10:00:00+00:00");
        assert_eq!(
            base.reference("PractitionerRole", "r1"),
            "PractitionerRole/r1"
        );
        let empty = searchset(vec![], vec![], "/fhir/r4/CareTeam?x", &base, NOW, &mut ids);
        assert_eq!(empty["total"], 0);
        assert!(
            empty.get("entry").is_none(),
            "FHIR JSON has no empty arrays"
        );
    }

    #[test]
    fn without_a_known_base_entries_are_urn_uuids_and_refer_to_each_other_so() {
        let base = Base::unknown();
        assert_eq!(base.full_url("PractitionerRole", "r1"), "urn:uuid:r1");
        assert_eq!(base.reference("PractitionerRole", "r1"), "urn:uuid:r1");
        assert_eq!(base.or("/fhir/r4"), "/fhir/r4");
        assert_eq!(
            Base::absolute("https://a/fhir/r4".into()).or("/fhir/r4"),
            "https://a/fhir/r4"
        );
    }

    #[test]
    fn an_operation_outcome_carries_the_national_code_and_the_location() {
        let outcome = operation_outcome(&Issue {
            issue_type: "invalid",
            spine_code: Some(SpineCode::PreconditionFailed),
            diagnostics: "send TraceID as a UUID".into(),
            location: Some("TraceID".into()),
        });
        let issue = &outcome["issue"][0];
        assert_eq!(issue["severity"], "error");
        assert_eq!(issue["code"], "invalid");
        assert_eq!(
            issue["details"]["coding"][0],
            json!({"system": "https://fhir.nhs.uk/CodeSystem/England-SpineErrorOrWarningCode",
                   "code": "PRECONDITION_FAILED", "display": "Required condition was not fulfilled"}),
            "the code system and display of the national guide's examples"
        );
        assert_eq!(issue["details"]["coding"][0]["code"], "PRECONDITION_FAILED");
        assert_eq!(issue["location"], json!(["http.TraceID"]));
        let bare = operation_outcome(&Issue {
            issue_type: "not-found",
            spine_code: None,
            diagnostics: "no such endpoint".into(),
            location: None,
        });
        assert!(bare["issue"][0].get("details").is_none());
        assert!(bare["issue"][0].get("location").is_none());
    }

    #[test]
    fn the_capability_statement_lists_exactly_the_two_searches() {
        let cs = capability_statement();
        assert_eq!(cs["fhirVersion"], "4.0.1");
        assert_eq!(cs["format"], json!(["application/fhir+json"]));
        let resources = cs["rest"][0]["resource"].as_array().unwrap();
        let types: Vec<&str> = resources
            .iter()
            .map(|r| r["type"].as_str().unwrap())
            .collect();
        assert_eq!(types, ["CareTeam", "AuditEvent"]);
        assert_eq!(resources[1]["searchInclude"], json!([AUDIT_EVENT_INCLUDE]));
        assert!(resources[0].get("searchInclude").is_none());
        for r in resources {
            assert_eq!(r["interaction"], json!([{"code": "search-type"}]));
            assert_eq!(r["searchParam"].as_array().unwrap().len(), 1);
            assert_eq!(r["searchParam"][0]["name"], "patient");
        }
    }
}
