//! CP-IS → LA: each LA's feed of alerts, read in order from a cursor and acknowledged.

use crate::error::ApiError;
use crate::identifiers::{CaseRef, DisplayName, OdsCode};
use crate::keys;
use crate::log::Page;
use crate::nhs_number::NhsNumber;
use crate::plan::PlanType;
use crate::store::{KeyValue, Update, get_json, update_json};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

/// The most alerts one read returns.
pub const MAX_PAGE: u64 = 500;

/// An NHS organisation where a child was seen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Setting {
    pub ods_code: OdsCode,
    pub name: DisplayName,
}

/// One of the LA's plans that an alert is about, in the LA's own terms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanRef {
    pub plan_type: PlanType,
    pub case_ref: CaseRef,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Alert {
    /// A child the LA holds a plan for was seen in unscheduled care.
    Attendance {
        nhs_number: NhsNumber,
        plans: Vec<PlanRef>,
        setting: Setting,
        #[serde(with = "time::serde::rfc3339")]
        attended_at: OffsetDateTime,
    },
    /// The LA submitted a case without an NHS number: it is not shared until one is supplied.
    MissingNhsNumber { case: PlanRef },
    /// An earlier [`Alert::MissingNhsNumber`] no longer applies.
    MissingNhsNumberResolved {
        case: PlanRef,
        /// The feed position of the alert this resolves.
        resolves: u64,
        resolution: Resolution,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Resolution {
    NhsNumberSupplied,
    CaseWithdrawn,
}

/// What the LA has acknowledged: every alert up to and including `up_to`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Acknowledged {
    pub up_to: u64,
}

/// Reads the LA's feed after `after`, or after what it acknowledged when `after` is `None`
/// (three calls then: the acknowledgement, the head, one `get-many`; two with a cursor). Each
/// alert is decoded as `T`: [`Alert`], or `Box<RawValue>` to pass the stored alerts on as they
/// are, for a page that only shows them.
pub fn read_feed<T: DeserializeOwned>(
    store: &impl KeyValue,
    la: &OdsCode,
    after: Option<u64>,
    limit: u64,
    now: OffsetDateTime,
    gap_grace: Duration,
) -> Result<Page<T>, ApiError> {
    let cursor = match after {
        Some(cursor) => cursor,
        None => {
            get_json::<Acknowledged>(store, &keys::alerts_acknowledged(la))?
                .unwrap_or_default()
                .up_to
        }
    };
    let page =
        keys::alert_feed(la).read_after(store, cursor, limit.clamp(1, MAX_PAGE), now, gap_grace)?;
    if cursor > page.head {
        // Reading on from there would silently skip every alert up to it.
        return Err(ApiError::invalid(
            "after",
            format!(
                "cursor {cursor} is past the end of the feed ({}); use a next_cursor this feed returned",
                page.head
            ),
        ));
    }
    Ok(page)
}

/// Records that the LA has taken every alert up to `up_to` (never moves backwards). Calls: the
/// head, then a compare-and-swap (two calls, three when it moves).
pub fn acknowledge(
    store: &impl KeyValue,
    la: &OdsCode,
    up_to: u64,
) -> Result<Acknowledged, ApiError> {
    let head = keys::alert_feed(la).head(store)?;
    if up_to > head {
        return Err(ApiError::invalid(
            "up_to",
            format!("cannot acknowledge alert {up_to}: the feed holds {head} alerts"),
        ));
    }
    update_json(
        store,
        &keys::alerts_acknowledged(la),
        |current: Option<Acknowledged>| {
            let current = current.unwrap_or_default();
            Ok(if up_to > current.up_to {
                let new = Acknowledged { up_to };
                Update::Write(new, new)
            } else {
                Update::Keep(current)
            })
        },
    )
}

/// An alert with its feed position reserved, ready for the caller's single `set-many`.
pub struct PreparedAlert {
    pub seq: u64,
    pub write: (String, Vec<u8>),
}

/// Reserves the next position on the LA's feed (one `increment`) for `alert`.
pub fn prepare_alert(
    store: &impl KeyValue,
    la: &OdsCode,
    alert: Alert,
    now: OffsetDateTime,
) -> Result<PreparedAlert, ApiError> {
    let feed = keys::alert_feed(la);
    let seq = feed.reserve(store, 1)?;
    Ok(PreparedAlert {
        seq,
        write: feed.entry(seq, now, alert),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-11-25 10:00 UTC);

    fn missing(case: &str) -> Alert {
        Alert::MissingNhsNumber {
            case: PlanRef {
                plan_type: PlanType::ChildProtectionPlan,
                case_ref: CaseRef::parse(case).unwrap(),
            },
        }
    }

    #[test]
    fn feeds_are_separate_per_la_and_resume_from_acknowledgement() {
        let store = MemoryStore::new();
        let (a, b) = (
            OdsCode::parse("LAA").unwrap(),
            OdsCode::parse("LAB").unwrap(),
        );
        for (la, alert) in [
            (&a, missing("A1")),
            (&a, missing("A2")),
            (&b, missing("B1")),
        ] {
            let prepared = prepare_alert(&store, la, alert, NOW).unwrap();
            store.set_many(&[prepared.write]).unwrap();
        }

        let page = read_feed::<Alert>(&store, &a, None, 10, NOW, Duration::seconds(60)).unwrap();
        assert_eq!(
            page.entries
                .iter()
                .map(|e| e.item.clone())
                .collect::<Vec<_>>(),
            [missing("A1"), missing("A2")]
        );
        let page_b = read_feed::<Alert>(&store, &b, None, 10, NOW, Duration::seconds(60)).unwrap();
        assert_eq!(page_b.entries.len(), 1);

        acknowledge(&store, &a, 1).unwrap();
        let page = read_feed::<Alert>(&store, &a, None, 10, NOW, Duration::seconds(60)).unwrap();
        assert_eq!(page.entries.len(), 1);
        assert_eq!(page.entries[0].seq, 2);
        // An explicit cursor still re-reads what was acknowledged.
        let page = read_feed::<Alert>(&store, &a, Some(0), 10, NOW, Duration::seconds(60)).unwrap();
        assert_eq!(page.entries.len(), 2);
        // A cursor past the end would skip alerts still to come: refused.
        let err =
            read_feed::<Alert>(&store, &a, Some(3), 10, NOW, Duration::seconds(60)).unwrap_err();
        assert_eq!(
            (err.status.as_u16(), err.field.as_deref()),
            (400, Some("after"))
        );
    }

    #[test]
    fn acknowledgement_never_moves_back_or_past_the_head() {
        let store = MemoryStore::new();
        let la = OdsCode::parse("LAA").unwrap();
        for alert in [missing("A1"), missing("A2")] {
            store
                .set_many(&[prepare_alert(&store, &la, alert, NOW).unwrap().write])
                .unwrap();
        }
        assert_eq!(acknowledge(&store, &la, 2).unwrap().up_to, 2);
        assert_eq!(acknowledge(&store, &la, 1).unwrap().up_to, 2);
        let err = acknowledge(&store, &la, 3).unwrap_err();
        assert_eq!(
            (err.status.as_u16(), err.field.as_deref()),
            (400, Some("up_to"))
        );
    }

    #[test]
    fn alerts_serialise_with_a_kind_tag() {
        let json = serde_json::to_value(missing("A1")).unwrap();
        assert_eq!(json["kind"], "missing_nhs_number");
        assert_eq!(json["case"]["case_ref"], "A1");
    }
}
