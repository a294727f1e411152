//! Starting the app on each target and talking to it as an integrator would.

use cpis_host_kit::{HostOptions, TestApp, TestClient};
use cpis_spin_launcher::{RedisServer, SpinApp, SpinOptions, Store};
use http::Method;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

pub const ADMIN: &str = "e2e-admin-secret";
pub const CPP: &str = "342191000000101";
pub const LAC: &str = "764841000000100";

/// Where the app runs: the test host in both of the ways Spin may run a WASIp3 component, and
/// the real Spin CLI with its default SQLite store and with Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    TestHost { reuse: bool },
    SpinSqlite,
    SpinRedis,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::TestHost { reuse: false } => write!(f, "test host (fresh instances)"),
            Target::TestHost { reuse: true } => write!(f, "test host (instance reuse)"),
            Target::SpinSqlite => write!(f, "Spin + SQLite"),
            Target::SpinRedis => write!(f, "Spin + Redis"),
        }
    }
}

/// Both ways the test host runs a component, for tests that need its fault injection or trap
/// records.
pub const MODES: [bool; 2] = [false, true];

/// Every target: the test host's two modes, and real Spin (SQLite, Redis) when a Spin CLI is
/// found (`CPIS_SPIN`, else `spin` on `PATH`). `scripts/test.sh` says so when it is not.
pub fn targets() -> Vec<Target> {
    let mut all = vec![
        Target::TestHost { reuse: false },
        Target::TestHost { reuse: true },
    ];
    if cpis_spin_launcher::spin_binary().is_some() {
        all.extend([Target::SpinSqlite, Target::SpinRedis]);
    }
    all
}

/// The app under test and how to reach it.
pub struct Cpis {
    pub target: Target,
    client: TestClient,
    backend: Backend,
}

enum Backend {
    Host(TestApp),
    Spin {
        app: SpinApp,
        // Declared after `app`, so Spin stops before its store does.
        redis: Option<RedisServer>,
    },
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
    cpis_host_kit::fixtures::project_manifest()
}

/// The test host's options: the project's manifest, [`VARIABLES`] and nothing from the
/// environment.
fn host_options(reuse: bool) -> HostOptions {
    let mut options = HostOptions::new(manifest()).reuse_instances(reuse);
    for (name, value) in VARIABLES {
        options = options.variable(name, value);
    }
    options.read_env = false;
    options
}

/// The variables every target gets. The alert feed's gap grace is 1 s so that fault tests can
/// watch a feed pass over an abandoned position.
const VARIABLES: [(&str, &str); 2] = [("admin_token", ADMIN), ("alert_gap_grace_seconds", "1")];

impl Cpis {
    /// Starts the app on `target`; a target that cannot start fails the test with its log.
    pub async fn start(target: Target) -> Self {
        match target {
            Target::TestHost { reuse } => Self::on_test_host(reuse).await,
            Target::SpinSqlite | Target::SpinRedis => {
                let redis = target == Target::SpinRedis;
                tokio::task::spawn_blocking(move || Self::on_spin(redis, false))
                    .await
                    .expect("starting Spin does not panic")
            }
        }
    }

    /// [`Cpis::start`], with Redis (on Spin + Redis) appending every write to disk, so that
    /// [`Cpis::stop_store`] and [`Cpis::start_store`] keep the data.
    pub async fn start_with_persistent_store(target: Target) -> Self {
        match target {
            Target::SpinRedis => tokio::task::spawn_blocking(|| Self::on_spin(true, true))
                .await
                .expect("starting Spin does not panic"),
            _ => Self::start(target).await,
        }
    }

    /// Whether [`Cpis::stop_store`] can stop this target's store: not Spin's SQLite, a file
    /// inside Spin's own process.
    pub fn store_can_stop(&self) -> bool {
        self.target != Target::SpinSqlite
    }

    /// Takes the store away: on the test host every key-value call hangs (as Spin's Redis store
    /// does while it reconnects); on Spin + Redis, `redis-server` stops.
    pub fn stop_store(&mut self) {
        match &mut self.backend {
            Backend::Host(app) => app.store.hang_all_calls(),
            Backend::Spin {
                redis: Some(redis), ..
            } => redis.stop(),
            Backend::Spin { redis: None, .. } => {
                panic!("{}: Spin's SQLite store cannot be stopped", self.target)
            }
        }
    }

    /// Brings the store back ([`Cpis::stop_store`]).
    pub async fn start_store(&mut self) {
        match &mut self.backend {
            Backend::Host(app) => app.store.clear_faults(),
            Backend::Spin {
                redis: Some(redis), ..
            } => tokio::task::block_in_place(|| {
                redis
                    .start_again()
                    .unwrap_or_else(|e| panic!("Redis did not start again: {e}"))
            }),
            Backend::Spin { redis: None, .. } => {
                panic!("{}: Spin's SQLite store cannot be stopped", self.target)
            }
        }
    }

    /// Starts the app on the test host; `reuse` chooses instance reuse.
    pub async fn on_test_host(reuse: bool) -> Self {
        let app = TestApp::start(host_options(reuse))
            .await
            .expect("the app starts");
        Self {
            target: Target::TestHost { reuse },
            client: app.client.clone(),
            backend: Backend::Host(app),
        }
    }

