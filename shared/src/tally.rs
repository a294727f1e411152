//! Each LA's counts for going live: its held plans by type, its cases waiting for an NHS number,
//! how many of those are overdue, and the match rate they give.
//!
//! The counts are kept as the data changes, never by scanning:
//!
//! - `tally/{la}` is one counter packing four numbers (held plans with an NHS number per plan
//!   type, and cases waiting for one). A request gathers its changes and applies them with one
//!   `increment` at its end: atomic across the four numbers, never losing a concurrent request's
//!   change, and one write call for a whole batch of 500 records.
//! - Overdue depends on today's date. A waiting case whose NHS number is due today or later when
//!   it is recorded is also counted under its due date, by day (`tally/{la}/due/{YYYY-MM-DD}`)
//!   and by month (`tally/{la}/due/{YYYY-MM}`); it is removed from them when it closes. On any
//!   later day, the cases not yet due are those counted under today's date or later: the days
//!   left in this month plus the next twelve months (at most 43 counters), and every other
//!   waiting case is overdue. Hence a case may be recorded at most [`DUE_HORIZON_DAYS`] ahead
//!   of its due date.
//!
//! Reads take all of them with one `get-many` ([`crate::store::read_counters`]).

use crate::identifiers::{FieldError, OdsCode};
use crate::keys;
use crate::plan::PlanType;
use crate::store::{KeyValue, StoreError, read_counters};
use serde::Serialize;
use std::collections::BTreeMap;
use time::{Date, Duration, Month};

/// How far ahead of its due date a case without NHS number may be recorded.
pub const DUE_HORIZON_DAYS: i64 = 365;

/// The share of in-scope records matched to an NHS number at which an LA may go live.
pub const GO_LIVE_THRESHOLD_PERCENT: u64 = 95;

/// The four numbers packed into `tally/{la}`, lowest field first, with their widths in bits. Each
/// field is a signed digit (-2^(w-1) to 2^(w-1)-1), so a count that is negative for a moment (a
/// withdrawal counted before the creation that raced it) still decodes exactly. The highest
/// field takes the remaining 17 of the 63 bits.
const FIELDS: [(Field, u32); 4] = [
    (Field::Waiting, 16),
    (Field::Held(PlanType::UnbornChildProtectionPlan), 14),
    (Field::Held(PlanType::LookedAfterChild), 16),
    (Field::Held(PlanType::ChildProtectionPlan), 17),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Held(PlanType),
    Waiting,
}

/// An LA's held plans per type and waiting cases (or changes to them).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Plans held with an NHS number, in the order of [`PlanType::ALL`].
    pub held: [i64; 3],
    /// Cases held without an NHS number (open: neither resolved nor withdrawn).
    pub waiting: i64,
}

impl Counts {
    fn field(&mut self, field: Field) -> &mut i64 {
        match field {
            Field::Waiting => &mut self.waiting,
            Field::Held(plan_type) => &mut self.held[type_index(plan_type)],
        }
    }

    fn pack(mut self) -> i64 {
        let mut packed = 0i64;
        let mut shift = 0;
        for (field, width) in FIELDS {
            packed += *self.field(field) << shift;
            shift += width;
        }
        packed
    }

    fn unpack(mut packed: i64) -> Self {
        let mut counts = Counts::default();
        for (i, (field, width)) in FIELDS.into_iter().enumerate() {
            let digit = if i + 1 == FIELDS.len() {
                packed
            } else {
                let modulus = 1i64 << width;
                let low = packed.rem_euclid(modulus);
                if low >= modulus / 2 {
                    low - modulus
                } else {
                    low
                }
            };
            *counts.field(field) = digit;
            packed = (packed - digit) >> width;
        }
        counts
    }
}

fn type_index(plan_type: PlanType) -> usize {
    PlanType::ALL
        .iter()
        .position(|t| *t == plan_type)
        .expect("every plan type is in ALL")
}

/// What one request changed in an LA's counts, applied once at its end by [`TallyChange::apply`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TallyChange {
    counts: Counts,
    /// Waiting cases not yet due, by due date.
    not_yet_due: BTreeMap<Date, i64>,
}

impl TallyChange {
    pub fn plan_created(&mut self, plan_type: PlanType) {
        self.counts.held[type_index(plan_type)] += 1;
    }

    pub fn plan_withdrawn(&mut self, plan_type: PlanType) {
        self.counts.held[type_index(plan_type)] -= 1;
    }

    /// A case now waits for its NHS number; `counted_due` is [`counted_due`] of it.
    pub fn case_opened(&mut self, counted_due: Option<Date>) {
        self.counts.waiting += 1;
        self.move_due(None, counted_due);
    }

