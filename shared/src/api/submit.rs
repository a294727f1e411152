//! The `submit` component: LAs submit and withdraw plans and cases; the administrator issues and
//! revokes credentials.
//!
//! | method and path | who | store calls |
//! |---|---|---|
//! | `POST /api/v1/plans` | LA | auth `get`; plan: [`crate::records::upsert_plan`] + `get` of the pending case (+ `increment`, `set-many` when it resolves one); case without NHS number: `get` (+ `increment`, `set-many` when new); then the LA's counts: + `increment` when they changed (+ 2 per due date ahead, see [`crate::tally`]) |
//! | `POST /api/v1/plans/batch` | LA | auth `get`, then as above per record, but the counts once for the whole batch |
//! | `DELETE /api/v1/plans/{nhs}/{plan type code}` | LA | auth `get`, `get` (+ `delete`, `increment`) |
//! | `DELETE /api/v1/cases/{case ref}` | LA | auth `get`, `get` (+ `increment`, `set-many`, `increment`; + 2 if it was due ahead) |
//! | `POST /api/v1/admin/credentials` | administrator | `get`, `increment` (+ `increment` registering an LA), `set-many` |
//! | `DELETE /api/v1/admin/credentials/{id}` | administrator | `get`, `delete-many` |
//! | `PUT /api/v1/admin/credentials/{id}/system` | administrator | `get`, `set-many` |
//! | `GET /api/v1/admin/credentials/{id}/system` | administrator | `get` |
//! | `DELETE /api/v1/admin/credentials/{id}/system` | administrator | `get`, `delete` |
//! | `DELETE /api/v1/admin/organisations/{ods}` | administrator | `get`, `get-many` (+ `get-many` past the probe), `delete-many` |

use super::routes::{self, Operation, resolve};
use super::{Context, Request, Response, json, parse_json, respond};
use crate::auth::{
    CredentialId, NominatedSystem, OrgKind, Organisation, issue_credential, nominated_system,
    register_system, revoke_credential, revoke_organisation, unregister_system,
};
use crate::error::ApiError;
use crate::identifiers::{CaseRef, DisplayName, OdsCode};
use crate::plan::PlanType;
use crate::store::KeyValue;
use crate::submit::{Applied, BatchInput, RecordInput, Submission, apply, apply_batch};
use http::StatusCode;
use serde::{Deserialize, Serialize};

pub fn handle<S: KeyValue>(req: &Request, ctx: &Context<S>) -> Response {
    respond(route(req, ctx))
}

fn route<S: KeyValue>(req: &Request, ctx: &Context<S>) -> Result<Response, ApiError> {
    let route = resolve(routes::SUBMIT, req)?;
    let caller = ctx.caller(req)?;
    match (route.operation, route.params.as_slice()) {
        (Operation::IssueCredential, []) => {
            caller.require_administrator()?;
            issue(req, ctx)
        }
        (Operation::RevokeCredential, [id]) => {
            caller.require_administrator()?;
            let id = credential_id(id)?;
            revoke_credential(ctx.store, &id)?;
            Ok(json(
                StatusCode::OK,
                &serde_json::json!({ "revoked": id.to_string() }),
            ))
        }
        (
            operation @ (Operation::RegisterSystem
            | Operation::GetSystem
            | Operation::UnregisterSystem),
            [id],
        ) => {
            caller.require_administrator()?;
            system(req, ctx, operation, &credential_id(id)?)
        }
        (Operation::RevokeOrganisation, [ods]) => {
            caller.require_administrator()?;
            let ods = OdsCode::parse(ods).map_err(|e| ApiError::invalid("ods_code", e))?;
            let revoked = revoke_organisation(ctx.store, &ods)?;
            Ok(json(
                StatusCode::OK,
                &serde_json::json!({ "ods_code": ods, "revoked_credentials": revoked }),
            ))
        }
        (Operation::SubmitPlan, []) => {
            let la = caller.require_local_authority()?.ods_code.clone();
            let input: RecordInput = parse_json(req.body())?;
            applied(apply(
                ctx.store,
                &la,
                input.validate(&la, ctx.now.date())?,
                ctx.now,
            )?)
        }
        (Operation::SubmitBatch, []) => {
            let la = caller.require_local_authority()?.ods_code.clone();
            let batch: BatchInput = parse_json(req.body())?;
            Ok(json(
                StatusCode::OK,
                &apply_batch(ctx.store, &la, batch, ctx.now)?,
            ))
        }
        (Operation::WithdrawPlan, [nhs, plan_type]) => {
            let la = caller.require_local_authority()?.ods_code.clone();
            let submission = Submission::WithdrawPlan {
                nhs_number: super::nhs_number(nhs, "nhs_number")?,
                plan_type: PlanType::from_snomed_code(plan_type)
                    .map_err(|e| ApiError::invalid("plan_type", e))?,
            };
            applied(apply(ctx.store, &la, submission, ctx.now)?)
        }
        (Operation::WithdrawCase, [case_ref]) => {
            let la = caller.require_local_authority()?.ods_code.clone();
            let case_ref =
                CaseRef::parse(case_ref).map_err(|e| ApiError::invalid("case_ref", e))?;
            applied(apply(
                ctx.store,
                &la,
                Submission::WithdrawCase { case_ref },
                ctx.now,
            )?)
        }
        _ => Err(super::not_found(req)),
    }
}

