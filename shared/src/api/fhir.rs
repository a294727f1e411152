//! The `access-notify` component, FHIR side: the clinician's queries in the shape of the national
//! CP-IS FHIR R4 API, so that an NHS system built for it can point here. The resources are
//! rendered by [`crate::fhir`]; this module reads the request, applies the same rules as the JSON
//! API ([`super::access`]) and answers `application/fhir+json`, errors as `OperationOutcome`.
//!
//! | method and path | who | store calls |
//! |---|---|---|
//! | `GET /fhir/r4/metadata` | anyone | none |
//! | `GET /fhir/r4/CareTeam?patient:identifier=…` | care setting | auth `get` (+ `get` of the credential's system without user headers), then [`crate::access::open`] |
//! | `GET /fhir/r4/AuditEvent?patient:identifier=…[&_include=…]` | care setting | auth `get` (+ as above), the child's plans; when a plan is visible, the history (`increment` by 0, `get-many`) |
//!
//! The CareTeam search *is* the user's access: recorded (and each responsible LA notified, for
//! unscheduled care) before anything is shown, exactly as `POST /api/v1/access`. The AuditEvent
//! search only reads the history, so one user view is one recorded access however many of the
//! two searches the NHS system makes. Both give an empty Bundle for a child with no visible plan,
//! so the history of a child CP-IS does not hold is never disclosed.
//!
//! Checks, in order: path (404) and method (405); then for the searches the credential (401/403
//! ACCESS_DENIED), the headers (400 PRECONDITION_FAILED) and the search parameters (400
//! INVALID_SEARCH_DATA). Every response carries `TraceID`: the one sent, or a new UUID.
//!
//! The user is named by the `NHSD-End-User-*` headers, or by none of them: the national API
//! learns the user from the NHS CIS2 token, which CP-IS does not see, so an access without them
//! is recorded against the system registered with the credential and its nominated responsible
//! person ([`crate::access::author`]), and refused when there is none.

use super::{Context, Request, Response};
use crate::access::{AccessEvent, Author, HISTORY_LENGTH, NhsUser, author, flag, open};
use crate::auth::Organisation;
use crate::error::ApiError;
use crate::fhir::{
    self, AUDIT_EVENT_INCLUDE, Base, Ids, Issue, NHS_NUMBER_SYSTEM, PATIENT_IDENTIFIER, SpineCode,
    is_uuid, uuid_v4,
};
use crate::identifiers::DisplayName;
use crate::keys;
use crate::log::Entry;
use crate::nhs_number::NhsNumber;
use crate::store::{KeyValue, StoreError};
use http::header::{ALLOW, CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderName, HeaderValue, Method, StatusCode};
use serde_json::Value;
use std::fmt::Display;

/// Where the FHIR endpoints live; `api::access::handle` sends every path under it here.
pub const BASE: &str = "/fhir/r4";

/// The request headers of the national API, as it spells them (HTTP compares them ignoring case).
pub mod headers {
    /// A UUID identifying the request end to end; echoed back, generated when absent.
    pub const TRACE_ID: &str = "TraceID";
    /// `true` (the default) for unscheduled care: recorded and notified; `false`: audited only.
    pub const UNSCHEDULED: &str = "IsUnscheduledAccessEvent";
    /// The user's identifier in the NHS system (e.g. their CIS2 user id).
    pub const END_USER_ID: &str = "NHSD-End-User-Id";
    /// The user's name, shown in the child's access history.
    pub const END_USER_NAME: &str = "NHSD-End-User-Name";
    /// The user's role, shown in the child's access history.
    pub const END_USER_ROLE: &str = "NHSD-End-User-Role";
}

/// Serves every path under [`BASE`]: always `application/fhir+json` and a `TraceID`, errors as
/// an `OperationOutcome`.
pub fn handle<S: KeyValue>(req: &Request, ctx: &Context<S>) -> Response {
    let mut random = [0u8; 32];
    let random = getrandom::fill(&mut random).ok().map(|()| random);
    let (trace_half, seed_half) = match random {
        Some(bytes) => (Some(half(&bytes, 0)), Some(half(&bytes, 16))),
        None => (None, None),
    };
    let trace_id = match trace_id_sent(req) {
        Ok(Some(sent)) => Some(sent.to_string()),
        _ => trace_half.map(uuid_v4),
    };
    let result = match seed_half {
        Some(seed) => route(req, ctx, &mut Ids::new(seed)),
        None => Err(FhirError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "transient",
            None,
            "no randomness was available for the response's ids; sending the request again is safe",
        )),
    };
    let (status, body) = match result {
        Ok(body) => (StatusCode::OK, body),
        Err(error) => (error.status, fhir::operation_outcome(&error.issue)),
    };
    let mut response = Response::new(fhir::to_body(&body));
    *response.status_mut() = status;
    let response_headers = response.headers_mut();
    response_headers.insert(CONTENT_TYPE, HeaderValue::from_static(fhir::CONTENT_TYPE));
    response_headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some(value) = trace_id.and_then(|id| HeaderValue::from_str(&id).ok()) {
        response_headers.insert(HeaderName::from_static("traceid"), value);
    }
    if status == StatusCode::METHOD_NOT_ALLOWED {
        response_headers.insert(ALLOW, HeaderValue::from_static("GET"));
    }
    response
}

/// An error found before the request reached [`handle`] (a body too large, a bad variable, a
/// store that cannot be opened), as an `OperationOutcome`.
pub fn outcome_response(error: &ApiError) -> Response {
    let error = FhirError::from(error.clone());
    let mut response = Response::new(fhir::to_body(&fhir::operation_outcome(&error.issue)));
    *response.status_mut() = error.status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(fhir::CONTENT_TYPE));
    response
}

fn half(bytes: &[u8; 32], from: usize) -> [u8; 16] {
    let mut out = [0u8; 16];
    out.copy_from_slice(&bytes[from..from + 16]);
    out
}

fn route<S: KeyValue>(req: &Request, ctx: &Context<S>, ids: &mut Ids) -> Result<Value, FhirError> {
    let segments = super::segments(req, BASE).unwrap_or_default();
    let resource = match segments.as_slice() {
        [only] if ["metadata", "CareTeam", "AuditEvent"].contains(only) => *only,
        _ => {
            return Err(FhirError::new(
                StatusCode::NOT_FOUND,
                "not-found",
                None,
                format!(
                    "no such endpoint: {} {}. This server offers GET {BASE}/metadata, \
                     {BASE}/CareTeam and {BASE}/AuditEvent",
                    req.method(),
                    req.uri().path()
                ),
            ));
        }
    };
    if req.method() != Method::GET {
        return Err(FhirError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "not-supported",
            None,
            format!("{BASE}/{resource} is read with GET only"),
        ));
    }
    match resource {
        "metadata" => {
            trace_id_sent(req)?;
            if let Some(name) = parameter_names(req)?.into_iter().next() {
                return Err(FhirError::invalid_search(
                    &name,
                    format!(
                        "metadata takes no parameters; {} is not accepted",
                        quoted(&name)
                    ),
                ));
            }
            Ok(fhir::capability_statement())
        }
        "CareTeam" => care_teams(req, ctx, ids),
        _ => audit_events(req, ctx, ids),
    }
}

/// The CareTeam search: the user opens the child's information (recorded before it is shown).
fn care_teams<S: KeyValue>(
    req: &Request,
    ctx: &Context<S>,
    ids: &mut Ids,
) -> Result<Value, FhirError> {
    let search = Search::read(req, ctx, "CareTeam")?;
    let outcome = open(
        ctx.store,
        &search.setting,
        &search.nhs,
        search.author,
        search.unscheduled,
        ctx.now,
        &ctx.config.visibility,
    )?;
    let teams = outcome
        .plans
        .iter()
        .map(|plan| fhir::care_team(plan, &outcome.nhs_number, ctx.now.date(), ids.next_id()))
        .collect();
    Ok(fhir::searchset(
        teams,
        vec![],
        &search.self_link,
        &search.base,
        ctx.now,
        ids,
    ))
}

/// The AuditEvent search: the child's newest 25 unscheduled accesses; records nothing.
fn audit_events<S: KeyValue>(
    req: &Request,
    ctx: &Context<S>,
    ids: &mut Ids,
) -> Result<Value, FhirError> {
    let search = Search::read(req, ctx, "AuditEvent")?;
    let visits: Vec<Entry<AccessEvent>> = if flag(
        ctx.store,
        &search.nhs,
        ctx.now.date(),
        &ctx.config.visibility,
    )? {
        keys::visits(&search.nhs).newest(ctx.store, HISTORY_LENGTH)?
    } else {
        vec![]
    };
    // Each access's viewer is a PractitionerRole included in the Bundle, with or without the
    // `_include` (the AuditEvent refers to it, and CP-IS offers no read to resolve it by).
    let (events, viewers) = visits
        .iter()
        .map(|visit| {
            let role_id = ids.next_id();
            let viewer = search.base.reference("PractitionerRole", &role_id);
            (
                fhir::audit_event(visit, &search.nhs, ids.next_id(), &viewer),
                fhir::practitioner_role(visit, role_id),
            )
        })
        .unzip();
    Ok(fhir::searchset(
        events,
        viewers,
        &search.self_link,
        &search.base,
        ctx.now,
        ids,
    ))
}

/// Everything a search request must carry, checked in the order the errors are reported.
struct Search {
    setting: Organisation,
    author: Author,
    unscheduled: bool,
    nhs: NhsNumber,
    base: Base,
    /// The search as executed, for `Bundle.link` `self`.
    self_link: String,
}

