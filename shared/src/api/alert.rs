//! The `alert` component: each LA reads and acknowledges its own alert feed, sees the recent
//! visits of a child it holds a plan for, works through its cases waiting for an NHS number and
//! follows its match rate; the administrator sees every LA's match rate.
//!
//! | method and path | who | store calls |
//! |---|---|---|
//! | `GET /api/v1/alerts?after={cursor}&limit={n}` | LA | auth `get`, (`get` of the acknowledgement when no `after`), `increment` by 0, `get-many` |
//! | `POST /api/v1/alerts/ack` | LA | auth `get`, `increment` by 0, `cas_begin` (+ `cas_swap` when it moves) |
//! | `GET /api/v1/la/children/{nhs}` | LA | auth `get`, `get`, `increment` by 0, `get-many` |
//! | `GET /api/v1/la/worktray?after={cursor}&limit={n}` | LA | auth `get`, `get-many`, (`get` of the start hint when no `after`), `get-many`, `get-many` (+ `set-many` when the hint moves on) |
//! | `GET /api/v1/la/match-rate` | LA | auth `get`, `get-many` |
//! | `GET /api/v1/admin/match-rate` | administrator | `get-many`, `get-many`, `get-many` |

use super::routes::{self, Operation, resolve};
use super::views::{VisitView, alert_page_json};
use super::{Context, Request, Response, json, json_bytes, parse_json, query_params, respond};
use crate::access::la_child_view;
use crate::alerts::{self, acknowledge, read_feed};
use crate::error::ApiError;
use crate::plan::Plan;
use crate::store::KeyValue;
use crate::tally::{local_authorities, match_rates};
use crate::worktray::{self, read_worktray};
use http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

pub fn handle<S: KeyValue>(req: &Request, ctx: &Context<S>) -> Response {
    respond(route(req, ctx))
}

/// A page's `after` cursor and `limit` (1 to `max`, default 100) from the query string.
fn cursor_and_limit(req: &Request, max: u64) -> Result<(Option<u64>, u64), ApiError> {
    let (mut after, mut limit) = (None, 100);
    for (name, value) in query_params(req, &["after", "limit"])? {
        let number = value.parse::<u64>().map_err(|_| {
            ApiError::invalid(
                name,
                format!("{name} must be a whole number; found {value:?}"),
            )
        })?;
        match name {
            "after" => after = Some(number),
            _ if (1..=max).contains(&number) => limit = number,
            _ => {
                return Err(ApiError::invalid(
                    name,
                    format!("limit must be from 1 to {max}"),
                ));
            }
        }
    }
    Ok((after, limit))
}

fn route<S: KeyValue>(req: &Request, ctx: &Context<S>) -> Result<Response, ApiError> {
    let route = resolve(routes::ALERT, req)?;
    let caller = ctx.caller(req)?;
    if route.operation == Operation::GetAdminMatchRate {
        caller.require_administrator()?;
        query_params(req, &[])?;
        let las = local_authorities(ctx.store)?;
        let rates = match_rates(ctx.store, &las, ctx.now.date())?;
        return Ok(json(
            StatusCode::OK,
            &serde_json::json!({ "local_authorities": rates }),
        ));
    }
    let la = caller.require_local_authority()?.ods_code.clone();
    match (route.operation, route.params.as_slice()) {
        (Operation::ReadAlerts, []) => {
            let (after, limit) = cursor_and_limit(req, alerts::MAX_PAGE)?;
            let page = read_feed::<Box<RawValue>>(
                ctx.store,
                &la,
                after,
                limit,
                ctx.now,
                ctx.config.alert_gap_grace,
            )?;
            Ok(json_bytes(
                StatusCode::OK,
                alert_page_json(&page.entries, page.next_cursor, page.more),
                "no-store",
            ))
        }
        (Operation::AcknowledgeAlerts, []) => {
            #[derive(Deserialize)]
            #[serde(deny_unknown_fields)]
            struct Ack {
                up_to: u64,
            }
            let ack: Ack = parse_json(req.body())?;
            Ok(json(
                StatusCode::OK,
                &acknowledge(ctx.store, &la, ack.up_to)?,
            ))
        }
        (Operation::GetWorktray, []) => {
            let (after, limit) = cursor_and_limit(req, worktray::MAX_PAGE)?;
            let page = read_worktray(
                ctx.store,
                &la,
                after,
                limit,
                ctx.now,
                ctx.config.alert_gap_grace,
            )?;
            Ok(json(StatusCode::OK, &page))
        }
        (Operation::GetLaMatchRate, []) => {
            query_params(req, &[])?;
            let rate = match_rates(ctx.store, std::slice::from_ref(&la), ctx.now.date())?;
            Ok(json(StatusCode::OK, &rate[0]))
        }
        (Operation::GetLaChild, [nhs]) => {
            let nhs = super::nhs_number(nhs, "nhs_number")?;
            let view = la_child_view(ctx.store, &la, &nhs)?;
            #[derive(Serialize)]
            struct Body<'a> {
                nhs_number: &'a crate::nhs_number::NhsNumber,
                plans: &'a [Plan],
                visits: Vec<VisitView<'a>>,
            }
            Ok(json(
                StatusCode::OK,
                &Body {
                    nhs_number: &nhs,
                    plans: &view.plans,
                    visits: view.visits.iter().map(VisitView::from).collect(),
                },
            ))
        }
        _ => Err(super::not_found(req)),
    }
}