fn credential_id(text: &str) -> Result<CredentialId, ApiError> {
    CredentialId::parse(text).ok_or_else(|| {
        ApiError::invalid(
            "credential_id",
            "a credential id is 16 lower-case hex digits",
        )
    })
}

/// The system a care setting's credential belongs to and its nominated responsible person:
/// `PUT` registers (or replaces) it, `GET` shows it, `DELETE` removes it.
fn system<S: KeyValue>(
    req: &Request,
    ctx: &Context<S>,
    operation: Operation,
    id: &CredentialId,
) -> Result<Response, ApiError> {
    let shown = |nominated: &NominatedSystem| {
        json(
            StatusCode::OK,
            &serde_json::json!({ "credential_id": id.to_string(), "system": nominated }),
        )
    };
    match operation {
        Operation::RegisterSystem => {
            let nominated: NominatedSystem = parse_json(req.body())?;
            register_system(ctx.store, id, nominated.clone(), ctx.now)?;
            Ok(shown(&nominated))
        }
        Operation::GetSystem => match nominated_system(ctx.store, id)? {
            Some(nominated) => Ok(shown(&nominated)),
            None => Err(ApiError::not_found(format!(
                "no system is registered with credential {id}"
            ))
            .with_field("credential_id")),
        },
        _ => {
            unregister_system(ctx.store, id)?;
            Ok(json(
                StatusCode::OK,
                &serde_json::json!({ "credential_id": id.to_string(), "system": null }),
            ))
        }
    }
}

