//! Appending lines to a file so that they survive a crash: written, flushed and synced, and for
//! a new file its directory synced too (so that the file's name survives as well).

use crate::error::CliError;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// A file opened for appending whole lines.
pub struct AppendFile {
    path: PathBuf,
    file: File,
    /// Created by this open: its directory is synced with the first sync.
    new: bool,
}

impl AppendFile {
    /// Opens (or creates) the file and returns it with its current text. A last line without
    /// its newline (a write cut short by a crash) is cut off: nothing that was synced is lost,
    /// and what follows starts on a line of its own.
    pub fn open(path: &Path) -> Result<(Self, String), CliError> {
        let new = !path.exists();
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .map_err(|e| CliError::file(path, format!("cannot open: {e}")))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)
            .map_err(|e| CliError::file(path, format!("cannot read: {e}")))?;
        let whole = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        if whole < bytes.len() {
            file.set_len(whole as u64)
                .and_then(|()| file.seek(SeekFrom::End(0)).map(|_| ()))
                .map_err(|e| {
                    CliError::file(path, format!("cannot cut off a torn last line: {e}"))
                })?;
            eprintln!(
                "cpis: {}: cut off an unfinished last line ({} bytes) left by an interrupted run",
                path.display(),
                bytes.len() - whole
            );
            bytes.truncate(whole);
        }
        let text = String::from_utf8(bytes)
            .map_err(|_| CliError::file(path, "the file is not UTF-8 text"))?;
        Ok((
            Self {
                path: path.to_path_buf(),
                file,
                new,
            },
            text,
        ))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Empties the file (to start it again).
    pub fn clear(&mut self) -> Result<(), CliError> {
        self.file
            .set_len(0)
            .map_err(|e| CliError::file(&self.path, format!("cannot empty: {e}")))
    }

    /// Appends `text` (whole lines) and makes it durable before returning.
    pub fn append_synced(&mut self, text: &str) -> Result<(), CliError> {
        let fail = |e: std::io::Error| CliError::file(&self.path, format!("cannot write: {e}"));
        self.file.write_all(text.as_bytes()).map_err(fail)?;
        self.file.flush().map_err(fail)?;
        self.file.sync_all().map_err(fail)?;
        if self.new {
            sync_directory(&self.path)?;
            self.new = false;
        }
        Ok(())
    }
}

/// Syncs the directory holding `path`, so that a newly created file's name is durable.
pub fn sync_directory(path: &Path) -> Result<(), CliError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| CliError::file(dir, format!("cannot sync the directory: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_survive_reopening_and_a_torn_last_line_is_cut() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.jsonl");
        let (mut f, text) = AppendFile::open(&path).unwrap();
        assert_eq!(text, "");
        f.append_synced("one\ntwo\n").unwrap();
        drop(f);
        std::fs::write(&path, "one\ntwo\nthr").unwrap();
        let (mut f, text) = AppendFile::open(&path).unwrap();
        assert_eq!(text, "one\ntwo\n");
        f.append_synced("three\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "one\ntwo\nthree\n");
        f.clear().unwrap();
        f.append_synced("x\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "x\n");
    }

    #[test]
    fn a_file_that_cannot_be_opened_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing-dir/out.jsonl");
        let err = AppendFile::open(&path).err().unwrap();
        assert!(
            err.to_string()
                .contains("missing-dir/out.jsonl: cannot open"),
            "{err}"
        );
    }
}