#[cfg(test)]
mod tests {
    use crate::api::test_support::{ADMIN, App};
    use crate::api::{access, submit};
    use crate::auth::OrgKind;
    use serde_json::json;

    fn submit_plan(app: &App, la_token: &str, la: &str, nhs: &str) {
        let record = json!({
            "nhs_number": nhs, "case_ref": format!("{la}-REF"), "plan_type": "342191000000101", "start_date": "2026-01-10",
            "local_authority": {"ods_code": la, "name": "LA", "office_hours_phone": "0113 222 4401",
                                "emergency_duty_team_phone": "0113 535 0600"}
        });
        assert_eq!(
            app.call(
                submit::handle,
                "POST",
                "/api/v1/plans",
                Some(la_token),
                &record.to_string()
            )
            .0,
            201
        );
    }

    fn attend(app: &App, setting: &str, nhs: &str) {
        let body =
            json!({"nhs_number": nhs, "user": {"id": "U1", "name": "Dr A", "role": "ED Doctor"}})
                .to_string();
        assert_eq!(
            app.call(
                access::handle,
                "POST",
                "/api/v1/access",
                Some(setting),
                &body
            )
            .0,
            200
        );
    }

    #[test]
    fn attendance_reaches_only_the_responsible_las_feed_and_is_acknowledged() {
        let app = App::new();
        let (la1, la2) = (
            app.token("LA1", OrgKind::LocalAuthority),
            app.token("LA2", OrgKind::LocalAuthority),
        );
        let setting = app.token("RR8", OrgKind::CareSetting);
        submit_plan(&app, &la1, "LA1", "9434765919");
        attend(&app, &setting, "9434765919");
        attend(&app, &setting, "9434765919");

        let (status, feed) = app.call(super::handle, "GET", "/api/v1/alerts", Some(&la1), "");
        assert_eq!(status, 200);
        let alerts = feed["alerts"].as_array().unwrap();
        assert_eq!(alerts.len(), 2);
        assert_eq!(alerts[0]["kind"], "attendance");
        assert_eq!(alerts[0]["seq"], 1);
        assert_eq!(alerts[0]["nhs_number"], "9434765919");
        assert_eq!(alerts[0]["plans"][0]["case_ref"], "LA1-REF");
        assert_eq!(alerts[0]["setting"]["ods_code"], "RR8");
        assert_eq!(feed["next_cursor"], 2);

        let (_, other) = app.call(super::handle, "GET", "/api/v1/alerts", Some(&la2), "");
        assert_eq!(
            other["alerts"].as_array().unwrap().len(),
            0,
            "another LA sees nothing"
        );

        let (_, page) = app.call(
            super::handle,
            "GET",
            "/api/v1/alerts?after=0&limit=1",
            Some(&la1),
            "",
        );
        assert_eq!(
            (
                page["alerts"].as_array().unwrap().len(),
                page["more"].as_bool()
            ),
            (1, Some(true))
        );

        assert_eq!(
            app.call(
                super::handle,
                "POST",
                "/api/v1/alerts/ack",
                Some(&la1),
                r#"{"up_to": 1}"#
            )
            .0,
            200
        );
        let (_, rest) = app.call(super::handle, "GET", "/api/v1/alerts", Some(&la1), "");
        assert_eq!(rest["alerts"][0]["seq"], 2);
        let (status, out) = app.call(
            super::handle,
            "POST",
            "/api/v1/alerts/ack",
            Some(&la1),
            r#"{"up_to": 9}"#,
        );
        assert_eq!(
            (status, out["error"]["field"].as_str()),
            (400, Some("up_to"))
        );
    }