fn applied(applied: Applied) -> Result<Response, ApiError> {
    #[derive(Serialize)]
    struct Body {
        applied: Applied,
    }
    let status = if applied == Applied::Created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(json(status, &Body { applied }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewCredential {
    ods_code: OdsCode,
    name: DisplayName,
    kind: OrgKind,
}

fn issue<S: KeyValue>(req: &Request, ctx: &Context<S>) -> Result<Response, ApiError> {
    let new: NewCredential = parse_json(req.body())?;
    let organisation = Organisation {
        ods_code: new.ods_code,
        name: new.name,
        kind: new.kind,
    };
    Ok(json(
        StatusCode::CREATED,
        &issue_credential(ctx.store, organisation, ctx.now)?,
    ))
}

#[cfg(test)]
mod tests {
    use crate::api::test_support::{ADMIN, App};
    use crate::auth::OrgKind;
    use serde_json::json;

    const CPP: &str = "342191000000101";

    fn record(nhs: &str) -> String {
        json!({
            "nhs_number": nhs, "case_ref": "C1", "plan_type": CPP, "start_date": "2026-01-10",
            "local_authority": {"ods_code": "LA1", "name": "Leeds", "office_hours_phone": "0113 222 4401",
                                "emergency_duty_team_phone": "0113 535 0600"}
        })
        .to_string()
    }

    #[test]
    fn la_submits_updates_and_withdraws_a_plan() {
        let app = App::new();
        let la = app.token("LA1", OrgKind::LocalAuthority);
        let (status, body) = app.call(
            super::handle,
            "POST",
            "/api/v1/plans",
            Some(&la),
            &record("943 476 5919"),
        );
        assert_eq!((status, body["applied"].as_str()), (201, Some("created")));
        let (status, body) = app.call(
            super::handle,
            "POST",
            "/api/v1/plans",
            Some(&la),
            &record("9434765919"),
        );
        assert_eq!((status, body["applied"].as_str()), (200, Some("unchanged")));
        let uri = format!("/api/v1/plans/9434765919/{CPP}");
        let (status, body) = app.call(super::handle, "DELETE", &uri, Some(&la), "");
        assert_eq!((status, body["applied"].as_str()), (200, Some("withdrawn")));
    }

    #[test]
    fn care_settings_and_strangers_cannot_submit() {
        let app = App::new();
        let setting = app.token("RR8", OrgKind::CareSetting);
        let (status, body) = app.call(
            super::handle,
            "POST",
            "/api/v1/plans",
            Some(&setting),
            &record("9434765919"),
        );
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (403, Some("forbidden"))
        );
        let (status, body) = app.call(
            super::handle,
            "POST",
            "/api/v1/plans",
            None,
            &record("9434765919"),
        );
        assert_eq!(
            (status, body["error"]["field"].as_str()),
            (401, Some("authorization"))
        );
        let (status, _) = app.call(
            super::handle,
            "POST",
            "/api/v1/plans",
            Some(ADMIN),
            &record("9434765919"),
        );
        assert_eq!(status, 403);
    }

    #[test]
    fn bad_bodies_and_paths_get_named_4xx() {
        let app = App::new();
        let la = app.token("LA1", OrgKind::LocalAuthority);
        let cases = [
            ("POST", "/api/v1/plans", "{not json", 400, "malformed_json"),
            ("POST", "/api/v1/plans", "", 400, "malformed_json"),
            (
                "POST",
                "/api/v1/plans",
                r#"{"surprise": 1}"#,
                400,
                "malformed_json",
            ),
            (
                "POST",
                "/api/v1/plans/batch",
                r#"{"records": 5}"#,
                400,
                "malformed_json",
            ),
            ("GET", "/api/v1/plans", "", 405, "method_not_allowed"),
            (
                "DELETE",
                "/api/v1/plans/9434765918/342191000000101",
                "",
                400,
                "invalid_nhs_number",
            ),
            (
                "DELETE",
                "/api/v1/plans/9434765919/1",
                "",
                400,
                "invalid_field",
            ),
            ("DELETE", "/api/v1/plans/a/b/c", "", 404, "not_found"),
            ("DELETE", "/api/v1/cases/a%2Fb", "", 400, "invalid_field"),
        ];
        for (method, uri, body, status, code) in cases {
            let (got, json) = app.call(super::handle, method, uri, Some(&la), body);
            assert_eq!(
                (got, json["error"]["code"].as_str()),
                (status, Some(code)),
                "{method} {uri} {body}: {json}"
            );
        }
    }

    #[test]
    fn batch_answers_per_record() {
        let app = App::new();
        let la = app.token("LA1", OrgKind::LocalAuthority);
        let bad: serde_json::Value = serde_json::from_str(&record("9434765918")).unwrap();
        let good: serde_json::Value = serde_json::from_str(&record("9434765919")).unwrap();
        let body = json!({ "records": [good, bad] }).to_string();
        let (status, out) = app.call(
            super::handle,
            "POST",
            "/api/v1/plans/batch",
            Some(&la),
            &body,
        );
        assert_eq!(status, 200);
        assert_eq!(out["batch_result"], "partly_accepted");
        assert_eq!(out["results"][0]["outcome"], "accepted");
        assert_eq!(out["results"][1]["outcome"], "rejected");
        assert_eq!(out["results"][1]["error"]["field"], "records[1].nhs_number");
    }

    #[test]
    fn administrator_issues_and_revokes_credentials_at_run_time() {
        let app = App::new();
        let body =
            json!({"ods_code": "LA9", "name": "Kirklees Council", "kind": "local_authority"})
                .to_string();
        let (status, issued) = app.call(
            super::handle,
            "POST",
            "/api/v1/admin/credentials",
            Some(ADMIN),
            &body,
        );
        assert_eq!(status, 201);
        let token = issued["token"].as_str().unwrap().to_string();
        let id = issued["credential_id"].as_str().unwrap().to_string();
        let mut r: serde_json::Value = serde_json::from_str(&record("9434765919")).unwrap();
        r["local_authority"]["ods_code"] = json!("LA9");
        let (status, _) = app.call(
            super::handle,
            "POST",
            "/api/v1/plans",
            Some(&token),
            &r.to_string(),
        );
        assert_eq!(status, 201);

        let (status, _) = app.call(
            super::handle,
            "DELETE",
            &format!("/api/v1/admin/credentials/{id}"),
            Some(ADMIN),
            "",
        );
        assert_eq!(status, 200);
        let (status, _) = app.call(
            super::handle,
            "POST",
            "/api/v1/plans",
            Some(&token),
            &r.to_string(),
        );
        assert_eq!(status, 401);

        let (status, out) = app.call(
            super::handle,
            "DELETE",
            "/api/v1/admin/organisations/LA9",
            Some(ADMIN),
            "",
        );
        assert_eq!(
            (status, out["revoked_credentials"].as_u64()),
            (200, Some(0))
        );
        let (status, _) = app.call(
            super::handle,
            "DELETE",
            "/api/v1/admin/organisations/LA9",
            Some(ADMIN),
            "",
        );
        assert_eq!(status, 404);

        // An LA is not the administrator.
        let (status, _) = app.call(
            super::handle,
            "POST",
            "/api/v1/admin/credentials",
            Some(&token),
            &body,
        );
        assert_eq!(status, 401);
        let la = app.token("LA1", OrgKind::LocalAuthority);
        let (status, _) = app.call(
            super::handle,
            "POST",
            "/api/v1/admin/credentials",
            Some(&la),
            &body,
        );
        assert_eq!(status, 403);
        let bad_kind = json!({"ods_code": "LA9", "name": "X", "kind": "hospital"}).to_string();
        let (status, out) = app.call(
            super::handle,
            "POST",
            "/api/v1/admin/credentials",
            Some(ADMIN),
            &bad_kind,
        );
        assert_eq!(
            (status, out["error"]["code"].as_str()),
            (400, Some("malformed_json"))
        );
    }

    /// Found by Schemathesis: `"action": null` is accepted as the default action, like every
    /// optional field sent as `null`; the description says so, and this keeps it so.
    #[test]
    fn a_null_action_is_the_default_upsert() {
        let app = App::new();
        let la = app.token("LA1", OrgKind::LocalAuthority);
        let mut r: serde_json::Value = serde_json::from_str(&record("9434765919")).unwrap();
        r["action"] = serde_json::Value::Null;
        let (status, body) = app.call(
            super::handle,
            "POST",
            "/api/v1/plans",
            Some(&la),
            &r.to_string(),
        );
        assert_eq!((status, body["applied"].as_str()), (201, Some("created")));
    }

    /// Found by Schemathesis: 405 came without `Allow` (RFC 9110).
    #[test]
    fn a_wrong_method_gets_405_with_allow() {
        let app = App::new();
        let res = app.request(super::handle, "TRACE", "/api/v1/plans/batch", None, "");
        assert_eq!(res.status(), 405);
        assert_eq!(res.headers()[http::header::ALLOW], "POST");
        let res = app.request(
            super::handle,
            "GET",
            "/api/v1/admin/credentials/0123456789abcdef",
            None,
            "",
        );
        assert_eq!(res.headers()[http::header::ALLOW], "DELETE");
    }

    /// Found by Schemathesis: the description let a batch be empty, which is refused; it now
    /// states the server's bounds, and this test keeps the two together.
    #[test]
    fn the_description_states_the_batch_bounds_the_server_applies() {
        let description: serde_json::Value =
            serde_json::from_str(crate::api::routes::OPENAPI_JSON).unwrap();
        let records = &description["components"]["schemas"]["BatchInput"]["properties"]["records"];
        assert_eq!(records["minItems"], 1);
        assert_eq!(records["maxItems"], crate::submit::MAX_BATCH_RECORDS);
        let app = App::new();
        let la = app.token("LA1", OrgKind::LocalAuthority);
        let (status, body) = app.call(
            super::handle,
            "POST",
            "/api/v1/plans/batch",
            Some(&la),
            r#"{"records": []}"#,
        );
        assert_eq!(
            (status, body["error"]["field"].as_str()),
            (400, Some("records"))
        );
    }
}
