//! Spin application variables and the component config built from them.
//!
//! Spin resolves `[variables]` through providers: here, like a plain `spin up`, the values
//! come from `SPIN_VARIABLE_<UPPERCASE NAME>` in the environment, then the manifest
//! `default`. [`crate::HostOptions::variables`] act as a provider in front of the
//! environment, so a test can set a value without touching the process environment.
//! Each component sees only its own `[component.<id>.variables]`, whose values are
//! templates like `"{{ admin_token }}"` over the application variables.
//!
//! Differences from Spin: values are resolved once, when the app starts (Spin asks its
//! providers on every read), and Spin's env provider also reads a `.env` file, which this
//! host does not.

use std::collections::{BTreeMap, HashMap};

use anyhow::{Context, Result, bail, ensure};

/// One `[variables]` entry of the manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VariableDecl {
    /// `default`, used when no provider has a value.
    pub default: Option<String>,
    /// `required = true`: startup fails when no provider has a value.
    pub required: bool,
    /// `secret = true`: informational here.
    pub secret: bool,
}

/// Checks a variable or config key name with Spin's rules: lower-case ASCII letters, digits
/// and single underscores, starting with a letter and ending with a letter or digit.
pub fn validate_name(name: &str) -> Result<()> {
    let reason = if name.is_empty() {
        "must not be empty"
    } else if !name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        "may contain only lower-case letters, numbers, and underscores"
    } else if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        "must start with a lowercase ASCII letter"
    } else if !name.ends_with(|c: char| c.is_ascii_alphanumeric()) {
        "must end with a lowercase ASCII letter or digit"
    } else if name.contains("__") {
        "must not contain multiple consecutive underscores"
    } else {
        return Ok(());
    };
    bail!("invalid variable name {name:?}: {reason}")
}

/// A piece of a `{{ variable }}` template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Variable(String),
}

/// Splits a template into literals and `{{ name }}` references (names trimmed), as Spin
/// does: no escaping, and an unmatched `{{` is an error.
fn parse_template(template: &str) -> Result<Vec<Part>> {
    let mut parts = Vec::new();
    let mut rest = template;
    while !rest.is_empty() {
        if let Some(after_open) = rest.strip_prefix("{{") {
            let (expr, after) = after_open
                .split_once("}}")
                .context("unmatched '{{' in template")?;
            parts.push(Part::Variable(expr.trim().to_string()));
            rest = after;
        } else {
            let end = rest.find("{{").unwrap_or(rest.len());
            parts.push(Part::Literal(rest[..end].to_string()));
            rest = &rest[end..];
        }
    }
    Ok(parts)
}

/// Checks that a component config template parses and names only declared variables.
pub fn check_template(template: &str, app: &BTreeMap<String, VariableDecl>) -> Result<()> {
    for part in parse_template(template)? {
        if let Part::Variable(name) = part {
            ensure!(app.contains_key(&name), "unknown variable {name:?}");
        }
    }
    Ok(())
}

