//! The benchmark. Starts the real Spin CLI (`CPIS_SPIN`, else `spin` on `PATH`) with the four
//! CP-IS components and the baseline component (`tests/fixtures/baseline`) in one app and one
//! store, first on Spin's SQLite store, then on Redis; drives each endpoint with `wrk` at a set
//! concurrency; and prints one table per store: req/s, p50, p99, errors, and each endpoint's ratio
//! to its baseline (what Spin itself does on the same machine, in the same run). Then the initial
//! load: generated records in batches of 500, 4 batches in flight, every record accepted.
//!
//! ```sh
//! scripts/build-components.sh
//! CPIS_SPIN=../shared/tools/spin cargo run -p cpis-bench            # full run
//! CPIS_SPIN=../shared/tools/spin cargo run -p cpis-bench -- --quick # a short check (CI)
//! CPIS_SPIN=../shared/tools/spin cargo run -p cpis-bench -- --quick --records 20000
//! ```
//!
//! Any request that errs (a non-2xx answer, a socket error, a rejected record) fails the run.
//! Speed is never pass/fail: the figures are for reading (docs/performance.md).

mod load;
mod wrk;

use cpis_spin_launcher::{RedisServer, SpinApp, SpinOptions, Store};
use std::path::{Path, PathBuf};
use std::time::Duration;

const ADMIN: &str = "bench-admin-secret";

/// What one run does.
pub struct Plan {
    /// How long wrk drives each endpoint.
    pub duration: Duration,
    pub connections: u32,
    pub threads: u32,
    /// Records in the initial load.
    pub records: usize,
}

/// The value given after `name` on the command line.
fn option(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .map(|i| args.get(i + 1).cloned().unwrap_or_default())
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let mut plan = if quick {
        Plan {
            duration: Duration::from_secs(2),
            connections: 32,
            threads: 2,
            records: 2_000,
        }
    } else {
        Plan {
            duration: Duration::from_secs(10),
            connections: 32,
            threads: 2,
            records: 150_000,
        }
    };
    if let Some(records) = option("--records") {
        plan.records = records
            .parse()
            .unwrap_or_else(|_| fail("--records takes a number of records"));
    }
    let spin = cpis_spin_launcher::spin_binary()
        .unwrap_or_else(|| fail("no Spin CLI: set CPIS_SPIN or put `spin` on PATH"));
    if cpis_spin_launcher::find_on_path("wrk").is_none() {
        fail(
            "wrk is not on PATH: install Debian's wrk package (scripts/install-test-deps.sh does)",
        );
    }
    let scratch = tempfile::tempdir().expect("a temporary directory");
    let manifest = bench_manifest(scratch.path());
    println!(
        "CP-IS benchmark: wrk -t{} -c{} -d{}s per endpoint; initial load of {} records; {} cores",
        plan.threads,
        plan.connections,
        plan.duration.as_secs(),
        plan.records,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    for (name, redis) in [
        ("SQLite (Spin's default: rollback journal)", false),
        ("SQLite in WAL mode (docs/operations.md)", false),
        ("Redis", true),
    ] {
        let server = redis
            .then(|| RedisServer::start(false).unwrap_or_else(|e| fail(&format!("Redis: {e}"))));
        let app = SpinApp::start(SpinOptions {
            spin: spin.clone(),
            manifest: manifest.clone(),
            store: match &server {
                Some(s) => Store::Redis(s.url()),
                None if name.contains("WAL") => Store::SqliteWal,
                None => Store::Sqlite,
            },
            variables: vec![("admin_token".into(), ADMIN.into())],
            extra_args: vec![],
        })
        .unwrap_or_else(|e| fail(&format!("Spin: {e}")));
        println!("\n## Spin + {name}\n");
        let rows = runtime.block_on(wrk::run_endpoints(&app.base_url(), &plan, scratch.path()));
        wrk::print_table(&rows);
        let load = runtime.block_on(load::initial_load(&app.base_url(), plan.records));
        println!(
            "\ninitial load: {} records in batches of {}, {} in flight: {:.1} s, {:.0} records/s, all accepted",
            load.records,
            load::BATCH,
            load::IN_FLIGHT,
            load.elapsed.as_secs_f64(),
            load.records as f64 / load.elapsed.as_secs_f64()
        );
        let log = app.log();
        if log.contains("panicked at") || log.contains("wasm trap") {
            fail(&format!("a component trapped:\n{log}"));
        }
    }
}

/// The project's `spin.toml` with absolute component paths, plus the baseline component under
/// `/baseline/...` with the same store: one app, one store, as the issue's baseline asks.
fn bench_manifest(dir: &Path) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("root");
    let project =
        std::fs::read_to_string(cpis_host_kit::fixtures::project_manifest()).expect("spin.toml");
    let baseline = cpis_host_kit::fixtures::build_component_package(
        &root.join("tests/fixtures/baseline"),
        "baseline",
    )
    .unwrap_or_else(|e| fail(&format!("building the baseline component: {e:#}")));
    let mut manifest = project.replace(
        "source = \"target/",
        &format!("source = \"{}/target/", root.display()),
    );
    manifest.push_str(&format!(
        "\n[[trigger.http]]\nroute = \"/baseline/...\"\ncomponent = \"baseline\"\n\n\
         [component.baseline]\nsource = \"{}\"\nkey_value_stores = [\"default\"]\n",
        baseline.display()
    ));
    let path = dir.join("spin.toml");
    std::fs::write(&path, manifest).expect("the bench manifest is written");
    path
}

/// Stops the run with a message: the benchmark fails loudly.
pub fn fail(message: &str) -> ! {
    eprintln!("cpis-bench: FAILED: {message}");
    std::process::exit(1)
}
