//! `cpis alerts pull`: takes the LA's alert feed from its cursor into a JSON-lines or CSV file,
//! and (with `--ack`) acknowledges a page only once its alerts are written and synced. A crash
//! loses nothing: at worst the next pull repeats the alerts written after the last
//! acknowledgement, each with its `seq`, so that repeats are easy to drop.

use crate::client::{Client, Idempotent};
use crate::durable::AppendFile;
use crate::error::{ApiFailure, CliError};
use crate::input::Format;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

/// The LA's feed: pages of alerts, and the acknowledgement.
pub trait Feed {
    fn page(&self, after: Option<u64>, limit: u32) -> Result<Value, CliError>;
    fn ack(&self, up_to: u64) -> Result<(), CliError>;
}

impl Feed for Client {
    fn page(&self, after: Option<u64>, limit: u32) -> Result<Value, CliError> {
        let after = after.map(|a| format!("&after={a}")).unwrap_or_default();
        self.get(&format!("/api/v1/alerts?limit={limit}{after}"))
    }

    fn ack(&self, up_to: u64) -> Result<(), CliError> {
        self.post(
            "/api/v1/alerts/ack",
            &json!({ "up_to": up_to }),
            Idempotent::Yes,
        )
        .map(|_| ())
    }
}

#[derive(Debug, Clone)]
pub struct Options {
    pub out: PathBuf,
    pub format: Option<Format>,
    pub ack: bool,
    /// Start after this feed position instead of after what was acknowledged.
    pub after: Option<u64>,
    pub page_size: u32,
    /// Test hook (`CPIS_TEST_CRASH_BEFORE_ACK`): abort once the first page is synced, before it
    /// is acknowledged, as a crash there would.
    pub crash_before_ack: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub alerts: usize,
    pub seqs: Option<(u64, u64)>,
    pub acknowledged: Option<u64>,
    pub out: PathBuf,
}

impl Report {
    pub fn summary(&self, ack: bool) -> String {
        let mut s = match self.seqs {
            Some((first, last)) => format!(
                "pulled {} alerts (seq {first} to {last}) into {}",
                self.alerts,
                self.out.display()
            ),
            None => format!("no new alerts; {} unchanged", self.out.display()),
        };
        match (self.acknowledged, ack) {
            (Some(up_to), _) => s.push_str(&format!("\nacknowledged up to seq {up_to}")),
            (None, false) if self.alerts > 0 => {
                s.push_str("\nnot acknowledged (without --ack the next pull takes them again)")
            }
            _ => {}
        }
        s
    }
}

/// The CSV columns of a pulled alert; `alert` holds the whole alert as JSON.
pub const ALERT_COLUMNS: [&str; 12] = [
    "seq",
    "created_at",
    "kind",
    "nhs_number",
    "plan_types",
    "case_refs",
    "setting_ods_code",
    "setting_name",
    "attended_at",
    "resolves",
    "resolution",
    "alert",
];

pub fn pull(feed: &impl Feed, options: &Options) -> Result<Report, CliError> {
    let format = Format::of(&options.out, options.format).unwrap_or(Format::Jsonl);
    let (mut file, text) = AppendFile::open(&options.out)?;
    if format == Format::Csv {
        let header = csv_line(&ALERT_COLUMNS.map(String::from));
        match text.lines().next() {
            None => file.append_synced(&header)?,
            Some(first) if format!("{first}\n") == header => {}
            Some(_) => {
                return Err(CliError::file(
                    &options.out,
                    "this CSV file was not written by `cpis alerts pull`: pull into a new file",
                ));
            }
        }
    }
    let mut report = Report {
        alerts: 0,
        seqs: None,
        acknowledged: None,
        out: options.out.clone(),
    };
    let mut after = options.after;
    loop {
        let page = feed.page(after, options.page_size)?;
        let (alerts, next, more) = read_page(&page)?;
        if let (Some(first), Some(last)) = (alerts.first(), alerts.last()) {
            let lines: String = alerts.iter().map(|a| alert_line(a, format)).collect();
            file.append_synced(&lines)?;
            report.alerts += alerts.len();
            let first_seq = report.seqs.map_or(seq(first), |(f, _)| f);
            report.seqs = Some((first_seq, seq(last)));
            if options.crash_before_ack {
                eprintln!(
                    "cpis: CPIS_TEST_CRASH_BEFORE_ACK: aborting after the write, before the acknowledgement"
                );
                std::process::abort();
            }
            if options.ack {
                feed.ack(next)?;
                report.acknowledged = Some(next);
            }
        }
        if !more || after == Some(next) {
            return Ok(report);
        }
        after = Some(next);
    }
}

