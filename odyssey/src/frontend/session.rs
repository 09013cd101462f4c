//! A logged-in client's session, the I/O half of the relay: fill the two buffers, hand them to
//! `relay::Relay`, write what it says, attach a server when it asks for one and give the
//! server back when it says so, park when both sides are quiet (no coroutine or stack while
//! idle), and end through `end::End`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use kiwi::backend::TransactionStatus;
use machinarium::{Deadline, ParkEvent};

use super::admission::Admission;
use super::clock::{Clock, SHUTDOWN_GRACE};
use super::end::{self, End, Idle, ServerFate};
use super::querylog::QueryLog;
use super::setup;
use crate::auth::Authenticated;
use crate::auth::backend::{BackendCredentials, backend_credentials, retained_for_servers};
use crate::client::{CancelSlot, Client};
use crate::clients::{ClientEntry, ClientState};
use crate::config::{PoolMode, QueryParsingMode};
use crate::instance::Instance;
use crate::od_info;
use crate::relay::{self, Attached, ClientStep, Relay, Reply as RelayReply};
use crate::route::Route;
use crate::router::Checkout;
use crate::server::Server;

/// A client between login and disconnect.
pub struct Session {
    pub(super) inst: Arc<Instance>,
    pub(super) client: Client,
    pub(super) route: Arc<Route>,
    /// What of the client's login its server logins use (password pass-through, SCRAM keys,
    /// an auth_query hash); `None` when they use nothing of it.
    pub(super) auth: Option<Box<Authenticated>>,
    /// The key the client was told, and where a cancel with it goes.
    pub(super) cancel: Arc<CancelSlot>,
    /// The server it holds, if any; boxed, so that a session of a transaction pool, idle
    /// without one most of its life, keeps no room for it.
    pub(super) server: Option<Box<Checkout>>,
    pub(super) relay: Relay,
    /// `log_query` framing over what the client sent.
    query_log: Option<Box<QueryLog>>,
    /// When the query and the transaction in flight started (for their times).
    pub(super) clock: Clock,
    /// What the console sees of the client (its state; whether it was killed).
    pub(super) entry: Arc<ClientEntry>,
    /// Its LISTENs (transaction and statement pooling), from its first; boxed, as few
    /// clients listen.
    pub(super) listening: Option<Box<super::listen::Listening>>,
    /// Counts the client in the instance and the route; last to go.
    pub(super) admission: Admission,
}

impl Session {
    /// A session for a client that has logged in on `route`.
    pub fn new(
        inst: Arc<Instance>,
        client: Client,
        (route, entry): (Arc<Route>, Arc<ClientEntry>),
        mut admission: Admission,
        auth: Authenticated,
    ) -> Session {
        let cancel = admission.register_cancel(client.protocol);
        let rule = route.rule();
        let relay = Relay::new(relay::Settings {
            mode: rule.pool.mode.unwrap_or(PoolMode::Session),
            virtual_transaction: route.config().global.virtual_transaction,
            prepared_statements: rule.pool.reserve_prepared_statement,
            prepared_max: rule.pool.prepared_statements_max as usize,
            client: client.id,
            registry: inst.statements.clone(),
            show_id: client.show_id,
            parse_queries: route.config().query_parsing.mode != QueryParsingMode::Disabled,
            pin_on_listen: rule.pool.pin_on_listen,
            drop_on_cached_plan_error: rule.server_drop_on_cached_plan_error,
            target_session_attrs: route
                .config()
                .global
                .virtual_processing
                .then_some(route.key.tsa),
        });
        let auth = retained_for_servers(rule, auth);
        Session {
            inst,
            client,
            route,
            auth,
            cancel,
            server: None,
            relay,
            query_log: None,
            clock: Clock::default(),
            entry,
            listening: None,
            admission,
        }
    }

    /// How long a write waits for a peer that reads nothing (from the keepalive settings;
    /// computed, not kept, to keep an idle session small).
    pub(super) fn stall(&self) -> Duration {
        crate::conn::stall_timeout(&self.route.config().global)
    }

    /// The credentials the client's server logins use.
    pub(super) fn credentials(&self) -> BackendCredentials {
        backend_credentials(self.route.rule(), &self.client.user, self.auth.as_deref())
    }

