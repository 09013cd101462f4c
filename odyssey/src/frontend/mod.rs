//! A client's life: admitted, startup, route, authenticate, then the session (setup, relay)
//! until it ends. Every ending goes through `end::End` and its table.

pub mod admission;
pub mod attach;
pub mod cancel_request;
pub mod clock;
pub mod counters;
pub mod end;
pub mod listen;
pub mod querylog;
pub mod replication;
pub mod routed;
pub mod session;
pub mod setup;
pub mod startup;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use machinarium::Deadline;
use machinarium::net::{DetachedStream, PeerAddr};

use crate::auth::{self, Authenticated, ClientAuth};
use crate::client::Client;
use crate::clients::ClientEntry;
use crate::config::hba::{self, HbaAction};
use crate::config::rule::{Rule, Transport as RuleTransport};
use crate::config::{StorageType, TlsMode};
use crate::conn::{Conn, Transport};
use crate::gate::Slot;
use crate::id::ClientId;
use crate::instance::{ConfigSnapshot, Instance};
use crate::logger::ClientInfo;
use crate::route::{Route, RouteKey};
use crate::rules::Request;
use crate::{od_error, od_info, tls};
use admission::Admission;
use end::End;
use replication::Replication;
use routed::{catchup, client_tsa, routed};

pub use routed::application_name_with_host;
use session::Session;
use startup::{Hello, SessionRequest};

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
    let admission = Admission::new(&inst);
    let Ok(stream) = socket.attach() else {
        return;
    };
    let mut conn = Conn::new(Transport::Plain(stream));
    let snapshot = inst.config();
    let mut login = Login {
        inst: &inst,
        snapshot: &snapshot,
        accepted: &accepted,
        info: ClientInfo {
            id: ClientId::new(),
            user: None,
            database: None,
            addr: conn.peer_addr(),
            external_id: None,
            storage_host: None,
            debug: false,
        },
        show_id: true,
        fwd_error: false,
        routing: None,
        console: None,
        tls: false,
    };
    login.log_connect();
    // `client_max_routing`: the excess waits up to client_login_timeout, then is closed
    // without a message (upstream).
    login.routing = inst.routing.enter(Deadline::after(login.login_timeout()));
    if login.routing.is_none() {
        return login.fail(Some(&mut conn), End::RoutingSlotTimeout);
    }
    let deadline = Deadline::after(login.login_timeout());
    let (mut conn, request) = match login.startup(conn, &admission, deadline) {
        Ok(started) => started,
        Err(failed) => {
            let (mut conn, end) = *failed;
            return login.fail(conn.as_mut(), end);
        }
    };
    let result = login.run(&mut conn, request, admission, deadline);
    if result.is_ok() {
        inst.logins.ok.fetch_add(1, Ordering::Relaxed);
    }
    match result {
        Ok((request, _, mut admission)) if login.console.is_some() => {
            let mut client = login.client(conn, request);
            let entry = admission.list(&client, None);
            login.serve_console(&mut client, &entry);
        }
        Ok((request, authenticated, mut admission)) => {
            // Routed by now: `Login::route` counted it in.
            let Some(route) = admission.route().cloned() else {
                return;
            };
            let replication = request.replication.clone();
            let mut client = login.client(conn, request);
            let entry = admission.list(&client, Some(route.clone()));
            if let Some(value) =
                replication.filter(|v| replication::parse(Some(v)) != Some(Replication::No))
            {
                let end = replication::serve(
                    &inst,
                    &mut client,
                    &route,
                    (&value, &authenticated),
                    &mut admission,
                );
                return login.ended(&route, end);
            }
            // Boxed: a parked session moves into its wake-up closure, and a pointer is cheaper
            // to move (and to allocate for) than the whole session on every park.
            Box::new(Session::new(
                inst.clone(),
                client,
                (route, entry),
                admission,
                authenticated,
            ))
            .start();
        }
        Err(end) => login.fail(Some(&mut conn), end),
    }
}

