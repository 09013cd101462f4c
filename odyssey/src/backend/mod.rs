//! Server connections: connect, log in, read the startup answers; and the pooler's own
//! internal queries on a server (reset, deploy; `rows`: parameterised queries that return
//! rows, for auth_query).

use std::fmt;
use std::time::Duration;

use kiwi::backend::{BackendKeyData, ParameterStatus, ReadyForQuery, TransactionStatus, tag as be};
use kiwi::error::DecodeError;
use kiwi::startup::{ProtocolVersion, Startup};
use machinarium::Deadline;
use machinarium::net::{KeepAlive, Stream};

use crate::config::rule::RuleKeepalive;
use crate::config::{Global, TlsMode};
use crate::tls::{self, CancelTls, ServerTls, TlsError};

pub mod auth;
pub mod rows;

use crate::conn::{Conn, ConnError, DEFAULT_MAX_MESSAGE, Transport};
use crate::server::{Address, CancelKey, Server, ServerInfo};
use auth::{BackendAuthError, BackendCredentials, authenticate_server};

/// Why a server connection could not be made or used.
#[derive(Debug)]
pub enum BackendError {
    /// The rule names a storage the config does not define.
    NoStorage(String),
    /// A storage host name did not resolve (`None`: to no address).
    Resolve {
        /// The host name.
        host: String,
        /// What the resolver said.
        error: Option<machinarium::Error>,
    },
    /// TCP/unix connect failed or timed out.
    Connect(Address, machinarium::Error),
    /// Authentication failed.
    Auth(BackendAuthError),
    /// The server answered the startup or a query with an ErrorResponse (the whole message,
    /// kept for `client_fwd_error`).
    Server(Vec<u8>),
    /// Reading or writing failed.
    Conn(ConnError),
    /// A message the pooler reads could not be decoded.
    Decode(DecodeError),
    /// A message that has no place at this point of the startup.
    Unexpected(u8),
    /// TLS could not be had as the storage's `tls` demands.
    Tls(TlsError),
    /// No host of the storage is of the kind the client needs (target_session_attrs).
    NoSuitableHost {
        /// The kind asked for (upstream's spelling).
        tsa: &'static str,
        /// `db.user`.
        route: String,
    },
}

impl fmt::Display for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BackendError::NoStorage(name) => write!(f, "storage '{name}' is not defined"),
            BackendError::Resolve { host, error: None } => {
                write!(f, "cannot resolve storage host {host}: no addresses")
            }
            BackendError::Resolve {
                host,
                error: Some(e),
            } => write!(f, "cannot resolve storage host {host}: {e}"),
            BackendError::Connect(a, e) => write!(f, "connect to {a}: {e}"),
            BackendError::Auth(e) => write!(f, "authentication: {e}"),
            BackendError::Server(raw) => {
                let body = raw.get(kiwi::header::HEADER_LEN..).unwrap_or_default();
                write!(f, "server error: {}", error_text(body))
            }
            BackendError::Conn(e) => write!(f, "{e}"),
            BackendError::Decode(e) => write!(f, "protocol: {e}"),
            BackendError::Tls(e) => write!(f, "{e}"),
            BackendError::NoSuitableHost { tsa, route } => {
                write!(
                    f,
                    "can't find suitable host for tsa '{tsa}' of user {route}"
                )
            }
            BackendError::Unexpected(tag) => {
                write!(
                    f,
                    "protocol: unexpected message '{}' at startup",
                    tag.escape_ascii()
                )
            }
        }
    }
}

impl From<ConnError> for BackendError {
    fn from(e: ConnError) -> Self {
        BackendError::Conn(e)
    }
}

impl From<DecodeError> for BackendError {
    fn from(e: DecodeError) -> Self {
        BackendError::Decode(e)
    }
}

