//! LA → CP-IS: creating, updating, ending and withdrawing plans, single or in batches, and cases
//! whose NHS number is not yet known.
//!
//! Every step is idempotent and each write is atomic, so a request that fails half-way can be
//! sent again: it finishes what was left and changes nothing that was already done.

use crate::alerts::{Alert, PlanRef, Resolution, prepare_alert};
use crate::error::ApiError;
use crate::identifiers::{CaseRef, DisplayName, OdsCode, PhoneNumber};
use crate::keys;
use crate::nhs_number::NhsNumber;
use crate::plan::{Plan, PlanType, ResponsibleLa, Stage, iso_date};
use crate::records::{self, Change};
use crate::store::{HeldWrites, KeyValue, encode, get_json};
use crate::tally::{TallyChange, check_due_within_horizon, counted_due};
use serde::{Deserialize, Serialize};
use time::{Date, OffsetDateTime};

/// The most records one batch may hold.
pub const MAX_BATCH_RECORDS: usize = 500;

/// A record as an LA sends it. Every field is optional here so that a missing one is reported
/// by name; [`RecordInput::validate`] turns it into a [`Submission`].
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordInput {
    pub action: Option<String>,
    pub nhs_number: Option<String>,
    pub case_ref: Option<String>,
    pub plan_type: Option<String>,
    pub start_date: Option<String>,
    pub end_date: Option<String>,
    pub delete_date: Option<String>,
    /// Where in the process the case was recorded: `s47_enquiry`, `icpc` or `looked_after`.
    pub stage: Option<String>,
    pub local_authority: Option<LocalAuthorityInput>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalAuthorityInput {
    pub ods_code: Option<String>,
    pub name: Option<String>,
    pub office_hours_phone: Option<String>,
    pub emergency_duty_team_phone: Option<String>,
}

/// A checked submission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Submission {
    /// Create or replace the LA's plan of this type for the child; without an NHS number the
    /// case is held back, unshared, until one is supplied.
    Upsert {
        nhs_number: Option<NhsNumber>,
        plan: Plan,
        /// Kept only while the case waits for its NHS number.
        stage: Option<Stage>,
    },
    /// Remove the LA's plan of this type for the child.
    WithdrawPlan {
        nhs_number: NhsNumber,
        plan_type: PlanType,
    },
    /// Remove a case that is still waiting for its NHS number.
    WithdrawCase { case_ref: CaseRef },
}

/// What a submission did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Applied {
    Created,
    Updated,
    Unchanged,
    Withdrawn,
    /// Stored without an NHS number: not shared, and on the LA's alert feed until one arrives.
    HeldForNhsNumber,
}

/// A case the LA submitted without an NHS number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum PendingCase {
    Open {
        plan: Plan,
        /// The feed position of its `missing_nhs_number` alert; also its place in the worktray.
        alert: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stage: Option<Stage>,
        /// The due date it is counted under as not yet due, if it was due today or later when
        /// recorded or corrected (see [`crate::tally`]).
        #[serde(
            default,
            with = "iso_date::option",
            skip_serializing_if = "Option::is_none"
        )]
        counted_due: Option<Date>,
    },
    Resolved {
        nhs_number: NhsNumber,
    },
    Withdrawn,
}

fn required<'a>(value: &'a Option<String>, field: &str) -> Result<&'a str, ApiError> {
    value
        .as_deref()
        .ok_or_else(|| ApiError::invalid(field, format!("{field} is required")))
}

fn parse_field<T, E: ToString>(
    value: &str,
    field: &str,
    parse: impl Fn(&str) -> Result<T, E>,
) -> Result<T, ApiError> {
    parse(value).map_err(|e| ApiError::invalid(field, e))
}

fn parse_date(value: &str, field: &str) -> Result<Date, ApiError> {
    Date::parse(value, crate::plan::ISO_DATE).map_err(|_| {
        ApiError::invalid(
            field,
            format!("{field} must be a date as YYYY-MM-DD; found {value:?}"),
        )
    })
}

fn parse_nhs(value: &str) -> Result<NhsNumber, ApiError> {
    NhsNumber::parse(value).map_err(|e| ApiError::invalid_nhs_number("nhs_number", &e))
}