    /// A waiting case was resolved or withdrawn; `counted_due` as it was opened (or corrected).
    pub fn case_closed(&mut self, counted_due: Option<Date>) {
        self.counts.waiting -= 1;
        self.move_due(counted_due, None);
    }

    /// A waiting case's due date was corrected.
    pub fn move_due(&mut self, from: Option<Date>, to: Option<Date>) {
        if from == to {
            return;
        }
        for (date, delta) in [(from, -1), (to, 1)] {
            if let Some(date) = date {
                *self.not_yet_due.entry(date).or_default() += delta;
            }
        }
        self.not_yet_due.retain(|_, delta| *delta != 0);
    }

    /// Adds `other`'s changes to these.
    pub fn absorb(&mut self, other: TallyChange) {
        for (mine, theirs) in self.counts.held.iter_mut().zip(other.counts.held) {
            *mine += theirs;
        }
        self.counts.waiting += other.counts.waiting;
        for (date, delta) in other.not_yet_due {
            *self.not_yet_due.entry(date).or_default() += delta;
        }
        self.not_yet_due.retain(|_, delta| *delta != 0);
    }

    /// The counter changes, each one `increment`: the packed counts when they changed, and the
    /// day and month of each due date whose count changed (none for a batch of plans that
    /// started in the past).
    fn increments(&self, la: &OdsCode) -> Vec<(String, i64)> {
        let mut increments = Vec::new();
        if self.counts != Counts::default() {
            increments.push((keys::tally(la), self.counts.pack()));
        }
        let mut months: BTreeMap<(i32, Month), i64> = BTreeMap::new();
        for (date, delta) in &self.not_yet_due {
            increments.push((keys::not_yet_due_on_day(la, *date), *delta));
            *months.entry((date.year(), date.month())).or_default() += delta;
        }
        increments.extend(
            months
                .into_iter()
                .filter(|(_, delta)| *delta != 0)
                .map(|((year, month), delta)| (keys::not_yet_due_in_month(la, year, month), delta)),
        );
        increments
    }

    /// Applies the change: one `increment` per counter that changed. Each is atomic, so no
    /// concurrent change is lost; the four counts change together, in one of them.
    pub fn apply(&self, store: &impl KeyValue, la: &OdsCode) -> Result<(), StoreError> {
        for (key, delta) in self.increments(la) {
            store.increment(&key, delta)?;
        }
        Ok(())
    }
}

/// The due date under which a waiting case is counted as not yet due, if it is due today or
/// later: its plan's start date (the ICPC, or the day the child became looked after).
pub fn counted_due(due: Date, today: Date) -> Option<Date> {
    (due >= today).then_some(due)
}

/// A case may wait for its NHS number only if it is due within [`DUE_HORIZON_DAYS`].
pub fn check_due_within_horizon(due: Date, today: Date) -> Result<(), FieldError> {
    let latest = today.saturating_add(Duration::days(DUE_HORIZON_DAYS));
    if due > latest {
        return Err(FieldError(format!(
            "a case without NHS number is due on its start date, which may be at most \
             {DUE_HORIZON_DAYS} days ahead ({latest}); found {due}"
        )));
    }
    Ok(())
}

/// The counters to read for one LA on `today`: the packed counts, then the not-yet-due counts
/// for the days left in this month and for each of the next twelve months.
fn counter_keys(la: &OdsCode, today: Date) -> Vec<String> {
    let mut keys = vec![keys::tally(la)];
    let mut day = today;
    while day.month() == today.month() {
        keys.push(keys::not_yet_due_on_day(la, day));
        day = match day.next_day() {
            Some(next) => next,
            None => break,
        };
    }
    let (mut year, mut month) = (today.year(), today.month());
    for _ in 0..12 {
        if month == Month::December {
            year += 1;
        }
        month = month.next();
        keys.push(keys::not_yet_due_in_month(la, year, month));
    }
    keys
}

/// Plans held with an NHS number, by type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct HeldPlans {
    pub cpp: u64,
    pub lac: u64,
    pub ucpp: u64,
}

/// An LA's standing for going live, as the match-rate endpoints show it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MatchRate {
    pub ods_code: OdsCode,
    pub shareable_plans: HeldPlans,
    pub waiting_for_nhs_number: u64,
    pub overdue: u64,
    /// shareable / (shareable + waiting), rounded down to four places; `None` when the LA holds
    /// nothing.
    pub match_rate: Option<f64>,
    pub meets_go_live_threshold: bool,
}

