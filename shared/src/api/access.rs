//! The `access-notify` component, JSON side: an NHS user opens a child's CP-IS information. The
//! access is recorded (and each responsible LA notified, for unscheduled care) before the
//! details are returned; see [`crate::access::open`] for the store calls.
//!
//! | method and path | who | store calls |
//! |---|---|---|
//! | `POST /api/v1/access` | care setting | auth `get` (+ `get` of the credential's system when no `user` is given), then [`crate::access::open`] |
//! | `GET /fhir/r4/...` | see [`super::fhir`] | the same rules, in the shape of the national FHIR R4 API |

use super::routes::{self, Operation, resolve};
use super::views::{NhsPlanView, VisitView};
use super::{Context, Request, Response, json, parse_json, respond};
use crate::access::{NhsUser, author, open};
use crate::error::ApiError;
use crate::store::KeyValue;
use http::StatusCode;
use serde::{Deserialize, Serialize};

pub fn handle<S: KeyValue>(req: &Request, ctx: &Context<S>) -> Response {
    if super::segments(req, super::fhir::BASE).is_some() {
        return super::fhir::handle(req, ctx);
    }
    respond(route(req, ctx))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AccessInput {
    nhs_number: String,
    /// Optional when the credential has a registered system: the access is then its.
    #[serde(default)]
    user: Option<NhsUser>,
    /// Unscheduled unless the system says otherwise, as in the national API.
    #[serde(default = "unscheduled_by_default")]
    unscheduled: bool,
}

fn unscheduled_by_default() -> bool {
    true
}

#[derive(Serialize)]
struct AccessView<'a> {
    nhs_number: &'a crate::nhs_number::NhsNumber,
    flag: bool,
    access_recorded: bool,
    plans: Vec<NhsPlanView<'a>>,
    previous_visits: Vec<VisitView<'a>>,
}

fn route<S: KeyValue>(req: &Request, ctx: &Context<S>) -> Result<Response, ApiError> {
    let route = resolve(routes::ACCESS_NOTIFY, req)?;
    if route.operation != Operation::OpenAccess {
        return Err(super::not_found(req));
    }
    let caller = ctx.caller(req)?;
    let (setting, credential) = caller.require_care_setting()?;
    let input: AccessInput = parse_json(req.body())?;
    let nhs = super::nhs_number(&input.nhs_number, "nhs_number")?;
    let author = author(ctx.store, credential, input.user)?.ok_or_else(|| {
        ApiError::invalid(
            "user",
            format!(
                "send the user who opens the information (id, name, role): credential \
                 {credential} has no registered system to record the access against"
            ),
        )
    })?;
    let outcome = open(
        ctx.store,
        setting,
        &nhs,
        author,
        input.unscheduled,
        ctx.now,
        &ctx.config.visibility,
    )?;
    Ok(json(
        StatusCode::OK,
        &AccessView {
            nhs_number: &outcome.nhs_number,
            flag: !outcome.plans.is_empty(),
            access_recorded: outcome.recorded,
            plans: outcome.plans.iter().map(NhsPlanView::from).collect(),
            previous_visits: outcome
                .previous_visits
                .iter()
                .map(VisitView::from)
                .collect(),
        },
    ))
}

#[cfg(test)]
mod tests {
    use crate::api::test_support::App;
    use crate::auth::OrgKind;
    use crate::nhs_number::NhsNumber;
    use crate::plan::PlanType;
    use crate::plan::tests::plan;
    use serde_json::json;
    use time::macros::date;

    fn body(unscheduled: Option<bool>) -> String {
        let mut b = json!({"nhs_number": "9434765919", "user": {"id": "U1", "name": "Dr A Patel", "role": "ED Doctor"}});
        if let Some(u) = unscheduled {
            b["unscheduled"] = json!(u);
        }
        b.to_string()
    }

    fn app_with_plan() -> App {
        let app = App::new();
        let nhs = NhsNumber::parse("9434765919").unwrap();
        let mut p = plan(PlanType::ChildProtectionPlan, date!(2026 - 01 - 01), None);
        p.delete_date = Some(date!(2030 - 01 - 01));
        crate::records::seed(&app.store, &nhs, &[p]);
        app
    }

