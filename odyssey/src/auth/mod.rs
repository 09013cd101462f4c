//! Client authentication: runs the exchange the client's rule asks for (`authentication`), then
//! sends AuthenticationOk or the ErrorResponse upstream sends (spec §8, §10).
//!
//! Each method lives in its own file: `password` (clear_text, md5), `scram`, `cert`,
//! `external` (an agent on a unix socket); the
//! secret they check comes from the rule or from `query` (auth_query); `ldap` checks a
//! clear_text password by binding to an LDAP server, `pam` by a PAM service (`pam/ffi.rs` is
//! the crate's only unsafe code).
//! `backend` is the other direction: answering a PostgreSQL server's requests.

pub mod backend;
mod cert;
mod external;
mod ldap;
mod pam;
mod password;
mod query;
mod scram;

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use kiwi::backend::Authentication;
use kiwi::scram::ScramKeys;
use kiwi::sqlstate;
use machinarium::Deadline;

use crate::config::Rule;
use crate::config::auth::AuthMethod;
use crate::config::selector::Name;
use crate::conn::{Conn, ConnError};
use crate::id::ClientId;
use crate::instance::Instance;
use crate::logger::ClientInfo;
use crate::reply::Reply;
use crate::route::Route;
use query::Secret;

/// The largest message body a client may send before it is authenticated: a PasswordMessage
/// (upstream refuses one above this with `bad password message`), a SASL response, or any
/// message the exchange discards. Checked from the header, so an unauthenticated client never
/// makes the pooler buffer more than this.
pub const MAX_PASSWORD_MESSAGE: usize = 10_000;

/// [`MAX_PASSWORD_MESSAGE`] as a header length limit (which counts the length field itself).
const MAX_AUTH_MESSAGE_LEN: u32 = MAX_PASSWORD_MESSAGE as u32 + 4;

/// Who is logging in, under which rule, and until when.
pub struct ClientAuth<'a> {
    /// The client's id, for the `odyssey: c…: ` prefix.
    pub client: ClientId,
    /// The user of the StartupMessage.
    pub user: &'a str,
    /// The database of the StartupMessage.
    pub database: &'a str,
    /// The rule the client was routed to.
    pub rule: &'a Rule,
    /// Whether replies carry the client id (`client_show_id`).
    pub show_id: bool,
    /// When the whole exchange gives up (`client_login_timeout`).
    pub deadline: Deadline,
    /// The client's address (`None` on a unix socket).
    pub peer: Option<IpAddr>,
    /// The running pooler, for password sources that ask someone else (auth_query); `None`
    /// (as in unit tests) refuses them.
    pub pooler: Option<Pooler<'a>>,
}

/// What password sources that ask someone else need of the running pooler.
#[derive(Clone, Copy)]
pub struct Pooler<'a> {
    /// The pooler (auth_query asks PostgreSQL through its router).
    pub inst: &'a Arc<Instance>,
    /// The client, for log lines.
    pub info: &'a ClientInfo,
    /// The client's route (none for the console); auth_query caches secrets there.
    pub route: Option<&'a Arc<Route>>,
}

/// What a successful login leaves for backend authentication (see `backend_credentials`).
#[derive(Debug, Default)]
pub struct Authenticated {
    /// The cleartext password the client sent (clear_text with `password_passthrough`).
    pub password: Option<Vec<u8>>,
    /// The client's SCRAM keys after a SCRAM login, for SCRAM pass-through to the server.
    pub scram_keys: Option<ScramKeys>,
    /// The secret auth_query returned (an `md5…` hash is passed on to the server).
    pub secret: Option<String>,
    /// The id the external auth agent gave the client (logged as `%x`).
    pub external_id: Option<String>,
    /// The backend user and password LDAP chose (`ldap_storage_credentials`).
    pub ldap_storage: Option<(String, String)>,
}

/// Why a login failed. In the `Rejected` and `Misconfigured` cases the client has already
/// been sent the reply.
#[derive(Debug)]
pub enum AuthError {
    /// The client failed the exchange (wrong password, blocked, bad message...).
    Rejected(Reply),
    /// The rule cannot authenticate anyone (no password, unusable secret); the client got
    /// `reply`, the log gets `reason`.
    Misconfigured {
        /// What the client was sent.
        reply: Reply,
        /// Why, for the log.
        reason: &'static str,
    },
    /// The client connection failed (closed, timed out, not the protocol).
    Conn(ConnError),
}

impl AuthError {
    /// The reply the client was sent, if any.
    pub fn reply(&self) -> Option<&Reply> {
        match self {
            AuthError::Rejected(reply) | AuthError::Misconfigured { reply, .. } => Some(reply),
            AuthError::Conn(_) => None,
        }
    }
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthError::Rejected(reply) => write!(f, "rejected: {reply}"),
            AuthError::Misconfigured { reply, reason } => {
                write!(f, "rejected: {reply} (rule problem: {reason})")
            }
            AuthError::Conn(e) => write!(f, "client connection: {e}"),
        }
    }
}

impl std::error::Error for AuthError {}

impl From<ConnError> for AuthError {
    fn from(e: ConnError) -> Self {
        AuthError::Conn(e)
    }
}

