//! `cpis`, the command-line client of CP-IS: uploads, the alert feed, the worktray, match rates,
//! flags, children and administration, over CP-IS's JSON API (docs/api.md). The manual is
//! docs/cli.md.

pub mod alerts;
pub mod args;
pub mod check;
pub mod client;
pub mod durable;
pub mod error;
pub mod input;
pub mod journal;
pub mod upload;
pub mod views;

use args::{AdminCommand, AlertsCommand, Cli, Command};
use client::{Client, Config};
use error::{CliError, exit};
use serde_json::Value;
use std::time::Duration;

/// The environment variable of the pull's crash hook (tests only; see docs/cli.md).
pub const CRASH_BEFORE_ACK_VAR: &str = "CPIS_TEST_CRASH_BEFORE_ACK";

/// Runs a parsed command line, printing the results; returns the exit status.
pub fn run(cli: Cli) -> u8 {
    match execute(cli) {
        Ok(status) => status,
        Err(error) => {
            eprintln!("cpis: error: {error}");
            error.exit_code()
        }
    }
}

fn execute(cli: Cli) -> Result<u8, CliError> {
    let client = Client::new(&Config {
        url: cli.url,
        token: cli.token,
        timeout: Duration::from_secs(cli.timeout),
        retries: cli.retries,
    })?;
    let json = cli.json;
    let print = |body: &Value, show: fn(&Value) -> String| {
        if json {
            println!(
                "{}",
                serde_json::to_string_pretty(body).expect("JSON values serialise")
            );
        } else {
            println!("{}", show(body));
        }
        Ok(exit::OK)
    };
    match cli.command {
        Command::Upload(a) => {
            let options = upload::Options {
                la: a.la.as_deref().map(views::ods_code).transpose()?,
                input: a.file,
                format: a.format,
                state: a.state,
                rejects: a.rejects,
                batch_size: a.batch_size,
                parallel: a.parallel as usize,
                progress: !a.quiet,
            };
            let report = upload::upload(&client, &options)?;
            println!("{}", report.summary());
            Ok(if report.rejected() > 0 {
                exit::REJECTED
            } else {
                exit::OK
            })
        }
        Command::Alerts(AlertsCommand::Pull(a)) => {
            let options = alerts::Options {
                out: a.out,
                format: a.format,
                ack: a.ack,
                after: a.after,
                page_size: a.page_size,
                crash_before_ack: std::env::var_os(CRASH_BEFORE_ACK_VAR).is_some_and(|v| v == "1"),
            };
            let report = alerts::pull(&client, &options)?;
            println!("{}", report.summary(options.ack));
            Ok(exit::OK)
        }
        Command::Worktray { page_size } => {
            let cases = views::worktray(&client, page_size)?;
            if json {
                cases.iter().for_each(|c| println!("{c}"));
            } else {
                println!("{}", views::show_worktray(&cases));
            }
            Ok(exit::OK)
        }
        Command::MatchRate { all } => {
            let body = views::match_rate(&client, all)?;
            print(
                &body,
                if all {
                    views::show_all_match_rates
                } else {
                    views::show_match_rate
                },
            )
        }
        Command::Flag { nhs_number } => {
            print(&views::flag(&client, &nhs_number)?, views::show_flag)
        }
        Command::Child { nhs_number } => {
            print(&views::child(&client, &nhs_number)?, views::show_child)
        }
        Command::Admin(AdminCommand::Issue {
            ods_code,
            name,
            kind,
        }) => print(
            &views::issue_credential(&client, &ods_code, &name, kind.api_name())?,
            views::show_issued,
        ),
        Command::Admin(AdminCommand::Revoke { credential_id }) => {
            print(&views::revoke_credential(&client, &credential_id)?, |b| {
                format!(
                    "revoked credential {}",
                    b["revoked"].as_str().unwrap_or_default()
                )
            })
        }
        Command::Admin(AdminCommand::RegisterSystem {
            credential_id,
            system,
            person_id,
            person_name,
            person_role,
        }) => {
            let person = [person_id, person_name, person_role];
            print(
                &views::register_system(&client, &credential_id, &system, &person)?,
                |b| {
                    format!(
                        "credential {} belongs to {}; responsible person {}",
                        b["credential_id"].as_str().unwrap_or_default(),
                        b["system"]["system"].as_str().unwrap_or_default(),
                        b["system"]["responsible_person"]["name"]
                            .as_str()
                            .unwrap_or_default()
                    )
                },
            )
        }
        Command::Admin(AdminCommand::RevokeOrganisation { ods_code }) => {
            print(&views::revoke_organisation(&client, &ods_code)?, |b| {
                format!(
                    "revoked {} credentials of {}",
                    b["revoked_credentials"],
                    b["ods_code"].as_str().unwrap_or_default()
                )
            })
        }
    }
}
