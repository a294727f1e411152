//! Driving endpoints with `wrk` and reading its report.

use crate::{ADMIN, Plan, fail};
use cpis_e2e::nhs_number;
use cpis_host_kit::TestClient;
use http::Method;
use serde_json::{Value, json};
use std::path::Path;
use std::process::Command;

/// What wrk measured for one endpoint, and the baseline it is compared with.
pub struct Row {
    pub name: String,
    pub requests_per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub errors: u64,
    /// (baseline row name, ratio) for a CP-IS endpoint.
    pub ratio: Option<(String, f64)>,
}

struct Endpoint {
    name: &'static str,
    method: &'static str,
    path: String,
    headers: Vec<(String, String)>,
    body: String,
    baseline: Option<&'static str>,
}

const EMPTY: &str = "baseline: empty handler";
const ONE_GET: &str = "baseline: one get";
const GET_SET: &str = "baseline: one get + one set";
/// Spin's own floors: the calls an endpoint makes, with trivial data (see the baseline component).
const ACCESS_CALLS: &str = "floor: an unscheduled access's calls";
const PAGE_CALLS: &str = "floor: an alert page's calls and bytes";

async fn call(client: &TestClient, method: Method, path: &str, token: &str, body: Value) -> Value {
    let auth = format!("Bearer {token}");
    let response = client
        .request(method, path, &[("authorization", &auth)], body.to_string())
        .await
        .unwrap_or_else(|e| fail(&format!("{path}: {e:#}")));
    if !response.status.is_success() {
        fail(&format!(
            "setting up: {path} answered {}: {}",
            response.status,
            response.text()
        ));
    }
    serde_json::from_slice(&response.body).unwrap_or(Value::Null)
}