impl MatchRate {
    fn new(ods_code: OdsCode, counts: Counts, not_yet_due: i64) -> Self {
        let count = |n: i64| u64::try_from(n).unwrap_or(0);
        let held = |t: PlanType| count(counts.held[type_index(t)]);
        let shareable_plans = HeldPlans {
            cpp: held(PlanType::ChildProtectionPlan),
            lac: held(PlanType::LookedAfterChild),
            ucpp: held(PlanType::UnbornChildProtectionPlan),
        };
        let shareable = shareable_plans.cpp + shareable_plans.lac + shareable_plans.ucpp;
        let waiting = count(counts.waiting);
        let in_scope = shareable + waiting;
        Self {
            ods_code,
            shareable_plans,
            waiting_for_nhs_number: waiting,
            overdue: waiting.saturating_sub(count(not_yet_due)),
            match_rate: (in_scope > 0).then(|| (shareable * 10_000 / in_scope) as f64 / 10_000.0),
            meets_go_live_threshold: in_scope > 0
                && shareable * 100 >= GO_LIVE_THRESHOLD_PERCENT * in_scope,
        }
    }
}

/// The match rate of each LA, in the order given, with one `get-many` for all of them.
pub fn match_rates(
    store: &impl KeyValue,
    las: &[OdsCode],
    today: Date,
) -> Result<Vec<MatchRate>, StoreError> {
    let per_la: Vec<Vec<String>> = las.iter().map(|la| counter_keys(la, today)).collect();
    let values = read_counters(store, &per_la.concat())?;
    let mut values = values.into_iter();
    Ok(las
        .iter()
        .zip(&per_la)
        .map(|(la, keys)| {
            let mut mine = values.by_ref().take(keys.len());
            let counts = Counts::unpack(mine.next().unwrap_or(0));
            MatchRate::new(la.clone(), counts, mine.sum())
        })
        .collect())
}

