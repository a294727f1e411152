//! A store that fails mid-request gives a 5xx with a clear body and leaves nothing half-written
//! that a later read can see; the app serves normally once the store recovers.
//!
//! Test host only: these tests need its fault injection (real Spin cannot fail a chosen call).

use crate::support::*;
use cpis_host_kit::KvOp;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_store_leaves_nothing_half_written() {
    for reuse in MODES {
        let cpis = Cpis::on_test_host(reuse).await;
        let (la1, la2, child) = cpis.child_of_two_las(60).await;
        let ed = cpis.setting("RR8").await;

        // How many key-value calls an unscheduled access makes when nothing fails.
        let before = cpis.host().store.call_count();
        assert_eq!(cpis.access(&ed, &child, true).await.status, 200);
        let calls = cpis.host().store.call_count() - before;
        let mut recorded = 1;

        // Fail its 1st, 2nd, … call in turn: every call it makes fails once. Each request either
        // answers 503 and records nothing, or (a failed `get-many` answered key by key by the
        // adapter) records the access exactly once.
        let mut failed = 0;
        for n in 1..=calls {
            cpis.host().store.fail_nth_call(n);
            let reply = cpis.access(&ed, &child, true).await;
            cpis.host().store.clear_faults();
            if reply.status == 200 {
                recorded += 1;
                continue;
            }
            failed += 1;
            assert_eq!(
                (reply.status, reply.code()),
                (503, "store_unavailable"),
                "call {n}: {}",
                reply.body
            );
            assert!(
                reply.body.get("plans").is_none(),
                "nothing shown unrecorded"
            );
        }
        // The credential, the history's head, three reservations and the set-many each fail it
        // (a failed get-many is answered key by key).
        assert!(failed >= 6, "only {failed} of {calls} calls");
        // The failed requests wrote no entry; each that went through wrote exactly one.
        let visits = cpis
            .host()
            .store
            .entries_with_prefix(&format!("log/visits/{child}/"));
        assert_eq!(
            visits.keys().filter(|k| !k.ends_with("/head")).count(),
            recorded
        );

        // Readers never see a half-done access: each feed shows exactly the completed
        // notifications once the abandoned positions are passed over (grace 1 s).
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        cpis.access(&ed, &child, true).await; // written after the grace: lets readers pass the gaps
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        for la in [&la1, &la2] {
            let feed = cpis.feed(la).await;
            assert_eq!(feed.len(), recorded + 1, "{feed:?}");
        }

        // A store that fails every call: every endpoint answers 503, nothing panics.
        cpis.host().store.fail_all_calls();
        let down = [
            cpis.get(&format!("/api/v1/flag/{child}"), &ed).await,
            cpis.post(
                "/api/v1/plans",
                &la1,
                &record("LA1", Some(&child), "L-1", CPP),
            )
            .await,
            cpis.get("/api/v1/alerts", &la1).await,
            cpis.access(&ed, &child, true).await,
        ];
        for reply in down {
            assert_eq!(
                (reply.status, reply.code()),
                (503, "store_unavailable"),
                "{}",
                reply.body
            );
            assert!(
                reply.body["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("safe")
            );
        }
        cpis.host().store.clear_faults();
        assert!(cpis.flag(&ed, &child).await);
        let reply = cpis
            .post("/api/v1/alerts/ack", &la1, &json!({"up_to": 1}))
            .await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        cpis.host().assert_no_traps();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_case_held_for_its_nhs_number_is_written_whole_or_not_at_all() {
    for reuse in MODES {
        let cpis = Cpis::on_test_host(reuse).await;
        let la = cpis.la("LA1").await;
        // The case and its alert go in one set-many: fail it.
        cpis.host().store.fail_nth_call_of(KvOp::SetMany, 1);
        let reply = cpis
            .post("/api/v1/plans", &la, &record("LA1", None, "P-1", CPP))
            .await;
        cpis.host().store.clear_faults();
        assert_eq!(reply.status, 503, "{}", reply.body);
        assert!(cpis.host().store.entries_with_prefix("case/").is_empty());
        // Sending it again completes it: one case, one alert.
        let reply = cpis
            .post("/api/v1/plans", &la, &record("LA1", None, "P-1", CPP))
            .await;
        assert_eq!(reply.body["applied"], "held_for_nhs_number");
        assert_eq!(cpis.host().store.entries_with_prefix("case/").len(), 1);
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        let feed = cpis.feed(&la).await;
        assert_eq!(feed.len(), 1);
        assert_eq!(feed[0]["kind"], "missing_nhs_number");
        cpis.host().assert_no_traps();
    }
}
