//! Where a child's plans are kept, so that concurrent LAs never lose each other's writes.
//!
//! Each plan has a key of its own, `plan/{nhs}/{la}/{plan type}`, written only by that LA: an
//! upsert is a plain `set-many`, never a read-modify-write of a document shared between LAs.
//! (A shared document would need compare-and-swap, and Spin's SQLite store writes a swap on an
//! absent key unconditionally, so two LAs creating a child's first record at once could lose
//! one plan.) Which LAs hold plans for a child is an append-only log, `log/child-las/{nhs}`,
//! whose entries are written in the same `set-many` as the plan itself, so an LA is listed
//! whenever one of its plans exists. Duplicates in the log (an LA's two first writes at once)
//! are harmless; readers take each LA once.

use crate::identifiers::OdsCode;
use crate::keys;
use crate::nhs_number::NhsNumber;
use crate::plan::{ChildRecord, Plan, PlanType};
use crate::store::{KeyValue, StoreError, decode, encode};
use std::collections::BTreeSet;
use time::OffsetDateTime;

/// What an upsert changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Created,
    Updated,
    Unchanged,
}

/// How many LA listings one read fetches before it knows whether there are more: a child
/// rarely has plans with more than two LAs.
const LISTING_PROBE: u64 = 4;

/// Every LA's plans for the NHS number. Calls: one `get-many` for a child never on CP-IS (and
/// nothing written: no trace of the look-up); otherwise also the listing's head (`increment` by
/// 0) and one `get-many` of the plans.
pub fn read_child(store: &impl KeyValue, nhs: &NhsNumber) -> Result<ChildRecord, StoreError> {
    let listed: BTreeSet<OdsCode> = keys::child_las(nhs)
        .read_all_if_any::<OdsCode>(store, LISTING_PROBE)?
        .into_iter()
        .map(|entry| entry.item)
        .collect();
    if listed.is_empty() {
        return Ok(ChildRecord::default());
    }
    let plan_keys: Vec<String> = listed
        .iter()
        .flat_map(|la| PlanType::ALL.map(|t| keys::plan(nhs, la, t)))
        .collect();
    let plans = store
        .get_many(&plan_keys)?
        .into_iter()
        .zip(&plan_keys)
        .filter_map(|(value, key)| value.map(|bytes| decode(key, &bytes)))
        .collect::<Result<Vec<Plan>, _>>()?;
    Ok(ChildRecord { plans })
}

/// Creates or replaces the LA's plan of this type for the child. Calls: one `get-many` of the
/// LA's three plan keys; when something changes, an `increment` if the LA is not yet listed
/// for the child, and one `set-many` of the plan (and its listing).
pub fn upsert_plan(
    store: &impl KeyValue,
    nhs: &NhsNumber,
    plan: &Plan,
    now: OffsetDateTime,
) -> Result<Change, StoreError> {
    let la = &plan.responsible_la.ods_code;
    let own_keys: Vec<String> = PlanType::ALL.map(|t| keys::plan(nhs, la, t)).to_vec();
    let own = store.get_many(&own_keys)?;
    let key = keys::plan(nhs, la, plan.plan_type);
    let index = own_keys
        .iter()
        .position(|k| *k == key)
        .expect("every plan type has a key");
    let change = match &own[index] {
        None => Change::Created,
        Some(bytes) if decode::<Plan>(&key, bytes)? == *plan => return Ok(Change::Unchanged),
        Some(_) => Change::Updated,
    };
    let mut writes = vec![(key, encode(plan))];
    // Listed already if any of its plans for the child exists (the listing went in with it).
    if own.iter().all(Option::is_none) {
        let las = keys::child_las(nhs);
        let seq = las.reserve(store, 1)?;
        writes.push(las.entry(seq, now, la));
    }
    store.set_many(&writes)?;
    Ok(change)
}

/// Removes the LA's plan of this type for the child; `false` if there was none. Calls: `get`,
/// then `delete` when it exists.
pub fn withdraw_plan(
    store: &impl KeyValue,
    nhs: &NhsNumber,
    la: &OdsCode,
    plan_type: PlanType,
) -> Result<bool, StoreError> {
    let key = keys::plan(nhs, la, plan_type);
    if store.get(&key)?.is_none() {
        return Ok(false);
    }
    store.delete(&key)?;
    Ok(true)
}

