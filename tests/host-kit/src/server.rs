//! The HTTP front end: accepts connections, routes each request the way Spin's HTTP
//! trigger does, and passes it to the component.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use http::header::{CONNECTION, HOST};
use http::uri::{Authority, Scheme};
use http::{HeaderName, HeaderValue, Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Full, combinators::UnsyncBoxBody};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use wasmtime_wasi_http::handler::{ProxyHandler, TrapOrPanicError};

use crate::handler::{ComponentHandler, RequestTrace};
use crate::output::{Failure, FailureLog, describe};
use crate::routes::{RouteMatch, Router};

/// Error type of response bodies (a component's body stream can fail mid-way).
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// Response body type of the host.
pub(crate) type HostBody = UnsyncBoxBody<Bytes, BoxError>;

/// Spin's reserved path prefix.
const WELL_KNOWN_PREFIX: &str = "/.well-known/spin/";

/// The routing table and one request handler per component.
pub(crate) struct AppServer {
    pub name: String,
    pub version: String,
    pub router: Router,
    pub handlers: HashMap<String, ProxyHandler<ComponentHandler>>,
    pub failures: FailureLog,
}

/// Accepts connections until the runtime that runs it shuts down.
pub(crate) async fn serve(app: Arc<AppServer>, listener: TcpListener) {
    loop {
        let (stream, client) = match listener.accept().await {
            Ok(conn) => conn,
            // Out of file descriptors and the like: try again rather than stop serving.
            Err(_) => {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        // As Spin's listener: small responses go out at once, not after a delayed ACK.
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let app = app.clone();
                async move { Ok::<_, Infallible>(app.handle(req, client).await) }
            });
            // A client that goes away mid-request is not the host's problem.
            let _ = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

impl AppServer {
    /// Answers one request; never fails (errors become 500 responses, as in Spin).
    pub async fn handle(&self, req: Request<Incoming>, client: SocketAddr) -> Response<HostBody> {
        let label = format!("{} {}", req.method(), req.uri());
        let path = req.uri().path().to_string();

        if let Some(well_known) = path.strip_prefix(WELL_KNOWN_PREFIX) {
            return match well_known {
                "health" => text(StatusCode::OK, "OK"),
                "info" => text(
                    StatusCode::OK,
                    &format!(
                        "{{\"name\":{:?},\"version\":{:?}}}",
                        self.name, self.version
                    ),
                ),
                _ => empty(StatusCode::NOT_FOUND),
            };
        }

        let Some(route) = self.router.route(&path) else {
            return empty(StatusCode::NOT_FOUND);
        };
        let Some(handler) = self.handlers.get(&route.component) else {
            return self.fail(&route.component, &label, "no handler for component".into());
        };

        let req = match prepare_request(req, &route, client) {
            Ok(req) => req,
            // Spin answers 500 to a request it cannot turn into a component request
            // (no Host header, a header value that is not UTF-8).
            Err(e) => return self.fail(&route.component, &label, format!("{e:#}")),
        };

        let trace = RequestTrace::new(label.clone());
        match handler.handle(trace.clone(), req).await {
            Ok(response) => response.map(|body| body.map_err(BoxError::from).boxed_unsync()),
            // The instance died with this request in flight. Its worker records the
            // failure, with the trap's message, naming this request; wait for that so the
            // failure is on record by the time the client sees the 500.
            Err(e) if e.downcast_ref::<TrapOrPanicError>().is_some() => {
                let recorded = tokio::time::timeout(
                    std::time::Duration::from_secs(5),
                    trace.instance_failed.notified(),
                )
                .await;
                if recorded.is_ok() {
                    empty(StatusCode::INTERNAL_SERVER_ERROR)
                } else {
                    self.fail(&route.component, &label, describe(anyhow::Error::from(e)))
                }
            }
            Err(e) => self.fail(&route.component, &label, describe(anyhow::Error::from(e))),
        }
    }

    fn fail(&self, component: &str, request: &str, message: String) -> Response<HostBody> {
        self.failures.record(Failure {
            component: component.to_string(),
            request: Some(request.to_string()),
            message,
        });
        empty(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

/// Turns the incoming request into what Spin gives a WASIp3 component: an absolute URI
/// (`http://<Host header><path>`), the `Connection` header removed, and the `spin-*`
/// headers added.
fn prepare_request(
    req: Request<Incoming>,
    route: &RouteMatch,
    client: SocketAddr,
) -> Result<wasmtime_wasi_http::handler::Request> {
    let (mut parts, body) = req.into_parts();
    parts.headers.remove(CONNECTION);

    let header_authority = parts
        .headers
        .get(HOST)
        .map(|h| -> Result<Authority> {
            h.to_str()
                .context("'Host' header is not valid UTF-8")?
                .parse()
                .context("'Host' header contains an invalid authority")
        })
        .transpose()?;
    let mut uri = parts.uri.clone().into_parts();
    let authority = match (header_authority, uri.authority.take()) {
        (None, None) => bail!("no 'Host' header present in request"),
        (Some(a), None) | (None, Some(a)) => a,
        (Some(a), Some(b)) if a == b => a,
        (Some(_), Some(_)) => bail!("authority in 'Host' header does not match authority in URI"),
    };
    let host = authority.to_string();
    uri.scheme = Some(Scheme::HTTP);
    uri.authority = Some(authority);
    if uri.path_and_query.is_none() {
        uri.path_and_query = Some("/".parse()?);
    }
    parts.uri = Uri::from_parts(uri).context("building the request URI")?;

    let path_and_query = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".to_string());
    // Header values pass through as bytes, as Spin passes them: UTF-8 text such as an accented
    // user name reaches the component unchanged.
    for (name, value) in route.spin_headers("http", &host, &path_and_query, client) {
        parts.headers.insert(
            HeaderName::from_bytes(name.as_bytes())?,
            HeaderValue::from_str(&value)?,
        );
    }

    let body = body.map_err(wasmtime_wasi_http::Error::from).boxed_unsync();
    Ok(Request::from_parts(parts, body))
}

fn empty(status: StatusCode) -> Response<HostBody> {
    let mut response = Response::new(
        Full::new(Bytes::new())
            .map_err(|e| match e {})
            .boxed_unsync(),
    );
    *response.status_mut() = status;
    response
}

fn text(status: StatusCode, body: &str) -> Response<HostBody> {
    let mut response = Response::new(
        Full::new(Bytes::copy_from_slice(body.as_bytes()))
            .map_err(|e| match e {})
            .boxed_unsync(),
    );
    *response.status_mut() = status;
    response
}
