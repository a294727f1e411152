//! What the components write to stdout/stderr, and the failures the host saw.
//!
//! Spin shows guest output on its terminal; a test wants to read it instead (a panic
//! message is only ever printed there), so the host keeps it in memory, tagged by
//! component, and can echo it to the test process's stderr.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};

/// Keep at most this much guest output (the oldest is dropped first).
const MAX_OUTPUT_BYTES: usize = 4 * 1024 * 1024;

/// Which standard stream a guest wrote to.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Stream {
    Stdout,
    Stderr,
}

/// All guest output of one app.
#[derive(Clone)]
pub(crate) struct GuestOutput {
    inner: Arc<Mutex<Vec<u8>>>,
    echo: bool,
}

impl GuestOutput {
    pub fn new(echo: bool) -> Self {
        Self {
            inner: Arc::default(),
            echo,
        }
    }

    pub fn writer(&self, component: &str, stream: Stream) -> GuestWriter {
        GuestWriter {
            output: self.clone(),
            prefix: Arc::from(format!(
                "[{component} {}] ",
                match stream {
                    Stream::Stdout => "stdout",
                    Stream::Stderr => "stderr",
                }
            )),
        }
    }

    pub fn text(&self) -> String {
        let bytes = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        String::from_utf8_lossy(&bytes).into_owned()
    }

    fn append(&self, prefix: &str, data: &[u8]) {
        let text = String::from_utf8_lossy(data);
        let mut tagged = String::new();
        for line in text.split_inclusive('\n') {
            tagged.push_str(prefix);
            tagged.push_str(line);
        }
        if self.echo {
            eprint!("{tagged}");
        }
        let mut buf = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        buf.extend_from_slice(tagged.as_bytes());
        if buf.len() > MAX_OUTPUT_BYTES {
            let excess = buf.len() - MAX_OUTPUT_BYTES;
            buf.drain(..excess);
        }
    }
}

/// The `stdout`/`stderr` given to one instance.
#[derive(Clone)]
pub(crate) struct GuestWriter {
    output: GuestOutput,
    prefix: Arc<str>,
}

impl IsTerminal for GuestWriter {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestWriter {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl AsyncWrite for GuestWriter {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.output.append(&self.prefix, buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// A request the host answered with 500 because the component failed, or an instance
/// that ended with an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The component's id in the manifest.
    pub component: String,
    /// `METHOD path` of the request, or `None` when an instance failed outside any one
    /// request (for example after its response was sent, or with several in flight).
    pub request: Option<String>,
    /// The error, with its causes (a trap's message and backtrace).
    pub message: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.request {
            Some(r) => write!(
                f,
                "component {:?} failed on {r}: {}",
                self.component, self.message
            ),
            None => write!(
                f,
                "an instance of component {:?} failed: {}",
                self.component, self.message
            ),
        }
    }
}

/// An error as one text: its root cause first (the trap, say), then the whole chain
/// (with the Wasm backtrace, when there is one).
pub(crate) fn describe(error: anyhow::Error) -> String {
    let root = error.root_cause().to_string();
    let chain = format!("{error:#}");
    if chain == root {
        root
    } else {
        format!("{root}\n{chain}")
    }
}

/// The failures of one app.
#[derive(Clone, Default)]
pub(crate) struct FailureLog {
    inner: Arc<Mutex<Vec<Failure>>>,
}

impl FailureLog {
    pub fn record(&self, failure: Failure) {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(failure);
    }

    pub fn all(&self) -> Vec<Failure> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn clear(&self) {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }
}