    #[test]
    fn details_show_plan_contacts_and_history_but_nothing_else() {
        let app = app_with_plan();
        let setting = app.token("RR8", OrgKind::CareSetting);
        let (status, first) = app.call(
            super::handle,
            "POST",
            "/api/v1/access",
            Some(&setting),
            &body(None),
        );
        assert_eq!(status, 200);
        assert_eq!(first["access_recorded"], true);
        let (_, second) = app.call(
            super::handle,
            "POST",
            "/api/v1/access",
            Some(&setting),
            &body(None),
        );
        let plan = &second["plans"][0];
        assert_eq!(plan["plan_type"]["code"], "342191000000101");
        assert_eq!(
            plan["responsible_la"]["emergency_duty_team_phone"],
            "0113 535 0600"
        );
        assert!(
            plan.get("delete_date").is_none() && plan.get("case_ref").is_none(),
            "{plan}"
        );
        let visit = &second["previous_visits"][0];
        assert_eq!(visit["setting"]["ods_code"], "RR8");
        assert_eq!(visit["viewer_role"], "ED Doctor");
        assert!(
            visit.get("user").is_none(),
            "no user identity in the history: {visit}"
        );
    }

    #[test]
    fn scheduled_access_adds_no_visit() {
        let app = app_with_plan();
        let setting = app.token("GP1", OrgKind::CareSetting);
        app.call(
            super::handle,
            "POST",
            "/api/v1/access",
            Some(&setting),
            &body(Some(false)),
        );
        let (_, out) = app.call(
            super::handle,
            "POST",
            "/api/v1/access",
            Some(&setting),
            &body(Some(false)),
        );
        assert_eq!(out["previous_visits"].as_array().unwrap().len(), 0);
    }

    #[test]
    fn missing_user_and_bad_input_are_named() {
        let app = app_with_plan();
        let setting = app.token("RR8", OrgKind::CareSetting);
        let la = app.token("LA1", OrgKind::LocalAuthority);
        // `"user": null` is `user` left out, as the OpenAPI description says (Schemathesis).
        for no_user in [
            json!({"nhs_number": "9434765919"}),
            json!({"nhs_number": "9434765919", "user": null}),
        ] {
            let (status, out) = app.call(
                super::handle,
                "POST",
                "/api/v1/access",
                Some(&setting),
                &no_user.to_string(),
            );
            assert_eq!(
                (status, out["error"]["field"].as_str()),
                (400, Some("user")),
                "{no_user}: {out}"
            );
            assert!(
                out["error"]["message"].as_str().unwrap().contains("user"),
                "{out}"
            );
        }
        let bad_nhs =
            json!({"nhs_number": "9434765918", "user": {"id": "U1", "name": "A", "role": "R"}})
                .to_string();
        let (status, out) = app.call(
            super::handle,
            "POST",
            "/api/v1/access",
            Some(&setting),
            &bad_nhs,
        );
        assert_eq!(
            (status, out["error"]["field"].as_str()),
            (400, Some("nhs_number"))
        );
        assert_eq!(
            app.call(
                super::handle,
                "POST",
                "/api/v1/access",
                Some(&la),
                &body(None)
            )
            .0,
            403
        );
        assert_eq!(
            app.call(super::handle, "GET", "/api/v1/access", Some(&setting), "")
                .0,
            405
        );
    }

    /// Found by Schemathesis: an unknown property inside `user` was accepted (only the top level
    /// refused unknown fields).
    #[test]
    fn unknown_fields_inside_user_are_refused() {
        let app = app_with_plan();
        let setting = app.token("RR8", OrgKind::CareSetting);
        let body = json!({"nhs_number": "9434765919",
                          "user": {"id": "U1", "name": "Dr A", "role": "ED Doctor", "extra": 42}});
        let (status, out) = app.call(
            super::handle,
            "POST",
            "/api/v1/access",
            Some(&setting),
            &body.to_string(),
        );
        assert_eq!(
            (status, out["error"]["code"].as_str()),
            (400, Some("malformed_json"))
        );
        assert!(
            out["error"]["message"].as_str().unwrap().contains("extra"),
            "{out}"
        );
    }
}