impl Search {
    fn read<S: KeyValue>(
        req: &Request,
        ctx: &Context<S>,
        resource: &str,
    ) -> Result<Self, FhirError> {
        let caller = ctx.caller(req)?;
        let (setting, credential) = caller.require_care_setting()?;
        trace_id_sent(req)?;
        let user = user_headers(req)?;
        let author = author(ctx.store, credential, user)?.ok_or_else(|| {
            FhirError::precondition(
                headers::END_USER_ID,
                format!(
                    "the {}, {} and {} headers are missing, and credential {credential} has no \
                     registered system to record the access against: send the user's \
                     identifier, name and role, or have the administrator register the system \
                     and its responsible person (PUT /api/v1/admin/credentials/{credential}/system)",
                    headers::END_USER_ID,
                    headers::END_USER_NAME,
                    headers::END_USER_ROLE
                ),
            )
        })?;
        let unscheduled = unscheduled(req)?;
        let (nhs, include) = searched(req, resource == "AuditEvent")?;
        let base = base(req, ctx);
        let mut self_link = format!(
            "{}/{resource}?{PATIENT_IDENTIFIER}={NHS_NUMBER_SYSTEM}|{nhs}",
            base.or(BASE)
        );
        if include {
            self_link.push_str(&format!("&_include={AUDIT_EVENT_INCLUDE}"));
        }
        Ok(Self {
            setting: setting.clone(),
            author,
            unscheduled,
            nhs,
            base,
            self_link,
        })
    }
}

/// The user the `NHSD-End-User-*` headers name: all three, or none (`None`: the credential's
/// system answers for the access); some but not all is refused, naming the first missing.
fn user_headers(req: &Request) -> Result<Option<NhsUser>, FhirError> {
    const USER_HEADERS: [(&str, &str); 3] = [
        (headers::END_USER_ID, "identifier (e.g. their CIS2 user id)"),
        (headers::END_USER_NAME, "name"),
        (headers::END_USER_ROLE, "role"),
    ];
    let mut sent = [None; 3];
    for (slot, (name, _)) in sent.iter_mut().zip(USER_HEADERS) {
        *slot = header_text(req, name)?;
    }
    if sent.iter().all(Option::is_none) {
        return Ok(None);
    }
    let field = |i: usize| -> Result<DisplayName, FhirError> {
        let (name, what) = USER_HEADERS[i];
        let text = sent[i].ok_or_else(|| {
            FhirError::precondition(
                name,
                format!(
                    "the {name} header is missing: send the user's {what} with the other user \
                     headers, or none of them"
                ),
            )
        })?;
        DisplayName::parse(text).map_err(|e| {
            FhirError::precondition(name, format!("the {name} header is not valid: {e}"))
        })
    };
    Ok(Some(NhsUser {
        id: field(0)?,
        name: field(1)?,
        role: field(2)?,
    }))
}

/// The value of a header sent at most once, as UTF-8 text (names may hold accents).
fn header_text<'a>(req: &'a Request, name: &str) -> Result<Option<&'a str>, FhirError> {
    let mut values = req.headers().get_all(name).iter();
    let Some(first) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(FhirError::precondition(
            name,
            format!("the {name} header is sent more than once; send it once"),
        ));
    }
    std::str::from_utf8(first.as_bytes())
        .map(|text| Some(text.trim()))
        .map_err(|_| FhirError::precondition(name, format!("the {name} header is not UTF-8 text")))
}

/// The TraceID the client sent, if any; one that is not a UUID is refused.
fn trace_id_sent(req: &Request) -> Result<Option<&str>, FhirError> {
    match header_text(req, headers::TRACE_ID)? {
        None => Ok(None),
        Some(id) if is_uuid(id) => Ok(Some(id)),
        Some(other) => Err(FhirError::precondition(
            headers::TRACE_ID,
            format!(
                "the TraceID header must be a UUID such as 6ede3b9d-a81b-4c75-9d77-e1d64d85c323, \
                 or be left out to have one generated; it is {}",
                quoted(other)
            ),
        )),
    }
}

/// `IsUnscheduledAccessEvent`: `true` or `false` in any case; `true` when left out.
fn unscheduled(req: &Request) -> Result<bool, FhirError> {
    match header_text(req, headers::UNSCHEDULED)? {
        None => Ok(true),
        Some(text) if text.eq_ignore_ascii_case("true") => Ok(true),
        Some(text) if text.eq_ignore_ascii_case("false") => Ok(false),
        Some(other) => Err(FhirError::precondition(
            headers::UNSCHEDULED,
            format!(
                "the IsUnscheduledAccessEvent header must be true or false (true when left out); \
                 it is {}",
                quoted(other)
            ),
        )),
    }
}

/// The names and values of the query parameters, percent-decoded.
fn parameters(req: &Request) -> Result<Vec<(String, String)>, FhirError> {
    req.uri()
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let decode = |text: &str| {
                percent_decode(text).ok_or_else(|| {
                    FhirError::invalid_search(
                        name,
                        format!(
                            "the query {} is not valid percent-encoded UTF-8",
                            quoted(pair)
                        ),
                    )
                })
            };
            Ok((decode(name)?, decode(value)?))
        })
        .collect()
}

fn parameter_names(req: &Request) -> Result<Vec<String>, FhirError> {
    Ok(parameters(req)?.into_iter().map(|(name, _)| name).collect())
}

/// The NHS number of `patient:identifier=https://fhir.nhs.uk/Id/nhs-number|{nhs}`, the one search
/// parameter, and whether the AuditEvent search (`include_allowed`) asked for its viewers with
/// the national `_include`; any other parameter or `_include` value is refused, not ignored.
fn searched(req: &Request, include_allowed: bool) -> Result<(NhsNumber, bool), FhirError> {
    let example = format!("{PATIENT_IDENTIFIER}={NHS_NUMBER_SYSTEM}|9434765919");
    let mut searched: Option<String> = None;
    let mut include = false;
    for (name, value) in parameters(req)? {
        if name == "_include" && include_allowed {
            if value != AUDIT_EVENT_INCLUDE {
                return Err(FhirError::invalid_search(
                    &name,
                    format!(
                        "_include {} is not supported: the only one is _include={AUDIT_EVENT_INCLUDE}",
                        quoted(&value)
                    ),
                ));
            }
            if std::mem::replace(&mut include, true) {
                return Err(FhirError::invalid_search(
                    &name,
                    "_include is given more than once; give it once",
                ));
            }
            continue;
        }
        if name != PATIENT_IDENTIFIER {
            let supported = if include_allowed {
                format!("{PATIENT_IDENTIFIER} and _include")
            } else {
                format!("{PATIENT_IDENTIFIER} (and no _include)")
            };
            return Err(FhirError::invalid_search(
                &name,
                format!(
                    "unknown search parameter {}: the only ones supported are {supported}",
                    quoted(&name)
                ),
            ));
        }
        if searched.replace(value).is_some() {
            return Err(FhirError::invalid_search(
                PATIENT_IDENTIFIER,
                format!("{PATIENT_IDENTIFIER} is given more than once; search for one NHS number"),
            ));
        }
    }
    let token = searched.ok_or_else(|| {
        FhirError::invalid_search(
            PATIENT_IDENTIFIER,
            format!("the search needs the child's NHS number: {example}"),
        )
    })?;
    let (system, number) = token.split_once('|').ok_or_else(|| {
        FhirError::invalid_search(
            PATIENT_IDENTIFIER,
            format!("give the identifier system with the NHS number: {example}"),
        )
    })?;
    if system != NHS_NUMBER_SYSTEM {
        return Err(FhirError::invalid_search(
            PATIENT_IDENTIFIER,
            format!(
                "identifier system {} is not supported: search by NHS number, {example}",
                quoted(system)
            ),
        ));
    }
    let nhs = NhsNumber::parse(number).map_err(|e| {
        FhirError::invalid_search(PATIENT_IDENTIFIER, format!("{e} (reason: {})", e.reason()))
    })?;
    Ok((nhs, include))
}

/// Decodes `%XX` escapes and `+` (a space); `None` for a broken escape or bytes that are not UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                if !hex.iter().all(u8::is_ascii_hexdigit) {
                    return None;
                }
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            byte => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// The FHIR base the request came to, for absolute `fullUrl`s: the `fhir_base_url` variable
/// when set; else the request's scheme and authority (Spin builds them from the `Host` header;
/// the `spin-full-url` header when the URI has none) followed by [`BASE`]. An authority is used
/// only when it is a plain `host[:port]`, and the URL goes back only to the client that sent it,
/// in a response that is never cached (`no-store`). [`Base::unknown`] when there is neither.
fn base<S>(req: &Request, ctx: &Context<S>) -> Base {
    if let Some(configured) = &ctx.config.fhir_base_url {
        return Base::absolute(configured.clone());
    }
    let from_uri = |uri: &http::Uri| {
        let scheme = uri
            .scheme_str()
            .filter(|s| matches!(*s, "http" | "https"))?;
        let authority = uri
            .authority()
            .map(|a| a.as_str())
            .filter(|a| plain_authority(a))?;
        Some(format!("{scheme}://{authority}{BASE}"))
    };
    let spin_full_url = || {
        let text = req.headers().get("spin-full-url")?.to_str().ok()?;
        from_uri(&text.parse().ok()?)
    };
    match from_uri(req.uri()).or_else(spin_full_url) {
        Some(base) => Base::absolute(base),
        None => Base::unknown(),
    }
}