impl BackendError {
    /// The host could not be reached at all (as opposed to a refusal by a live server).
    pub fn is_host_down(&self) -> bool {
        matches!(
            self,
            BackendError::Resolve { .. }
                | BackendError::Connect(..)
                | BackendError::Conn(_)
                | BackendError::Tls(_)
        )
    }

    /// The server's own ErrorResponse, when there is one to forward.
    pub fn server_error(&self) -> Option<&[u8]> {
        match self {
            BackendError::Server(raw) => Some(raw),
            BackendError::Auth(BackendAuthError::Server(raw, _)) => Some(raw),
            _ => None,
        }
    }

    /// The server refused the login with 53300 (too many connections, for the server or the
    /// role): `server_login_retry` waits for an idle server instead.
    pub fn is_too_many_connections(&self) -> bool {
        self.sqlstate() == Some(b"53300".as_slice())
    }

    /// The SQLSTATE of the server's own ErrorResponse, if it sent one.
    fn sqlstate(&self) -> Option<&[u8]> {
        self.server_error()
            .and_then(|raw| raw.get(kiwi::header::HEADER_LEN..))
            .and_then(|body| kiwi::backend::ErrorFields::decode(body).ok())
            .and_then(|f| f.field(kiwi::backend::field::CODE))
    }

    /// Whether a plaintext login refused by the server may pass over TLS (`tls allow`): any
    /// ErrorResponse but starting up (57P03), too many connections (53300), no such database
    /// (3D000) and a wrong password (28P01), as upstream.
    fn tls_may_help(&self) -> bool {
        let hopeless: [&[u8]; 4] = [b"57P03", b"53300", b"3D000", b"28P01"];
        self.sqlstate()
            .is_some_and(|code| !hopeless.contains(&code))
    }
}

/// How to reach and log into a server.
pub struct ConnectParams<'a> {
    /// Where.
    pub address: Address,
    /// Connect deadline per attempt (`backend_connect_timeout_ms`).
    pub connect_timeout: Duration,
    /// Deadline for the whole login.
    pub login_timeout: Duration,
    /// Login credentials.
    pub credentials: &'a BackendCredentials,
    /// Database to ask for.
    pub database: &'a str,
    /// TCP_NODELAY.
    pub nodelay: bool,
    /// TCP keepalive.
    pub keepalive: KeepAlive,
    /// The rule's `backend_startup_options`: more StartupMessage parameters, after `user`
    /// and `database`.
    pub startup_options: &'a [(String, String)],
    /// The storage's TLS, unless its mode is `disable`.
    pub tls: Option<ServerTls<'a>>,
}

/// Connects and logs in; returns the server ready for queries (status `I`). A storage in
/// `tls allow` tries plaintext first and TLS when the server refuses that login for another
/// reason than a missing database, wrong password, startup or overload (as upstream).
pub fn connect(p: &ConnectParams<'_>) -> Result<Server, BackendError> {
    let Some(t) = p.tls.filter(|t| t.mode == TlsMode::Allow) else {
        return login(p, p.tls.as_ref());
    };
    match login(p, None) {
        Err(e) if e.tls_may_help() => login(p, Some(&t)),
        other => other,
    }
}

