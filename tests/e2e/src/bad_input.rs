//! Every kind of bad input and every wrong credential gets the right 4xx with a body that names
//! the problem, and changes nothing.

use crate::support::*;
use http::Method;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_a_named_4xx_and_changes_nothing() {
    for target in targets() {
        let cpis = Cpis::start(target).await;
        let la = cpis.la("LA1").await;
        let ed = cpis.setting("RR8").await;
        let child = nhs_number(40);
        cpis.post("/api/v1/plans", &la, &record("LA1", Some(&child), "C", CPP))
            .await;
        let before = cpis.entries_with_prefix("");

        let mut end_before_start = record("LA1", Some(&child), "C", CPP);
        end_before_start["end_date"] = json!("2000-01-01");
        let mut unknown_type = record("LA1", Some(&child), "C", CPP);
        unknown_type["plan_type"] = json!("CPP");
        let huge = "x".repeat(1024 * 1024 + 10);

        // (method, path, token, body, status, code, field)
        let cases: Vec<(Method, String, &str, String, u16, &str, &str)> = vec![
            (
                Method::POST,
                "/api/v1/plans".into(),
                &la,
                record("LA1", Some("9434765918"), "C", CPP).to_string(),
                400,
                "invalid_nhs_number",
                "nhs_number",
            ),
            (
                Method::POST,
                "/api/v1/plans".into(),
                &la,
                record("LA1", Some("1234567890"), "C", CPP).to_string(),
                400,
                "invalid_nhs_number",
                "nhs_number",
            ),
            (
                Method::POST,
                "/api/v1/plans".into(),
                &la,
                record("LA1", Some("0000000000"), "C", CPP).to_string(),
                400,
                "invalid_nhs_number",
                "nhs_number",
            ),
            (
                Method::POST,
                "/api/v1/plans".into(),
                &la,
                unknown_type.to_string(),
                400,
                "invalid_field",
                "plan_type",
            ),
            (
                Method::POST,
                "/api/v1/plans".into(),
                &la,
                end_before_start.to_string(),
                400,
                "invalid_field",
                "end_date",
            ),
            (
                Method::POST,
                "/api/v1/plans".into(),
                &la,
                "{\"nhs_number\": ".into(),
                400,
                "malformed_json",
                "",
            ),
            (
                Method::POST,
                "/api/v1/plans".into(),
                &la,
                huge.clone(),
                413,
                "body_too_large",
                "",
            ),
            (
                Method::POST,
                "/api/v1/plans/batch".into(),
                &la,
                json!({"records": []}).to_string(),
                400,
                "invalid_field",
                "records",
            ),
            (
                Method::GET,
                "/api/v1/flag/943476591".into(),
                &ed,
                String::new(),
                400,
                "invalid_nhs_number",
                "nhs_number",
            ),
            (
                Method::GET,
                "/api/v1/alerts?after=-1".into(),
                &la,
                String::new(),
                400,
                "invalid_field",
                "after",
            ),
            (
                Method::GET,
                "/api/v1/alerts?after=99".into(),
                &la,
                String::new(),
                400,
                "invalid_field",
                "after",
            ),
            (
                Method::POST,
                "/api/v1/access".into(),
                &ed,
                // No user, and the credential has no system to record the access against.
                json!({"nhs_number": child}).to_string(),
                400,
                "invalid_field",
                "user",
            ),
            (
                Method::PUT,
                "/api/v1/access".into(),
                &ed,
                String::new(),
                405,
                "method_not_allowed",
                "",
            ),
            (
                Method::GET,
                "/api/v1/plans/nowhere/at/all".into(),
                &la,
                String::new(),
                404,
                "not_found",
                "",
            ),
        ];
        for (method, path, token, body, status, code, field) in cases {
            let reply = cpis
                .send(method.clone(), &path, Some(token), &[], &body)
                .await;
            assert_eq!(
                (reply.status, reply.code(), reply.field()),
                (status, code, field),
                "{method} {path}: {}",
                reply.body
            );
            assert!(
                !reply.body["error"]["message"]
                    .as_str()
                    .unwrap_or("")
                    .is_empty()
            );
        }
        // Reads write nothing either (no `increment` by 0 on any read path): the store is as it was.
        assert_eq!(
            cpis.entries_with_prefix(""),
            before,
            "{target}: refused requests wrote nothing"
        );
        cpis.assert_no_traps();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_credentials_are_refused() {
    for target in targets() {
        let cpis = Cpis::start(target).await;
        let (la1, la2) = (cpis.la("LA1").await, cpis.la("LA2").await);
        let ed = cpis.setting("RR8").await;
        let child = nhs_number(41);
        cpis.post(
            "/api/v1/plans",
            &la1,
            &record("LA1", Some(&child), "C", CPP),
        )
        .await;
        cpis.access(&ed, &child, true).await;
        let plan = record("LA1", Some(&child), "C", CPP).to_string();

        let cases: Vec<(Method, String, Option<&str>, String, u16)> = vec![
            // No credential, a malformed one, an unknown one.
            (
                Method::GET,
                "/api/v1/alerts".into(),
                None,
                String::new(),
                401,
            ),
            (
                Method::GET,
                format!("/api/v1/flag/{child}"),
                Some("not-a-token"),
                String::new(),
                401,
            ),
            (
                Method::GET,
                format!("/api/v1/flag/{child}"),
                Some("cpis_0123456789abcdef_00"),
                String::new(),
                401,
            ),
            // A care setting cannot submit or read an LA's feed.
            (
                Method::POST,
                "/api/v1/plans".into(),
                Some(&ed),
                plan.clone(),
                403,
            ),
            (
                Method::GET,
                "/api/v1/alerts".into(),
                Some(&ed),
                String::new(),
                403,
            ),
            // An LA cannot write another LA's plans, read another LA's child, look up flags or open records.
            (
                Method::POST,
                "/api/v1/plans".into(),
                Some(&la2),
                plan.clone(),
                403,
            ),
            (
                Method::GET,
                format!("/api/v1/la/children/{child}"),
                Some(&la2),
                String::new(),
                404,
            ),
            (
                Method::GET,
                format!("/api/v1/flag/{child}"),
                Some(&la1),
                String::new(),
                403,
            ),
            (
                Method::POST,
                "/api/v1/access".into(),
                Some(&la1),
                json!({"nhs_number": child, "user": {"id": "u", "name": "n", "role": "r"}})
                    .to_string(),
                403,
            ),
            // Nobody but the administrator manages credentials.
            (
                Method::POST,
                "/api/v1/admin/credentials".into(),
                Some(&la1),
                "{}".into(),
                403,
            ),
            (
                Method::POST,
                "/api/v1/admin/credentials".into(),
                Some("wrong-admin"),
                "{}".into(),
                401,
            ),
        ];
        for (method, path, token, body, status) in cases {
            let reply = cpis.send(method.clone(), &path, token, &[], &body).await;
            assert_eq!(
                reply.status, status,
                "{method} {path} with {token:?}: {}",
                reply.body
            );
            let expected = if status == 401 {
                "unauthenticated"
            } else if status == 403 {
                "forbidden"
            } else {
                "not_found"
            };
            assert_eq!(reply.code(), expected);
        }
        // LA2's own feed shows none of LA1's alerts.
        assert!(cpis.feed(&la2).await.is_empty());
        assert_eq!(cpis.feed(&la1).await.len(), 1);
        cpis.assert_no_traps();
    }
}
