//! Health probes for an orchestrator, served by the `query` component (`spin.toml`):
//!
//! - `GET /health/live`: 200 whenever the component answers; never touches the store, so a store
//!   outage does not make an orchestrator restart a process that is fine.
//! - `GET /health/ready`: one read of [`keys::PROBE`] (bounded by the store timeout on Spin):
//!   200 when the store answers, 503 `store_unavailable` when it does not.
//!
//! Neither needs a credential: they say nothing about any child or organisation.

use super::{Request, Response, json, not_found, require_method, segments};
use crate::error::ApiError;
use crate::keys;
use crate::store::KeyValue;
use http::{Method, StatusCode};

/// The path every probe starts with.
pub const BASE: &str = "/health";

/// Answers a probe, or `None` if the path is not under [`BASE`].
pub fn route<S: KeyValue>(req: &Request, store: &S) -> Option<Result<Response, ApiError>> {
    let rest = segments(req, BASE)?;
    Some(probe(req, store, &rest))
}

fn probe<S: KeyValue>(req: &Request, store: &S, rest: &[&str]) -> Result<Response, ApiError> {
    let ready = match rest {
        ["live"] => false,
        ["ready"] => true,
        _ => return Err(not_found(req)),
    };
    require_method(req, Method::GET)?;
    if ready {
        store.get(keys::PROBE)?;
    }
    let status = if ready { "ready" } else { "live" };
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({ "status": status }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Call, MemoryStore};

    fn get(path: &str) -> Request {
        http::Request::builder().uri(path).body(Vec::new()).unwrap()
    }

    fn status(result: Option<Result<Response, ApiError>>) -> u16 {
        match result.expect("a health path") {
            Ok(response) => response.status().as_u16(),
            Err(error) => error.status.as_u16(),
        }
    }

    #[test]
    fn live_never_touches_the_store() {
        let store = MemoryStore::new();
        store.fail_all_calls();
        assert_eq!(status(route(&get("/health/live"), &store)), 200);
        assert!(store.take_calls().is_empty());
    }

    #[test]
    fn ready_reads_the_store_once_and_says_when_it_fails() {
        let store = MemoryStore::new();
        assert_eq!(status(route(&get("/health/ready"), &store)), 200);
        assert_eq!(store.take_calls(), [Call::Get]);
        store.fail_all_calls();
        let Some(Err(error)) = route(&get("/health/ready"), &store) else {
            panic!("a failing store is not ready");
        };
        assert_eq!(error.status, 503);
        assert_eq!(error.code, "store_unavailable");
    }

    #[test]
    fn other_paths_and_methods_are_refused_without_the_store() {
        let store = MemoryStore::new();
        assert!(route(&get("/healthz"), &store).is_none());
        assert_eq!(status(route(&get("/health"), &store)), 404);
        assert_eq!(status(route(&get("/health/ready/x"), &store)), 404);
        let post = http::Request::builder()
            .method(Method::POST)
            .uri("/health/ready")
            .body(Vec::new())
            .unwrap();
        assert_eq!(status(route(&post, &store)), 405);
        assert!(store.take_calls().is_empty());
    }
}
