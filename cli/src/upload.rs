//! `cpis upload`: checks every row with the domain crate's checks, sends the good ones in
//! batches (several in flight), records each answered batch in the state file so that a run
//! after an interruption sends only the rest, and writes every rejected row to the rejects file.

use crate::check::{Problem, check_record};
use crate::client::{Client, Idempotent};
use crate::error::{ApiFailure, CliError};
use crate::input::{Format, read_rows};
use crate::journal::{BatchDone, Header, Journal, Opened, ServerReject};
use cpis_shared::identifiers::OdsCode;
use cpis_shared::submit::MAX_BATCH_RECORDS;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Sends one batch and returns CP-IS's answer (`POST /api/v1/plans/batch`).
pub trait BatchSender: Sync {
    fn send_batch(&self, records: Vec<Value>) -> Result<Value, CliError>;
}

impl BatchSender for Client {
    fn send_batch(&self, records: Vec<Value>) -> Result<Value, CliError> {
        // Every record is idempotent, so a batch whose answer was lost may go again.
        self.post(
            "/api/v1/plans/batch",
            &json!({ "records": records }),
            Idempotent::Yes,
        )
    }
}

#[derive(Debug, Clone)]
pub struct Options {
    pub input: PathBuf,
    pub format: Option<Format>,
    pub state: Option<PathBuf>,
    pub rejects: Option<PathBuf>,
    pub batch_size: usize,
    pub parallel: usize,
    /// The LA of the credential, to refuse another LA's rows before sending.
    pub la: Option<OdsCode>,
    pub progress: bool,
}

impl Options {
    pub fn state_path(&self) -> PathBuf {
        self.state
            .clone()
            .unwrap_or_else(|| beside(&self.input, ".cpis-state"))
    }

    pub fn rejects_path(&self) -> PathBuf {
        self.rejects.clone().unwrap_or_else(|| {
            let stem = self
                .input
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned());
            self.input
                .with_file_name(format!("{}.rejects.csv", stem.unwrap_or_default()))
        })
    }
}

fn beside(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// What an upload did, earlier runs of the same input included.
#[derive(Debug, Clone)]
pub struct Report {
    pub rows: usize,
    pub rejected_locally: usize,
    pub batches: usize,
    pub batches_skipped: usize,
    pub batches_sent: usize,
    pub records_sent: usize,
    pub accepted: usize,
    pub rejected_by_cpis: usize,
    pub applied: BTreeMap<String, usize>,
    pub sending_time: Duration,
    pub rejects_path: PathBuf,
    pub state_path: PathBuf,
    pub opened: Opened,
}

impl Report {
    pub fn rejected(&self) -> usize {
        self.rejected_locally + self.rejected_by_cpis
    }

    pub fn records_per_second(&self) -> f64 {
        self.records_sent as f64 / self.sending_time.as_secs_f64().max(1e-6)
    }

    pub fn summary(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "rows read: {}", self.rows);
        let _ = write!(
            s,
            "sent: {} records in {} of {} batches",
            self.records_sent, self.batches_sent, self.batches
        );
        if self.batches_skipped > 0 {
            let _ = write!(
                s,
                " ({} answered in an earlier run, not sent again)",
                self.batches_skipped
            );
        }
        if self.records_sent > 0 {
            let _ = write!(s, ", {:.0} records/s", self.records_per_second());
        }
        let applied: Vec<String> = self
            .applied
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        let _ = writeln!(s, "\naccepted: {} ({})", self.accepted, applied.join(", "));
        let _ = writeln!(
            s,
            "rejected: {} ({} by the checks before sending, {} by CP-IS)",
            self.rejected(),
            self.rejected_locally,
            self.rejected_by_cpis
        );
        let _ = writeln!(s, "rejects file: {}", self.rejects_path.display());
        let _ = write!(s, "state file: {}", self.state_path.display());
        s
    }
}

/// A row that passed the checks, with its line in the input.
struct Good {
    line: u64,
    record: Value,
}

/// A rejected row, for the rejects file.
struct Rejected {
    line: u64,
    problem: Problem,
    found_by: &'static str,
}

