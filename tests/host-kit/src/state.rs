//! The data of one Wasmtime store (one component instance): WASI, `wasi:http`, key-value
//! and config state.

use std::collections::BTreeMap;
use std::sync::Arc;

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView};

use crate::kv_host::KvContext;
use crate::output::{GuestOutput, Stream};

/// Store data for one instance.
pub(crate) struct HostState {
    pub wasi: WasiCtx,
    pub http: WasiHttpCtx,
    pub table: ResourceTable,
    pub hooks: OutboundDenied,
    pub kv: KvContext,
    /// The component's resolved `[component.<id>.variables]`.
    pub config: Arc<BTreeMap<String, String>>,
}

impl HostState {
    pub fn new(
        component: &str,
        environment: &BTreeMap<String, String>,
        output: &GuestOutput,
        kv: KvContext,
        config: Arc<BTreeMap<String, String>>,
    ) -> Self {
        let mut wasi = WasiCtx::builder();
        for (k, v) in environment {
            wasi.env(k, v);
        }
        wasi.stdout(output.writer(component, Stream::Stdout));
        wasi.stderr(output.writer(component, Stream::Stderr));
        Self {
            wasi: wasi.build(),
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            hooks: OutboundDenied,
            kv,
            config,
        }
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

/// Outbound HTTP policy: the CP-IS components declare no `allowed_outbound_hosts`, and for
/// such a component Spin refuses every outgoing request with `HTTP-request-denied`.
pub(crate) struct OutboundDenied;

impl WasiHttpHooks for OutboundDenied {
    fn send_request(
        &mut self,
        _request: http::Request<wasmtime_wasi_http::WasiBody>,
        _options: Option<wasmtime_wasi_http::RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
    ) -> Box<
        dyn Future<
                Output = Result<
                    (
                        http::Response<wasmtime_wasi_http::WasiBody>,
                        Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
                    ),
                    wasmtime_wasi_http::Error,
                >,
            > + Send,
    > {
        Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) })
    }
}
