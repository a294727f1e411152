//! What the API shows, shaped per audience: the NHS side gets only what a clinician needs (no
//! LA case references, no delete dates); an LA gets its own plans in full.

use crate::access::AccessEvent;
use crate::alerts::{Alert, Setting};
use crate::log::Entry;
use crate::plan::{Plan, PlanType, ResponsibleLa, iso_date};
use serde::Serialize;
use serde_json::value::RawValue;
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

/// An alert on an LA's feed: the shape [`alert_page_json`] writes each alert in (and checked
/// against it in this module's tests).
#[derive(Serialize)]
pub struct AlertView<'a> {
    pub seq: u64,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(flatten)]
    pub alert: &'a Alert,
}

/// A page of an LA's feed as JSON: each alert is [`AlertView`] of the stored one, written from
/// the stored bytes without decoding them (decoding and re-encoding was most of the page's
/// cost: docs/performance.md). The stored alert is a JSON object that CP-IS wrote
/// ([`crate::alerts::Alert`]); its members follow the view's `seq` and `created_at`.
pub fn alert_page_json(entries: &[Entry<Box<RawValue>>], next_cursor: u64, more: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(
        64 + entries
            .iter()
            .map(|e| e.item.get().len() + 64)
            .sum::<usize>(),
    );
    out.extend_from_slice(b"{\"alerts\":[");
    for (i, entry) in entries.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let created_at = entry
            .written_at
            .format(&time::format_description::well_known::Rfc3339)
            .expect("a stored time formats");
        out.extend_from_slice(
            format!("{{\"seq\":{},\"created_at\":\"{created_at}\"", entry.seq).as_bytes(),
        );
        let members = entry.item.get().trim().trim_start_matches('{').trim_start();
        if !members.starts_with('}') {
            out.push(b',');
        }
        out.extend_from_slice(members.as_bytes());
    }
    out.extend_from_slice(format!("],\"next_cursor\":{next_cursor},\"more\":{more}}}").as_bytes());
    out
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::{PlanRef, Resolution};
    use crate::identifiers::{CaseRef, DisplayName, OdsCode};
    use crate::nhs_number::NhsNumber;
    use time::macros::datetime;

    #[test]
    fn the_alert_page_written_from_stored_bytes_is_the_typed_view_of_every_kind() {
        let case = PlanRef {
            plan_type: PlanType::ChildProtectionPlan,
            case_ref: CaseRef::parse("C-1").unwrap(),
        };
        let alerts = [
            Alert::Attendance {
                nhs_number: NhsNumber::parse("9434765919").unwrap(),
                plans: vec![case.clone()],
                setting: Setting {
                    ods_code: OdsCode::parse("RR8").unwrap(),
                    name: DisplayName::parse("Leeds \"General\" Infirmary ED").unwrap(),
                },
                attended_at: datetime!(2026-11-25 10:00:00.123 UTC),
            },
            Alert::MissingNhsNumber { case: case.clone() },
            Alert::MissingNhsNumberResolved {
                case,
                resolves: 2,
                resolution: Resolution::CaseWithdrawn,
            },
        ];
        let entries: Vec<Entry<Alert>> = alerts
            .into_iter()
            .enumerate()
            .map(|(i, item)| Entry {
                seq: i as u64 + 1,
                written_at: datetime!(2026-11-25 10:00:01.5 UTC),
                item,
            })
            .collect();
        let stored: Vec<Entry<Box<RawValue>>> = entries
            .iter()
            .map(|e| serde_json::from_slice(&serde_json::to_vec(e).unwrap()).unwrap())
            .collect();
        for (next_cursor, more) in [(3, true), (0, false)] {
            let written: serde_json::Value =
                serde_json::from_slice(&alert_page_json(&stored, next_cursor, more)).unwrap();
            let typed = serde_json::json!({
                "alerts": entries.iter().map(AlertView::from).collect::<Vec<_>>(),
                "next_cursor": next_cursor,
                "more": more,
            });
            assert_eq!(written, typed);
        }
        let empty: serde_json::Value =
            serde_json::from_slice(&alert_page_json(&[], 0, false)).unwrap();
        assert_eq!(
            empty,
            serde_json::json!({"alerts": [], "next_cursor": 0, "more": false})
        );
    }
}