/// `host[:port]`: a DNS name or IPv4 address (letters, digits, `-`, `.`) or a bracketed IPv6
/// address, and an optional port: nothing that could carry user information or a path.
fn plain_authority(authority: &str) -> bool {
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) if !host.ends_with(':') && !port.contains(']') => (host, Some(port)),
        _ => (authority, None),
    };
    let host_ok = if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        !v6.is_empty()
            && v6
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
    } else {
        !host.is_empty()
            && host.len() <= 253
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
    };
    let port_ok =
        port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()));
    host_ok && port_ok
}

/// Client text quoted in a message, cut short so that a message stays a sentence.
fn quoted(text: &str) -> String {
    const MAX_CHARS: usize = 64;
    if text.chars().count() <= MAX_CHARS {
        format!("{text:?}")
    } else {
        let cut: String = text.chars().take(MAX_CHARS).collect();
        format!("{cut:?}…")
    }
}

/// A failure as the FHIR API reports it: a status and one `OperationOutcome` issue.
#[derive(Debug)]
struct FhirError {
    status: StatusCode,
    issue: Issue,
}

impl FhirError {
    fn new(
        status: StatusCode,
        issue_type: &'static str,
        spine_code: Option<SpineCode>,
        diagnostics: impl Into<String>,
    ) -> Self {
        Self {
            status,
            issue: Issue {
                issue_type,
                spine_code,
                diagnostics: diagnostics.into(),
                location: None,
            },
        }
    }

    fn at(mut self, location: impl Display) -> Self {
        self.issue.location = Some(location.to_string());
        self
    }

    /// 400 INVALID_SEARCH_DATA: a search parameter, or its value, is wrong.
    fn invalid_search(parameter: &str, diagnostics: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid",
            Some(SpineCode::InvalidSearchData),
            diagnostics,
        )
        .at(parameter)
    }

    /// 400 PRECONDITION_FAILED: a header is missing or invalid.
    fn precondition(header: &str, diagnostics: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid",
            Some(SpineCode::PreconditionFailed),
            diagnostics,
        )
        .at(header)
    }
}

/// Failures of the shared operations (authentication, the store) in FHIR terms: 401 and 403 are
/// ACCESS_DENIED; a store failure is `transient` (503, safe to retry) or `exception` (500).
impl From<ApiError> for FhirError {
    fn from(error: ApiError) -> Self {
        let (issue_type, spine_code) = match error.status {
            StatusCode::UNAUTHORIZED => ("login", Some(SpineCode::AccessDenied)),
            StatusCode::FORBIDDEN => ("forbidden", Some(SpineCode::AccessDenied)),
            StatusCode::SERVICE_UNAVAILABLE => ("transient", None),
            StatusCode::BAD_REQUEST => ("invalid", None),
            StatusCode::NOT_FOUND => ("not-found", None),
            StatusCode::PAYLOAD_TOO_LARGE => ("too-long", None),
            _ => ("exception", None),
        };
        let location = match error.status {
            StatusCode::UNAUTHORIZED => Some("Authorization".to_string()),
            _ => error.field.clone(),
        };
        let mut fhir_error = Self::new(error.status, issue_type, spine_code, error.message);
        fhir_error.issue.location = location;
        fhir_error
    }
}

impl From<StoreError> for FhirError {
    fn from(error: StoreError) -> Self {
        ApiError::from(error).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::{Alert, read_feed};
    use crate::api::test_support::App;
    use crate::auth::OrgKind;
    use crate::config::Config;
    use crate::identifiers::OdsCode;
    use crate::plan::tests::{la, plan};
    use crate::plan::{Plan, PlanType};
    use serde_json::json;
    use time::Duration;
    use time::macros::date;

    const NHS: &str = "9434765919";
    const TRACE: &str = "6ede3b9d-a81b-4c75-9d77-e1d64d85c323";

    fn search_uri(resource: &str, nhs: &str) -> String {
        format!("/fhir/r4/{resource}?patient:identifier=https://fhir.nhs.uk/Id/nhs-number|{nhs}")
    }

    struct Reply {
        status: u16,
        body: Value,
        raw: Vec<u8>,
        headers: http::HeaderMap,
    }

    impl Reply {
        fn header(&self, name: &str) -> Option<&str> {
            self.headers.get(name).map(|v| v.to_str().unwrap())
        }

        /// The national code and the location of an OperationOutcome's one issue.
        fn outcome(&self) -> (u16, &str, &str, &str) {
            assert_eq!(
                self.body["resourceType"], "OperationOutcome",
                "{}",
                self.body
            );
            let issue = &self.body["issue"][0];
            (
                self.status,
                issue["code"].as_str().unwrap(),
                issue["details"]["coding"][0]["code"].as_str().unwrap_or(""),
                issue["location"][0].as_str().unwrap_or(""),
            )
        }
    }

    /// A request as an NHS system sends it: a care setting's credential and the user headers.
    struct Call<'a> {
        app: &'a App,
        method: &'a str,
        uri: String,
        headers: Vec<(String, String)>,
        config: Config,
    }

    /// Where the unit tests' requests go, as Spin gives the URI to a component.
    const ORIGIN: &str = "http://cpis.test";

    impl<'a> Call<'a> {
        fn bare(app: &'a App, uri: impl Into<String>) -> Self {
            let uri: String = uri.into();
            let uri = if uri.starts_with('/') {
                format!("{ORIGIN}{uri}")
            } else {
                uri
            };
            Self {
                app,
                method: "GET",
                uri,
                headers: vec![],
                config: Config::default(),
            }
        }

        /// A request whose URI is only a path (no scheme or host).
        fn relative(mut self) -> Self {
            self.uri = self.uri.trim_start_matches(ORIGIN).to_string();
            self
        }

        /// As an NHS system built for the national API sends it: no user headers.
        fn national(self) -> Self {
            self.without(headers::END_USER_ID)
                .without(headers::END_USER_NAME)
                .without(headers::END_USER_ROLE)
        }

        fn search(app: &'a App, token: &str, uri: impl Into<String>) -> Self {
            Self::bare(app, uri)
                .with("authorization", &format!("Bearer {token}"))
                .with(headers::END_USER_ID, "555021935107")
                .with(headers::END_USER_NAME, "Dr A Patel")
                .with(headers::END_USER_ROLE, "ED Doctor")
        }

        fn with(mut self, name: &str, value: &str) -> Self {
            self.headers.push((name.into(), value.into()));
            self
        }

        fn without(mut self, name: &str) -> Self {
            self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
            self
        }

        fn method(mut self, method: &'a str) -> Self {
            self.method = method;
            self
        }

        fn send_to(
            self,
            handler: fn(&Request, &Context<crate::store::MemoryStore>) -> Response,
        ) -> Reply {
            let mut builder = http::Request::builder().method(self.method).uri(&self.uri);
            for (name, value) in &self.headers {
                builder = builder.header(
                    name.as_str(),
                    HeaderValue::from_bytes(value.as_bytes()).unwrap(),
                );
            }
            let req = builder.body(vec![]).unwrap();
            let ctx = Context {
                store: &self.app.store,
                now: self.app.now,
                config: self.config,
            };
            let res = handler(&req, &ctx);
            Reply {
                status: res.status().as_u16(),
                body: serde_json::from_slice(res.body()).unwrap_or(Value::Null),
                raw: res.body().clone(),
                headers: res.headers().clone(),
            }
        }

        fn send(self) -> Reply {
            self.send_to(handle)
        }
    }

    fn nhs() -> NhsNumber {
        NhsNumber::parse(NHS).unwrap()
    }

    /// A child with two plans held by two LAs: an open CPP (with a delete date in the future)
    /// and a LAC that ended in June.
    fn app_with_plans() -> App {
        let mut cpp = plan(PlanType::ChildProtectionPlan, date!(2026 - 01 - 01), None);
        cpp.delete_date = Some(date!(2030 - 01 - 01));
        let mut lac = plan(
            PlanType::LookedAfterChild,
            date!(2025 - 09 - 01),
            Some(date!(2026 - 06 - 30)),
        );
        lac.responsible_la = la("LA2");
        app_with(vec![cpp, lac])
    }

    /// [`app_with_plans`] after one user's CareTeam search from RR8, and RR8's token.
    fn app_with_one_access() -> (App, String) {
        let app = app_with_plans();
        let token = app.token("RR8", OrgKind::CareSetting);
        Call::search(&app, &token, search_uri("CareTeam", NHS)).send();
        (app, token)
    }

    fn app_with(plans: Vec<Plan>) -> App {
        let app = App::new();
        crate::records::seed(&app.store, &nhs(), &plans);
        app
    }

    fn visits(app: &App) -> u64 {
        keys::visits(&nhs()).head(&app.store).unwrap()
    }

    fn scheduled_audits(app: &App) -> u64 {
        keys::scheduled_access_audit(&nhs())
            .head(&app.store)
            .unwrap()
    }

    fn feed_len(app: &App, la: &str) -> usize {
        let la = OdsCode::parse(la).unwrap();
        read_feed::<Alert>(
            &app.store,
            &la,
            Some(0),
            500,
            app.now,
            Duration::seconds(60),
        )
        .unwrap()
        .entries
        .len()
    }

