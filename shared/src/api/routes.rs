//! Every endpoint of the JSON API, one table per component: each component's handler dispatches
//! through its table ([`resolve`]: 404 for a path not in it, 405 with `Allow` for a method the
//! path does not answer), and the tests check the tables against `spin.toml` and the OpenAPI
//! description, `shared/openapi.json` ([`OPENAPI_JSON`]).
//!
//! To add an endpoint: add a row to its component's table and an [`Operation`], handle the
//! operation in the component's `route`, and describe it in `shared/openapi.json` under the same
//! path, method and `operationId` (the tests say what is missing).

use super::{Request, Response};
use crate::error::ApiError;
use http::StatusCode;

/// The OpenAPI 3.1 description of the JSON API, served byte for byte at
/// `GET /api/v1/openapi.json`.
pub const OPENAPI_JSON: &str = include_str!("../../openapi.json");

/// What a request asks for, once its path and method have matched a row of a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    GetOpenApiDescription,
    GetLiveness,
    GetReadiness,
    IssueCredential,
    RevokeCredential,
    RegisterSystem,
    GetSystem,
    UnregisterSystem,
    RevokeOrganisation,
    SubmitPlan,
    SubmitBatch,
    WithdrawPlan,
    WithdrawCase,
    GetFlag,
    OpenAccess,
    ReadAlerts,
    AcknowledgeAlerts,
    GetLaChild,
    GetWorktray,
    GetLaMatchRate,
    GetAdminMatchRate,
}

/// One endpoint: its method and path as the OpenAPI description names them, `{name}` standing
/// for one path segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Endpoint {
    pub operation: Operation,
    /// The `operationId` in the description.
    pub operation_id: &'static str,
    pub method: &'static str,
    pub path: &'static str,
}

const fn endpoint(
    operation: Operation,
    operation_id: &'static str,
    method: &'static str,
    path: &'static str,
) -> Endpoint {
    Endpoint {
        operation,
        operation_id,
        method,
        path,
    }
}

use Operation::*;

pub const SUBMIT: &[Endpoint] = &[
    endpoint(
        IssueCredential,
        "issueCredential",
        "POST",
        "/api/v1/admin/credentials",
    ),
    endpoint(
        RevokeCredential,
        "revokeCredential",
        "DELETE",
        "/api/v1/admin/credentials/{credential_id}",
    ),
    endpoint(
        RegisterSystem,
        "registerSystem",
        "PUT",
        "/api/v1/admin/credentials/{credential_id}/system",
    ),
    endpoint(
        GetSystem,
        "getSystem",
        "GET",
        "/api/v1/admin/credentials/{credential_id}/system",
    ),
    endpoint(
        UnregisterSystem,
        "unregisterSystem",
        "DELETE",
        "/api/v1/admin/credentials/{credential_id}/system",
    ),
    endpoint(
        RevokeOrganisation,
        "revokeOrganisation",
        "DELETE",
        "/api/v1/admin/organisations/{ods_code}",
    ),
    endpoint(SubmitPlan, "submitPlan", "POST", "/api/v1/plans"),
    endpoint(SubmitBatch, "submitBatch", "POST", "/api/v1/plans/batch"),
    endpoint(
        WithdrawPlan,
        "withdrawPlan",
        "DELETE",
        "/api/v1/plans/{nhs_number}/{plan_type}",
    ),
    endpoint(
        WithdrawCase,
        "withdrawCase",
        "DELETE",
        "/api/v1/cases/{case_ref}",
    ),
];

pub const QUERY: &[Endpoint] = &[
    endpoint(
        GetOpenApiDescription,
        "getOpenApiDescription",
        "GET",
        "/api/v1/openapi.json",
    ),
    endpoint(GetFlag, "getFlag", "GET", "/api/v1/flag/{nhs_number}"),
    endpoint(GetLiveness, "getLiveness", "GET", "/health/live"),
    endpoint(GetReadiness, "getReadiness", "GET", "/health/ready"),
];

