//! The key layout of the one key-value store: every key CP-IS reads or writes is made here.
//! The README's "Key layout" section describes the same table; keep the two together.
//!
//! Every part that comes from a request is a checked type (NHS number, ODS code, case reference,
//! credential id) whose characters cannot include `/`, so no key can reach into another's space.

use crate::auth::CredentialId;
use crate::identifiers::{CaseRef, OdsCode};
use crate::log::Log;
use crate::nhs_number::NhsNumber;
use crate::plan::{ISO_DATE, PlanType};
use time::Date;

/// `health/probe`: never written. Read to learn that the store answers: by `/health/ready`, and
/// by the Spin adapter before a request's first call that it cannot bound in time.
pub const PROBE: &str = "health/probe";

/// `cred/{credential id}`: a credential (hash of its secret and the organisation it speaks for).
pub fn credential(id: &CredentialId) -> String {
    format!("cred/{id}")
}

/// `cred-system/{credential id}`: the system a care setting's credential belongs to and its
/// nominated responsible person (see [`crate::auth::register_system`]).
pub fn credential_system(id: &CredentialId) -> String {
    format!("cred-system/{id}")
}

/// `org/{ods}`: an organisation's registration (name, kind).
pub fn organisation(ods: &OdsCode) -> String {
    format!("org/{ods}")
}

/// `log/org-creds/{ods}/…`: the ids of the credentials issued to an organisation, so that all
/// can be revoked at once.
pub fn organisation_credentials(ods: &OdsCode) -> Log {
    Log::new(format!("log/org-creds/{ods}"))
}

/// `plan/{nhs}/{la}/{plan type code}`: one LA's plan of one type for a child (see
/// [`crate::records`]).
pub fn plan(nhs: &NhsNumber, la: &OdsCode, plan_type: PlanType) -> String {
    format!("plan/{nhs}/{la}/{}", plan_type.snomed_code())
}

/// `log/child-las/{nhs}/…`: the LAs that hold (or held) plans for a child.
pub fn child_las(nhs: &NhsNumber) -> Log {
    Log::new(format!("log/child-las/{nhs}"))
}

/// `case/{la}/{case ref}`: a case an LA submitted without an NHS number (never shared).
pub fn pending_case(la: &OdsCode, case_ref: &CaseRef) -> String {
    format!("case/{la}/{case_ref}")
}

/// `alert-ack/{la}`: how far the LA has acknowledged its alert feed.
pub fn alerts_acknowledged(la: &OdsCode) -> String {
    format!("alert-ack/{la}")
}

/// `log/alerts/{la}/…`: the LA's alert feed.
pub fn alert_feed(la: &OdsCode) -> Log {
    Log::new(format!("log/alerts/{la}"))
}

/// `log/visits/{nhs}/…`: unscheduled accesses to a child's information (the access history).
pub fn visits(nhs: &NhsNumber) -> Log {
    Log::new(format!("log/visits/{nhs}"))
}

/// `log/audit/{nhs}/…`: scheduled user accesses (audited, but not in the history).
pub fn scheduled_access_audit(nhs: &NhsNumber) -> Log {
    Log::new(format!("log/audit/{nhs}"))
}

/// `tally/{la}`: counter of the LA's held plans by type and of its cases waiting for an NHS
/// number, packed into one number so that a request changes them all in one `increment` (see
/// [`crate::tally`]).
pub fn tally(la: &OdsCode) -> String {
    format!("tally/{la}")
}

/// `tally/{la}/due/{YYYY-MM-DD}`: counter of the LA's waiting cases that were not yet due when
/// recorded, by the day their NHS number is due.
pub fn not_yet_due_on_day(la: &OdsCode, due: Date) -> String {
    let day = due.format(ISO_DATE).expect("a date always formats");
    format!("tally/{la}/due/{day}")
}

/// `tally/{la}/due/{YYYY-MM}`: the same cases, by the month their NHS number is due.
pub fn not_yet_due_in_month(la: &OdsCode, year: i32, month: time::Month) -> String {
    format!("tally/{la}/due/{year:04}-{:02}", u8::from(month))
}

/// `log/local-authorities/…`: every LA ever registered, so that the administrator's match rate
/// reads a list instead of scanning keys.
pub fn local_authorities() -> Log {
    Log::new("log/local-authorities".into())
}

/// `worktray-start/{la}`: a feed position before which the LA's alert feed holds no case still
/// waiting for its NHS number (a hint that spares the worktray re-reading its closed past).
pub fn worktray_start(la: &OdsCode) -> String {
    format!("worktray-start/{la}")
}