    /// Every entry of a Bundle, matches and includes.
    fn all_entries(bundle: &Value) -> &[Value] {
        bundle["entry"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    /// The resources of the Bundle's matches.
    fn entries(body: &Value) -> Vec<&Value> {
        all_entries(body)
            .iter()
            .filter(|entry| entry["search"]["mode"] == "match")
            .map(|entry| &entry["resource"])
            .collect()
    }

    /// The viewer of an AuditEvent: the included PractitionerRole its ASSIGNED agent refers to,
    /// resolved as a consumer does, against the entries' fullUrls.
    fn viewer<'b>(bundle: &'b Value, event: &Value) -> &'b Value {
        let assigned = event["agent"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["type"]["coding"][0]["code"] == "ASSIGNED")
            .expect("an ASSIGNED agent");
        let reference = assigned["who"]["reference"].as_str().unwrap();
        let full_url = format!("{ORIGIN}/fhir/r4/{reference}");
        let entry = all_entries(bundle)
            .iter()
            .find(|e| e["fullUrl"] == full_url.as_str() || e["fullUrl"] == reference)
            .unwrap_or_else(|| panic!("{reference} is not in the Bundle"));
        assert_eq!(entry["search"]["mode"], "include");
        &entry["resource"]
    }

    /// Registers a system and its responsible person with the credential of `token`.
    fn register(app: &App, token: &str, system: &str, person: &str) {
        let id = token.split('_').nth(1).unwrap();
        let body = json!({"system": system,
                          "responsible_person": {"id": "R-1", "name": person, "role": "ED Clinical Lead"}});
        let (status, reply) = app.call(
            crate::api::submit::handle,
            "PUT",
            &format!("/api/v1/admin/credentials/{id}/system"),
            Some(crate::api::test_support::ADMIN),
            &body.to_string(),
        );
        assert_eq!(status, 200, "{reply}");
    }

    #[test]
    fn care_team_search_returns_one_care_team_per_visible_plan() {
        let app = app_with_plans();
        let token = app.token("RR8", OrgKind::CareSetting);
        let reply = Call::search(&app, &token, search_uri("CareTeam", NHS)).send();
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(reply.header("content-type"), Some("application/fhir+json"));
        assert_eq!(reply.header("cache-control"), Some("no-store"));
        assert_eq!(reply.body["resourceType"], "Bundle");
        assert_eq!(reply.body["type"], "searchset");
        assert_eq!(reply.body["total"], 2);
        assert_eq!(
            reply.body["link"][0]["url"],
            format!(
                "{ORIGIN}/fhir/r4/CareTeam?patient:identifier=https://fhir.nhs.uk/Id/nhs-number|{NHS}"
            )
        );
        for entry in all_entries(&reply.body) {
            let id = entry["resource"]["id"].as_str().unwrap();
            assert_eq!(entry["fullUrl"], format!("{ORIGIN}/fhir/r4/CareTeam/{id}"));
        }
        let teams = entries(&reply.body);
        assert!(teams.iter().all(|t| t["resourceType"] == "CareTeam"));
        let cpp = teams
            .iter()
            .find(|t| t["category"][0]["coding"][0]["code"] == "342191000000101")
            .unwrap();
        assert_eq!(cpp["status"], "active");
        assert_eq!(cpp["name"], "LA LA1");
        assert_eq!(cpp["period"], json!({"start": "2026-01-01"}));
        assert_eq!(cpp["managingOrganization"][0]["identifier"]["value"], "LA1");
        assert_eq!(cpp["telecom"][0]["use"], "work");
        assert_eq!(
            cpp["telecom"][1],
            json!({"system": "phone", "value": "0113 535 0600", "use": "mobile"})
        );
        assert_eq!(cpp["subject"]["identifier"]["value"], NHS);
        let lac = teams
            .iter()
            .find(|t| t["category"][0]["coding"][0]["code"] == "764841000000100")
            .unwrap();
        assert_eq!(lac["status"], "inactive");
        assert_eq!(lac["period"]["end"], "2026-06-30");
        assert_eq!(lac["managingOrganization"][0]["identifier"]["value"], "LA2");
        let text = reply.body.to_string();
        for hidden in ["CASE-1", "case_ref", "delete", "2030-01-01", "555021935107"] {
            assert!(!text.contains(hidden), "{hidden} shown: {text}");
        }
    }

    #[test]
    fn an_unscheduled_search_is_recorded_and_notifies_each_la_by_default() {
        let app = app_with_plans();
        let token = app.token("RR8", OrgKind::CareSetting);
        for value in [None, Some("true"), Some("TRUE"), Some("True")] {
            let mut call = Call::search(&app, &token, search_uri("CareTeam", NHS));
            if let Some(value) = value {
                call = call.with(headers::UNSCHEDULED, value);
            }
            assert_eq!(call.send().status, 200);
        }
        assert_eq!(visits(&app), 4);
        assert_eq!((feed_len(&app, "LA1"), feed_len(&app, "LA2")), (4, 4));
        assert_eq!(scheduled_audits(&app), 0);
    }

    #[test]
    fn a_scheduled_search_shows_the_plans_but_is_only_audited() {
        let app = app_with_plans();
        let token = app.token("GP1", OrgKind::CareSetting);
        for value in ["false", "FALSE", "False"] {
            let reply = Call::search(&app, &token, search_uri("CareTeam", NHS))
                .with(headers::UNSCHEDULED, value)
                .send();
            assert_eq!((reply.status, reply.body["total"].as_u64()), (200, Some(2)));
        }
        assert_eq!(visits(&app), 0);
        assert_eq!((feed_len(&app, "LA1"), feed_len(&app, "LA2")), (0, 0));
        assert_eq!(scheduled_audits(&app), 3);
    }

    #[test]
    fn an_invalid_unscheduled_header_is_a_precondition_failure_and_records_nothing() {
        let app = app_with_plans();
        let token = app.token("RR8", OrgKind::CareSetting);
        let before = app.store.snapshot();
        for value in ["yes", "1", "", "true,false"] {
            let reply = Call::search(&app, &token, search_uri("CareTeam", NHS))
                .with(headers::UNSCHEDULED, value)
                .send();
            assert_eq!(
                reply.outcome(),
                (
                    400,
                    "invalid",
                    "PRECONDITION_FAILED",
                    "http.IsUnscheduledAccessEvent"
                ),
                "{value:?}"
            );
        }
        let twice = Call::search(&app, &token, search_uri("CareTeam", NHS))
            .with(headers::UNSCHEDULED, "true")
            .with(headers::UNSCHEDULED, "false")
            .send();
        assert_eq!(twice.outcome().2, "PRECONDITION_FAILED");
        assert_eq!(app.store.snapshot(), before);
    }

    #[test]
    fn the_trace_id_sent_is_echoed_on_every_response() {
        let app = app_with_plans();
        let token = app.token("RR8", OrgKind::CareSetting);
        let ok = Call::search(&app, &token, search_uri("CareTeam", NHS))
            .with(headers::TRACE_ID, TRACE)
            .send();
        assert_eq!((ok.status, ok.header("traceid")), (200, Some(TRACE)));
        let upper = TRACE.to_ascii_uppercase();
        let error = Call::search(&app, &token, search_uri("CareTeam", "9434765918"))
            .with("traceid", &upper)
            .send();
        assert_eq!(
            (error.status, error.header("TraceID")),
            (400, Some(upper.as_str()))
        );
        let unauthenticated = Call::bare(&app, search_uri("AuditEvent", NHS))
            .with(headers::TRACE_ID, TRACE)
            .send();
        assert_eq!(
            (unauthenticated.status, unauthenticated.header("traceid")),
            (401, Some(TRACE))
        );
        let metadata = Call::bare(&app, "/fhir/r4/metadata")
            .with(headers::TRACE_ID, TRACE)
            .send();
        assert_eq!(metadata.header("traceid"), Some(TRACE));
    }

    #[test]
    fn a_trace_id_is_generated_when_absent() {
        let app = app_with_plans();
        let token = app.token("RR8", OrgKind::CareSetting);
        let generated: Vec<String> = (0..2)
            .map(|_| {
                let reply = Call::search(&app, &token, search_uri("CareTeam", NHS)).send();
                assert_eq!(reply.status, 200);
                reply.header("traceid").unwrap().to_string()
            })
            .collect();
        for id in &generated {
            assert!(is_uuid(id), "{id}");
            assert_eq!(&id[14..15], "4", "a version-4 UUID: {id}");
        }
        assert_ne!(generated[0], generated[1]);
        let missing_page = Call::bare(&app, "/fhir/r4/Patient").send();
        assert!(is_uuid(missing_page.header("traceid").unwrap()));
    }

    #[test]
    fn a_trace_id_that_is_not_a_uuid_is_refused_and_replaced() {
        let app = app_with_plans();
        let token = app.token("RR8", OrgKind::CareSetting);
        for bad in [
            "abc",
            "6ede3b9d-a81b-4c75-9d77-e1d64d85c32",
            "6ede3b9da81b4c759d77e1d64d85c323",
        ] {
            let reply = Call::search(&app, &token, search_uri("CareTeam", NHS))
                .with(headers::TRACE_ID, bad)
                .send();
            assert_eq!(
                reply.outcome(),
                (400, "invalid", "PRECONDITION_FAILED", "http.TraceID")
            );
            let echoed = reply.header("traceid").unwrap();
            assert!(is_uuid(echoed) && echoed != bad, "{echoed}");
        }
        let metadata = Call::bare(&app, "/fhir/r4/metadata")
            .with(headers::TRACE_ID, "abc")
            .send();
        assert_eq!(metadata.outcome().2, "PRECONDITION_FAILED");
        assert_eq!(visits(&app), 0);
    }