    #[test]
    fn la_sees_visits_only_for_its_own_children() {
        let app = App::new();
        let (la1, la2) = (
            app.token("LA1", OrgKind::LocalAuthority),
            app.token("LA2", OrgKind::LocalAuthority),
        );
        let setting = app.token("RR8", OrgKind::CareSetting);
        submit_plan(&app, &la1, "LA1", "9434765919");
        attend(&app, &setting, "9434765919");
        let (status, view) = app.call(
            super::handle,
            "GET",
            "/api/v1/la/children/9434765919",
            Some(&la1),
            "",
        );
        assert_eq!(status, 200);
        assert_eq!(view["plans"][0]["case_ref"], "LA1-REF");
        assert_eq!(view["visits"][0]["setting"]["ods_code"], "RR8");
        assert_eq!(
            app.call(
                super::handle,
                "GET",
                "/api/v1/la/children/9434765919",
                Some(&la2),
                ""
            )
            .0,
            404
        );
    }

    fn hold_case(app: &App, la_token: &str, case: &str, start: &str, stage: Option<&str>) {
        let record = json!({
            "case_ref": case, "plan_type": "764841000000100", "start_date": start, "stage": stage,
            "local_authority": {"ods_code": "LA1", "name": "LA", "office_hours_phone": "0113 222 4401",
                                "emergency_duty_team_phone": "0113 535 0600"}
        });
        let (status, body) = app.call(
            submit::handle,
            "POST",
            "/api/v1/plans",
            Some(la_token),
            &record.to_string(),
        );
        assert_eq!(status, 200, "{body}");
    }

    fn case_refs(page: &serde_json::Value) -> Vec<&str> {
        page["cases"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["case_ref"].as_str().unwrap())
            .collect()
    }

