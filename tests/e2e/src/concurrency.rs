//! Nothing is lost when many requests for the same child or the same LA run at once.

use crate::support::*;
use futures::future::join_all;
use serde_json::Value;
use std::collections::HashSet;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_accesses_to_one_child_from_twenty_settings() {
    for target in targets() {
        let cpis = Cpis::start(target).await;
        let (la1, la2, child) = cpis.child_of_two_las(50).await;
        let mut settings = Vec::new();
        for i in 0..20 {
            settings.push(cpis.setting(&format!("ED{i:02}")).await);
        }

        let accesses = (0..200).map(|i| cpis.access(&settings[i % 20], &child, true));
        for reply in join_all(accesses).await {
            assert_eq!(reply.status, 200, "{}", reply.body);
        }

        // Every access is in the child's access log, each position written exactly once.
        let visits = cpis.entries_with_prefix(&format!("log/visits/{child}/"));
        let entries: Vec<_> = visits.keys().filter(|k| !k.ends_with("/head")).collect();
        assert_eq!(entries.len(), 200);
        assert_eq!(cpis.counter(&format!("log/visits/{child}/head")), Some(200));

        // Every notification is on each LA's feed exactly once.
        for la in [&la1, &la2] {
            let feed = cpis.feed(la).await;
            assert_eq!(feed.len(), 200);
            let seqs: HashSet<u64> = feed.iter().map(|a| a["seq"].as_u64().unwrap()).collect();
            assert_eq!(seqs.len(), 200);
            let per_setting = |s: &str| {
                feed.iter()
                    .filter(|a| a["setting"]["ods_code"] == s)
                    .count()
            };
            assert!((0..20).all(|i| per_setting(&format!("ED{i:02}")) == 10));
        }

        // The history shows the 25 newest, newest first.
        let reply = cpis.access(&settings[0], &child, false).await;
        let history: &Vec<Value> = reply.body["previous_visits"].as_array().unwrap();
        assert_eq!(history.len(), 25);
        let rfc3339 = &time::format_description::well_known::Rfc3339;
        let times: Vec<time::OffsetDateTime> = history
            .iter()
            .map(|v| {
                time::OffsetDateTime::parse(v["accessed_at"].as_str().unwrap(), rfc3339).unwrap()
            })
            .collect();
        assert!(
            times.windows(2).all(|w| w[0] >= w[1]),
            "newest first: {times:?}"
        );
        cpis.assert_no_traps();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_las_children_accessed_at_once() {
    for target in targets() {
        let cpis = Cpis::start(target).await;
        let ed = cpis.setting("RR8").await;
        let mut las = Vec::new();
        for i in 0..20 {
            let ods = format!("LA{i:02}");
            let token = cpis.la(&ods).await;
            // Submitted at once too: each child has its own record, each LA its own feed.
            las.push((ods, token, nhs_number(100 + i)));
        }
        let bodies: Vec<_> = las
            .iter()
            .map(|(ods, _, nhs)| record(ods, Some(nhs), "C", CPP))
            .collect();
        let submissions = las
            .iter()
            .zip(&bodies)
            .map(|((_, token, _), body)| cpis.post("/api/v1/plans", token, body));
        assert!(join_all(submissions).await.iter().all(|r| r.status == 201));

        let (cpis_ref, ed_ref) = (&cpis, &ed);
        let accesses = las
            .iter()
            .flat_map(|(_, _, nhs)| (0..5).map(move |_| nhs.clone()));
        let replies =
            join_all(accesses.map(|nhs| async move { cpis_ref.access(ed_ref, &nhs, true).await }))
                .await;
        assert!(
            replies
                .iter()
                .all(|r| r.status == 200 && r.body["access_recorded"] == true)
        );

        for (ods, token, nhs) in &las {
            let feed = cpis.feed(token).await;
            assert_eq!(feed.len(), 5, "{ods}");
            assert!(
                feed.iter().all(|a| a["nhs_number"] == nhs.as_str()),
                "{ods} sees only its own child"
            );
        }
        cpis.assert_no_traps();
    }
}

/// Eight LAs submitting the same child's first plans at the same moment: every plan is kept.
/// (The host's store has the semantics of Spin's SQLite store, where a compare-and-swap on an
/// absent key writes unconditionally: a design that shared one record per child would lose
/// plans here.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn las_creating_one_childs_first_plans_at_once_lose_nothing() {
    for target in targets() {
        let cpis = Cpis::start(target).await;
        let ed = cpis.setting("RR8").await;
        let mut las = Vec::new();
        for i in 0..8 {
            las.push((format!("LB{i}"), cpis.la(&format!("LB{i}")).await));
        }
        for round in 0..5 {
            let child = nhs_number(200 + round);
            let bodies: Vec<_> = las
                .iter()
                .flat_map(|(ods, _)| {
                    [
                        record(ods, Some(&child), "C", CPP),
                        record(ods, Some(&child), "D", LAC),
                    ]
                })
                .collect();
            let tokens = las.iter().flat_map(|(_, token)| [token, token]);
            let replies = join_all(
                tokens
                    .zip(&bodies)
                    .map(|(token, body)| cpis.post("/api/v1/plans", token, body)),
            )
            .await;
            assert!(
                replies.iter().all(|r| r.status == 201),
                "{:?}",
                replies.iter().map(|r| &r.body).collect::<Vec<_>>()
            );
            let seen = cpis.access(&ed, &child, false).await;
            assert_eq!(
                seen.body["plans"].as_array().unwrap().len(),
                16,
                "round {round}"
            );
        }
        cpis.assert_no_traps();
    }
}