    #[test]
    fn each_user_header_is_required_and_named_when_missing_or_invalid() {
        let app = app_with_plans();
        let token = app.token("RR8", OrgKind::CareSetting);
        for header in [
            headers::END_USER_ID,
            headers::END_USER_NAME,
            headers::END_USER_ROLE,
        ] {
            for resource in ["CareTeam", "AuditEvent"] {
                let missing = Call::search(&app, &token, search_uri(resource, NHS))
                    .without(header)
                    .send();
                let location = format!("http.{header}");
                assert_eq!(
                    missing.outcome(),
                    (400, "invalid", "PRECONDITION_FAILED", location.as_str())
                );
                let diagnostics = missing.body["issue"][0]["diagnostics"].as_str().unwrap();
                assert!(diagnostics.contains(header), "{diagnostics}");
                for bad in ["", "   ", "a\tb"] {
                    let invalid = Call::search(&app, &token, search_uri(resource, NHS))
                        .without(header)
                        .with(header, bad)
                        .send();
                    assert_eq!(invalid.outcome().3, location, "{bad:?}");
                }
                let long = "x".repeat(201);
                let too_long = Call::search(&app, &token, search_uri(resource, NHS))
                    .without(header)
                    .with(header, &long)
                    .send();
                assert_eq!(too_long.outcome().2, "PRECONDITION_FAILED");
            }
        }
        assert_eq!(visits(&app), 0);
    }

    #[test]
    fn user_headers_may_hold_utf8_names() {
        let app = app_with_plans();
        let token = app.token("RR8", OrgKind::CareSetting);
        let reply = Call::search(&app, &token, search_uri("CareTeam", NHS))
            .without(headers::END_USER_NAME)
            .with(headers::END_USER_NAME, "Siân Ó'Brien-Llŷr")
            .without(headers::END_USER_ROLE)
            .with(headers::END_USER_ROLE, "Meddyg Brys")
            .send();
        assert_eq!(reply.status, 200, "{}", reply.body);
        let history = Call::search(&app, &token, search_uri("AuditEvent", NHS)).send();
        let role = viewer(&history.body, entries(&history.body)[0]);
        assert_eq!(role["practitioner"]["display"], "Siân Ó'Brien-Llŷr");
        assert!(
            String::from_utf8(history.raw)
                .unwrap()
                .contains("Siân Ó'Brien-Llŷr"),
            "UTF-8 in the body, not escaped away"
        );
    }

    #[test]
    fn unknown_search_parameters_are_refused_not_ignored() {
        let app = app_with_plans();
        let token = app.token("RR8", OrgKind::CareSetting);
        let base = search_uri("CareTeam", NHS);
        for (uri, location) in [
            (format!("{base}&_format=json"), "http._format"),
            (format!("{base}&_count=1"), "http._count"),
            (format!("/fhir/r4/CareTeam?patient={NHS}"), "http.patient"),
            (
                format!("/fhir/r4/CareTeam?identifier=https://fhir.nhs.uk/Id/nhs-number|{NHS}"),
                "http.identifier",
            ),
            (
                format!("{base}&patient:identifier=https://fhir.nhs.uk/Id/nhs-number|9876543210"),
                "http.patient:identifier",
            ),
            (
                "/fhir/r4/AuditEvent?_include=AuditEvent:agent".into(),
                "http._include",
            ),
            (
                format!(
                    "{base}&_include=AuditEvent:entity-type=http://terminology.hl7.org/CodeSystem/v3-RoleClass|ASSIGNED"
                ),
                "http._include",
            ),
            (
                format!("{base}&_revinclude=Provenance:target"),
                "http._revinclude",
            ),
            ("/fhir/r4/CareTeam".into(), "http.patient:identifier"),
            ("/fhir/r4/CareTeam?".into(), "http.patient:identifier"),
        ] {
            let reply = Call::search(&app, &token, uri.clone()).send();
            assert_eq!(
                reply.outcome(),
                (400, "invalid", "INVALID_SEARCH_DATA", location),
                "{uri}"
            );
        }
        assert_eq!(visits(&app), 0, "a refused search records nothing");
    }

    #[test]
    fn an_invalid_nhs_number_is_invalid_search_data_with_its_reason() {
        let app = app_with_plans();
        let token = app.token("RR8", OrgKind::CareSetting);
        for (number, reason) in [
            ("9434765918", "check_digit_mismatch"),
            ("1234567890", "check_value_ten"),
            ("0000000000", "placeholder_all_zeros"),
            ("943476591", "wrong_length"),
            ("94347659x9", "invalid_character"),
            ("", "empty"),
        ] {
            for resource in ["CareTeam", "AuditEvent"] {
                let reply = Call::search(&app, &token, search_uri(resource, number)).send();
                assert_eq!(
                    reply.outcome(),
                    (
                        400,
                        "invalid",
                        "INVALID_SEARCH_DATA",
                        "http.patient:identifier"
                    ),
                    "{number}"
                );
                let diagnostics = reply.body["issue"][0]["diagnostics"].as_str().unwrap();
                assert!(diagnostics.contains(reason), "{diagnostics}");
            }
        }
    }

    #[test]
    fn the_identifier_token_must_name_the_nhs_number_system() {
        let app = app_with_plans();
        let token = app.token("RR8", OrgKind::CareSetting);
        for value in [
            format!("https://fhir.nhs.uk/Id/ods-organization-code|{NHS}"),
            format!("http://fhir.nhs.uk/Id/nhs-number|{NHS}"),
            format!("https://fhir.nhs.uk/Id/NHS-number|{NHS}"),
            format!("|{NHS}"),
            NHS.to_string(),
        ] {
            let reply = Call::search(
                &app,
                &token,
                format!("/fhir/r4/CareTeam?patient:identifier={value}"),
            )
            .send();
            assert_eq!(
                reply.outcome(),
                (
                    400,
                    "invalid",
                    "INVALID_SEARCH_DATA",
                    "http.patient:identifier"
                ),
                "{value}"
            );
        }
    }

    #[test]
    fn a_percent_encoded_search_and_a_grouped_number_are_understood() {
        let app = app_with_plans();
        let token = app.token("RR8", OrgKind::CareSetting);
        let uri = "/fhir/r4/CareTeam?patient%3Aidentifier=https%3A%2F%2Ffhir.nhs.uk%2FId%2Fnhs-number%7C943%20476+5919";
        let reply = Call::search(&app, &token, uri).send();
        assert_eq!(
            (reply.status, reply.body["total"].as_u64()),
            (200, Some(2)),
            "{}",
            reply.body
        );
        assert!(
            reply.body["link"][0]["url"]
                .as_str()
                .unwrap()
                .ends_with(&format!("|{NHS}"))
        );
        let broken = Call::search(
            &app,
            &token,
            "/fhir/r4/CareTeam?patient:identifier=%E2%28%A1",
        )
        .send();
        assert_eq!(broken.outcome().2, "INVALID_SEARCH_DATA");
        let bad_escape =
            Call::search(&app, &token, "/fhir/r4/CareTeam?patient:identifier=%+1").send();
        assert_eq!(bad_escape.outcome().2, "INVALID_SEARCH_DATA");
    }

    #[test]
    fn an_absolute_request_uri_gives_an_absolute_self_link() {
        let app = app_with_plans();
        let token = app.token("RR8", OrgKind::CareSetting);
        let reply = Call::search(
            &app,
            &token,
            format!("https://cpis.example{}", search_uri("CareTeam", NHS)),
        )
        .send();
        assert_eq!(
            reply.body["link"][0]["url"],
            format!(
                "https://cpis.example/fhir/r4/CareTeam?patient:identifier=https://fhir.nhs.uk/Id/nhs-number|{NHS}"
            )
        );
    }

    #[test]
    fn authentication_failures_are_access_denied() {
        let app = app_with_plans();
        let la = app.token("LA1", OrgKind::LocalAuthority);
        let setting = app.token("RR8", OrgKind::CareSetting);
        for resource in ["CareTeam", "AuditEvent"] {
            let none = Call::bare(&app, search_uri(resource, NHS)).send();
            assert_eq!(
                none.outcome(),
                (401, "login", "ACCESS_DENIED", "http.Authorization")
            );
            let wrong =
                Call::search(&app, &format!("{setting}x"), search_uri(resource, NHS)).send();
            assert_eq!(wrong.outcome().0, 401);
            let basic = Call::bare(&app, search_uri(resource, NHS))
                .with("authorization", "Basic abc")
                .send();
            assert_eq!(basic.outcome().2, "ACCESS_DENIED");
            let la_reply = Call::search(&app, &la, search_uri(resource, NHS)).send();
            assert_eq!(la_reply.outcome(), (403, "forbidden", "ACCESS_DENIED", ""));
            assert_eq!(
                la_reply.header("content-type"),
                Some("application/fhir+json")
            );
        }
        let admin = Call::search(
            &app,
            crate::api::test_support::ADMIN,
            search_uri("CareTeam", NHS),
        )
        .send();
        assert_eq!(admin.status, 401, "the FHIR side knows no administrator");
        assert_eq!(visits(&app), 0);
    }

    #[test]
    fn no_plan_or_only_plans_past_their_visibility_give_an_empty_bundle_and_no_trace() {
        let ended = plan(
            PlanType::UnbornChildProtectionPlan,
            date!(2025 - 01 - 01),
            Some(date!(2025 - 02 - 01)),
        );
        let mut deleted = plan(PlanType::ChildProtectionPlan, date!(2026 - 01 - 01), None);
        deleted.delete_date = Some(date!(2026 - 11 - 01));
        for app in [App::new(), app_with(vec![ended, deleted])] {
            let token = app.token("RR8", OrgKind::CareSetting);
            let before = app.store.snapshot();
            for resource in ["CareTeam", "AuditEvent"] {
                let reply = Call::search(&app, &token, search_uri(resource, NHS)).send();
                assert_eq!(reply.status, 200, "not a 404");
                assert_eq!(reply.body["resourceType"], "Bundle");
                assert_eq!(reply.body["type"], "searchset");
                assert_eq!(reply.body["total"], 0);
                assert!(reply.body.get("entry").is_none());
            }
            assert_eq!(
                app.store.snapshot(),
                before,
                "nothing recorded about the child"
            );
        }
    }

