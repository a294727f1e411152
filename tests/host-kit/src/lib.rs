//! A test host for the CP-IS Spin application.
//!
//! The Spin CLI cannot be installed where the tests run, so this crate runs the app's
//! components itself, on Wasmtime, with Spin's behaviour where the components can see it:
//!
//! - the manifest (`spin.toml`, version 2): HTTP routes, component sources,
//!   `key_value_stores`, `[variables]` and `[component.<id>.variables]`;
//! - routing with Spin's precedence and the `spin-*` request headers;
//! - `wasi:http/handler@0.3.0` served over real TCP, with a fresh instance per request or
//!   Spin's instance reuse;
//! - `wasi:keyvalue@0.2.0-draft2` (store, atomics, batch) over one in-memory store shared
//!   by all components, with Spin's SQLite-store semantics and fault injection;
//! - `wasi:config/store` over the component's variables;
//! - WASI 0.2 and 0.3 from `wasmtime-wasi`.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use cpis_host_kit::{HostOptions, TestApp};
//! let app = TestApp::start(HostOptions::new("spin.toml").variable("admin_token", "t")).await?;
//! let response = app.client.get("/api/v1/flag/9434765919").await?;
//! assert_eq!(response.status_code(), 200);
//! app.assert_no_traps();
//! # Ok(()) }
//! ```

mod app;
mod bindings;
mod client;
mod config_host;
mod engine;
pub mod fixtures;
mod handler;
mod kv_host;
pub mod manifest;
mod output;
pub mod routes;
mod server;
mod state;
mod store;
pub mod variables;

pub use app::{HostOptions, TestApp};
pub use client::{TestClient, TestResponse};
pub use handler::ReusePolicy;
pub use kv_host::CasSemantics;
pub use output::Failure;
pub use store::{DEFAULT_LABEL, KvOp, SharedStore};
