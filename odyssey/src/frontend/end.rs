//! How a client connection ends: every reason, from a garbled first packet to a graceful
//! shutdown, is one [`End`]; one exhaustive table says what the client is told and what
//! becomes of the server it holds.

use std::fmt;

use kiwi::backend::ErrorFields;
use kiwi::header::Frame;
use kiwi::sqlstate;

use crate::auth::AuthError;
use crate::backend::BackendError;
use crate::conn::ConnError;
use crate::id::ClientId;
use crate::relay::Violation;
use crate::relay::scan::BadFrame;
use crate::reply::{Drain, Reply};
use crate::stats::ErrorKind;
use crate::tls::TlsError;

/// Why a client's life ended.
#[derive(Debug)]
pub enum End {
    /// The first packets were not the protocol, or the connection failed before a
    /// StartupMessage was read (closed without a word, as upstream).
    Startup(StartupError),
    /// The client asked for a protocol major version we do not speak.
    UnsupportedProtocol {
        /// The major version asked for.
        major: u16,
        /// The minor version asked for.
        minor: u16,
    },
    /// The listener requires TLS and the client did not ask for it.
    TlsRequired,
    /// The `replication` startup parameter has a value PostgreSQL would refuse.
    BadReplication,
    /// `soft_oom`: memory is over the limit.
    SoftOom,
    /// Every host lags more than the client's `catchup_timeout`.
    Lagging {
        /// The smallest lag, in seconds.
        lag: u64,
        /// `db user`.
        route: String,
    },
    /// The client's TLS failed: bytes behind its SSLRequest, a failed handshake, a refused
    /// certificate. Nothing can be said over a broken session: closed without a word.
    Tls(TlsError),
    /// No `client_max_routing` slot came free within `client_login_timeout` (closed without a
    /// word, as upstream).
    RoutingSlotTimeout,
    /// The connection carried a CancelRequest (forwarded, or not, already).
    CancelRequest,
    /// The global `client_max` is reached.
    TooManyClients {
        /// The limit.
        max: u32,
    },
    /// No rule matches the client's database and user.
    RouteNotFound {
        /// The database asked for.
        database: String,
        /// The user.
        user: String,
    },
    /// The rule's `client_max` is reached.
    RouteFull {
        /// `db.user`.
        route: String,
        /// The limit.
        max: u32,
    },
    /// The `hba_file` refused the client: a `deny`/`reject` line, or no line matched.
    HbaRejected {
        /// The client's address (`unix socket` for a unix client), for the log.
        ip: String,
        /// `db.user` as the client asked.
        route: String,
    },
    /// Killed by the console's `KILL_CLIENT`.
    Killed,
    /// Authentication failed (the exchange has sent the client its refusal).
    Auth(AuthError),
    /// The client sent Terminate.
    ClientQuit,
    /// The client's connection failed or closed.
    ClientGone(ConnError),
    /// The client broke the protocol.
    Protocol(Violation),
    /// The server's connection failed or closed mid-session.
    ServerGone(ConnError),
    /// The server broke the protocol.
    ServerProtocol(BadFrame),
    /// No server could be had: the pool timed out.
    PoolTimeout {
        /// `db.user`.
        route: String,
        /// The pool's size.
        pool_size: u32,
    },
    /// A server connection could not be made.
    Connect(BackendError),
    /// Deploying the client's parameters on a server failed.
    Deploy(BackendError),
    /// The pooler is draining (shutting down, or handing over to a new process) and the
    /// client is between transactions.
    Shutdown(Drain),
    /// Idle (or idle in a transaction) past the rule's timeout.
    IdleTimeout(Idle),
    /// The machine is stopping (the coroutine was cancelled).
    Cancelled,
}

/// How the startup phase failed without a word to the client.
#[derive(Debug)]
pub enum StartupError {
    /// Reading the packets failed: closed, timed out, garbage, oversized.
    Conn(ConnError),
    /// The StartupMessage has no `user`.
    NoUser,
    /// SSLRequest or GSSENCRequest sent twice.
    EncryptionTwice,
}

