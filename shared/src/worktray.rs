//! An LA's worktray: every case it holds that is still waiting for an NHS number, oldest first,
//! with the date the number is due and whether that date has passed.
//!
//! The worktray is read from the LA's alert feed, which already holds, in the order the cases
//! were recorded, a `missing_nhs_number` alert for each one; a case belongs on the worktray while
//! its record (`case/{la}/{case ref}`) is still open with that alert. So submissions write
//! nothing for it. A read looks through at most [`SCAN_POSITIONS`] feed positions (one
//! `get-many`) and the cases they name (one more), whatever the history; a page may then hold
//! fewer cases than asked for, with `more` set. Reads from the start begin at a hint
//! (`worktray-start/{la}`): the position before which the feed holds no open case, moved on by
//! readers as cases are resolved, so that the closed past is not read again and again.

use crate::alerts::Alert;
use crate::error::ApiError;
use crate::identifiers::{CaseRef, OdsCode};
use crate::keys;
use crate::log::Page;
use crate::plan::{PlanType, Stage, iso_date};
use crate::store::{KeyValue, decode, encode, get_json};
use crate::submit::PendingCase;
use serde::{Deserialize, Serialize};
use time::{Date, Duration, OffsetDateTime};

/// The most cases one read returns.
pub const MAX_PAGE: u64 = 500;

/// How many feed positions one read looks through at most.
pub const SCAN_POSITIONS: u64 = 500;

/// One case waiting for its NHS number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WaitingCase {
    pub case_ref: CaseRef,
    pub plan_type: PlanType,
    pub stage: Option<Stage>,
    /// When the case was first recorded without an NHS number.
    #[serde(with = "time::serde::rfc3339")]
    pub recorded_at: OffsetDateTime,
    /// The plan's start date: the ICPC, or the day the child became looked after.
    #[serde(with = "iso_date")]
    pub due_date: Date,
    /// Whole days from the day it was recorded to today.
    pub days_waiting: i64,
    /// Today is after the due date.
    pub overdue: bool,
}

/// A page of the worktray. `next_cursor` is where the next page starts, given only when `more`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WorktrayPage {
    pub cases: Vec<WaitingCase>,
    pub next_cursor: Option<u64>,
    pub more: bool,
}

/// Where reads from the start begin: no open case at or before `after`.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
struct WorktrayStart {
    after: u64,
}

/// Up to `limit` of the LA's waiting cases after the cursor `after` (from the start when
/// `None`), oldest first. Calls: the feed's head (`get-many`), the start hint (`get`, only
/// without `after`), the feed positions and the cases they name (two `get-many`), and a
/// `set-many` of the hint when it moves on.
pub fn read_worktray(
    store: &impl KeyValue,
    la: &OdsCode,
    after: Option<u64>,
    limit: u64,
    now: OffsetDateTime,
    gap_grace: Duration,
) -> Result<WorktrayPage, ApiError> {
    let feed = keys::alert_feed(la);
    let head = feed.head(store)?;
    let cursor = match after {
        Some(cursor) => cursor,
        None => {
            get_json::<WorktrayStart>(store, &keys::worktray_start(la))?
                .unwrap_or_default()
                .after
        }
    };
    if cursor > head {
        return Err(ApiError::invalid(
            "after",
            format!(
                "cursor {cursor} is past the end of the worktray ({head}); use a next_cursor the worktray returned"
            ),
        ));
    }
    let scanned: Page<Alert> =
        feed.read_after_head(store, head, cursor, SCAN_POSITIONS, now, gap_grace)?;
    let mut open = open_cases(store, la, &scanned, now.date())?;
    if after.is_none() {
        let closed_up_to = open.first().map_or(scanned.next_cursor, |(seq, _)| seq - 1);
        if closed_up_to > cursor {
            let hint = WorktrayStart {
                after: closed_up_to,
            };
            store.set_many(&[(keys::worktray_start(la), encode(&hint))])?;
        }
    }
    let limit = usize::try_from(limit.clamp(1, MAX_PAGE)).unwrap_or(1);
    let (next_cursor, more) = if open.len() > limit {
        open.truncate(limit);
        (open.last().map_or(cursor, |(seq, _)| *seq), true)
    } else {
        (scanned.next_cursor, scanned.more)
    };
    Ok(WorktrayPage {
        cases: open.into_iter().map(|(_, case)| case).collect(),
        next_cursor: more.then_some(next_cursor),
        more,
    })
}

/// The cases among the scanned feed entries that are still open with that entry's alert, with
/// their feed positions, in feed order (one `get-many`, none when no entry names a case).
fn open_cases(
    store: &impl KeyValue,
    la: &OdsCode,
    scanned: &Page<Alert>,
    today: Date,
) -> Result<Vec<(u64, WaitingCase)>, ApiError> {
    let missing: Vec<(u64, OffsetDateTime, &CaseRef)> = scanned
        .entries
        .iter()
        .filter_map(|entry| match &entry.item {
            Alert::MissingNhsNumber { case } => Some((entry.seq, entry.written_at, &case.case_ref)),
            _ => None,
        })
        .collect();
    if missing.is_empty() {
        return Ok(vec![]);
    }
    let case_keys: Vec<String> = missing
        .iter()
        .map(|(_, _, case_ref)| keys::pending_case(la, case_ref))
        .collect();
    let mut open = Vec::new();
    for ((seq, recorded_at, _), (key, value)) in missing
        .into_iter()
        .zip(case_keys.iter().zip(store.get_many(&case_keys)?))
    {
        let Some(bytes) = value else { continue };
        if let PendingCase::Open {
            plan, alert, stage, ..
        } = decode(key, &bytes)?
            && alert == seq
        {
            open.push((
                seq,
                WaitingCase {
                    case_ref: plan.case_ref,
                    plan_type: plan.plan_type,
                    stage,
                    recorded_at,
                    due_date: plan.start_date,
                    days_waiting: (today - recorded_at.date()).whole_days().max(0),
                    overdue: today > plan.start_date,
                },
            ));
        }
    }
    Ok(open)
}