    #[test]
    fn the_worktray_lists_waiting_cases_oldest_first_in_pages_and_drops_closed_ones() {
        let mut app = App::new();
        let la1 = app.token("LA1", OrgKind::LocalAuthority);
        let la2 = app.token("LA2", OrgKind::LocalAuthority);
        let setting = app.token("RR8", OrgKind::CareSetting);
        hold_case(&app, &la1, "W1", "2026-11-01", Some("looked_after"));
        submit_plan(&app, &la1, "LA1", "9434765919");
        attend(&app, &setting, "9434765919");
        hold_case(&app, &la1, "W2", "2026-11-25", None);
        app.now += time::Duration::days(3);
        hold_case(&app, &la1, "W3", "2026-12-20", Some("s47_enquiry"));

        let (status, page) = app.call(super::handle, "GET", "/api/v1/la/worktray", Some(&la1), "");
        assert_eq!(status, 200, "{page}");
        assert_eq!(case_refs(&page), ["W1", "W2", "W3"]);
        assert_eq!(
            (page["more"].as_bool(), &page["next_cursor"]),
            (Some(false), &json!(null))
        );
        let w1 = &page["cases"][0];
        assert_eq!(w1["plan_type"], "764841000000100");
        assert_eq!(w1["stage"], "looked_after");
        assert_eq!(w1["recorded_at"], "2026-11-25T10:00:00Z");
        assert_eq!(w1["due_date"], "2026-11-01");
        assert_eq!(
            (w1["days_waiting"].as_i64(), w1["overdue"].as_bool()),
            (Some(3), Some(true))
        );
        let w2 = &page["cases"][1];
        assert_eq!(
            (w2["stage"].is_null(), w2["overdue"].as_bool()),
            (true, Some(true))
        );
        let w3 = &page["cases"][2];
        assert_eq!(
            (w3["days_waiting"].as_i64(), w3["overdue"].as_bool()),
            (Some(0), Some(false))
        );

        // Paged: the cursor resumes after the last case returned.
        let (_, first) = app.call(
            super::handle,
            "GET",
            "/api/v1/la/worktray?limit=2",
            Some(&la1),
            "",
        );
        assert_eq!(case_refs(&first), ["W1", "W2"]);
        assert_eq!(first["more"], true);
        let uri = format!("/api/v1/la/worktray?after={}&limit=2", first["next_cursor"]);
        let (_, rest) = app.call(super::handle, "GET", &uri, Some(&la1), "");
        assert_eq!(case_refs(&rest), ["W3"]);

        // Resolved or withdrawn cases leave it; another LA sees only its own (none).
        hold_case(&app, &la1, "W1", "2026-11-01", Some("looked_after"));
        let mut resolved: serde_json::Value = json!({
            "nhs_number": "9876543210", "case_ref": "W1", "plan_type": "764841000000100", "start_date": "2026-11-01",
            "local_authority": {"ods_code": "LA1", "name": "LA", "office_hours_phone": "0113 222 4401",
                                "emergency_duty_team_phone": "0113 535 0600"}
        });
        let (status, _) = app.call(
            submit::handle,
            "POST",
            "/api/v1/plans",
            Some(&la1),
            &resolved.to_string(),
        );
        assert_eq!(status, 201);
        let (status, _) = app.call(submit::handle, "DELETE", "/api/v1/cases/W2", Some(&la1), "");
        assert_eq!(status, 200);
        let (_, page) = app.call(super::handle, "GET", "/api/v1/la/worktray", Some(&la1), "");
        assert_eq!(case_refs(&page), ["W3"]);
        let (_, other) = app.call(super::handle, "GET", "/api/v1/la/worktray", Some(&la2), "");
        assert!(case_refs(&other).is_empty());

        // A read from the start begins after the closed past, and writes only when that moves.
        app.store.take_calls();
        app.call(super::handle, "GET", "/api/v1/la/worktray", Some(&la1), "");
        use crate::store::Call::*;
        assert_eq!(app.store.take_calls(), [Get, Get, Get, GetMany, GetMany]);
        // W1 sent again without its number opens it again, at the end.
        resolved.as_object_mut().unwrap().remove("nhs_number");
        let (status, _) = app.call(
            submit::handle,
            "POST",
            "/api/v1/plans",
            Some(&la1),
            &resolved.to_string(),
        );
        assert_eq!(status, 200);
        let (_, page) = app.call(super::handle, "GET", "/api/v1/la/worktray", Some(&la1), "");
        assert_eq!(case_refs(&page), ["W3", "W1"]);
    }

