//! The one error type of the API: every failure becomes a status, a stable code, the field at
//! fault (if any) and a sentence for people, rendered by [`crate::api::error_response`].

use crate::nhs_number::NhsNumberError;
use crate::store::StoreError;
use http::StatusCode;
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiError {
    #[serde(skip)]
    pub status: StatusCode,
    /// Machine-readable, stable: clients branch on it.
    pub code: &'static str,
    /// The request field, header or path segment at fault.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    pub message: String,
    /// For 405: the methods the path answers, sent as the `Allow` header.
    #[serde(skip)]
    pub allow: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            field: None,
            message: message.into(),
            allow: None,
        }
    }

    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// A field that failed its check: 400 `invalid_field`.
    pub fn invalid(field: impl Into<String>, message: impl ToString) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_field",
            message.to_string(),
        )
        .with_field(field)
    }

    pub fn invalid_nhs_number(field: impl Into<String>, err: &NhsNumberError) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_nhs_number",
            format!("{err} (reason: {})", err.reason()),
        )
        .with_field(field)
    }

    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthenticated", message).with_field("authorization")
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 405, with the methods the path answers (also sent as the `Allow` header).
    pub fn method_not_allowed(allowed: &[&str]) -> Self {
        let allowed = allowed.join(", ");
        let mut error = Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("use {allowed}"),
        );
        error.allow = Some(allowed);
        error
    }

    /// The deployment is wrong (a variable has a bad value), not the request.
    pub fn misconfigured(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "misconfigured", message)
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Unavailable(_) | StoreError::Contention(_) => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "store_unavailable",
                format!("{err}. The request was not completed; sending it again is safe"),
            ),
            StoreError::Corrupt { .. } => Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "store_corrupt",
                err.to_string(),
            ),
        }
    }
}
