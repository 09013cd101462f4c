//! The harness error: what was being done, and what the processes involved said.

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::Duration;

/// A harness operation that failed. Each variant names the program or step, so a failing test
/// reads as "initdb exited with 1: ..." rather than a bare io error.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// An I/O call failed while doing `context` (for example "spawn psql").
    Io {
        /// What the harness was doing.
        context: String,
        /// The underlying error.
        source: io::Error,
    },
    /// `program` did not finish within `after`; it was killed.
    Timeout {
        /// The program or step that ran out of time.
        program: String,
        /// The time it was given.
        after: Duration,
        /// What it printed before it was killed (stdout, then stderr).
        output: String,
    },
    /// `program` ran to completion but exited unsuccessfully.
    Failed {
        /// The program that failed.
        program: String,
        /// Its exit status.
        status: ExitStatus,
        /// What it printed (stderr, then stdout).
        output: String,
    },
    /// A server (PostgreSQL or odyssey) did not come up; `log` holds what it said.
    Startup {
        /// Which server.
        server: String,
        /// Why the harness gave up on it.
        reason: String,
        /// The server's log or console output from this attempt.
        log: String,
    },
    /// A program the harness needs is not where it looked.
    MissingBinary {
        /// Where it looked.
        path: PathBuf,
        /// How to get it there.
        hint: String,
    },
    /// A raw protocol exchange went wrong: an unexpected message, an ErrorResponse
    /// (`SQLSTATE: message`), a failed SCRAM step.
    Protocol(String),
    /// The harness runs as root but there is no such unprivileged user to run PostgreSQL as.
    MissingUser {
        /// The user looked up in `/etc/passwd`.
        name: String,
    },
}

/// The harness result.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// Wraps an I/O error with what the harness was doing.
    pub fn io(context: impl Into<String>, source: io::Error) -> Error {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io { context, source } => write!(f, "{context}: {source}"),
            Error::Timeout {
                program,
                after,
                output,
            } => write!(f, "{program} timed out after {after:?}; output:\n{output}"),
            Error::Failed {
                program,
                status,
                output,
            } => write!(f, "{program} failed ({status}); output:\n{output}"),
            Error::Startup {
                server,
                reason,
                log,
            } => write!(f, "{server} did not start: {reason}; log:\n{log}"),
            Error::MissingBinary { path, hint } => {
                write!(f, "{} not found: {hint}", path.display())
            }
            Error::Protocol(what) => write!(f, "protocol: {what}"),
            Error::MissingUser { name } => write!(
                f,
                "running as root, but user {name:?} (to run PostgreSQL as) does not exist"
            ),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            Error::Timeout { .. }
            | Error::Failed { .. }
            | Error::Startup { .. }
            | Error::MissingBinary { .. }
            | Error::Protocol(_)
            | Error::MissingUser { .. } => None,
        }
    }
}
