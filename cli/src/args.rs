//! The command line: every command, flag and help text (`cpis --help`, `cpis upload --help` …).

use crate::input::Format;
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

const ABOUT: &str = "The command-line client of CP-IS (Child Protection – Information Sharing)";

const LONG_ABOUT: &str = "\
The command-line client of CP-IS (Child Protection – Information Sharing).

A local authority (LA) uploads its child protection, looked-after and unborn-child plans, pulls
its alerts, and checks its worktray and match rate; a care setting checks a child's flag; the
CP-IS administrator issues and revokes credentials.

Every command needs the address of CP-IS and a credential: set CPIS_URL and CPIS_TOKEN in the
environment (or pass --url and --token). The manual is docs/cli.md.";

const AFTER_HELP: &str = "\
Exit status: 0 done; 1 an upload finished but rows were rejected (see the rejects file);
2 bad usage or configuration; 3 CP-IS answered with an error; 4 CP-IS could not be reached;
5 a local file could not be read or written.

Example, an LA's first upload and daily alert pull:
  export CPIS_URL=https://cpis.example.org CPIS_TOKEN=cpis_…
  cpis upload plans.csv
  cpis alerts pull --out alerts.jsonl --ack";

#[derive(Debug, Parser)]
#[command(name = "cpis", version, about = ABOUT, long_about = LONG_ABOUT, after_help = AFTER_HELP)]
pub struct Cli {
    /// The address of CP-IS, e.g. https://cpis.example.org
    #[arg(long, env = "CPIS_URL", global = true)]
    pub url: Option<String>,
    /// The credential (bearer token) the CP-IS administrator issued to your organisation, or
    /// the administrator's token for `cpis admin`
    #[arg(long, env = "CPIS_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,
    /// Seconds to wait for each answer
    #[arg(long, default_value_t = 60, global = true, value_name = "SECONDS")]
    pub timeout: u64,
    /// How often a request that may safely be repeated is sent again when the network or CP-IS's
    /// store fails (waiting 0.25 s, 0.5 s, 1 s … between tries)
    #[arg(long, default_value_t = 5, global = true)]
    pub retries: u32,
    /// Print CP-IS's JSON answers instead of the summaries
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// LA: upload plan records from a CSV or JSON-lines file (resumable)
    #[command(long_about = UPLOAD_HELP)]
    Upload(UploadArgs),
    /// LA: the alert feed
    #[command(subcommand)]
    Alerts(AlertsCommand),
    /// LA: cases waiting for an NHS number, oldest first, with their due dates
    Worktray {
        /// Cases per request (1–500)
        #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..=500))]
        page_size: u32,
    },
    /// LA: the share of its plans CP-IS can share (with an NHS number), and whether it meets
    /// the go-live threshold
    MatchRate {
        /// Administrator: every LA's figures
        #[arg(long)]
        all: bool,
    },
    /// Care setting: is there a CP-IS plan for this NHS number? (records nothing)
    Flag {
        /// The NHS number (spaces allowed: "943 476 5919")
        nhs_number: String,
    },
    /// LA: your plans for a child and the child's last 25 unscheduled-care visits
    Child {
        /// The NHS number
        nhs_number: String,
    },
    /// Administrator: credentials and organisations
    #[command(subcommand)]
    Admin(AdminCommand),
}

const UPLOAD_HELP: &str = "\
LA: upload plan records from a CSV or JSON-lines file.

Every row is first checked with CP-IS's own record checks; a row that fails is not sent. The
rest go in batches (at most 500 records each, several at once) with a progress bar. Every
rejected row, by these checks or by CP-IS, is written with its line, field, code and message to
the rejects file. The exit status is 1 when any row was rejected.

The upload can be interrupted (Ctrl-C, a crash, a lost network) and run again with the same
command: the state file records every batch CP-IS answered, and only the others are sent.
Sending a record twice changes nothing, so a batch in flight at the interruption is simply sent
again. The state file refers to the input's exact content: to send a changed file while an
upload of the old one is unfinished, finish that or delete the state file.

CSV: the first line is the header, naming some of these columns in any order (empty cells are
left out of the record):
  action                     upsert (the default when empty) or withdraw
  nhs_number                 10 digits, spaces allowed; empty if not known yet (the case is
                             held, unshared, and put on the alert feed and the worktray)
  case_ref                   the LA's case reference (letters, digits, - _ .)
  plan_type                  SNOMED CT code: 342191000000101 CPP, 764841000000100 LAC,
                             818901000000100 UCPP (on the mother's NHS number)
  start_date                 YYYY-MM-DD
  end_date                   YYYY-MM-DD, when the plan ended
  delete_date                YYYY-MM-DD, after which the plan is never shown
  stage                      s47_enquiry, icpc or looked_after (optional)
  la_ods_code                your LA's ODS code (that of the credential)
  la_name                    your LA's name
  office_hours_phone         the number a clinician calls in office hours
  emergency_duty_team_phone  the emergency duty team's number
A withdrawal needs action=withdraw with nhs_number and plan_type (or, for a case without an NHS
number, case_ref).

JSON lines: one record per line, as POST /api/v1/plans takes it (docs/api.md), e.g.
  {\"nhs_number\":\"9434765919\",\"case_ref\":\"C-1\",\"plan_type\":\"342191000000101\",\"start_date\":\"2026-01-10\",
   \"local_authority\":{\"ods_code\":\"LA1\",\"name\":\"Leeds\",\"office_hours_phone\":\"0113 222 4401\",
   \"emergency_duty_team_phone\":\"0113 535 0600\"}}

Rejects file (CSV): line, case_ref, nhs_number, field, code, message, found_by (cpis: by the
checks before sending; cp-is: by CP-IS).";

#[derive(Debug, Args)]
pub struct UploadArgs {
    /// The CSV (.csv) or JSON-lines (.jsonl, .ndjson) file
    pub file: PathBuf,
    /// The file's format, when its name does not tell
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// The state file that makes the upload resumable [default: FILE.cpis-state]
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
    /// Where the rejected rows are written [default: FILE's name with .rejects.csv]
    #[arg(long, value_name = "FILE")]
    pub rejects: Option<PathBuf>,
    /// Records per batch (1–500)
    #[arg(long, default_value_t = 500)]
    pub batch_size: usize,
    /// Batches in flight at once
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=16))]
    pub parallel: u32,
    /// Your LA's ODS code: rows of another LA are then rejected before sending (without it,
    /// CP-IS rejects them)
    #[arg(long, env = "CPIS_LA_ODS_CODE", value_name = "ODS")]
    pub la: Option<String>,
    /// No progress bar
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Debug, Subcommand)]
pub enum AlertsCommand {
    /// Take alerts from the feed into a file; with --ack, acknowledge them once they are safely
    /// on disk
    #[command(long_about = PULL_HELP)]
    Pull(PullArgs),
}

