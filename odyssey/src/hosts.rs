//! Opening a server on one of a storage's hosts (spec §7.5): hosts in the order `endpoints`
//! gives for the route's target_session_attrs and the storage's balancing, every address of a
//! host name in turn; a host that cannot be reached is noted dead and the next one tried; a
//! server of the wrong role (primary or standby) is closed and the next host tried. The role is
//! what the server reported at startup (`in_hot_standby`, PostgreSQL 14+), or
//! `pg_is_in_recovery()`.

use std::time::Duration;

use machinarium::{BlockingPool, Deadline};

use crate::backend::auth::BackendCredentials;
use crate::backend::{self, BackendError, ConnectParams};
use crate::config::storage::TargetSessionAttrs as Tsa;
use crate::config::{Global, Storage};
use crate::endpoints::{Endpoints, fits};
use crate::logger::{ClientInfo, Logger};
use crate::od_info;
use crate::route::Route;
use crate::server::Server;
use crate::storage;

/// How to open a new server connection for a client.
pub struct Connector<'a> {
    /// The login the server gets (worked out only when a connection is opened).
    pub credentials: &'a dyn Fn() -> BackendCredentials,
    /// Where host names are resolved.
    pub resolver: &'a BlockingPool,
    /// Log lines go here, with the client's ids.
    pub logger: &'a Logger,
    /// The client, for log lines (none for the cron's `min_pool_size` connections).
    pub client: Option<&'a ClientInfo>,
    /// When the caller gives up, whatever the pool and connect timeouts say (auth_query's
    /// client login); `Deadline::Never` leaves them alone.
    pub deadline: Deadline,
}

/// How long a role check may take.
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// Opens a server for the route on the first suitable host.
pub fn open(route: &Route, via: &Connector<'_>) -> Result<Server, BackendError> {
    open_with(route, via, &[])
}

/// As `open`, with `extra` startup parameters (`replication`) after the rule's.
pub fn open_with(
    route: &Route,
    via: &Connector<'_>,
    extra: &[(String, String)],
) -> Result<Server, BackendError> {
    let endpoints = &*route.endpoints;
    let rule = route.rule();
    let storage = route
        .storage()
        .ok_or_else(|| BackendError::NoStorage(rule.storage.clone()))?;
    let tsa = route.key.tsa;
    let config = route.config();
    let servers = route.servers();
    let load = |i: usize| servers.iter().filter(|s| s.endpoint == i).count();
    let balancing = (
        storage.balancing.method,
        config.global.availability_zone.as_str(),
    );
    let mut order = endpoints.order(storage, tsa, balancing, &load);
    // catchup_timeout: hosts the watchdog sees lagging that much are not used.
    order.retain(|i| !endpoints.too_far_behind(storage, *i, route.key.catchup));
    let (mut last, mut fallback, mut mismatched) = (None, None, false);
    for index in order {
        let mut server = match open_on(route, via, (storage, index), extra) {
            Ok(s) => s,
            Err(e) if e.is_too_many_connections() => return Err(e),
            Err(e) => {
                endpoints.learn(storage, index, !e.is_host_down(), None);
                last = Some(e);
                continue;
            }
        };
        let read_write = match role(&mut server, endpoints, storage, tsa) {
            Ok(rw) => rw,
            Err(e) => {
                backend::close(server);
                last = Some(e);
                continue;
            }
        };
        match (tsa, read_write) {
            // prefer-standby: a primary only if no standby answers.
            (Tsa::PreferStandby, Some(true)) => {
                if fallback.is_none() {
                    fallback = Some(server);
                } else {
                    backend::close(server);
                }
            }
            (_, Some(rw)) if !fits(tsa, rw) => {
                mismatched = true;
                log_mismatch(via, &server, tsa);
                backend::close(server);
            }
            _ => return Ok(done(server, fallback)),
        }
    }
    if let Some(primary) = fallback {
        return Ok(primary);
    }
    Err(match last {
        Some(e) if !mismatched => e,
        _ => BackendError::NoSuitableHost {
            tsa: tsa.name(),
            route: route.name(),
        },
    })
}

/// The server found; a primary kept in reserve is closed.
fn done(server: Server, fallback: Option<Server>) -> Server {
    if let Some(primary) = fallback {
        backend::close(primary);
    }
    server
}

fn log_mismatch(via: &Connector<'_>, server: &Server, tsa: Tsa) {
    od_info!(
        via.logger,
        "router",
        via.client,
        Some(server.info.id),
        "server {} does not fit target_session_attrs '{}', trying the next host",
        server.info.address,
        tsa.name()
    );
}