    #[test]
    fn audit_event_search_returns_the_history_newest_first_and_records_nothing() {
        let mut app = app_with_plans();
        let start = app.now;
        for (i, ods) in ["RR8", "RX1", "RAE"].into_iter().enumerate() {
            app.now = start + Duration::minutes(i as i64);
            let token = app.token(ods, OrgKind::CareSetting);
            Call::search(&app, &token, search_uri("CareTeam", NHS))
                .without(headers::END_USER_ROLE)
                .with(headers::END_USER_ROLE, &format!("Role {i}"))
                .send();
        }
        let scheduled = app.token("GP1", OrgKind::CareSetting);
        Call::search(&app, &scheduled, search_uri("CareTeam", NHS))
            .with(headers::UNSCHEDULED, "false")
            .send();
        app.now = start + Duration::hours(1);
        let before = app.store.snapshot();
        let feeds = (feed_len(&app, "LA1"), feed_len(&app, "LA2"));
        for unscheduled in ["true", "false"] {
            let reply = Call::search(&app, &scheduled, search_uri("AuditEvent", NHS))
                .with(headers::UNSCHEDULED, unscheduled)
                .send();
            assert_eq!(reply.status, 200, "{}", reply.body);
            assert_eq!(reply.header("content-type"), Some("application/fhir+json"));
            assert_eq!(
                reply.body["total"], 3,
                "scheduled accesses are not in the history"
            );
            let events = entries(&reply.body);
            let settings: Vec<&Value> = events
                .iter()
                .map(|e| &viewer(&reply.body, e)["organization"]["identifier"]["value"])
                .collect();
            assert_eq!(settings, [&json!("RAE"), &json!("RX1"), &json!("RR8")]);
            assert_eq!(all_entries(&reply.body).len(), 6, "3 + 3 included");
            let newest = events[0];
            assert_eq!(newest["resourceType"], "AuditEvent");
            assert_eq!(newest["recorded"], "2026-11-25T10:02:00+00:00");
            let role = viewer(&reply.body, newest);
            assert_eq!(role["practitioner"]["display"], "Dr A Patel");
            assert_eq!(role["code"][0]["coding"][0]["display"], "Role 2");
            assert_eq!(role["organization"]["display"], "Org RAE (RAE)");
            let patient = &newest["agent"][0];
            assert_eq!(patient["type"]["coding"][0]["code"], "PAT");
            assert_eq!(patient["who"]["identifier"]["value"], NHS);
            assert!(
                !reply.body.to_string().contains("555021935107"),
                "no user id"
            );
        }
        assert_eq!(
            app.store.snapshot(),
            before,
            "reading the history records nothing"
        );
        assert_eq!((feed_len(&app, "LA1"), feed_len(&app, "LA2")), feeds);
    }

    #[test]
    fn audit_event_search_shows_at_most_25() {
        let mut app = app_with_plans();
        let token = app.token("RR8", OrgKind::CareSetting);
        let start = app.now;
        for i in 0..30 {
            app.now = start + Duration::minutes(i);
            Call::search(&app, &token, search_uri("CareTeam", NHS)).send();
        }
        let reply = Call::search(&app, &token, search_uri("AuditEvent", NHS)).send();
        assert_eq!(reply.body["total"], 25);
        let events = entries(&reply.body);
        assert_eq!(events[0]["recorded"], "2026-11-25T10:29:00+00:00");
        assert_eq!(events[24]["recorded"], "2026-11-25T10:05:00+00:00");
        assert_eq!(all_entries(&reply.body).len(), 50);
    }

    #[test]
    fn the_history_of_a_child_no_longer_visible_is_not_disclosed() {
        let mut app = app_with(vec![plan(
            PlanType::UnbornChildProtectionPlan,
            date!(2026 - 01 - 01),
            Some(date!(2026 - 11 - 30)),
        )]);
        let token = app.token("RR8", OrgKind::CareSetting);
        Call::search(&app, &token, search_uri("CareTeam", NHS)).send();
        let seen = Call::search(&app, &token, search_uri("AuditEvent", NHS)).send();
        assert_eq!(seen.body["total"], 1);
        app.now += Duration::days(60);
        let later = Call::search(&app, &token, search_uri("AuditEvent", NHS)).send();
        assert_eq!((later.status, later.body["total"].as_u64()), (200, Some(0)));
    }

    #[test]
    fn metadata_is_a_capability_statement_of_exactly_what_is_supported() {
        let app = App::new();
        let reply = Call::bare(&app, "/fhir/r4/metadata").send();
        assert_eq!(reply.status, 200);
        assert_eq!(reply.header("content-type"), Some("application/fhir+json"));
        assert_eq!(reply.body["resourceType"], "CapabilityStatement");
        assert_eq!(reply.body["fhirVersion"], "4.0.1");
        assert_eq!(reply.body, fhir::capability_statement());
        let with_param = Call::bare(&app, "/fhir/r4/metadata?_format=json").send();
        assert_eq!(
            with_param.outcome(),
            (400, "invalid", "INVALID_SEARCH_DATA", "http._format")
        );
    }

    #[test]
    fn other_paths_and_methods_are_operation_outcomes_too() {
        let app = app_with_plans();
        let token = app.token("RR8", OrgKind::CareSetting);
        for path in [
            "/fhir/r4",
            "/fhir/r4/Patient",
            "/fhir/r4/CareTeam/123",
            "/fhir/r4/careteam",
        ] {
            let reply = Call::search(&app, &token, path).send();
            assert_eq!(reply.outcome(), (404, "not-found", "", ""), "{path}");
            assert_eq!(reply.header("content-type"), Some("application/fhir+json"));
        }
        for method in ["POST", "PUT", "DELETE"] {
            let reply = Call::search(&app, &token, search_uri("CareTeam", NHS))
                .method(method)
                .send();
            assert_eq!(reply.outcome(), (405, "not-supported", "", ""));
            assert_eq!(reply.header("allow"), Some("GET"));
        }
        assert_eq!(visits(&app), 0);
    }

    #[test]
    fn a_store_failure_is_a_transient_operation_outcome() {
        let app = app_with_plans();
        let token = app.token("RR8", OrgKind::CareSetting);
        // The credential's get succeeds; the child's get fails.
        app.store.fail_nth_call(2);
        let reply = Call::search(&app, &token, search_uri("CareTeam", NHS)).send();
        assert_eq!(reply.outcome(), (503, "transient", "", ""));
        assert_eq!(visits(&app), 0);
    }

    #[test]
    fn the_access_component_sends_fhir_paths_here_and_keeps_its_json_api() {
        let app = app_with_plans();
        let token = app.token("RR8", OrgKind::CareSetting);
        let metadata = Call::bare(&app, "/fhir/r4/metadata").send_to(crate::api::access::handle);
        assert_eq!(metadata.body["resourceType"], "CapabilityStatement");
        let search = Call::search(&app, &token, search_uri("CareTeam", NHS))
            .send_to(crate::api::access::handle);
        assert_eq!(search.body["total"], 2);
        assert_eq!(visits(&app), 1);
        let elsewhere = Call::bare(&app, "/fhir/r4x/metadata").send_to(crate::api::access::handle);
        assert_eq!(elsewhere.status, 404);
        assert!(
            elsewhere.body.get("error").is_some(),
            "the JSON API's 404: {}",
            elsewhere.body
        );
        assert_eq!(elsewhere.header("content-type"), Some("application/json"));
    }

    #[test]
    fn store_calls_match_the_readme() {
        use crate::store::Call::*;
        let (app, token) = app_with_one_access();
        app.store.take_calls();
        Call::search(&app, &token, search_uri("CareTeam", NHS)).send();
        // As POST /api/v1/access: auth, child, history, then LA1, LA2 and the visit log, one set-many.
        assert_eq!(
            app.store.take_calls(),
            [
                Get, GetMany, GetMany, Get, GetMany, Increment, Increment, Increment, SetMany
            ]
        );
        Call::search(&app, &token, search_uri("AuditEvent", NHS)).send();
        assert_eq!(
            app.store.take_calls(),
            [Get, GetMany, GetMany, Get, GetMany]
        );
        Call::search(&app, &token, search_uri("AuditEvent", "9876543210")).send();
        assert_eq!(app.store.take_calls(), [Get, GetMany]);
        // Without user headers: one more get, of the credential's system.
        register(&app, &token, "Symphony ED", "Dr Jo Bloggs");
        app.store.take_calls();
        Call::search(&app, &token, search_uri("AuditEvent", "9876543210"))
            .national()
            .send();
        assert_eq!(app.store.take_calls(), [Get, Get, GetMany]);
        Call::bare(&app, "/fhir/r4/metadata").send();
        assert_eq!(app.store.take_calls(), []);
    }

    /// The outcome of a search whose user headers are missing, in part or (without a system) in
    /// full.
    const MISSING_USER: (u16, &str, &str, &str) = (
        400,
        "invalid",
        "PRECONDITION_FAILED",
        "http.NHSD-End-User-Id",
    );

    const INCLUDE: &str = "_include=AuditEvent:entity-type=http://terminology.hl7.org/CodeSystem/v3-RoleClass|ASSIGNED";

