//! HTTP routing with Spin's rules, and the `spin-*` request headers Spin derives from it.
//!
//! Spin matches with the `routefinder` crate, so this does too: a route ending in `/...`
//! is a trailing wildcard, `:name` segments capture, and of several matching routes the
//! most specific wins (compared segment by segment: exact > `:param` > wildcard), which
//! makes an exact route beat a wildcard and the longest wildcard prefix win.

use std::net::SocketAddr;

use anyhow::{Result, anyhow};

use crate::manifest::HttpRoute;

/// A route table for one application.
pub struct Router {
    inner: routefinder::Router<usize>,
    entries: Vec<RouteEntry>,
}

#[derive(Debug, Clone)]
struct RouteEntry {
    component: String,
    /// The route as written in the manifest.
    raw: String,
    /// The route with the (always `/`) base applied, as Spin reports it.
    based: String,
}

/// The outcome of routing one path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteMatch {
    /// The component that handles the request.
    pub component: String,
    /// The route as written in the manifest (`spin-raw-component-route`).
    pub raw_route: String,
    /// The route with the base applied (`spin-matched-route`).
    pub based_route: String,
    /// The part of the path matched by a trailing wildcard (`spin-path-info`), empty for
    /// an exact route.
    pub path_info: String,
    /// Values of `:name` segments (`spin-path-match-<name>`).
    pub named: Vec<(String, String)>,
}

impl Router {
    /// Builds the table from the manifest's routes.
    pub fn build(routes: &[HttpRoute]) -> Result<Self> {
        let mut inner = routefinder::Router::new();
        let mut entries = Vec::new();
        for route in routes {
            let based = based_route(&route.route);
            let spec = match based.strip_suffix("/...") {
                Some(prefix) => format!("{prefix}/*"),
                None => based.clone(),
            };
            inner.add(spec, entries.len()).map_err(|e| {
                anyhow!(
                    "invalid route {:?} for component {:?}: {e}",
                    route.route,
                    route.component
                )
            })?;
            entries.push(RouteEntry {
                component: route.component.clone(),
                raw: route.route.clone(),
                based,
            });
        }
        Ok(Self { inner, entries })
    }

    /// Finds the component for a request path, or `None` (the host answers 404).
    pub fn route(&self, path: &str) -> Option<RouteMatch> {
        let best = self.inner.best_match(path)?;
        let entry = self.entries.get(*best.handler())?;
        let captures = best.captures();
        // Spin keeps the trailing slash that routefinder drops from the wildcard.
        let path_info = match captures.wildcard() {
            None => String::new(),
            Some(w) => match (w.is_empty(), path.ends_with('/')) {
                (true, false) => String::new(),
                (true, true) => "/".to_string(),
                (false, false) => format!("/{w}"),
                (false, true) => format!("/{w}/"),
            },
        };
        let named = captures
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Some(RouteMatch {
            component: entry.component.clone(),
            raw_route: entry.raw.clone(),
            based_route: entry.based.clone(),
            path_info,
            named,
        })
    }
}

/// Spin's route normalisation: make absolute, then drop one trailing slash (so `/` becomes
/// the empty route, which matches only `/`).
fn based_route(raw: &str) -> String {
    let absolute = if raw.starts_with('/') {
        raw.to_string()
    } else {
        format!("/{raw}")
    };
    match absolute.strip_suffix('/') {
        Some(s) => s.to_string(),
        None => absolute,
    }
}

