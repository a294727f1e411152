//! Shared setup for the host-kit tests: the `kv-probe` fixture mounted as several
//! components in a manifest written to a temporary directory.

#![allow(dead_code)] // each test binary uses a different part of this

use std::path::{Path, PathBuf};

use cpis_host_kit::{HostOptions, TestApp, fixtures};
use tempfile::TempDir;

/// The probe app: `probe-a` on `/a/...`, `probe-b` on `/b/...`, the longer `/a/b/...` and
/// the exact `/a/exact`; `probe-denied` (no store access) on `/denied/...`. The fixture
/// chooses its operation by `spin-path-info`.
pub const PROBE_APP: &str = r#"
spin_manifest_version = 2

[application]
name = "probe"
version = "0.1.0"

[variables]
greeting = { default = "hello" }
secret_token = { required = true, secret = true }
days = { default = "28" }
env_only = { default = "from-default" }

[[trigger.http]]
route = "/a/..."
component = "probe-a"

[[trigger.http]]
route = "/b/..."
component = "probe-b"

[[trigger.http]]
route = "/a/b/..."
component = "probe-b"

[[trigger.http]]
route = "/a/exact"
component = "probe-b"

[[trigger.http]]
route = "/denied/..."
component = "probe-denied"

[component.probe-a]
source = "WASM"
key_value_stores = ["default"]
[component.probe-a.variables]
who = "a"
greeting = "{{ greeting }}, {{ secret_token }}"
days = "{{days}}"
env_only = "{{ env_only }}"

[component.probe-b]
source = "WASM"
key_value_stores = ["default"]
[component.probe-b.variables]
who = "b"

[component.probe-denied]
source = "WASM"
[component.probe-denied.variables]
who = "denied"
"#;

/// A manifest in its own directory; the directory lives as long as this value.
pub struct Manifest {
    pub dir: TempDir,
    pub path: PathBuf,
}

/// The fixture, built if needed.
pub fn probe_wasm() -> PathBuf {
    fixtures::kv_probe().expect("building the kv-probe fixture")
}

/// Writes `text` as `spin.toml`, with every `"WASM"` source replaced by the fixture's
/// absolute path.
pub fn write_manifest(text: &str) -> Manifest {
    let wasm = probe_wasm();
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("spin.toml");
    let text = text.replace("\"WASM\"", &toml_string(&wasm));
    std::fs::write(&path, text).expect("writing spin.toml");
    Manifest { dir, path }
}

fn toml_string(path: &Path) -> String {
    format!("{:?}", path.display().to_string())
}

/// Options for the probe app with the required variable set and the environment ignored.
pub fn probe_options(manifest: &Manifest, reuse: bool) -> HostOptions {
    let mut opts = HostOptions::new(&manifest.path).reuse_instances(reuse);
    opts.read_env = false;
    opts.variables
        .insert("secret_token".to_string(), "s3cret".to_string());
    opts
}

/// Starts the probe app.
pub async fn start_probe(reuse: bool) -> (TestApp, Manifest) {
    let manifest = write_manifest(PROBE_APP);
    let app = TestApp::start(probe_options(&manifest, reuse))
        .await
        .expect("starting the probe app");
    (app, manifest)
}

/// One line `name=value` of the fixture's request description.
pub fn field(description: &str, name: &str) -> String {
    description
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} in {description}"))
        .to_string()
}
