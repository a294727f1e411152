//! The `query` component: is there a CP-IS record for this NHS number? A system lookup, with no
//! user and no side effects (national activity B0170-style: the flag, nothing else).
//!
//! | method and path | who | store calls |
//! |---|---|---|
//! | `GET /api/v1/openapi.json` | anyone | none: the OpenAPI description ([`routes::OPENAPI_JSON`]) |
//! | `GET /api/v1/flag/{nhs}` | care setting | auth `get`, `get` of the child's record |
//! | `GET /health/live` | anyone | none ([`super::health`]) |
//! | `GET /health/ready` | anyone | one `get` ([`super::health`]) |

use super::routes::{self, Operation, resolve};
use super::{Context, Request, Response, json, respond};
use crate::access::flag;
use crate::error::ApiError;
use crate::store::KeyValue;
use http::StatusCode;

pub fn handle<S: KeyValue>(req: &Request, ctx: &Context<S>) -> Response {
    respond(route(req, ctx))
}

fn route<S: KeyValue>(req: &Request, ctx: &Context<S>) -> Result<Response, ApiError> {
    let route = resolve(routes::QUERY, req)?;
    match (route.operation, route.params.as_slice()) {
        (Operation::GetOpenApiDescription, []) => Ok(routes::openapi_description()),
        (Operation::GetLiveness, []) => Ok(super::health::live()),
        (Operation::GetReadiness, []) => super::health::ready(ctx.store),
        (Operation::GetFlag, [nhs]) => {
            ctx.caller(req)?.require_care_setting()?;
            let nhs = super::nhs_number(nhs, "nhs_number")?;
            let flag = flag(ctx.store, &nhs, ctx.now.date(), &ctx.config.visibility)?;
            Ok(json(
                StatusCode::OK,
                &serde_json::json!({ "nhs_number": nhs, "flag": flag }),
            ))
        }
        _ => Err(super::not_found(req)),
    }
}

#[cfg(test)]
mod tests {
    use crate::api::test_support::App;
    use crate::auth::OrgKind;
    use crate::nhs_number::NhsNumber;
    use crate::plan::PlanType;
    use crate::plan::tests::plan;
    use time::macros::date;

    /// An app whose child 9434765919 has a visible plan, and a care setting's token.
    fn app_with_plan() -> (App, String) {
        let app = App::new();
        let setting = app.token("RR8", OrgKind::CareSetting);
        let nhs = NhsNumber::parse("9434765919").unwrap();
        let p = plan(PlanType::ChildProtectionPlan, date!(2026 - 01 - 01), None);
        crate::records::seed(&app.store, &nhs, &[p]);
        (app, setting)
    }

    #[test]
    fn flag_is_true_only_for_a_visible_plan() {
        let (app, setting) = app_with_plan();
        let (status, body) = app.call(
            super::handle,
            "GET",
            "/api/v1/flag/943-476-5919",
            Some(&setting),
            "",
        );
        assert_eq!((status, body["flag"].as_bool()), (200, Some(true)));
        assert_eq!(body["nhs_number"], "9434765919");
        let (_, body) = app.call(
            super::handle,
            "GET",
            "/api/v1/flag/9876543210",
            Some(&setting),
            "",
        );
        assert_eq!(body["flag"].as_bool(), Some(false));
        assert_eq!(
            body.as_object().unwrap().len(),
            2,
            "the flag answer says nothing else: {body}"
        );
    }

    #[test]
    fn only_care_settings_may_look_up_and_input_is_checked() {
        let app = App::new();
        let la = app.token("LA1", OrgKind::LocalAuthority);
        let setting = app.token("RR8", OrgKind::CareSetting);
        assert_eq!(
            app.call(
                super::handle,
                "GET",
                "/api/v1/flag/9434765919",
                Some(&la),
                ""
            )
            .0,
            403
        );
        assert_eq!(
            app.call(super::handle, "GET", "/api/v1/flag/9434765919", None, "")
                .0,
            401
        );
        let (status, body) = app.call(
            super::handle,
            "GET",
            "/api/v1/flag/1234567890",
            Some(&setting),
            "",
        );
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (400, Some("invalid_nhs_number"))
        );
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("check_value_ten")
        );
        assert_eq!(
            app.call(
                super::handle,
                "POST",
                "/api/v1/flag/9434765919",
                Some(&setting),
                ""
            )
            .0,
            405
        );
        assert_eq!(
            app.call(super::handle, "GET", "/api/v1/flag", Some(&setting), "")
                .0,
            404
        );
    }

    /// Found by Schemathesis: a grouped NHS number in the path arrives percent-encoded
    /// (`943%20476%205919`) and was refused for its `%`; path parameters are now decoded.
    #[test]
    fn a_percent_encoded_nhs_number_in_the_path_is_decoded() {
        let (app, setting) = app_with_plan();
        let (status, body) = app.call(
            super::handle,
            "GET",
            "/api/v1/flag/943%20476%205919",
            Some(&setting),
            "",
        );
        assert_eq!(
            (status, body["flag"].as_bool()),
            (200, Some(true)),
            "{body}"
        );
        let (status, body) = app.call(
            super::handle,
            "GET",
            "/api/v1/flag/943%2",
            Some(&setting),
            "",
        );
        assert_eq!(
            (status, body["error"]["field"].as_str()),
            (400, Some("nhs_number"))
        );
    }
}