impl RecordInput {
    /// Checks every field, and that the LA submits only for itself; `today` bounds how far
    /// ahead a case without NHS number may be due.
    pub fn validate(&self, caller: &OdsCode, today: Date) -> Result<Submission, ApiError> {
        let plan_type = |field| {
            parse_field(
                required(&self.plan_type, field)?,
                field,
                PlanType::from_snomed_code,
            )
        };
        let nhs_number = self
            .nhs_number
            .as_deref()
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(parse_nhs)
            .transpose()?;
        match self.action.as_deref().unwrap_or("upsert") {
            "upsert" => {}
            "withdraw" => {
                return match nhs_number {
                    Some(nhs_number) => Ok(Submission::WithdrawPlan {
                        nhs_number,
                        plan_type: plan_type("plan_type")?,
                    }),
                    None => Ok(Submission::WithdrawCase {
                        case_ref: parse_field(
                            required(&self.case_ref, "case_ref")?,
                            "case_ref",
                            CaseRef::parse,
                        )?,
                    }),
                };
            }
            other => {
                return Err(ApiError::invalid(
                    "action",
                    format!("action must be 'upsert' or 'withdraw'; found {other:?}"),
                ));
            }
        }
        let la = self
            .local_authority
            .as_ref()
            .ok_or_else(|| ApiError::invalid("local_authority", "local_authority is required"))?;
        let ods_code = parse_field(
            required(&la.ods_code, "local_authority.ods_code")?,
            "local_authority.ods_code",
            OdsCode::parse,
        )?;
        if &ods_code != caller {
            return Err(ApiError::forbidden(format!(
                "local_authority.ods_code {ods_code} is not the organisation of this credential ({caller})"
            ))
            .with_field("local_authority.ods_code"));
        }
        let plan = Plan {
            plan_type: plan_type("plan_type")?,
            case_ref: parse_field(
                required(&self.case_ref, "case_ref")?,
                "case_ref",
                CaseRef::parse,
            )?,
            start_date: parse_date(required(&self.start_date, "start_date")?, "start_date")?,
            end_date: self
                .end_date
                .as_deref()
                .map(|d| parse_date(d, "end_date"))
                .transpose()?,
            delete_date: self
                .delete_date
                .as_deref()
                .map(|d| parse_date(d, "delete_date"))
                .transpose()?,
            responsible_la: ResponsibleLa {
                ods_code,
                name: parse_field(
                    required(&la.name, "local_authority.name")?,
                    "local_authority.name",
                    DisplayName::parse,
                )?,
                office_hours_phone: parse_field(
                    required(&la.office_hours_phone, "local_authority.office_hours_phone")?,
                    "local_authority.office_hours_phone",
                    PhoneNumber::parse,
                )?,
                emergency_duty_team_phone: parse_field(
                    required(
                        &la.emergency_duty_team_phone,
                        "local_authority.emergency_duty_team_phone",
                    )?,
                    "local_authority.emergency_duty_team_phone",
                    PhoneNumber::parse,
                )?,
            },
        };
        plan.check_dates()
            .map_err(|(field, e)| ApiError::invalid(field, e))?;
        if nhs_number.is_none() {
            check_due_within_horizon(plan.start_date, today)
                .map_err(|e| ApiError::invalid("start_date", e))?;
        }
        let stage = self
            .stage
            .as_deref()
            .map(|stage| parse_field(stage, "stage", Stage::parse))
            .transpose()?;
        Ok(Submission::Upsert {
            nhs_number,
            plan,
            stage,
        })
    }
}

/// Applies one checked submission for the LA `la`, and then its change to the LA's counts.
pub fn apply(
    store: &impl KeyValue,
    la: &OdsCode,
    submission: Submission,
    now: OffsetDateTime,
) -> Result<Applied, ApiError> {
    let mut tally = TallyChange::default();
    let applied = apply_counted(store, la, submission, now, &mut tally);
    settle(store, la, &tally, applied)
}

/// Applies the counts' change of what a request wrote, even when it failed after writing some
/// of it, so that the counts follow the records; the request's own error comes first.
fn settle<T>(
    store: &impl KeyValue,
    la: &OdsCode,
    tally: &TallyChange,
    result: Result<T, ApiError>,
) -> Result<T, ApiError> {
    let counted = tally.apply(store, la);
    let value = result?;
    counted?;
    Ok(value)
}

/// Applies one checked submission and notes in `tally` how it changed the LA's counts.
fn apply_counted(
    store: &impl KeyValue,
    la: &OdsCode,
    submission: Submission,
    now: OffsetDateTime,
    tally: &mut TallyChange,
) -> Result<Applied, ApiError> {
    match submission {
        Submission::Upsert {
            nhs_number: Some(nhs),
            plan,
            stage: _,
        } => {
            let applied = match records::upsert_plan(store, &nhs, &plan, now)? {
                Change::Created => {
                    tally.plan_created(plan.plan_type);
                    Applied::Created
                }
                Change::Updated => Applied::Updated,
                Change::Unchanged => Applied::Unchanged,
            };
            resolve_pending_case(store, la, &plan.case_ref, Some(&nhs), now, tally)?;
            Ok(applied)
        }
        Submission::Upsert {
            nhs_number: None,
            plan,
            stage,
        } => hold_for_nhs_number(store, la, plan, stage, now, tally),
        Submission::WithdrawPlan {
            nhs_number,
            plan_type,
        } => Ok(
            if records::withdraw_plan(store, &nhs_number, la, plan_type)? {
                tally.plan_withdrawn(plan_type);
                Applied::Withdrawn
            } else {
                // Already gone: re-sending a withdrawal is harmless.
                Applied::Unchanged
            },
        ),
        Submission::WithdrawCase { case_ref } => Ok(
            if resolve_pending_case(store, la, &case_ref, None, now, tally)? {
                Applied::Withdrawn
            } else {
                Applied::Unchanged
            },
        ),
    }
}

