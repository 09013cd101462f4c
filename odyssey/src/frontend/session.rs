//! A logged-in client's session: relay between the client and its server, attach a server
//! when the client needs one, give it back when the pool mode says so, park when both sides
//! are quiet (no coroutine or stack while idle), and end.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use kiwi::backend::{ParameterStatus, TransactionStatus};
use machinarium::Deadline;

use crate::auth::Authenticated;
use crate::auth::backend::backend_credentials;
use crate::backend::{self, BackendError, ConnectParams};
use crate::client::Client;
use crate::config::PoolMode;
use crate::conn::{ConnError, DEFAULT_MAX_MESSAGE};
use crate::frontend::end::{EndReason, ServerFate};
use crate::instance::Instance;
use crate::pool::{AcquireError, Grant};
use crate::relay::{self, Scanner, ServerEvent};
use crate::route::Route;
use crate::server::Server;
use crate::{od_debug, od_error, od_info, storage};

/// Statements of the smart reset (`pool_smart_discard`): DISCARD ALL without dropping
/// prepared statements.
const SMART_DISCARD: &[u8] = b"SET SESSION AUTHORIZATION DEFAULT;RESET ALL;CLOSE ALL;UNLISTEN *;\
SELECT pg_advisory_unlock_all();DISCARD PLANS;DISCARD SEQUENCES;DISCARD TEMP;";

/// Deadline of the pooler's own queries when `pool_reset_timeout_ms` is not set.
const DEFAULT_RESET_TIMEOUT: Duration = Duration::from_secs(5);

/// A client between login and disconnect.
pub struct Session {
    /// The instance.
    pub inst: Arc<Instance>,
    /// The client.
    pub client: Client,
    /// Its route.
    pub route: Arc<Route>,
    /// What the client proved at login (for password pass-through to servers).
    pub auth: Authenticated,
    /// The server it holds, if any.
    pub server: Option<Server>,
    client_scan: Scanner,
    server_scan: Scanner,
    /// Requests sent to the server (Query, Sync, FunctionCall) not yet answered with
    /// ReadyForQuery.
    pending: u32,
}

impl Session {
    /// A session for a client that has logged in.
    pub fn new(
        inst: Arc<Instance>,
        client: Client,
        route: Arc<Route>,
        auth: Authenticated,
    ) -> Session {
        Session {
            inst,
            client,
            route,
            auth,
            server: None,
            client_scan: Scanner::default(),
            server_scan: Scanner::default(),
            pending: 0,
        }
    }

    fn mode(&self) -> PoolMode {
        self.route.rule().pool.mode.unwrap_or(PoolMode::Session)
    }

    /// Relays until both sides are quiet, then parks; or ends the session.
    pub fn serve(mut self) {
        loop {
            match self.step() {
                Ok(true) => {}
                // A query is in flight: its answer comes soon, wait here rather than park.
                Ok(false) if self.busy() => {
                    if let Err(e) = machinarium::net::wait_any(&self.park_keys(), Deadline::Never) {
                        return self.end(EndReason::ClientGone(e.into()));
                    }
                }
                Ok(false) => return self.park(),
                Err(reason) => return self.end(reason),
            }
        }
    }

    /// One unit of work; false when there was nothing to do.
    fn step(&mut self) -> Result<bool, EndReason> {
        if !self.client.conn.buffered().is_empty() && self.relay_client()? {
            return Ok(true);
        }
        if self
            .server
            .as_ref()
            .is_some_and(|s| !s.conn.buffered().is_empty())
            && self.relay_server()?
        {
            return Ok(true);
        }
        if self.client.conn.try_fill().map_err(EndReason::ClientGone)? {
            return Ok(true);
        }
        if let Some(server) = self.server.as_mut()
            && server.conn.try_fill().map_err(EndReason::ServerGone)?
        {
            return Ok(true);
        }
        Ok(false)
    }

    /// Waits, with no coroutine, for either side to speak.
    fn park(mut self) {
        if self.inst.is_shutting_down() && self.between_transactions() {
            return self.end(EndReason::Shutdown);
        }
        self.client.conn.shrink();
        if let Some(server) = self.server.as_mut() {
            server.conn.shrink();
        }
        let keys = self.park_keys();
        machinarium::net::park_any(&keys, Deadline::Never, move |_, _| self.serve());
    }