    fn on_spin(with_redis: bool, persistence: bool) -> Self {
        let spin = cpis_spin_launcher::spin_binary()
            .expect("a Spin target is chosen only when a Spin CLI is found");
        let redis = with_redis.then(|| {
            RedisServer::start(persistence).unwrap_or_else(|e| panic!("Redis did not start: {e}"))
        });
        let options = SpinOptions {
            spin,
            manifest: manifest(),
            store: match &redis {
                Some(server) => Store::Redis(server.url()),
                None => Store::Sqlite,
            },
            variables: VARIABLES
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            extra_args: Vec::new(),
        };
        let app = SpinApp::start(options).unwrap_or_else(|e| panic!("Spin did not start: {e}"));
        Self {
            target: if with_redis {
                Target::SpinRedis
            } else {
                Target::SpinSqlite
            },
            client: TestClient::new(app.base_url()),
            backend: Backend::Spin { app, redis },
        }
    }

    /// The test host running the app, for tests that need its fault injection or trap
    /// records (they run on [`MODES`] only).
    pub fn host(&self) -> &TestApp {
        match &self.backend {
            Backend::Host(app) => app,
            Backend::Spin { .. } => panic!("{} is not the test host", self.target),
        }
    }

    /// The HTTP client, for requests that need more than [`Cpis::send`] gives.
    pub fn client(&self) -> &TestClient {
        &self.client
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        match &self.backend {
            Backend::Host(app) => app.base_url.clone(),
            Backend::Spin { app, .. } => app.base_url(),
        }
    }

    /// Stops the app and starts it again on the same data: the same in-memory store on the test
    /// host, the same state directory (and the same Redis) on Spin.
    pub async fn restart(self) -> Self {
        match self.backend {
            Backend::Host(app) => {
                let reuse = matches!(self.target, Target::TestHost { reuse: true });
                let store = app.store.clone();
                drop(app);
                let mut options = host_options(reuse);
                options.store = Some(store);
                let app = TestApp::start(options).await.expect("the app starts again");
                Self {
                    target: self.target,
                    client: app.client.clone(),
                    backend: Backend::Host(app),
                }
            }
            Backend::Spin { mut app, redis } => {
                let app = tokio::task::spawn_blocking(move || {
                    app.restart()
                        .unwrap_or_else(|e| panic!("Spin did not start again: {e}"));
                    app
                })
                .await
                .expect("restarting Spin does not panic");
                Self {
                    target: self.target,
                    client: TestClient::new(app.base_url()),
                    backend: Backend::Spin { app, redis },
                }
            }
        }
    }

    /// Every entry of the default store whose key starts with `prefix`, read from the store
    /// itself: the test host's memory, Spin's SQLite file, or Redis.
    pub fn entries_with_prefix(&self, prefix: &str) -> BTreeMap<String, Vec<u8>> {
        match &self.backend {
            Backend::Host(app) => app.store.entries_with_prefix(prefix),
            Backend::Spin {
                redis: Some(redis), ..
            } => crate::stores::redis_entries(redis.port(), prefix),
            Backend::Spin { app, redis: None } => {
                crate::stores::sqlite_entries(&app.sqlite_path(), prefix)
            }
        }
    }

    /// A counter written by `increment`, read from the store (SQLite and the test host keep 8
    /// little-endian bytes, Redis decimal text).
    pub fn counter(&self, key: &str) -> Option<i64> {
        let value = self.entries_with_prefix(key).remove(key)?;
        Some(crate::stores::decode_counter(self.target, &value))
    }

    /// Fails if any component trapped or panicked.
    pub fn assert_no_traps(&self) {
        match &self.backend {
            Backend::Host(app) => app.assert_no_traps(),
            Backend::Spin { app, .. } => {
                let log = app.log();
                for sign in ["wasm trap", "panicked at", "wasm backtrace"] {
                    assert!(
                        !log.contains(sign),
                        "{}: a component trapped:\n{log}",
                        self.target
                    );
                }
            }
        }
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
            .client
            .request(method.clone(), path, &all, body.to_string())
            .await
            .unwrap_or_else(|e| panic!("{}: {method} {path} is not answered: {e:#}", self.target));
        Reply {
            status: response.status_code(),
            body: serde_json::from_slice(&response.body).unwrap_or(Value::Null),
        }
    }

    /// Sends `request` as raw bytes on a new connection and returns the response's status line
    /// and what followed it (the request should say `Connection: close`).
    pub async fn send_raw(&self, request: Vec<u8>) -> String {
        let address = self.client.address().to_string();
        tokio::task::spawn_blocking(move || {
            use std::io::{Read, Write};
            let mut stream = std::net::TcpStream::connect(&address).expect("it listens");
            stream
                .set_read_timeout(Some(std::time::Duration::from_secs(30)))
                .unwrap();
            stream.write_all(&request).expect("the request is sent");
            let mut response = Vec::new();
            let _ = stream.read_to_end(&mut response);
            String::from_utf8_lossy(&response).into_owned()
        })
        .await
        .expect("the raw request does not panic")
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
