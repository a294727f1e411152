//! NHS side: the flag lookup (no user, no side effects) and a user's access to the CP-IS
//! information, which is recorded before anything is shown.
//!
//! Rules of the national service kept here:
//! - only *unscheduled* access is added to the child's access history and notifies each LA that
//!   holds a visible plan; scheduled access (GP, health visitor, school nurse) shows the same
//!   information, is audited, and notifies nobody;
//! - an NHS user sees the previous 25 unscheduled visits, newest first;
//! - a child with no visible plan leaves no trace: nothing is recorded about a child CP-IS does not
//!   hold (data minimisation).

use crate::alerts::{Alert, PlanRef, Setting, prepare_alert};
use crate::auth::{CredentialId, NominatedSystem, Organisation, nominated_system};
use crate::error::ApiError;
use crate::identifiers::{DisplayName, OdsCode};
use crate::keys;
use crate::log::Entry;
use crate::nhs_number::NhsNumber;
use crate::plan::{Plan, VisibilityRules};
use crate::records;
use crate::store::{KeyValue, StoreError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use time::OffsetDateTime;

/// How many previous visits are shown.
pub const HISTORY_LENGTH: u64 = 25;

/// The NHS user opening the information, as their system identifies them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NhsUser {
    /// The user's identifier in the NHS system (e.g. their CIS2 user id).
    pub id: DisplayName,
    pub name: DisplayName,
    /// The user's role, e.g. "Emergency Department Nurse" or a national RBAC role code.
    pub role: DisplayName,
}

/// Who answers for an access: as in the national HL7 V3 service, a person, or a system (a
/// device) with its nominated responsible person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Author {
    /// The user the NHS system names.
    User(NhsUser),
    /// The system registered with the care setting's credential, when the request names no user.
    System(NominatedSystem),
}

/// The author of an access by a care setting through `credential`: the user the request names,
/// or, when it names none, the system registered with the credential; `None` when it has none
/// (the caller refuses the request). One `get`, and only when no user is named.
pub fn author(
    store: &impl KeyValue,
    credential: &CredentialId,
    user: Option<NhsUser>,
) -> Result<Option<Author>, StoreError> {
    Ok(match user {
        Some(user) => Some(Author::User(user)),
        None => nominated_system(store, credential)?.map(Author::System),
    })
}

/// One access, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessEvent {
    /// The user, or for a system's access its nominated responsible person.
    pub user: NhsUser,
    /// The system the access came through when it named no user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via_system: Option<DisplayName>,
    pub setting: Setting,
    pub unscheduled: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub accessed_at: OffsetDateTime,
}

/// What an NHS user is shown.
#[derive(Debug, Clone, PartialEq)]
pub struct AccessOutcome {
    pub nhs_number: NhsNumber,
    pub plans: Vec<Plan>,
    /// Unscheduled visits before this one, newest first (at most 25).
    pub previous_visits: Vec<Entry<AccessEvent>>,
    /// Whether this access was recorded (false when CP-IS holds no visible plan).
    pub recorded: bool,
}

/// Whether CP-IS holds a visible plan for the NHS number ([`records::read_child`]: one call for
/// a child never on CP-IS, three otherwise).
pub fn flag(
    store: &impl KeyValue,
    nhs: &NhsNumber,
    today: time::Date,
    rules: &VisibilityRules,
) -> Result<bool, ApiError> {
    let record = records::read_child(store, nhs)?;
    Ok(!record.visible_plans(today, rules).is_empty())
}

/// A user in `setting` opens the child's CP-IS information. The access is written before the
/// outcome is returned, so a store failure shows nothing rather than something unrecorded.
///
/// Calls: [`records::read_child`]; when a plan is visible, the history (an `increment` by
/// 0 and a `get-many`), then one `increment` per log appended (the visit log and each notified
/// LA's feed, or the scheduled-access audit log) and one `set-many` for all entries.
pub fn open(
    store: &impl KeyValue,
    setting: &Organisation,
    nhs: &NhsNumber,
    author: Author,
    unscheduled: bool,
    now: OffsetDateTime,
    rules: &VisibilityRules,
) -> Result<AccessOutcome, ApiError> {
    let record = records::read_child(store, nhs)?;
    let plans: Vec<Plan> = record
        .visible_plans(now.date(), rules)
        .into_iter()
        .cloned()
        .collect();
    if plans.is_empty() {
        return Ok(AccessOutcome {
            nhs_number: nhs.clone(),
            plans,
            previous_visits: vec![],
            recorded: false,
        });
    }
    let visits = keys::visits(nhs);
    let previous_visits = visits.newest(store, HISTORY_LENGTH)?;

    let (user, via_system) = match author {
        Author::User(user) => (user, None),
        Author::System(nominated) => (nominated.responsible_person, Some(nominated.system)),
    };
    let event = AccessEvent {
        user,
        via_system,
        setting: Setting {
            ods_code: setting.ods_code.clone(),
            name: setting.name.clone(),
        },
        unscheduled,
        accessed_at: now,
    };
    let mut writes = Vec::new();
    if unscheduled {
        for (la, plan_refs) in plans_by_la(&plans) {
            let alert = Alert::Attendance {
                nhs_number: nhs.clone(),
                plans: plan_refs,
                setting: event.setting.clone(),
                attended_at: now,
            };
            writes.push(prepare_alert(store, &la, alert, now)?.write);
        }
        let seq = visits.reserve(store, 1)?;
        writes.push(visits.entry(seq, now, event));
    } else {
        let audit = keys::scheduled_access_audit(nhs);
        let seq = audit.reserve(store, 1)?;
        writes.push(audit.entry(seq, now, event));
    }
    store.set_many(&writes)?;
    Ok(AccessOutcome {
        nhs_number: nhs.clone(),
        plans,
        previous_visits,
        recorded: true,
    })
}