/// How a startup ended early: the connection, unless a TLS failure consumed it, and why.
type StartupFailed = (Option<Conn>, End);

/// What is known of a client while it logs in.
struct Login<'a> {
    inst: &'a Arc<Instance>,
    snapshot: &'a ConfigSnapshot,
    accepted: &'a Accepted,
    info: ClientInfo,
    /// `client_show_id` of its rule (before routing: shown).
    show_id: bool,
    /// `client_fwd_error` of its rule.
    fwd_error: bool,
    /// The `client_max_routing` slot, held until the client is routed (or gone).
    routing: Option<Slot>,
    /// The rule, when it leads to the admin console (a `local` storage).
    console: Option<usize>,
    /// Whether the connection is TLS (after a handshake).
    tls: bool,
}

impl Login<'_> {
    /// Route → authenticate, after the startup. Returns what the session starts with.
    fn run(
        &mut self,
        conn: &mut Conn,
        mut request: SessionRequest,
        mut admission: Admission,
        deadline: Deadline,
    ) -> Result<(SessionRequest, Authenticated, Admission), End> {
        self.route(&request, &mut admission)?;
        self.routing = None;
        let rule = match (admission.route(), self.console) {
            (Some(route), _) => route.rule(),
            (None, Some(index)) => &self.snapshot.config.rules[index],
            (None, None) => return Err(End::Cancelled),
        };
        routed(conn, &mut request, rule);
        self.hba(&request, rule)?;
        if let Some(route) = admission.route() {
            catchup(route)?;
        }
        let authenticated =
            self.authenticate(conn, &request, (rule, admission.route()), deadline)?;
        self.info.external_id = authenticated.external_id.as_deref().map(Box::from);
        // soft_oom refuses remote logins only: the console stays reachable.
        if admission.route().is_some() && self.inst.memory_over.load(Ordering::Acquire) {
            return Err(End::SoftOom);
        }
        Ok((request, authenticated, admission))
    }

    /// Unix, TCP, or TCP with TLS: what `hostssl`/`hostnossl` rules and hba lines match.
    fn transport(&self) -> RuleTransport {
        match self.accepted.peer {
            PeerAddr::Unix => RuleTransport::Unix,
            PeerAddr::Tcp(_) => RuleTransport::Tcp { tls: self.tls },
        }
    }

    /// The client's listener's `client_login_timeout`.
    fn login_timeout(&self) -> Duration {
        self.snapshot
            .config
            .listen
            .get(self.accepted.listen)
            .map_or(Duration::from_secs(15), |l| l.client_login_timeout)
    }

    /// Reads the StartupMessage, giving the connection TLS on the way when the client asks
    /// and its listen has it; a CancelRequest is forwarded and ends the connection. On an
    /// error the connection comes back to be told why, unless a TLS failure consumed it.
    fn startup(
        &mut self,
        mut conn: Conn,
        admission: &Admission,
        deadline: Deadline,
    ) -> Result<(Conn, SessionRequest), Box<StartupFailed>> {
        let config = &self.snapshot.config;
        if let Some(max) = config.global.client_max.filter(|m| *m > 0)
            && admission.clients() > max
        {
            return Err(Box::new((Some(conn), End::TooManyClients { max })));
        }
        let listen = config.listen.get(self.accepted.listen);
        let context = listen.and_then(|l| l.tls.context.as_ref());
        let mode = listen.map_or(TlsMode::Disable, |l| l.tls.mode);
        let mut asked = startup::Asked::default();
        if let Some(context) = context
            && tls::opens_with_tls(&conn, deadline).map_err(|e| Box::new((None, End::Tls(e))))?
        {
            conn = tls::accept_direct(conn, context, deadline)
                .map_err(|e| Box::new((None, End::Tls(e))))?;
            self.tls = true;
            asked.encrypted();
        }
        loop {
            match startup::read(&mut conn, mode, context.is_some(), &mut asked, deadline) {
                Ok(Hello::Tls) => {
                    let Some(context) = context else {
                        return Err(Box::new((Some(conn), End::Cancelled)));
                    };
                    conn = tls::accept(conn, context, deadline)
                        .map_err(|e| Box::new((None, End::Tls(e))))?;
                    self.tls = true;
                }
                Ok(Hello::Session(request)) => {
                    self.info.user = Some(request.user.as_str().into());
                    self.info.database = Some(request.database.as_str().into());
                    return Ok((conn, request));
                }
                Ok(Hello::Cancel { pid, secret }) => {
                    self.routing = None;
                    cancel_request::forward(self.inst, config, pid, &secret);
                    return Err(Box::new((Some(conn), End::CancelRequest)));
                }
                Err(end) => return Err(Box::new((Some(conn), end))),
            }
        }
    }

    /// Matches the client to a rule (spec §3) and counts it in on the route.
    fn route(&mut self, request: &SessionRequest, admission: &mut Admission) -> Result<(), End> {
        if replication::parse(request.replication.as_deref()).is_none() {
            return Err(End::BadReplication);
        }
        let config = &self.snapshot.config;
        let ip = self.info.addr.map(|a| a.ip());
        let deadline = Deadline::after(self.login_timeout());
        let hostname = ip.and_then(|ip| {
            let hostnames = &self.inst.hostnames;
            hostnames.for_rules(config, &self.inst.resolver, ip, deadline)
        });
        let req = Request {
            database: &request.database,
            user: &request.user,
            transport: self.transport(),
            ip,
            hostname: hostname.as_deref(),
            internal: false,
            is_member: &|group, user| self.inst.groups.contains(group, user),
        };
        let index =
            self.snapshot
                .rules
                .forward(config, &req)
                .ok_or_else(|| End::RouteNotFound {
                    database: request.database.clone(),
                    user: request.user.clone(),
                })?;
        let rule = &config.rules[index];
        self.show_id = rule.client_show_id;
        self.fwd_error = rule.client_fwd_error;
        self.info.debug = rule.log_debug;
        let storage = config.storages.iter().find(|s| s.name == rule.storage);
        if storage.is_some_and(|s| s.kind == StorageType::Local) {
            self.console = Some(index);
            return Ok(());
        }
        let listen = config.listen.get(self.accepted.listen);
        let origin = self.snapshot.origin(index);
        let key = RouteKey {
            generation: origin.generation,
            rule: origin.index,
            database: request.database.clone(),
            user: request.user.clone(),
            // The client's `odyssey.target_session_attrs` wins over the listen's, which wins
            // over the rule's, which wins over the storage's (spec §7.5).
            tsa: client_tsa(&request.vars)
                .or(listen.and_then(|l| l.target_session_attrs))
                .unwrap_or_else(|| config.rule_tsa(rule)),
            // The rule's catchup_timeout when set, else the listen's (spec §7.6).
            catchup: Some(rule.catchup_timeout)
                .filter(|t| !t.is_zero())
                .or(listen.map(|l| l.catchup_timeout))
                .unwrap_or_default()
                .as_secs(),
            balancing: listen.and_then(|l| l.balancing_method),
        };
        let ticket = self
            .inst
            .router
            .route(key, &origin.config)
            .map_err(|full| End::RouteFull {
                route: format!("{}.{}", request.database, request.user),
                max: full.client_max,
            })?;
        admission.routed(ticket);
        Ok(())
    }

    /// The `hba_file` (spec §4), after routing and before authentication: its first line
    /// matching the client's transport, address and the rule's names decides; none refuses.
    fn hba(&self, request: &SessionRequest, rule: &Rule) -> Result<(), End> {
        let config = &self.snapshot.config;
        let Some(lines) = &config.hba else {
            return Ok(());
        };
        let ip = self.info.addr.map(|a| a.ip());
        let (db, user) = hba::rule_names(&rule.key);
        let action = hba::decide(lines, self.transport(), ip, db, user);
        let ip = ip.map_or("unix socket".to_string(), |ip| ip.to_string());
        let route = format!("{}.{}", request.database, request.user);
        if action == HbaAction::Deny {
            return Err(End::HbaRejected { ip, route });
        }
        if config.global.log.session {
            od_info!(
                self.inst.logger,
                "auth",
                Some(&self.info),
                None,
                "ip '{ip}' user '{route}': host based authentication allowed"
            );
        }
        Ok(())
    }

    /// Runs the rule's authentication.
    fn authenticate(
        &self,
        conn: &mut Conn,
        request: &SessionRequest,
        (rule, route): (&Rule, Option<&Arc<Route>>),
        deadline: Deadline,
    ) -> Result<Authenticated, End> {
        let auth = ClientAuth {
            client: self.info.id,
            user: &request.user,
            database: &request.database,
            rule,
            show_id: self.show_id,
            deadline,
            peer: self.info.addr.map(|a| a.ip()),
            pooler: Some(auth::Pooler {
                inst: self.inst,
                info: &self.info,
                route,
            }),
        };
        auth::authenticate(conn, &auth).map_err(End::Auth)
    }

    /// The logged-in client.
    fn client(&self, conn: Conn, request: SessionRequest) -> Client {
        Client {
            id: self.info.id,
            conn,
            // Shared with the log info, which has had them since the startup packet.
            user: self
                .info
                .user
                .clone()
                .unwrap_or_else(|| request.user.into()),
            database: self
                .info
                .database
                .clone()
                .unwrap_or_else(|| request.database.into()),
            vars: request.vars,
            info: self.info.clone(),
            show_id: self.show_id,
            connected_at: std::time::Instant::now(),
            protocol: request.protocol,
        }
    }

    /// A replication client's pipe ended: counted and logged as a session end.
    fn ended(&self, route: &Route, end: End) {
        if let Some(kind) = end.error_kind() {
            self.inst.errors.add(kind);
            route.stats.errors.add(kind);
        }
        od_info!(
            self.inst.logger,
            "replication",
            Some(&self.info),
            None,
            "replication client disconnected ({end}), route {}",
            route.name()
        );
    }

    /// Serves a console client until it leaves.
    fn serve_console(&self, client: &mut Client, entry: &ClientEntry) {
        let Some(rule) = self.console.and_then(|i| self.snapshot.config.rules.get(i)) else {
            return;
        };
        let end = crate::console::serve(self.inst, client, rule, entry);
        if self.snapshot.config.global.log.session {
            od_info!(
                self.inst.logger,
                "console",
                Some(&self.info),
                None,
                "console client disconnected ({end:?})"
            );
        }
    }

    fn log_connect(&self) {
        if self.snapshot.config.global.log.session {
            let from = self
                .info
                .addr
                .map_or("unix socket".to_string(), |a| a.to_string());
            od_info!(
                self.inst.logger,
                "startup",
                Some(&self.info),
                None,
                "new client connection {from}"
            );
        }
    }

    /// The login ended: tell the client what the table says (when its connection is still
    /// there), log why.
    fn fail(&self, conn: Option<&mut Conn>, end: End) {
        if !matches!(end, End::CancelRequest) {
            self.inst.logins.failed.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(kind) = end.error_kind() {
            self.inst.errors.add(kind);
        }
        let outcome = end.outcome(self.fwd_error);
        if outcome.startup_error {
            self.inst.startup_errors.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(conn) = conn
            && let Some(bytes) = end::farewell_bytes(&outcome.farewell, self.info.id, self.show_id)
        {
            let deadline = Deadline::after(Duration::from_secs(1));
            if conn.write_all(&bytes, deadline).is_ok() {
                conn.close_gracefully(deadline);
            }
        }
        match end {
            End::CancelRequest => {}
            // A refused client is a security event, an overloaded login stage an alarm: error
            // lines, as upstream logs them.
            End::HbaRejected { .. } | End::RoutingSlotTimeout | End::Tls(_) => {
                od_error!(self.inst.logger, "startup", Some(&self.info), None, "{end}");
            }
            _ => od_info!(self.inst.logger, "startup", Some(&self.info), None, "{end}"),
        }
    }
}
