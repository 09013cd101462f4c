//! The error of every blocking call.

use std::fmt;
use std::io;

/// Why a blocking call did not complete.
#[derive(Debug)]
pub enum Error {
    /// The deadline passed first.
    TimedOut,
    /// The coroutine was cancelled (its machine is stopping, or someone called `cancel`).
    Cancelled,
    /// The other side is gone: a channel with no senders, a closed stream.
    Closed,
    /// Called while the thread is unwinding a panic: switching now would leak the panic
    /// state into other coroutines, so the call fails without blocking.
    Unwinding,
    /// Called outside a coroutine (on a thread that is not running a machine's coroutine).
    NotInCoroutine,
    /// The object is in use by another coroutine (for example a stream with a parked reader).
    Busy,
    /// The operating system said no.
    Io(io::Error),
}

/// The result of a blocking call.
pub type Result<T> = std::result::Result<T, Error>;

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::TimedOut => f.write_str("timed out"),
            Error::Cancelled => f.write_str("cancelled"),
            Error::Closed => f.write_str("closed"),
            Error::Unwinding => f.write_str("blocking call while unwinding a panic"),
            Error::NotInCoroutine => f.write_str("blocking call outside a coroutine"),
            Error::Busy => f.write_str("busy"),
            Error::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Error::Io(e)
    }
}

impl From<Error> for io::Error {
    fn from(e: Error) -> Self {
        match e {
            Error::Io(e) => e,
            Error::TimedOut => io::Error::new(io::ErrorKind::TimedOut, "timed out"),
            Error::Closed => io::Error::new(io::ErrorKind::BrokenPipe, "closed"),
            other => io::Error::other(other.to_string()),
        }
    }
}