    /// Tells the client its parameters and key, then relays until the end.
    pub fn start(mut self: Box<Self>) {
        match self.setup() {
            Ok(()) => self.serve(),
            Err(end) => self.end(end),
        }
    }

    /// ParameterStatus for every parameter a server of the route reports, our
    /// BackendKeyData, ReadyForQuery. The first client of a route gets a server now, to learn
    /// those parameters.
    fn setup(&mut self) -> Result<(), End> {
        // A server tells the route's parameters (first login) and the server's form of values
        // the client sent that the route has not seen yet.
        if (self.route.params().is_none() || self.normalize_startup_params())
            && self.server.is_none()
        {
            self.attach_for_setup()?;
        }
        let params = self.route.params().unwrap_or_default();
        let out = setup::greeting(&params, &self.client.vars, self.cancel.key());
        self.write_client(&out)?;
        self.clock.answered = Some(Instant::now());
        if self.inst.logger.flags().session {
            od_info!(
                self.inst.logger,
                "setup",
                Some(&self.client.info),
                None,
                "client connection from {} to route {} accepted",
                self.client
                    .info
                    .addr
                    .map_or("unix socket".into(), |a| a.to_string()),
                self.route.name()
            );
        }
        Ok(())
    }

    /// Relays until both sides are quiet, then parks; or ends the session. The session is
    /// boxed, so that parking moves a pointer rather than the whole session.
    pub fn serve(mut self: Box<Self>) {
        loop {
            if self.entry.killed() {
                return self.end(End::Killed);
            }
            match self.step() {
                Ok(true) => {}
                // A query is in flight: its answer comes soon, wait here rather than park.
                Ok(false) if self.server.is_some() && self.relay.busy() => {
                    let (keys, n) = self.park_keys();
                    if let Err(e) = machinarium::net::wait_any(&keys[..n], Deadline::Never) {
                        return self.end(End::ClientGone(e.into()));
                    }
                }
                Ok(false) => match self.deliver_notifications() {
                    Ok(()) => return self.park(),
                    Err(end) => return self.end(end),
                },
                Err(end) => return self.end(end),
            }
        }
    }

    /// One unit of work; false when there was nothing to do.
    fn step(&mut self) -> Result<bool, End> {
        if !self.client.conn.buffered().is_empty() && self.relay_client()? {
            return Ok(true);
        }
        if self
            .server
            .as_ref()
            .is_some_and(|s| !s.server().conn.buffered().is_empty())
            && self.relay_server()?
        {
            return Ok(true);
        }
        if self.client.conn.try_fill().map_err(End::ClientGone)? {
            return Ok(true);
        }
        if let Some(checkout) = self.server.as_mut()
            && checkout
                .server_mut()
                .conn
                .try_fill()
                .map_err(End::ServerGone)?
        {
            return Ok(true);
        }
        Ok(false)
    }

    /// Waits, with no coroutine, for either side to speak, or for an idle timeout.
    fn park(mut self: Box<Self>) {
        let quiet = || {
            self.clock
                .answered
                .is_none_or(|t| t.elapsed() >= SHUTDOWN_GRACE)
        };
        if self.inst.is_shutting_down() && self.between_transactions() && quiet() && self.may_go() {
            let drain = self.inst.drain();
            return self.end(End::Shutdown(drain));
        }
        self.count_cancels();
        self.client.conn.shrink();
        self.relay.shed();
        if let Some(checkout) = self.server.as_mut() {
            checkout.server_mut().info.publish_statements();
            checkout.server_mut().conn.shrink();
        }
        let (keys, n) = self.park_keys();
        let (deadline, idle) = match self.idle_timeout() {
            Some((t, idle)) => (Deadline::after(t), Some(idle)),
            None => (Deadline::Never, None),
        };
        // The closure holds the session's pointer and the kind of timeout only: it is what an
        // idle client costs besides its session.
        machinarium::net::park_any(&keys[..n], deadline, move |_, ev| match (ev, idle) {
            (ParkEvent::TimedOut, Some(idle)) => self.end(End::IdleTimeout(idle)),
            _ => self.serve(),
        });
    }

