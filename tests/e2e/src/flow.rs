//! The whole information flow, as LAs, NHS care settings and the administrator meet it.

use crate::support::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn information_flow_from_submission_to_alert() {
    for target in targets() {
        let cpis = Cpis::start(target).await;
        let (leeds, bradford) = (cpis.la("LA1").await, cpis.la("LA2").await);
        let (ed, gp) = (cpis.setting("RR8").await, cpis.setting("GP1").await);
        let child = nhs_number(1);

        // An LA submits a plan; re-sending it changes nothing.
        let created = cpis
            .post(
                "/api/v1/plans",
                &leeds,
                &record("LA1", Some(&child), "L-1", CPP),
            )
            .await;
        assert_eq!(
            (created.status, created.body["applied"].as_str()),
            (201, Some("created")),
            "{}",
            created.body
        );
        let again = cpis
            .post(
                "/api/v1/plans",
                &leeds,
                &record("LA1", Some(&child), "L-1", CPP),
            )
            .await;
        assert_eq!(again.body["applied"], "unchanged");

        // Another LA holds a LAC plan for the same child, sent in a batch with rejected records.
        let batch = json!({"records": [
            record("LA2", Some(&child), "B-1", LAC),
            record("LA2", Some("9434765918"), "B-2", CPP),
            record("LA1", Some(&child), "B-3", CPP),
            {"nhs_number": child, "plan_type": "12345"}
        ]});
        let reply = cpis.post("/api/v1/plans/batch", &bradford, &batch).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(reply.body["batch_result"], "partly_accepted");
        let results = reply.body["results"].as_array().unwrap();
        assert_eq!(results[0]["outcome"], "accepted");
        assert_eq!(results[1]["error"]["code"], "invalid_nhs_number");
        assert_eq!(results[2]["error"]["code"], "forbidden");
        assert_eq!(results[3]["outcome"], "rejected");

        // A system lookup reads the flag and records nothing.
        assert!(cpis.flag(&ed, &child).await);
        assert!(!cpis.flag(&ed, &nhs_number(2)).await);
        assert!(cpis.feed(&leeds).await.is_empty());

        // An unscheduled user access: details, contacts, and each LA notified once.
        let first = cpis.access(&ed, &child, true).await;
        assert_eq!(first.status, 200, "{}", first.body);
        assert_eq!(first.body["access_recorded"], true);
        let plans = first.body["plans"].as_array().unwrap();
        assert_eq!(plans.len(), 2);
        let la1_plan = plans
            .iter()
            .find(|p| p["responsible_la"]["ods_code"] == "LA1")
            .unwrap();
        assert_eq!(
            la1_plan["responsible_la"]["office_hours_phone"],
            "0113 222 4401"
        );
        assert_eq!(
            la1_plan["responsible_la"]["emergency_duty_team_phone"],
            "0113 535 0600"
        );
        assert!(la1_plan.get("case_ref").is_none() && la1_plan.get("delete_date").is_none());
        assert_eq!(first.body["previous_visits"].as_array().unwrap().len(), 0);

        let second = cpis.access(&ed, &child, true).await;
        let visits = second.body["previous_visits"].as_array().unwrap();
        assert_eq!(visits.len(), 1);
        assert_eq!(visits[0]["setting"]["ods_code"], "RR8");
        assert_eq!(visits[0]["viewer_role"], "Emergency Department Doctor");

        // Scheduled access shows the same plans and adds nothing.
        let scheduled = cpis.access(&gp, &child, false).await;
        assert_eq!(scheduled.body["plans"].as_array().unwrap().len(), 2);
        let third = cpis.access(&ed, &child, true).await;
        assert_eq!(
            third.body["previous_visits"].as_array().unwrap().len(),
            2,
            "the scheduled access is not a visit"
        );

        let la1_feed = cpis.feed(&leeds).await;
        let la2_feed = cpis.feed(&bradford).await;
        assert_eq!((la1_feed.len(), la2_feed.len()), (3, 3));
        assert_eq!(la1_feed[0]["kind"], "attendance");
        assert_eq!(la1_feed[0]["plans"][0]["case_ref"], "L-1");
        assert_eq!(la2_feed[0]["plans"][0]["case_ref"], "B-1");
        assert_eq!(la1_feed[0]["setting"]["ods_code"], "RR8");

        // The LA acknowledges and resumes after what it took.
        let ack = cpis
            .post("/api/v1/alerts/ack", &leeds, &json!({"up_to": 2}))
            .await;
        assert_eq!(ack.status, 200);
        let rest = cpis.get("/api/v1/alerts", &leeds).await;
        assert_eq!(rest.body["alerts"].as_array().unwrap().len(), 1);
        assert_eq!(rest.body["alerts"][0]["seq"], 3);

        // The LA sees its own plan and the visits; the other LA's plan stays hidden.
        let view = cpis
            .get(&format!("/api/v1/la/children/{child}"), &leeds)
            .await;
        assert_eq!(view.status, 200);
        assert_eq!(view.body["plans"].as_array().unwrap().len(), 1);
        assert_eq!(view.body["visits"].as_array().unwrap().len(), 3);
        let stranger = cpis.la("LA3").await;
        assert_eq!(
            cpis.get(&format!("/api/v1/la/children/{child}"), &stranger)
                .await
                .status,
            404
        );

        cpis.assert_no_traps();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plans_end_and_are_withdrawn_and_visibility_follows() {
    for target in targets() {
        let cpis = Cpis::start(target).await;
        let la = cpis.la("LA1").await;
        let ed = cpis.setting("RR8").await;
        let (recent, old, withdrawn, deleted) = (
            nhs_number(10),
            nhs_number(11),
            nhs_number(12),
            nhs_number(13),
        );

        for nhs in [&recent, &old, &withdrawn, &deleted] {
            assert_eq!(
                cpis.post("/api/v1/plans", &la, &record("LA1", Some(nhs), "C", CPP))
                    .await
                    .status,
                201
            );
        }
        // Ended ten days ago: still visible. Ended 400 days ago: hidden. Delete date today: hidden.
        let mut ended = record("LA1", Some(&recent), "C", CPP);
        ended["start_date"] = json!(days_from_today(-500));
        ended["end_date"] = json!(days_from_today(-10));
        let mut long_ended = record("LA1", Some(&old), "C", CPP);
        long_ended["start_date"] = json!(days_from_today(-800));
        long_ended["end_date"] = json!(days_from_today(-400));
        let mut delete_now = record("LA1", Some(&deleted), "C", CPP);
        delete_now["delete_date"] = json!(days_from_today(0));
        for body in [ended, long_ended, delete_now] {
            let reply = cpis.post("/api/v1/plans", &la, &body).await;
            assert_eq!(
                (reply.status, reply.body["applied"].as_str()),
                (200, Some("updated")),
                "{}",
                reply.body
            );
        }
        let withdraw = cpis
            .delete(&format!("/api/v1/plans/{withdrawn}/{CPP}"), &la)
            .await;
        assert_eq!(withdraw.body["applied"], "withdrawn");
        assert_eq!(
            cpis.delete(&format!("/api/v1/plans/{withdrawn}/{CPP}"), &la)
                .await
                .body["applied"],
            "unchanged"
        );

        assert!(
            cpis.flag(&ed, &recent).await,
            "an ended plan stays visible for 364 days"
        );
        assert!(!cpis.flag(&ed, &old).await);
        assert!(!cpis.flag(&ed, &withdrawn).await);
        assert!(
            !cpis.flag(&ed, &deleted).await,
            "never after the delete date"
        );

        // Opening a child with nothing visible records nothing and notifies nobody.
        let reply = cpis.access(&ed, &old, true).await;
        assert_eq!(
            (
                reply.body["flag"].as_bool(),
                reply.body["access_recorded"].as_bool()
            ),
            (Some(false), Some(false))
        );
        assert!(cpis.feed(&la).await.is_empty());
        assert!(
            cpis.entries_with_prefix(&format!("log/visits/{old}/"))
                .is_empty()
        );
        cpis.assert_no_traps();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_case_without_nhs_number_raises_and_then_clears_its_alert() {
    for target in targets() {
        let cpis = Cpis::start(target).await;
        let la = cpis.la("LA1").await;
        let ed = cpis.setting("RR8").await;
        let child = nhs_number(20);

        let held = cpis
            .post("/api/v1/plans", &la, &record("LA1", None, "PENDING-1", LAC))
            .await;
        assert_eq!(
            (held.status, held.body["applied"].as_str()),
            (200, Some("held_for_nhs_number"))
        );
        let feed = cpis.feed(&la).await;
        assert_eq!(feed.len(), 1);
        assert_eq!(feed[0]["kind"], "missing_nhs_number");
        assert_eq!(feed[0]["case"]["case_ref"], "PENDING-1");
        assert!(
            cpis.entries_with_prefix("child/").is_empty(),
            "never shared without an NHS number"
        );

        let supplied = cpis
            .post(
                "/api/v1/plans",
                &la,
                &record("LA1", Some(&child), "PENDING-1", LAC),
            )
            .await;
        assert_eq!(supplied.body["applied"], "created");
        assert!(cpis.flag(&ed, &child).await);
        let feed = cpis.feed(&la).await;
        assert_eq!(feed.len(), 2);
        assert_eq!(feed[1]["kind"], "missing_nhs_number_resolved");
        assert_eq!(feed[1]["resolves"], feed[0]["seq"]);
        assert_eq!(feed[1]["resolution"], "nhs_number_supplied");

        // A case withdrawn before its number arrives resolves its alert too.
        cpis.post("/api/v1/plans", &la, &record("LA1", None, "PENDING-2", CPP))
            .await;
        assert_eq!(
            cpis.delete("/api/v1/cases/PENDING-2", &la).await.body["applied"],
            "withdrawn"
        );
        let feed = cpis.feed(&la).await;
        assert_eq!(feed[3]["resolution"], "case_withdrawn");
        cpis.assert_no_traps();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_are_added_and_revoked_at_run_time() {
    for target in targets() {
        let cpis = Cpis::start(target).await;
        let first = cpis.la("LA1").await;
        let second = cpis.la("LA1").await;
        assert_eq!(
            cpis.post(
                "/api/v1/plans",
                &first,
                &record("LA1", Some(&nhs_number(30)), "C", CPP)
            )
            .await
            .status,
            201
        );

        let issued = cpis
            .post(
                "/api/v1/admin/credentials",
                ADMIN,
                &json!({"ods_code": "RR8", "name": "ED", "kind": "care_setting"}),
            )
            .await;
        let (token, id) = (
            issued.body["token"].as_str().unwrap(),
            issued.body["credential_id"].as_str().unwrap(),
        );
        assert!(cpis.flag(token, &nhs_number(30)).await);
        assert_eq!(
            cpis.delete(&format!("/api/v1/admin/credentials/{id}"), ADMIN)
                .await
                .status,
            200
        );
        assert_eq!(
            cpis.get(&format!("/api/v1/flag/{}", nhs_number(30)), token)
                .await
                .status,
            401
        );

        let revoked = cpis.delete("/api/v1/admin/organisations/LA1", ADMIN).await;
        assert_eq!(revoked.body["revoked_credentials"], 2);
        for token in [&first, &second] {
            assert_eq!(cpis.get("/api/v1/alerts", token).await.status, 401);
        }
        // Only the stored hash of a secret is kept.
        let secret = token.rsplit('_').next().unwrap();
        for (key, value) in cpis.entries_with_prefix("") {
            assert!(
                !String::from_utf8_lossy(&value).contains(secret),
                "{key} holds a secret"
            );
        }
        cpis.assert_no_traps();
    }
}