/// Authenticates the client by its rule's method. On success AuthenticationOk is held in the
/// connection, to go out with the next write (the greeting);
/// on failure the ErrorResponse has been sent (when the connection still works).
pub fn authenticate(conn: &mut Conn, a: &ClientAuth<'_>) -> Result<Authenticated, AuthError> {
    let outcome = match a.rule.auth.method {
        Some(AuthMethod::None) => Ok(Authenticated::default()),
        Some(AuthMethod::Block) => Err(block(a)),
        Some(AuthMethod::ClearText) => password::clear_text(conn, a),
        Some(AuthMethod::Md5) => password::md5(conn, a),
        Some(AuthMethod::ScramSha256) => scram::scram(conn, a),
        Some(AuthMethod::Cert) => cert::cert(conn, a).map(|()| Authenticated::default()),
        Some(AuthMethod::External) => external::external(conn, a),
        None => Err(AuthError::Misconfigured {
            reply: password_failed(a),
            reason: "the rule has no authentication method",
        }),
    };
    match outcome {
        Ok(done) => {
            // Goes out with the greeting (or the error) that comes next, as PostgreSQL does.
            hold(conn, &Authentication::Ok);
            Ok(done)
        }
        Err(e) => Err(reject(conn, a, e)),
    }
}

/// `FATAL 28000 user blocked: <db> <user>`; upstream names a `default` selector "unknown".
fn block(a: &ClientAuth<'_>) -> AuthError {
    let db = match a.rule.key.db {
        Name::Named(_) => a.database,
        Name::Default => "(unknown database)",
    };
    let user = match a.rule.key.user {
        Name::Named(_) => a.user,
        Name::Default => "(unknown user)",
    };
    AuthError::Rejected(Reply::fatal(
        sqlstate::INVALID_AUTHORIZATION_SPECIFICATION,
        format!("user blocked: {db} {user}"),
    ))
}

/// Sends the reply of a rejection; a write failure is left out (the rejection is the story).
fn reject(conn: &mut Conn, a: &ClientAuth<'_>, e: AuthError) -> AuthError {
    if let Some(reply) = e.reply() {
        let mut out = Vec::new();
        reply.encode(a.client, a.show_id, &mut out);
        let _ = conn.write_all(&out, a.deadline);
    }
    e
}

/// Sends one authentication request (or SASL step, or AuthenticationOk).
fn send(conn: &mut Conn, a: &ClientAuth<'_>, m: &Authentication<'_>) -> Result<(), AuthError> {
    let mut out = Vec::new();
    m.encode(&mut out);
    conn.write_all(&out, a.deadline)?;
    Ok(())
}

/// Keeps the last authentication message(s) of a login to go out with the greeting that
/// follows, in one packet (see `Conn::hold`).
fn hold(conn: &mut Conn, m: &Authentication<'_>) {
    let mut out = Vec::new();
    m.encode(&mut out);
    conn.hold(&out);
}

/// Waits for the client's `p` message and returns its body; other messages are discarded, as
/// upstream does. Any message longer than [`MAX_PASSWORD_MESSAGE`] is refused from its header,
/// before its body is read: `ERROR 08P01 bad password message`, the length in the detail.
fn read_response(conn: &mut Conn, a: &ClientAuth<'_>) -> Result<Vec<u8>, AuthError> {
    loop {
        let m = conn
            .read_message(a.deadline, MAX_AUTH_MESSAGE_LEN)
            .map_err(|e| match e {
                ConnError::Protocol(e) => AuthError::Rejected(
                    Reply::error(sqlstate::PROTOCOL_VIOLATION, "bad password message")
                        .detail(e.to_string()),
                ),
                e => AuthError::Conn(e),
            })?;
        if m.tag == kiwi::frontend::tag::AUTH_RESPONSE {
            return Ok(m.body.to_vec());
        }
    }
}

/// The secret the client's password is checked against: auth_query's answer (a fake one for
/// an unknown user) or the rule's password; or the reason to refuse: the rule has none, or it
/// relies on a password source this build does not have yet. `scram` asks for a fake SCRAM
/// verifier rather than a fake md5 hash.
fn rule_secret(a: &ClientAuth<'_>, scram: bool) -> Result<Secret, AuthError> {
    let auth = &a.rule.auth;
    let unsupported = [
        (auth.module.is_some(), "auth_module"),
        (auth.mdb_iamproxy, "enable_mdb_iamproxy_auth"),
    ];
    if let Some((_, what)) = unsupported.iter().find(|(set, _)| *set) {
        return Err(AuthError::Rejected(Reply::fatal(
            sqlstate::FEATURE_NOT_SUPPORTED,
            format!("authentication with {what} is not supported yet"),
        )));
    }
    if auth.ldap_endpoint.is_some() || auth.pam_service.is_some() {
        return Err(AuthError::Misconfigured {
            reply: password_failed(a),
            reason: "ldap_endpoint_name and auth_pam_service need authentication \"clear_text\"",
        });
    }
    if auth.query.is_some() {
        return query::lookup(a, scram);
    }
    auth.password
        .clone()
        .map(Secret::Stored)
        .ok_or_else(|| AuthError::Misconfigured {
            reply: password_failed(a),
            reason: "the rule has no password",
        })
}

/// `FATAL 28P01 password authentication failed for user "u"`.
fn password_failed(a: &ClientAuth<'_>) -> Reply {
    Reply::fatal(
        sqlstate::INVALID_PASSWORD,
        format!("password authentication failed for user \"{}\"", a.user),
    )
}

/// `ERROR 08P01 bad password message`.
fn bad_password_message() -> AuthError {
    AuthError::Rejected(Reply::error(
        sqlstate::PROTOCOL_VIOLATION,
        "bad password message",
    ))
}