    #[test]
    fn match_rates_for_the_la_and_the_administrator() {
        let app = App::new();
        let la1 = app.token("LA1", OrgKind::LocalAuthority);
        let _la2 = app.token("LA2", OrgKind::LocalAuthority);
        let _setting = app.token("RR8", OrgKind::CareSetting);
        submit_plan(&app, &la1, "LA1", "9434765919");
        hold_case(&app, &la1, "W1", "2026-11-01", None);
        hold_case(&app, &la1, "W2", "2026-12-01", None);

        app.store.take_calls();
        let (status, rate) = app.call(
            super::handle,
            "GET",
            "/api/v1/la/match-rate",
            Some(&la1),
            "",
        );
        assert_eq!(status, 200, "{rate}");
        assert_eq!(
            rate,
            json!({"ods_code": "LA1", "shareable_plans": {"cpp": 1, "lac": 0, "ucpp": 0},
                   "waiting_for_nhs_number": 2, "overdue": 1, "match_rate": 0.3333,
                   "meets_go_live_threshold": false})
        );
        use crate::store::Call::*;
        assert_eq!(
            app.store.take_calls(),
            [Get, GetMany],
            "no write on reading the counts"
        );

        let (status, all) = app.call(
            super::handle,
            "GET",
            "/api/v1/admin/match-rate",
            Some(ADMIN),
            "",
        );
        assert_eq!(status, 200, "{all}");
        assert_eq!(app.store.take_calls(), [Get, GetMany, GetMany]);
        let las = all["local_authorities"].as_array().unwrap();
        assert_eq!(las.len(), 2, "LAs only, each once: {all}");
        assert_eq!(las[0], rate);
        assert_eq!(las[1]["ods_code"], "LA2");
        assert_eq!(
            (
                las[1]["match_rate"].is_null(),
                &las[1]["meets_go_live_threshold"]
            ),
            (true, &json!(false))
        );

        // Each is for its own caller only.
        assert_eq!(
            app.call(
                super::handle,
                "GET",
                "/api/v1/admin/match-rate",
                Some(&la1),
                ""
            )
            .0,
            403
        );
        assert_eq!(
            app.call(
                super::handle,
                "GET",
                "/api/v1/la/match-rate",
                Some(ADMIN),
                ""
            )
            .0,
            403
        );
        let (status, out) = app.call(
            super::handle,
            "GET",
            "/api/v1/la/match-rate?la=LA2",
            Some(&la1),
            "",
        );
        assert_eq!((status, out["error"]["field"].as_str()), (400, Some("la")));
        assert_eq!(
            app.call(
                super::handle,
                "POST",
                "/api/v1/la/match-rate",
                Some(&la1),
                ""
            )
            .0,
            405
        );
    }

    #[test]
    fn feed_and_worktray_input_is_checked_and_care_settings_are_refused() {
        let app = App::new();
        let la1 = app.token("LA1", OrgKind::LocalAuthority);
        let setting = app.token("RR8", OrgKind::CareSetting);
        for (uri, field) in [
            ("/api/v1/alerts?after=x", "after"),
            ("/api/v1/alerts?limit=0", "limit"),
            ("/api/v1/alerts?limit=501", "limit"),
            ("/api/v1/alerts?la=LA2", "la"),
            ("/api/v1/la/worktray?after=x", "after"),
            ("/api/v1/la/worktray?after=7", "after"),
            ("/api/v1/la/worktray?limit=0", "limit"),
            ("/api/v1/la/worktray?limit=501", "limit"),
            ("/api/v1/la/worktray?sort=new", "sort"),
        ] {
            let (status, out) = app.call(super::handle, "GET", uri, Some(&la1), "");
            assert_eq!(
                (status, out["error"]["field"].as_str()),
                (400, Some(field)),
                "{uri}"
            );
        }
        assert_eq!(
            app.call(super::handle, "GET", "/api/v1/alerts", Some(&setting), "")
                .0,
            403
        );
        assert_eq!(
            app.call(
                super::handle,
                "POST",
                "/api/v1/alerts/ack",
                Some(&la1),
                "{}"
            )
            .0,
            400
        );
    }

    /// Found by Schemathesis: `?=null` (a parameter with no name) answered an error whose
    /// `field` was empty; it is now named `query`.
    #[test]
    fn a_query_parameter_without_a_name_is_named() {
        let app = App::new();
        let la = app.token("LA1", OrgKind::LocalAuthority);
        let (status, body) = app.call(
            super::handle,
            "GET",
            "/api/v1/alerts?after=0&=null",
            Some(&la),
            "",
        );
        assert_eq!(
            (
                status,
                body["error"]["code"].as_str(),
                body["error"]["field"].as_str()
            ),
            (400, Some("invalid_field"), Some("query"))
        );
    }
}
