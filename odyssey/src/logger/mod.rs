//! The pooler's logger: `log_format` lines (text or JSON) to the log file, stdout and syslog,
//! written directly or through a bounded queue and a writer thread (`log_async`).
//!
//! A [`Logger`] is a value: the instance makes one from `config::Logging` and clones it into
//! every worker (the clones share one `Arc`). Nothing here is global.
//!
//! - `flags`: the `log_*` switches a reload may flip.
//! - `format`: the template and the rendering of one line (pure).
//! - `sink`: the destinations and the writer thread.
//!
//! Filtering: [`Logger::log`] writes every line it is given. `od_debug!` checks
//! [`Logger::debug_enabled`] (global `log_debug`) first; a caller whose rule has `log_debug`
//! calls `log(Level::Debug, ..)` itself. `log_session`/`log_query`/`log_stats`/`log_config`
//! are read by callers through [`Logger::flags`].
//!
//! Test hook: [`Logger::new`] sends syslog lines to the unix datagram socket named by the
//! environment variable `ODYSSEY_SYSLOG_SOCKET` when it is set, instead of the system socket.
//! Tests that run in one process use [`Logger::with_syslog_path`] and leave the environment
//! alone.

mod flags;
mod format;
mod sink;
#[cfg(test)]
mod tests;

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::SystemTime;

use crate::config::global::Logging;
use crate::id::{ClientId, ServerId};
pub use flags::LogFlags;
use format::{Format, MESSAGE_MAX, Record};
use sink::{Line, Queue, Sinks};

/// The environment variable naming a unix datagram socket to use instead of the system syslog
/// socket (a test hook; see the module doc).
pub const SYSLOG_SOCKET_ENV: &str = "ODYSSEY_SYSLOG_SOCKET";

/// Queue length used when `log_queue_depth` is 0.
const DEFAULT_QUEUE_DEPTH: usize = 30_000;

/// The startup format, before a config is read (`\n` as written in a config file).
const DEFAULT_FORMAT: &str = "%p %t %l (%c) %h %m\\n";

/// Severity of a line; printed by `%l` as `info`, `error`, `debug`, `fatal`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Normal operation (syslog `LOG_INFO`).
    Info,
    /// Something failed (syslog `LOG_ERR`).
    Error,
    /// Only with `log_debug` (syslog `LOG_DEBUG`).
    Debug,
    /// The process or connection cannot go on (syslog `LOG_CRIT`); always written synchronously.
    Fatal,
}

impl Level {
    /// The word `%l` prints.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Info => "info",
            Level::Error => "error",
            Level::Debug => "debug",
            Level::Fatal => "fatal",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a line knows about the client it is about (all optional except id); absent values
/// print as `none`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientInfo {
    /// `%i`.
    pub id: ClientId,
    /// `%u`: the startup user (shared with the client and its console entry).
    pub user: Option<Arc<str>>,
    /// `%d`: the startup database.
    pub database: Option<Arc<str>>,
    /// `%h` (ip) and `%r` (port); `None` for unix socket clients.
    pub addr: Option<SocketAddr>,
    /// `%x`: the id external auth or the IAM proxy returned.
    pub external_id: Option<Box<str>>,
    /// `%H`: the host of the route's storage.
    pub storage_host: Option<Box<str>>,
    /// The client's rule has `log_debug`: its debug lines are written even when the global
    /// `log_debug` is off.
    pub debug: bool,
}

impl ClientInfo {
    /// Only the id known (before the startup message).
    pub fn new(id: ClientId) -> ClientInfo {
        ClientInfo {
            id,
            debug: false,
            user: None,
            database: None,
            addr: None,
            external_id: None,
            storage_host: None,
        }
    }
}

/// The logger handle. Cheap to clone; every clone writes to the same destinations and queue.
#[derive(Clone)]
pub struct Logger {
    shared: Arc<Shared>,
}