/// Sets up an LA, a care setting and a child with a plan, then measures every endpoint.
pub async fn run_endpoints(base_url: &str, plan: &Plan, scratch: &Path) -> Vec<Row> {
    let client = TestClient::new(base_url);
    let credential = |ods: &'static str, kind: &'static str| {
        let client = client.clone();
        async move {
            let body = json!({"ods_code": ods, "name": format!("Bench {ods}"), "kind": kind});
            let reply = call(
                &client,
                Method::POST,
                "/api/v1/admin/credentials",
                ADMIN,
                body,
            )
            .await;
            reply["token"].as_str().expect("a token").to_string()
        }
    };
    let la = credential("LA1", "local_authority").await;
    let ed = credential("RR8", "care_setting").await;
    let child = nhs_number(1);
    let record = json!({
        "nhs_number": child, "case_ref": "BENCH-1", "plan_type": "342191000000101",
        "start_date": "2026-01-10",
        "local_authority": {"ods_code": "LA1", "name": "Bench LA1",
            "office_hours_phone": "0113 222 4401", "emergency_duty_team_phone": "0113 535 0600"}
    });
    call(&client, Method::POST, "/api/v1/plans", &la, record).await;
    // The baseline's key exists, as a held child's keys do.
    call(&client, Method::GET, "/baseline/get-set", "", Value::Null).await;

    let bearer = |token: &str| vec![("Authorization".to_string(), format!("Bearer {token}"))];
    let mut fhir_headers = bearer(&ed);
    fhir_headers.extend([
        ("NHSD-End-User-Id".to_string(), "555021935107".to_string()),
        (
            "NHSD-End-User-Name".to_string(),
            "Dr Asha Patel".to_string(),
        ),
        (
            "NHSD-End-User-Role".to_string(),
            "Emergency Department Doctor".to_string(),
        ),
    ]);
    let access_body = json!({
        "nhs_number": child,
        "user": {"id": "555021935107", "name": "Dr Asha Patel", "role": "Emergency Department Doctor"},
        "unscheduled": true
    })
    .to_string();
    let get = |name, path: String, headers, baseline| Endpoint {
        name,
        method: "GET",
        path,
        headers,
        body: String::new(),
        baseline,
    };
    let endpoints = vec![
        get(EMPTY, "/baseline/empty".into(), vec![], None),
        get(ONE_GET, "/baseline/get".into(), vec![], None),
        get(GET_SET, "/baseline/get-set".into(), vec![], None),
        get(
            ACCESS_CALLS,
            "/baseline/access-calls".into(),
            vec![],
            Some(GET_SET),
        ),
        get(
            PAGE_CALLS,
            "/baseline/page-calls".into(),
            vec![],
            Some(ONE_GET),
        ),
        get(
            "GET /fhir/r4/metadata",
            "/fhir/r4/metadata".into(),
            vec![],
            Some(EMPTY),
        ),
        get(
            "GET /api/v1/flag/{nhs}, child held",
            format!("/api/v1/flag/{child}"),
            bearer(&ed),
            Some(ONE_GET),
        ),
        get(
            "GET /api/v1/flag/{nhs}, unknown child",
            format!("/api/v1/flag/{}", nhs_number(2)),
            bearer(&ed),
            Some(ONE_GET),
        ),
        Endpoint {
            name: "POST /api/v1/access, unscheduled",
            method: "POST",
            path: "/api/v1/access".into(),
            headers: bearer(&ed),
            body: access_body,
            baseline: Some(GET_SET),
        },
        get(
            "GET /fhir/r4/CareTeam (unscheduled access)",
            format!(
                "/fhir/r4/CareTeam?patient:identifier=https://fhir.nhs.uk/Id/nhs-number%7C{child}"
            ),
            fhir_headers,
            Some(GET_SET),
        ),
        // After the accesses above, the LA's feed holds far more than 100 alerts.
        get(
            "GET /api/v1/alerts?limit=100",
            "/api/v1/alerts?after=0&limit=100".into(),
            bearer(&la),
            Some(ONE_GET),
        ),
    ];
    let mut rows: Vec<Row> = Vec::new();
    for (i, endpoint) in endpoints.iter().enumerate() {
        let script = scratch.join(format!("e{i}.lua"));
        run_wrk(base_url, endpoint, plan, WARM_UP, &script); // its errors fail the run too
        let mut row = run_wrk(base_url, endpoint, plan, plan.duration, &script);
        if let Some(baseline) = endpoint.baseline {
            let base = rows
                .iter()
                .find(|r| r.name == baseline)
                .expect("baselines run first");
            row.ratio = Some((
                baseline.to_string(),
                row.requests_per_second / base.requests_per_second,
            ));
        }
        rows.push(row);
    }
    rows
}

fn lua_string(text: &str) -> String {
    format!("{text:?}") // a Rust debug string is a valid Lua string for this ASCII text
}

/// How long each endpoint is driven before it is measured: Spin makes and warms up its instances
/// in the first second (the first endpoint measured on a fresh Spin lost a third of its rate).
const WARM_UP: std::time::Duration = std::time::Duration::from_secs(1);

