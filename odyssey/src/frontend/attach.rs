//! A session's server: attach one from the route's pool (or connect a new one), deploy the
//! client's parameters on it, and give it back (reset) or close it.

use std::time::Duration;

use machinarium::Deadline;

use crate::auth::backend::backend_credentials;
use crate::backend::{self, BackendError, ConnectParams};
use crate::client::Client;
use crate::config::PoolMode;
use crate::frontend::end::{EndReason, ServerFate};
use crate::frontend::session::Session;
use crate::pool::{AcquireError, Grant};
use crate::relay::Scanner;
use crate::reset::{self, Protocol};
use crate::server::Server;
use crate::{od_debug, od_error, od_info, storage};

impl Session {
    /// At the first login of a route: a server, to learn the parameters clients are told.
    /// Session pooling keeps it; the other modes give it back at once.
    pub(crate) fn attach_for_setup(&mut self) -> Result<(), EndReason> {
        self.attach()?;
        if self.mode() != PoolMode::Session {
            self.release_server(ServerFate::Reset, false);
        }
        Ok(())
    }

    /// Gets a server from the route's pool (or a new connection), checks it is alive, deploys
    /// the client's parameters, and opens the client's deferred transaction on it.
    pub(super) fn attach(&mut self) -> Result<(), EndReason> {
        let route = self.route.clone();
        let rule = route.rule();
        let deadline = rule
            .pool
            .timeout
            .filter(|t| !t.is_zero())
            .map_or(Deadline::Never, Deadline::after);
        loop {
            let grant = route
                .pool
                .acquire(rule.pool.size, deadline)
                .map_err(|e| match e {
                    AcquireError::TimedOut => EndReason::PoolTimeout {
                        route: route.name(),
                        pool_size: rule.pool.size,
                    },
                    AcquireError::Cancelled => EndReason::Cancelled,
                })?;
            let mut server = match grant {
                Grant::Connect => self.connect()?,
                Grant::Server(idle) => match (*idle).attach() {
                    Ok(s) => s,
                    Err(_) => {
                        route.pool.closed();
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
                route.pool.closed();
                continue;
            }
            self.prepare(&mut server)?;
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

    /// Deploys the client's parameters, and the deferred BEGIN, in one round trip.
    fn prepare(&mut self, server: &mut Server) -> Result<(), EndReason> {
        let smart = self.route.config().global.smart_search_path_enquoting;
        let (mut sql, after) = crate::deploy::deploy(
            &self.client.vars,
            &server.info.vars,
            &server.info.defaults,
            smart,
        );
        if self.deferred_begin {
            sql.extend_from_slice(b"BEGIN;");
        }
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
        // Parameters PostgreSQL does not report are known only from what was sent.
        server.info.vars = after;
        self.deferred_begin = false;
        Ok(())
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
                    let _ = self.client.conn.write_all(
                        &prefix_error(raw, &self.client),
                        Deadline::after(Duration::from_secs(1)),
                    );
                }
                Err(EndReason::Connect(e))
            }
        }
    }

    /// Gives the server back to the pool (after the reset it needs) or closes it.
    /// `session_end`: the client is leaving, so the configured discard runs.
    pub(super) fn release_server(&mut self, fate: ServerFate, session_end: bool) {
        let Some(mut server) = self.server.take() else {
            return;
        };
        self.client.cancel.set(None);
        let mut protocol = Protocol {
            pending: self.pending,
            server_scan: self.server_scan,
            client_unfinished: !self.client_scan.at_boundary() || (self.unsynced && !session_end),
            dirty: self.dirty,
            session_end,
        };
        let config = self.route.config().clone();
        let cancel_timeout = config.global.cancel_timeout.max(Duration::from_millis(100));
        let verdict = match fate {
            ServerFate::Close => Err("its state is unknown"),
            ServerFate::Reset => reset::reset(
                &mut server,
                &mut protocol,
                &self.route.rule().pool,
                cancel_timeout,
            ),
        };
        self.pending = 0;
        self.unsynced = false;
        self.dirty = false;
        self.sets = Default::default();
        if let Some(statements) = self.statements.as_mut() {
            statements.forget_owed();
        }
        if let Err(why) = verdict {
            od_info!(
                self.inst.logger,
                "reset",
                Some(&self.client.info),
                Some(server.info.id),
                "closing server: {why}"
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