/// The visible plans grouped by responsible LA: one notification per LA.
fn plans_by_la(plans: &[Plan]) -> BTreeMap<OdsCode, Vec<PlanRef>> {
    let mut by_la: BTreeMap<OdsCode, Vec<PlanRef>> = BTreeMap::new();
    for plan in plans {
        by_la
            .entry(plan.responsible_la.ods_code.clone())
            .or_default()
            .push(PlanRef {
                plan_type: plan.plan_type,
                case_ref: plan.case_ref.clone(),
            });
    }
    by_la
}

/// What an LA may see of a child: its own plans (all of them, with its own references and
/// dates) and the child's last 25 unscheduled visits; nothing of other LAs' plans. 404 when the
/// LA holds no plan for the child, so that it learns nothing about children not its own.
pub struct LaChildView {
    pub plans: Vec<Plan>,
    pub visits: Vec<Entry<AccessEvent>>,
}

pub fn la_child_view(
    store: &impl KeyValue,
    la: &OdsCode,
    nhs: &NhsNumber,
) -> Result<LaChildView, ApiError> {
    let record = records::read_child(store, nhs)?;
    let plans: Vec<Plan> = record.plans_of(la).into_iter().cloned().collect();
    if plans.is_empty() {
        return Err(
            ApiError::not_found(format!("{la} holds no plan for NHS number {nhs}"))
                .with_field("nhs_number"),
        );
    }
    let visits = keys::visits(nhs).newest(store, HISTORY_LENGTH)?;
    Ok(LaChildView { plans, visits })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::read_feed;
    use crate::auth::OrgKind;
    use crate::plan::PlanType;
    use crate::plan::tests::{la, plan};
    use crate::store::MemoryStore;
    use std::sync::Arc;
    use time::Duration;
    use time::macros::{date, datetime};

    const NOW: OffsetDateTime = datetime!(2026-11-25 10:00 UTC);

    fn nhs() -> NhsNumber {
        NhsNumber::parse("9434765919").unwrap()
    }

    fn setting(ods: &str) -> Organisation {
        Organisation {
            ods_code: OdsCode::parse(ods).unwrap(),
            name: DisplayName::parse(&format!("ED {ods}")).unwrap(),
            kind: OrgKind::CareSetting,
        }
    }

    fn person() -> NhsUser {
        NhsUser {
            id: DisplayName::parse("555021935107").unwrap(),
            name: DisplayName::parse("Dr A Patel").unwrap(),
            role: DisplayName::parse("Emergency Department Doctor").unwrap(),
        }
    }

    fn user() -> Author {
        Author::User(person())
    }

    /// A user of the care setting `ods` opens the child's information at `at`.
    fn visit(
        store: &MemoryStore,
        ods: &str,
        unscheduled: bool,
        at: OffsetDateTime,
    ) -> Result<AccessOutcome, ApiError> {
        open(
            store,
            &setting(ods),
            &nhs(),
            user(),
            unscheduled,
            at,
            &VisibilityRules::default(),
        )
    }

    fn store_with(plans: Vec<Plan>) -> MemoryStore {
        let store = MemoryStore::new();
        records::seed(&store, &nhs(), &plans);
        store
    }

    fn two_la_plans() -> Vec<Plan> {
        let mut lac = plan(PlanType::LookedAfterChild, date!(2026 - 01 - 01), None);
        lac.responsible_la = la("LA2");
        vec![
            plan(PlanType::ChildProtectionPlan, date!(2026 - 01 - 01), None),
            lac,
        ]
    }

    fn feed_len(store: &MemoryStore, la: &str) -> usize {
        let la = OdsCode::parse(la).unwrap();
        read_feed::<Alert>(store, &la, Some(0), 500, NOW, Duration::seconds(60))
            .unwrap()
            .entries
            .len()
    }

    #[test]
    fn unscheduled_access_records_a_visit_and_notifies_each_la_once() {
        let store = store_with(two_la_plans());
        let rules = VisibilityRules::default();
        let out = open(&store, &setting("RR8"), &nhs(), user(), true, NOW, &rules).unwrap();
        assert!(out.recorded);
        assert_eq!(out.plans.len(), 2);
        assert!(
            out.previous_visits.is_empty(),
            "the first visit has no previous visits"
        );
        assert_eq!((feed_len(&store, "LA1"), feed_len(&store, "LA2")), (1, 1));

        let out = open(&store, &setting("RX1"), &nhs(), user(), true, NOW, &rules).unwrap();
        assert_eq!(out.previous_visits.len(), 1);
        assert_eq!(out.previous_visits[0].item.setting.ods_code.as_str(), "RR8");
        let page = read_feed::<Alert>(
            &store,
            &OdsCode::parse("LA1").unwrap(),
            Some(0),
            10,
            NOW,
            Duration::seconds(60),
        )
        .unwrap();
        match &page.entries[1].item {
            Alert::Attendance {
                nhs_number,
                plans,
                setting,
                ..
            } => {
                assert_eq!(nhs_number, &nhs());
                assert_eq!(plans.len(), 1);
                assert_eq!(plans[0].case_ref.as_str(), "CASE-1");
                assert_eq!(setting.ods_code.as_str(), "RX1");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn scheduled_access_shows_the_plans_but_adds_no_visit_and_notifies_nobody() {
        let store = store_with(two_la_plans());
        let out = visit(&store, "GP1", false, NOW).unwrap();
        assert_eq!(out.plans.len(), 2);
        assert!(out.recorded);
        assert_eq!((feed_len(&store, "LA1"), feed_len(&store, "LA2")), (0, 0));
        assert!(
            keys::visits(&nhs())
                .newest::<AccessEvent>(&store, 25)
                .unwrap()
                .is_empty()
        );
        let audit: Vec<Entry<AccessEvent>> = keys::scheduled_access_audit(&nhs())
            .newest(&store, 25)
            .unwrap();
        assert_eq!(audit.len(), 1);
        assert!(!audit[0].item.unscheduled);
    }

    #[test]
    fn a_child_without_visible_plans_leaves_no_trace() {
        let ended = plan(
            PlanType::UnbornChildProtectionPlan,
            date!(2025 - 01 - 01),
            Some(date!(2025 - 02 - 01)),
        );
        let store = store_with(vec![ended]);
        let before = store.snapshot();
        let out = visit(&store, "RR8", true, NOW).unwrap();
        assert!(!out.recorded && out.plans.is_empty());
        assert_eq!(store.snapshot(), before);
        assert!(!flag(&store, &nhs(), NOW.date(), &VisibilityRules::default()).unwrap());
    }

    #[test]
    fn the_nhs_side_never_sees_plans_past_their_delete_date() {
        let mut p = plan(PlanType::ChildProtectionPlan, date!(2026 - 01 - 01), None);
        p.delete_date = Some(NOW.date());
        let store = store_with(vec![p]);
        assert!(!flag(&store, &nhs(), NOW.date(), &VisibilityRules::default()).unwrap());
    }

    #[test]
    fn history_holds_the_newest_25_newest_first() {
        let store = store_with(two_la_plans());
        let rules = VisibilityRules::default();
        for i in 0..30 {
            let at = NOW + Duration::minutes(i);
            open(
                &store,
                &setting(&format!("S{i:02}")),
                &nhs(),
                user(),
                true,
                at,
                &rules,
            )
            .unwrap();
        }
        let out = open(
            &store,
            &setting("RR8"),
            &nhs(),
            user(),
            true,
            NOW + Duration::hours(1),
            &rules,
        )
        .unwrap();
        let seen: Vec<&str> = out
            .previous_visits
            .iter()
            .map(|v| v.item.setting.ods_code.as_str())
            .collect();
        assert_eq!(seen.len(), 25);
        assert_eq!(seen[0], "S29");
        assert_eq!(seen[24], "S05");
    }

    #[test]
    fn a_store_failure_before_recording_shows_nothing() {
        let store = store_with(two_la_plans());
        let before = store.snapshot();
        // get, increment(0), get-many, then the first reservation fails.
        store.fail_nth_call(4);
        let err = visit(&store, "RR8", true, NOW).unwrap_err();
        assert_eq!(err.status, 503);
        // Counters may have moved; no entry was written.
        let after = store.snapshot();
        assert!(
            after
                .keys()
                .all(|k| before.contains_key(k) || k.ends_with("/head"))
        );
    }

    #[test]
    fn concurrent_unscheduled_accesses_lose_nothing() {
        let store = Arc::new(store_with(two_la_plans()));
        let threads: Vec<_> = (0..10)
            .map(|t| {
                let store = store.clone();
                std::thread::spawn(move || {
                    for _ in 0..20 {
                        open(
                            &*store,
                            &setting(&format!("S{t:02}")),
                            &nhs(),
                            user(),
                            true,
                            NOW,
                            &VisibilityRules::default(),
                        )
                        .unwrap();
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        assert_eq!(
            (feed_len(&store, "LA1"), feed_len(&store, "LA2")),
            (200, 200)
        );
        assert_eq!(keys::visits(&nhs()).head(&*store).unwrap(), 200);
    }

    #[test]
    fn an_la_sees_only_its_own_plans_and_only_for_its_children() {
        let store = store_with(two_la_plans());
        visit(&store, "RR8", true, NOW).unwrap();
        let view = la_child_view(&store, &OdsCode::parse("LA2").unwrap(), &nhs()).unwrap();
        assert_eq!(view.plans.len(), 1);
        assert_eq!(view.plans[0].plan_type, PlanType::LookedAfterChild);
        assert_eq!(view.visits.len(), 1);
        let err = la_child_view(&store, &OdsCode::parse("LA3").unwrap(), &nhs())
            .err()
            .unwrap();
        assert_eq!(err.status, 404);
    }

    #[test]
    fn a_systems_access_is_recorded_against_its_responsible_person_and_the_system() {
        let store = store_with(two_la_plans());
        let system = NominatedSystem {
            system: DisplayName::parse("Symphony ED").unwrap(),
            responsible_person: person(),
        };
        let rules = VisibilityRules::default();
        open(
            &store,
            &setting("RR8"),
            &nhs(),
            Author::System(system),
            true,
            NOW,
            &rules,
        )
        .unwrap();
        open(&store, &setting("RR8"), &nhs(), user(), true, NOW, &rules).unwrap();
        let visits: Vec<Entry<AccessEvent>> = keys::visits(&nhs()).newest(&store, 25).unwrap();
        assert_eq!(visits[0].item.via_system, None);
        assert_eq!(
            visits[1].item.via_system.as_ref().unwrap().as_str(),
            "Symphony ED"
        );
        assert_eq!(visits[1].item.user, person());
        let stored =
            String::from_utf8(store.snapshot()[&keys::visits(&nhs()).entry_key(1)].clone())
                .unwrap();
        assert!(stored.contains("via_system"), "{stored}");
        let person_only =
            String::from_utf8(store.snapshot()[&keys::visits(&nhs()).entry_key(2)].clone())
                .unwrap();
        assert!(
            !person_only.contains("via_system"),
            "stored as before: {person_only}"
        );
    }

    #[test]
    fn the_author_is_the_named_user_else_the_credentials_system_else_none() {
        use crate::auth::{issue_credential, register_system};
        let store = MemoryStore::new();
        let issued = issue_credential(&store, setting("RR8"), NOW).unwrap();
        let id = &issued.credential_id;
        store.take_calls();
        assert_eq!(author(&store, id, Some(person())).unwrap(), Some(user()));
        assert_eq!(store.take_calls(), [], "a named user costs no call");
        assert_eq!(author(&store, id, None).unwrap(), None);
        let system = NominatedSystem {
            system: DisplayName::parse("Symphony ED").unwrap(),
            responsible_person: person(),
        };
        register_system(&store, id, system.clone(), NOW).unwrap();
        assert_eq!(
            author(&store, id, None).unwrap(),
            Some(Author::System(system))
        );
        assert_eq!(
            author(&store, id, Some(person())).unwrap(),
            Some(user()),
            "the user wins"
        );
    }

    #[test]
    fn unscheduled_access_call_counts_match_the_readme() {
        let store = store_with(two_la_plans());
        visit(&store, "RR8", true, NOW).unwrap();
        store.take_calls();
        visit(&store, "RR8", true, NOW).unwrap();
        use crate::store::Call::*;
        // The child's plans: listing get-many (head and entries), plans get-many; history:
        // head get + get-many; reservations: LA1, LA2, visits; one set-many. Reads never write.
        assert_eq!(
            store.take_calls(),
            [
                GetMany, GetMany, Get, GetMany, Increment, Increment, Increment, SetMany
            ]
        );
    }
}
