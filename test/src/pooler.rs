//! The `odyssey` binary under test: config from a template, start, wait for its port,
//! signals, exit, and its logs; killed on drop.
//!
//! A config template is odyssey.conf text with placeholders the harness fills in:
//! [`PORT`] (the listen port it picked), [`LOG_FILE`], [`PID_FILE`] and [`DIR`] (the
//! pooler's temp dir). Templates must keep `daemonize no`: the harness owns the process.

use std::fs;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use crate::clients::{ConnParams, free_port};
use crate::command::{self, Output};
use crate::error::{Error, Result};
use crate::process::{self, Signal};
use crate::temp_dir::TempDir;

/// Placeholder for the listen port the harness picked.
pub const PORT: &str = "@PORT@";
/// Placeholder for the log file path (read back by [`Pooler::log`]).
pub const LOG_FILE: &str = "@LOG_FILE@";
/// Placeholder for the pid file path.
pub const PID_FILE: &str = "@PID_FILE@";
/// Placeholder for the pooler's temp dir (for extra files a test writes there).
pub const DIR: &str = "@DIR@";

/// How many free ports a start tries before giving up on "address in use".
const PORT_ATTEMPTS: usize = 3;

/// How to start a [`Pooler`].
#[derive(Debug, Clone)]
pub struct PoolerOptions {
    /// Bound on waiting for the listen port to accept.
    pub ready_timeout: Duration,
    /// Arguments before the config path.
    pub args: Vec<String>,
    /// Extra environment variables for the process (`ODYSSEY_SYSLOG_SOCKET`, ...).
    pub env: Vec<(String, String)>,
    /// The pooler is killed (SIGKILL) this long after its start if the test still runs: a
    /// client blocked on a hung pooler then sees its connection close and the test fails
    /// instead of hanging.
    pub deadline: Duration,
}

impl Default for PoolerOptions {
    fn default() -> PoolerOptions {
        PoolerOptions {
            ready_timeout: Duration::from_secs(10),
            args: Vec::new(),
            env: Vec::new(),
            deadline: Duration::from_secs(120),
        }
    }
}

/// A running `odyssey` process owned by one test; dropping it kills the process and removes
/// its directory (config, log, pid file, console output).
#[derive(Debug)]
pub struct Pooler {
    child: Child,
    port: u16,
    dir: TempDir,
    /// Dropped with the pooler, which disarms it.
    _watchdog: Watchdog,
}

/// Kills a process with SIGKILL when its deadline passes, unless dropped first.
#[derive(Debug)]
struct Watchdog {
    /// Dropping the sender wakes the thread, which then exits without killing.
    _disarm: mpsc::Sender<()>,
}

impl Watchdog {
    fn arm(pid: u32, deadline: Duration) -> Watchdog {
        let (disarm, disarmed) = mpsc::channel::<()>();
        thread::spawn(move || {
            if let Err(mpsc::RecvTimeoutError::Timeout) = disarmed.recv_timeout(deadline) {
                eprintln!(
                    "odyssey-test watchdog: odyssey {pid} still running after {deadline:?}, killing it"
                );
                process::send_signal(pid, Signal::Kill);
            }
        });
        Watchdog { _disarm: disarm }
    }
}

impl Pooler {
    /// Starts odyssey on `template` with default options.
    pub fn start(template: &str) -> Result<Pooler> {
        Pooler::start_with(template, PoolerOptions::default())
    }