    #[test]
    fn without_user_headers_the_access_is_the_registered_systems_and_shown_as_such() {
        let app = app_with_plans();
        let token = app.token("RR8", OrgKind::CareSetting);
        register(&app, &token, "Symphony ED", "Siân Ó'Brien-Llŷr");
        let reply = Call::search(&app, &token, search_uri("CareTeam", NHS))
            .national()
            .with(headers::TRACE_ID, TRACE)
            .send();
        assert_eq!(
            (reply.status, reply.body["total"].as_u64()),
            (200, Some(2)),
            "{}",
            reply.body
        );
        assert_eq!(visits(&app), 1, "recorded");
        assert_eq!(
            (feed_len(&app, "LA1"), feed_len(&app, "LA2")),
            (1, 1),
            "LAs notified"
        );
        let history = Call::search(
            &app,
            &token,
            format!("{}&{INCLUDE}", search_uri("AuditEvent", NHS)),
        )
        .national()
        .send();
        assert_eq!(history.status, 200, "{}", history.body);
        let event = entries(&history.body)[0];
        let role = viewer(&history.body, event);
        assert_eq!(role["practitioner"]["display"], "Siân Ó'Brien-Llŷr");
        assert_eq!(role["code"][0]["coding"][0]["display"], "ED Clinical Lead");
        let system = &event["agent"][2];
        assert_eq!(system["who"]["display"], "Symphony ED");
        assert_eq!(
            (
                system["requestor"].as_bool(),
                event["agent"][1]["requestor"].as_bool()
            ),
            (Some(true), Some(false))
        );
        assert!(
            !history.body.to_string().contains("R-1"),
            "no user id shown"
        );
        // The JSON API shows it too, to clinicians and to the LA.
        let access = json!({"nhs_number": NHS}).to_string();
        let (status, json_view) = app.call(
            crate::api::access::handle,
            "POST",
            "/api/v1/access",
            Some(&token),
            &access,
        );
        assert_eq!(status, 200, "{json_view}");
        assert_eq!(json_view["previous_visits"][0]["via_system"], "Symphony ED");
        assert_eq!(
            json_view["previous_visits"][0]["viewer_role"],
            "ED Clinical Lead"
        );
        let la = app.token("LA1", OrgKind::LocalAuthority);
        let (_, la_view) = app.call(
            crate::api::alert::handle,
            "GET",
            &format!("/api/v1/la/children/{NHS}"),
            Some(&la),
            "",
        );
        assert_eq!(la_view["visits"][0]["via_system"], "Symphony ED");
        Call::search(&app, &token, search_uri("CareTeam", NHS)).send();
        let (_, la_view) = app.call(
            crate::api::alert::handle,
            "GET",
            &format!("/api/v1/la/children/{NHS}"),
            Some(&la),
            "",
        );
        assert!(
            la_view["visits"][0].get("via_system").is_none(),
            "a named user: {la_view}"
        );
        assert_eq!(la_view["visits"][1]["via_system"], "Symphony ED");
    }

    #[test]
    fn without_user_headers_or_a_registered_system_the_search_is_refused_naming_both() {
        let app = app_with_plans();
        let token = app.token("RR8", OrgKind::CareSetting);
        let id = token.split('_').nth(1).unwrap();
        let before = app.store.snapshot();
        for resource in ["CareTeam", "AuditEvent"] {
            let reply = Call::search(&app, &token, search_uri(resource, NHS))
                .national()
                .send();
            assert_eq!(reply.outcome(), MISSING_USER);
            let diagnostics = reply.body["issue"][0]["diagnostics"].as_str().unwrap();
            for named in [
                "NHSD-End-User-Id",
                "NHSD-End-User-Name",
                "NHSD-End-User-Role",
                id,
                "/system",
            ] {
                assert!(diagnostics.contains(named), "{named}: {diagnostics}");
            }
        }
        let (status, body) = app.call(
            crate::api::access::handle,
            "POST",
            "/api/v1/access",
            Some(&token),
            &json!({"nhs_number": NHS}).to_string(),
        );
        assert_eq!(
            (status, body["error"]["field"].as_str()),
            (400, Some("user")),
            "{body}"
        );
        assert_eq!(app.store.snapshot(), before, "nothing recorded");
    }

    #[test]
    fn some_user_headers_without_the_others_are_refused_even_with_a_system() {
        let app = app_with_plans();
        let token = app.token("RR8", OrgKind::CareSetting);
        register(&app, &token, "Symphony ED", "Dr Jo Bloggs");
        let reply = Call::search(&app, &token, search_uri("CareTeam", NHS))
            .national()
            .with(headers::END_USER_NAME, "Dr A Patel")
            .send();
        assert_eq!(reply.outcome(), MISSING_USER);
        assert_eq!(visits(&app), 0);
    }

    #[test]
    fn user_headers_win_over_the_registered_system() {
        let app = app_with_plans();
        let token = app.token("RR8", OrgKind::CareSetting);
        register(&app, &token, "Symphony ED", "Dr Jo Bloggs");
        Call::search(&app, &token, search_uri("CareTeam", NHS)).send();
        let history = Call::search(&app, &token, search_uri("AuditEvent", NHS)).send();
        let event = entries(&history.body)[0];
        assert_eq!(
            viewer(&history.body, event)["practitioner"]["display"],
            "Dr A Patel"
        );
        assert_eq!(
            event["agent"].as_array().unwrap().len(),
            2,
            "no system agent"
        );
    }

    #[test]
    fn both_audit_event_search_forms_give_the_viewers_as_included_practitioner_roles() {
        let (app, token) = app_with_one_access();
        let plain = Call::search(&app, &token, search_uri("AuditEvent", NHS)).send();
        let encoded = "_include=AuditEvent%3Aentity-type%3Dhttp%3A%2F%2Fterminology.hl7.org%2FCodeSystem%2Fv3-RoleClass%7CASSIGNED";
        for query in [INCLUDE, encoded] {
            let with = Call::search(
                &app,
                &token,
                format!("{}&{query}", search_uri("AuditEvent", NHS)),
            )
            .send();
            assert_eq!(with.status, 200, "{}", with.body);
            let shape = |b: &Value| {
                all_entries(b)
                    .iter()
                    .map(|e| {
                        (
                            e["resource"]["resourceType"].clone(),
                            e["search"]["mode"].clone(),
                        )
                    })
                    .collect::<Vec<_>>()
            };
            assert_eq!(shape(&with.body), shape(&plain.body));
            assert_eq!(
                shape(&with.body),
                [
                    (json!("AuditEvent"), json!("match")),
                    (json!("PractitionerRole"), json!("include"))
                ]
            );
            assert_eq!(with.body["total"], 1);
            assert_eq!(
                with.body["link"][0]["url"],
                format!(
                    "{ORIGIN}/fhir/r4/AuditEvent?patient:identifier=https://fhir.nhs.uk/Id/nhs-number|{NHS}&{INCLUDE}"
                )
            );
        }
        assert!(
            !plain.body["link"][0]["url"]
                .as_str()
                .unwrap()
                .contains("_include")
        );
        for bad in [
            "_include=AuditEvent:agent",
            "_include=*",
            "_include=AuditEvent:entity-type=http://terminology.hl7.org/CodeSystem/v3-RoleClass|PAT",
            "_include=auditevent:entity-type=http://terminology.hl7.org/CodeSystem/v3-RoleClass|ASSIGNED",
            "_include",
            &format!("{INCLUDE}&{INCLUDE}"),
        ] {
            let reply = Call::search(
                &app,
                &token,
                format!("{}&{bad}", search_uri("AuditEvent", NHS)),
            )
            .send();
            assert_eq!(
                reply.outcome(),
                (400, "invalid", "INVALID_SEARCH_DATA", "http._include"),
                "{bad}"
            );
        }
    }

    #[test]
    fn full_urls_are_absolute_under_the_base_the_request_came_to() {
        let (app, token) = app_with_one_access();
        let full_urls = |reply: &Reply| -> Vec<String> {
            all_entries(&reply.body)
                .iter()
                .map(|e| e["fullUrl"].as_str().unwrap().to_string())
                .collect()
        };
        let https = Call::search(
            &app,
            &token,
            format!("https://cpis.example:8443{}", search_uri("AuditEvent", NHS)),
        )
        .send();
        assert!(
            full_urls(&https)
                .iter()
                .all(|u| u.starts_with("https://cpis.example:8443/fhir/r4/")),
            "{:?}",
            full_urls(&https)
        );
        let relative_with_spin_header = Call::search(&app, &token, search_uri("AuditEvent", NHS))
            .relative()
            .with(
                "spin-full-url",
                &format!("http://10.0.0.7:3000{}", search_uri("AuditEvent", NHS)),
            )
            .send();
        assert!(
            full_urls(&relative_with_spin_header)[0]
                .starts_with("http://10.0.0.7:3000/fhir/r4/AuditEvent/")
        );
        let mut configured = Call::search(&app, &token, search_uri("AuditEvent", NHS));
        configured.config.fhir_base_url = Some("https://api.cpis.example/cpis/FHIR/R4".into());
        let configured = configured.send();
        assert!(
            full_urls(&configured)
                .iter()
                .all(|u| u.starts_with("https://api.cpis.example/cpis/FHIR/R4/"))
        );
        assert!(
            configured.body["link"][0]["url"]
                .as_str()
                .unwrap()
                .starts_with("https://api.cpis.example/cpis/FHIR/R4/AuditEvent?")
        );
        // No base known: urn:uuid fullUrls, and the AuditEvent refers to its viewer by the same.
        let unknown = Call::search(&app, &token, search_uri("AuditEvent", NHS))
            .relative()
            .send();
        let urls = full_urls(&unknown);
        assert!(urls.iter().all(|u| u.starts_with("urn:uuid:")), "{urls:?}");
        assert_eq!(
            entries(&unknown.body)[0]["agent"][1]["who"]["reference"],
            urls[1].as_str()
        );
        assert_eq!(
            unknown.body["link"][0]["url"].as_str().unwrap().get(..9),
            Some("/fhir/r4/")
        );
    }

