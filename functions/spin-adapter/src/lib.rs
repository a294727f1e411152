//! The one place where CP-IS meets Spin. Each component's handler is one line: [`serve`] with
//! the component's API handler from `cpis_shared::api`.
//!
//! Store access goes through `wasi:keyvalue@0.2.0-draft2` (store, atomics, batch) and
//! `spin:key-value@3.0.0`, variables through `wasi:config`: Spin implements them over the stores
//! and variables granted to the component in `spin.toml`, on every key-value backend it supports.
//!
//! A store that does not answer must not hang a request (docs/operations.md, "When the store
//! fails"). Draft2 calls are synchronous: while one waits on the host, nothing else in the
//! instance runs, so no timer can end it. Spin runs `spin:key-value@3.0.0` calls (`async func`)
//! concurrently, so every `get` goes through v3 raced against a `wasi:clocks` timer
//! (`store_timeout_ms`), and no draft2 call is made in a request before a bounded read has
//! answered in that request: a store that is down is found by a read that fails in bounded time,
//! before anything is written.

use bytes::Bytes;
use cpis_shared::api::{
    self, BodyToRead, Context, MAX_BODY_BYTES, body_too_large, error_response_for,
};
use cpis_shared::config::Config;
use cpis_shared::error::ApiError;
use cpis_shared::store::{KeyValue, StoreError};
use http_body_util::{BodyExt, Full, Limited};
use spin_sdk::experimental::wasi::config::store as variables;
use spin_sdk::experimental::wasi::keyvalue::{atomics, batch, store};
use spin_sdk::http::Request;
use spin_sdk::key_value as kv3;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::{Future, poll_fn};
use std::pin::pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Poll;
use std::time::Duration;

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
    with_content_length(response).map(|body| Full::new(Bytes::from(body)))
}

/// Declares the body's length. Without it Spin sends the body chunked, in a second segment that
/// waits for the client's delayed ACK (Spin sets no `TCP_NODELAY`): about 40 ms per request on a
/// kept-alive connection (docs/operations.md, "Known Spin issues").
fn with_content_length(mut response: api::Response) -> api::Response {
    let length = http::HeaderValue::from(response.body().len());
    response
        .headers_mut()
        .insert(http::header::CONTENT_LENGTH, length);
    response
}

/// Reads as much of the body as [`api::body_to_read`] says. A body with a declared length is
/// read up to it and no further: waiting for the body's end on Spin cost more than the whole of
/// a small request (docs/operations.md, "Known Spin issues").
async fn read_body(req: Request) -> Result<api::Request, ApiError> {
    let (parts, mut body) = req.into_parts();
    let bytes = match api::body_to_read(&parts.method, &parts.headers)? {
        BodyToRead::Nothing => Vec::new(),
        BodyToRead::Exactly(length) => {
            let mut bytes = Vec::with_capacity(length);
            while bytes.len() < length {
                match body.frame().await {
                    Some(Ok(frame)) => {
                        if let Ok(data) = frame.into_data() {
                            bytes.extend_from_slice(&data);
                        }
                    }
                    Some(Err(e)) => return Err(unreadable(e)),
                    None => break,
                }
            }
            if bytes.len() != length {
                return Err(ApiError::new(
                    http::StatusCode::BAD_REQUEST,
                    "unreadable_body",
                    format!(
                        "the request body holds {} bytes where Content-Length declares {length}",
                        bytes.len()
                    ),
                ));
            }
            bytes
        }
        BodyToRead::UntilEnd => Limited::new(body, MAX_BODY_BYTES)
            .collect()
            .await
            .map_err(|e| {
                if e.is::<http_body_util::LengthLimitError>() {
                    body_too_large()
                } else {
                    unreadable(e)
                }
            })?
            .to_bytes()
            .to_vec(),
    };
    Ok(api::Request::from_parts(parts, bytes))
}

fn unreadable(e: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        http::StatusCode::BAD_REQUEST,
        "unreadable_body",
        format!("the request body could not be read: {e}"),
    )
}

fn run(req: &api::Request, handler: Handler) -> Result<api::Response, ApiError> {
    let config = config()?;
    let store = SpinStore {
        timeout: config.store_timeout,
        answered: Cell::new(false),
    };
    let ctx = Context {
        store: &store,
        now: time::OffsetDateTime::now_utc(),
        config,
    };
    Ok(handler(req, &ctx))
}

