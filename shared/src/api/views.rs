//! What the API shows, shaped per audience: the NHS side gets only what a clinician needs (no
//! LA case references, no delete dates); an LA gets its own plans in full.

use crate::access::AccessEvent;
use crate::alerts::{Alert, Setting};
use crate::log::Entry;
use crate::plan::{Plan, PlanType, ResponsibleLa, iso_date};
use serde::Serialize;
use time::{Date, OffsetDateTime};

#[derive(Serialize)]
pub struct PlanTypeView {
    pub code: &'static str,
    pub display: &'static str,
}

impl From<PlanType> for PlanTypeView {
    fn from(t: PlanType) -> Self {
        Self {
            code: t.snomed_code(),
            display: t.display(),
        }
    }
}

/// A plan as an NHS user sees it.
#[derive(Serialize)]
pub struct NhsPlanView<'a> {
    pub plan_type: PlanTypeView,
    #[serde(with = "iso_date")]
    pub start_date: Date,
    #[serde(with = "iso_date::option")]
    pub end_date: Option<Date>,
    pub responsible_la: &'a ResponsibleLa,
}

impl<'a> From<&'a Plan> for NhsPlanView<'a> {
    fn from(p: &'a Plan) -> Self {
        Self {
            plan_type: p.plan_type.into(),
            start_date: p.start_date,
            end_date: p.end_date,
            responsible_la: &p.responsible_la,
        }
    }
}

/// A previous unscheduled visit: when, where, and the viewer's role; for an access a system
/// made without naming a user, the system (the role is then its responsible person's).
#[derive(Serialize)]
pub struct VisitView<'a> {
    #[serde(with = "time::serde::rfc3339")]
    pub accessed_at: OffsetDateTime,
    pub setting: &'a Setting,
    pub viewer_role: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub via_system: Option<&'a str>,
}

impl<'a> From<&'a Entry<AccessEvent>> for VisitView<'a> {
    fn from(e: &'a Entry<AccessEvent>) -> Self {
        Self {
            accessed_at: e.item.accessed_at,
            setting: &e.item.setting,
            viewer_role: e.item.user.role.as_str(),
            via_system: e.item.via_system.as_ref().map(|s| s.as_str()),
        }
    }
}

/// An alert on an LA's feed.
#[derive(Serialize)]
pub struct AlertView<'a> {
    pub seq: u64,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(flatten)]
    pub alert: &'a Alert,
}

/// A page of an LA's feed. Serialised straight from these types: building a `serde_json::Value`
/// first took three times as long per alert (docs/performance.md, "Alert page").
#[derive(Serialize)]
pub struct AlertPage<'a> {
    pub alerts: Vec<AlertView<'a>>,
    pub next_cursor: u64,
    pub more: bool,
}

impl<'a> From<&'a Entry<Alert>> for AlertView<'a> {
    fn from(e: &'a Entry<Alert>) -> Self {
        Self {
            seq: e.seq,
            created_at: e.written_at,
            alert: &e.item,
        }
    }
}
