//! What can go wrong, and the exit status each kind gives (documented in docs/cli.md).

use std::fmt;
use std::path::{Path, PathBuf};

/// Exit statuses of `cpis`.
pub mod exit {
    /// Everything was done (and, for an upload, every record was accepted).
    pub const OK: u8 = 0;
    /// An upload finished but some rows were rejected (see the rejects file).
    pub const REJECTED: u8 = 1;
    /// Bad usage or configuration: a flag, an argument, the address or the credential.
    pub const USAGE: u8 = 2;
    /// CP-IS answered with an error.
    pub const API: u8 = 3;
    /// CP-IS could not be reached (after the retries), or answered with something other than
    /// CP-IS's JSON.
    pub const UNREACHABLE: u8 = 4;
    /// A local file could not be read or written, or is not what `cpis` expects.
    pub const FILE: u8 = 5;
}

/// An error body of the API, `{"error": {"code", "field", "message"}}`, with its status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiFailure {
    pub status: u16,
    pub code: String,
    pub field: Option<String>,
    pub message: String,
}

impl ApiFailure {
    /// What to do about it, where the code says.
    pub fn hint(&self) -> Option<&'static str> {
        Some(match self.code.as_str() {
            "unauthenticated" => {
                "check the credential: CPIS_TOKEN (or --token) must be a current token for this CP-IS"
            }
            "forbidden" => {
                "this credential's organisation may not do this (an LA token for LA commands, a care setting's for `flag`, the administrator's for `admin`)"
            }
            "store_unavailable" => {
                "CP-IS's store failed; nothing was half-done: run the same command again"
            }
            "body_too_large" => "send fewer records per batch (--batch-size)",
            "not_found" if self.field.is_none() => {
                "no such endpoint: check CPIS_URL, or this CP-IS may be older than this cpis"
            }
            "organisation_mismatch" => {
                "this ODS code is registered with another name or kind: give the same ones"
            }
            _ => return None,
        })
    }
}

impl fmt::Display for ApiFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CP-IS answered {} {}", self.status, self.code)?;
        if let Some(field) = &self.field {
            write!(f, " (field {field})")?;
        }
        write!(f, ": {}", self.message)?;
        if let Some(hint) = self.hint() {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Api(ApiFailure),
    #[error("could not reach CP-IS at {url}: {message}")]
    Unreachable { url: String, message: String },
    #[error("{}: {message}", path.display())]
    File { path: PathBuf, message: String },
}

impl CliError {
    pub fn file(path: &Path, message: impl fmt::Display) -> Self {
        Self::File {
            path: path.to_path_buf(),
            message: message.to_string(),
        }
    }

    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Usage(_) => exit::USAGE,
            Self::Api(_) => exit::API,
            Self::Unreachable { .. } => exit::UNREACHABLE,
            Self::File { .. } => exit::FILE,
        }
    }

    /// Worth sending the same request again: the network, or a store that failed.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Unreachable { .. } => true,
            Self::Api(failure) => matches!(failure.status, 502..=504),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(status: u16, code: &str, field: Option<&str>) -> ApiFailure {
        ApiFailure {
            status,
            code: code.into(),
            field: field.map(Into::into),
            message: "the message".into(),
        }
    }

    #[test]
    fn api_failures_name_status_code_field_message_and_a_hint() {
        let text = failure(401, "unauthenticated", Some("authorization")).to_string();
        assert!(text.starts_with(
            "CP-IS answered 401 unauthenticated (field authorization): the message\n  hint: check the credential"
        ), "{text}");
        assert_eq!(
            failure(400, "invalid_field", None).to_string(),
            "CP-IS answered 400 invalid_field: the message"
        );
    }

    #[test]
    fn only_the_network_and_a_failed_store_are_retried() {
        assert!(CliError::Api(failure(503, "store_unavailable", None)).is_transient());
        assert!(
            CliError::Unreachable {
                url: "u".into(),
                message: "m".into()
            }
            .is_transient()
        );
        assert!(!CliError::Api(failure(400, "invalid_field", None)).is_transient());
        assert!(!CliError::Api(failure(500, "store_corrupt", None)).is_transient());
        assert_eq!(CliError::Usage("x".into()).exit_code(), exit::USAGE);
    }
}
