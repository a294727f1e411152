//! Building Wasm components for tests: the `kv-probe` fixture of this crate's own tests,
//! or any standalone component package.
//!
//! Tests call these before starting an app, so `cargo test` needs no separate build step.
//! A package whose `.wasm` is newer than its sources is not rebuilt (no cargo run at
//! all), and one process builds each package at most once.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};
use std::time::SystemTime;

use anyhow::{Context, Result, bail};

/// The Wasm target the components are built for.
pub const WASM_TARGET: &str = "wasm32-wasip2";

/// The project's `spin.toml`, once the four CP-IS components it names are built
/// (`scripts/build-components.sh`); panics naming the missing one otherwise.
pub fn project_manifest() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    for component in [
        "cpis_submit",
        "cpis_query",
        "cpis_access_notify",
        "cpis_alert",
    ] {
        let wasm = root.join(format!("target/{WASM_TARGET}/release/{component}.wasm"));
        assert!(
            wasm.exists(),
            "{} is missing: run scripts/build-components.sh first",
            wasm.display()
        );
    }
    root.join("spin.toml")
}

/// The `kv-probe` fixture (`tests/fixtures/kv-probe`), built if needed; returns its
/// `.wasm` path.
pub fn kv_probe() -> Result<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/kv-probe");
    build_component_package(&dir, "kv_probe")
}

/// Builds the standalone Cargo package in `package_dir` for `wasm32-wasip2` in release
/// mode, with its own target directory (`<package_dir>/target`), unless its
/// `<lib_name>.wasm` is newer than `Cargo.toml`, `Cargo.lock` and every file under `src/`.
///
/// Runs `$CARGO` (the cargo running the tests) or `cargo`; set `CPIS_WASM_TOOLCHAIN` to
/// build with another rustup toolchain (the offline one of `scripts/setup-wasm-toolchain.sh`).
pub fn build_component_package(package_dir: &Path, lib_name: &str) -> Result<PathBuf> {
    static BUILT: OnceLock<Mutex<HashMap<PathBuf, PathBuf>>> = OnceLock::new();
    let package_dir = package_dir
        .canonicalize()
        .with_context(|| format!("component package {} not found", package_dir.display()))?;
    // Held across the build: tests running in parallel wait for one build.
    let mut built = BUILT
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if let Some(wasm) = built.get(&package_dir) {
        return Ok(wasm.clone());
    }

    let target_dir = package_dir.join("target");
    let wasm = target_dir
        .join(WASM_TARGET)
        .join("release")
        .join(format!("{lib_name}.wasm"));
    if !is_up_to_date(&package_dir, &wasm)? {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut command = Command::new(cargo);
        command
            .arg("build")
            .arg("--release")
            .arg("--target")
            .arg(WASM_TARGET)
            .arg("--manifest-path")
            .arg(package_dir.join("Cargo.toml"))
            .arg("--target-dir")
            .arg(&target_dir)
            // The test build's own settings must not leak into the Wasm build.
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .env_remove("CARGO_BUILD_TARGET");
        if let Some(toolchain) = std::env::var_os("CPIS_WASM_TOOLCHAIN") {
            command.env("RUSTUP_TOOLCHAIN", toolchain);
        }
        let output = command
            .output()
            .with_context(|| format!("running cargo to build {}", package_dir.display()))?;
        if !output.status.success() {
            bail!(
                "building {} for {WASM_TARGET} failed ({}):\n{}",
                package_dir.display(),
                output.status,
                String::from_utf8_lossy(&output.stderr)
            );
        }
        if !wasm.exists() {
            bail!(
                "cargo built {} but {} is missing",
                package_dir.display(),
                wasm.display()
            );
        }
    }
    built.insert(package_dir, wasm.clone());
    Ok(wasm)
}

/// True if `wasm` exists and is newer than every source file of the package.
fn is_up_to_date(package_dir: &Path, wasm: &Path) -> Result<bool> {
    let Ok(built) = std::fs::metadata(wasm).and_then(|m| m.modified()) else {
        return Ok(false);
    };
    let mut newest = SystemTime::UNIX_EPOCH;
    for file in ["Cargo.toml", "Cargo.lock"] {
        if let Ok(t) = std::fs::metadata(package_dir.join(file)).and_then(|m| m.modified()) {
            newest = newest.max(t);
        }
    }
    newest = newest.max(newest_under(&package_dir.join("src"))?);
    Ok(built > newest)
}

fn newest_under(dir: &Path) -> Result<SystemTime> {
    let mut newest = SystemTime::UNIX_EPOCH;
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let entry = entry?;
        let meta = entry.metadata()?;
        let t = if meta.is_dir() {
            newest_under(&entry.path())?
        } else {
            meta.modified()?
        };
        newest = newest.max(t);
    }
    Ok(newest)
}