/// Which idle timeout fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idle {
    /// `pool_client_idle_timeout`.
    Client,
    /// `pool_idle_in_transaction_timeout`.
    InTransaction,
}

/// What becomes of the server a client holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerFate {
    /// Reset (cancel, rollback, discard as configured) and give back to the pool.
    Reset,
    /// Close it: its state is unknown or it is gone.
    Close,
}

/// What the client is told.
#[derive(Debug)]
pub enum Farewell<'a> {
    /// Nothing: it is gone, left by itself, or is closed silently.
    Nothing,
    /// An error of the pooler's.
    Reply(Reply),
    /// The server's own ErrorResponse (`client_fwd_error`), the client id put in front.
    ServerError(&'a [u8]),
}

/// The row of the table for one end.
#[derive(Debug)]
pub struct Outcome<'a> {
    /// What the client is told.
    pub farewell: Farewell<'a>,
    /// What becomes of its server.
    pub server: ServerFate,
    /// Whether it counts as a startup error (unparsable first packets).
    pub startup_error: bool,
}

impl End {
    /// The table: for each end, the client's message and the server's fate, each column an
    /// exhaustive match (no `_` arm): a new reason must say both. `fwd_error` is the rule's
    /// `client_fwd_error` (the server's own error goes to the client when a connect fails).
    pub fn outcome(&self, fwd_error: bool) -> Outcome<'_> {
        let forwarded = match self {
            End::Connect(e) if fwd_error => e.server_error(),
            _ => None,
        };
        let farewell = match (forwarded, self.reply()) {
            (Some(raw), _) => Farewell::ServerError(raw),
            (None, Some(reply)) => Farewell::Reply(reply),
            (None, None) => Farewell::Nothing,
        };
        Outcome {
            farewell,
            server: self.fate(),
            startup_error: matches!(self, End::Startup(_)),
        }
    }

    /// The kind of failure `SHOW ERRORS` counts it as, if it is one.
    pub fn error_kind(&self) -> Option<ErrorKind> {
        Some(match self {
            End::TooManyClients { .. } => ErrorKind::RouterLimit,
            End::RouteNotFound { .. } => ErrorKind::RouterNotFound,
            End::RouteFull { .. } => ErrorKind::RouterLimitRoute,
            End::PoolTimeout { .. } => ErrorKind::RouterTimedOut,
            End::Connect(_) => ErrorKind::ServerConnect,
            End::Deploy(_) => ErrorKind::Attach,
            End::ServerGone(_) | End::ServerProtocol(_) => ErrorKind::ServerRead,
            End::Protocol(_) | End::ClientGone(ConnError::Protocol(_)) => ErrorKind::ClientProtocol,
            End::ClientGone(ConnError::Io(_) | ConnError::TimedOut) => ErrorKind::ClientRead,
            End::Killed => ErrorKind::ClientKilled,
            End::Shutdown(_) => ErrorKind::GracefulShutdown,
            End::IdleTimeout(Idle::Client) => ErrorKind::IdleTimeout,
            End::IdleTimeout(Idle::InTransaction) => ErrorKind::IdleInTransactionTimeout,
            End::Lagging { .. } => ErrorKind::CatchupTimeout,
            End::SoftOom => ErrorKind::OutOfMemory,
            End::Startup(_)
            | End::UnsupportedProtocol { .. }
            | End::TlsRequired
            | End::BadReplication
            | End::Tls(_)
            | End::RoutingSlotTimeout
            | End::CancelRequest
            | End::HbaRejected { .. }
            | End::Auth(_)
            | End::ClientQuit
            | End::ClientGone(_)
            | End::Cancelled => return None,
        })
    }

    /// What the server the client holds becomes.
    fn fate(&self) -> ServerFate {
        match self {
            End::ClientQuit | End::IdleTimeout(_) | End::Shutdown(_) | End::Killed => {
                ServerFate::Reset
            }
            // Bytes that are not the protocol leave the server's state unknown.
            End::ClientGone(ConnError::Protocol(_)) => ServerFate::Close,
            End::ClientGone(_) => ServerFate::Reset,
            End::Startup(_)
            | End::RoutingSlotTimeout
            | End::UnsupportedProtocol { .. }
            | End::TlsRequired
            | End::BadReplication
            | End::Lagging { .. }
            | End::SoftOom
            | End::Tls(_)
            | End::CancelRequest
            | End::TooManyClients { .. }
            | End::RouteNotFound { .. }
            | End::RouteFull { .. }
            | End::HbaRejected { .. }
            | End::Auth(_)
            | End::Protocol(_)
            | End::ServerGone(_)
            | End::ServerProtocol(_)
            | End::PoolTimeout { .. }
            | End::Connect(_)
            | End::Deploy(_)
            | End::Cancelled => ServerFate::Close,
        }
    }

    /// The pooler's message to the client, if it gets one.
    fn reply(&self) -> Option<Reply> {
        use sqlstate::{CONNECTION_FAILURE as FAILURE, TOO_MANY_CONNECTIONS as TOO_MANY};
        let reply = match self {
            End::Startup(_)
            | End::Tls(_)
            | End::RoutingSlotTimeout
            | End::CancelRequest
            | End::Cancelled
            | End::ClientQuit => return None,
            End::ClientGone(_) => return None,
            // The exchange answered the client itself, its refusal included (`auth::authenticate`).
            End::Auth(_) => return None,
            End::UnsupportedProtocol { major, minor } => Reply::fatal(
                sqlstate::FEATURE_NOT_SUPPORTED,
                format!(
                    "unsupported frontend protocol {major}.{minor}: server supports 3.0 to 3.0"
                ),
            ),
            End::TlsRequired => Reply::error(sqlstate::PROTOCOL_VIOLATION, "SSL is required"),
            End::BadReplication => {
                Reply::error(FAILURE, "invalid value for parameter \"replication\"")
            }
            End::SoftOom => Reply::fatal(sqlstate::OUT_OF_MEMORY, "soft out of memory"),
            End::Lagging { lag, route } => Reply::fatal(
                FAILURE,
                format!("replication lag too big ({lag} seconds), connection rejected: {route}"),
            )
            .detail("replication lag of the node you are trying to connect is too big, connection rejected")
            .hint("wait until the replica catches up with the primary"),
            End::TooManyClients { max } => Reply::error(
                TOO_MANY,
                format!("too many tcp connections (global client_max {max})"),
            ),
            End::RouteNotFound { database, user } => Reply::error(
                sqlstate::INVALID_CATALOG_NAME,
                format!("route for '{database}.{user}' is not found"),
            ),
            End::RouteFull { route, max } => Reply::error(
                TOO_MANY,
                format!("too many client tcp connections (client_max for user {route} {max})"),
            ),
            // Upstream's od_frontend_error(KIWI_INVALID_PASSWORD, ...): ERROR, not FATAL.
            End::HbaRejected { .. } => Reply::error(
                sqlstate::INVALID_PASSWORD,
                "host based authentication rejected",
            ),
            End::Killed => Reply::killed(),
            End::Protocol(_) => Reply::fatal(
                sqlstate::PROTOCOL_VIOLATION,
                "unexpected message type from client or other protocol violation",
            ),
            End::ServerGone(e) => {
                Reply::error(FAILURE, format!("remote server read/write error: {e}"))
            }
            End::ServerProtocol(e) => {
                Reply::error(FAILURE, format!("remote server protocol violation: {e}"))
            }
            End::PoolTimeout { route, pool_size } => Reply::fatal(
                TOO_MANY,
                format!(
                    "too many active clients for user (pool_size for user {route} reached {pool_size})"
                ),
            ),
            End::Connect(e @ BackendError::NoSuitableHost { .. }) => {
                Reply::fatal(FAILURE, e.to_string())
            }
            End::Connect(_) => Reply::fatal(FAILURE, "failed to get remote server connection"),
            End::Deploy(e) => Reply::fatal(
                FAILURE,
                format!("failed to set client parameters on the server: {e}"),
            ),
            End::IdleTimeout(idle) => {
                Reply::fatal(FAILURE, "Odyssey has dropped the connection").detail(idle.detail())
            }
            End::Shutdown(drain) => Reply::shutting_down(*drain),
        };
        Some(reply)
    }
}