    #[test]
    fn only_a_plain_host_and_port_make_a_base() {
        for good in [
            "cpis.test",
            "127.0.0.1:3000",
            "[::1]:8080",
            "a-b.example.nhs.uk",
        ] {
            assert!(plain_authority(good), "{good}");
        }
        for bad in [
            "",
            "user@evil.example",
            "evil.example/x",
            "a b",
            "host:",
            "host:99999x",
            "[::1",
            "x:1:2",
        ] {
            assert!(!plain_authority(bad), "{bad}");
        }
    }

    #[test]
    fn admin_registers_shows_and_removes_a_credentials_system() {
        let app = App::new();
        let token = app.token("RR8", OrgKind::CareSetting);
        let id = token.split('_').nth(1).unwrap();
        let path = format!("/api/v1/admin/credentials/{id}/system");
        let admin = Some(crate::api::test_support::ADMIN);
        let submit = crate::api::submit::handle;
        assert_eq!(app.call(submit, "GET", &path, admin, "").0, 404);
        register(&app, &token, "Symphony ED", "Dr Jo Bloggs");
        let (status, shown) = app.call(submit, "GET", &path, admin, "");
        assert_eq!(
            (status, shown["system"]["system"].as_str()),
            (200, Some("Symphony ED"))
        );
        assert_eq!(
            shown["system"]["responsible_person"]["name"],
            "Dr Jo Bloggs"
        );
        for (body, field) in [
            (json!({"system": "S"}), "responsible_person"),
            (
                json!({"system": "", "responsible_person": {"id": "1", "name": "A", "role": "R"}}),
                "1 to 200 characters",
            ),
            (
                json!({"system": "S", "responsible_person": {"id": "1", "name": "A"}}),
                "role",
            ),
            (
                json!({"system": "S", "responsible_person": {"id": "1", "name": "A", "role": "R"}, "x": 1}),
                "x",
            ),
        ] {
            let (status, reply) = app.call(submit, "PUT", &path, admin, &body.to_string());
            assert_eq!(status, 400, "{body}");
            assert!(
                reply["error"]["message"].as_str().unwrap().contains(field),
                "{reply}"
            );
        }
        let (status, reply) = app.call(submit, "PUT", &path, Some(&token), "{}");
        assert_eq!(
            (status, reply["error"]["code"].as_str()),
            (403, Some("forbidden"))
        );
        assert_eq!(app.call(submit, "POST", &path, admin, "").0, 405);
        let bad_id = app.call(
            submit,
            "PUT",
            "/api/v1/admin/credentials/XYZ/system",
            admin,
            "{}",
        );
        assert_eq!(bad_id.1["error"]["field"], "credential_id");
        let la = app.token("LA1", OrgKind::LocalAuthority);
        let la_path = format!(
            "/api/v1/admin/credentials/{}/system",
            la.split('_').nth(1).unwrap()
        );
        let body =
            json!({"system": "S", "responsible_person": {"id": "1", "name": "A", "role": "R"}});
        assert_eq!(
            app.call(submit, "PUT", &la_path, admin, &body.to_string())
                .0,
            409
        );
        let (status, removed) = app.call(submit, "DELETE", &path, admin, "");
        assert_eq!((status, &removed["system"]), (200, &Value::Null));
        assert_eq!(app.call(submit, "DELETE", &path, admin, "").0, 404);
    }

    /// Writes one body of every kind the FHIR API answers with into `$CPIS_FHIR_SAMPLES_DIR`
    /// (when set), for `tests/fhir/validate.py` to check against an independent FHIR R4
    /// implementation. File names: `{resourceType}-{what}.json`, and for Bundles
    /// `Bundle-{entry resourceType}-{what}.json`.
    #[test]
    fn fhir_samples_of_every_response_kind() {
        let mut app = app_with_plans();
        let setting = app.token("RR8", OrgKind::CareSetting);
        let la = app.token("LA1", OrgKind::LocalAuthority);
        let start = app.now;
        let mut samples: Vec<(&str, Reply)> = vec![];
        for i in 0..3 {
            app.now = start + Duration::minutes(i);
            let reply = Call::search(&app, &setting, search_uri("CareTeam", NHS))
                .with(headers::TRACE_ID, TRACE)
                .send();
            if i == 0 {
                samples.push(("Bundle-CareTeam-two-plans", reply));
            }
        }
        register(&app, &setting, "Symphony ED", "Siân Ó'Brien-Llŷr");
        app.now = start + Duration::minutes(3);
        Call::search(&app, &setting, search_uri("CareTeam", NHS))
            .national()
            .send();
        samples.push((
            "Bundle-AuditEvent-four-visits-one-by-a-system",
            Call::search(&app, &setting, search_uri("AuditEvent", NHS)).send(),
        ));
        samples.push((
            "Bundle-AuditEvent-with-include-as-the-national-consumer",
            Call::search(
                &app,
                &setting,
                format!("{}&{INCLUDE}", search_uri("AuditEvent", NHS)),
            )
            .national()
            .send(),
        ));
        samples.push((
            "Bundle-AuditEvent-no-base-known",
            Call::search(&app, &setting, search_uri("AuditEvent", NHS))
                .relative()
                .send(),
        ));
        samples.push((
            "Bundle-CareTeam-empty",
            Call::search(&app, &setting, search_uri("CareTeam", "9876543210")).send(),
        ));
        samples.push((
            "Bundle-AuditEvent-empty",
            Call::search(&app, &setting, search_uri("AuditEvent", "9876543210")).send(),
        ));
        samples.push((
            "CapabilityStatement-metadata",
            Call::bare(&app, "/fhir/r4/metadata").send(),
        ));
        samples.push((
            "OperationOutcome-invalid-search-data-nhs-number",
            Call::search(&app, &setting, search_uri("CareTeam", "9434765918")).send(),
        ));
        samples.push((
            "OperationOutcome-invalid-search-data-unknown-parameter",
            Call::search(
                &app,
                &setting,
                format!("{}&_count=5", search_uri("CareTeam", NHS)),
            )
            .send(),
        ));
        samples.push((
            "OperationOutcome-precondition-failed-user",
            Call::search(&app, &setting, search_uri("CareTeam", NHS))
                .without(headers::END_USER_NAME)
                .send(),
        ));
        let no_system = app.token("RX1", OrgKind::CareSetting);
        samples.push((
            "OperationOutcome-precondition-failed-no-user-no-system",
            Call::search(&app, &no_system, search_uri("CareTeam", NHS))
                .national()
                .send(),
        ));
        samples.push((
            "OperationOutcome-invalid-search-data-include",
            Call::search(
                &app,
                &setting,
                format!(
                    "{}&_include=AuditEvent:agent",
                    search_uri("AuditEvent", NHS)
                ),
            )
            .send(),
        ));
        samples.push((
            "OperationOutcome-precondition-failed-unscheduled",
            Call::search(&app, &setting, search_uri("CareTeam", NHS))
                .with(headers::UNSCHEDULED, "maybe")
                .send(),
        ));
        samples.push((
            "OperationOutcome-access-denied-401",
            Call::bare(&app, search_uri("CareTeam", NHS)).send(),
        ));
        samples.push((
            "OperationOutcome-access-denied-403",
            Call::search(&app, &la, search_uri("AuditEvent", NHS)).send(),
        ));
        samples.push((
            "OperationOutcome-not-found",
            Call::bare(&app, "/fhir/r4/Patient").send(),
        ));
        samples.push((
            "OperationOutcome-method-not-allowed",
            Call::bare(&app, "/fhir/r4/metadata").method("POST").send(),
        ));
        app.store.fail_all_calls();
        samples.push((
            "OperationOutcome-store-unavailable",
            Call::search(&app, &setting, search_uri("CareTeam", NHS)).send(),
        ));
        app.store.heal();

        let expected_status = |name: &str| match name {
            n if n.starts_with("Bundle") || n.starts_with("Capability") => 200,
            n if n.ends_with("401") => 401,
            n if n.ends_with("403") => 403,
            "OperationOutcome-not-found" => 404,
            "OperationOutcome-method-not-allowed" => 405,
            "OperationOutcome-store-unavailable" => 503,
            _ => 400,
        };
        for (name, reply) in &samples {
            assert_eq!(
                reply.status,
                expected_status(name),
                "{name}: {}",
                reply.body
            );
            assert_eq!(
                reply.header("content-type"),
                Some("application/fhir+json"),
                "{name}"
            );
            let resource_type = name.split('-').next().unwrap();
            assert_eq!(reply.body["resourceType"], resource_type, "{name}");
        }
        assert_eq!(samples[0].1.body["total"], 2);
        for history in &samples[1..4] {
            assert_eq!(history.1.body["total"], 4);
            assert_eq!(all_entries(&history.1.body).len(), 8);
        }

        if let Some(dir) = std::env::var_os("CPIS_FHIR_SAMPLES_DIR") {
            let dir = std::path::PathBuf::from(dir);
            std::fs::create_dir_all(&dir).unwrap();
            for (name, reply) in &samples {
                // Exactly the bytes the API answered with.
                std::fs::write(dir.join(format!("{name}.json")), &reply.raw).unwrap();
            }
        }
    }
}
