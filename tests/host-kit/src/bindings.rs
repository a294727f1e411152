//! Wasmtime bindings for the imports this host implements itself (`wit/`): key-value
//! draft2 and `wasi:config`. The host functions are synchronous (the store is in memory)
//! and `trappable`, so a host-side invariant violation can trap the guest the way a
//! host panic would fail the request in Spin.

wasmtime::component::bindgen!({
    path: "wit",
    world: "cpis:host-kit/spin-imports",
    imports: { default: trappable },
    with: {
        "wasi:keyvalue/store.bucket": crate::kv_host::BucketHandle,
        "wasi:keyvalue/atomics.cas": crate::kv_host::CasHandle,
        "spin:key-value/key-value.store": crate::kv_host::BucketHandle,
    },
});