/// The JSON side of `access-notify`; its FHIR side ([`super::fhir::BASE`]) is not the JSON API
/// and is not described in `shared/openapi.json` (its description is its CapabilityStatement).
pub const ACCESS_NOTIFY: &[Endpoint] =
    &[endpoint(OpenAccess, "openAccess", "POST", "/api/v1/access")];

pub const ALERT: &[Endpoint] = &[
    endpoint(ReadAlerts, "readAlerts", "GET", "/api/v1/alerts"),
    endpoint(
        AcknowledgeAlerts,
        "acknowledgeAlerts",
        "POST",
        "/api/v1/alerts/ack",
    ),
    endpoint(
        GetLaChild,
        "getLaChild",
        "GET",
        "/api/v1/la/children/{nhs_number}",
    ),
    endpoint(GetWorktray, "getWorktray", "GET", "/api/v1/la/worktray"),
    endpoint(
        GetLaMatchRate,
        "getLaMatchRate",
        "GET",
        "/api/v1/la/match-rate",
    ),
    endpoint(
        GetAdminMatchRate,
        "getAdminMatchRate",
        "GET",
        "/api/v1/admin/match-rate",
    ),
];

/// Each component (as `spin.toml` names it) and its table.
pub const COMPONENTS: &[(&str, &[Endpoint])] = &[
    ("submit", SUBMIT),
    ("query", QUERY),
    ("access-notify", ACCESS_NOTIFY),
    ("alert", ALERT),
];

/// A request matched to its endpoint, with the path's parameters in order, percent-decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub operation: Operation,
    pub params: Vec<String>,
}

/// Finds the request's endpoint in `table`: 404 when no path matches, 405 with the path's
/// methods in `Allow` when the method does not, 400 when a parameter is not percent-encoded
/// UTF-8.
pub fn resolve(table: &[Endpoint], req: &Request) -> Result<Route, ApiError> {
    let path: Vec<&str> = req
        .uri()
        .path()
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let mut allowed: Vec<&str> = vec![];
    for endpoint in table {
        let template: Vec<&str> = endpoint.path.split('/').filter(|s| !s.is_empty()).collect();
        if template.len() != path.len()
            || !template
                .iter()
                .zip(&path)
                .all(|(t, p)| is_parameter(t) || t == p)
        {
            continue;
        }
        if req.method().as_str() != endpoint.method {
            allowed.push(endpoint.method);
            continue;
        }
        let params = template
            .iter()
            .zip(&path)
            .filter(|(t, _)| is_parameter(t))
            .map(|(t, p)| percent_decode(p, t.trim_matches(['{', '}'])))
            .collect::<Result<_, _>>()?;
        return Ok(Route {
            operation: endpoint.operation,
            params,
        });
    }
    if allowed.is_empty() {
        Err(super::not_found(req))
    } else {
        Err(ApiError::method_not_allowed(&allowed))
    }
}

fn is_parameter(segment: &str) -> bool {
    segment.starts_with('{') && segment.ends_with('}')
}

/// Decodes `%XX` escapes (RFC 3986), so `943%20476%205919` is `943 476 5919`; `field` names the
/// parameter when the text is not valid.
pub fn percent_decode(text: &str, field: &str) -> Result<String, ApiError> {
    let bad = || {
        ApiError::invalid(
            field,
            format!("{field} is not valid percent-encoded UTF-8: {text:?}"),
        )
    };
    let mut bytes = Vec::with_capacity(text.len());
    let mut rest = text.as_bytes();
    while let Some((&first, tail)) = rest.split_first() {
        if first == b'%' {
            let hex = tail
                .get(..2)
                .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
                .ok_or_else(bad)?;
            let hex = std::str::from_utf8(hex).map_err(|_| bad())?;
            bytes.push(u8::from_str_radix(hex, 16).map_err(|_| bad())?);
            rest = &tail[2..];
        } else {
            bytes.push(first);
            rest = tail;
        }
    }
    String::from_utf8(bytes).map_err(|_| bad())
}

