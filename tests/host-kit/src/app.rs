//! Starting and stopping an app: [`HostOptions`] in, [`TestApp`] out.

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, ensure};
use tokio::net::TcpListener;
use wasmtime_wasi_http::handler::ProxyHandler;
use wasmtime_wasi_http::p3::bindings::ServicePre;

use crate::client::TestClient;
use crate::engine;
use crate::handler::{ComponentHandler, ReusePolicy};
use crate::kv_host::CasSemantics;
use crate::manifest::AppManifest;
use crate::output::{Failure, FailureLog, GuestOutput};
use crate::routes::Router;
use crate::server::{self, AppServer};
use crate::store::{DEFAULT_LABEL, SharedStore};
use crate::variables;

/// How to run an app.
#[derive(Debug, Clone)]
pub struct HostOptions {
    /// The `spin.toml`; component sources are relative to its directory.
    pub manifest: PathBuf,
    /// `false`: a fresh instance for every request. `true`: instances serve several
    /// requests, one after another and at the same time, with Spin's limits
    /// ([`ReusePolicy::SPIN_DEFAULT`]), as Spin does for WASIp3 components.
    pub reuse_instances: bool,
    /// Variable values, by variable name (`admin_token`, or `ADMIN_TOKEN`); they win over
    /// the environment. Naming a variable the manifest does not declare is an error.
    pub variables: HashMap<String, String>,
    /// Read `SPIN_VARIABLE_<NAME>` from the process environment, as `spin up` does.
    /// Turn off for tests that must not see the developer's or CI's environment.
    pub read_env: bool,
    /// The key-value data to use; a new empty store when `None`. Pass a store to seed it
    /// before the app starts or to keep data across a restart.
    pub store: Option<SharedStore>,
    /// Store labels defined besides `default` (what a Spin runtime-config file would add).
    pub extra_stores: Vec<String>,
    /// Compare-and-swap behaviour; Spin's SQLite store by default.
    pub cas: CasSemantics,
    /// Overrides the instance limits implied by `reuse_instances`.
    pub reuse_policy: Option<ReusePolicy>,
    /// Also print the components' stdout/stderr on the test's stderr as it comes.
    pub echo_guest_output: bool,
}

impl HostOptions {
    /// Options for `manifest` with Spin's defaults: fresh instances, variables from the
    /// environment, an empty store.
    pub fn new(manifest: impl Into<PathBuf>) -> Self {
        Self {
            manifest: manifest.into(),
            reuse_instances: false,
            variables: HashMap::new(),
            read_env: true,
            store: None,
            extra_stores: Vec::new(),
            cas: CasSemantics::default(),
            reuse_policy: None,
            echo_guest_output: false,
        }
    }

    /// Sets one variable (builder style).
    pub fn variable(mut self, name: &str, value: &str) -> Self {
        self.variables.insert(name.to_string(), value.to_string());
        self
    }

    /// Sets `reuse_instances` (builder style).
    pub fn reuse_instances(mut self, reuse: bool) -> Self {
        self.reuse_instances = reuse;
        self
    }
}

/// A running app, served on `127.0.0.1` on a free port until dropped.
///
/// The app runs on its own Tokio runtime (two worker threads), so it behaves the same
/// whatever runtime the test uses, and dropping the `TestApp` (also from async code)
/// stops it.
pub struct TestApp {
    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub base_url: String,
    /// The key-value data all components share.
    pub store: SharedStore,
    /// A client for `base_url`.
    pub client: TestClient,
    addr: SocketAddr,
    failures: FailureLog,
    output: GuestOutput,
    runtime: Option<tokio::runtime::Runtime>,
}

