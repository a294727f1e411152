//! Prints how many requests per second the four built components serve on the test host, per
//! endpoint, with latency percentiles. The store is in memory, so this measures the components
//! and the host, not a disk: on Spin's SQLite store every write call is a synced transaction
//! (see the README's call counts for what each endpoint writes).
//!
//! `scripts/build-components.sh && cargo run --release -p cpis-e2e --example throughput`

use cpis_e2e::nhs_number;
use cpis_host_kit::{HostOptions, TestApp};
use futures::StreamExt;
use http::Method;
use serde_json::json;
use std::time::{Duration, Instant};

const CONCURRENCY: usize = 32;

async fn bearer(app: &TestApp, token: &str, method: Method, path: String, body: String) -> u16 {
    let auth = format!("Bearer {token}");
    app.client
        .request(method, &path, &[("authorization", &auth)], body)
        .await
        .expect("answered")
        .status_code()
}

async fn measure<F, Fut>(name: &str, requests: usize, make: F)
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = u16>,
{
    let started = Instant::now();
    let mut latencies: Vec<Duration> = futures::stream::iter(0..requests)
        .map(|i| {
            let request = make(i);
            async move {
                let at = Instant::now();
                let status = request.await;
                assert!(status < 300, "{name}: status {status}");
                at.elapsed()
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let elapsed = started.elapsed();
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize];
    println!(
        "{name:<44} {requests:>6} requests  {:>8.0} req/s  p50 {:>7.2} ms  p99 {:>7.2} ms",
        requests as f64 / elapsed.as_secs_f64(),
        at(0.50).as_secs_f64() * 1e3,
        at(0.99).as_secs_f64() * 1e3
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let manifest = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../spin.toml");
    for reuse in [false, true] {
        let mut options = HostOptions::new(&manifest)
            .variable("admin_token", "bench")
            .reuse_instances(reuse);
        options.read_env = false;
        let app = TestApp::start(options).await.expect("the app starts");
        println!(
            "\ninstances: {}",
            if reuse {
                "reused, as Spin does"
            } else {
                "fresh per request"
            }
        );

        let issue = |ods: &str, kind: &str| {
            let body =
                json!({"ods_code": ods, "name": format!("Org {ods}"), "kind": kind}).to_string();
            let app = &app;
            async move {
                let reply = app
                    .client
                    .request(
                        Method::POST,
                        "/api/v1/admin/credentials",
                        &[("authorization", "Bearer bench")],
                        body,
                    )
                    .await
                    .unwrap();
                serde_json::from_slice::<serde_json::Value>(&reply.body).unwrap()["token"]
                    .as_str()
                    .unwrap()
                    .to_string()
            }
        };
        let la = issue("LA1", "local_authority").await;
        let ed = issue("RR8", "care_setting").await;
        let record = |i: usize| {
            json!({
                "nhs_number": nhs_number(i as u32), "case_ref": format!("C{i}"), "plan_type": "342191000000101",
                "start_date": "2026-01-10",
                "local_authority": {"ods_code": "LA1", "name": "Leeds", "office_hours_phone": "0113 222 4401",
                                    "emergency_duty_team_phone": "0113 535 0600"}
            })
            .to_string()
        };
        let children = 500;
        measure("POST /api/v1/plans (new plans)", children, |i| {
            bearer(&app, &la, Method::POST, "/api/v1/plans".into(), record(i))
        })
        .await;
        measure("POST /api/v1/plans (unchanged re-send)", children, |i| {
            bearer(&app, &la, Method::POST, "/api/v1/plans".into(), record(i))
        })
        .await;
        measure("GET /api/v1/flag (child on CP-IS)", 2000, |i| {
            bearer(
                &app,
                &ed,
                Method::GET,
                format!("/api/v1/flag/{}", nhs_number((i % children) as u32)),
                String::new(),
            )
        })
        .await;
        measure("GET /api/v1/flag (child not on CP-IS)", 2000, |i| {
            bearer(
                &app,
                &ed,
                Method::GET,
                format!("/api/v1/flag/{}", nhs_number((children + i) as u32)),
                String::new(),
            )
        })
        .await;
        let access = |i: usize| {
            json!({"nhs_number": nhs_number((i % children) as u32), "user": {"id": "U1", "name": "Dr A", "role": "ED Doctor"}}).to_string()
        };
        measure("POST /api/v1/access (unscheduled)", 2000, |i| {
            bearer(&app, &ed, Method::POST, "/api/v1/access".into(), access(i))
        })
        .await;
        measure("GET /api/v1/alerts (100 per page)", 500, |_| {
            bearer(
                &app,
                &la,
                Method::GET,
                "/api/v1/alerts?after=0".into(),
                String::new(),
            )
        })
        .await;
        assert!(app.traps().is_empty(), "{:?}", app.traps());
    }
}