/// Every LA ever registered, each once, in ODS code order. Calls: two `get-many` (the list's
/// head, then its entries).
pub fn local_authorities(store: &impl KeyValue) -> Result<Vec<OdsCode>, StoreError> {
    let list = keys::local_authorities();
    let head = read_counters(store, &[list.head_key()])?[0];
    let head = u64::try_from(head).unwrap_or(0);
    if head == 0 {
        return Ok(vec![]);
    }
    let las: std::collections::BTreeSet<OdsCode> = list
        .read_range::<OdsCode>(store, 1, head)?
        .into_iter()
        .flatten()
        .map(|entry| entry.item)
        .collect();
    Ok(las.into_iter().collect())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::store::{Call, MemoryStore};
    use time::macros::date;

    fn la() -> OdsCode {
        OdsCode::parse("LA1").unwrap()
    }

    /// The LA's match rate as the endpoint shows it on `today`.
    pub fn rate_of(store: &MemoryStore, la: &OdsCode, today: Date) -> MatchRate {
        match_rates(store, std::slice::from_ref(la), today)
            .unwrap()
            .remove(0)
    }

    #[test]
    fn packed_counts_round_trip_including_negative_and_large_fields() {
        for counts in [
            Counts::default(),
            Counts {
                held: [3, 2, 1],
                waiting: 4,
            },
            Counts {
                held: [-1, 0, -1],
                waiting: -1,
            },
            Counts {
                held: [65_535, 32_767, 8_191],
                waiting: 32_767,
            },
            Counts {
                held: [-65_536, -32_768, -8_192],
                waiting: -32_768,
            },
        ] {
            assert_eq!(Counts::unpack(counts.pack()), counts, "{counts:?}");
        }
        // Adding packed changes adds each field: a counter can hold them.
        let a = Counts {
            held: [5, 0, 2],
            waiting: 1,
        };
        let b = Counts {
            held: [-1, 3, -2],
            waiting: -1,
        };
        assert_eq!(
            Counts::unpack(a.pack() + b.pack()),
            Counts {
                held: [4, 3, 0],
                waiting: 0
            }
        );
    }

    #[test]
    fn a_batchs_changes_cost_one_increment_when_nothing_is_due_ahead() {
        let store = MemoryStore::new();
        let mut change = TallyChange::default();
        for _ in 0..300 {
            change.plan_created(PlanType::ChildProtectionPlan);
        }
        for _ in 0..150 {
            change.plan_created(PlanType::LookedAfterChild);
        }
        change.plan_created(PlanType::UnbornChildProtectionPlan);
        for _ in 0..49 {
            change.case_opened(None);
        }
        change.apply(&store, &la()).unwrap();
        assert_eq!(store.take_calls(), [Call::Increment]);
        let rate = rate_of(&store, &la(), date!(2026 - 11 - 25));
        assert_eq!(
            rate.shareable_plans,
            HeldPlans {
                cpp: 300,
                lac: 150,
                ucpp: 1
            }
        );
        assert_eq!((rate.waiting_for_nhs_number, rate.overdue), (49, 49));
        assert_eq!(rate.match_rate, Some(0.902));
        assert!(!rate.meets_go_live_threshold);
        // Nothing changed: no call at all.
        store.take_calls();
        TallyChange::default().apply(&store, &la()).unwrap();
        assert!(store.take_calls().is_empty());
    }

    #[test]
    fn a_case_due_ahead_becomes_overdue_the_day_after_its_due_date() {
        let store = MemoryStore::new();
        let today = date!(2026 - 11 - 25);
        let mut change = TallyChange::default();
        // Due today, at the end of next month, and as far ahead as allowed.
        for due in [
            today,
            date!(2026 - 12 - 31),
            today + Duration::days(DUE_HORIZON_DAYS),
        ] {
            check_due_within_horizon(due, today).unwrap();
            change.case_opened(counted_due(due, today));
        }
        change.case_opened(counted_due(date!(2026 - 01 - 01), today));
        change.apply(&store, &la()).unwrap();
        let overdue = |day: Date| rate_of(&store, &la(), day).overdue;
        assert_eq!(overdue(today), 1);
        assert_eq!(overdue(date!(2026 - 11 - 26)), 2);
        assert_eq!(overdue(date!(2026 - 12 - 31)), 2);
        assert_eq!(overdue(date!(2027 - 01 - 01)), 3);
        assert_eq!(overdue(date!(2027 - 11 - 25)), 3);
        assert_eq!(overdue(date!(2027 - 11 - 26)), 4);
        assert!(
            check_due_within_horizon(today + Duration::days(DUE_HORIZON_DAYS + 1), today).is_err()
        );

        // Closing the case due today removes it from the not-yet-due counts too.
        let mut close = TallyChange::default();
        close.case_closed(counted_due(today, today));
        close.apply(&store, &la()).unwrap();
        assert_eq!(rate_of(&store, &la(), today).waiting_for_nhs_number, 3);
        assert_eq!(overdue(today), 1);
        assert_eq!(overdue(date!(2026 - 11 - 26)), 1);
    }

    #[test]
    fn counter_keys_cover_this_month_by_day_and_a_year_by_month() {
        let keys = counter_keys(&la(), date!(2026 - 12 - 30));
        assert_eq!(
            keys,
            [
                "tally/LA1",
                "tally/LA1/due/2026-12-30",
                "tally/LA1/due/2026-12-31",
                "tally/LA1/due/2027-01",
                "tally/LA1/due/2027-02",
                "tally/LA1/due/2027-03",
                "tally/LA1/due/2027-04",
                "tally/LA1/due/2027-05",
                "tally/LA1/due/2027-06",
                "tally/LA1/due/2027-07",
                "tally/LA1/due/2027-08",
                "tally/LA1/due/2027-09",
                "tally/LA1/due/2027-10",
                "tally/LA1/due/2027-11",
                "tally/LA1/due/2027-12",
            ]
        );
        assert_eq!(
            counter_keys(&la(), date!(2026 - 01 - 01)).len(),
            1 + 31 + 12
        );
    }

    #[test]
    fn the_threshold_is_exactly_95_percent_and_an_empty_la_has_no_rate() {
        let rate = |held: i64, waiting: i64| {
            MatchRate::new(
                la(),
                Counts {
                    held: [held, 0, 0],
                    waiting,
                },
                0,
            )
        };
        assert!(rate(95, 5).meets_go_live_threshold);
        assert_eq!(rate(95, 5).match_rate, Some(0.95));
        assert!(!rate(1899, 101).meets_go_live_threshold);
        assert_eq!(rate(1899, 101).match_rate, Some(0.9495));
        assert!(rate(1, 0).meets_go_live_threshold);
        assert_eq!(rate(0, 0).match_rate, None);
        assert!(!rate(0, 0).meets_go_live_threshold);
        // A count below zero for a moment shows as zero.
        assert_eq!(rate(-1, 0).shareable_plans.cpp, 0);
    }

    #[test]
    fn the_list_of_las_is_read_without_writing_and_each_la_once() {
        let store = MemoryStore::new();
        assert!(local_authorities(&store).unwrap().is_empty());
        let list = keys::local_authorities();
        let now = time::macros::datetime!(2026-11-25 10:00 UTC);
        for ods in ["LA2", "LA1", "LA2"] {
            let seq = list.reserve(&store, 1).unwrap();
            store
                .set_many(&[list.entry(seq, now, OdsCode::parse(ods).unwrap())])
                .unwrap();
        }
        store.take_calls();
        let las = local_authorities(&store).unwrap();
        assert_eq!(
            las,
            [
                OdsCode::parse("LA1").unwrap(),
                OdsCode::parse("LA2").unwrap()
            ]
        );
        assert_eq!(store.take_calls(), [Call::Get, Call::GetMany]);
    }
}
