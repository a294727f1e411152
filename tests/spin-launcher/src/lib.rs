//! Runs the CP-IS app on the real Spin CLI, as a user would (`spin up`), for the end-to-end
//! suite and the benchmark:
//!
//! - [`spin_binary`] finds Spin: `CPIS_SPIN`, else `spin` on `PATH`;
//! - [`SpinApp::start`] starts `spin up` for a manifest with a fresh `--state-dir`, on a free
//!   127.0.0.1 port, with `SPIN_VARIABLE_*` set, and waits until it answers HTTP; dropping the
//!   [`SpinApp`] stops it, also when a test panics;
//! - [`RedisServer::start`] starts Debian's `redis-server` on a free port for the Redis store;
//! - a failure to start is an error that carries the process's log, never a silent pass.

use std::fmt;
use std::fs::{self, File};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long Spin and Redis get to answer after they are started. Spin compiles the components
/// on its first start on a machine (a few seconds on 2 cores), then takes them from its cache.
const START_TIMEOUT: Duration = Duration::from_secs(120);

/// Why a process could not be started, with its log.
#[derive(Debug)]
pub struct LaunchError {
    pub what: String,
    pub log: String,
}

impl fmt::Display for LaunchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}\n--- its log ---\n{}", self.what, self.log)
    }
}

impl std::error::Error for LaunchError {}

/// The Spin CLI to run: `CPIS_SPIN` if set, else `spin` on `PATH`; `None` if neither exists.
pub fn spin_binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("CPIS_SPIN").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(path));
    }
    find_on_path("spin")
}

/// The first `name` on `PATH` that is a file.
pub fn find_on_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// A port on 127.0.0.1 that was free a moment ago.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("the loopback interface hands out a free port")
}

/// A child process whose output goes to a log file; killed when dropped, with every process it
/// started (`spin up` runs the app in a child process of its own, `spin trigger http`).
struct Process {
    child: Child,
    log: PathBuf,
}

impl Process {
    fn spawn(mut command: Command, log: PathBuf) -> Result<Self, LaunchError> {
        let out = File::create(&log).map_err(|e| LaunchError {
            what: format!("cannot create the log file {}: {e}", log.display()),
            log: String::new(),
        })?;
        let err = out.try_clone().expect("a log file handle can be cloned");
        command
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            // A process group of its own, so that stopping it stops its children too.
            .process_group(0);
        let child = command.spawn().map_err(|e| LaunchError {
            what: format!("cannot run {:?}: {e}", command.get_program()),
            log: String::new(),
        })?;
        Ok(Self { child, log })
    }

    fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until `ready` holds, failing if the process exits first or time runs out.
    fn wait_until(&mut self, what: &str, ready: impl Fn() -> bool) -> Result<(), LaunchError> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(LaunchError {
                    what: format!("{what} exited while starting ({status})"),
                    log: self.log(),
                });
            }
            if ready() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(LaunchError {
                    what: format!("{what} did not answer within {START_TIMEOUT:?}"),
                    log: self.log(),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn stop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Creates an SQLite database file in write-ahead-log mode, with Debian's `sqlite3`.
fn make_wal_database(path: &Path) -> Result<(), LaunchError> {
    let output = Command::new("sqlite3")
        .arg(path)
        .arg("PRAGMA journal_mode=WAL;")
        .output()
        .map_err(|e| LaunchError {
            what: format!("cannot run sqlite3 (scripts/install-test-deps.sh installs it): {e}"),
            log: String::new(),
        })?;
    let mode = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() || mode.trim() != "wal" {
        return Err(LaunchError {
            what: format!("sqlite3 could not put {} in WAL mode", path.display()),
            log: format!("{mode}{}", String::from_utf8_lossy(&output.stderr)),
        });
    }
    Ok(())
}

/// True when something at `addr` answers an HTTP request with a status line.
fn answers_http(addr: SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    let mut head = [0u8; 12];
    stream.write_all(request.as_bytes()).is_ok()
        && stream.read_exact(&mut head).is_ok()
        && head.starts_with(b"HTTP/1.1 ")
}

/// Debian's `redis-server` on a free 127.0.0.1 port, its data in a directory of its own.
pub struct RedisServer {
    process: Option<Process>,
    port: u16,
    persistence: bool,
    dir: tempfile::TempDir,
}

impl RedisServer {
    /// Starts `redis-server`; with `persistence` it appends every write to a file and fsyncs
    /// it, so a stop and start keep the data; without, data lives only in memory.
    pub fn start(persistence: bool) -> Result<Self, LaunchError> {
        let dir = tempfile::tempdir().expect("a temporary directory can be made");
        let mut server = Self {
            process: None,
            port: free_port(),
            persistence,
            dir,
        };
        server.start_again()?;
        Ok(server)
    }

    /// `redis://127.0.0.1:PORT`, for Spin's runtime config.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the server (its data stays in its directory when persistence is on).
    pub fn stop(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.stop();
        }
    }

    /// Starts the server again on the same port and directory.
    pub fn start_again(&mut self) -> Result<(), LaunchError> {
        let binary = find_on_path("redis-server").ok_or_else(|| LaunchError {
            what: "redis-server is not on PATH: install Debian's redis-server package \
                   (scripts/test.sh does)"
                .into(),
            log: String::new(),
        })?;
        let mut command = Command::new(binary);
        command
            .arg("--port")
            .arg(self.port.to_string())
            .args(["--bind", "127.0.0.1", "--save", "", "--daemonize", "no"])
            .arg("--dir")
            .arg(self.dir.path());
        if self.persistence {
            command.args(["--appendonly", "yes", "--appendfsync", "always"]);
        } else {
            command.args(["--appendonly", "no"]);
        }
        let log = self.dir.path().join(format!("redis-{}.log", self.port));
        let mut process = Process::spawn(command, log)?;
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        process.wait_until("redis-server", || answers_ping(addr))?;
        self.process = Some(process);
        Ok(())
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        self.process.as_ref().map(Process::log).unwrap_or_default()
    }
}

/// True when a Redis server at `addr` answers `PING`.
fn answers_ping(addr: SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let mut reply = [0u8; 7];
    stream.write_all(b"PING\r\n").is_ok()
        && stream.read_exact(&mut reply).is_ok()
        && &reply == b"+PONG\r\n"
}

/// Which key-value store Spin is given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Store {
    /// Spin's default: SQLite in the state directory (rollback journal).
    Sqlite,
    /// SQLite in write-ahead-log mode, as docs/operations.md advises: a database file made in
    /// WAL mode (the mode stays with the file) and given to Spin through a runtime config file.
    SqliteWal,
    /// Redis at this URL, through a runtime config file.
    Redis(String),
}