fn seq(alert: &Value) -> u64 {
    alert["seq"].as_u64().unwrap_or_default()
}

fn read_page(page: &Value) -> Result<(&Vec<Value>, u64, bool), CliError> {
    let unexpected = || {
        CliError::Api(ApiFailure {
            status: 200,
            code: "unexpected_answer".into(),
            field: None,
            message: format!(
                "the alert feed's page is not {{alerts, next_cursor, more}}: {}",
                crate::client::snippet(&page.to_string())
            ),
        })
    };
    let alerts = page["alerts"].as_array().ok_or_else(unexpected)?;
    if alerts.iter().any(|a| a["seq"].as_u64().is_none()) {
        return Err(unexpected());
    }
    let next = page["next_cursor"].as_u64().ok_or_else(unexpected)?;
    Ok((alerts, next, page["more"].as_bool().unwrap_or(false)))
}

fn alert_line(alert: &Value, format: Format) -> String {
    match format {
        Format::Jsonl => format!("{alert}\n"),
        Format::Csv => csv_line(&alert_csv_row(alert)),
    }
}

/// One alert as CSV fields (see [`ALERT_COLUMNS`]); an attendance's plans are joined by `;`.
pub fn alert_csv_row(alert: &Value) -> [String; 12] {
    let text = |v: &Value| match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let plans: Vec<&Value> = match alert["plans"].as_array() {
        Some(plans) => plans.iter().collect(),
        None if alert["case"].is_object() => vec![&alert["case"]],
        None => vec![],
    };
    let joined = |field: &str| {
        plans
            .iter()
            .map(|p| text(&p[field]))
            .collect::<Vec<_>>()
            .join(";")
    };
    [
        text(&alert["seq"]),
        text(&alert["created_at"]),
        text(&alert["kind"]),
        text(&alert["nhs_number"]),
        joined("plan_type"),
        joined("case_ref"),
        text(&alert["setting"]["ods_code"]),
        text(&alert["setting"]["name"]),
        text(&alert["attended_at"]),
        text(&alert["resolves"]),
        text(&alert["resolution"]),
        alert.to_string(),
    ]
}

fn csv_line(fields: &[String]) -> String {
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(fields).expect("writing to memory");
    String::from_utf8(writer.into_inner().expect("writing to memory")).expect("the fields are text")
}

/// The `seq` of every alert in a pulled file, in file order (for tests and for checking a file).
pub fn seqs_in(path: &Path) -> Result<Vec<u64>, CliError> {
    let text = std::fs::read_to_string(path).map_err(|e| CliError::file(path, e))?;
    let format = Format::of(path, None).unwrap_or(Format::Jsonl);
    let bad = |n: usize| CliError::file(path, format!("line {n} holds no alert"));
    match format {
        Format::Jsonl => text
            .lines()
            .enumerate()
            .map(|(i, l)| {
                serde_json::from_str::<Value>(l)
                    .ok()
                    .and_then(|v| v["seq"].as_u64())
                    .ok_or_else(|| bad(i + 1))
            })
            .collect(),
        Format::Csv => csv::Reader::from_reader(text.as_bytes())
            .records()
            .enumerate()
            .map(|(i, r)| {
                r.ok()
                    .and_then(|r| r.get(0)?.parse().ok())
                    .ok_or_else(|| bad(i + 2))
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests;