impl TestApp {
    /// Loads the manifest, resolves variables, compiles and pre-instantiates every
    /// routed component, and starts serving.
    pub async fn start(opts: HostOptions) -> Result<TestApp> {
        let manifest = AppManifest::load(&opts.manifest)?;

        let env = |name: &str| {
            if opts.read_env {
                std::env::var(name).ok()
            } else {
                None
            }
        };
        let app_variables =
            variables::resolve_app_variables(&manifest.variables, &opts.variables, &env)?;

        let defined: Arc<BTreeSet<String>> = Arc::new(
            std::iter::once(DEFAULT_LABEL.to_string())
                .chain(opts.extra_stores.iter().cloned())
                .collect(),
        );
        for (id, component) in &manifest.components {
            for label in &component.key_value_stores {
                ensure!(
                    defined.contains(label),
                    "unknown key_value_stores label {label:?} for component {id:?}"
                );
            }
        }
        let router = Router::build(&manifest.routes)?;

        let store = opts.store.clone().unwrap_or_default();
        let failures = FailureLog::default();
        let output = GuestOutput::new(opts.echo_guest_output);
        let reuse = opts.reuse_policy.unwrap_or(if opts.reuse_instances {
            ReusePolicy::SPIN_DEFAULT
        } else {
            ReusePolicy::FRESH
        });

        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("cpis-host-kit")
            .enable_all()
            .build()
            .context("starting the host's Tokio runtime")?;

        // Compiling is CPU-bound and the handlers must live on the host's runtime, so all
        // of the setup runs there.
        let cas = opts.cas;
        let setup = {
            let store = store.clone();
            let failures = failures.clone();
            let output = output.clone();
            async move {
                let engine = engine::engine()?;
                let linker = engine::linker(engine)?;
                let mut handlers = HashMap::new();
                for (id, component) in &manifest.components {
                    let compiled = tokio::task::block_in_place(|| {
                        engine::load_component(engine, &component.source)
                    })?;
                    let pre = linker
                        .instantiate_pre(&compiled)
                        .map_err(anyhow::Error::from)
                        .with_context(|| {
                            format!(
                                "component {id:?} ({}) has an import this host does not provide",
                                component.source.display()
                            )
                        })?;
                    let pre = ServicePre::new(pre)
                        .map_err(anyhow::Error::from)
                        .with_context(|| {
                            format!("component {id:?} does not export wasi:http/handler@0.3.0")
                        })?;
                    let config = variables::component_config(&component.variables, &app_variables)
                        .with_context(|| format!("variables of component {id:?}"))?;
                    let handler = ComponentHandler {
                        id: id.clone(),
                        engine: engine.clone(),
                        pre,
                        environment: component.environment.clone(),
                        kv_allowed: Arc::new(component.key_value_stores.iter().cloned().collect()),
                        kv_defined: defined.clone(),
                        config: Arc::new(config),
                        store: store.clone(),
                        cas,
                        output: output.clone(),
                        failures: failures.clone(),
                        reuse,
                    };
                    handlers.insert(id.clone(), ProxyHandler::new(handler));
                }

                let listener = TcpListener::bind("127.0.0.1:0")
                    .await
                    .context("binding 127.0.0.1:0")?;
                let addr = listener.local_addr()?;
                let app = Arc::new(AppServer {
                    name: manifest.name.clone(),
                    version: manifest.version.clone(),
                    router,
                    handlers,
                    failures,
                });
                tokio::spawn(server::serve(app, listener));
                anyhow::Ok(addr)
            }
        };
        let addr = match runtime.spawn(setup).await {
            Ok(result) => result,
            Err(e) => Err(anyhow::anyhow!("host setup panicked: {e}")),
        };
        let addr = match addr {
            Ok(addr) => addr,
            Err(e) => {
                runtime.shutdown_background();
                return Err(e);
            }
        };

        let base_url = format!("http://{addr}");
        Ok(TestApp {
            client: TestClient::new(base_url.clone()),
            base_url,
            store,
            addr,
            failures,
            output,
            runtime: Some(runtime),
        })
    }

    /// The address the app listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `base_url` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// Every component failure so far, one entry each: an instance that trapped (naming
    /// the requests it was serving, which were answered 500), a request answered 500
    /// because the component returned an error or could not be instantiated, or an
    /// instance that trapped after sending its response. Empty means no component failed.
    pub fn traps(&self) -> Vec<String> {
        self.failures
            .all()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    /// The same failures, structured.
    pub fn failures(&self) -> Vec<Failure> {
        self.failures.all()
    }

    /// Panics, listing them and the guest output, if any component failed.
    #[track_caller]
    pub fn assert_no_traps(&self) {
        let traps = self.traps();
        assert!(
            traps.is_empty(),
            "components failed:\n{}\n--- guest output ---\n{}",
            traps.join("\n"),
            self.guest_output()
        );
    }

    /// Forgets the failures recorded so far (after a test provoked one on purpose).
    pub fn clear_traps(&self) {
        self.failures.clear();
    }

    /// Everything the components wrote to stdout and stderr, each line prefixed with
    /// `[<component> stdout|stderr] ` (newest 4 MiB).
    pub fn guest_output(&self) -> String {
        self.output.text()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // `shutdown_background` does not block, so this is safe inside async code.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}
