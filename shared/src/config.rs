//! Settings that come from Spin variables, read once per request by each component.

use crate::error::ApiError;
use crate::plan::VisibilityRules;
use time::Duration;

/// The variable names, as in `spin.toml`.
pub mod names {
    pub const ADMIN_TOKEN: &str = "admin_token";
    pub const CPP_LAC_VISIBLE_DAYS: &str = "cpp_lac_visible_days_after_end";
    pub const UCPP_VISIBLE_DAYS: &str = "ucpp_visible_days_after_end";
    pub const ALERT_GAP_GRACE_SECONDS: &str = "alert_gap_grace_seconds";
    pub const FHIR_BASE_URL: &str = "fhir_base_url";
    pub const STORE_TIMEOUT_MS: &str = "store_timeout_ms";
}

/// How long an alert feed waits for a reserved but unwritten entry before passing over it.
pub const DEFAULT_ALERT_GAP_GRACE: Duration = Duration::seconds(60);

/// How long a component waits for the store to answer a read before answering 503
/// `store_unavailable` (docs/operations.md, "When the store fails").
pub const DEFAULT_STORE_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(2000);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub visibility: VisibilityRules,
    /// The administrator's secret; only the component that serves `/api/v1/admin` is given it.
    pub admin_token: Option<String>,
    pub alert_gap_grace: Duration,
    /// The public FHIR base (`https://…/fhir/r4`, no trailing `/`) for absolute `fullUrl`s;
    /// `None` (the variable empty or not given): derived from each request.
    pub fhir_base_url: Option<String>,
    /// The bound on one store read: past it the read fails as `StoreError::Unavailable`.
    pub store_timeout: std::time::Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            visibility: VisibilityRules::default(),
            admin_token: None,
            alert_gap_grace: DEFAULT_ALERT_GAP_GRACE,
            fhir_base_url: None,
            store_timeout: DEFAULT_STORE_TIMEOUT,
        }
    }
}

impl Config {
    /// Reads the settings through `variable`, which returns `None` for a variable the component
    /// was not given: then the default applies.
    pub fn from_variables(variable: impl Fn(&str) -> Option<String>) -> Result<Self, ApiError> {
        let defaults = Self::default();
        let number = |name: &str, default: u32| -> Result<u32, ApiError> {
            match variable(name) {
                None => Ok(default),
                Some(text) => text.trim().parse().map_err(|_| {
                    ApiError::misconfigured(format!(
                        "variable {name} must be a whole number of days or seconds; it is {text:?}"
                    ))
                }),
            }
        };
        Ok(Self {
            visibility: VisibilityRules {
                cpp_lac_days_after_end: number(
                    names::CPP_LAC_VISIBLE_DAYS,
                    defaults.visibility.cpp_lac_days_after_end,
                )?,
                ucpp_days_after_end: number(
                    names::UCPP_VISIBLE_DAYS,
                    defaults.visibility.ucpp_days_after_end,
                )?,
            },
            admin_token: variable(names::ADMIN_TOKEN).filter(|t| !t.is_empty()),
            alert_gap_grace: Duration::seconds(
                number(
                    names::ALERT_GAP_GRACE_SECONDS,
                    defaults.alert_gap_grace.whole_seconds() as u32,
                )?
                .into(),
            ),
            fhir_base_url: fhir_base_url(variable(names::FHIR_BASE_URL))?,
            store_timeout: match variable(names::STORE_TIMEOUT_MS) {
                None => defaults.store_timeout,
                Some(_) => match number(names::STORE_TIMEOUT_MS, 0)? {
                    0 => {
                        return Err(ApiError::misconfigured(format!(
                            "variable {} must be at least 1 (milliseconds)",
                            names::STORE_TIMEOUT_MS
                        )));
                    }
                    ms => std::time::Duration::from_millis(ms.into()),
                },
            },
        })
    }
}

/// An absolute `http(s)` URL with no query or fragment; a trailing `/` is dropped.
fn fhir_base_url(text: Option<String>) -> Result<Option<String>, ApiError> {
    let Some(text) = text.map(|t| t.trim().trim_end_matches('/').to_string()) else {
        return Ok(None);
    };
    if text.is_empty() {
        return Ok(None);
    }
    let uri: Option<http::Uri> = text.parse().ok();
    let absolute = uri.as_ref().is_some_and(|uri| {
        matches!(uri.scheme_str(), Some("http" | "https"))
            && uri.authority().is_some()
            && uri.query().is_none()
            && !text.contains(['#', '@'])
    });
    if !absolute {
        return Err(ApiError::misconfigured(format!(
            "variable {} must be an absolute http(s) URL without query, such as \
             https://cpis.example.nhs.uk/fhir/r4; it is {text:?}",
            names::FHIR_BASE_URL
        )));
    }
    Ok(Some(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_apply_to_variables_not_given() {
        assert_eq!(Config::from_variables(|_| None).unwrap(), Config::default());
    }

    #[test]
    fn values_are_read_and_bad_ones_named() {
        let config = Config::from_variables(|name| match name {
            names::CPP_LAC_VISIBLE_DAYS => Some("365".into()),
            names::ADMIN_TOKEN => Some("s".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(config.visibility.cpp_lac_days_after_end, 365);
        assert_eq!(config.admin_token.as_deref(), Some("s"));
        assert_eq!(config.store_timeout, DEFAULT_STORE_TIMEOUT);
        let err = Config::from_variables(|name| {
            (name == names::UCPP_VISIBLE_DAYS).then(|| "four weeks".into())
        })
        .unwrap_err();
        assert_eq!(err.status, 500);
        assert!(err.message.contains(names::UCPP_VISIBLE_DAYS));
    }

    #[test]
    fn the_fhir_base_url_is_an_absolute_url_or_nothing() {
        let read = |value: &str| {
            let value = value.to_string();
            Config::from_variables(move |name| {
                (name == names::FHIR_BASE_URL).then(|| value.clone())
            })
        };
        assert_eq!(
            read("https://cpis.example/fhir/r4/")
                .unwrap()
                .fhir_base_url
                .as_deref(),
            Some("https://cpis.example/fhir/r4")
        );
        assert_eq!(read("").unwrap().fhir_base_url, None);
        for bad in [
            "cpis.example/fhir/r4",
            "ftp://x/fhir",
            "https://x/fhir?a=1",
            "https://u@x/f",
            "/fhir/r4",
        ] {
            let err = read(bad).unwrap_err();
            assert!(
                err.message.contains(names::FHIR_BASE_URL),
                "{bad}: {}",
                err.message
            );
        }
    }

    #[test]
    fn store_timeout_is_read_in_milliseconds_and_zero_refused() {
        let config =
            Config::from_variables(|name| (name == names::STORE_TIMEOUT_MS).then(|| "750".into()))
                .unwrap();
        assert_eq!(config.store_timeout, std::time::Duration::from_millis(750));
        let err =
            Config::from_variables(|name| (name == names::STORE_TIMEOUT_MS).then(|| "0".into()))
                .unwrap_err();
        assert_eq!(err.status, 500);
        assert!(err.message.contains(names::STORE_TIMEOUT_MS));
    }
}
