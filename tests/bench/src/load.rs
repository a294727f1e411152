//! The initial load: an LA's generated records sent in batches, a few batches in flight, as an
//! LA's first upload to CP-IS would be.

use crate::{ADMIN, fail};
use cpis_e2e::nhs_number;
use cpis_host_kit::TestClient;
use futures::StreamExt;
use http::Method;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

pub const BATCH: usize = 500;
pub const IN_FLIGHT: usize = 4;

pub struct Load {
    pub records: usize,
    pub elapsed: Duration,
}

/// Sends `records` new plans (distinct children of the test range, plan types in turn) for a new
/// LA, and fails unless every batch answers `all_accepted`.
pub async fn initial_load(base_url: &str, records: usize) -> Load {
    let client = TestClient::new(base_url);
    let auth = format!("Bearer {ADMIN}");
    let issued = client
        .request(
            Method::POST,
            "/api/v1/admin/credentials",
            &[("authorization", &auth)],
            json!({"ods_code": "LOAD1", "name": "Load LA", "kind": "local_authority"}).to_string(),
        )
        .await
        .unwrap_or_else(|e| fail(&format!("issuing the load LA's credential: {e:#}")));
    let token: Value = serde_json::from_slice(&issued.body).unwrap_or(Value::Null);
    let bearer = format!(
        "Bearer {}",
        token["token"].as_str().unwrap_or_else(|| fail("no token"))
    );
    let start_date =
        (time::OffsetDateTime::now_utc().date() - time::Duration::days(30)).to_string();
    let plan_types = ["342191000000101", "764841000000100", "818901000000100"];
    let batches: Vec<String> = (0..records)
        .collect::<Vec<_>>()
        .chunks(BATCH)
        .map(|chunk| {
            let records: Vec<Value> = chunk
                .iter()
                .map(|&i| {
                    json!({
                        // Far from the children the endpoints above use.
                        "nhs_number": nhs_number(1_000 + i as u32),
                        "case_ref": format!("LOAD-{i}"),
                        "plan_type": plan_types[i % 3],
                        "start_date": start_date,
                        "local_authority": {"ods_code": "LOAD1", "name": "Load LA",
                            "office_hours_phone": "0113 222 4401", "emergency_duty_team_phone": "0113 535 0600"}
                    })
                })
                .collect();
            json!({ "records": records }).to_string()
        })
        .collect();
    let started = Instant::now();
    let outcomes: Vec<(usize, u16, Value)> = futures::stream::iter(batches.into_iter().enumerate())
        .map(|(n, body)| {
            let (client, bearer) = (client.clone(), bearer.clone());
            async move {
                let response = client
                    .request(
                        Method::POST,
                        "/api/v1/plans/batch",
                        &[("authorization", &bearer)],
                        body,
                    )
                    .await
                    .unwrap_or_else(|e| fail(&format!("batch {n}: {e:#}")));
                (
                    n,
                    response.status_code(),
                    serde_json::from_slice(&response.body).unwrap_or(Value::Null),
                )
            }
        })
        .buffer_unordered(IN_FLIGHT)
        .collect()
        .await;
    let elapsed = started.elapsed();
    for (n, status, body) in &outcomes {
        if *status != 200 || body["batch_result"] != "all_accepted" {
            fail(&format!(
                "initial load: batch {n} answered {status}: {body}"
            ));
        }
    }
    Load { records, elapsed }
}