pub fn upload(sender: &impl BatchSender, options: &Options) -> Result<Report, CliError> {
    if !(1..=MAX_BATCH_RECORDS).contains(&options.batch_size) {
        return Err(CliError::Usage(format!(
            "--batch-size must be from 1 to {MAX_BATCH_RECORDS}"
        )));
    }
    let input = &options.input;
    let bytes =
        std::fs::read(input).map_err(|e| CliError::file(input, format!("cannot read: {e}")))?;
    let format = Format::of(input, options.format)?;
    let rows = read_rows(input, &bytes, format)?;

    let mut good = Vec::new();
    let mut rejected = Vec::new();
    let mut identity: HashMap<u64, (String, String)> = HashMap::new();
    for row in &rows {
        let checked = row.record.clone().and_then(|record| {
            let text = |f: &str| record[f].as_str().unwrap_or_default().to_string();
            identity.insert(row.line, (text("case_ref"), text("nhs_number")));
            check_record(&record, options.la.as_ref()).map(|()| record)
        });
        match checked {
            Ok(record) => good.push(Good {
                line: row.line,
                record,
            }),
            Err(problem) => rejected.push(Rejected {
                line: row.line,
                problem,
                found_by: "cpis",
            }),
        }
    }
    let rejected_locally = rejected.len();

    let batches: Vec<&[Good]> = good.chunks(options.batch_size).collect();
    let header = Header::new(
        hex::encode(Sha256::digest(&bytes)),
        options.batch_size,
        batches.len(),
    );
    let (mut journal, opened) = Journal::open(&options.state_path(), header)?;
    let pending: Vec<usize> = (0..batches.len())
        .filter(|k| !journal.done().contains_key(k))
        .collect();
    let batches_skipped = batches.len() - pending.len();

    let total: usize = pending.iter().map(|&k| batches[k].len()).sum();
    let bar = progress_bar(options.progress, total as u64);
    let started = Instant::now();
    let mut records_sent = 0;
    let mut batches_sent = 0;
    let error = send_all(sender, &batches, &pending, options.parallel, |k, answer| {
        let lines: Vec<u64> = batches[k].iter().map(|g| g.line).collect();
        let done = batch_done(k, &lines, &answer?)?;
        journal.record(done)?;
        records_sent += lines.len();
        batches_sent += 1;
        bar.inc(lines.len() as u64);
        Ok(())
    });
    bar.finish_and_clear();
    let sending_time = started.elapsed();

    let mut accepted = 0;
    let mut applied = BTreeMap::new();
    for done in journal.done().values() {
        accepted += done.accepted;
        for (kind, n) in &done.applied {
            *applied.entry(kind.clone()).or_insert(0) += n;
        }
        rejected.extend(done.rejects.iter().map(|r| Rejected {
            line: r.line,
            problem: r.problem.clone(),
            found_by: "cp-is",
        }));
    }
    rejected.sort_by_key(|r| r.line);
    let rejects_path = options.rejects_path();
    write_rejects(&rejects_path, &rejected, &identity)?;
    let report = Report {
        rows: rows.len(),
        rejected_locally,
        batches: batches.len(),
        batches_skipped,
        batches_sent,
        records_sent,
        accepted,
        rejected_by_cpis: rejected.len() - rejected_locally,
        applied,
        sending_time,
        rejects_path,
        state_path: journal.path().to_path_buf(),
        opened,
    };
    match error {
        None => Ok(report),
        Some(error) => {
            eprintln!(
                "cpis: the upload stopped with {} of {} batches answered (recorded in {}); \
                 once the cause is fixed, run the same command again to send the rest",
                journal.done().len(),
                batches.len(),
                journal.path().display()
            );
            Err(error)
        }
    }
}

fn progress_bar(shown: bool, total: u64) -> ProgressBar {
    if !shown {
        return ProgressBar::hidden();
    }
    // Drawn on stderr, and only when it is a terminal.
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template(
            "{elapsed_precise} [{wide_bar}] {human_pos}/{human_len} records  {per_sec}  ETA {eta}",
        )
        .expect("the template is valid")
        .progress_chars("=> "),
    );
    bar
}