thread_local! {
    // Kept across the requests Spin sends to one instance (up to 128 for a WASIp3 component):
    // reading the variables and opening the store are host calls a request need not repeat.
    // Neither is request state. A variable changed in a provider is seen by new instances.
    static CONFIG: RefCell<Option<Config>> = const { RefCell::new(None) };
    static BUCKET: RefCell<Option<Rc<store::Bucket>>> = const { RefCell::new(None) };
    static READER: RefCell<Option<Rc<kv3::Store>>> = const { RefCell::new(None) };
    // When a bounded call last ran out of time in this instance. Requests Spin sends to the
    // same instance at once wait while one of them waits for the store (the wait blocks the
    // instance); for one timeout after a call ran out of time, they fail at once instead of
    // each waiting a timeout of its own in turn, so every answer stays within about one timeout.
    static TIMED_OUT_AT: Cell<Option<std::time::Instant>> = const { Cell::new(None) };
}

/// The component's variables, read once per instance.
fn config() -> Result<Config, ApiError> {
    if let Some(config) = CONFIG.with_borrow(Clone::clone) {
        return Ok(config);
    }
    let config = Config::from_variables(|name| variables::get(name).ok().flatten())?;
    CONFIG.set(Some(config.clone()));
    Ok(config)
}

/// [`KeyValue`] over the Spin key-value store labelled `default`, for one request: each method
/// is one host call (two for `cas_begin`: open the handle, read its value). Both handles to the
/// store are opened on first use, once per instance: a request that needs no stored data never
/// touches the store.
pub struct SpinStore {
    /// The bound on one read ([`Config::store_timeout`]).
    timeout: Duration,
    /// Whether a bounded read has answered in this request: until one has, no draft2 call (which
    /// cannot be bounded) is made.
    answered: Cell<bool>,
}

/// A read the store did not answer in time.
fn too_slow(what: &str, timeout: Duration) -> StoreError {
    StoreError::Unavailable(format!(
        "{what}: the store did not answer within {} ms",
        timeout.as_millis()
    ))
}

/// Runs `call` until it completes or `timeout` passes, whichever is first. The request's task
/// waits here, in the instance, for either of the two host events; on timeout the call is
/// dropped (the host cancels it).
fn bounded<T: 'static>(
    what: &str,
    timeout: Duration,
    call: impl Future<Output = Result<T, kv3::Error>>,
) -> Result<T, StoreError> {
    if let Some(at) = TIMED_OUT_AT.get() {
        let ago = at.elapsed();
        if ago < timeout {
            return Err(StoreError::Unavailable(format!(
                "{what}: the store did not answer within {} ms, {} ms ago; not asked again yet",
                timeout.as_millis(),
                ago.as_millis()
            )));
        }
    }
    let outcome = spin_sdk::wit_bindgen::block_on(async move {
        let mut call = pin!(call);
        let mut timer = pin!(spin_sdk::time::sleep(timeout));
        poll_fn(|cx| {
            if let Poll::Ready(result) = call.as_mut().poll(cx) {
                return Poll::Ready(Some(result));
            }
            if timer.as_mut().poll(cx).is_ready() {
                return Poll::Ready(None);
            }
            Poll::Pending
        })
        .await
    });
    TIMED_OUT_AT.set(outcome.is_none().then(std::time::Instant::now));
    match outcome {
        Some(Ok(value)) => Ok(value),
        Some(Err(e)) => Err(StoreError::Unavailable(format!(
            "{what}: {}",
            describe_v3(e)
        ))),
        None => Err(too_slow(what, timeout)),
    }
}

/// Every future's result, in order, or the first error: the futures make progress together.
async fn all<T, E, F: Future<Output = Result<T, E>>>(
    futures: impl IntoIterator<Item = F>,
) -> Result<Vec<T>, E> {
    let mut pending: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut done: Vec<Option<T>> = pending.iter().map(|_| None).collect();
    poll_fn(|cx| {
        for (future, slot) in pending.iter_mut().zip(done.iter_mut()) {
            if slot.is_none() {
                match future.as_mut().poll(cx) {
                    Poll::Ready(Ok(value)) => *slot = Some(value),
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => {}
                }
            }
        }
        if done.iter().all(Option::is_some) {
            Poll::Ready(Ok(done.iter_mut().filter_map(Option::take).collect()))
        } else {
            Poll::Pending
        }
    })
    .await
}

fn describe_v3(e: kv3::Error) -> String {
    match e {
        kv3::Error::StoreTableFull => "too many stores open".into(),
        kv3::Error::NoSuchStore => "no such store".into(),
        kv3::Error::AccessDenied => "access to the store denied".into(),
        kv3::Error::Other(message) => message,
    }
}

impl SpinStore {
    /// The draft2 handle, for every call but `get`. Made only after a bounded read has answered
    /// in this request, so a store that is down fails the request before any draft2 call (which
    /// would wait as long as the host does); the probe reads [`cpis_shared::keys::PROBE`], which CP-IS never writes.
    fn bucket(&self) -> Result<Rc<store::Bucket>, StoreError> {
        if !self.answered.get() {
            self.get(cpis_shared::keys::PROBE)?;
        }
        if let Some(bucket) = BUCKET.with_borrow(Clone::clone) {
            return Ok(bucket);
        }
        let bucket = Rc::new(store::open(STORE_LABEL).map_err(|e| {
            StoreError::Unavailable(format!("opening store {STORE_LABEL}: {}", describe(e)))
        })?);
        BUCKET.set(Some(bucket.clone()));
        Ok(bucket)
    }

