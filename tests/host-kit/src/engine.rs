//! The Wasmtime engine, linker and compiled components, shared by every app in the test
//! process.
//!
//! Compiling a component with Cranelift is the slow part of starting an app (seconds on 2
//! cores), and a test suite starts many apps from the same few files. So there is one
//! engine per process, each file is compiled at most once per process (keyed by path,
//! size and modification time), and Wasmtime's on-disk cache keeps the machine code
//! across test runs. The disk cache lives in Wasmtime's default directory
//! (`~/.cache/wasmtime`), or in `$CPIS_HOST_KIT_CACHE_DIR`; `CPIS_HOST_KIT_NO_CACHE=1`
//! turns it off.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::SystemTime;

use anyhow::{Context, Result, anyhow};
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Cache, CacheConfig, Config, Engine};

use crate::bindings;
use crate::state::HostState;

/// The process-wide engine.
pub(crate) fn engine() -> Result<&'static Engine> {
    static ENGINE: OnceLock<Result<Engine, String>> = OnceLock::new();
    ENGINE
        .get_or_init(|| new_engine().map_err(|e| format!("{e:#}")))
        .as_ref()
        .map_err(|e| anyhow!("creating the Wasmtime engine: {e}"))
}

fn new_engine() -> Result<Engine> {
    let mut config = Config::new();
    // WASIp3 (`wasi:http/handler@0.3.0`) needs the component model's async ABI.
    config.wasm_component_model(true);
    config.wasm_component_model_async(true);
    if std::env::var_os("CPIS_HOST_KIT_NO_CACHE").is_none() {
        let mut cache = CacheConfig::new();
        if let Some(dir) = std::env::var_os("CPIS_HOST_KIT_CACHE_DIR") {
            cache.with_directory(PathBuf::from(dir));
        }
        match Cache::new(cache) {
            Ok(cache) => {
                config.cache(Some(cache));
            }
            // No usable cache directory only costs time.
            Err(e) => eprintln!("cpis-host-kit: compilation cache disabled: {e}"),
        }
    }
    Ok(Engine::new(&config)?)
}

/// A linker that provides every import a CP-IS component may have: WASI 0.2 (what the
/// Rust standard library's adapter imports) and 0.3, `wasi:http@0.3.0`, key-value draft2
/// and `spin:key-value@3.0.0`, and `wasi:config`. Pre-instantiation fails, naming the import, if a component needs
/// anything else.
pub(crate) fn linker(engine: &Engine) -> Result<Linker<HostState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)
        .map_err(anyhow::Error::from)
        .context("adding WASI 0.2")?;
    wasmtime_wasi::p3::add_to_linker(&mut linker)
        .map_err(anyhow::Error::from)
        .context("adding WASI 0.3")?;
    wasmtime_wasi_http::p3::add_to_linker(&mut linker)
        .map_err(anyhow::Error::from)
        .context("adding wasi:http 0.3")?;
    type Host = HasSelf<HostState>;
    fn get(state: &mut HostState) -> &mut HostState {
        state
    }
    bindings::wasi::keyvalue::store::add_to_linker::<_, Host>(&mut linker, get)?;
    bindings::wasi::keyvalue::atomics::add_to_linker::<_, Host>(&mut linker, get)?;
    bindings::wasi::keyvalue::batch::add_to_linker::<_, Host>(&mut linker, get)?;
    bindings::wasi::config::store::add_to_linker::<_, Host>(&mut linker, get)?;
    bindings::spin::key_value::key_value::add_to_linker::<_, Host>(&mut linker, get)?;
    Ok(linker)
}

/// Compiles (or takes from the process-wide memo) the component at `path`.
pub(crate) fn load_component(engine: &Engine, path: &Path) -> Result<Component> {
    type Key = (PathBuf, u64, Option<SystemTime>);
    static COMPILED: OnceLock<Mutex<HashMap<Key, Component>>> = OnceLock::new();

    let meta = std::fs::metadata(path).with_context(|| {
        format!(
            "component file {} not found (build the components for wasm32-wasip2 first)",
            path.display()
        )
    })?;
    let key: Key = (path.to_path_buf(), meta.len(), meta.modified().ok());
    // Held while compiling, so that apps starting at the same time compile a file once
    // (Cranelift already uses every core for one component).
    let mut memo = COMPILED
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if let Some(c) = memo.get(&key) {
        return Ok(c.clone());
    }
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let component = Component::new(engine, &bytes)
        .map_err(anyhow::Error::from)
        .with_context(|| format!("compiling component {}", path.display()))?;
    memo.insert(key, component.clone());
    Ok(component)
}
