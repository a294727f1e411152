//! The one place where CP-IS meets Spin. Each component's handler is one line: [`serve`] with
//! the component's API handler from `cpis_shared::api`.
//!
//! Store access goes through `wasi:keyvalue@0.2.0-draft2` (store, atomics, batch) and variables
//! through `wasi:config`: Spin implements both over the stores and variables granted to the
//! component in `spin.toml`, on every key-value backend it supports.

use bytes::Bytes;
use cpis_shared::api::{self, Context, MAX_BODY_BYTES, body_too_large, error_response_for};
use cpis_shared::config::Config;
use cpis_shared::error::ApiError;
use cpis_shared::store::{KeyValue, StoreError};
use http_body_util::{BodyExt, Full, Limited};
use spin_sdk::experimental::wasi::config::store as variables;
use spin_sdk::experimental::wasi::keyvalue::{atomics, batch, store};
use spin_sdk::http::Request;
use std::collections::HashMap;

/// The store label every component is granted in `spin.toml`.
const STORE_LABEL: &str = "default";

/// A component's API handler.
pub type Handler = fn(&api::Request, &Context<SpinStore>) -> api::Response;

/// Reads the request (at most [`MAX_BODY_BYTES`] of body), opens the store, reads the
/// variables, runs `handler`, and logs server-side failures for operators.
pub async fn serve(req: Request, handler: Handler) -> http::Response<Full<Bytes>> {
    let path = req.uri().path().to_string();
    let response = match read_body(req).await.and_then(|req| run(&req, handler)) {
        Ok(response) => response,
        Err(error) => error_response_for(&path, &error),
    };
    if response.status().is_server_error() {
        eprintln!(
            "cp-is: {} {}",
            response.status(),
            String::from_utf8_lossy(response.body())
        );
    }
    response.map(|body| Full::new(Bytes::from(body)))
}

async fn read_body(req: Request) -> Result<api::Request, ApiError> {
    let (parts, body) = req.into_parts();
    let body = Limited::new(body, MAX_BODY_BYTES)
        .collect()
        .await
        .map_err(|e| {
            if e.is::<http_body_util::LengthLimitError>() {
                body_too_large()
            } else {
                ApiError::new(
                    http::StatusCode::BAD_REQUEST,
                    "unreadable_body",
                    format!("the request body could not be read: {e}"),
                )
            }
        })?;
    Ok(api::Request::from_parts(parts, body.to_bytes().to_vec()))
}

fn run(req: &api::Request, handler: Handler) -> Result<api::Response, ApiError> {
    let config = Config::from_variables(|name| variables::get(name).ok().flatten())?;
    let bucket = store::open(STORE_LABEL).map_err(|e| {
        StoreError::Unavailable(format!("opening store {STORE_LABEL}: {}", describe(e)))
    })?;
    let store = SpinStore(bucket);
    let ctx = Context {
        store: &store,
        now: time::OffsetDateTime::now_utc(),
        config,
    };
    Ok(handler(req, &ctx))
}

/// [`KeyValue`] over a Spin key-value store: each method is one host call (two for
/// `cas_begin`: open the handle, read its value).
pub struct SpinStore(store::Bucket);

fn describe(e: store::Error) -> String {
    match e {
        store::Error::NoSuchStore => "no such store".into(),
        store::Error::AccessDenied => "access to the store denied".into(),
        store::Error::Other(message) => message,
    }
}

fn failed(e: store::Error) -> StoreError {
    StoreError::Unavailable(describe(e))
}

impl KeyValue for SpinStore {
    type Cas = atomics::Cas;

    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.0.get(key).map_err(failed)
    }

    fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        // Backends differ in whether they return absent keys and in what order: match by key.
        let mut found: HashMap<String, Vec<u8>> = batch::get_many(&self.0, keys)
            .map_err(failed)?
            .into_iter()
            .filter_map(|(key, value)| value.map(|v| (key, v)))
            .collect();
        Ok(keys.iter().map(|key| found.remove(key)).collect())
    }

    fn set_many(&self, entries: &[(String, Vec<u8>)]) -> Result<(), StoreError> {
        batch::set_many(&self.0, entries).map_err(failed)
    }

    fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.0.delete(key).map_err(failed)
    }

    fn delete_many(&self, keys: &[String]) -> Result<(), StoreError> {
        batch::delete_many(&self.0, keys).map_err(failed)
    }

    fn increment(&self, key: &str, delta: i64) -> Result<i64, StoreError> {
        atomics::increment(&self.0, key, delta).map_err(failed)
    }

    fn cas_begin(&self, key: &str) -> Result<(atomics::Cas, Option<Vec<u8>>), StoreError> {
        let cas = atomics::Cas::new(&self.0, key).map_err(failed)?;
        let current = cas.current().map_err(failed)?;
        Ok((cas, current))
    }

    fn cas_swap(&self, cas: atomics::Cas, value: Vec<u8>) -> Result<bool, StoreError> {
        match atomics::swap(cas, &value) {
            Ok(()) => Ok(true),
            Err(atomics::CasError::CasFailed(_)) => Ok(false),
            Err(atomics::CasError::StoreError(e)) => Err(failed(e)),
        }
    }
}