fn run_wrk(
    base_url: &str,
    endpoint: &Endpoint,
    plan: &Plan,
    duration: std::time::Duration,
    script: &Path,
) -> Row {
    let mut lua = format!("wrk.method = {}\n", lua_string(endpoint.method));
    if !endpoint.body.is_empty() {
        lua += &format!("wrk.body = {}\n", lua_string(&endpoint.body));
    }
    for (name, value) in &endpoint.headers {
        lua += &format!(
            "wrk.headers[{}] = {}\n",
            lua_string(name),
            lua_string(value)
        );
    }
    std::fs::write(script, lua).expect("the wrk script is written");
    let output = Command::new("wrk")
        .arg(format!("-t{}", plan.threads))
        .arg(format!("-c{}", plan.connections))
        .arg(format!("-d{}s", duration.as_secs()))
        .arg("--latency")
        // wrk's default of 2 s counts a slow answer on a loaded machine as an error; speed is
        // measured here, never pass/fail, so only a request with no answer at all errs.
        .arg("--timeout")
        .arg(format!("{}s", REQUEST_TIMEOUT.as_secs()))
        .arg("-s")
        .arg(script)
        .arg(format!("{base_url}{}", endpoint.path))
        .output()
        .unwrap_or_else(|e| fail(&format!("running wrk: {e}")));
    let report = String::from_utf8_lossy(&output.stdout).into_owned();
    if !output.status.success() {
        fail(&format!(
            "wrk failed for {}: {report}{}",
            endpoint.name,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let row = parse_report(endpoint.name, &report);
    if row.errors > 0 {
        fail(&format!(
            "{}: {} requests erred; wrk's report:\n{report}",
            row.name, row.errors
        ));
    }
    row
}

/// How long wrk waits for one answer before counting the request as erred.
const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Reads wrk's `--latency` report.
fn parse_report(name: &str, report: &str) -> Row {
    let field = |label: &str| -> Option<&str> {
        report
            .lines()
            .find_map(|line| line.trim().strip_prefix(label).map(str::trim))
    };
    let requests_per_second = field("Requests/sec:")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            fail(&format!(
                "{name}: no Requests/sec in wrk's report:\n{report}"
            ))
        });
    let latency = |percentile: &str| {
        field(percentile).map(parse_duration_ms).unwrap_or_else(|| {
            fail(&format!(
                "{name}: no {percentile} latency in wrk's report:\n{report}"
            ))
        })
    };
    let non_2xx: u64 = field("Non-2xx or 3xx responses:")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let socket_errors: u64 = field("Socket errors:")
        .map(|v| {
            v.split(',')
                .filter_map(|part| part.split_whitespace().last()?.parse::<u64>().ok())
                .sum()
        })
        .unwrap_or(0);
    Row {
        name: name.to_string(),
        requests_per_second,
        p50_ms: latency("50%"),
        p99_ms: latency("99%"),
        errors: non_2xx + socket_errors,
        ratio: None,
    }
}

/// `1.23ms`, `850.00us`, `1.02s` → milliseconds.
fn parse_duration_ms(text: &str) -> f64 {
    let split = text
        .find(|c: char| c.is_ascii_alphabetic())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number.parse().unwrap_or(f64::NAN);
    match unit {
        "us" => value / 1000.0,
        "ms" => value,
        "s" => value * 1000.0,
        "m" => value * 60_000.0,
        _ => f64::NAN,
    }
}

pub fn print_table(rows: &[Row]) {
    println!("| endpoint | req/s | p50 ms | p99 ms | errors | ratio |");
    println!("|---|---|---|---|---|---|");
    for row in rows {
        let ratio = row
            .ratio
            .as_ref()
            .map(|(baseline, r)| format!("{r:.2} of {}", baseline.trim_start_matches("baseline: ")))
            .unwrap_or_default();
        println!(
            "| {} | {:.0} | {:.1} | {:.1} | {} | {} |",
            row.name, row.requests_per_second, row.p50_ms, row.p99_ms, row.errors, ratio
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_wrk_report() {
        let report = "Running 2s test @ http://127.0.0.1:3000/x\n  2 threads and 32 connections\n  Latency Distribution\n     50%  850.00us\n     75%    1.10ms\n     90%    2.00ms\n     99%   43.21ms\n  33000 requests in 2.00s, 5.00MB read\n  Socket errors: connect 0, read 2, write 0, timeout 1\n  Non-2xx or 3xx responses: 4\nRequests/sec:  16500.50\nTransfer/sec:      2.50MB\n";
        let row = parse_report("x", report);
        assert_eq!(row.requests_per_second, 16500.5);
        assert_eq!(row.p50_ms, 0.85);
        assert_eq!(row.p99_ms, 43.21);
        assert_eq!(row.errors, 7);
        assert_eq!(parse_duration_ms("1.02s"), 1020.0);
    }
}