/// Stores a case without an NHS number and raises its data-quality alert, in one `set-many`.
fn hold_for_nhs_number(
    store: &impl KeyValue,
    la: &OdsCode,
    plan: Plan,
    stage: Option<Stage>,
    now: OffsetDateTime,
    tally: &mut TallyChange,
) -> Result<Applied, ApiError> {
    let key = keys::pending_case(la, &plan.case_ref);
    let existing: Option<PendingCase> = get_json(store, &key)?;
    let due = counted_due(plan.start_date, now.date());
    if let Some(PendingCase::Open {
        plan: held,
        alert,
        stage: held_stage,
        counted_due: held_due,
    }) = existing
    {
        if held == plan && held_stage == stage {
            return Ok(Applied::HeldForNhsNumber);
        }
        // Corrected details of a case already alerted: no second alert, same place in the
        // worktray; counted under its new due date if that is still ahead.
        let due = if held.start_date == plan.start_date {
            held_due
        } else {
            due
        };
        let corrected = PendingCase::Open {
            plan,
            alert,
            stage,
            counted_due: due,
        };
        store.set_many(&[(key, encode(&corrected))])?;
        tally.move_due(held_due, due);
        return Ok(Applied::HeldForNhsNumber);
    }
    let alert = Alert::MissingNhsNumber {
        case: PlanRef {
            plan_type: plan.plan_type,
            case_ref: plan.case_ref.clone(),
        },
    };
    let prepared = prepare_alert(store, la, alert, now)?;
    let case = (
        key,
        encode(&PendingCase::Open {
            plan,
            alert: prepared.seq,
            stage,
            counted_due: due,
        }),
    );
    store.set_many(&[prepared.write, case])?;
    tally.case_opened(due);
    Ok(Applied::HeldForNhsNumber)
}

/// Closes an open pending case (its NHS number arrived, or it was withdrawn) and resolves its
/// alert, in one `set-many`. Returns whether there was an open case.
fn resolve_pending_case(
    store: &impl KeyValue,
    la: &OdsCode,
    case_ref: &CaseRef,
    nhs: Option<&NhsNumber>,
    now: OffsetDateTime,
    tally: &mut TallyChange,
) -> Result<bool, ApiError> {
    let key = keys::pending_case(la, case_ref);
    let Some(PendingCase::Open {
        plan,
        alert,
        counted_due,
        ..
    }) = get_json(store, &key)?
    else {
        return Ok(false);
    };
    let (status, resolution) = match nhs {
        Some(nhs) => (
            PendingCase::Resolved {
                nhs_number: nhs.clone(),
            },
            Resolution::NhsNumberSupplied,
        ),
        None => (PendingCase::Withdrawn, Resolution::CaseWithdrawn),
    };
    let resolved = Alert::MissingNhsNumberResolved {
        case: PlanRef {
            plan_type: plan.plan_type,
            case_ref: case_ref.clone(),
        },
        resolves: alert,
        resolution,
    };
    let prepared = prepare_alert(store, la, resolved, now)?;
    store.set_many(&[prepared.write, (key, encode(&status))])?;
    tally.case_closed(counted_due);
    Ok(true)
}

/// The result for one record of a batch.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum RecordResult {
    Accepted { index: usize, applied: Applied },
    Rejected { index: usize, error: ApiError },
}

/// The result for a whole batch, as the national service reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BatchResult {
    AllAccepted,
    PartlyAccepted,
    NoneAccepted,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BatchOutcome {
    pub batch_result: BatchResult,
    pub accepted: usize,
    pub rejected: usize,
    pub results: Vec<RecordResult>,
}

/// A batch body: `{"records": [ ... ]}`. Records stay raw JSON so that one malformed record is
/// rejected on its own instead of failing the batch.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchInput {
    pub records: Vec<serde_json::Value>,
}

/// Checks and applies each record in turn. A record that fails its checks is rejected with its
/// reason and the rest go on; a store failure stops the batch (the caller answers 503), and
/// since every record is idempotent the LA simply sends the whole batch again.
///
/// The records' plain writes are held and made together in one `set-many` at the end
/// ([`HeldWrites`]); only the atomic reservations (a new child's listing, an alert's place in
/// the feed) and withdrawals reach the store as each record asks. A failure leaves out the
/// records whose writes were still held, whole. The batch's change to the LA's counts, of the
/// records whose writes landed, is applied once, at its end (also when it stops).
pub fn apply_batch(
    store: &impl KeyValue,
    la: &OdsCode,
    batch: BatchInput,
    now: OffsetDateTime,
) -> Result<BatchOutcome, ApiError> {
    if batch.records.is_empty() {
        return Err(ApiError::invalid("records", "the batch holds no records"));
    }
    if batch.records.len() > MAX_BATCH_RECORDS {
        return Err(ApiError::invalid(
            "records",
            format!(
                "a batch may hold at most {MAX_BATCH_RECORDS} records; this one holds {}",
                batch.records.len()
            ),
        ));
    }
    let held = HeldWrites::new(store);
    let mut tally = BatchTally::default();
    let results = apply_records(&held, la, batch.records, now, &mut tally).and_then(|results| {
        let flushes = held.flushes();
        held.flush()?;
        tally.after_call(&held, flushes);
        Ok(results)
    });
    let results = settle(store, la, &tally.written, results)?;
    let accepted = results
        .iter()
        .filter(|r| matches!(r, RecordResult::Accepted { .. }))
        .count();
    let rejected = results.len() - accepted;
    let batch_result = match (accepted, rejected) {
        (_, 0) => BatchResult::AllAccepted,
        (0, _) => BatchResult::NoneAccepted,
        _ => BatchResult::PartlyAccepted,
    };
    Ok(BatchOutcome {
        batch_result,
        accepted,
        rejected,
        results,
    })
}