    /// The client's socket, and the server's when one is attached.
    fn park_keys(&self) -> Vec<machinarium::net::ParkKey> {
        let mut keys = vec![self.client.conn.park_key()];
        keys.extend(self.server.as_ref().map(|s| s.conn.park_key()));
        keys
    }

    /// A server is attached and a request is in flight (or a message half relayed).
    fn busy(&self) -> bool {
        self.server.is_some()
            && (self.pending > 0
                || !self.server_scan.at_boundary()
                || !self.client_scan.at_boundary())
    }

    /// No query in flight and no transaction open: the client can be dropped or the server
    /// given back without anyone noticing.
    fn between_transactions(&self) -> bool {
        self.client_scan.at_boundary()
            && self.client.conn.buffered().is_empty()
            && match &self.server {
                None => true,
                Some(s) => {
                    self.pending == 0
                        && s.tx == TransactionStatus::Idle
                        && self.server_scan.at_boundary()
                }
            }
    }

    /// Forwards what the client sent; attaches a server first if it has none.
    fn relay_client(&mut self) -> Result<bool, EndReason> {
        let scan = relay::scan_client(
            &mut self.client_scan,
            self.client.conn.buffered(),
            DEFAULT_MAX_MESSAGE,
        )
        .map_err(|v| EndReason::Protocol(v.0))?;
        if scan.forward == 0 {
            return if scan.terminate {
                Err(EndReason::ClientQuit)
            } else {
                Ok(false)
            };
        }
        if self.server.is_none() {
            self.attach()?;
        }
        let Some(server) = self.server.as_mut() else {
            return Err(EndReason::Cancelled);
        };
        let bytes = &self.client.conn.buffered()[..scan.forward];
        server
            .conn
            .write_all(bytes, Deadline::Never)
            .map_err(EndReason::ServerGone)?;
        self.route
            .stats
            .bytes_in
            .fetch_add(scan.forward as u64, Ordering::Relaxed);
        self.client.conn.consume(scan.forward);
        self.pending += scan.requests;
        Ok(true)
    }

    /// Forwards what the server sent and follows its state; gives the server back at the end
    /// of a transaction in transaction pooling.
    fn relay_server(&mut self) -> Result<bool, EndReason> {
        let Some(server) = self.server.as_mut() else {
            return Ok(false);
        };
        let Server { conn, info, tx } = server;
        let (pending, vars, stats) = (&mut self.pending, &mut self.client.vars, &self.route.stats);
        let n = relay::scan_server(&mut self.server_scan, conn.buffered(), |ev| match ev {
            ServerEvent::Ready(status) => {
                *pending = pending.saturating_sub(1);
                if status == TransactionStatus::Idle && *tx != TransactionStatus::Idle {
                    stats.transactions.fetch_add(1, Ordering::Relaxed);
                }
                *tx = status;
                stats.queries.fetch_add(1, Ordering::Relaxed);
            }
            ServerEvent::Parameter(body) => {
                if let Ok(ps) = ParameterStatus::decode(body) {
                    let _ = info.vars.set_status(&ps);
                    let _ = vars.set_status(&ps);
                }
            }
            ServerEvent::CopyIn | ServerEvent::Error => {}
        });
        if n == 0 {
            return Ok(false);
        }
        self.client
            .conn
            .write_all(&conn.buffered()[..n], Deadline::Never)
            .map_err(EndReason::ClientGone)?;
        conn.consume(n);
        stats.bytes_out.fetch_add(n as u64, Ordering::Relaxed);
        if self.mode() != PoolMode::Session && self.between_transactions() {
            self.release_server(ServerFate::Reset, false);
        }
        Ok(true)
    }

    /// At the first login of a route: a server, to learn the parameters clients are told.
    /// Session pooling keeps it; the other modes give it back at once.
    pub(crate) fn attach_for_setup(&mut self) -> Result<(), EndReason> {
        self.attach()?;
        if self.mode() != PoolMode::Session {
            self.release_server(ServerFate::Reset, false);
        }
        Ok(())
    }