    /// Renders `template`, starts odyssey on it, and returns once the listen port accepts.
    /// An exit or a timeout first is [`Error::Startup`] with the log and console output.
    pub fn start_with(template: &str, options: PoolerOptions) -> Result<Pooler> {
        let bin = odyssey_bin()?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let dir = TempDir::new("odyssey")?;
            let port = free_port()?;
            let config = write_config(dir.path(), template, port)?;
            let console = console_file(dir.path())?;
            let stderr = console
                .try_clone()
                .map_err(|e| Error::io("clone console file", e))?;
            let child = Command::new(&bin)
                .args(&options.args)
                .arg(&config)
                .envs(options.env.iter().map(|(k, v)| (k, v)))
                .current_dir(dir.path())
                .stdin(Stdio::null())
                .stdout(console)
                .stderr(stderr)
                .spawn()
                .map_err(|e| Error::io(format!("spawn {}", bin.display()), e))?;
            let _watchdog = Watchdog::arm(child.id(), options.deadline);
            let mut pooler = Pooler {
                child,
                port,
                dir,
                _watchdog,
            };
            match pooler.wait_ready(options.ready_timeout) {
                Ok(()) => return Ok(pooler),
                Err(Error::Startup { log, .. })
                    if log.contains("in use") && attempt < PORT_ATTEMPTS => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// The listen port (on 127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Client connection parameters for `user` through the pooler, database `postgres`.
    pub fn params(&self, user: &str) -> ConnParams {
        ConnParams::tcp(self.port, user)
    }

    /// Waits up to `timeout` for the log to contain `needle`; true if it did.
    pub fn wait_log(&self, needle: &str, timeout: Duration) -> bool {
        crate::wait_for(timeout, || self.log().contains(needle))
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The rendered config file.
    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("odyssey.conf")
    }

    /// The pid the pid file names (the new process of an online restart rewrites it).
    pub fn pid_in_file(&self) -> Option<u32> {
        fs::read_to_string(self.dir.path().join("odyssey.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// Sends SIGUSR2 to `old` and waits up to 15 s for the pid file to name another process:
    /// the new one, which the caller must stop (see [`process::Stopper`]).
    pub fn restart_online(&self, old: u32) -> Option<u32> {
        if !process::send_signal(old, Signal::Usr2) {
            return None;
        }
        let moved = || self.pid_in_file().filter(|&p| p != old);
        crate::wait_for(Duration::from_secs(15), || moved().is_some());
        moved()
    }

    /// The pooler's temp dir (what [`DIR`] stands for).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The log file so far, then what odyssey wrote to stdout and stderr.
    pub fn log(&self) -> String {
        read_logs(self.dir.path())
    }

    /// Renders `template` over the config file (same port and paths); send [`Signal::Hup`]
    /// to make odyssey reload it.
    pub fn rewrite_config(&self, template: &str) -> Result<()> {
        write_config(self.dir.path(), template, self.port).map(drop)
    }

    /// Sends `signal` to the process.
    pub fn signal(&self, signal: Signal) -> Result<()> {
        if process::send_signal(self.pid(), signal) {
            Ok(())
        } else {
            Err(Error::io(
                format!("kill -s {} {}", signal.name(), self.pid()),
                std::io::Error::other("kill failed"),
            ))
        }
    }

    /// Waits up to `timeout` for the process to exit; its status, or `None` if still running.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return Some(status),
                Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(10)),
                Ok(None) | Err(_) => return None,
            }
        }
    }

    fn wait_ready(&mut self, timeout: Duration) -> Result<()> {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.wait_exit(Duration::ZERO) {
                return Err(self.startup_error(format!("exited with {status}")));
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(
                    self.startup_error(format!("port {} not open in {timeout:?}", self.port))
                );
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn startup_error(&self, reason: String) -> Error {
        Error::Startup {
            server: "odyssey".to_string(),
            reason,
            log: self.log(),
        }
    }
}

impl Drop for Pooler {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs odyssey to completion with `args`, then the rendered `template` as config path when
/// given (for `--test`-style runs and command-line checks). Killed after `timeout`.
pub fn run_odyssey(args: &[&str], template: Option<&str>, timeout: Duration) -> Result<Output> {
    let dir = TempDir::new("odyssey-run")?;
    let mut cmd = Command::new(odyssey_bin()?);
    cmd.args(args).current_dir(dir.path());
    if let Some(template) = template {
        cmd.arg(write_config(dir.path(), template, free_port()?)?);
    }
    command::run(cmd, "odyssey", timeout)
}

/// The binary under test: `$ODYSSEY_BIN`, else `<target>/release/odyssey` where `<target>` is
/// `$CARGO_TARGET_DIR` or the workspace's `target/`.
pub fn odyssey_bin() -> Result<PathBuf> {
    let path = match std::env::var_os("ODYSSEY_BIN") {
        Some(path) => PathBuf::from(path),
        None => {
            let target = std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
            target.join("release").join("odyssey")
        }
    };
    if path.is_file() {
        Ok(path)
    } else {
        Err(Error::MissingBinary {
            path,
            hint: "run `cargo build --release --bin odyssey` or set ODYSSEY_BIN".to_string(),
        })
    }
}

/// A config template for tests: `daemonize no`, a text log with client and server ids
/// (`%i %s`) to [`LOG_FILE`] only, a listener on `127.0.0.1:`[`PORT`], and the storage
/// `"postgres_server"` at `127.0.0.1:storage_port`; then `rest` verbatim (the rules and any
/// global the test is about), so each test states what matters inline.
pub fn config(storage_port: u16, rest: &str) -> String {
    format!(
        r#"daemonize no
log_format "%p %t %l [%i %s] (%c) %m\n"
log_file "{LOG_FILE}"
log_to_stdout no
log_session yes
pid_file "{PID_FILE}"
workers 2

listen {{
	host "127.0.0.1"
	port {PORT}
}}

storage "postgres_server" {{
	type "remote"
	host "127.0.0.1"
	port {storage_port}
}}

{rest}
"#
    )
}

/// The catch-all rule most tests need: any database and user, no authentication, the
/// storage of [`config`], pool mode `pool` ("session", "transaction", "statement").
pub fn open_rule(pool: &str) -> String {
    format!(
        r#"database default {{
	user default {{
		authentication "none"
		storage "postgres_server"
		pool "{pool}"
	}}
}}
"#
    )
}

/// `template` with the placeholders replaced for a pooler living in `dir` on `port`.
pub fn render_config(template: &str, dir: &Path, port: u16) -> String {
    template
        .replace(PORT, &port.to_string())
        .replace(LOG_FILE, &dir.join("odyssey.log").display().to_string())
        .replace(PID_FILE, &dir.join("odyssey.pid").display().to_string())
        .replace(DIR, &dir.display().to_string())
}

fn write_config(dir: &Path, template: &str, port: u16) -> Result<PathBuf> {
    let path = dir.join("odyssey.conf");
    fs::write(&path, render_config(template, dir, port))
        .map_err(|e| Error::io(format!("write {}", path.display()), e))?;
    Ok(path)
}

fn console_file(dir: &Path) -> Result<fs::File> {
    let path = dir.join("console.out");
    fs::File::create(&path).map_err(|e| Error::io(format!("create {}", path.display()), e))
}

fn read_logs(dir: &Path) -> String {
    let log = fs::read_to_string(dir.join("odyssey.log")).unwrap_or_default();
    let console = fs::read_to_string(dir.join("console.out")).unwrap_or_default();
    format!("{log}{console}")
}
