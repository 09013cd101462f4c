//! A session's server: checked out through `router::attach`, made the client's by `deploy`
//! (and the deferred BEGIN), and given back through `reset` and `router::detach` — or closed.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use machinarium::Deadline;

use super::end::{End, ServerFate};
use super::session::Session;
use crate::auth::backend::backend_credentials;
use crate::backend;
use crate::clients::ClientState;
use crate::config::PoolMode;
use crate::conn::Conn;
use crate::od_debug;
use crate::reset::{self, Refusal};
use crate::route::RouteKey;
use crate::router::{self, AttachError, Connector, Waiting};
use crate::server::Server;

/// How often a paused client looks whether it may go on.
const PAUSE_POLL: Duration = Duration::from_millis(20);

impl Session {
    /// At the first login of a route: a server, to learn the parameters clients are told.
    /// Session pooling keeps it; the other modes give it back at once.
    pub(super) fn attach_for_setup(&mut self) -> Result<(), End> {
        self.checkout()?;
        if self.relay.mode() != PoolMode::Session {
            self.release_server(ServerFate::Reset, false);
        }
        Ok(())
    }

    /// Gets a server for the client's next request (see `checkout`); with the storage's
    /// `balancing { show_notice_messages yes }` and several hosts, tells the client which one.
    pub(super) fn attach(&mut self) -> Result<(), End> {
        self.follow_target_session_attrs()?;
        self.checkout()?;
        let Some(storage) = self.route.storage() else {
            return Ok(());
        };
        if !storage.balancing.show_notice_messages || storage.endpoints.len() < 2 {
            return Ok(());
        }
        let index = self.server.as_ref().map_or(0, |s| s.server().info.endpoint);
        let text = format!(
            "select host {}",
            crate::storage::endpoint_name(storage, index)
        );
        tell(&mut self.client.conn, &text);
        Ok(())
    }

    /// Gets a server from the route's pool (or a new connection), deploys the client's
    /// parameters and its deferred BEGIN, and points the client's cancel key at it.
    fn checkout(&mut self) -> Result<(), End> {
        self.wait_while_paused()?;
        self.entry.set_state(ClientState::Queue);
        let credentials =
            || backend_credentials(self.route.rule(), &self.client.user, self.auth.as_deref());
        let via = Connector {
            credentials: &credentials,
            resolver: &self.inst.resolver,
            logger: &self.inst.logger,
            client: Some(&self.client.info),
            deadline: Deadline::Never,
        };
        let conn = &mut self.client.conn;
        let mut tell = |w: Waiting| tell_waiting(conn, w);
        let asked = Instant::now();
        let mut checkout = router::attach(&self.route, &via, &mut tell).map_err(|e| match e {
            AttachError::PoolTimeout { route, pool_size } => End::PoolTimeout { route, pool_size },
            AttachError::Cancelled => End::Cancelled,
            AttachError::Connect(e) => End::Connect(e),
        })?;
        let stats = self.route.stats.local();
        stats.assignments.fetch_add(1, Ordering::Relaxed);
        stats.wait_time.record(asked.elapsed().as_micros() as u64);
        // A failed deploy drops the checkout: the server is closed.
        self.deploy(checkout.server_mut())?;
        let info = &checkout.server().info;
        self.cancel.set(Some(info.cancel_target()));
        if self.route.listen.is_active() {
            // Its notifications name this client as their sender.
            self.route.listen.held(info.key.pid, self.cancel.key().pid);
        }
        self.relay.server_attached();
        self.server = Some(Box::new(checkout));
        self.entry.set_state(ClientState::Active);
        Ok(())
    }

    /// `virtual_processing`: a client that set another target_session_attrs moves, before it
    /// gets a server, to the route of its rule, database and user holding servers of that kind.
    fn follow_target_session_attrs(&mut self) -> Result<(), End> {
        let Some(tsa) = self.relay.target_session_attrs() else {
            return Ok(());
        };
        if tsa == self.route.key.tsa || self.server.is_some() {
            return Ok(());
        }
        let key = RouteKey {
            tsa,
            ..self.route.key.clone()
        };
        let config = self.route.config().clone();
        let ticket = self
            .inst
            .router
            .route(key, &config)
            .map_err(|full| End::RouteFull {
                route: self.route.name(),
                max: full.client_max,
            })?;
        self.route = ticket.route().clone();
        self.admission.routed(ticket);
        Ok(())
    }

    /// `PAUSE`: a client that needs a server waits until its database is resumed (or it is
    /// killed, or the pooler stops).
    fn wait_while_paused(&mut self) -> Result<(), End> {
        while self.inst.pause.holds(&self.client.database) {
            if self.entry.killed() {
                return Err(End::Killed);
            }
            if self.inst.is_shutting_down() {
                return Err(End::Shutdown(self.inst.drain()));
            }
            if machinarium::sleep(PAUSE_POLL).is_err() {
                return Err(End::Cancelled);
            }
        }
        Ok(())
    }