/// Every address of host `index` in turn, until one logs in.
fn open_on(
    route: &Route,
    via: &Connector<'_>,
    (storage, index): (&Storage, usize),
    extra: &[(String, String)],
) -> Result<Server, BackendError> {
    let global = &route.config().global;
    let options = route.rule().backend_startup_options.iter();
    let startup: Vec<(String, String)> = options.chain(extra).cloned().collect();
    let login = HostLogin {
        credentials: &(via.credentials)(),
        database: route.backend_database(),
        startup: &startup,
        login_timeout: global.backend_connect_timeout.max(Duration::from_secs(5)),
        deadline: via.deadline,
    };
    connect_host(via.resolver, global, (storage, index), &login)
}

/// How a new server on a host logs in.
pub struct HostLogin<'a> {
    /// As whom.
    pub credentials: &'a BackendCredentials,
    /// Into which database.
    pub database: &'a str,
    /// StartupMessage parameters after `user` and `database`.
    pub startup: &'a [(String, String)],
    /// How long the login may take once connected.
    pub login_timeout: Duration,
    /// When the caller gives up, whatever the timeouts say (`Deadline::Never`: no limit).
    pub deadline: Deadline,
}

/// Connects to host `index` of `storage`, each of its addresses in turn until one is
/// reached, and logs in; the server knows which host it is on. A live server's refusal is
/// returned at once; when no address answers, the last failure.
pub fn connect_host(
    resolver: &BlockingPool,
    global: &Global,
    (storage, index): (&Storage, usize),
    login: &HostLogin<'_>,
) -> Result<Server, BackendError> {
    let mut last = None;
    for address in storage::addresses(resolver, storage, global, index)? {
        let params = ConnectParams {
            address,
            connect_timeout: within(global.backend_connect_timeout, login.deadline),
            login_timeout: within(login.login_timeout, login.deadline),
            credentials: login.credentials,
            database: login.database,
            nodelay: global.nodelay,
            keepalive: backend::keepalive(global),
            startup_options: login.startup,
            tls: storage::tls(storage, index),
        };
        match backend::connect(&params) {
            Ok(mut server) => {
                server.info.endpoint = index;
                return Ok(server);
            }
            Err(e) if e.is_host_down() => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or(BackendError::Resolve {
        host: storage
            .endpoints
            .get(index)
            .map_or(String::new(), |e| e.host.clone()),
        error: None,
    }))
}

/// The role of a server just opened, when the route's target_session_attrs cares (and notes
/// it for the host): primary (true) or standby.
fn role(
    server: &mut Server,
    endpoints: &Endpoints,
    storage: &Storage,
    tsa: Tsa,
) -> Result<Option<bool>, BackendError> {
    let index = server.info.endpoint;
    let reported = server
        .info
        .status
        .iter()
        .find(|(name, _)| name == b"in_hot_standby")
        .map(|(_, v)| v.as_slice() == b"off");
    let read_write = match (tsa, reported) {
        (Tsa::Any, None) => None,
        (_, Some(rw)) => Some(rw),
        (_, None) => Some(check(server)?),
    };
    endpoints.learn(storage, index, true, read_write);
    Ok(read_write)
}

/// Asks the server whether it is a primary.
pub fn check(server: &mut Server) -> Result<bool, BackendError> {
    let v = backend::query_value(
        server,
        b"select pg_is_in_recovery()",
        Deadline::after(CHECK_TIMEOUT),
    )?;
    Ok(v.as_deref() == Some(b"f"))
}

/// Whether an idle server may serve a client of the route: its host does not lag beyond the
/// route's catchup_timeout, and its host's fresh role fits, or a check on the server says so
/// (and is noted for the host).
pub fn still_fits(route: &Route, server: &mut Server, endpoints: &Endpoints) -> bool {
    let (tsa, catchup) = (route.key.tsa, route.key.catchup);
    let any_role = matches!(tsa, Tsa::Any | Tsa::PreferStandby);
    // The common case, on every attach of an idle server: nothing to check, no lookup.
    if any_role && catchup == 0 {
        return true;
    }
    let Some(storage) = route.storage() else {
        return true;
    };
    let index = server.info.endpoint;
    if endpoints.too_far_behind(storage, index, catchup) {
        return false;
    }
    if any_role {
        return true;
    }
    if let Some(rw) = endpoints
        .fresh(storage, index)
        .and_then(|s| s.alive.then_some(s.read_write).flatten())
    {
        return fits(tsa, rw);
    }
    match check(server) {
        Ok(rw) => {
            endpoints.learn(storage, index, true, Some(rw));
            fits(tsa, rw)
        }
        Err(_) => false,
    }
}

/// `limit`, cut to what is left before `deadline` (at least a millisecond).
fn within(limit: Duration, deadline: Deadline) -> Duration {
    deadline.instant().map_or(limit, |at| {
        let left = at.saturating_duration_since(std::time::Instant::now());
        limit.min(left).max(Duration::from_millis(1))
    })
}