/// The bytes of a farewell for client `id` (`show_id`: its id goes in front of the message).
pub fn farewell_bytes(farewell: &Farewell<'_>, id: ClientId, show_id: bool) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    match farewell {
        Farewell::Nothing => return None,
        Farewell::Reply(reply) => reply.encode(id, show_id, &mut out),
        Farewell::ServerError(raw) => prefix_error(raw, id, show_id, &mut out),
    }
    Some(out)
}

/// A server's ErrorResponse with the client id in front of its message (`client_fwd_error`).
fn prefix_error(raw: &[u8], id: ClientId, show_id: bool, out: &mut Vec<u8>) {
    let Ok(Some((frame, _))) = Frame::split(raw, kiwi::header::DEFAULT_MAX_MESSAGE) else {
        return;
    };
    let Ok(fields) = ErrorFields::decode(frame.body) else {
        out.extend_from_slice(raw);
        return;
    };
    let message = String::from_utf8_lossy(fields.message().unwrap_or_default()).into_owned();
    let text = if show_id {
        format!("odyssey: {id}: {message}")
    } else {
        format!("odyssey: {message}")
    };
    fields
        .set(kiwi::backend::field::MESSAGE, text.as_bytes())
        .encode_error(out);
}

impl Idle {
    /// The DETAIL of the error the client gets.
    pub fn detail(self) -> &'static str {
        match self {
            Idle::Client => "Connection was dropped by Odyssey due to idle timeout",
            Idle::InTransaction => {
                "Connection was dropped by Odyssey due to idle in transaction timeout"
            }
        }
    }
}

