//! A client's life: startup, route, authenticate, setup, then the session until it ends.

pub mod attach;
pub mod end;
pub mod pstmt;
pub mod session;
pub mod sets;
pub mod startup;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use kiwi::backend::{BackendKeyData, ParameterStatus, ReadyForQuery, TransactionStatus};
use kiwi::sqlstate;
use machinarium::Deadline;
use machinarium::net::{DetachedStream, PeerAddr};

use crate::auth::{self, ClientAuth};
use crate::client::Client;
use crate::config::rule::Transport as RuleTransport;
use crate::config::{Config, StorageType};
use crate::conn::{Conn, Transport};
use crate::id::ClientId;
use crate::instance::{ConfigSnapshot, Instance};
use crate::logger::ClientInfo;
use crate::reply::Reply;
use crate::route::RouteKey;
use crate::rules::{Request, RuleTable};
use crate::{cancel, od_info};
use session::Session;
use startup::{Hello, SessionRequest, StartupEnd};

/// Which listen section accepted the client.
#[derive(Clone, Debug)]
pub struct Accepted {
    /// Index of the listen section in the config the listener was made from.
    pub listen: usize,
    /// Who connected.
    pub peer: PeerAddr,
}

/// Runs a client from its accepted socket to its end. The session may park; this returns
/// as soon as it does.
pub fn run(inst: Arc<Instance>, socket: DetachedStream, accepted: Accepted) {
    let id = ClientId::new();
    inst.clients_total.fetch_add(1, Ordering::Relaxed);
    let clients = inst.clients.fetch_add(1, Ordering::AcqRel) + 1;
    let stream = match socket.attach() {
        Ok(s) => s,
        Err(_) => {
            inst.clients.fetch_sub(1, Ordering::AcqRel);
            return;
        }
    };
    let mut conn = Some(Conn::new(Transport::Plain(stream)));
    let snapshot = inst.config();
    let mut info = ClientInfo {
        id,
        user: None,
        database: None,
        addr: conn.as_ref().and_then(Conn::peer_addr),
        external_id: None,
        storage_host: None,
    };
    if snapshot.config.global.log.session {
        let from = info
            .addr
            .map_or("unix socket".to_string(), |a| a.to_string());
        od_info!(
            inst.logger,
            "startup",
            Some(&info),
            None,
            "new client connection {from}"
        );
    }
    match login(&inst, &snapshot, &mut conn, &mut info, &accepted, clients) {
        Ok(session) => session.serve(),
        Err(failure) => {
            if let (Some((reply, show_id)), Some(conn)) = (failure.reply, conn.as_mut()) {
                let mut out = Vec::new();
                reply.encode(id, show_id, &mut out);
                if conn
                    .write_all(&out, Deadline::after(Duration::from_secs(1)))
                    .is_ok()
                {
                    conn.close_gracefully(Deadline::after(Duration::from_secs(1)));
                }
            }
            if let Some(log) = failure.log {
                od_info!(inst.logger, "startup", Some(&info), None, "{log}");
            }
            inst.clients.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// Why a client did not get a session: what to tell it, what to log.
struct LoginFailure {
    reply: Option<(Reply, bool)>,
    log: Option<String>,
}

impl LoginFailure {
    fn reply(reply: Reply, show_id: bool) -> LoginFailure {
        let log = Some(reply.to_string());
        LoginFailure {
            reply: Some((reply, show_id)),
            log,
        }
    }

    fn silent(log: Option<String>) -> LoginFailure {
        LoginFailure { reply: None, log }
    }
}

fn login(
    inst: &Arc<Instance>,
    snapshot: &ConfigSnapshot,
    conn_slot: &mut Option<Conn>,
    info: &mut ClientInfo,
    accepted: &Accepted,
    clients: u32,
) -> Result<Session, LoginFailure> {
    let config = &snapshot.config;
    let Some(conn) = conn_slot.as_mut() else {
        return Err(LoginFailure::silent(None));
    };
    if let Some(max) = config.global.client_max.filter(|m| *m > 0 && clients > *m) {
        let reply = Reply::error(
            sqlstate::TOO_MANY_CONNECTIONS,
            format!("too many tcp connections (global client_max {max})"),
        );
        return Err(LoginFailure::reply(reply, true));
    }
    let listen = config.listen.get(accepted.listen);
    let login_timeout = listen.map_or(Duration::from_secs(15), |l| l.client_login_timeout);
    let deadline = Deadline::after(login_timeout);
    let tls = listen.map_or(crate::config::TlsMode::Disable, |l| l.tls.mode);
    let request = match startup::read(conn, tls, deadline) {
        Ok(Hello::Session(r)) => r,
        Ok(Hello::Cancel { pid, secret }) => {
            forward_cancel(inst, config, pid, &secret);
            return Err(LoginFailure::silent(None));
        }
        Err(StartupEnd::Reply(r)) => return Err(LoginFailure::reply(r, true)),
        Err(StartupEnd::Silent(why)) => {
            inst.startup_errors.fetch_add(1, Ordering::Relaxed);
            return Err(LoginFailure::silent(Some(why)));
        }
    };
    info.user = Some(request.user.clone());
    info.database = Some(request.database.clone());
    let (rule_index, show_id) = route_rule(config, &request, accepted, info)?;
    let rule = &config.rules[rule_index];
    let storage = config.storages.iter().find(|s| s.name == rule.storage);
    if storage.is_some_and(|s| s.kind == StorageType::Local) {
        let reply = Reply::error(
            sqlstate::FEATURE_NOT_SUPPORTED,
            "the admin console is not supported yet",
        );
        return Err(LoginFailure::reply(reply, show_id));
    }
    let route = inst.router.route(
        RouteKey {
            generation: snapshot.generation,
            rule: rule_index,
            database: request.database.clone(),
            user: request.user.clone(),
        },
        config,
    );
    if !route.enter() {
        let reply = Reply::error(
            sqlstate::TOO_MANY_CONNECTIONS,
            format!(
                "too many client tcp connections (client_max for user {} {})",
                route.name(),
                rule.client_max.unwrap_or(0)
            ),
        );
        return Err(LoginFailure::reply(reply, show_id));
    }
    let auth = ClientAuth {
        client: info.id,
        user: &request.user,
        database: &request.database,
        rule,
        show_id,
        deadline,
    };
    let authenticated = match auth::authenticate(conn, &auth) {
        Ok(a) => a,
        Err(e) => {
            route.leave();
            return Err(LoginFailure::silent(Some(format!(
                "authentication failed: {e}"
            ))));
        }
    };
    let (key, slot) = inst.cancels.register();
    let started = Instant::now();
    let client = Client {
        id: info.id,
        conn: conn_slot.take().ok_or_else(|| LoginFailure::silent(None))?,
        user: request.user,
        database: request.database,
        vars: request.vars,
        key,
        cancel: slot,
        info: info.clone(),
        show_id,
        connected_at: started,
    };
    let mut session = Session::new(inst.clone(), client, route, authenticated).with_statements();
    setup(&mut session).map_err(|e| LoginFailure::silent(Some(e)))?;
    if config.global.log.session {
        od_info!(
            inst.logger,
            "setup",
            Some(&session.client.info),
            None,
            "client connection from {} to route {} accepted",
            session
                .client
                .info
                .addr
                .map_or("unix socket".into(), |a| a.to_string()),
            session.route.name()
        );
    }
    Ok(session)
}

/// Matches the client to a rule (spec §3).
fn route_rule(
    config: &Arc<Config>,
    request: &SessionRequest,
    accepted: &Accepted,
    info: &ClientInfo,
) -> Result<(usize, bool), LoginFailure> {
    let table = RuleTable::new(config);
    let transport = match accepted.peer {
        PeerAddr::Unix => RuleTransport::Unix,
        PeerAddr::Tcp(_) => RuleTransport::Tcp { tls: false },
    };
    let req = Request {
        database: &request.database,
        user: &request.user,
        transport,
        ip: info.addr.map(|a| a.ip()),
        hostname: None,
        internal: false,
        is_member: &|_, _| false,
    };
    let Some(rule) = table.forward(&req) else {
        let reply = Reply::error(
            sqlstate::INVALID_CATALOG_NAME,
            format!(
                "route for '{}.{}' is not found",
                request.database, request.user
            ),
        );
        return Err(LoginFailure::reply(reply, true));
    };
    let index = config
        .rules
        .iter()
        .position(|r| std::ptr::eq(r, rule))
        .unwrap_or(0);
    Ok((index, rule.client_show_id))
}

/// ParameterStatus for every parameter a server of the route reports (the client's own value
/// where it set one), our BackendKeyData, ReadyForQuery. The first client of a route gets a
/// server now, to learn those parameters.
fn setup(session: &mut Session) -> Result<(), String> {
    if session.route.params().is_none() {
        session.attach_for_setup().map_err(|e| e.to_string())?;
    }
    let params = session.route.params().unwrap_or_default();
    let mut out = Vec::new();
    for (name, value) in params.iter() {
        let name_str = String::from_utf8_lossy(name);
        let value = session.client.vars.get(&name_str).unwrap_or(value);
        ParameterStatus { name, value }.encode(&mut out);
    }
    BackendKeyData {
        pid: session.client.key.pid,
        key: &session.client.key.secret,
    }
    .encode(&mut out);
    ReadyForQuery {
        status: TransactionStatus::Idle,
    }
    .encode(&mut out);
    session
        .client
        .conn
        .write_all(&out, Deadline::after(Duration::from_secs(5)))
        .map_err(|e| e.to_string())
}

/// A CancelRequest: forwarded to the server running that client's query, if any.
fn forward_cancel(inst: &Arc<Instance>, config: &Config, pid: i32, secret: &[u8]) {
    let Some((address, key)) = inst.cancels.lookup(pid, secret) else {
        return;
    };
    let timeout = if config.global.cancel_timeout.is_zero() {
        Duration::from_secs(5)
    } else {
        config.global.cancel_timeout
    };
    if let Err(e) = cancel::forward(&address, &key, timeout) {
        od_info!(
            inst.logger,
            "cancel",
            None,
            None,
            "cancel to {address} failed: {e}"
        );
    }
}
