//! The HTTP API of the four components, on plain `http` types so that it runs natively in tests.
//! Each component reads the request body (at most [`MAX_BODY_BYTES`]), calls its `handle`, and
//! sends back the response: that is all a component does.

pub mod access;
pub mod alert;
pub mod fhir;
pub mod health;
pub mod query;
pub mod routes;
pub mod submit;
pub mod views;

use crate::auth::{self, Caller};
use crate::config::Config;
use crate::error::ApiError;
use crate::nhs_number::NhsNumber;
use crate::store::KeyValue;
use http::{HeaderValue, StatusCode, header};
use serde::Serialize;
use serde::de::DeserializeOwned;
use time::OffsetDateTime;

pub type Request = http::Request<Vec<u8>>;
pub type Response = http::Response<Vec<u8>>;

/// The largest request body accepted (a batch of 500 records fits well within it).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Everything a handler needs besides the request.
pub struct Context<'a, S> {
    pub store: &'a S,
    pub now: OffsetDateTime,
    pub config: Config,
}

impl<S: KeyValue> Context<'_, S> {
    /// Authenticates the request's bearer credential.
    pub fn caller(&self, req: &Request) -> Result<Caller, ApiError> {
        let authorization = match req.headers().get(header::AUTHORIZATION) {
            None => None,
            Some(value) => Some(value.to_str().map_err(|_| {
                ApiError::unauthenticated("the Authorization header is not readable text")
            })?),
        };
        auth::authenticate(
            self.store,
            authorization,
            self.config.admin_token.as_deref(),
        )
    }
}

/// 413 for a body over [`MAX_BODY_BYTES`]; components use it while reading the body.
pub fn body_too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
        format!(
            "the request body is larger than {MAX_BODY_BYTES} bytes; send fewer records per batch"
        ),
    )
}

/// How much of a request's body a component reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyToRead {
    /// None: the method carries no body in this API (GET, HEAD, DELETE, OPTIONS), or the request
    /// declares none (`Content-Length: 0`).
    Nothing,
    /// The declared `Content-Length`: read that many bytes and stop, without waiting for the
    /// end of the body (on Spin, waiting for it cost about 0.2 ms a request; docs/operations.md,
    /// "Known Spin issues").
    Exactly(usize),
    /// No declared length (chunked, or HTTP/2 without `Content-Length`): read to the end, at
    /// most [`MAX_BODY_BYTES`].
    UntilEnd,
}

/// What to read of a request's body, from its method and headers (RFC 9112 §6.3); 413 when the
/// declared length is over [`MAX_BODY_BYTES`], 400 when it is not a number.
pub fn body_to_read(
    method: &http::Method,
    headers: &http::HeaderMap,
) -> Result<BodyToRead, ApiError> {
    use http::Method;
    if [Method::GET, Method::HEAD, Method::DELETE, Method::OPTIONS].contains(method) {
        return Ok(BodyToRead::Nothing);
    }
    let Some(length) = headers.get(header::CONTENT_LENGTH) else {
        return Ok(BodyToRead::UntilEnd);
    };
    let length: usize = length
        .to_str()
        .ok()
        .and_then(|l| l.trim().parse().ok())
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "unreadable_body",
                "the Content-Length header is not a number of bytes",
            )
        })?;
    match length {
        0 => Ok(BodyToRead::Nothing),
        n if n > MAX_BODY_BYTES => Err(body_too_large()),
        n => Ok(BodyToRead::Exactly(n)),
    }
}

/// Renders a value as a JSON response.
pub fn json<T: Serialize>(status: StatusCode, value: &T) -> Response {
    let body = serde_json::to_vec(value).expect("API views always serialise");
    json_bytes(status, body, "no-store")
}

/// A response of JSON already rendered, with its `Cache-Control`.
pub fn json_bytes(status: StatusCode, body: Vec<u8>, cache_control: &'static str) -> Response {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(cache_control),
    );
    response
}

/// Renders an error as `{"error": {"code", "field", "message"}}` with its status (and, for
/// 405, the `Allow` header).
pub fn error_response(error: &ApiError) -> Response {
    #[derive(Serialize)]
    struct Body<'a> {
        error: &'a ApiError,
    }
    let mut response = json(error.status, &Body { error });
    if let Some(allow) = error
        .allow
        .as_deref()
        .and_then(|a| HeaderValue::from_str(a).ok())
    {
        response.headers_mut().insert(header::ALLOW, allow);
    }
    response
}

/// Renders an error found outside a handler (reading the body, the variables, opening the
/// store) in the form the path's API uses: `OperationOutcome` under `/fhir/r4`, else JSON.
pub fn error_response_for(path: &str, error: &ApiError) -> Response {
    if path.starts_with(fhir::BASE) {
        fhir::outcome_response(error)
    } else {
        error_response(error)
    }
}

/// Turns a handler's result into the response, errors included.
pub fn respond(result: Result<Response, ApiError>) -> Response {
    result.unwrap_or_else(|e| error_response(&e))
}

/// Parses a JSON request body, naming what is wrong with it.
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if body.is_empty() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            "the request body is empty; send JSON",
        ));
    }
    serde_json::from_slice(body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            format!("the request body is not valid here: {e}"),
        )
    })
}

/// The path after `prefix`, split into segments: `/api/v1/plans/943/x` with prefix
/// `/api/v1/plans` gives `["943", "x"]`. `None` when the path is not under the prefix.
pub fn segments<'a>(req: &'a Request, prefix: &str) -> Option<Vec<&'a str>> {
    let rest = req.uri().path().strip_prefix(prefix)?;
    if !(rest.is_empty() || rest.starts_with('/')) {
        return None;
    }
    Some(rest.split('/').filter(|s| !s.is_empty()).collect())
}