    /// Gets a server from the route's pool (or a new connection), checks it is alive, and
    /// deploys the client's parameters on it.
    fn attach(&mut self) -> Result<(), EndReason> {
        let route = self.route.clone();
        let rule = route.rule();
        let deadline = rule
            .pool
            .timeout
            .filter(|t| !t.is_zero())
            .map_or(Deadline::Never, Deadline::after);
        loop {
            let grant = self
                .route
                .pool
                .acquire(rule.pool.size, deadline)
                .map_err(|e| match e {
                    AcquireError::TimedOut => EndReason::PoolTimeout {
                        route: self.route.name(),
                        pool_size: rule.pool.size,
                    },
                    AcquireError::Cancelled => EndReason::Cancelled,
                })?;
            let mut server = match grant {
                Grant::Connect => self.connect()?,
                Grant::Server(idle) => match idle.attach() {
                    Ok(s) => s,
                    Err(_) => {
                        self.route.pool.closed();
                        continue;
                    }
                },
            };
            // An idle server that has something to say (PostgreSQL restarted, the backend was
            // terminated) is dead: close it and take another.
            if !matches!(server.conn.try_fill(), Ok(false)) {
                od_info!(
                    self.inst.logger,
                    "router",
                    Some(&self.client.info),
                    Some(server.info.id),
                    "idle server is gone, closing"
                );
                close_server(server);
                self.route.pool.closed();
                continue;
            }
            self.deploy(&mut server)?;
            self.client
                .cancel
                .set(Some((server.info.address.clone(), server.info.key.clone())));
            od_debug!(
                self.inst.logger,
                "router",
                Some(&self.client.info),
                Some(server.info.id),
                "attached"
            );
            self.server_scan = Scanner::default();
            self.server = Some(server);
            return Ok(());
        }
    }

    /// Opens a new server connection for this route.
    fn connect(&mut self) -> Result<Server, EndReason> {
        let config = self.route.config().clone();
        let rule = self.route.rule();
        let result = match self.route.storage() {
            None => Err(BackendError::Resolve(format!(
                "storage '{}' is not defined",
                rule.storage
            ))),
            Some(storage) => {
                storage::address(&self.inst, storage, &config.global).and_then(|address| {
                    let credentials = backend_credentials(rule, &self.client.user, &self.auth);
                    backend::connect(&ConnectParams {
                        address,
                        connect_timeout: config.global.backend_connect_timeout,
                        login_timeout: config
                            .global
                            .backend_connect_timeout
                            .max(Duration::from_secs(5)),
                        credentials: &credentials,
                        database: self.route.backend_database(),
                        nodelay: config.global.nodelay,
                        keepalive: crate::system::keepalive(&config.global),
                    })
                })
            }
        };
        match result {
            Ok(server) => {
                self.route.pool.connected();
                self.route.cache_params(&server.info.status);
                od_info!(
                    self.inst.logger,
                    "router",
                    Some(&self.client.info),
                    Some(server.info.id),
                    "new server connection {}",
                    server.info.address
                );
                Ok(server)
            }
            Err(e) => {
                self.route.pool.connect_failed();
                od_error!(
                    self.inst.logger,
                    "router",
                    Some(&self.client.info),
                    None,
                    "server connection failed: {e}"
                );
                if rule.client_fwd_error
                    && let Some(raw) = e.server_error()
                {
                    {
                        let _ = self.client.conn.write_all(
                            &prefix_error(raw, &self.client),
                            Deadline::after(Duration::from_secs(1)),
                        );
                    }
                }
                Err(EndReason::Connect(e))
            }
        }
    }

    /// Sets the client's parameters that differ on the server.
    fn deploy(&mut self, server: &mut Server) -> Result<(), EndReason> {
        let smart = self.route.config().global.smart_search_path_enquoting;
        let sql = self.client.vars.deploy(&server.info.vars, smart);
        if sql.is_empty() {
            return Ok(());
        }
        od_debug!(
            self.inst.logger,
            "deploy",
            Some(&self.client.info),
            Some(server.info.id),
            "{}",
            String::from_utf8_lossy(&sql)
        );
        let deadline = Deadline::after(
            self.route
                .config()
                .global
                .backend_connect_timeout
                .max(Duration::from_secs(5)),
        );
        if let Err(e) = backend::query(server, &sql, deadline) {
            self.route.pool.closed();
            return Err(EndReason::Deploy(e));
        }
        Ok(())
    }