impl fmt::Display for End {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            End::Startup(e) => write!(f, "startup packet: {e}"),
            End::UnsupportedProtocol { major, minor } => {
                write!(f, "unsupported protocol {major}.{minor}")
            }
            End::TlsRequired => f.write_str("SSL is required"),
            End::Lagging { lag, route } => {
                write!(f, "replication lag too big ({lag} seconds): {route}")
            }
            End::SoftOom => f.write_str("soft out of memory"),
            End::BadReplication => f.write_str("invalid value for parameter \"replication\""),
            End::Tls(e) => write!(f, "tls: {e}"),
            End::RoutingSlotTimeout => f.write_str(
                "routing slot wait timed out, connection rejected (high TLS handshakes rate?)",
            ),
            End::CancelRequest => f.write_str("cancel request"),
            End::TooManyClients { max } => write!(f, "global client_max {max} reached"),
            End::RouteNotFound { database, user } => {
                write!(f, "route for '{database}.{user}' is not found")
            }
            End::RouteFull { route, max } => write!(f, "client_max {max} of {route} reached"),
            End::HbaRejected { ip, route } => {
                write!(
                    f,
                    "ip '{ip}' user '{route}': host based authentication rejected"
                )
            }
            End::Killed => f.write_str("killed by a console command"),
            End::Auth(e) => write!(f, "authentication failed: {e}"),
            End::ClientQuit => f.write_str("client terminated"),
            End::ClientGone(e) => write!(f, "client connection: {e}"),
            End::Protocol(e) => write!(f, "client protocol violation: {e}"),
            End::ServerGone(e) => write!(f, "server connection: {e}"),
            End::ServerProtocol(e) => write!(f, "server protocol violation: {e}"),
            End::PoolTimeout { route, .. } => write!(f, "server pool wait timed out for {route}"),
            End::Connect(e) => write!(f, "server connect failed: {e}"),
            End::Deploy(e) => write!(f, "deploy failed: {e}"),
            End::Shutdown(Drain::Shutdown) => f.write_str("graceful shutdown"),
            End::Shutdown(Drain::OnlineRestart) => f.write_str("online restart"),
            End::IdleTimeout(idle) => f.write_str(idle.detail()),
            End::Cancelled => f.write_str("cancelled"),
        }
    }
}

impl fmt::Display for StartupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartupError::Conn(e) => write!(f, "{e}"),
            StartupError::NoUser => f.write_str("no user in the startup packet"),
            StartupError::EncryptionTwice => f.write_str("encryption requested twice"),
        }
    }
}