const PULL_HELP: &str = "\
Take the LA's alerts from the feed into a file (appended; JSON lines, or CSV for a .csv name).

Without --after, the feed starts after what the LA last acknowledged. Each page of alerts is
written, flushed and synced to disk (with its directory, for a new file) before, with --ack, it
is acknowledged. A crash therefore loses nothing: at worst the next pull takes again the alerts
written after the last acknowledgement. Every line carries the alert's `seq`, so a repeat is
recognised by a seq already in the file. Without --ack nothing is acknowledged, and the next
pull takes the same alerts again.

CSV columns: seq, created_at, kind, nhs_number, plan_types, case_refs (an attendance's plans
joined by ;), setting_ods_code, setting_name, attended_at, resolves, resolution, alert (the
whole alert as JSON).";

#[derive(Debug, Args)]
pub struct PullArgs {
    /// The file to append the alerts to
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Acknowledge each page once it is synced to disk
    #[arg(long)]
    pub ack: bool,
    /// The file's format [default: csv for a .csv name, else jsonl]
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Start after this seq instead of after the last acknowledged alert
    #[arg(long, value_name = "SEQ")]
    pub after: Option<u64>,
    /// Alerts per request (1–500)
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..=500))]
    pub page_size: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OrgKind {
    LocalAuthority,
    CareSetting,
}

impl OrgKind {
    pub fn api_name(self) -> &'static str {
        match self {
            Self::LocalAuthority => "local_authority",
            Self::CareSetting => "care_setting",
        }
    }
}

/// Administrator commands.
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Issue a credential; the first for an ODS code registers the organisation. The token is
    /// shown once.
    Issue {
        /// The organisation's ODS code
        #[arg(long, value_name = "ODS")]
        ods_code: String,
        /// The organisation's name (the same for every credential of an ODS code)
        #[arg(long)]
        name: String,
        /// What the organisation is
        #[arg(long, value_enum)]
        kind: OrgKind,
    },
    /// Revoke one credential, at once
    Revoke {
        /// The credential id (16 hex digits) shown when it was issued
        credential_id: String,
    },
    /// Revoke every credential of an organisation, at once
    RevokeOrganisation {
        /// The organisation's ODS code
        ods_code: String,
    },
    /// Register the system a care setting's credential belongs to and its nominated responsible
    /// person: accesses sent without NHSD-End-User-* headers (or without `user`) are then
    /// recorded against them. Sending it again replaces the registration.
    RegisterSystem {
        /// The care setting's credential id (16 hex digits)
        credential_id: String,
        /// The clinical system's name, e.g. "Symphony ED"
        #[arg(long)]
        system: String,
        /// The nominated responsible person's identifier (e.g. SDS user id)
        #[arg(long)]
        person_id: String,
        /// The nominated responsible person's name
        #[arg(long)]
        person_name: String,
        /// The nominated responsible person's role
        #[arg(long)]
        person_role: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn upload_help_documents_every_csv_column() {
        for column in crate::input::CSV_COLUMNS {
            assert!(
                UPLOAD_HELP.contains(&format!("\n  {column} ")),
                "{column} is not in `cpis upload --help`"
            );
        }
        for column in crate::alerts::ALERT_COLUMNS {
            assert!(
                PULL_HELP.contains(column),
                "{column} is not in `cpis alerts pull --help`"
            );
        }
    }

    #[test]
    fn flags_parse_and_bad_values_are_refused() {
        let cli = Cli::try_parse_from([
            "cpis",
            "--url",
            "http://x",
            "upload",
            "a.csv",
            "--batch-size",
            "50",
            "--parallel",
            "2",
        ])
        .unwrap();
        assert!(matches!(
            cli.command,
            Command::Upload(UploadArgs {
                batch_size: 50,
                parallel: 2,
                ..
            })
        ));
        assert!(
            Cli::try_parse_from(["cpis", "alerts", "pull", "--out", "a", "--page-size", "501"])
                .is_err()
        );
        assert!(
            Cli::try_parse_from([
                "cpis",
                "admin",
                "issue",
                "--ods-code",
                "X1",
                "--name",
                "N",
                "--kind",
                "hospital"
            ])
            .is_err()
        );
        assert!(Cli::try_parse_from(["cpis", "alerts", "pull"]).is_err());
    }
}