/// `GET /api/v1/openapi.json`: the description, byte for byte; no credential, no store.
pub fn openapi_description() -> Response {
    super::json_bytes(StatusCode::OK, OPENAPI_JSON.as_bytes().to_vec(), "no-cache")
}

#[cfg(test)]
mod tests {
    //! One source of truth: the route tables, the handlers, `spin.toml` and `shared/openapi.json`
    //! must name the same endpoints.
    use super::*;
    use crate::api::test_support::{App, Handler};
    use crate::api::{access, alert, query, submit};
    use http::header;
    use serde_json::Value;
    use std::collections::BTreeSet;

    /// Routes in `spin.toml` that are not the JSON API, left out of the description on purpose.
    const NOT_JSON_API: &[&str] = &["/fhir/r4/..."];

    fn handler(component: &str) -> Handler {
        match component {
            "submit" => submit::handle,
            "query" => query::handle,
            "access-notify" => access::handle,
            "alert" => alert::handle,
            other => panic!("no handler for component {other}"),
        }
    }

    fn description() -> Value {
        serde_json::from_str(OPENAPI_JSON).expect("shared/openapi.json is JSON")
    }

    /// `(route, component)` of every HTTP trigger in `spin.toml`.
    fn spin_routes() -> Vec<(String, String)> {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../spin.toml");
        let manifest: toml::Table = std::fs::read_to_string(path).unwrap().parse().unwrap();
        manifest["trigger"]["http"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                (
                    t["route"].as_str().unwrap().to_string(),
                    t["component"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }

    /// The Spin route that serves `path`: an exact route first, else the longest wildcard.
    fn spin_route_for<'a>(
        routes: &'a [(String, String)],
        path: &str,
    ) -> Option<&'a (String, String)> {
        routes.iter().find(|(r, _)| r == path).or_else(|| {
            routes
                .iter()
                .filter(|(r, _)| {
                    r.strip_suffix("/...").is_some_and(|prefix| {
                        path == prefix || path.starts_with(&format!("{prefix}/"))
                    })
                })
                .max_by_key(|(r, _)| r.len())
        })
    }

    /// A concrete path for a template: each `{parameter}` becomes `x`.
    fn sample(path: &str) -> String {
        path.split('/')
            .map(|s| if is_parameter(s) { "x" } else { s })
            .collect::<Vec<_>>()
            .join("/")
    }

    fn all_endpoints() -> impl Iterator<Item = (&'static str, &'static Endpoint)> {
        COMPONENTS
            .iter()
            .flat_map(|(component, table)| table.iter().map(move |e| (*component, e)))
    }

    #[test]
    fn the_description_names_exactly_the_endpoints_of_the_route_tables() {
        let description = description();
        let described: BTreeSet<(String, String, String)> = description["paths"]
            .as_object()
            .unwrap()
            .iter()
            .flat_map(|(path, item)| {
                item.as_object()
                    .unwrap()
                    .iter()
                    .filter_map(move |(method, op)| {
                        op.get("operationId").map(|id| {
                            (
                                path.clone(),
                                method.to_uppercase(),
                                id.as_str().unwrap().to_string(),
                            )
                        })
                    })
            })
            .collect();
        let tables: BTreeSet<(String, String, String)> = all_endpoints()
            .map(|(_, e)| {
                (
                    e.path.to_string(),
                    e.method.to_string(),
                    e.operation_id.to_string(),
                )
            })
            .collect();
        let missing: Vec<_> = tables.difference(&described).collect();
        let extra: Vec<_> = described.difference(&tables).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "served but not in shared/openapi.json: {missing:?}\n\
             in shared/openapi.json but not served: {extra:?}"
        );
        let ids: BTreeSet<_> = all_endpoints().map(|(_, e)| e.operation_id).collect();
        assert_eq!(
            ids.len(),
            all_endpoints().count(),
            "operationIds are unique"
        );
    }

