//! A logged-in client's session: relay between the client and its server, attach a server
//! when the client needs one, give it back when the pool mode says so, park when both sides
//! are quiet (no coroutine or stack while idle), and end.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use kiwi::backend::{CommandComplete, ParameterStatus, ReadyForQuery, TransactionStatus};
use machinarium::{Deadline, ParkEvent};

use crate::auth::Authenticated;
use crate::client::Client;
use crate::config::PoolMode;
use crate::conn::{ConnError, DEFAULT_MAX_MESSAGE};
use crate::frontend::end::{EndReason, ServerFate};
use crate::frontend::pstmt::{self, Expect, Statements};
use crate::frontend::sets::SetTracker;
use crate::instance::Instance;
use crate::relay::{self, Scanner, ServerEvent};
use crate::reply::Reply;
use crate::route::Route;
use crate::server::Server;
use crate::sql::{self, Statement};
use crate::{od_info, reset};

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
    pub(super) client_scan: Scanner,
    pub(super) server_scan: Scanner,
    /// Requests sent to the server (Query, Sync, FunctionCall) not yet answered with
    /// ReadyForQuery.
    pub(super) pending: u32,
    /// The client is inside an extended-protocol sequence (no Sync yet).
    pub(super) unsynced: bool,
    /// A bare BEGIN was answered by the pooler; the real one goes ahead of the next query.
    pub(super) deferred_begin: bool,
    /// The session ran something that leaves state on the server (SET, temp table, ...).
    pub(super) dirty: bool,
    /// Named prepared statements and the replies owed, in transaction and statement pooling
    /// with `pool_reserve_prepared_statement`.
    pub(super) statements: Option<Statements>,
    /// SETs of tracked parameters on their way; once in effect, deploy carries them to the
    /// client's next server (so their completions leave nothing untracked behind).
    pub(super) sets: SetTracker,
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
            unsynced: false,
            deferred_begin: false,
            dirty: false,
            sets: SetTracker::default(),
            statements: None,
        }
    }

    /// Turns on prepared-statement handling when the route's pool mode needs it.
    pub fn with_statements(mut self) -> Session {
        let pool = &self.route.rule().pool;
        if self.mode() != PoolMode::Session && pool.reserve_prepared_statement {
            self.statements = Some(Statements::default());
        }
        self
    }

    pub(super) fn mode(&self) -> PoolMode {
        self.route.rule().pool.mode.unwrap_or(PoolMode::Session)
    }

    /// Relays until both sides are quiet, then parks; or ends the session.
    pub fn serve(mut self) {
        loop {
            match self.step() {
                Ok(true) => {}
                // A query is in flight: its answer comes soon, wait here rather than park.
                Ok(false) if self.busy() => {
                    if let Err(e) = {
                        let (keys, n) = self.park_keys();
                        machinarium::net::wait_any(&keys[..n], Deadline::Never)
                    } {
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

    /// Waits, with no coroutine, for either side to speak, or for an idle timeout.
    fn park(mut self) {
        if self.inst.is_shutting_down() && self.between_transactions() {
            return self.end(EndReason::Shutdown);
        }
        self.client.conn.shrink();
        if let Some(server) = self.server.as_mut() {
            server.conn.shrink();
        }
        let (keys, n) = self.park_keys();
        let keys = &keys[..n];
        let timeout = self.idle_timeout();
        machinarium::net::park_any(
            keys,
            timeout.map_or(Deadline::Never, |(t, _)| Deadline::after(t)),
            move |_, ev| match (ev, timeout) {
                (ParkEvent::TimedOut, Some((_, detail))) => {
                    self.end(EndReason::IdleTimeout(detail))
                }
                _ => self.serve(),
            },
        );
    }

    /// `pool_idle_in_transaction_timeout` for a client idle inside a transaction;
    /// `pool_client_idle_timeout` for a session-pool client idle with its server.
    fn idle_timeout(&self) -> Option<(Duration, &'static str)> {
        let pool = &self.route.rule().pool;
        let in_tx = self.deferred_begin
            || self
                .server
                .as_ref()
                .is_some_and(|s| s.tx != TransactionStatus::Idle);
        if in_tx {
            return pool
                .idle_in_transaction_timeout
                .filter(|t| !t.is_zero())
                .map(|t| {
                    (
                        t,
                        "Connection was dropped by Odyssey due to idle in transaction timeout",
                    )
                });
        }
        if self.mode() == PoolMode::Session && self.server.is_some() {
            return pool
                .client_idle_timeout
                .filter(|t| !t.is_zero())
                .map(|t| (t, "Connection was dropped by Odyssey due to idle timeout"));
        }
        None
    }

    /// The client's socket, and the server's when one is attached.
    fn park_keys(&self) -> ([machinarium::net::ParkKey; 2], usize) {
        let client = self.client.conn.park_key();
        match &self.server {
            Some(s) => ([client, s.conn.park_key()], 2),
            None => ([client, client], 1),
        }
    }

    /// A server is attached and a request is in flight (or a message half relayed).
    fn busy(&self) -> bool {
        self.server.is_some()
            && (self.pending > 0
                || self.statements.as_ref().is_some_and(Statements::owed)
                || !self.server_scan.at_boundary()
                || !self.client_scan.at_boundary())
    }

    /// No query in flight and no transaction open: the client can be dropped or the server
    /// given back without anyone noticing.
    pub(super) fn between_transactions(&self) -> bool {
        self.client_scan.at_boundary()
            && !self.unsynced
            && !self.deferred_begin
            && !self.statements.as_ref().is_some_and(Statements::owed)
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

    /// Forwards what the client sent; answers a deferred BEGIN itself; attaches a server
    /// first if it has none.
    fn relay_client(&mut self) -> Result<bool, EndReason> {
        if self.server.is_none() && self.client_scan.at_boundary() && self.virtual_transaction()? {
            return Ok(true);
        }
        // A client that uses named statements goes through the statements relay; one that
        // never does (simple protocol, unnamed statements) keeps the bulk relay, which stops
        // before its first Parse/Bind/Describe/Close.
        let mut limit = self.client.conn.buffered().len();
        if let Some(statements) = &self.statements
            && self.client_scan.at_boundary()
        {
            let buffered = self.client.conn.buffered();
            if statements.has_names()
                || statements.owed()
                || buffered.first().is_some_and(|t| Statements::needed_for(*t))
            {
                if !statements.owed() && self.pending > 0 {
                    // Replies to bulk-relayed requests first: the queue of owed replies starts
                    // empty.
                    return Ok(false);
                }
                return self.relay_client_statements();
            }
            limit = relay::first_message(buffered, Statements::needed_for);
        }
        let mut sets: Vec<(String, String)> = Vec::new();
        let scan = relay::scan_client(
            &mut self.client_scan,
            &self.client.conn.buffered()[..limit],
            DEFAULT_MAX_MESSAGE,
            |tag, body| {
                // Tracked even when PostgreSQL does not report it, so it follows the client.
                if let (b'Q', Some(body)) = (tag, body)
                    && let Statement::Set { name, value } = sql::classify(body)
                    && kiwi::var::is_tracked(name)
                {
                    sets.push((name.to_string(), value));
                }
            },
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
        for setting in sets {
            self.sets.sent(setting);
        }
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
        if let Some(unsynced) = scan.unsynced {
            self.unsynced = unsynced;
        }
        Ok(true)
    }

    /// The relay for clients with prepared statements: whole messages, Parse/Bind/Describe/
    /// Close rewritten to the pooler's statement names (see `frontend::pstmt`), replies owed
    /// queued in order. Other messages pass as they are; a long one (COPY data) streams.
    fn relay_client_statements(&mut self) -> Result<bool, EndReason> {
        if self.server.is_none()
            && let Some(statements) = self.statements.as_mut()
        {
            // Preparing needs no server: a client waiting for one to prepare would hold up
            // nothing, but a client that prepares synchronously while others of its thread
            // hold every server would wait for ever (pgbench -M prepared does).
            let tx = if self.deferred_begin {
                TransactionStatus::InTransaction
            } else {
                TransactionStatus::Idle
            };
            if let Some((replies, used)) =
                statements.answer_locally(self.client.conn.buffered(), tx)
            {
                self.client
                    .conn
                    .write_all(&replies, Deadline::Never)
                    .map_err(EndReason::ClientGone)?;
                self.client.conn.consume(used);
                return Ok(true);
            }
        }
        if self.server.is_none() {
            match self.client.conn.buffered() {
                [b'X', ..] => return Err(EndReason::ClientQuit),
                b if b.len() >= 5 => self.attach()?,
                _ => return Ok(false),
            }
        }
        let Some(server) = self.server.as_mut() else {
            return Err(EndReason::Cancelled);
        };
        let Some(statements) = self.statements.as_mut() else {
            return Ok(false);
        };
        let max_statements = self.route.rule().pool.prepared_statements_max as usize;
        let buffered = self.client.conn.buffered();
        let mut out = Vec::new();
        // Replies the pooler gives at once (DEALLOCATE), before anything queued after them.
        let mut direct = Vec::new();
        let mut used = 0;
        let mut terminate = false;
        while buffered.len() - used >= 5 {
            let buf = &buffered[used..];
            let (tag, len) = (
                buf[0],
                u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]) as usize,
            );
            if tag < 0x20 || len < 4 || len > DEFAULT_MAX_MESSAGE as usize {
                return Err(EndReason::Protocol(format!(
                    "message '{}' with length {len}",
                    tag.escape_ascii()
                )));
            }
            if tag == b'X' {
                terminate = true;
                break;
            }
            if buf.len() < len + 1 {
                // Not all here: a long message other than the ones rewritten may stream.
                if used == 0 && !matches!(tag, b'P' | b'B' | b'D' | b'C' | b'Q') {
                    let scan = relay::scan_client(
                        &mut self.client_scan,
                        buf,
                        DEFAULT_MAX_MESSAGE,
                        |_, _| {},
                    )
                    .map_err(|v| EndReason::Protocol(v.0))?;
                    out.extend_from_slice(&buf[..scan.forward]);
                    used = scan.forward;
                }
                break;
            }
            let (msg, body) = (&buf[..len + 1], &buf[5..len + 1]);
            let prepared = &mut server.info.prepared;
            let result = match tag {
                b'P' => statements.parse(body, |k| prepared.contains(&k), &mut out),
                b'B' => statements.bind(body, |k| prepared.contains(&k), &mut out),
                b'D' => statements.describe(body, |k| prepared.contains(&k), &mut out),
                b'C' => statements.close(body, &mut out).map(|()| None),
                b'Q' => {
                    if let Some(reply) = pstmt::deallocate(statements, body, server.tx) {
                        if statements.owed() || !out.is_empty() {
                            // Answer it in turn, once what came before it is answered.
                            break;
                        }
                        direct.extend_from_slice(&reply);
                        used += msg.len();
                        continue;
                    }
                    if let Statement::Set { name, value } = sql::classify(body)
                        && kiwi::var::is_tracked(name)
                    {
                        self.sets.sent((name.to_string(), value));
                    }
                    statements.expect.push_back(Expect::Query);
                    self.pending += 1;
                    self.unsynced = false;
                    out.extend_from_slice(msg);
                    Ok(None)
                }
                _ => {
                    match tag {
                        b'E' => statements.expect.push_back(Expect::Execute),
                        b'S' => statements.expect.push_back(Expect::Sync),
                        b'F' => statements.expect.push_back(Expect::Query),
                        _ => {}
                    }
                    out.extend_from_slice(msg);
                    Ok(None)
                }
            };
            if let Some(key) = result.map_err(EndReason::Protocol)? {
                prepared.insert(key, max_statements);
            }
            match tag {
                b'S' | b'F' => {
                    self.pending += 1;
                    self.unsynced = false;
                }
                b'P' | b'B' | b'D' | b'E' | b'C' | b'H' => self.unsynced = true,
                _ => {}
            }
            used += msg.len();
        }
        if !out.is_empty() {
            server
                .conn
                .write_all(&out, Deadline::Never)
                .map_err(EndReason::ServerGone)?;
            self.route
                .stats
                .bytes_in
                .fetch_add(out.len() as u64, Ordering::Relaxed);
        }
        let mut ours = direct;
        pstmt::take_synthetic(&mut statements.expect, &mut ours);
        if !ours.is_empty() {
            self.client
                .conn
                .write_all(&ours, Deadline::Never)
                .map_err(EndReason::ClientGone)?;
        }
        self.client.conn.consume(used);
        if used == 0 && terminate {
            return Err(EndReason::ClientQuit);
        }
        if self.mode() != PoolMode::Session && self.between_transactions() {
            self.release_server(ServerFate::Reset, false);
        }
        Ok(used > 0)
    }

    /// `virtual_transaction`: a bare BEGIN outside a transaction is answered here and sent to a
    /// server only when the transaction does something; a bare COMMIT/ROLLBACK of such an
    /// empty transaction is answered here too. True when a message was handled.
    fn virtual_transaction(&mut self) -> Result<bool, EndReason> {
        let mode = self.mode();
        if mode == PoolMode::Session {
            return Ok(false);
        }
        let buf = self.client.conn.buffered();
        let Some(header) = kiwi::header::Header::parse(buf, DEFAULT_MAX_MESSAGE)
            .ok()
            .flatten()
        else {
            return Ok(false);
        };
        if header.tag != b'Q' || buf.len() < header.frame_len() {
            return Ok(false);
        }
        let statement = sql::classify(&buf[5..header.frame_len()]);
        if mode == PoolMode::Statement && statement == Statement::Begin {
            return self.refuse_transaction_block(header.frame_len());
        }
        if !self.route.config().global.virtual_transaction {
            return Ok(false);
        }
        let (tag, status) = match statement {
            Statement::Begin if !self.deferred_begin => ("BEGIN", TransactionStatus::InTransaction),
            Statement::End { tag } if self.deferred_begin => (tag, TransactionStatus::Idle),
            _ => return Ok(false),
        };
        let used = header.frame_len();
        let mut out = Vec::new();
        CommandComplete {
            tag: tag.as_bytes(),
        }
        .encode(&mut out);
        ReadyForQuery { status }.encode(&mut out);
        self.client
            .conn
            .write_all(&out, Deadline::Never)
            .map_err(EndReason::ClientGone)?;
        self.client.conn.consume(used);
        self.deferred_begin = status == TransactionStatus::InTransaction;
        Ok(true)
    }

    /// Statement pooling gives the server back after every statement, so a transaction block
    /// cannot work: a bare BEGIN is refused (as upstream), the session goes on.
    fn refuse_transaction_block(&mut self, used: usize) -> Result<bool, EndReason> {
        self.client.conn.consume(used);
        let reply = Reply::error(
            kiwi::sqlstate::FEATURE_NOT_SUPPORTED,
            "transaction blocks are not supported in statement pooling mode",
        );
        let mut out = Vec::new();
        reply.encode(self.client.id, self.client.show_id, &mut out);
        ReadyForQuery {
            status: TransactionStatus::Idle,
        }
        .encode(&mut out);
        self.client
            .conn
            .write_all(&out, Deadline::Never)
            .map_err(EndReason::ClientGone)?;
        Ok(true)
    }

    /// Forwards what the server sent and follows its state; gives the server back at the end
    /// of a transaction in transaction pooling.
    fn relay_server(&mut self) -> Result<bool, EndReason> {
        let Some(server) = self.server.as_mut() else {
            return Ok(false);
        };
        let mut starts: Vec<(u8, usize)> = Vec::new();
        let mut stale_error = false;
        let mut discarded = false;
        let track = self.statements.as_ref().is_some_and(Statements::owed);
        let Server { conn, info, tx } = server;
        let (pending, vars, stats, dirty, sets) = (
            &mut self.pending,
            &mut self.client.vars,
            &self.route.stats,
            &mut self.dirty,
            &mut self.sets,
        );
        let apply = |vars: &mut kiwi::var::Vars,
                     server: &mut kiwi::var::Vars,
                     (name, value): (String, String)| {
            let _ = vars.set(name.as_bytes(), value.as_bytes());
            let _ = server.set(name.as_bytes(), value.as_bytes());
        };
        let n = relay::scan_server(&mut self.server_scan, conn.buffered(), |ev| match ev {
            ServerEvent::Ready(status) => {
                *pending = pending.saturating_sub(1);
                if status == TransactionStatus::Idle && *tx != TransactionStatus::Idle {
                    stats.transactions.fetch_add(1, Ordering::Relaxed);
                }
                *tx = status;
                sets.ready(status);
                stats.queries.fetch_add(1, Ordering::Relaxed);
            }
            ServerEvent::Parameter(body) => {
                if let Ok(ps) = ParameterStatus::decode(body) {
                    let _ = info.vars.set_status(&ps);
                    let _ = vars.set_status(&ps);
                }
            }
            ServerEvent::Complete(b"SET\0") => match sets.completed(*tx) {
                (Some(setting), _) => apply(vars, &mut info.vars, setting),
                (None, true) => {}
                (None, false) => *dirty = true,
            },
            ServerEvent::Complete(b"COMMIT\0") => {
                for setting in sets.committed() {
                    apply(vars, &mut info.vars, setting);
                }
            }
            ServerEvent::Complete(b"DISCARD ALL\0") => {
                info.prepared.clear();
                info.vars = info.defaults.clone();
                discarded = true;
            }
            ServerEvent::Complete(tag) => *dirty |= reset::leaves_state(tag),
            ServerEvent::Start { tag, at } if track => starts.push((tag, at)),
            ServerEvent::Error(body) => stale_error |= pstmt::is_cached_plan_error(body),
            ServerEvent::CopyIn | ServerEvent::Start { .. } => {}
        });
        if n == 0 {
            return Ok(false);
        }
        match self.statements.as_mut().filter(|_| track) {
            None => self
                .client
                .conn
                .write_all(&conn.buffered()[..n], Deadline::Never),
            Some(statements) => {
                let out = pstmt::filter_replies(
                    statements,
                    &conn.buffered()[..n],
                    &starts,
                    info,
                    stale_error,
                );
                self.client.conn.write_all(&out, Deadline::Never)
            }
        }
        .map_err(EndReason::ClientGone)?;
        conn.consume(n);
        if discarded && let Some(statements) = self.statements.as_mut() {
            statements.discard();
        }
        stats.bytes_out.fetch_add(n as u64, Ordering::Relaxed);
        if self.mode() != PoolMode::Session && self.between_transactions() {
            self.release_server(ServerFate::Reset, false);
        }
        Ok(true)
    }

    /// Ends the session: tells the client why (when it should know), decides the server's
    /// fate, logs.
    pub fn end(mut self, reason: EndReason) {
        let rule = self.route.rule();
        let (reply, fate) = reason.outcome(rule.client_fwd_error);
        if let Some(reply) = reply {
            self.send_reply(&reply);
            self.client
                .conn
                .close_gracefully(Deadline::after(Duration::from_secs(1)));
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

    /// Sends an error or notice with the client's id prefix (best effort: the client may be
    /// gone).
    pub(super) fn send_reply(&mut self, reply: &Reply) {
        let mut out = Vec::new();
        reply.encode(self.client.id, self.client.show_id, &mut out);
        let _ = self
            .client
            .conn
            .write_all(&out, Deadline::after(Duration::from_secs(1)));
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // Reached after `end`, or when a stopping machine drops a parked session.
        if let Some(server) = self.server.take() {
            super::attach::close_server(server);
            self.route.pool.closed();
        }
        self.route.leave();
        self.inst.cancels.unregister(self.client.key);
        self.inst.clients.fetch_sub(1, Ordering::AcqRel);
    }
}