/// Stores `plans` for the child as their LAs would submit them (test data).
#[cfg(test)]
pub(crate) fn seed(store: &impl KeyValue, nhs: &NhsNumber, plans: &[Plan]) {
    let now = time::macros::datetime!(2026-01-01 0:00 UTC);
    for plan in plans {
        upsert_plan(store, nhs, plan, now).expect("seeding the store");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::tests::{la, plan};
    use crate::store::MemoryStore;
    use std::sync::Arc;
    use time::macros::{date, datetime};

    const NOW: OffsetDateTime = datetime!(2026-11-25 10:00 UTC);

    fn nhs() -> NhsNumber {
        NhsNumber::parse("9434765919").unwrap()
    }

    fn plan_of(ods: &str, plan_type: PlanType) -> Plan {
        let mut p = plan(plan_type, date!(2026 - 01 - 01), None);
        p.responsible_la = la(ods);
        p
    }

    #[test]
    fn a_child_without_plans_costs_one_call_and_leaves_no_trace() {
        let store = MemoryStore::new();
        assert_eq!(read_child(&store, &nhs()).unwrap(), ChildRecord::default());
        assert_eq!(store.take_calls().len(), 1);
        assert!(store.snapshot().is_empty());
    }

    #[test]
    fn where_each_key_is_a_read_of_its_own_only_keys_that_exist_are_read() {
        let store = MemoryStore::new();
        store.read_each_key_apart();
        use crate::store::Call::*;
        assert!(read_child(&store, &nhs()).unwrap().plans.is_empty());
        assert_eq!(
            store.take_calls(),
            [Get],
            "an unknown child: the listing's head only"
        );
        upsert_plan(
            &store,
            &nhs(),
            &plan_of("LA1", PlanType::LookedAfterChild),
            NOW,
        )
        .unwrap();
        store.take_calls();
        assert_eq!(read_child(&store, &nhs()).unwrap().plans.len(), 1);
        assert_eq!(
            store.take_calls(),
            [Get, Get, Get, Get, Get],
            "the head, its one entry, the LA's three plan keys"
        );
    }

    #[test]
    fn listings_past_the_probe_are_read_too() {
        let store = MemoryStore::new();
        for i in 0..(LISTING_PROBE + 3) {
            upsert_plan(
                &store,
                &nhs(),
                &plan_of(&format!("LA{i}"), PlanType::LookedAfterChild),
                NOW,
            )
            .unwrap();
        }
        store.take_calls();
        assert_eq!(
            read_child(&store, &nhs()).unwrap().plans.len() as u64,
            LISTING_PROBE + 3
        );
        use crate::store::Call::*;
        assert_eq!(store.take_calls(), [GetMany, GetMany, GetMany]);
    }

    #[test]
    fn upsert_creates_updates_and_leaves_equal_plans_alone() {
        let store = MemoryStore::new();
        let mut p = plan_of("LA1", PlanType::ChildProtectionPlan);
        assert_eq!(
            upsert_plan(&store, &nhs(), &p, NOW).unwrap(),
            Change::Created
        );
        assert_eq!(
            upsert_plan(&store, &nhs(), &p, NOW).unwrap(),
            Change::Unchanged
        );
        p.end_date = Some(date!(2026 - 06 - 01));
        assert_eq!(
            upsert_plan(&store, &nhs(), &p, NOW).unwrap(),
            Change::Updated
        );
        assert_eq!(read_child(&store, &nhs()).unwrap().plans, vec![p]);
        // The LA was listed once: its second plan type adds no listing.
        upsert_plan(
            &store,
            &nhs(),
            &plan_of("LA1", PlanType::LookedAfterChild),
            NOW,
        )
        .unwrap();
        assert_eq!(keys::child_las(&nhs()).head(&store).unwrap(), 1);
    }

    #[test]
    fn withdrawal_removes_one_plan_and_rewriting_lists_the_la_again_harmlessly() {
        let store = MemoryStore::new();
        let p = plan_of("LA1", PlanType::ChildProtectionPlan);
        upsert_plan(&store, &nhs(), &p, NOW).unwrap();
        assert!(withdraw_plan(&store, &nhs(), &p.responsible_la.ods_code, p.plan_type).unwrap());
        assert!(!withdraw_plan(&store, &nhs(), &p.responsible_la.ods_code, p.plan_type).unwrap());
        assert!(read_child(&store, &nhs()).unwrap().plans.is_empty());
        upsert_plan(&store, &nhs(), &p, NOW).unwrap();
        assert_eq!(read_child(&store, &nhs()).unwrap().plans.len(), 1);
    }

    /// Many LAs creating the same child's first plans at once: none is lost, even though the
    /// store writes a compare-and-swap on an absent key unconditionally (as Spin's SQLite does).
    #[test]
    fn concurrent_first_plans_of_many_las_are_all_kept() {
        for _ in 0..20 {
            let store = Arc::new(MemoryStore::new());
            let threads: Vec<_> = (0..8)
                .map(|i| {
                    let store = store.clone();
                    std::thread::spawn(move || {
                        for t in [PlanType::ChildProtectionPlan, PlanType::LookedAfterChild] {
                            upsert_plan(&*store, &nhs(), &plan_of(&format!("LA{i}"), t), NOW)
                                .unwrap();
                        }
                    })
                })
                .collect();
            threads.into_iter().for_each(|t| t.join().unwrap());
            assert_eq!(read_child(&*store, &nhs()).unwrap().plans.len(), 16);
        }
    }

    #[test]
    fn a_failed_write_lists_nothing_and_a_resend_completes_it() {
        let store = MemoryStore::new();
        let p = plan_of("LA1", PlanType::ChildProtectionPlan);
        store.fail_nth_call(3); // get-many, increment, then set-many fails
        assert!(upsert_plan(&store, &nhs(), &p, NOW).is_err());
        assert!(read_child(&store, &nhs()).unwrap().plans.is_empty());
        assert_eq!(
            upsert_plan(&store, &nhs(), &p, NOW).unwrap(),
            Change::Created
        );
        assert_eq!(read_child(&store, &nhs()).unwrap().plans, vec![p]);
    }
}