    #[test]
    fn spin_toml_routes_every_endpoint_to_its_component_and_every_route_has_endpoints() {
        let routes = spin_routes();
        for (component, endpoint) in all_endpoints() {
            let served_by = spin_route_for(&routes, &sample(endpoint.path));
            assert_eq!(
                served_by.map(|(_, c)| c.as_str()),
                Some(component),
                "{} {} should reach {component} through spin.toml (route {served_by:?})",
                endpoint.method,
                endpoint.path,
            );
        }
        for (route, component) in &routes {
            if NOT_JSON_API.contains(&route.as_str()) {
                continue;
            }
            let used = all_endpoints().any(|(c, e)| {
                c == component
                    && spin_route_for(&routes, &sample(e.path)).is_some_and(|(r, _)| r == route)
            });
            assert!(
                used,
                "spin.toml routes {route} to {component}, but no endpoint of {component} in \
                 api::routes (so none in shared/openapi.json) is served through it"
            );
        }
    }

    #[test]
    fn the_fhir_interface_is_left_out_of_the_description_on_purpose() {
        let description = description();
        assert!(
            description["paths"]
                .as_object()
                .unwrap()
                .keys()
                .all(|p| !p.starts_with(crate::api::fhir::BASE))
        );
        let info = description["info"]["description"].as_str().unwrap();
        assert!(
            info.contains("/fhir/r4/..."),
            "the description says why FHIR is not in it"
        );
        let routes = spin_routes();
        for excluded in NOT_JSON_API {
            assert!(
                routes.iter().any(|(r, _)| r == excluded),
                "{excluded} is still a route"
            );
        }
    }

    #[test]
    fn each_handler_answers_every_endpoint_of_its_table_and_refuses_other_methods_with_allow() {
        let app = App::new();
        for (component, table) in COMPONENTS {
            for endpoint in *table {
                let path = sample(endpoint.path);
                let res = app.request(handler(component), endpoint.method, &path, None, "");
                assert!(
                    ![404, 405].contains(&res.status().as_u16()),
                    "{component} does not answer {} {path}: {}",
                    endpoint.method,
                    res.status()
                );
                let methods: Vec<&str> = table
                    .iter()
                    .filter(|e| e.path == endpoint.path)
                    .map(|e| e.method)
                    .collect();
                for method in ["GET", "POST", "PUT", "PATCH", "DELETE", "TRACE"] {
                    if methods.contains(&method) {
                        continue;
                    }
                    let res = app.request(handler(component), method, &path, None, "");
                    assert_eq!(res.status(), 405, "{method} {path}");
                    assert_eq!(
                        res.headers()[header::ALLOW],
                        methods.join(", ").as_str(),
                        "{method} {path}: 405 names the methods in Allow (RFC 9110)"
                    );
                    let body: Value = serde_json::from_slice(res.body()).unwrap();
                    assert_eq!(body["error"]["code"], "method_not_allowed");
                }
            }
        }
    }

    #[test]
    fn the_description_is_served_byte_for_byte_without_a_credential_or_the_store() {
        let app = App::new();
        app.store.take_calls();
        let res = app.request(query::handle, "GET", "/api/v1/openapi.json", None, "");
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers()[header::CONTENT_TYPE], "application/json");
        assert_eq!(res.body().as_slice(), OPENAPI_JSON.as_bytes());
        assert!(app.store.take_calls().is_empty(), "no store call");
        assert_eq!(description()["openapi"], "3.1.0");
    }

    #[test]
    fn path_parameters_are_percent_decoded_and_bad_escapes_are_named() {
        assert_eq!(
            percent_decode("943%20476%205919", "n").unwrap(),
            "943 476 5919"
        );
        assert_eq!(percent_decode("a%2Fb%c3%A9", "n").unwrap(), "a/bé");
        for bad in ["%", "%2", "%zz", "%+1", "%ff", "%C3"] {
            let err = percent_decode(bad, "nhs_number").unwrap_err();
            assert_eq!(
                (err.status.as_u16(), err.field.as_deref()),
                (400, Some("nhs_number")),
                "{bad}"
            );
        }
    }
}
