//! Reading `spin.toml` (manifest version 2): the parts a Spin HTTP app needs to run.
//!
//! Spin's own loader accepts much more (OCI sources, dependencies, profiles, other
//! triggers). This reader takes what the CP-IS app uses and refuses, with a clear error,
//! the few things that would change behaviour if silently ignored (component sources
//! given by URL, mounted files, inline trigger components, static responses). Fields
//! that only matter to `spin build`/`spin deploy` (`build`, `description`, ...) are
//! ignored, as Spin ignores them at run time.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};
use serde::Deserialize;

use crate::variables::{self, VariableDecl};

/// An HTTP application as described by its manifest.
#[derive(Debug, Clone)]
pub struct AppManifest {
    /// `[application] name`.
    pub name: String,
    /// `[application] version`.
    pub version: String,
    /// Application variables (`[variables]`), by name.
    pub variables: BTreeMap<String, VariableDecl>,
    /// HTTP routes in manifest order; a route written twice keeps its last component,
    /// as in Spin.
    pub routes: Vec<HttpRoute>,
    /// The components that some HTTP trigger refers to, by id.
    pub components: BTreeMap<String, ComponentDecl>,
}

/// One `[[trigger.http]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRoute {
    /// The route exactly as written, e.g. `/api/v1/plans/...`.
    pub route: String,
    /// The component id that handles it.
    pub component: String,
}

/// One `[component.<id>]` table.
#[derive(Debug, Clone)]
pub struct ComponentDecl {
    /// Absolute path of the component's Wasm file (`source` is relative to the manifest).
    pub source: PathBuf,
    /// Store labels the component may open (`key_value_stores`).
    pub key_value_stores: Vec<String>,
    /// `[component.<id>.variables]`: config key → template such as `"{{ admin_token }}"`.
    pub variables: BTreeMap<String, String>,
    /// `environment`: WASI environment variables.
    pub environment: BTreeMap<String, String>,
}

impl AppManifest {
    /// Reads and checks a manifest file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading Spin manifest {}", path.display()))?;
        let base = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        Self::parse(&text, &base).with_context(|| format!("in Spin manifest {}", path.display()))
    }

    /// Parses manifest text; relative component sources are resolved against `base_dir`.
    pub fn parse(text: &str, base_dir: &Path) -> Result<Self> {
        let raw: RawManifest = toml::from_str(text).context("parsing TOML")?;
        ensure!(
            raw.spin_manifest_version == 2,
            "spin_manifest_version must be 2 (found {})",
            raw.spin_manifest_version
        );

        let mut variables = BTreeMap::new();
        for (name, var) in raw.variables {
            variables::validate_name(&name).with_context(|| format!("[variables] {name}"))?;
            // Spin's loader: "must be `required` OR have a `default`" (exactly one).
            ensure!(
                var.required ^ var.default.is_some(),
                "variable {name:?} must be `required` OR have a `default`"
            );
            variables.insert(
                name,
                VariableDecl {
                    default: var.default,
                    required: var.required,
                    secret: var.secret,
                },
            );
        }

        let mut routes: Vec<HttpRoute> = Vec::new();
        let http_triggers = raw.trigger.get("http").cloned().unwrap_or_default();
        for (index, trigger) in http_triggers.into_iter().enumerate() {
            let trigger: RawHttpTrigger = trigger
                .try_into()
                .with_context(|| format!("[[trigger.http]] number {}", index + 1))?;
            ensure!(
                trigger.static_response.is_none(),
                "[[trigger.http]] number {}: static_response is not supported by the test host",
                index + 1
            );
            let component = match trigger.component {
                Some(toml::Value::String(id)) => id,
                Some(_) => bail!(
                    "[[trigger.http]] number {}: inline components are not supported by the test host; \
                     declare the component in its own [component.<id>] table",
                    index + 1
                ),
                None => bail!("[[trigger.http]] number {}: no component", index + 1),
            };
            let route = match trigger.route {
                toml::Value::String(route) => route,
                // `route = { private = true }`: reachable only by service chaining, which
                // this host does not offer; such a trigger is simply not routed.
                toml::Value::Table(t) if t.get("private") == Some(&toml::Value::Boolean(true)) => {
                    continue;
                }
                other => bail!(
                    "[[trigger.http]] number {}: route must be a string or {{ private = true }}, found {other}",
                    index + 1
                ),
            };
            // A route written twice: the later entry wins, as in Spin's router.
            if let Some(existing) = routes.iter_mut().find(|r| r.route == route) {
                existing.component = component;
            } else {
                routes.push(HttpRoute { route, component });
            }
        }

        let mut components = BTreeMap::new();
        for route in &routes {
            if components.contains_key(&route.component) {
                continue;
            }
            let raw_component = raw.component.get(&route.component).with_context(|| {
                format!(
                    "route {:?} refers to component {:?}, which has no [component.{}] table",
                    route.route, route.component, route.component
                )
            })?;
            let decl = component_decl(&route.component, raw_component, base_dir, &variables)?;
            components.insert(route.component.clone(), decl);
        }

        Ok(Self {
            name: raw.application.name,
            version: raw.application.version,
            variables,
            routes,
            components,
        })
    }
}

