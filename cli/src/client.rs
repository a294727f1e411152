//! The HTTP client: CP-IS's JSON API over reqwest (rustls), with its error bodies turned into
//! [`ApiFailure`]s and idempotent requests retried when the network or the store failed.

use crate::error::{ApiFailure, CliError};
use reqwest::Method;
use reqwest::blocking::{Client as Http, Response};
use serde_json::Value;
use std::thread::sleep;
use std::time::Duration;

/// Where CP-IS is and who is calling.
#[derive(Debug, Clone)]
pub struct Config {
    pub url: Option<String>,
    pub token: Option<String>,
    pub timeout: Duration,
    /// How many times an idempotent request is sent again after a transient failure.
    pub retries: u32,
}

/// Whether a request may be sent again after a failure that leaves its effect unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idempotent {
    Yes,
    No,
}

pub struct Client {
    base: String,
    token: String,
    retries: u32,
    http: Http,
}

/// rustls with the `ring` provider, once per process.
fn install_tls() {
    // Fails only when a provider is installed already, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The base URL without a trailing slash; it must be http(s).
pub fn base_url(url: Option<&str>) -> Result<String, CliError> {
    let url = url
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .ok_or_else(|| {
            CliError::Usage(
            "no CP-IS address: set CPIS_URL or pass --url (e.g. --url https://cpis.example.org)"
                .into(),
        )
        })?;
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        return Err(CliError::Usage(format!(
            "the CP-IS address must start with https:// (or http:// for a local test); found {url:?}"
        )));
    }
    Ok(url.trim_end_matches('/').to_string())
}

impl Client {
    pub fn new(config: &Config) -> Result<Self, CliError> {
        let base = base_url(config.url.as_deref())?;
        let token = config
            .token
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                CliError::Usage(
                    "no credential: set CPIS_TOKEN or pass --token (the token the CP-IS administrator issued)"
                        .into(),
                )
            })?
            .to_string();
        install_tls();
        let http = Http::builder()
            .timeout(config.timeout)
            .user_agent(concat!("cpis/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| CliError::Usage(format!("cannot set up HTTPS: {e}")))?;
        Ok(Self {
            base,
            token,
            retries: config.retries,
            http,
        })
    }

    pub fn get(&self, path: &str) -> Result<Value, CliError> {
        self.send(Method::GET, path, None, Idempotent::Yes)
    }

    pub fn post(
        &self,
        path: &str,
        body: &Value,
        idempotent: Idempotent,
    ) -> Result<Value, CliError> {
        self.send(Method::POST, path, Some(body), idempotent)
    }

    pub fn delete(&self, path: &str) -> Result<Value, CliError> {
        self.send(Method::DELETE, path, None, Idempotent::Yes)
    }

    /// Sends the request, again after a transient failure when it is idempotent (waiting
    /// 0.25 s, 0.5 s, 1 s … at most 5 s between tries).
    pub fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        idempotent: Idempotent,
    ) -> Result<Value, CliError> {
        let mut attempt = 0;
        loop {
            match self.send_once(method.clone(), path, body) {
                Err(e)
                    if idempotent == Idempotent::Yes
                        && e.is_transient()
                        && attempt < self.retries =>
                {
                    sleep(Duration::from_millis(250 << attempt.min(5)).min(Duration::from_secs(5)));
                    attempt += 1;
                }
                result => return result,
            }
        }
    }

    fn send_once(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, CliError> {
        let url = format!("{}{path}", self.base);
        let mut request = self.http.request(method, &url).bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(body);
        }
        let unreachable = |e: reqwest::Error| CliError::Unreachable {
            url: self.base.clone(),
            message: error_chain(&e),
        };
        let response = request.send().map_err(unreachable)?;
        read_answer(response).map_err(|e| match e {
            Answer::Failure(f) => CliError::Api(f),
            Answer::Transport(e) => unreachable(e),
            Answer::NotJson(status, text) => CliError::Unreachable {
                url: self.base.clone(),
                message: format!("the answer ({status}) is not CP-IS's JSON: {text}"),
            },
        })
    }
}