fn login(p: &ConnectParams<'_>, tls: Option<&ServerTls<'_>>) -> Result<Server, BackendError> {
    let stream = open(&p.address, p.connect_timeout)?;
    if !stream.is_unix() {
        let _ = stream.set_nodelay(p.nodelay);
        let _ = stream.set_keepalive(&p.keepalive);
    }
    let deadline = Deadline::after(p.login_timeout);
    let mut conn = Conn::new(Transport::Plain(stream));
    let mut cancel_tls = None;
    if let Some(t) = tls {
        conn = tls::connect(conn, t, deadline).map_err(BackendError::Tls)?;
        cancel_tls = conn.is_tls().then(|| CancelTls::of(t));
    }
    let mut startup = Vec::new();
    let mut params: Vec<(&[u8], &[u8])> = vec![
        (b"user", p.credentials.user.as_bytes()),
        (b"database", p.database.as_bytes()),
    ];
    params.extend(
        p.startup_options
            .iter()
            .map(|(k, v)| (k.as_bytes(), v.as_bytes())),
    );
    Startup {
        version: ProtocolVersion::V3_0,
        params,
    }
    .encode(&mut startup);
    conn.write_all(&startup, deadline)?;
    let method = authenticate_server(&mut conn, p.credentials, deadline).map_err(|e| match e {
        BackendAuthError::Conn(c) => BackendError::Conn(c),
        other => BackendError::Auth(other),
    })?;
    let mut info = Box::new(ServerInfo::new(p.address.clone()));
    info.tls = cancel_tls;
    info.auth_method = method;
    read_startup_answers(&mut conn, &mut info, deadline)?;
    info.defaults = info.vars.clone();
    Ok(Server {
        info,
        conn,
        tx: TransactionStatus::Idle,
    })
}

fn open(address: &Address, timeout: Duration) -> Result<Stream, BackendError> {
    let r = match address {
        Address::Tcp(a) => Stream::connect(*a, timeout),
        Address::Unix(p) => Stream::connect_unix(p, timeout),
    };
    r.map_err(|e| BackendError::Connect(address.clone(), e))
}

/// ParameterStatus, BackendKeyData and notices up to ReadyForQuery.
fn read_startup_answers(
    conn: &mut Conn,
    info: &mut ServerInfo,
    deadline: Deadline,
) -> Result<(), BackendError> {
    loop {
        let m = conn.read_message(deadline, DEFAULT_MAX_MESSAGE)?;
        match m.tag {
            be::PARAMETER_STATUS => {
                let ps = ParameterStatus::decode(m.body)?;
                let _ = info.vars.set_status(&ps);
                info.status.push((ps.name.to_vec(), ps.value.to_vec()));
            }
            be::BACKEND_KEY_DATA => {
                let k = BackendKeyData::decode(m.body)?;
                info.key = CancelKey {
                    pid: k.pid,
                    secret: k.key.into(),
                };
            }
            be::NOTICE_RESPONSE => {}
            be::ERROR_RESPONSE => {
                return Err(BackendError::Server(m.bytes.to_vec()));
            }
            be::READY_FOR_QUERY => return Ok(()),
            other => return Err(BackendError::Unexpected(other)),
        }
    }
}

/// The text of an ErrorResponse body, for logs.
pub fn error_text(body: &[u8]) -> String {
    match kiwi::backend::ErrorFields::decode(body) {
        Ok(f) => f.to_string(),
        Err(_) => "malformed ErrorResponse".to_string(),
    }
}

/// Runs one of the pooler's own queries (ROLLBACK, DISCARD ALL, SET ...) and reads its
/// answers up to ReadyForQuery. ParameterStatus changes update the server's vars; an
/// ErrorResponse is returned as `Server` after the ReadyForQuery that follows it.
pub fn query(server: &mut Server, sql: &[u8], deadline: Deadline) -> Result<(), BackendError> {
    query_seeing(server, sql, deadline, |_, _| {})
}

/// As [`query`], handing every other message (tag and body: a notification, a notice) to
/// `other` on the way.
pub fn query_seeing(
    server: &mut Server,
    sql: &[u8],
    deadline: Deadline,
    mut other: impl FnMut(u8, &[u8]),
) -> Result<(), BackendError> {
    let mut out = Vec::with_capacity(sql.len() + 6);
    kiwi::frontend::Query { sql }.encode(&mut out);
    server.conn.write_all(&out, deadline)?;
    let mut failed: Option<BackendError> = None;
    loop {
        let m = server.conn.read_message(deadline, DEFAULT_MAX_MESSAGE)?;
        match m.tag {
            be::PARAMETER_STATUS => {
                if let Ok(ps) = ParameterStatus::decode(m.body) {
                    let _ = server.info.vars.set_status(&ps);
                }
            }
            be::ERROR_RESPONSE => failed = Some(BackendError::Server(m.bytes.to_vec())),
            be::READY_FOR_QUERY => {
                let rfq = ReadyForQuery::decode(m.body)?;
                server.tx = rfq.status;
                return failed.map_or(Ok(()), Err);
            }
            // CommandComplete, notices, rows of a SHOW: for `other`, if anyone.
            tag => other(tag, m.body),
        }
    }
}

