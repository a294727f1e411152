//! Per-component request dispatch: Wasmtime's `ProxyHandler`, which Spin's own HTTP
//! trigger uses for WASIp3 components, configured for a fresh instance per request or
//! for Spin's instance reuse.

use std::collections::{BTreeMap, BTreeSet};
use std::pin::Pin;
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use wasmtime::component::GuestTaskId;
use wasmtime::{Engine, Store, StoreContextMut};
use wasmtime_wasi_http::WasiHttpView;
use wasmtime_wasi_http::handler::{
    HandlerState, Instance, Proxy, ShouldAccept, WorkerExpiration, WorkerState, WorkerStatus,
};
use wasmtime_wasi_http::p3::bindings::ServicePre;

use crate::kv_host::{CasSemantics, KvContext};
use crate::output::{Failure, FailureLog, GuestOutput, describe};
use crate::state::HostState;
use crate::store::SharedStore;

/// How many requests an instance may serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReusePolicy {
    /// Requests one instance serves in its lifetime (1: a fresh instance per request).
    pub max_requests: usize,
    /// Requests one instance serves at the same time.
    pub max_concurrent: usize,
    /// An instance with nothing to do is dropped after this long.
    pub idle_timeout: Duration,
}

impl ReusePolicy {
    /// A new instance for every request.
    pub const FRESH: Self = Self {
        max_requests: 1,
        max_concurrent: 1,
        idle_timeout: Duration::from_secs(1),
    };

    /// Spin's defaults for WASIp3 components: up to 128 requests per instance, 16 at a
    /// time, dropped after 1 s idle.
    pub const SPIN_DEFAULT: Self = Self {
        max_requests: 128,
        max_concurrent: 16,
        idle_timeout: Duration::from_secs(1),
    };
}

/// Everything needed to make instances of one component.
pub(crate) struct ComponentHandler {
    pub id: String,
    pub engine: Engine,
    pub pre: ServicePre<HostState>,
    pub environment: BTreeMap<String, String>,
    pub kv_allowed: Arc<BTreeSet<String>>,
    pub kv_defined: Arc<BTreeSet<String>>,
    pub config: Arc<BTreeMap<String, String>>,
    pub store: SharedStore,
    pub cas: CasSemantics,
    pub output: GuestOutput,
    pub failures: FailureLog,
    pub reuse: ReusePolicy,
}

impl HandlerState for ComponentHandler {
    type StoreData = HostState;
    type WorkerExpiration = IdleExpiration;
    type WorkerState = ComponentWorker;

    async fn instantiate(
        &self,
    ) -> wasmtime::Result<Instance<HostState, IdleExpiration, ComponentWorker>> {
        let data = HostState::new(
            &self.id,
            &self.environment,
            &self.output,
            KvContext {
                store: self.store.clone(),
                allowed: self.kv_allowed.clone(),
                defined: self.kv_defined.clone(),
                cas: self.cas,
            },
            self.config.clone(),
        );
        let mut store = Store::new(&self.engine, data);
        let service = self.pre.instantiate_async(&mut store).await?;
        Ok(Instance {
            store,
            proxy: Proxy::P3(service),
            view: <HostState as WasiHttpView>::http,
            expiration: IdleExpiration {
                idle_timeout: self.reuse.idle_timeout,
                sleep: Box::pin(tokio::time::sleep(self.reuse.idle_timeout)),
            },
            state: ComponentWorker {
                component: self.id.clone(),
                reuse: self.reuse,
                failures: self.failures.clone(),
                accepted: Mutex::default(),
            },
        })
    }
}

/// Ends an instance once it has been idle for the policy's idle timeout. Requests have no
/// time limit, as in Spin without `--request-timeout`.
pub(crate) struct IdleExpiration {
    idle_timeout: Duration,
    sleep: Pin<Box<tokio::time::Sleep>>,
}

impl WorkerExpiration for IdleExpiration {
    fn poll(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        status: WorkerStatus,
        start: Instant,
    ) -> Poll<()> {
        if status != WorkerStatus::Idle {
            return Poll::Pending;
        }
        let Some(deadline) = start.checked_add(self.idle_timeout) else {
            return Poll::Pending;
        };
        let deadline = tokio::time::Instant::from_std(deadline);
        if self.sleep.deadline() != deadline {
            self.sleep.as_mut().reset(deadline);
        }
        self.sleep.as_mut().poll(cx)
    }
}

/// What the server and the instance that serves a request share about it, so that an
/// instance failure is reported once, with its cause and the requests it broke.
pub(crate) struct RequestTrace {
    /// `METHOD uri`.
    pub label: String,
    /// Signalled (once) when the instance serving the request ended in error.
    pub instance_failed: tokio::sync::Notify,
}

impl RequestTrace {
    pub fn new(label: String) -> Arc<Self> {
        Arc::new(Self {
            label,
            instance_failed: tokio::sync::Notify::new(),
        })
    }
}

/// The state of one instance's worker.
pub(crate) struct ComponentWorker {
    component: String,
    reuse: ReusePolicy,
    failures: FailureLog,
    /// The requests this instance accepted; the server holds each one's `Arc` until it
    /// has an answer, so those still alive are the ones in flight.
    accepted: Mutex<Vec<Weak<RequestTrace>>>,
}

impl WorkerState for ComponentWorker {
    type StoreData = HostState;
    type RequestData = Arc<RequestTrace>;

    fn should_accept_request(&self, concurrent_count: usize, total_count: usize) -> ShouldAccept {
        if total_count >= self.reuse.max_requests {
            ShouldAccept::Never
        } else if concurrent_count >= self.reuse.max_concurrent {
            ShouldAccept::No
        } else {
            ShouldAccept::Yes
        }
    }

    fn on_request_start(
        &self,
        _store: StoreContextMut<'_, HostState>,
        data: Arc<RequestTrace>,
        _task: GuestTaskId,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + Sync + 'static>> {
        let mut accepted = self.accepted.lock().unwrap_or_else(|p| p.into_inner());
        accepted.retain(|t| t.strong_count() > 0);
        accepted.push(Arc::downgrade(&data));
        Box::pin(std::future::pending())
    }

    fn drop(&self, store: Store<HostState>, result: wasmtime::Result<()>) {
        // An instance that ends in error trapped (or the host panicked) while serving
        // requests, or after it sent a response: either way a test must hear of it.
        if let Err(error) = result {
            let in_flight: Vec<Arc<RequestTrace>> = self
                .accepted
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
                .filter_map(Weak::upgrade)
                .collect();
            let labels: Vec<&str> = in_flight.iter().map(|t| t.label.as_str()).collect();
            self.failures.record(Failure {
                component: self.component.clone(),
                request: (!labels.is_empty()).then(|| labels.join(", ")),
                message: describe(anyhow::Error::from(error)),
            });
            for trace in &in_flight {
                trace.instance_failed.notify_one();
            }
        }
        drop(store);
    }
}