/// Sends the pending batches, `parallel` at a time, and hands each answer to `answered` on
/// this thread (in the order they arrive). The first error stops new sends; batches in flight
/// are still answered. Returns that error.
fn send_all(
    sender: &impl BatchSender,
    batches: &[&[Good]],
    pending: &[usize],
    parallel: usize,
    mut answered: impl FnMut(usize, Result<Value, CliError>) -> Result<(), CliError>,
) -> Option<CliError> {
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let mut first_error = None;
    std::thread::scope(|scope| {
        // A rendezvous: a worker hands over its answer before it sends its next batch, so the
        // state file is never more than one answer per worker behind CP-IS.
        let (tx, rx) = mpsc::sync_channel(0);
        for _ in 0..parallel.clamp(1, pending.len().max(1)) {
            let (tx, next, stop) = (tx.clone(), &next, &stop);
            scope.spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    let Some(&k) = pending.get(next.fetch_add(1, Ordering::SeqCst)) else {
                        break;
                    };
                    let records = batches[k].iter().map(|g| g.record.clone()).collect();
                    let answer = sender.send_batch(records);
                    if answer.is_err() {
                        // No new batch after a failure (a revoked token, a store down …).
                        stop.store(true, Ordering::SeqCst);
                    }
                    if tx.send((k, answer)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        for (k, answer) in rx {
            if let Err(e) = answered(k, answer) {
                stop.store(true, Ordering::SeqCst);
                first_error.get_or_insert(e);
            }
        }
    });
    first_error
}

/// Reads CP-IS's answer to batch `batch`, whose records came from `lines`.
fn batch_done(batch: usize, lines: &[u64], answer: &Value) -> Result<BatchDone, CliError> {
    let unexpected = |why: &str| {
        CliError::Api(ApiFailure {
            status: 200,
            code: "unexpected_answer".into(),
            field: None,
            message: format!(
                "CP-IS's answer to a batch {why}: {}",
                crate::client::snippet(&answer.to_string())
            ),
        })
    };
    let results = answer["results"]
        .as_array()
        .ok_or_else(|| unexpected("has no results"))?;
    if results.len() != lines.len() {
        return Err(unexpected("has a result count other than the batch's"));
    }
    let mut done = BatchDone {
        batch,
        accepted: 0,
        applied: BTreeMap::new(),
        rejects: Vec::new(),
    };
    for result in results {
        let line = result["index"]
            .as_u64()
            .and_then(|i| lines.get(i as usize))
            .ok_or_else(|| unexpected("has a result without a valid index"))?;
        match result["outcome"].as_str() {
            Some("accepted") => {
                done.accepted += 1;
                let kind = result["applied"].as_str().unwrap_or("accepted").to_string();
                *done.applied.entry(kind).or_insert(0) += 1;
            }
            Some("rejected") => {
                let error = &result["error"];
                let field = error["field"].as_str().unwrap_or_default();
                done.rejects.push(ServerReject {
                    line: *line,
                    problem: Problem::new(
                        record_field(field),
                        error["code"].as_str().unwrap_or("rejected"),
                        error["message"].as_str().unwrap_or_default(),
                    ),
                });
            }
            _ => {
                return Err(unexpected(
                    "has a result that is neither accepted nor rejected",
                ));
            }
        }
    }
    Ok(done)
}

/// `records[3].nhs_number` → `nhs_number`: the field within the row.
fn record_field(field: &str) -> &str {
    match field
        .strip_prefix("records[")
        .and_then(|rest| rest.split_once(']'))
    {
        Some((_, rest)) => rest.strip_prefix('.').unwrap_or(rest),
        None => field,
    }
}

/// The columns of the rejects file.
pub const REJECTS_COLUMNS: [&str; 7] = [
    "line",
    "case_ref",
    "nhs_number",
    "field",
    "code",
    "message",
    "found_by",
];

fn write_rejects(
    path: &Path,
    rejected: &[Rejected],
    identity: &HashMap<u64, (String, String)>,
) -> Result<(), CliError> {
    let fail = |e: csv::Error| CliError::file(path, format!("cannot write the rejects: {e}"));
    let mut writer = csv::Writer::from_path(path).map_err(fail)?;
    writer.write_record(REJECTS_COLUMNS).map_err(fail)?;
    let none = (String::new(), String::new());
    for r in rejected {
        let (case_ref, nhs) = identity.get(&r.line).unwrap_or(&none);
        writer
            .write_record([
                r.line.to_string().as_str(),
                case_ref,
                nhs,
                &r.problem.field,
                &r.problem.code,
                &r.problem.message,
                r.found_by,
            ])
            .map_err(fail)?;
    }
    writer
        .flush()
        .map_err(|e| CliError::file(path, format!("cannot write the rejects: {e}")))
}

#[cfg(test)]
mod tests;
