//! The key layout of the one key-value store: every key CP-IS reads or writes is made here.
//! The README's "Key layout" section describes the same table; keep the two together.
//!
//! Every part that comes from a request is a checked type (NHS number, ODS code, case reference,
//! credential id) whose characters cannot include `/`, so no key can reach into another's space.

use crate::auth::CredentialId;
use crate::identifiers::{CaseRef, OdsCode};
use crate::log::Log;
use crate::nhs_number::NhsNumber;
use crate::plan::PlanType;

/// `health/probe`: never written. Read to learn that the store answers: by `/health/ready`, and
/// by the Spin adapter before a request's first call that it cannot bound in time.
pub const PROBE: &str = "health/probe";

/// `cred/{credential id}`: a credential (hash of its secret and the organisation it speaks for).
pub fn credential(id: &CredentialId) -> String {
    format!("cred/{id}")
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