    /// A draining process may drop this idle client now: at once when it never had a
    /// session server, else within `conn_drop_options`' rate (a refused one parks again and
    /// the drain wakes it to ask later).
    fn may_go(&self) -> bool {
        let never_attached = self.relay.mode() == PoolMode::Session && self.server.is_none();
        never_attached || self.inst.drain.permit(Instant::now())
    }

    /// `pool_idle_in_transaction_timeout` for a client idle inside a transaction;
    /// `pool_client_idle_timeout` for a session-pool client idle with its server.
    fn idle_timeout(&self) -> Option<(Duration, Idle)> {
        let pool = &self.route.rule().pool;
        let in_tx = self.relay.deferred_begin()
            || self
                .server
                .as_ref()
                .is_some_and(|s| s.server().tx != TransactionStatus::Idle);
        if in_tx {
            return pool
                .idle_in_transaction_timeout
                .filter(|t| !t.is_zero())
                .map(|t| (t, Idle::InTransaction));
        }
        if self.relay.mode() == PoolMode::Session && self.server.is_some() {
            return pool
                .client_idle_timeout
                .filter(|t| !t.is_zero())
                .map(|t| (t, Idle::Client));
        }
        None
    }

    /// The client's socket, and the server's when one is attached.
    fn park_keys(&self) -> ([machinarium::net::ParkKey; 2], usize) {
        let client = self.client.conn.park_key();
        match &self.server {
            Some(s) => ([client, s.server().conn.park_key()], 2),
            None => ([client, client], 1),
        }
    }

    /// No query in flight and no transaction open, nothing unread from the client: the client
    /// can be dropped or the server given back without anyone noticing.
    pub(super) fn between_transactions(&self) -> bool {
        self.client.conn.buffered().is_empty()
            && self
                .relay
                .between_transactions(self.server.as_ref().map(|s| s.server().tx))
    }

    /// Hands the client's bytes to the relay and does what it says.
    fn relay_client(&mut self) -> Result<bool, End> {
        let boundary = self.relay.client_at_boundary();
        let attached = self.server.as_mut().map(|c| {
            let s = c.server_mut();
            Attached {
                info: &mut s.info,
                tx: s.tx,
            }
        });
        let step = self
            .relay
            .client(self.client.conn.buffered(), attached)
            .map_err(End::Protocol)?;
        match step {
            ClientStep::Wait => return Ok(false),
            ClientStep::Terminate => return Err(End::ClientQuit),
            ClientStep::NeedServer => {
                self.attach()?;
                return Ok(true);
            }
            ClientStep::Forward(n) => {
                let deadline = Deadline::after(self.stall());
                let Some(checkout) = self.server.as_mut() else {
                    return Err(End::Cancelled);
                };
                let bytes = &self.client.conn.buffered()[..n];
                checkout
                    .server_mut()
                    .conn
                    .write_all(bytes, deadline)
                    .map_err(End::ServerGone)?;
                self.count_in(n);
                self.log_queries(n, boundary);
                self.client.conn.consume(n);
            }
            ClientStep::Rewrite {
                used,
                server,
                client,
            } => {
                if !server.is_empty() {
                    let stall = self.stall();
                    self.attached()?
                        .conn
                        .write_all(&server, Deadline::after(stall))
                        .map_err(End::ServerGone)?;
                    self.count_in(server.len());
                }
                // A COMMIT of a deferred transaction, answered here.
                if self.server.is_none() && !self.relay.deferred_begin() {
                    self.listen_at_transaction_end();
                }
                self.write_client(&client)?;
                self.log_queries(used, boundary);
                self.client.conn.consume(used);
            }
            ClientStep::Listen {
                used,
                op,
                status,
                prefix,
            } => {
                self.log_queries(used, boundary);
                self.listen((used, op), status, prefix)?;
            }
        }
        self.count_parses();
        self.release_if_done();
        Ok(true)
    }

    /// `log_query` lines for the first `n` buffered client bytes, about to be consumed
    /// (`boundary`: they start a message).
    fn log_queries(&mut self, n: usize, boundary: bool) {
        let on = self.inst.logger.flags().query || self.route.rule().log_query;
        if !on {
            self.query_log = None;
            return;
        }
        // The framing starts at a message boundary; boxed, as few sessions log their queries.
        if self.query_log.is_none() && boundary {
            self.query_log = Some(Box::default());
        }
        let Some(query_log) = self.query_log.as_mut() else {
            return;
        };
        let bytes = &self.client.conn.buffered()[..n];
        let server = self.server.as_ref().map(|c| c.id());
        for (context, line) in query_log.consumed(bytes, on) {
            od_info!(
                self.inst.logger,
                context,
                Some(&self.client.info),
                server,
                "{line}"
            );
        }
    }