/// What to run and how.
#[derive(Debug, Clone)]
pub struct SpinOptions {
    pub spin: PathBuf,
    /// The `spin.toml`.
    pub manifest: PathBuf,
    pub store: Store,
    /// Application variables, passed as `SPIN_VARIABLE_<NAME>`.
    pub variables: Vec<(String, String)>,
    /// More arguments for `spin up` (e.g. `--request-timeout`).
    pub extra_args: Vec<String>,
}

/// A running `spin up`; stopped when dropped. Its state directory lives as long as it does,
/// so [`SpinApp::restart`] comes back to the same data.
pub struct SpinApp {
    options: SpinOptions,
    process: Option<Process>,
    port: u16,
    state_dir: tempfile::TempDir,
    starts: u32,
}

impl SpinApp {
    /// Starts Spin with a fresh state directory and waits until it answers.
    pub fn start(options: SpinOptions) -> Result<Self, LaunchError> {
        let mut app = Self {
            options,
            process: None,
            port: 0,
            state_dir: tempfile::tempdir().expect("a temporary directory can be made"),
            starts: 0,
        };
        app.start_process()?;
        Ok(app)
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The state directory (`--state-dir`): the SQLite store and the component logs.
    pub fn state_dir(&self) -> &Path {
        self.state_dir.path()
    }

    /// The SQLite file of the default store (used when the store is [`Store::Sqlite`]).
    pub fn sqlite_path(&self) -> PathBuf {
        self.state_dir().join("sqlite_key_value.db")
    }

    /// Everything Spin and the components printed since the last start.
    pub fn log(&self) -> String {
        let spin = self.process.as_ref().map(Process::log).unwrap_or_default();
        let mut components = String::new();
        if let Ok(entries) = fs::read_dir(self.state_dir().join("logs")) {
            for entry in entries.flatten() {
                let text = fs::read_to_string(entry.path()).unwrap_or_default();
                if !text.is_empty() {
                    components.push_str(&format!("--- {} ---\n{text}", entry.path().display()));
                }
            }
        }
        format!("{spin}{components}")
    }

    /// Stops Spin and starts it again on the same state directory, store and port.
    pub fn restart(&mut self) -> Result<(), LaunchError> {
        self.stop();
        self.start_process()
    }

    /// Stops Spin; [`SpinApp::restart`] starts it again.
    pub fn stop(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.stop();
        }
    }

