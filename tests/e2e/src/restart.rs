//! Nothing is lost across a restart: the app stopped and started again on the same data (the
//! same state directory on Spin + SQLite, the same Redis on Spin + Redis) keeps plans, access
//! histories, feeds, cursors and credentials, and every log continues at its next position.

use crate::support::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_keeps_everything_and_logs_continue_at_their_next_position() {
    for target in targets() {
        let cpis = Cpis::start(target).await;
        let (la1, la2, child) = cpis.child_of_two_las(90).await;
        let ed = cpis.setting("RR8").await;
        for _ in 0..2 {
            assert_eq!(cpis.access(&ed, &child, true).await.status, 200);
        }
        let pending = cpis
            .post(
                "/api/v1/plans",
                &la1,
                &record("LA1", None, "WAITING-1", LAC),
            )
            .await;
        assert_eq!(pending.status, 200, "{}", pending.body);
        // LA1's feed: two attendances, then the case waiting for its NHS number; it takes one.
        let before = cpis.feed(&la1).await;
        assert_eq!(before.len(), 3, "{target}: {before:?}");
        let acked = cpis
            .post("/api/v1/alerts/ack", &la1, &json!({"up_to": 1}))
            .await;
        assert_eq!(acked.status, 200, "{}", acked.body);
        let visits_head = format!("log/visits/{child}/head");
        assert_eq!(cpis.counter(&visits_head), Some(2), "{target}");

        let cpis = cpis.restart().await;

        // Credentials and plans are intact.
        assert!(cpis.flag(&ed, &child).await, "{target}: the flag survives");
        let third = cpis.access(&ed, &child, true).await;
        assert_eq!(third.status, 200, "{target}: {}", third.body);
        assert_eq!(third.body["plans"].as_array().unwrap().len(), 2);
        // The history is intact and the new access landed at the next position.
        assert_eq!(third.body["previous_visits"].as_array().unwrap().len(), 2);
        assert_eq!(cpis.counter(&visits_head), Some(3), "{target}");
        assert!(
            cpis.entries_with_prefix(&format!("log/visits/{child}/3"))
                .contains_key(&format!("log/visits/{child}/3")),
            "{target}: the third access is at position 3"
        );
        // LA1's cursor is where it was; its feed continues at position 4.
        let unread = cpis.get("/api/v1/alerts", &la1).await;
        assert_eq!(unread.status, 200, "{}", unread.body);
        let seqs: Vec<u64> = unread.body["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["seq"].as_u64().unwrap())
            .collect();
        assert_eq!(
            seqs,
            [2, 3, 4],
            "{target}: from the cursor, with the new attendance last"
        );
        assert_eq!(
            cpis.feed(&la2).await.len(),
            3,
            "{target}: LA2 was told of all three"
        );
        // The case waiting for its NHS number is still held: supplying the number resolves it.
        let other_child = nhs_number(91);
        let supplied = cpis
            .post(
                "/api/v1/plans",
                &la1,
                &record("LA1", Some(&other_child), "WAITING-1", LAC),
            )
            .await;
        assert_eq!(
            supplied.body["applied"], "created",
            "{target}: {}",
            supplied.body
        );
        let feed = cpis.feed(&la1).await;
        assert_eq!(
            feed[4]["kind"], "missing_nhs_number_resolved",
            "{target}: {feed:?}"
        );
        assert_eq!(feed[4]["resolves"], 3);
        cpis.assert_no_traps();
    }
}
