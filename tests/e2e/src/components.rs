//! Each built component exports the WASI 0.3 HTTP handler and imports only interfaces Spin 4
//! provides to HTTP components.

use wasmtime::component::Component;
use wasmtime::{Config, Engine};

/// Interfaces Spin provides, by package (without version), with the versions it implements.
const SPIN_PROVIDES: &[(&str, &[&str])] = &[
    ("wasi:http/types", &["0.3.0"]),
    ("wasi:keyvalue/store", &["0.2.0-draft2"]),
    ("wasi:keyvalue/atomics", &["0.2.0-draft2"]),
    ("wasi:keyvalue/batch", &["0.2.0-draft2"]),
    // Bounded reads (docs/operations.md, "When the store fails").
    ("spin:key-value/key-value", &["3.0.0"]),
    // The timer a bounded read races against (`spin_sdk::time::sleep`).
    ("wasi:clocks/types", &["0.3.0"]),
    ("wasi:clocks/monotonic-clock", &["0.3.0"]),
    ("wasi:config/store", &["0.2.0-draft-2024-09-27"]),
];

/// WASI 0.2 interfaces of the Rust standard library's adapter; Spin provides every 0.2.x.
const WASI_P2_PACKAGES: &[&str] = &[
    "wasi:io/",
    "wasi:cli/",
    "wasi:clocks/",
    "wasi:random/",
    "wasi:filesystem/",
    "wasi:sockets/",
];

fn allowed(import: &str) -> bool {
    let Some((name, version)) = import.split_once('@') else {
        return false;
    };
    SPIN_PROVIDES
        .iter()
        .any(|(n, versions)| *n == name && versions.contains(&version))
        || (WASI_P2_PACKAGES.iter().any(|p| name.starts_with(p)) && version.starts_with("0.2."))
}

#[test]
fn components_export_the_handler_and_import_only_what_spin_provides() {
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.wasm_component_model_async(true);
    let engine = Engine::new(&config).unwrap();
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/wasm32-wasip2/release");
    for name in [
        "cpis_submit",
        "cpis_query",
        "cpis_access_notify",
        "cpis_alert",
    ] {
        let path = root.join(format!("{name}.wasm"));
        let component = Component::from_file(&engine, &path).unwrap_or_else(|e| {
            panic!(
                "{}: {e:#} (run scripts/build-components.sh first)",
                path.display()
            )
        });
        let ty = component.component_type();
        let exports: Vec<String> = ty.exports(&engine).map(|(n, _)| n.to_string()).collect();
        assert_eq!(exports, ["wasi:http/handler@0.3.0"], "{name}");
        let imports: Vec<String> = ty.imports(&engine).map(|(n, _)| n.to_string()).collect();
        assert!(
            imports
                .iter()
                .any(|i| i == "wasi:keyvalue/store@0.2.0-draft2"),
            "{name}: {imports:?}"
        );
        let foreign: Vec<&String> = imports.iter().filter(|i| !allowed(i)).collect();
        assert!(
            foreign.is_empty(),
            "{name} imports what Spin does not provide: {foreign:?}"
        );
    }
}

#[test]
fn the_allow_list_refuses_what_spin_lacks() {
    assert!(allowed("wasi:http/types@0.3.0"));
    assert!(allowed("wasi:cli/stdout@0.2.6"));
    assert!(!allowed("wasi:http/types@0.3.0-rc-2026-03-15"));
    assert!(!allowed("wasi:keyvalue/store@0.2.0-draft"));
    assert!(!allowed("spin:unknown/thing@1.0.0"));
    assert!(!allowed("wasi:cli/stdout"));
}