fn component_decl(
    id: &str,
    raw: &RawComponent,
    base_dir: &Path,
    app_variables: &BTreeMap<String, VariableDecl>,
) -> Result<ComponentDecl> {
    let source = match &raw.source {
        toml::Value::String(path) => base_dir.join(path),
        _ => bail!(
            "[component.{id}] source must be a local file path (URL and registry sources are not supported by the test host)"
        ),
    };
    ensure!(
        raw.files.as_ref().is_none_or(|f| f.is_empty()),
        "[component.{id}] files are not supported by the test host"
    );
    for (key, template) in &raw.variables {
        variables::validate_name(key)
            .with_context(|| format!("[component.{id}.variables] {key}"))?;
        variables::check_template(template, app_variables)
            .with_context(|| format!("[component.{id}.variables] {key} = {template:?}"))?;
    }
    Ok(ComponentDecl {
        source,
        key_value_stores: raw.key_value_stores.clone(),
        variables: raw.variables.clone(),
        environment: raw.environment.clone(),
    })
}

#[derive(Deserialize)]
struct RawManifest {
    spin_manifest_version: i64,
    application: RawApplication,
    #[serde(default)]
    variables: BTreeMap<String, RawVariable>,
    #[serde(default)]
    trigger: BTreeMap<String, Vec<toml::Value>>,
    #[serde(default)]
    component: BTreeMap<String, RawComponent>,
}

#[derive(Deserialize)]
struct RawApplication {
    name: String,
    #[serde(default)]
    version: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVariable {
    #[serde(default)]
    required: bool,
    #[serde(default)]
    default: Option<String>,
    #[serde(default)]
    secret: bool,
    #[serde(default)]
    #[allow(dead_code)]
    description: Option<String>,
}

#[derive(Deserialize)]
struct RawHttpTrigger {
    route: toml::Value,
    component: Option<toml::Value>,
    static_response: Option<toml::Value>,
}

#[derive(Deserialize)]
struct RawComponent {
    source: toml::Value,
    // Spin accepts both spellings of list fields (`key_value_stores`, `key-value-stores`).
    #[serde(default, alias = "key-value-stores")]
    key_value_stores: Vec<String>,
    #[serde(default)]
    variables: BTreeMap<String, String>,
    #[serde(default)]
    environment: BTreeMap<String, String>,
    #[serde(default)]
    files: Option<Vec<toml::Value>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    const APP: &str = r#"
spin_manifest_version = 2
[application]
name = "demo"
version = "1.2.3"

[variables]
token = { required = true, secret = true }
days = { default = "28" }

[[trigger.http]]
route = "/a/..."
component = "alpha"

[[trigger.http]]
route = "/a/exact"
component = "beta"

[[trigger.http]]
route = { private = true }
component = "beta"

[component.alpha]
source = "target/alpha.wasm"
key_value_stores = ["default"]
[component.alpha.variables]
token = "{{ token }}"
greeting = "days={{days}}!"
[component.alpha.build]
command = "cargo build"

[component.beta]
source = "/abs/beta.wasm"
"#;

    #[test]
    fn parses_routes_components_and_variables() {
        let m = AppManifest::parse(APP, Path::new("/app")).unwrap();
        assert_eq!(m.name, "demo");
        assert_eq!(
            m.routes,
            vec![
                HttpRoute {
                    route: "/a/...".into(),
                    component: "alpha".into()
                },
                HttpRoute {
                    route: "/a/exact".into(),
                    component: "beta".into()
                },
            ]
        );
        let alpha = &m.components["alpha"];
        assert_eq!(alpha.source, PathBuf::from("/app/target/alpha.wasm"));
        assert_eq!(alpha.key_value_stores, vec!["default".to_string()]);
        assert_eq!(alpha.variables["greeting"], "days={{days}}!");
        assert_eq!(m.components["beta"].source, PathBuf::from("/abs/beta.wasm"));
        assert!(m.variables["token"].required);
        assert_eq!(m.variables["days"].default.as_deref(), Some("28"));
    }

    #[test]
    fn rejects_bad_manifests() {
        let cases = [
            (APP.replace("version = 2", "version = 1"), "must be 2"),
            (
                APP.replace(
                    "{ default = \"28\" }",
                    "{ default = \"28\", required = true }",
                ),
                "`required` OR have a `default`",
            ),
            (APP.replace("{{ token }}", "{{ nope }}"), "unknown variable"),
            (APP.replace("{{ token }}", "{{ token"), "unmatched"),
            (
                APP.replace("component = \"alpha\"", "component = \"gamma\""),
                "no [component.gamma]",
            ),
            (
                APP.replace("\"target/alpha.wasm\"", "{ url = \"https://x\" }"),
                "local file path",
            ),
        ];
        for (text, expected) in cases {
            let err = format!(
                "{:#}",
                AppManifest::parse(&text, Path::new("/")).unwrap_err()
            );
            assert!(
                err.contains(expected),
                "{err:?} should contain {expected:?}"
            );
        }
    }

    #[test]
    fn later_duplicate_route_wins() {
        let text = APP.replace("route = \"/a/exact\"", "route = \"/a/...\"");
        let m = AppManifest::parse(&text, Path::new("/")).unwrap();
        assert_eq!(m.routes.len(), 1);
        assert_eq!(m.routes[0].component, "beta");
    }

    #[test]
    fn the_apps_own_manifest_is_accepted() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../spin.toml");
        if !path.exists() {
            return; // the crate was copied elsewhere
        }
        let m = AppManifest::load(&path).unwrap();
        assert!(!m.routes.is_empty());
        for route in &m.routes {
            let component = &m.components[&route.component];
            assert!(
                component.source.extension().is_some_and(|e| e == "wasm"),
                "{route:?}"
            );
        }
    }
}
