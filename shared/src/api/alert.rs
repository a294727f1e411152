//! The `alert` component: each LA reads and acknowledges its own alert feed, and sees the recent
//! visits of a child it holds a plan for.
//!
//! | method and path | who | store calls |
//! |---|---|---|
//! | `GET /api/v1/alerts?after={cursor}&limit={n}` | LA | auth `get`, (`get` of the acknowledgement when no `after`), `increment` by 0, `get-many` |
//! | `POST /api/v1/alerts/ack` | LA | auth `get`, `increment` by 0, `cas_begin` (+ `cas_swap` when it moves) |
//! | `GET /api/v1/la/children/{nhs}` | LA | auth `get`, `get`, `increment` by 0, `get-many` |

use super::routes::{self, Operation, resolve};
use super::views::{AlertView, VisitView};
use super::{Context, Request, Response, json, parse_json, query_params, respond};
use crate::access::la_child_view;
use crate::alerts::{MAX_PAGE, acknowledge, read_feed};
use crate::error::ApiError;
use crate::plan::Plan;
use crate::store::KeyValue;
use http::StatusCode;
use serde::{Deserialize, Serialize};

pub fn handle<S: KeyValue>(req: &Request, ctx: &Context<S>) -> Response {
    respond(route(req, ctx))
}

fn route<S: KeyValue>(req: &Request, ctx: &Context<S>) -> Result<Response, ApiError> {
    let route = resolve(routes::ALERT, req)?;
    let caller = ctx.caller(req)?;
    let la = caller.require_local_authority()?.ods_code.clone();
    match (route.operation, route.params.as_slice()) {
        (Operation::ReadAlerts, []) => {
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
                    _ if (1..=MAX_PAGE).contains(&number) => limit = number,
                    _ => {
                        return Err(ApiError::invalid(
                            name,
                            format!("limit must be from 1 to {MAX_PAGE}"),
                        ));
                    }
                }
            }
            let page = read_feed(
                ctx.store,
                &la,
                after,
                limit,
                ctx.now,
                ctx.config.alert_gap_grace,
            )?;
            Ok(json(
                StatusCode::OK,
                &serde_json::json!({
                    "alerts": page.entries.iter().map(AlertView::from).collect::<Vec<_>>(),
                    "next_cursor": page.next_cursor,
                    "more": page.more,
                }),
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
    use crate::api::test_support::App;
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

    #[test]
    fn feed_input_is_checked_and_care_settings_are_refused() {
        let app = App::new();
        let la1 = app.token("LA1", OrgKind::LocalAuthority);
        let setting = app.token("RR8", OrgKind::CareSetting);
        for (uri, field) in [
            ("/api/v1/alerts?after=x", "after"),
            ("/api/v1/alerts?limit=0", "limit"),
            ("/api/v1/alerts?limit=501", "limit"),
            ("/api/v1/alerts?la=LA2", "la"),
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