/// Runs one of the pooler's own queries and returns the first column of its first row (None
/// for no row or NULL).
pub fn query_value(
    server: &mut Server,
    sql: &[u8],
    deadline: Deadline,
) -> Result<Option<Vec<u8>>, BackendError> {
    let mut out = Vec::with_capacity(sql.len() + 6);
    kiwi::frontend::Query { sql }.encode(&mut out);
    server.conn.write_all(&out, deadline)?;
    let (mut value, mut failed) = (None, None);
    loop {
        let m = server.conn.read_message(deadline, DEFAULT_MAX_MESSAGE)?;
        match m.tag {
            be::DATA_ROW if value.is_none() => {
                let row = kiwi::backend::DataRow::decode(m.body)?;
                value = Some(row.values.first().copied().flatten().map(<[u8]>::to_vec));
            }
            be::ERROR_RESPONSE => failed = Some(BackendError::Server(m.bytes.to_vec())),
            be::READY_FOR_QUERY => {
                server.tx = ReadyForQuery::decode(m.body)?.status;
                return failed.map_or(Ok(value.flatten()), Err);
            }
            _ => {}
        }
    }
}

/// Keepalive settings of the config as machinarium takes them.
pub fn keepalive(g: &Global) -> KeepAlive {
    let k = &g.keepalive;
    keepalive_of(k.idle, k.interval, k.probes, k.usr_timeout_ms)
}

/// A rule's keepalive (re-set on its clients' sockets after routing), or `None` when the rule
/// leaves the global one (`keepalive` 0, as upstream).
pub fn rule_keepalive(k: &RuleKeepalive) -> Option<KeepAlive> {
    (k.idle > 0).then(|| {
        keepalive_of(
            Duration::from_secs(k.idle.into()),
            Duration::from_secs(k.interval.into()),
            k.probes,
            k.usr_timeout_ms,
        )
    })
}

fn keepalive_of(idle: Duration, interval: Duration, probes: u32, usr_timeout_ms: i64) -> KeepAlive {
    KeepAlive {
        idle: (!idle.is_zero()).then_some(idle),
        interval: (!interval.is_zero()).then_some(interval),
        probes: (probes > 0).then_some(probes),
        user_timeout: match usr_timeout_ms {
            0 => None,
            ms if ms > 0 => Some(Duration::from_millis(ms as u64)),
            // Negative: as long as keepalive takes to give up, minus a little.
            _ => Some((idle + interval * probes).saturating_sub(Duration::from_millis(500))),
        },
    }
}

/// Says goodbye to a server (Terminate, best effort) and drops the connection.
pub fn close(mut server: Server) {
    let _ = terminate(&mut server, Deadline::after(Duration::from_millis(100)));
}

/// Says goodbye to a server and waits, until `deadline`, for PostgreSQL to close its end: its
/// backend has then exited and counts no more against its connections (`max_connections`,
/// a role's limit, `pg_stat_activity`). For a place in a shared pool that another route
/// takes next.
pub fn close_and_wait(mut server: Server, deadline: Deadline) {
    if terminate(&mut server, deadline).is_ok() {
        server.conn.close_gracefully(deadline);
    }
}

fn terminate(server: &mut Server, deadline: Deadline) -> Result<(), crate::conn::ConnError> {
    let mut out = Vec::with_capacity(5);
    kiwi::header::Header {
        tag: kiwi::frontend::tag::TERMINATE,
        length: 4,
    }
    .encode(&mut out);
    server.conn.write_all(&out, deadline)
}