/// What the clones share. `flags` is the only state that changes (reload); the log file inside
/// `sinks` is swapped under its own lock by `reopen`.
struct Shared {
    format: Format,
    pid: u32,
    flags: AtomicU8,
    sinks: Arc<Sinks>,
    /// `Some` in async mode: lines go through the writer thread.
    queue: Option<Queue>,
}

impl Logger {
    /// Opens the log file, prepares syslog and starts the writer thread when `async_write`.
    /// Honours `ODYSSEY_SYSLOG_SOCKET` (see the module doc).
    pub fn new(cfg: &Logging) -> io::Result<Logger> {
        let socket = std::env::var_os(SYSLOG_SOCKET_ENV);
        Logger::with_syslog_path(cfg, socket.as_deref().map(Path::new))
    }

    /// As [`Logger::new`], with syslog lines sent to the unix datagram socket `syslog_path`
    /// (`None`: the system socket) whatever the environment says.
    pub fn with_syslog_path(cfg: &Logging, syslog_path: Option<&Path>) -> io::Result<Logger> {
        let syslog = cfg.syslog.then(|| {
            (
                cfg.syslog_ident.as_str(),
                sink::facility(&cfg.syslog_facility),
            )
        });
        let sinks = Arc::new(Sinks::open(
            cfg.file.as_deref(),
            cfg.to_stdout,
            syslog,
            syslog_path,
        )?);
        let queue = if cfg.async_write && !sinks.is_empty() {
            let depth = match cfg.queue_depth {
                0 => DEFAULT_QUEUE_DEPTH,
                n => n as usize,
            };
            Some(Queue::start(depth, Arc::clone(&sinks))?)
        } else {
            None
        };
        let format = Format::parse(cfg.format.as_deref().unwrap_or(DEFAULT_FORMAT));
        Ok(Logger::from_parts(
            format,
            LogFlags::from_config(cfg),
            sinks,
            queue,
        ))
    }

    /// The startup logger: default format, stdout only, synchronous, default flags.
    pub fn stdout_only() -> Logger {
        Logger::from_parts(
            Format::parse(DEFAULT_FORMAT),
            LogFlags::default(),
            Arc::new(Sinks::stdout_only()),
            None,
        )
    }

    fn from_parts(
        format: Format,
        flags: LogFlags,
        sinks: Arc<Sinks>,
        queue: Option<Queue>,
    ) -> Logger {
        Logger {
            shared: Arc::new(Shared {
                format,
                pid: std::process::id(),
                flags: AtomicU8::new(flags.bits()),
                sinks,
                queue,
            }),
        }
    }

    /// Formats and writes one line. Never blocks on disk in async mode (a full queue drops the
    /// line and counts it); `Fatal` lines are written synchronously. No level filtering here:
    /// see the module doc.
    pub fn log(
        &self,
        level: Level,
        context: &str,
        client: Option<&ClientInfo>,
        server: Option<ServerId>,
        args: fmt::Arguments<'_>,
    ) {
        let shared = &*self.shared;
        if shared.sinks.is_empty() {
            return;
        }
        let mut message = match args.as_str() {
            Some(text) => text.to_string(),
            None => fmt::format(args),
        };
        if message.is_empty() && shared.format.is_json() {
            return;
        }
        format::truncate_on_char_boundary(&mut message, MESSAGE_MAX);
        let text = shared.format.render(&Record {
            now: SystemTime::now(),
            pid: shared.pid,
            tid: thread_number(),
            level,
            context,
            client,
            server,
            message: &message,
        });
        let line = Line { level, text };
        match &shared.queue {
            Some(queue) if level != Level::Fatal => queue.push(line),
            _ => shared.sinks.write(std::slice::from_ref(&line)),
        }
    }

    /// Whether global `log_debug` is on; check before formatting a debug line.
    pub fn debug_enabled(&self) -> bool {
        self.flags().debug
    }

