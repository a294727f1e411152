//! `wasi:config/store` over a component's resolved variables, as Spin implements it: a key
//! the component does not declare, or an invalid key name, reads as `none` (the
//! guidance of the wasi-runtime-config proposal), never as an error.

use crate::bindings::wasi::config::store;
use crate::state::HostState;

impl store::Host for HostState {
    fn get(&mut self, key: String) -> wasmtime::Result<Result<Option<String>, store::Error>> {
        Ok(Ok(self.config.get(&key).cloned()))
    }

    fn get_all(&mut self) -> wasmtime::Result<Result<Vec<(String, String)>, store::Error>> {
        Ok(Ok(self
            .config
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()))
    }
}