    fn start_process(&mut self) -> Result<(), LaunchError> {
        // A port that was free may be taken by the time Spin binds it: try a few.
        let mut last_error = None;
        for _ in 0..3 {
            if self.port == 0 || last_error.is_some() {
                self.port = free_port();
            }
            match self.try_start() {
                Ok(()) => return Ok(()),
                Err(e) if e.log.contains("Address already in use") => last_error = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last_error.expect("the loop ran"))
    }

    fn try_start(&mut self) -> Result<(), LaunchError> {
        let opts = &self.options;
        let dir = self.state_dir.path();
        let mut command = Command::new(&opts.spin);
        command
            .arg("up")
            .arg("--from")
            .arg(&opts.manifest)
            .arg("--listen")
            .arg(format!("127.0.0.1:{}", self.port))
            .arg("--state-dir")
            .arg(dir)
            .args(&opts.extra_args);
        let store_config = match &opts.store {
            Store::Sqlite => None,
            Store::SqliteWal => {
                let database = dir.join("cpis-kv.db");
                if !database.exists() {
                    make_wal_database(&database)?;
                }
                Some(format!(
                    "type = \"spin\"\npath = \"{}\"",
                    database.display()
                ))
            }
            Store::Redis(url) => Some(format!("type = \"redis\"\nurl = \"{url}\"")),
        };
        if let Some(store_config) = store_config {
            let config = dir.join("runtime-config.toml");
            fs::write(
                &config,
                format!("[key_value_store.default]\n{store_config}\n"),
            )
            .expect("the runtime config can be written");
            command.arg("--runtime-config-file").arg(config);
        }
        // Only the variables given: never the developer's or CI's own SPIN_VARIABLE_*.
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("SPIN_VARIABLE_") {
                command.env_remove(name);
            }
        }
        for (name, value) in &opts.variables {
            command.env(format!("SPIN_VARIABLE_{}", name.to_uppercase()), value);
        }
        self.starts += 1;
        let log = dir.join(format!("spin-{}.log", self.starts));
        let mut process = Process::spawn(command, log)?;
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        process.wait_until("spin up", || answers_http(addr))?;
        self.process = Some(process);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spin_that_cannot_start_fails_with_its_log() {
        let options = SpinOptions {
            spin: PathBuf::from("/bin/sh"),
            manifest: PathBuf::from("spin.toml"),
            store: Store::Sqlite,
            variables: vec![],
            extra_args: vec![],
        };
        // `/bin/sh up --from …` fails at once: the error says so and carries what it printed.
        let error = SpinApp::start(options).err().expect("it does not start");
        assert!(error.what.contains("exited while starting"), "{error}");
        assert!(!error.log.is_empty(), "the log is kept: {error}");
    }

    #[test]
    fn a_wal_database_is_made_in_wal_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kv.db");
        make_wal_database(&path).expect("sqlite3 makes it");
        let mode = Command::new("sqlite3")
            .arg(&path)
            .arg("PRAGMA journal_mode;")
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&mode.stdout).trim(), "wal");
    }

    #[test]
    fn stopping_a_process_stops_the_processes_it_started() {
        // As `spin up` starts `spin trigger http`: a child that would outlive its parent.
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("child.pid");
        let mut command = Command::new("sh");
        command.args([
            "-c",
            &format!("sleep 300 & echo $! > {}; wait", pid_file.display()),
        ]);
        let mut process = Process::spawn(command, dir.path().join("log")).unwrap();
        process
            .wait_until("sh", || {
                fs::read_to_string(&pid_file).is_ok_and(|p| p.ends_with('\n'))
            })
            .unwrap();
        let child = PathBuf::from(format!(
            "/proc/{}",
            fs::read_to_string(&pid_file).unwrap().trim()
        ));
        assert!(child.exists(), "the child runs");
        drop(process);
        let deadline = Instant::now() + Duration::from_secs(5);
        // Gone, or a zombie waiting to be reaped by whoever adopted it.
        let running = || {
            fs::read_to_string(child.join("stat"))
                .is_ok_and(|stat| stat.split_whitespace().nth(2).is_none_or(|s| s != "Z"))
        };
        while running() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(!running(), "the child was stopped with its parent");
    }

    #[test]
    fn redis_with_persistence_keeps_its_data_across_a_restart() {
        let mut redis = RedisServer::start(true).expect("redis-server starts");
        let addr = SocketAddr::from(([127, 0, 0, 1], redis.port()));
        let command = |text: &str| {
            let mut stream = TcpStream::connect(addr).expect("Redis answers");
            stream.write_all(text.as_bytes()).unwrap();
            let mut reply = [0u8; 64];
            let n = stream.read(&mut reply).unwrap();
            String::from_utf8_lossy(&reply[..n]).into_owned()
        };
        assert_eq!(command("SET launcher-test kept\r\n"), "+OK\r\n");
        redis.stop();
        assert!(TcpStream::connect(addr).is_err(), "stopped");
        redis.start_again().expect("redis-server starts again");
        assert_eq!(command("GET launcher-test\r\n"), "$4\r\nkept\r\n");
    }
}