    /// Gives the server back to the pool (after the reset the rule asks for) or closes it.
    fn release_server(&mut self, fate: ServerFate, full_reset: bool) {
        let Some(mut server) = self.server.take() else {
            return;
        };
        self.client.cancel.set(None);
        let clean = fate == ServerFate::Reset && self.reset(&mut server, full_reset);
        if !clean {
            od_info!(
                self.inst.logger,
                "reset",
                Some(&self.client.info),
                Some(server.info.id),
                "closing server"
            );
            close_server(server);
            self.route.pool.closed();
            return;
        }
        match server.detach() {
            Ok(idle) => self.route.pool.release(idle),
            Err(failed) => {
                let (info, why) = *failed;
                od_info!(
                    self.inst.logger,
                    "reset",
                    Some(&self.client.info),
                    Some(info.id),
                    "closing server: {why}"
                );
                self.route.pool.closed();
            }
        }
        self.pending = 0;
    }

    /// Makes the server fit for another client, or says it cannot be (then it is closed).
    /// `full` runs the configured discard (at disconnect); transaction ends only need the
    /// transaction closed.
    fn reset(&mut self, server: &mut Server, full: bool) -> bool {
        if self.pending != 0 || !self.server_scan.at_boundary() || !self.client_scan.at_boundary() {
            return false;
        }
        let rule = self.route.rule();
        let deadline = Deadline::after(
            rule.pool
                .reset_timeout
                .filter(|t| !t.is_zero())
                .unwrap_or(DEFAULT_RESET_TIMEOUT),
        );
        if server.tx != TransactionStatus::Idle
            && (!rule.pool.rollback || backend::query(server, b"ROLLBACK", deadline).is_err())
        {
            return false;
        }
        if !full {
            return server.tx == TransactionStatus::Idle;
        }
        let mut sql: Vec<u8> = Vec::new();
        if rule.pool.discard {
            sql.extend_from_slice(b"DISCARD ALL;");
        } else if rule.pool.smart_discard {
            sql.extend_from_slice(SMART_DISCARD);
        }
        if let Some(q) = &rule.pool.discard_query {
            sql.extend_from_slice(q.as_bytes());
        }
        sql.is_empty() || backend::query(server, &sql, deadline).is_ok()
    }

    /// Ends the session: tells the client why (when it should know), decides the server's
    /// fate, logs.
    pub fn end(mut self, reason: EndReason) {
        let rule = self.route.rule();
        let (reply, fate) = reason.outcome(rule.client_fwd_error);
        if let Some(reply) = reply {
            let mut out = Vec::new();
            reply.encode(self.client.id, self.client.show_id, &mut out);
            let _ = self
                .client
                .conn
                .write_all(&out, Deadline::after(Duration::from_secs(1)));
        }
        let fate = match reason {
            EndReason::ClientGone(ConnError::Protocol(_)) => ServerFate::Close,
            _ => fate,
        };
        self.release_server(fate, true);
        if self.inst.logger.flags().session {
            od_info!(
                self.inst.logger,
                "main",
                Some(&self.client.info),
                None,
                "client disconnected ({reason}), route {}, working time: {}us",
                self.route.name(),
                self.client.connected_at.elapsed().as_micros()
            );
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // Reached after `end`, or when a stopping machine drops a parked session.
        if let Some(server) = self.server.take() {
            close_server(server);
            self.route.pool.closed();
        }
        self.route.leave();
        self.inst.cancels.unregister(self.client.key);
        self.inst.clients.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Says goodbye to a server and drops the connection.
pub fn close_server(mut server: Server) {
    let _ = server.conn.write_all(
        &[b'X', 0, 0, 0, 4],
        Deadline::after(Duration::from_millis(100)),
    );
}

/// A server's ErrorResponse with the client id in front of its message, for
/// `client_fwd_error`.
fn prefix_error(raw: &[u8], client: &Client) -> Vec<u8> {
    let body = raw.get(5..).unwrap_or_default();
    let Ok(fields) = kiwi::backend::ErrorFields::decode(body) else {
        return raw.to_vec();
    };
    let message = String::from_utf8_lossy(fields.message().unwrap_or_default()).into_owned();
    let text = if client.show_id {
        format!("odyssey: {}: {message}", client.id)
    } else {
        format!("odyssey: {message}")
    };
    let mut out = Vec::new();
    fields
        .set(kiwi::backend::field::MESSAGE, text.as_bytes())
        .encode_error(&mut out);
    out
}
