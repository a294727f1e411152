//! Health probes for an orchestrator, served by the `query` component (`spin.toml`):
//!
//! - `GET /health/live`: 200 whenever the component answers; never touches the store, so a store
//!   outage does not make an orchestrator restart a process that is fine.
//! - `GET /health/ready`: one read of [`keys::PROBE`] (bounded by the store timeout on Spin):
//!   200 when the store answers, 503 `store_unavailable` when it does not.
//!
//! Neither needs a credential: they say nothing about any child or organisation.

use super::{Response, json};
use crate::error::ApiError;
use crate::keys;
use crate::store::KeyValue;
use http::StatusCode;

/// `GET /health/live`: the component answers. No store call.
pub fn live() -> Response {
    json(StatusCode::OK, &serde_json::json!({ "status": "live" }))
}

/// `GET /health/ready`: one read of [`keys::PROBE`]; a store that fails or does not answer in
/// time is 503 `store_unavailable`.
pub fn ready<S: KeyValue>(store: &S) -> Result<Response, ApiError> {
    store.get(keys::PROBE)?;
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({ "status": "ready" }),
    ))
}

#[cfg(test)]
mod tests {
    use super::super::{Context, query};
    use crate::config::Config;
    use crate::store::{Call, MemoryStore};
    use http::Method;

    fn call(store: &MemoryStore, method: Method, path: &str) -> u16 {
        let req = http::Request::builder()
            .method(method)
            .uri(path)
            .body(Vec::new())
            .unwrap();
        let ctx = Context {
            store,
            now: time::OffsetDateTime::now_utc(),
            config: Config::default(),
        };
        query::handle(&req, &ctx).status().as_u16()
    }

    #[test]
    fn live_never_touches_the_store() {
        let store = MemoryStore::new();
        store.fail_all_calls();
        assert_eq!(call(&store, Method::GET, "/health/live"), 200);
        assert!(store.take_calls().is_empty());
    }

    #[test]
    fn ready_reads_the_store_once_and_says_when_it_fails() {
        let store = MemoryStore::new();
        assert_eq!(call(&store, Method::GET, "/health/ready"), 200);
        assert_eq!(store.take_calls(), [Call::Get]);
        store.fail_all_calls();
        assert_eq!(call(&store, Method::GET, "/health/ready"), 503);
    }

    #[test]
    fn other_paths_and_methods_are_refused_without_the_store() {
        let store = MemoryStore::new();
        assert_eq!(call(&store, Method::GET, "/health"), 404);
        assert_eq!(call(&store, Method::GET, "/health/ready/x"), 404);
        assert_eq!(call(&store, Method::POST, "/health/ready"), 405);
        assert!(store.take_calls().is_empty());
    }
}
