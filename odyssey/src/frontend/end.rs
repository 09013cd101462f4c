//! How a client connection ends: one table from the reason to what the client is told and
//! what happens to its server.

use kiwi::sqlstate;

use crate::backend::BackendError;
use crate::conn::ConnError;
use crate::reply::Reply;

/// Why a session ended.
#[derive(Debug)]
pub enum EndReason {
    /// The client sent Terminate.
    ClientQuit,
    /// The client's connection failed or closed.
    ClientGone(ConnError),
    /// The client broke the protocol.
    Protocol(String),
    /// The server's connection failed or closed mid-session.
    ServerGone(ConnError),
    /// No server could be had: the pool timed out.
    PoolTimeout {
        /// `db.user`.
        route: String,
        /// The pool's size.
        pool_size: u32,
    },
    /// A server connection could not be made.
    Connect(BackendError),
    /// Deploying the client's parameters (or another internal query) failed.
    Deploy(BackendError),
    /// The pooler is shutting down and the client is idle.
    Shutdown,
    /// Idle (or idle in a transaction) past the rule's timeout; the DETAIL says which.
    IdleTimeout(&'static str),
    /// The machine is stopping (the coroutine was cancelled).
    Cancelled,
}

/// What becomes of the server a session holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerFate {
    /// Reset (cancel, rollback, discard as configured) and give back to the pool.
    Reset,
    /// Close it: its state is unknown or it is gone.
    Close,
}

impl EndReason {
    /// The message for the client (none when it is gone or left by itself) and the server's
    /// fate. Exhaustive on purpose: a new reason must say both.
    pub fn outcome(&self, fwd_error: bool) -> (Option<Reply>, ServerFate) {
        match self {
            EndReason::ClientQuit => (None, ServerFate::Reset),
            EndReason::ClientGone(_) => (None, ServerFate::Reset),
            EndReason::Cancelled => (None, ServerFate::Close),
            EndReason::Protocol(_) => (
                Some(Reply::fatal(
                    sqlstate::PROTOCOL_VIOLATION,
                    "unexpected message type from client or other protocol violation",
                )),
                ServerFate::Close,
            ),
            EndReason::ServerGone(e) => {
                (Some(Reply::error(sqlstate::CONNECTION_FAILURE, format!("remote server read/write error: {e}"))), ServerFate::Close)
            }
            EndReason::PoolTimeout { route, pool_size } => (
                Some(Reply::fatal(
                    sqlstate::TOO_MANY_CONNECTIONS,
                    format!("too many active clients for user (pool_size for user {route} reached {pool_size})"),
                )),
                ServerFate::Close,
            ),
            EndReason::Connect(e) => {
                let reply = if fwd_error && e.server_error().is_some() {
                    None
                } else {
                    Some(Reply::fatal(sqlstate::CONNECTION_FAILURE, "failed to get remote server connection"))
                };
                (reply, ServerFate::Close)
            }
            EndReason::Deploy(e) => (
                Some(Reply::fatal(sqlstate::CONNECTION_FAILURE, format!("failed to set client parameters on the server: {e}"))),
                ServerFate::Close,
            ),
            EndReason::IdleTimeout(detail) => (
                Some(Reply::fatal(sqlstate::CONNECTION_FAILURE, "Odyssey has dropped the connection").detail(*detail)),
                ServerFate::Reset,
            ),
            EndReason::Shutdown => (
                Some(
                    Reply::fatal(sqlstate::CONNECTION_FAILURE, "Odyssey is gracefully shutting down").detail(
                        "The Odyssey instance is gracefully shutting down, and the connections are being drained",
                    ),
                ),
                ServerFate::Reset,
            ),
        }
    }
}

impl std::fmt::Display for EndReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EndReason::ClientQuit => f.write_str("client terminated"),
            EndReason::ClientGone(e) => write!(f, "client connection: {e}"),
            EndReason::Protocol(e) => write!(f, "client protocol violation: {e}"),
            EndReason::ServerGone(e) => write!(f, "server connection: {e}"),
            EndReason::PoolTimeout { route, .. } => {
                write!(f, "server pool wait timed out for {route}")
            }
            EndReason::Connect(e) => write!(f, "server connect failed: {e}"),
            EndReason::Deploy(e) => write!(f, "deploy failed: {e}"),
            EndReason::Shutdown => f.write_str("graceful shutdown"),
            EndReason::IdleTimeout(detail) => f.write_str(detail),
            EndReason::Cancelled => f.write_str("cancelled"),
        }
    }
}
