//! An LA on its way to go-live: its worktray of cases waiting for an NHS number and its match
//! rate, and the administrator's view of every LA's.

use crate::support::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worktray_and_match_rate_follow_the_las_submissions() {
    for target in targets() {
        let cpis = Cpis::start(target).await;
        let (la1, la2) = (cpis.la("LA1").await, cpis.la("LA2").await);

        // A batch: two plans with NHS numbers, two cases without (one due ahead), one bad stage.
        let mut waiting = record("LA1", None, "W-1", LAC);
        waiting["stage"] = json!("looked_after");
        let mut ahead = record("LA1", None, "W-2", CPP);
        ahead["stage"] = json!("s47_enquiry");
        ahead["start_date"] = json!(days_from_today(10));
        let mut bad = record("LA1", None, "W-3", CPP);
        bad["stage"] = json!("conference");
        let batch = json!({"records": [
            record("LA1", Some(&nhs_number(1)), "L-1", CPP),
            record("LA1", Some(&nhs_number(2)), "L-2", LAC),
            waiting, ahead, bad
        ]});
        let reply = cpis.post("/api/v1/plans/batch", &la1, &batch).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(
            reply.body["results"][4]["error"]["field"],
            "records[4].stage"
        );

        let tray = cpis.get("/api/v1/la/worktray", &la1).await;
        assert_eq!(tray.status, 200, "{}", tray.body);
        let cases = tray.body["cases"].as_array().unwrap();
        assert_eq!(cases.len(), 2, "{}", tray.body);
        assert_eq!(cases[0]["case_ref"], "W-1");
        assert_eq!(cases[0]["stage"], "looked_after");
        assert_eq!(cases[0]["due_date"], days_from_today(-300));
        assert_eq!(cases[0]["overdue"], true);
        assert_eq!(cases[0]["days_waiting"], 0);
        assert_eq!(cases[1]["case_ref"], "W-2");
        assert_eq!(cases[1]["overdue"], false);
        assert_eq!(tray.body["more"], false);
        assert!(tray.body["next_cursor"].is_null());
        let page = cpis.get("/api/v1/la/worktray?limit=1", &la1).await;
        assert_eq!(page.body["more"], true);
        let rest = cpis
            .get(
                &format!("/api/v1/la/worktray?after={}", page.body["next_cursor"]),
                &la1,
            )
            .await;
        assert_eq!(rest.body["cases"][0]["case_ref"], "W-2");
        let other = cpis.get("/api/v1/la/worktray", &la2).await;
        assert_eq!(other.body["cases"], json!([]));

        let rate = cpis.get("/api/v1/la/match-rate", &la1).await;
        assert_eq!(rate.status, 200, "{}", rate.body);
        assert_eq!(
            rate.body,
            json!({"ods_code": "LA1", "shareable_plans": {"cpp": 1, "lac": 1, "ucpp": 0},
                   "waiting_for_nhs_number": 2, "overdue": 1, "match_rate": 0.5,
                   "meets_go_live_threshold": false})
        );

        // The NHS number arrives for one case, the other is withdrawn: both leave the worktray.
        let resolved = cpis
            .post(
                "/api/v1/plans",
                &la1,
                &record("LA1", Some(&nhs_number(3)), "W-1", LAC),
            )
            .await;
        assert_eq!(resolved.status, 201, "{}", resolved.body);
        assert_eq!(cpis.delete("/api/v1/cases/W-2", &la1).await.status, 200);
        let tray = cpis.get("/api/v1/la/worktray", &la1).await;
        assert_eq!(tray.body["cases"], json!([]));
        let rate = cpis.get("/api/v1/la/match-rate", &la1).await;
        assert_eq!(rate.body["shareable_plans"]["lac"], 2);
        assert_eq!(rate.body["waiting_for_nhs_number"], 0);
        assert_eq!(rate.body["match_rate"], 1.0);
        assert_eq!(rate.body["meets_go_live_threshold"], true);

        // The administrator sees every LA, and only the administrator.
        let all = cpis.get("/api/v1/admin/match-rate", ADMIN).await;
        assert_eq!(all.status, 200, "{}", all.body);
        let las = all.body["local_authorities"].as_array().unwrap();
        assert_eq!(las.len(), 2);
        assert_eq!(las[0], rate.body);
        assert_eq!(las[1]["ods_code"], "LA2");
        assert!(las[1]["match_rate"].is_null());
        assert_eq!(cpis.get("/api/v1/admin/match-rate", &la1).await.status, 403);
        assert_eq!(cpis.get("/api/v1/la/match-rate", ADMIN).await.status, 403);
        // The admin's other endpoints still reach `submit`.
        let revoked = cpis.delete("/api/v1/admin/organisations/LA2", ADMIN).await;
        assert_eq!(revoked.status, 200, "{}", revoked.body);
    }
}