    /// Reopens the log file at its path (SIGUSR1, logrotate) and logs `log reopened`. On
    /// failure the old file stays in use, the error is logged and returned. Safe while the
    /// writer thread runs: the new file is swapped in between two writes.
    pub fn reopen(&self) -> io::Result<()> {
        match self.shared.sinks.reopen() {
            Ok(Some(_)) => {
                self.log(
                    Level::Info,
                    "logger",
                    None,
                    None,
                    format_args!("log reopened"),
                );
                Ok(())
            }
            Ok(None) => Ok(()),
            Err(e) => {
                let path = self.shared.sinks.file_path().map(Path::display);
                if let Some(path) = path {
                    self.log(
                        Level::Error,
                        "logger",
                        None,
                        None,
                        format_args!("failed to reopen log file '{path}': {e}"),
                    );
                }
                Err(e)
            }
        }
    }

    /// Applies a reloaded config: only the switches of [`LogFlags`] change; format and
    /// destinations need a restart (§9.2).
    pub fn reconfigure(&self, cfg: &Logging) {
        let bits = LogFlags::from_config(cfg).bits();
        self.shared.flags.store(bits, Ordering::Relaxed);
    }

    /// The current switches.
    pub fn flags(&self) -> LogFlags {
        LogFlags::from_bits(self.shared.flags.load(Ordering::Relaxed))
    }

    /// Lines dropped because the async queue was full (0 in sync mode).
    pub fn dropped(&self) -> u64 {
        self.shared.queue.as_ref().map_or(0, Queue::dropped)
    }

    /// Blocks until every line logged before this call is written (shutdown).
    pub fn flush(&self) {
        if let Some(queue) = &self.shared.queue {
            queue.flush();
        }
    }
}

impl fmt::Debug for Logger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Logger")
            .field("format", &self.shared.format)
            .field("flags", &self.flags())
            .field("async", &self.shared.queue.is_some())
            .finish()
    }
}

/// This thread's number for `%T`. std exposes it only through `Debug` (`ThreadId(N)`), so the
/// digits are picked out of that without allocating.
fn thread_number() -> u64 {
    struct Digits(u64);
    impl fmt::Write for Digits {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            for digit in s.bytes().filter(u8::is_ascii_digit) {
                self.0 = self
                    .0
                    .wrapping_mul(10)
                    .wrapping_add(u64::from(digit - b'0'));
            }
            Ok(())
        }
    }
    let mut digits = Digits(0);
    let _ = fmt::write(
        &mut digits,
        format_args!("{:?}", std::thread::current().id()),
    );
    digits.0
}

/// Logs an `info` line: `od_info!(logger, "context", client, server, "fmt {}", x)`, where
/// `client` is an `Option<&ClientInfo>` and `server` an `Option<ServerId>`.
#[macro_export]
macro_rules! od_info {
    ($logger:expr, $context:expr, $client:expr, $server:expr, $($arg:tt)+) => {
        $logger.log($crate::logger::Level::Info, $context, $client, $server, format_args!($($arg)+))
    };
}

/// Logs an `error` line; arguments as [`od_info!`].
#[macro_export]
macro_rules! od_error {
    ($logger:expr, $context:expr, $client:expr, $server:expr, $($arg:tt)+) => {
        $logger.log($crate::logger::Level::Error, $context, $client, $server, format_args!($($arg)+))
    };
}

/// Logs a `debug` line if global `log_debug` is on, or the client's rule has `log_debug`; the
/// arguments are not evaluated otherwise.
#[macro_export]
macro_rules! od_debug {
    ($logger:expr, $context:expr, $client:expr, $server:expr, $($arg:tt)+) => {{
        let logger = &$logger;
        let client: Option<&$crate::logger::ClientInfo> = $client;
        if logger.debug_enabled() || client.is_some_and(|c| c.debug) {
            logger.log($crate::logger::Level::Debug, $context, client, $server, format_args!($($arg)+))
        }
    }};
}

/// Logs a `fatal` line, synchronously; arguments as [`od_info!`]. Does not exit.
#[macro_export]
macro_rules! od_fatal {
    ($logger:expr, $context:expr, $client:expr, $server:expr, $($arg:tt)+) => {
        $logger.log($crate::logger::Level::Fatal, $context, $client, $server, format_args!($($arg)+))
    };
}
