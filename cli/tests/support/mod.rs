//! Starting the app and running the built `cpis` binary against it, as an integrator would.

#![allow(dead_code)] // each test target uses its own part of this module

use cpis_host_kit::{HostOptions, TestApp};
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

pub const ADMIN: &str = "cli-e2e-admin-secret";
pub const CPP: &str = "342191000000101";

/// Both ways Spin may run a WASIp3 component: a fresh instance per request, and reuse.
pub const MODES: [bool; 2] = [false, true];

pub use cpis_e2e::nhs_number;

/// The app, served by the test host on its own runtime until dropped.
pub struct Cpis {
    pub app: TestApp,
}

impl Cpis {
    /// Starts the release-built components (scripts/build-components.sh) on the test host.
    pub fn start(reuse: bool) -> Self {
        let mut options = HostOptions::new(cpis_host_kit::fixtures::project_manifest())
            .variable("admin_token", ADMIN)
            .variable("alert_gap_grace_seconds", "1")
            .reuse_instances(reuse);
        options.read_env = false;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let app = runtime
            .block_on(TestApp::start(options))
            .expect("the app starts");
        Self { app }
    }

    pub fn base_url(&self) -> String {
        self.app.base_url.clone()
    }

    /// `cpis ARGS` with this app's address and `token`.
    pub fn cpis(&self, token: &str, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_cpis"));
        command
            .env("CPIS_URL", self.base_url())
            .env("CPIS_TOKEN", token)
            .env_remove("CPIS_LA_ODS_CODE")
            .env_remove(cpis_cli::CRASH_BEFORE_ACK_VAR)
            .args(args);
        command
    }

    pub fn run(&self, token: &str, args: &[&str]) -> Run {
        Run::of(self.cpis(token, args).output().expect("cpis runs"))
    }

    /// Issues a credential with `cpis admin issue` and returns its token.
    pub fn credential(&self, ods: &str, kind: &str) -> String {
        let run = self.run(
            ADMIN,
            &[
                "--json",
                "admin",
                "issue",
                "--ods-code",
                ods,
                "--name",
                &format!("Org {ods}"),
                "--kind",
                &kind.replace('_', "-"),
            ],
        );
        run.assert_status(0);
        let body: Value = serde_json::from_str(&run.stdout).expect("--json prints JSON");
        body["token"].as_str().expect("a token").to_string()
    }
}

/// A finished `cpis` run.
#[derive(Debug)]
pub struct Run {
    pub status: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn of(output: Output) -> Self {
        Self {
            status: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    pub fn assert_status(&self, status: i32) {
        assert_eq!(self.status, Some(status), "{self:#?}");
    }
}

/// A CSV plan row for `la` (the documented header is [`HEADER`]).
pub fn row(la: &str, nhs: &str, case_ref: &str) -> String {
    format!("{nhs},{case_ref},{CPP},2026-01-10,{la},Council {la},0113 222 4401,0113 535 0600\n")
}

pub const HEADER: &str = "nhs_number,case_ref,plan_type,start_date,la_ods_code,la_name,office_hours_phone,emergency_duty_team_phone\n";

pub fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}