    /// The v3 handle, for bounded reads. Opening it is bounded too: Spin's Redis store pings
    /// Redis on open.
    fn reader(&self) -> Result<Rc<kv3::Store>, StoreError> {
        if let Some(reader) = READER.with_borrow(Clone::clone) {
            return Ok(reader);
        }
        let reader = Rc::new(bounded(
            "opening the store",
            self.timeout,
            kv3::Store::open(STORE_LABEL),
        )?);
        READER.set(Some(reader.clone()));
        Ok(reader)
    }

    /// Several keys read at once: the `spin:key-value@3.0.0` reads are issued together and
    /// awaited under one bound, so Spin can run them concurrently (on Redis, pipelined on its
    /// connection) instead of one round trip after another.
    fn get_each(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        if keys.len() < 2 {
            return keys.iter().map(|key| self.get(key)).collect();
        }
        let reader = self.reader()?;
        let reads = keys.iter().map(|key| reader.get(key));
        let values = bounded("reading", self.timeout, all(reads))?;
        self.answered.set(true);
        Ok(values)
    }
}

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

/// Set once this instance has seen the backend's `get-many` fail where `get` works (Spin's
/// Redis store): a fact about the backend, the same for every request the instance serves.
static BATCH_GET_BROKEN: AtomicBool = AtomicBool::new(false);

impl KeyValue for SpinStore {
    type Cas = atomics::Cas;

    /// Through `spin:key-value@3.0.0`, bounded by the store timeout.
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let reader = self.reader()?;
        let value = bounded("reading", self.timeout, reader.get(key))?;
        self.answered.set(true);
        Ok(value)
    }

    /// `wasi:keyvalue/batch.get-many` where the backend implements it (one call on SQLite), one
    /// `get` per key where it does not: Spin's Redis store implements `get-many` with Redis's
    /// `KEYS` command, which fails for any list of two or more keys ("wrong number of arguments
    /// for 'keys' command"). A `get-many` that fails is answered key by key; when that works,
    /// the backend's `get-many` is known broken and this instance reads key by key from then on.
    /// A single key is always read with `get` (`KEYS` with one key is a pattern match, not a
    /// read). Callers read bounded lists (docs/storage.md, "Reading several keys").
    fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        if keys.len() < 2 || BATCH_GET_BROKEN.load(Ordering::Relaxed) {
            return self.get_each(keys);
        }
        match batch::get_many(&*self.bucket()?, keys) {
            // In the order asked, as Spin's SQLite store answers: no need to match by key.
            Ok(pairs)
                if pairs.len() == keys.len()
                    && pairs.iter().zip(keys).all(|((found, _), key)| found == key) =>
            {
                Ok(pairs.into_iter().map(|(_, value)| value).collect())
            }
            // Backends differ in whether they return absent keys and in what order: match by key.
            Ok(pairs) => {
                let mut found: HashMap<String, Vec<u8>> = pairs
                    .into_iter()
                    .filter_map(|(key, value)| value.map(|v| (key, v)))
                    .collect();
                Ok(keys.iter().map(|key| found.remove(key)).collect())
            }
            Err(batch_error) => {
                let values = self.get_each(keys).map_err(|e| {
                    StoreError::Unavailable(format!("{} (get-many: {})", e, describe(batch_error)))
                })?;
                BATCH_GET_BROKEN.store(true, Ordering::Relaxed);
                Ok(values)
            }
        }
    }

    fn set_many(&self, entries: &[(String, Vec<u8>)]) -> Result<(), StoreError> {
        batch::set_many(&*self.bucket()?, entries).map_err(failed)
    }

    fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.bucket()?.delete(key).map_err(failed)
    }

    fn delete_many(&self, keys: &[String]) -> Result<(), StoreError> {
        batch::delete_many(&*self.bucket()?, keys).map_err(failed)
    }

    fn increment(&self, key: &str, delta: i64) -> Result<i64, StoreError> {
        atomics::increment(&*self.bucket()?, key, delta).map_err(failed)
    }

    fn cas_begin(&self, key: &str) -> Result<(atomics::Cas, Option<Vec<u8>>), StoreError> {
        let cas = atomics::Cas::new(&*self.bucket()?, key).map_err(failed)?;
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

    /// Once this instance has found the backend's `get-many` broken, each key is a `get`.
    fn reads_each_key_apart(&self) -> bool {
        BATCH_GET_BROKEN.load(Ordering::Relaxed)
    }
}
