//! The upload's state file: which batches of an input CP-IS has answered, so that a run after an
//! interruption sends only the others. JSON lines: a header naming the input (its SHA-256), the
//! batch size and the number of batches, then one line per answered batch, each synced before
//! the next is counted as done. Re-sending a batch whose answer was lost is harmless: every
//! record is idempotent.

use crate::check::Problem;
use crate::durable::AppendFile;
use crate::error::CliError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    pub cpis_upload_state: u32,
    pub input_sha256: String,
    pub batch_size: usize,
    pub batches: usize,
}

impl Header {
    pub fn new(input_sha256: String, batch_size: usize, batches: usize) -> Self {
        Self {
            cpis_upload_state: 1,
            input_sha256,
            batch_size,
            batches,
        }
    }
}

/// A rejection by CP-IS of one row of a batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerReject {
    pub line: u64,
    #[serde(flatten)]
    pub problem: Problem,
}

/// CP-IS's answer to one batch, as far as the upload needs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchDone {
    pub batch: usize,
    pub accepted: usize,
    /// How many records each `applied` value (created, updated, unchanged …) had.
    pub applied: BTreeMap<String, usize>,
    pub rejects: Vec<ServerReject>,
}

/// How the state file was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opened {
    New,
    /// An earlier run of the same input: its answered batches are skipped.
    Resumed,
    /// The state of a finished upload of another input (or batch size), started again.
    Replaced,
}

pub struct Journal {
    file: AppendFile,
    header: Header,
    done: BTreeMap<usize, BatchDone>,
}

impl Journal {
    pub fn open(path: &Path, header: Header) -> Result<(Self, Opened), CliError> {
        let (mut file, text) = AppendFile::open(path)?;
        let mut lines = text.lines();
        let found: Option<Header> = match lines.next() {
            None => None,
            Some(first) => Some(serde_json::from_str(first).map_err(|_| {
                CliError::file(
                    path,
                    "this is not a cpis upload state file; name another with --state",
                )
            })?),
        };
        let mut done = BTreeMap::new();
        for (i, line) in lines.enumerate() {
            let batch: BatchDone = serde_json::from_str(line).map_err(|e| {
                CliError::file(
                    path,
                    format!("line {} of the upload state is damaged: {e}", i + 2),
                )
            })?;
            done.insert(batch.batch, batch);
        }
        let opened = match found {
            None => Opened::New,
            Some(found) if found == header => Opened::Resumed,
            Some(found) if done.len() >= found.batches => Opened::Replaced,
            Some(_) => {
                return Err(CliError::file(
                    path,
                    format!(
                        "an unfinished upload of another version of this input (or with another --batch-size) \
                         is recorded here ({} of its batches answered). Run it to the end with the same file and \
                         options, or delete {} to send this file from the start",
                        done.len(),
                        path.display()
                    ),
                ));
            }
        };
        if opened != Opened::Resumed {
            done.clear();
            file.clear()?;
            file.append_synced(&line(&header))?;
        }
        Ok((Self { file, header, done }, opened))
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    pub fn path(&self) -> &Path {
        self.file.path()
    }

    pub fn done(&self) -> &BTreeMap<usize, BatchDone> {
        &self.done
    }

    /// Records an answered batch durably.
    pub fn record(&mut self, batch: BatchDone) -> Result<(), CliError> {
        self.file.append_synced(&line(&batch))?;
        self.done.insert(batch.batch, batch);
        Ok(())
    }
}

fn line<T: Serialize>(value: &T) -> String {
    let mut text = serde_json::to_string(value).expect("state lines serialise");
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn done(batch: usize) -> BatchDone {
        BatchDone {
            batch,
            accepted: 1,
            applied: BTreeMap::from([("created".to_string(), 1)]),
            rejects: vec![ServerReject {
                line: 7,
                problem: Problem::new("nhs_number", "invalid_nhs_number", "bad"),
            }],
        }
    }

    #[test]
    fn answered_batches_are_found_again_by_the_next_run() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state");
        let header = Header::new("abc".into(), 500, 3);
        let (mut journal, opened) = Journal::open(&path, header.clone()).unwrap();
        assert_eq!(opened, Opened::New);
        journal.record(done(2)).unwrap();
        journal.record(done(0)).unwrap();
        drop(journal);
        // A crash in the middle of writing the next line leaves a torn line: ignored.
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str("{\"batch\":1,\"acc");
        std::fs::write(&path, text).unwrap();
        let (journal, opened) = Journal::open(&path, header).unwrap();
        assert_eq!(opened, Opened::Resumed);
        assert_eq!(journal.done().keys().copied().collect::<Vec<_>>(), [0, 2]);
        assert_eq!(journal.done()[&2], done(2));
    }

    #[test]
    fn another_input_replaces_a_finished_upload_and_is_refused_over_an_unfinished_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state");
        let (mut journal, _) = Journal::open(&path, Header::new("abc".into(), 500, 2)).unwrap();
        journal.record(done(0)).unwrap();
        drop(journal);
        let err = Journal::open(&path, Header::new("def".into(), 500, 2))
            .err()
            .unwrap();
        assert!(err.to_string().contains("an unfinished upload"), "{err}");
        let err = Journal::open(&path, Header::new("abc".into(), 100, 2))
            .err()
            .unwrap();
        assert!(err.to_string().contains("--batch-size"), "{err}");

        let (mut journal, _) = Journal::open(&path, Header::new("abc".into(), 500, 2)).unwrap();
        journal.record(done(1)).unwrap();
        drop(journal);
        let (journal, opened) = Journal::open(&path, Header::new("def".into(), 500, 2)).unwrap();
        assert_eq!((opened, journal.done().len()), (Opened::Replaced, 0));
        drop(journal);
        let (_, opened) = Journal::open(&path, Header::new("def".into(), 500, 2)).unwrap();
        assert_eq!(opened, Opened::Resumed);
    }

    #[test]
    fn a_file_that_is_not_a_state_file_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plans.csv");
        std::fs::write(&path, "case_ref,plan_type\n").unwrap();
        let err = Journal::open(&path, Header::new("abc".into(), 500, 2))
            .err()
            .unwrap();
        assert!(
            err.to_string().contains("not a cpis upload state file"),
            "{err}"
        );
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "case_ref,plan_type\n"
        );
        std::fs::write(&path, "{\"cpis_upload_state\":1,\"input_sha256\":\"abc\",\"batch_size\":500,\"batches\":2}\nnot json\n").unwrap();
        let err = Journal::open(&path, Header::new("abc".into(), 500, 2))
            .err()
            .unwrap();
        assert!(
            err.to_string()
                .contains("line 2 of the upload state is damaged"),
            "{err}"
        );
    }
}
