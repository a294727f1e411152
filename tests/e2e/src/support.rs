//! Starting the app and talking to it as an integrator would.

use cpis_host_kit::{HostOptions, TestApp};
use http::Method;
use serde_json::{Value, json};
use std::path::PathBuf;

pub const ADMIN: &str = "e2e-admin-secret";
pub const CPP: &str = "342191000000101";
pub const LAC: &str = "764841000000100";

/// Both ways Spin may run a WASIp3 component.
pub const MODES: [bool; 2] = [false, true];

pub struct Cpis {
    pub app: TestApp,
}

/// A response: status and JSON body (`Null` when the body is not JSON).
pub struct Reply {
    pub status: u16,
    pub body: Value,
}

impl Reply {
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
    pub fn field(&self) -> &str {
        self.body["error"]["field"].as_str().unwrap_or("")
    }
}

fn manifest() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    for component in [
        "cpis_submit",
        "cpis_query",
        "cpis_access_notify",
        "cpis_alert",
    ] {
        let wasm = root.join(format!("target/wasm32-wasip2/release/{component}.wasm"));
        assert!(
            wasm.exists(),
            "{} is missing: run scripts/build-components.sh first",
            wasm.display()
        );
    }
    root.join("spin.toml")
}

impl Cpis {
    /// Starts the app; `reuse` chooses instance reuse. The alert feed's gap grace is 1 s so that
    /// fault tests can watch a feed pass over an abandoned position.
    pub async fn start(reuse: bool) -> Self {
        let mut options = HostOptions::new(manifest())
            .variable("admin_token", ADMIN)
            .variable("alert_gap_grace_seconds", "1")
            .reuse_instances(reuse);
        options.read_env = false;
        let app = TestApp::start(options).await.expect("the app starts");
        Self { app }
    }

    /// Where the app listens: `http://127.0.0.1:PORT`, no trailing slash.
    pub fn base_url(&self) -> String {
        self.app.base_url.clone()
    }

    /// Registers the system a care setting's credential belongs to and its responsible person.
    pub async fn register_system(&self, token: &str, system: &str, person: &str, role: &str) {
        let id = token.split('_').nth(1).expect("a cpis_{id}_{secret} token");
        let body = json!({"system": system,
                          "responsible_person": {"id": "R-1", "name": person, "role": role}});
        let reply = self
            .send(
                Method::PUT,
                &format!("/api/v1/admin/credentials/{id}/system"),
                Some(ADMIN),
                &[],
                &body.to_string(),
            )
            .await;
        assert_eq!(reply.status, 200, "{}", reply.body);
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Reply {
        let auth = token.map(|t| format!("Bearer {t}"));
        let mut all: Vec<(&str, &str)> = headers.to_vec();
        if let Some(auth) = &auth {
            all.push(("authorization", auth));
        }
        let response = self
            .app
            .client
            .request(method, path, &all, body.to_string())
            .await
            .expect("the request is answered");
        Reply {
            status: response.status_code(),
            body: serde_json::from_slice(&response.body).unwrap_or(Value::Null),
        }
    }

    pub async fn get(&self, path: &str, token: &str) -> Reply {
        self.send(Method::GET, path, Some(token), &[], "").await
    }

    pub async fn post(&self, path: &str, token: &str, body: &Value) -> Reply {
        self.send(Method::POST, path, Some(token), &[], &body.to_string())
            .await
    }

    pub async fn delete(&self, path: &str, token: &str) -> Reply {
        self.send(Method::DELETE, path, Some(token), &[], "").await
    }

    /// Registers an organisation and returns its credential's token.
    pub async fn credential(&self, ods: &str, kind: &str) -> String {
        let reply = self
            .post(
                "/api/v1/admin/credentials",
                ADMIN,
                &json!({"ods_code": ods, "name": format!("Org {ods}"), "kind": kind}),
            )
            .await;
        assert_eq!(reply.status, 201, "{}", reply.body);
        reply.body["token"].as_str().unwrap().to_string()
    }

    pub async fn la(&self, ods: &str) -> String {
        self.credential(ods, "local_authority").await
    }

    pub async fn setting(&self, ods: &str) -> String {
        self.credential(ods, "care_setting").await
    }

    /// LA1 (CPP, case `L-1`) and LA2 (LAC, case `B-1`) hold plans for the `n`-th test child:
    /// returns both LAs' tokens and the child's NHS number.
    pub async fn child_of_two_las(&self, n: u32) -> (String, String, String) {
        let (la1, la2) = (self.la("LA1").await, self.la("LA2").await);
        let child = nhs_number(n);
        for (token, body) in [
            (&la1, record("LA1", Some(&child), "L-1", CPP)),
            (&la2, record("LA2", Some(&child), "B-1", LAC)),
        ] {
            let reply = self.post("/api/v1/plans", token, &body).await;
            assert_eq!(reply.status, 201, "{}", reply.body);
        }
        (la1, la2, child)
    }

    /// The LA's feed from the start.
    pub async fn feed(&self, la_token: &str) -> Vec<Value> {
        let reply = self.get("/api/v1/alerts?after=0&limit=500", la_token).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        reply.body["alerts"].as_array().unwrap().clone()
    }

    /// An NHS user opens the child's information.
    pub async fn access(&self, setting_token: &str, nhs: &str, unscheduled: bool) -> Reply {
        let body = json!({
            "nhs_number": nhs,
            "user": {"id": "555021935107", "name": "Dr Asha Patel", "role": "Emergency Department Doctor"},
            "unscheduled": unscheduled
        });
        self.post("/api/v1/access", setting_token, &body).await
    }

    pub async fn flag(&self, setting_token: &str, nhs: &str) -> bool {
        let reply = self
            .get(&format!("/api/v1/flag/{nhs}"), setting_token)
            .await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        reply.body["flag"].as_bool().unwrap()
    }
}

/// A plan record as an LA sends it.
pub fn record(la: &str, nhs: Option<&str>, case_ref: &str, plan_type: &str) -> Value {
    json!({
        "nhs_number": nhs,
        "case_ref": case_ref,
        "plan_type": plan_type,
        "start_date": days_from_today(-300),
        "local_authority": {
            "ods_code": la,
            "name": format!("Council {la}"),
            "office_hours_phone": "0113 222 4401",
            "emergency_duty_team_phone": "0113 535 0600"
        }
    })
}

/// A date relative to today (UTC), as the API writes dates.
pub fn days_from_today(days: i64) -> String {
    (time::OffsetDateTime::now_utc().date() + time::Duration::days(days)).to_string()
}

pub use crate::nhs_number;