/// A batch's change to the LA's counts, split by whether the records' writes have landed.
#[derive(Default)]
struct BatchTally {
    written: TallyChange,
    held: TallyChange,
}

impl BatchTally {
    /// After a call on `store` that began when it had flushed `flushes` times: what was held
    /// before it has landed if it flushed.
    fn after_call<S: KeyValue>(&mut self, store: &HeldWrites<S>, flushes: u64) {
        if store.flushes() != flushes {
            self.written.absorb(std::mem::take(&mut self.held));
        }
    }

    /// A record's change: landed if nothing is held now (its writes went straight to the store,
    /// or it wrote nothing), else held with its writes. Also for a record that failed: its
    /// change notes only what it did before failing, and a failure drops what is held.
    fn record<S: KeyValue>(&mut self, store: &HeldWrites<S>, change: TallyChange) {
        if store.is_empty() {
            self.written.absorb(change);
        } else {
            self.held.absorb(change);
        }
    }
}

/// Checks and applies each record in turn, noting the counts' change in `tally`.
fn apply_records<S: KeyValue>(
    store: &HeldWrites<S>,
    la: &OdsCode,
    records: Vec<serde_json::Value>,
    now: OffsetDateTime,
    tally: &mut BatchTally,
) -> Result<Vec<RecordResult>, ApiError> {
    let mut results = Vec::with_capacity(records.len());
    for (index, raw) in records.into_iter().enumerate() {
        let checked = serde_json::from_value::<RecordInput>(raw)
            .map_err(|e| {
                ApiError::new(
                    http::StatusCode::BAD_REQUEST,
                    "malformed_record",
                    e.to_string(),
                )
            })
            .and_then(|input| input.validate(la, now.date()));
        results.push(match checked {
            Ok(submission) => {
                let flushes = store.flushes();
                let mut change = TallyChange::default();
                let applied = apply_counted(store, la, submission, now, &mut change);
                tally.after_call(store, flushes);
                tally.record(store, change);
                RecordResult::Accepted {
                    index,
                    applied: applied?,
                }
            }
            Err(error) => RecordResult::Rejected {
                index,
                error: prefix_field(error, index),
            },
        });
    }
    Ok(results)
}