/// Resolves every application variable: `overrides` first, then the environment
/// (`SPIN_VARIABLE_<NAME>`), then the default. Like Spin at startup, a required variable
/// that no provider resolves is an error, even if no component uses it.
pub fn resolve_app_variables(
    decls: &BTreeMap<String, VariableDecl>,
    overrides: &HashMap<String, String>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<BTreeMap<String, String>> {
    // Overrides may be written like the variable (`admin_token`) or like its environment
    // variable suffix (`ADMIN_TOKEN`); a name the manifest does not declare is a mistake in
    // the test, so it is reported rather than ignored.
    let mut by_name: HashMap<String, &String> = HashMap::new();
    for (name, value) in overrides {
        let name = name.to_ascii_lowercase();
        ensure!(
            decls.contains_key(&name),
            "HostOptions.variables sets {name:?}, which the manifest's [variables] does not declare"
        );
        by_name.insert(name, value);
    }

    let mut resolved = BTreeMap::new();
    let mut missing = Vec::new();
    for (name, decl) in decls {
        let value = by_name
            .get(name)
            .map(|v| v.to_string())
            .or_else(|| env(&env_var_name(name)))
            .or_else(|| decl.default.clone());
        match value {
            Some(v) => {
                resolved.insert(name.clone(), v);
            }
            None => missing.push(name.clone()),
        }
    }
    if !missing.is_empty() {
        let hints: Vec<String> = missing.iter().map(|n| env_var_name(n)).collect();
        bail!(
            "no provider resolved required variable(s) {missing:?}: set {} or HostOptions.variables",
            hints.join(", ")
        );
    }
    Ok(resolved)
}

/// The environment variable Spin's default provider reads for a variable.
pub fn env_var_name(name: &str) -> String {
    format!("SPIN_VARIABLE_{}", name.to_ascii_uppercase())
}

/// Expands a component's `[component.<id>.variables]` templates over resolved values.
pub fn component_config(
    templates: &BTreeMap<String, String>,
    app: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>> {
    let mut config = BTreeMap::new();
    for (key, template) in templates {
        let mut value = String::new();
        for part in parse_template(template)? {
            match part {
                Part::Literal(s) => value.push_str(&s),
                Part::Variable(name) => value.push_str(
                    app.get(&name)
                        .with_context(|| format!("unknown variable {name:?} in {key:?}"))?,
                ),
            }
        }
        config.insert(key.clone(), value);
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decls() -> BTreeMap<String, VariableDecl> {
        BTreeMap::from([
            (
                "token".to_string(),
                VariableDecl {
                    default: None,
                    required: true,
                    secret: true,
                },
            ),
            (
                "days".to_string(),
                VariableDecl {
                    default: Some("28".into()),
                    required: false,
                    secret: false,
                },
            ),
        ])
    }

    #[test]
    fn names_follow_spin_rules() {
        for ok in ["a", "admin_token", "x1", "a_b_c"] {
            validate_name(ok).unwrap();
        }
        for bad in ["", "Admin", "1a", "a-b", "a_", "a__b", "_a"] {
            assert!(validate_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn templates_split_like_spin() {
        assert_eq!(parse_template("").unwrap(), vec![]);
        assert_eq!(
            parse_template("a-{{ x }}-b{{y}}").unwrap(),
            vec![
                Part::Literal("a-".into()),
                Part::Variable("x".into()),
                Part::Literal("-b".into()),
                Part::Variable("y".into()),
            ]
        );
        assert!(parse_template("{{ ok }} {{ broken").is_err());
    }

    #[test]
    fn precedence_is_override_then_env_then_default() {
        let env = |k: &str| (k == "SPIN_VARIABLE_DAYS").then(|| "7".to_string());
        let overrides = HashMap::from([("TOKEN".to_string(), "t".to_string())]);
        let v = resolve_app_variables(&decls(), &overrides, &env).unwrap();
        assert_eq!(v["token"], "t");
        assert_eq!(v["days"], "7");

        let overrides = HashMap::from([
            ("token".to_string(), "t".to_string()),
            ("days".to_string(), "1".to_string()),
        ]);
        let v = resolve_app_variables(&decls(), &overrides, &env).unwrap();
        assert_eq!(v["days"], "1");

        let v = resolve_app_variables(&decls(), &overrides, &|_| None).unwrap();
        assert_eq!(v["days"], "1");
    }

    #[test]
    fn required_without_value_fails() {
        let err = resolve_app_variables(&decls(), &HashMap::new(), &|_| None).unwrap_err();
        assert!(err.to_string().contains("SPIN_VARIABLE_TOKEN"), "{err}");
    }

    #[test]
    fn undeclared_override_fails() {
        let overrides = HashMap::from([("tokn".to_string(), "t".to_string())]);
        assert!(resolve_app_variables(&decls(), &overrides, &|_| None).is_err());
    }

    #[test]
    fn component_config_expands_templates() {
        let app = BTreeMap::from([("days".to_string(), "28".to_string())]);
        let templates = BTreeMap::from([
            ("plain".to_string(), "{{ days }}".to_string()),
            ("mixed".to_string(), "d={{days}}!".to_string()),
            ("literal".to_string(), "x".to_string()),
        ]);
        let c = component_config(&templates, &app).unwrap();
        assert_eq!(c["plain"], "28");
        assert_eq!(c["mixed"], "d=28!");
        assert_eq!(c["literal"], "x");
    }
}
