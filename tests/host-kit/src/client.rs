//! A small HTTP client for tests, so test crates need no HTTP client of their own.

use anyhow::{Context, Result};
use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// A response read to the end.
#[derive(Debug, Clone)]
pub struct TestResponse {
    /// The status code.
    pub status: StatusCode,
    /// The response headers.
    pub headers: HeaderMap,
    /// The whole body.
    pub body: Bytes,
}

impl TestResponse {
    /// The body as UTF-8 (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The status as a number.
    pub fn status_code(&self) -> u16 {
        self.status.as_u16()
    }

    /// A header's value, if present and text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A pooled HTTP/1.1 client bound to one app's base URL. Cheap to clone.
#[derive(Clone)]
pub struct TestClient {
    base_url: String,
    inner: Client<HttpConnector, Full<Bytes>>,
}

impl TestClient {
    /// The `host:port` it sends to, for a test that writes raw HTTP.
    pub fn address(&self) -> &str {
        self.base_url.trim_start_matches("http://")
    }

    /// A client for `base_url` (`http://127.0.0.1:PORT`).
    pub fn new(base_url: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
            inner: {
                // Without TCP_NODELAY, Nagle's algorithm and delayed ACKs hold small requests
                // back by ~40 ms on loopback: every request would look slow.
                let mut connector = HttpConnector::new();
                connector.set_nodelay(true);
                Client::builder(TokioExecutor::new()).build(connector)
            },
        }
    }

    /// Sends a request to `path` (with query) and reads the whole response.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Result<TestResponse> {
        let mut builder = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base_url));
        for (name, value) in headers {
            // As bytes: header values may be UTF-8 text (an accented user name), as on Spin.
            let value = http::HeaderValue::from_bytes(value.as_bytes())
                .with_context(|| format!("header {name} has a byte no HTTP header may hold"))?;
            builder = builder.header(*name, value);
        }
        let request = builder
            .body(Full::new(body.into()))
            .context("building the request")?;
        let response = self
            .inner
            .request(request)
            .await
            .with_context(|| format!("sending a request to {path}"))?;
        let (parts, body) = response.into_parts();
        let body = body
            .collect()
            .await
            .with_context(|| format!("reading the response body from {path}"))?
            .to_bytes();
        Ok(TestResponse {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> Result<TestResponse> {
        self.request(Method::GET, path, &[], Bytes::new()).await
    }

    /// `POST path` with a body.
    pub async fn post(&self, path: &str, body: impl Into<Bytes>) -> Result<TestResponse> {
        self.request(Method::POST, path, &[], body).await
    }

    /// `PUT path` with a body.
    pub async fn put(&self, path: &str, body: impl Into<Bytes>) -> Result<TestResponse> {
        self.request(Method::PUT, path, &[], body).await
    }

    /// `DELETE path`.
    pub async fn delete(&self, path: &str) -> Result<TestResponse> {
        self.request(Method::DELETE, path, &[], Bytes::new()).await
    }
}