/// Names a rejected record's field by its place in the batch: `records[3].nhs_number`.
fn prefix_field(mut error: ApiError, index: usize) -> ApiError {
    error.field = Some(match error.field.take() {
        Some(field) => format!("records[{index}].{field}"),
        None => format!("records[{index}]"),
    });
    error
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::{Alert, read_feed};
    use crate::plan::Stage;
    use crate::store::MemoryStore;
    use serde_json::json;
    use time::Duration;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-11-25 10:00 UTC);

    fn la() -> OdsCode {
        OdsCode::parse("LA1").unwrap()
    }

    pub(crate) fn record(nhs: Option<&str>, case: &str, plan_type: &str) -> serde_json::Value {
        json!({
            "nhs_number": nhs,
            "case_ref": case,
            "plan_type": plan_type,
            "start_date": "2026-01-10",
            "local_authority": {
                "ods_code": "LA1",
                "name": "Leeds City Council",
                "office_hours_phone": "0113 222 4401",
                "emergency_duty_team_phone": "0113 535 0600"
            }
        })
    }

    fn submit(store: &MemoryStore, value: serde_json::Value) -> Result<Applied, ApiError> {
        let input: RecordInput = serde_json::from_value(value).unwrap();
        apply(store, &la(), input.validate(&la(), NOW.date())?, NOW)
    }

    fn child(store: &MemoryStore, nhs: &str) -> crate::plan::ChildRecord {
        records::read_child(store, &NhsNumber::parse(nhs).unwrap()).unwrap()
    }

    fn feed(store: &MemoryStore) -> Vec<Alert> {
        // Read a while later, so that a gap left by a failed writer has been given up on.
        let later = NOW + Duration::minutes(5);
        let page = read_feed(store, &la(), Some(0), 100, later, Duration::seconds(60)).unwrap();
        page.entries.into_iter().map(|e| e.item).collect()
    }

    const CPP: &str = "342191000000101";
    const LAC: &str = "764841000000100";

    #[test]
    fn resending_the_same_record_changes_nothing() {
        let store = MemoryStore::new();
        assert_eq!(
            submit(&store, record(Some("9434765919"), "C1", CPP)).unwrap(),
            Applied::Created
        );
        let before = store.snapshot();
        store.take_calls();
        assert_eq!(
            submit(&store, record(Some("9434765919"), "C1", CPP)).unwrap(),
            Applied::Unchanged
        );
        assert_eq!(store.snapshot(), before);
        assert!(
            !store.take_calls().iter().any(|c| c.writes()),
            "an unchanged record must not write"
        );
        assert_eq!(child(&store, "9434765919").plans.len(), 1);
    }

    #[test]
    fn a_new_end_date_updates_the_same_plan() {
        let store = MemoryStore::new();
        submit(&store, record(Some("9434765919"), "C1", CPP)).unwrap();
        let mut ended = record(Some("9434765919"), "C1", CPP);
        ended["end_date"] = json!("2026-06-01");
        assert_eq!(submit(&store, ended).unwrap(), Applied::Updated);
        let plans = child(&store, "9434765919").plans;
        assert_eq!(plans.len(), 1);
        assert_eq!(plans[0].end_date.unwrap().to_string(), "2026-06-01");
    }

    #[test]
    fn one_child_may_hold_plans_of_several_types_and_las() {
        let store = MemoryStore::new();
        submit(&store, record(Some("9434765919"), "C1", CPP)).unwrap();
        submit(&store, record(Some("9434765919"), "C2", LAC)).unwrap();
        let other = OdsCode::parse("LA2").unwrap();
        let mut r = record(Some("9434765919"), "X9", CPP);
        r["local_authority"]["ods_code"] = json!("LA2");
        let input: RecordInput = serde_json::from_value(r).unwrap();
        apply(
            &store,
            &other,
            input.validate(&other, NOW.date()).unwrap(),
            NOW,
        )
        .unwrap();
        assert_eq!(child(&store, "9434765919").plans.len(), 3);
    }

    #[test]
    fn withdrawal_removes_only_the_las_own_plan_and_is_idempotent() {
        let store = MemoryStore::new();
        submit(&store, record(Some("9434765919"), "C1", CPP)).unwrap();
        let other = OdsCode::parse("LA2").unwrap();
        let nhs = NhsNumber::parse("9434765919").unwrap();
        let w = Submission::WithdrawPlan {
            nhs_number: nhs.clone(),
            plan_type: PlanType::ChildProtectionPlan,
        };
        assert_eq!(
            apply(&store, &other, w.clone(), NOW).unwrap(),
            Applied::Unchanged
        );
        assert_eq!(child(&store, "9434765919").plans.len(), 1);
        assert_eq!(
            apply(&store, &la(), w.clone(), NOW).unwrap(),
            Applied::Withdrawn
        );
        assert_eq!(apply(&store, &la(), w, NOW).unwrap(), Applied::Unchanged);
        assert!(child(&store, "9434765919").plans.is_empty());
    }

    #[test]
    fn an_la_cannot_submit_for_another_la() {
        let mut r = record(Some("9434765919"), "C1", CPP);
        r["local_authority"]["ods_code"] = json!("LA2");
        let err = submit(&MemoryStore::new(), r).unwrap_err();
        assert_eq!(err.status, 403);
        assert_eq!(err.field.as_deref(), Some("local_authority.ods_code"));
    }

    #[test]
    fn bad_fields_are_named() {
        let cases: Vec<(serde_json::Value, &str, &str)> = vec![
            (
                record(Some("9434765918"), "C1", CPP),
                "nhs_number",
                "invalid_nhs_number",
            ),
            (
                record(Some("9434765919"), "C1", "1234"),
                "plan_type",
                "invalid_field",
            ),
            (
                record(Some("9434765919"), "a/b", CPP),
                "case_ref",
                "invalid_field",
            ),
            (
                {
                    let mut r = record(Some("9434765919"), "C1", CPP);
                    r["end_date"] = json!("2026-01-01");
                    r
                },
                "end_date",
                "invalid_field",
            ),
            (
                {
                    let mut r = record(Some("9434765919"), "C1", CPP);
                    r["start_date"] = json!("10/01/2026");
                    r
                },
                "start_date",
                "invalid_field",
            ),
            (
                {
                    let mut r = record(Some("9434765919"), "C1", CPP);
                    r.as_object_mut().unwrap().remove("start_date");
                    r
                },
                "start_date",
                "invalid_field",
            ),
            (
                {
                    let mut r = record(Some("9434765919"), "C1", CPP);
                    r["local_authority"]["emergency_duty_team_phone"] = json!("none");
                    r
                },
                "local_authority.emergency_duty_team_phone",
                "invalid_field",
            ),
            (
                {
                    let mut r = record(Some("9434765919"), "C1", CPP);
                    r["action"] = json!("delete");
                    r
                },
                "action",
                "invalid_field",
            ),
        ];
        for (value, field, code) in cases {
            let err = submit(&MemoryStore::new(), value).unwrap_err();
            assert_eq!(
                (err.field.as_deref(), err.code, err.status.as_u16()),
                (Some(field), code, 400),
                "{err:?}"
            );
        }
    }

    #[test]
    fn a_case_without_nhs_number_is_held_alerted_and_resolved_when_the_number_arrives() {
        let store = MemoryStore::new();
        assert_eq!(
            submit(&store, record(None, "C7", CPP)).unwrap(),
            Applied::HeldForNhsNumber
        );
        // Re-sent: no second alert.
        assert_eq!(
            submit(&store, record(None, "C7", CPP)).unwrap(),
            Applied::HeldForNhsNumber
        );
        let alerts = feed(&store);
        assert_eq!(alerts.len(), 1);
        assert!(
            matches!(&alerts[0], Alert::MissingNhsNumber { case } if case.case_ref.as_str() == "C7")
        );
        // Not shared: no child record anywhere.
        assert!(!store.snapshot().keys().any(|k| k.starts_with("plan/")));

        assert_eq!(
            submit(&store, record(Some("9434765919"), "C7", CPP)).unwrap(),
            Applied::Created
        );
        assert_eq!(child(&store, "9434765919").plans.len(), 1);
        let alerts = feed(&store);
        assert_eq!(alerts.len(), 2);
        assert!(matches!(
            &alerts[1],
            Alert::MissingNhsNumberResolved {
                resolves: 1,
                resolution: Resolution::NhsNumberSupplied,
                ..
            }
        ));
        // Re-sending with the number resolves nothing twice.
        submit(&store, record(Some("9434765919"), "C7", CPP)).unwrap();
        assert_eq!(feed(&store).len(), 2);
    }

    #[test]
    fn withdrawing_a_pending_case_resolves_its_alert() {
        let store = MemoryStore::new();
        submit(&store, record(None, "C8", CPP)).unwrap();
        let w = Submission::WithdrawCase {
            case_ref: CaseRef::parse("C8").unwrap(),
        };
        assert_eq!(
            apply(&store, &la(), w.clone(), NOW).unwrap(),
            Applied::Withdrawn
        );
        assert_eq!(apply(&store, &la(), w, NOW).unwrap(), Applied::Unchanged);
        let alerts = feed(&store);
        assert!(matches!(
            &alerts[1],
            Alert::MissingNhsNumberResolved {
                resolution: Resolution::CaseWithdrawn,
                ..
            }
        ));
    }

    #[test]
    fn a_failed_write_leaves_nothing_visible_and_a_resend_completes_it() {
        // The held case's alert and case record go in one set-many: fail it, and neither exists.
        let store = MemoryStore::new();
        store.fail_nth_call(3); // get, increment, then set-many fails
        assert_eq!(
            submit(&store, record(None, "C9", CPP)).unwrap_err().status,
            503
        );
        assert!(feed(&store).is_empty());
        assert!(!store.snapshot().keys().any(|k| k.starts_with("case/")));
        submit(&store, record(None, "C9", CPP)).unwrap();
        assert_eq!(feed(&store).len(), 1);
    }

    #[test]
    fn batch_reports_each_record_and_the_whole() {
        let store = MemoryStore::new();
        let batch = BatchInput {
            records: vec![
                record(Some("9434765919"), "C1", CPP),
                record(Some("9434765918"), "C2", CPP),
                json!({"nhs_number": 5}),
                record(Some("9876543210"), "C3", LAC),
            ],
        };
        let out = apply_batch(&store, &la(), batch, NOW).unwrap();
        assert_eq!(out.batch_result, BatchResult::PartlyAccepted);
        assert_eq!((out.accepted, out.rejected), (2, 2));
        match &out.results[1] {
            RecordResult::Rejected { index: 1, error } => {
                assert_eq!(error.field.as_deref(), Some("records[1].nhs_number"));
                assert_eq!(error.code, "invalid_nhs_number");
            }
            other => panic!("{other:?}"),
        }
        assert!(
            matches!(&out.results[2], RecordResult::Rejected { error, .. } if error.code == "malformed_record")
        );

        let none = apply_batch(
            &store,
            &la(),
            BatchInput {
                records: vec![json!({})],
            },
            NOW,
        )
        .unwrap();
        assert_eq!(none.batch_result, BatchResult::NoneAccepted);
        let again = apply_batch(
            &store,
            &la(),
            BatchInput {
                records: vec![record(Some("9434765919"), "C1", CPP)],
            },
            NOW,
        )
        .unwrap();
        assert_eq!(again.batch_result, BatchResult::AllAccepted);
        assert!(matches!(
            again.results[0],
            RecordResult::Accepted {
                applied: Applied::Unchanged,
                ..
            }
        ));
    }

    fn rate(store: &MemoryStore) -> crate::tally::MatchRate {
        crate::tally::tests::rate_of(store, &la(), NOW.date())
    }

    /// (CPP, LAC, UCPP held, waiting, overdue).
    fn counts(store: &MemoryStore) -> (u64, u64, u64, u64, u64) {
        let r = rate(store);
        (
            r.shareable_plans.cpp,
            r.shareable_plans.lac,
            r.shareable_plans.ucpp,
            r.waiting_for_nhs_number,
            r.overdue,
        )
    }

    fn due_in(days: i64, value: serde_json::Value) -> serde_json::Value {
        let mut value = value;
        value["start_date"] = json!((NOW.date() + Duration::days(days)).to_string());
        value
    }

    #[test]
    fn counts_follow_creation_update_withdrawal_and_resolution() {
        let store = MemoryStore::new();
        submit(&store, record(Some("9434765919"), "C1", CPP)).unwrap();
        submit(&store, record(Some("9434765919"), "C2", LAC)).unwrap();
        submit(&store, record(None, "C3", CPP)).unwrap();
        assert_eq!(counts(&store), (1, 1, 0, 1, 1));
        // Re-sent, updated, ended: still one plan each.
        submit(&store, record(Some("9434765919"), "C1", CPP)).unwrap();
        let mut ended = record(Some("9434765919"), "C1", CPP);
        ended["end_date"] = json!("2026-06-01");
        submit(&store, ended).unwrap();
        submit(&store, record(None, "C3", CPP)).unwrap();
        assert_eq!(counts(&store), (1, 1, 0, 1, 1));
        // The waiting case gets its number: one more plan, one fewer waiting.
        submit(&store, record(Some("9876543210"), "C3", CPP)).unwrap();
        assert_eq!(counts(&store), (2, 1, 0, 0, 0));
        assert_eq!(rate(&store).match_rate, Some(1.0));
        // Withdrawals, and withdrawals sent twice.
        let withdraw = Submission::WithdrawPlan {
            nhs_number: NhsNumber::parse("9434765919").unwrap(),
            plan_type: PlanType::LookedAfterChild,
        };
        apply(&store, &la(), withdraw.clone(), NOW).unwrap();
        apply(&store, &la(), withdraw, NOW).unwrap();
        submit(&store, record(None, "C4", LAC)).unwrap();
        let withdraw_case = Submission::WithdrawCase {
            case_ref: CaseRef::parse("C4").unwrap(),
        };
        apply(&store, &la(), withdraw_case.clone(), NOW).unwrap();
        apply(&store, &la(), withdraw_case, NOW).unwrap();
        assert_eq!(counts(&store), (2, 0, 0, 0, 0));
        // A withdrawn case sent again without its number waits again.
        submit(&store, record(None, "C4", LAC)).unwrap();
        assert_eq!(counts(&store), (2, 0, 0, 1, 1));
    }

    #[test]
    fn a_case_due_ahead_is_not_overdue_until_its_due_date_has_passed() {
        let store = MemoryStore::new();
        submit(&store, due_in(10, record(None, "C1", CPP))).unwrap();
        submit(&store, due_in(0, record(None, "C2", LAC))).unwrap();
        assert_eq!(counts(&store), (0, 0, 0, 2, 0));
        let overdue_on = |days| {
            crate::tally::tests::rate_of(&store, &la(), NOW.date() + Duration::days(days)).overdue
        };
        assert_eq!((overdue_on(1), overdue_on(10), overdue_on(11)), (1, 1, 2));
        // Its due date corrected to the past: overdue now; corrected again, due ahead again.
        submit(&store, due_in(-1, record(None, "C1", CPP))).unwrap();
        assert_eq!(counts(&store).4, 1);
        submit(&store, due_in(40, record(None, "C1", CPP))).unwrap();
        assert_eq!((overdue_on(0), overdue_on(41)), (0, 2));
        // Resolved: gone from the count of cases not yet due as well.
        submit(&store, due_in(40, record(Some("9434765919"), "C1", CPP))).unwrap();
        assert_eq!((overdue_on(0), overdue_on(41)), (0, 1));
        assert_eq!(counts(&store).3, 1);
    }

    #[test]
    fn stage_is_checked_and_kept_only_while_the_case_waits() {
        let mut bad = record(None, "C1", CPP);
        bad["stage"] = json!("conference");
        let err = submit(&MemoryStore::new(), bad).unwrap_err();
        assert_eq!(
            (err.status.as_u16(), err.code, err.field.as_deref()),
            (400, "invalid_field", Some("stage"))
        );
        let store = MemoryStore::new();
        let mut held = record(None, "C1", CPP);
        held["stage"] = json!("s47_enquiry");
        submit(&store, held.clone()).unwrap();
        let stage_of = |store: &MemoryStore| match get_json::<PendingCase>(
            store,
            &keys::pending_case(&la(), &CaseRef::parse("C1").unwrap()),
        )
        .unwrap()
        {
            Some(PendingCase::Open { stage, .. }) => stage,
            other => panic!("{other:?}"),
        };
        assert_eq!(stage_of(&store), Some(Stage::S47Enquiry));
        held["stage"] = json!("icpc");
        submit(&store, held).unwrap();
        assert_eq!(stage_of(&store), Some(Stage::Icpc));
        let mut shared = record(Some("9434765919"), "C1", CPP);
        shared["stage"] = json!("icpc");
        submit(&store, shared).unwrap();
        assert!(
            !store
                .snapshot()
                .iter()
                .any(|(k, v)| k.starts_with("plan/") && String::from_utf8_lossy(v).contains("icpc")),
            "a shared plan keeps no stage"
        );
    }

    #[test]
    fn a_case_without_nhs_number_may_be_due_at_most_a_year_ahead() {
        let err = submit(&MemoryStore::new(), due_in(366, record(None, "C1", CPP))).unwrap_err();
        assert_eq!(
            (err.code, err.field.as_deref()),
            ("invalid_field", Some("start_date"))
        );
        submit(&MemoryStore::new(), due_in(365, record(None, "C1", CPP))).unwrap();
        // A plan with its NHS number is not held back, so not limited.
        submit(
            &MemoryStore::new(),
            due_in(366, record(Some("9434765919"), "C1", CPP)),
        )
        .unwrap();
    }

    #[test]
    fn a_batch_changes_the_counts_with_one_write_call() {
        let store = MemoryStore::new();
        let records: Vec<serde_json::Value> = (0..MAX_BATCH_RECORDS as u32)
            .map(|i| match i % 10 {
                0 => record(None, &format!("W{i}"), LAC),
                1..=4 => record(
                    Some(&NhsNumber::test_number(i).to_string()),
                    &format!("L{i}"),
                    LAC,
                ),
                _ => record(
                    Some(&NhsNumber::test_number(i).to_string()),
                    &format!("C{i}"),
                    CPP,
                ),
            })
            .collect();
        let out = apply_batch(&store, &la(), BatchInput { records }, NOW).unwrap();
        assert_eq!(out.batch_result, BatchResult::AllAccepted, "{out:?}");
        let writes = store
            .take_calls()
            .into_iter()
            .filter(|c| c.writes())
            .count();
        // Each new record: an increment (child listing or alert feed); then one set-many for the
        // records of all 500 and one increment for their counts.
        assert_eq!(writes, MAX_BATCH_RECORDS + 2);
        assert_eq!(counts(&store), (250, 200, 0, 50, 50));
    }

    fn new_plans(range: std::ops::Range<u32>) -> Vec<serde_json::Value> {
        range
            .map(|i| {
                record(
                    Some(&NhsNumber::test_number(i).to_string()),
                    &format!("C{i}"),
                    CPP,
                )
            })
            .collect()
    }

    fn plans_stored(store: &MemoryStore) -> usize {
        store
            .snapshot()
            .keys()
            .filter(|k| k.starts_with("plan/"))
            .count()
    }

    #[test]
    fn a_batch_that_fails_half_way_writes_none_of_its_held_records_and_its_resend_all() {
        let store = MemoryStore::new();
        let records = new_plans(0..10);
        // Each new record: get-many, increment, get. Fail the fourth record's increment.
        store.fail_nth_call(3 * 3 + 2);
        let err = apply_batch(
            &store,
            &la(),
            BatchInput {
                records: records.clone(),
            },
            NOW,
        );
        assert_eq!(err.unwrap_err().status, 503);
        assert_eq!((counts(&store).0, plans_stored(&store)), (0, 0));
        apply_batch(&store, &la(), BatchInput { records }, NOW).unwrap();
        assert_eq!((counts(&store).0, plans_stored(&store)), (10, 10));
    }

    #[test]
    fn a_withdrawal_in_a_batch_lands_after_the_records_before_it_and_counts_follow_failures() {
        let store = MemoryStore::new();
        let mut withdraw_first = record(Some(&NhsNumber::test_number(0).to_string()), "C0", CPP);
        withdraw_first["action"] = json!("withdraw");
        // Create 0..3, withdraw 0, create 3..6: the withdrawal must see (and remove) plan 0.
        let mut records = new_plans(0..3);
        records.push(withdraw_first);
        records.extend(new_plans(3..6));
        let out = apply_batch(
            &store,
            &la(),
            BatchInput {
                records: records.clone(),
            },
            NOW,
        )
        .unwrap();
        assert_eq!(out.batch_result, BatchResult::AllAccepted);
        assert!(matches!(
            out.results[3],
            RecordResult::Accepted {
                applied: Applied::Withdrawn,
                ..
            }
        ));
        assert_eq!((counts(&store).0, plans_stored(&store)), (5, 5));

        // Again on a fresh store, failing the last write (the final set-many): what the
        // withdrawal flushed landed and is counted, the rest neither.
        let store = MemoryStore::new();
        let calls_before_the_end = {
            let probe = MemoryStore::new();
            apply_batch(
                &probe,
                &la(),
                BatchInput {
                    records: records.clone(),
                },
                NOW,
            )
            .unwrap();
            probe.take_calls().len() - 1 // the counts' increment comes after the set-many
        };
        store.fail_nth_call(calls_before_the_end);
        let err = apply_batch(&store, &la(), BatchInput { records }, NOW);
        assert_eq!(err.unwrap_err().status, 503);
        // Plans 1 and 2 (0 was created and withdrawn); 3..6 were held and are not written.
        assert_eq!((counts(&store).0, plans_stored(&store)), (2, 2));
    }

    #[test]
    fn concurrent_submissions_of_different_records_lose_no_count() {
        let store = std::sync::Arc::new(MemoryStore::new());
        let threads: Vec<_> = (0..8u32)
            .map(|t| {
                let store = store.clone();
                std::thread::spawn(move || {
                    let records = (0..25)
                        .map(|i| {
                            let n = t * 25 + i;
                            if n % 5 == 0 {
                                record(None, &format!("W{n}"), CPP)
                            } else {
                                record(
                                    Some(&NhsNumber::test_number(n).to_string()),
                                    &format!("C{n}"),
                                    CPP,
                                )
                            }
                        })
                        .collect();
                    apply_batch(&*store, &la(), BatchInput { records }, NOW).unwrap();
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        assert_eq!(counts(&store), (160, 0, 0, 40, 40));
    }

    #[test]
    fn batch_limits_are_enforced() {
        let store = MemoryStore::new();
        assert_eq!(
            apply_batch(&store, &la(), BatchInput { records: vec![] }, NOW)
                .unwrap_err()
                .status,
            400
        );
        let big = BatchInput {
            records: vec![json!({}); MAX_BATCH_RECORDS + 1],
        };
        assert_eq!(
            apply_batch(&store, &la(), big, NOW)
                .unwrap_err()
                .field
                .as_deref(),
            Some("records")
        );
    }
}