impl RouteMatch {
    /// The headers Spin adds to every request it passes to a component, computed from the
    /// route, the request URI and the client's address.
    pub fn spin_headers(
        &self,
        scheme: &str,
        host: &str,
        path_and_query: &str,
        client: SocketAddr,
    ) -> Vec<(String, String)> {
        let component_route = self
            .raw_route
            .strip_suffix("/...")
            .unwrap_or(&self.raw_route)
            .to_string();
        let mut headers = vec![
            ("spin-path-info".to_string(), self.path_info.clone()),
            (
                "spin-full-url".to_string(),
                format!("{scheme}://{host}{path_and_query}"),
            ),
            ("spin-matched-route".to_string(), self.based_route.clone()),
            ("spin-base-path".to_string(), "/".to_string()),
            (
                "spin-raw-component-route".to_string(),
                self.raw_route.clone(),
            ),
            ("spin-component-route".to_string(), component_route),
            ("spin-client-addr".to_string(), client.to_string()),
        ];
        for (name, value) in &self.named {
            headers.push((
                format!("spin-path-match-{}", name.to_ascii_lowercase()).replace('_', "-"),
                value.clone(),
            ));
        }
        headers
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router(routes: &[(&str, &str)]) -> Router {
        let routes: Vec<HttpRoute> = routes
            .iter()
            .map(|(r, c)| HttpRoute {
                route: r.to_string(),
                component: c.to_string(),
            })
            .collect();
        Router::build(&routes).unwrap()
    }

    fn component(r: &Router, path: &str) -> Option<String> {
        r.route(path).map(|m| m.component)
    }

    #[test]
    fn exact_beats_wildcard_and_longest_prefix_wins() {
        let r = router(&[
            ("/...", "catch-all"),
            ("/api/...", "api"),
            ("/api/v1/plans/...", "plans"),
            ("/api/v1/plans/special", "special"),
        ]);
        assert_eq!(
            component(&r, "/api/v1/plans/special").as_deref(),
            Some("special")
        );
        assert_eq!(
            component(&r, "/api/v1/plans/special/x").as_deref(),
            Some("plans")
        );
        assert_eq!(component(&r, "/api/v1/plans").as_deref(), Some("plans"));
        assert_eq!(component(&r, "/api/v1/other").as_deref(), Some("api"));
        assert_eq!(component(&r, "/elsewhere").as_deref(), Some("catch-all"));
        assert_eq!(component(&r, "/").as_deref(), Some("catch-all"));
    }

    #[test]
    fn unmatched_paths_have_no_route() {
        let r = router(&[("/api/v1/access", "access"), ("/fhir/r4/...", "fhir")]);
        assert_eq!(component(&r, "/api/v1/access/more"), None);
        assert_eq!(component(&r, "/fhir/r"), None);
        assert_eq!(component(&r, "/"), None);
        assert_eq!(component(&r, "/fhir/r4").as_deref(), Some("fhir"));
    }

    #[test]
    fn path_info_keeps_trailing_slash_like_spin() {
        let r = router(&[("/foo/...", "foo"), ("/exact", "exact")]);
        let info = |p: &str| r.route(p).unwrap().path_info;
        assert_eq!(info("/foo"), "");
        assert_eq!(info("/foo/"), "/");
        assert_eq!(info("/foo/bar"), "/bar");
        assert_eq!(info("/foo/bar/"), "/bar/");
        assert_eq!(info("/foo/bar/baz"), "/bar/baz");
        assert_eq!(info("/exact"), "");
    }

    #[test]
    fn headers_match_spins() {
        let r = router(&[("/foo/...", "foo")]);
        let m = r.route("/foo/bar").unwrap();
        let h = m.spin_headers(
            "http",
            "127.0.0.1:3000",
            "/foo/bar?x=1",
            "127.0.0.1:5555".parse().unwrap(),
        );
        let get = |k: &str| h.iter().find(|(n, _)| n == k).unwrap().1.clone();
        assert_eq!(get("spin-path-info"), "/bar");
        assert_eq!(get("spin-full-url"), "http://127.0.0.1:3000/foo/bar?x=1");
        assert_eq!(get("spin-matched-route"), "/foo/...");
        assert_eq!(get("spin-raw-component-route"), "/foo/...");
        assert_eq!(get("spin-component-route"), "/foo");
        assert_eq!(get("spin-base-path"), "/");
        assert_eq!(get("spin-client-addr"), "127.0.0.1:5555");
    }

    #[test]
    fn named_segments_are_captured() {
        let r = router(&[("/users/:id/...", "users")]);
        let m = r.route("/users/42/posts").unwrap();
        assert_eq!(m.named, vec![("id".to_string(), "42".to_string())]);
        assert_eq!(m.path_info, "/posts");
    }
}