enum Answer {
    Failure(ApiFailure),
    Transport(reqwest::Error),
    NotJson(u16, String),
}

fn read_answer(response: Response) -> Result<Value, Answer> {
    let status = response.status().as_u16();
    let text = response.text().map_err(Answer::Transport)?;
    interpret(status, &text)
}

/// A response's status and body as a JSON value or an [`ApiFailure`].
fn interpret(status: u16, text: &str) -> Result<Value, Answer> {
    let body: Option<Value> = serde_json::from_str(text).ok();
    if (200..300).contains(&status) {
        return body.ok_or_else(|| Answer::NotJson(status, snippet(text)));
    }
    match body.as_ref().map(|b| &b["error"]) {
        Some(error) if error["code"].is_string() => Err(Answer::Failure(ApiFailure {
            status,
            code: error["code"].as_str().unwrap_or_default().to_string(),
            field: error["field"].as_str().map(str::to_string),
            message: error["message"].as_str().unwrap_or_default().to_string(),
        })),
        _ if (502..=504).contains(&status) => Err(Answer::Failure(ApiFailure {
            status,
            code: "gateway_error".into(),
            field: None,
            message: format!("a proxy in front of CP-IS answered: {}", snippet(text)),
        })),
        _ => Err(Answer::NotJson(status, snippet(text))),
    }
}

pub fn snippet(text: &str) -> String {
    let text = text.trim();
    match text.char_indices().nth(200) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None if text.is_empty() => "(empty body)".into(),
        None => text.to_string(),
    }
}

/// reqwest's error with its causes ("error sending request: … connection refused").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_become_failures_with_code_field_and_message() {
        let body = r#"{"error":{"code":"invalid_field","field":"limit","message":"limit must be from 1 to 500"}}"#;
        let Err(Answer::Failure(f)) = interpret(400, body) else {
            panic!("a failure")
        };
        assert_eq!(
            f,
            ApiFailure {
                status: 400,
                code: "invalid_field".into(),
                field: Some("limit".into()),
                message: "limit must be from 1 to 500".into()
            }
        );
        assert!(matches!(interpret(200, r#"{"a":1}"#), Ok(v) if v["a"] == 1));
    }

    #[test]
    fn other_answers_are_named_and_proxies_failing_are_retried() {
        assert!(
            matches!(interpret(500, "<html>oops</html>"), Err(Answer::NotJson(500, t)) if t == "<html>oops</html>")
        );
        assert!(matches!(interpret(200, ""), Err(Answer::NotJson(200, t)) if t == "(empty body)"));
        let Err(Answer::Failure(f)) = interpret(502, "bad gateway") else {
            panic!("a failure")
        };
        assert!(CliError::Api(f).is_transient());
        assert!(snippet(&"x".repeat(500)).ends_with('…'));
    }

    #[test]
    fn the_address_is_required_and_must_be_http() {
        assert!(matches!(base_url(None), Err(CliError::Usage(m)) if m.contains("CPIS_URL")));
        assert!(
            matches!(base_url(Some("cpis.example.org")), Err(CliError::Usage(m)) if m.contains("https://"))
        );
        assert_eq!(
            base_url(Some("https://c.example/ ")).unwrap(),
            "https://c.example"
        );
        let config = Config {
            url: Some("http://127.0.0.1:1".into()),
            token: None,
            timeout: Duration::from_secs(1),
            retries: 0,
        };
        assert!(
            matches!(Client::new(&config), Err(CliError::Usage(m)) if m.contains("CPIS_TOKEN"))
        );
    }

    #[test]
    fn an_unreachable_server_is_reported_with_its_address() {
        let config = Config {
            url: Some("http://127.0.0.1:9".into()),
            token: Some("t".into()),
            timeout: Duration::from_secs(2),
            retries: 1,
        };
        let err = Client::new(&config)
            .unwrap()
            .get("/api/v1/alerts")
            .unwrap_err();
        assert!(
            matches!(&err, CliError::Unreachable { url, .. } if url == "http://127.0.0.1:9"),
            "{err}"
        );
    }
}