/// Query parameters, values percent-decoded; an unknown one is refused, not ignored, so that a
/// typo does not silently change what is returned.
pub fn query_params<'a>(
    req: &'a Request,
    known: &[&str],
) -> Result<Vec<(&'a str, String)>, ApiError> {
    let Some(query) = req.uri().query() else {
        return Ok(vec![]);
    };
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            if name.is_empty() {
                Err(ApiError::invalid(
                    "query",
                    format!(
                        "a query parameter has no name ({pair:?}); known: {}",
                        known.join(", ")
                    ),
                ))
            } else if known.contains(&name) {
                Ok((name, routes::percent_decode(value, name)?))
            } else {
                Err(ApiError::invalid(
                    name,
                    format!(
                        "unknown query parameter {name:?}; known: {}",
                        known.join(", ")
                    ),
                ))
            }
        })
        .collect()
}

/// An NHS number from a path segment or field, with its reason when invalid.
pub fn nhs_number(text: &str, field: &str) -> Result<NhsNumber, ApiError> {
    NhsNumber::parse(text).map_err(|e| ApiError::invalid_nhs_number(field, &e))
}

/// 404 for a path the component does not serve.
pub fn not_found(req: &Request) -> ApiError {
    ApiError::not_found(format!(
        "no such endpoint: {} {}",
        req.method(),
        req.uri().path()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_is_read_by_its_declared_length_and_never_for_methods_without_one() {
        use http::{HeaderMap, HeaderValue, Method};
        let with_length = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(
                header::CONTENT_LENGTH,
                HeaderValue::from_str(value).unwrap(),
            );
            headers
        };
        let none = HeaderMap::new();
        for method in [Method::GET, Method::HEAD, Method::DELETE, Method::OPTIONS] {
            assert_eq!(
                body_to_read(&method, &with_length("10")),
                Ok(BodyToRead::Nothing)
            );
        }
        assert_eq!(
            body_to_read(&Method::POST, &with_length("300")),
            Ok(BodyToRead::Exactly(300))
        );
        assert_eq!(
            body_to_read(&Method::PUT, &with_length("0")),
            Ok(BodyToRead::Nothing)
        );
        assert_eq!(body_to_read(&Method::POST, &none), Ok(BodyToRead::UntilEnd));
        let over = (MAX_BODY_BYTES + 1).to_string();
        assert_eq!(
            body_to_read(&Method::POST, &with_length(&over))
                .unwrap_err()
                .status,
            413
        );
        let error = body_to_read(&Method::POST, &with_length("ten")).unwrap_err();
        assert_eq!(
            (error.status, error.code),
            (StatusCode::BAD_REQUEST, "unreadable_body")
        );
    }

    #[test]
    fn errors_outside_handlers_take_the_form_of_the_paths_api() {
        let fhir = error_response_for("/fhir/r4/CareTeam", &body_too_large());
        assert_eq!(fhir.status(), 413);
        assert_eq!(
            fhir.headers()[header::CONTENT_TYPE],
            "application/fhir+json"
        );
        let outcome: serde_json::Value = serde_json::from_slice(fhir.body()).unwrap();
        assert_eq!(outcome["resourceType"], "OperationOutcome");
        assert_eq!(outcome["issue"][0]["code"], "too-long");

        let json = error_response_for("/api/v1/plans", &body_too_large());
        assert_eq!(json.status(), 413);
        let body: serde_json::Value = serde_json::from_slice(json.body()).unwrap();
        assert_eq!(body["error"]["code"], "body_too_large");
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    //! Drives the handlers as the components do, against a [`MemoryStore`].
    use super::*;
    use crate::auth::{OrgKind, Organisation, issue_credential};
    use crate::identifiers::{DisplayName, OdsCode};
    use crate::store::MemoryStore;
    use time::macros::datetime;

    pub const NOW: OffsetDateTime = datetime!(2026-11-25 10:00 UTC);
    pub const ADMIN: &str = "admin-secret";

    pub struct App {
        pub store: MemoryStore,
        pub now: OffsetDateTime,
    }

    pub type Handler = fn(&Request, &Context<MemoryStore>) -> Response;

    impl App {
        pub fn new() -> Self {
            Self {
                store: MemoryStore::new(),
                now: NOW,
            }
        }

        pub fn token(&self, ods: &str, kind: OrgKind) -> String {
            let org = Organisation {
                ods_code: OdsCode::parse(ods).unwrap(),
                name: DisplayName::parse(&format!("Org {ods}")).unwrap(),
                kind,
            };
            issue_credential(&self.store, org, self.now).unwrap().token
        }

        pub fn call(
            &self,
            handler: Handler,
            method: &str,
            uri: &str,
            token: Option<&str>,
            body: &str,
        ) -> (u16, serde_json::Value) {
            let res = self.request(handler, method, uri, token, body);
            let value = serde_json::from_slice(res.body()).unwrap_or(serde_json::Value::Null);
            (res.status().as_u16(), value)
        }

        /// The whole response, headers included.
        pub fn request(
            &self,
            handler: Handler,
            method: &str,
            uri: &str,
            token: Option<&str>,
            body: &str,
        ) -> Response {
            let mut builder = http::Request::builder().method(method).uri(uri);
            if let Some(token) = token {
                builder = builder.header("authorization", format!("Bearer {token}"));
            }
            let req = builder.body(body.as_bytes().to_vec()).unwrap();
            let config = Config {
                admin_token: Some(ADMIN.into()),
                ..Config::default()
            };
            let ctx = Context {
                store: &self.store,
                now: self.now,
                config,
            };
            handler(&req, &ctx)
        }
    }
}