    /// Deploys the client's parameters, and the deferred BEGIN, in one round trip.
    fn deploy(&mut self, server: &mut Server) -> Result<(), End> {
        let smart = self.route.config().global.smart_search_path_enquoting;
        // `maintain_params no`: the client's parameters are not deployed (upstream skips
        // od_deploy); the deferred BEGIN still is.
        // With nothing to change (the usual case) only a deferred BEGIN may be sent, which
        // sets no parameter: the server's parameters stay as they are, and nothing the server
        // reports is new.
        let maintain = self.route.rule().maintain_params;
        let deployed = maintain.then(|| {
            crate::deploy::deploy(
                &self.client.vars,
                &server.info.vars,
                &server.info.defaults,
                smart,
            )
        });
        let (mut sql, after) = match deployed.flatten() {
            Some((sql, after)) => (sql, Some(after)),
            None => (Vec::new(), None),
        };
        let begin = self.relay.deferred_begin();
        if begin {
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
        backend::query(server, &sql, deadline).map_err(End::Deploy)?;
        // Reported parameters are what the server says (its own spelling, `EUC_JP` for
        // `eucjp`; no report means the value did not change); the others are known only from
        // what was sent.
        if let Some(after) = after {
            let reported = std::mem::replace(&mut server.info.vars, after);
            self.adopt_reported(&reported, &mut server.info.vars);
        }
        if begin {
            self.relay.begin_sent();
        }
        Ok(())
    }

    /// The server's form of the client's reported parameters becomes the client's own (what it
    /// is told, and what later deploys compare), and the route remembers it.
    fn adopt_reported(&mut self, reported: &kiwi::var::Vars, server: &mut kiwi::var::Vars) {
        let names: Vec<&'static str> = self.client.vars.iter().map(|(n, _)| n).collect();
        for name in names {
            let (Some(raw), Some(value)) = (self.client.vars.get(name), reported.get(name)) else {
                continue;
            };
            if raw == value || !self.route.reports(name) {
                continue;
            }
            let (raw, value) = (raw.to_vec(), value.to_vec());
            self.route.learn_normalized(name, &raw, &value);
            let _ = self.client.vars.set(name.as_bytes(), &value);
            let _ = server.set(name.as_bytes(), &value);
        }
    }

    /// Startup values the route has not seen a server report yet, for parameters it reports.
    /// Known ones take the reported form at once.
    pub(super) fn normalize_startup_params(&mut self) -> bool {
        let Some(params) = self.route.params() else {
            return false;
        };
        let mut unknown = false;
        let names: Vec<&'static str> = self.client.vars.iter().map(|(n, _)| n).collect();
        for name in names {
            let Some(raw) = self.client.vars.get(name).map(<[u8]>::to_vec) else {
                continue;
            };
            let reported = params
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()));
            match reported {
                None => {}
                Some((_, v)) if *v == raw => {}
                Some(_) => match self.route.normalized(name, &raw) {
                    Some(value) => {
                        let _ = self.client.vars.set(name.as_bytes(), &value);
                    }
                    None => unknown = true,
                },
            }
        }
        unknown
    }

    /// Gives the server back to the pool (after the reset it needs) or closes it.
    /// `session_end`: the client is leaving, so the configured discard runs.
    pub(super) fn release_server(&mut self, fate: ServerFate, session_end: bool) {
        let Some(mut checkout) = self.server.take() else {
            return;
        };
        self.entry.set_state(ClientState::Pending);
        self.cancel.set(None);
        let config = self.route.config().clone();
        let cancel_timeout = config.global.cancel_timeout.max(Duration::from_millis(100));
        let verdict = match fate {
            ServerFate::Close => Err(Refusal::StateUnknown),
            ServerFate::Reset => reset::reset(
                checkout.server_mut(),
                &mut self.relay,
                session_end,
                &self.route.rule().pool,
                cancel_timeout,
            ),
        };
        self.relay.server_gone();
        match verdict {
            Ok(()) => router::detach(*checkout, &self.inst.logger, &self.client.info),
            Err(why) => router::close(*checkout, why, &self.inst.logger, &self.client.info),
        }
    }
}

/// Tells a waiting client how its wait goes, in upstream's words.
fn tell_waiting(conn: &mut Conn, w: Waiting) {
    let text = match w {
        Waiting::Long => "waiting for free backend connection".to_string(),
        Waiting::Took { waited, timed_out } => format!(
            "waiting took {} ms{}",
            waited.as_millis(),
            if timed_out { ", timeout" } else { "" }
        ),
    };
    tell(conn, &text);
}

/// Sends the client a NoticeResponse with severity NOTICE, in upstream's words, with SQLSTATE
/// 00000 (upstream sends none, which drivers such as tokio-postgres refuse as a broken
/// message). A client that cannot hear it will fail later.
fn tell(conn: &mut Conn, text: &str) {
    let fields = kiwi::backend::ErrorFields {
        fields: vec![
            (kiwi::backend::field::SEVERITY, b"NOTICE".as_slice()),
            (kiwi::backend::field::CODE, b"00000".as_slice()),
            (kiwi::backend::field::MESSAGE, text.as_bytes()),
        ],
    };
    let mut out = Vec::new();
    fields.encode_notice(&mut out);
    let _ = conn.write_all(&out, Deadline::after(Duration::from_secs(1)));
}