    /// Hands the server's bytes to the relay and does what it says.
    fn relay_server(&mut self) -> Result<bool, End> {
        let Some(checkout) = self.server.as_mut() else {
            return Ok(false);
        };
        let Server { conn, info, tx } = checkout.server_mut();
        let step = self
            .relay
            .server(conn.buffered(), info, tx, &mut self.client.vars)
            .map_err(End::ServerProtocol)?;
        if step.used == 0 {
            return Ok(false);
        }
        // Counted before the client sees the reply, so that whoever it tells finds it counted.
        let counts = (step.used, step.queries, step.transactions);
        self.clock.count_out(&self.route, self.relay.busy(), counts);
        // A client that sees the end of its transaction must find itself idle: whoever it
        // tells (a dashboard, a test) reads the state after the reply, not before the release.
        if self.client.conn.buffered().is_empty() && self.relay.may_release(*tx) {
            self.entry.set_state(ClientState::Pending);
        }
        let status = *tx;
        if let Some(op) = self.relay.take_listened() {
            self.listened_on_server(op, status);
        }
        if status == TransactionStatus::Idle && step.queries > 0 {
            self.listen_at_transaction_end();
        }
        let deadline = Deadline::after(self.stall());
        let Some(Server { conn, .. }) = self.server.as_deref_mut().map(Checkout::server_mut) else {
            return Err(End::Cancelled);
        };
        match &step.reply {
            RelayReply::Same => self
                .client
                .conn
                .write_all(&conn.buffered()[..step.used], deadline),
            RelayReply::Rewritten(bytes) => self.client.conn.write_all(bytes, deadline),
        }
        .map_err(End::ClientGone)?;
        conn.consume(step.used);
        self.release_if_done();
        Ok(true)
    }

    /// The attached server (the relay asked for it only with one attached).
    fn attached(&mut self) -> Result<&mut Server, End> {
        self.server
            .as_deref_mut()
            .map(Checkout::server_mut)
            .ok_or(End::Cancelled)
    }
}

impl Session {
    /// Writes to the client (nothing when `bytes` is empty).
    pub(super) fn write_client(&mut self, bytes: &[u8]) -> Result<(), End> {
        if bytes.is_empty() {
            return Ok(());
        }
        self.client
            .conn
            .write_all(bytes, Deadline::after(self.stall()))
            .map_err(End::ClientGone)
    }

    /// In transaction and statement pooling, gives the server back between transactions.
    fn release_if_done(&mut self) {
        let Some(tx) = self.server.as_ref().map(|s| s.server().tx) else {
            return;
        };
        if self.client.conn.buffered().is_empty() && self.relay.may_release(tx) {
            self.release_server(ServerFate::Reset, false);
        }
    }

    /// Ends the session: tells the client what the table says, decides the server's fate,
    /// logs. The admission goes with `self`.
    pub fn end(mut self: Box<Self>, end: End) {
        self.count_cancels();
        if let Some(kind) = end.error_kind() {
            self.inst.errors.add(kind);
            self.route.stats.errors.add(kind);
        }
        let outcome = end.outcome(self.route.rule().client_fwd_error);
        let farewell = end::farewell_bytes(&outcome.farewell, self.client.id, self.client.show_id);
        if let Some(bytes) = farewell {
            let deadline = Deadline::after(Duration::from_secs(1));
            if self.client.conn.write_all(&bytes, deadline).is_ok() {
                self.client.conn.close_gracefully(deadline);
            }
        }
        self.release_server(outcome.server, true);
        if self.inst.logger.flags().session {
            od_info!(
                self.inst.logger,
                "main",
                Some(&self.client.info),
                None,
                "client disconnected ({end}), route {}, working time: {}us",
                self.route.name(),
                self.client.connected_at.elapsed().as_micros()
            );
        }
    }
}
