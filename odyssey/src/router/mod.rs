//! The router: a client's route (found or made, counted in by a ticket), and the one door
//! servers pass through — `attach` checks a server out of the route's pool (an idle one, or a
//! new connection), `detach` gives it back; a [`Checkout`] dropped without `detach` closes its
//! server. The pool's bookkeeping is done here and in `pool`, nowhere else.

use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use machinarium::Deadline;

use crate::backend::{self, BackendError};
use crate::gate::Slot;
use crate::id::ServerId;
use crate::logger::{ClientInfo, Logger};
use crate::pool::{AcquireError, Grant, Wait};
use crate::route::Route;
use crate::server::{DetachedServer, Server, ServerEntry};
use crate::{hosts, od_debug, od_error, od_info};

mod routes;

pub use routes::{RouteFull, RouteTicket, Router};

/// A server checked out of a route's pool, counted active there. Give it back with
/// [`detach`]; dropped otherwise, it closes the server and frees its slot for a waiter.
pub struct Checkout {
    route: Arc<Route>,
    /// Some until `detach` takes it.
    server: Option<Server>,
}

impl Checkout {
    /// The server.
    pub fn server(&self) -> &Server {
        // Invariant: `server` is None only inside `detach` and `drop`, which consume self.
        self.server.as_ref().expect("a checkout holds its server")
    }

    /// The server, to talk to.
    pub fn server_mut(&mut self) -> &mut Server {
        self.server.as_mut().expect("a checkout holds its server")
    }

    /// The server's id.
    pub fn id(&self) -> ServerId {
        self.server().info.id
    }
}

impl Drop for Checkout {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            backend::close(server);
            self.route.pool.closed();
        }
    }
}

pub use crate::hosts::Connector;

/// Why no server could be had.
#[derive(Debug)]
pub enum AttachError {
    /// `pool_timeout` passed while every server was busy.
    PoolTimeout {
        /// `db.user`.
        route: String,
        /// The pool's size.
        pool_size: u32,
    },
    /// The waiting coroutine was cancelled (the machine is stopping).
    Cancelled,
    /// A new connection could not be made.
    Connect(BackendError),
}

/// A client's wait for a server, as the client is told it (`pool_notice_after_waiting_ms`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Waiting {
    /// Still waiting after the rule's notice delay.
    Long,
    /// The long wait ended after this long; `timed_out` when it ended by `pool_timeout`.
    Took {
        /// How long the client waited.
        waited: Duration,
        /// It ended by `pool_timeout`.
        timed_out: bool,
    },
}

/// Checks a server out of the route's pool: an idle one that is still alive, or a new
/// connection when the pool has room, waiting up to `pool_timeout` for either. `tell` hears
/// of a wait longer than `pool_notice_after_waiting_ms`.
pub fn attach(
    route: &Arc<Route>,
    via: &Connector<'_>,
    tell: &mut dyn FnMut(Waiting),
) -> Result<Checkout, AttachError> {
    let rule = route.rule();
    let timeout = rule.pool.timeout.filter(|t| !t.is_zero());
    let deadline = earliest(
        timeout.map_or(Deadline::Never, Deadline::after),
        via.deadline,
    );
    let mut idle_only = false;
    loop {
        let grant = acquire(route, deadline, idle_only, tell)?;
        let server = match grant {
            Grant::Replace(idle) => {
                close_for_other_route(*idle, via.logger, via.client);
                connect_new(route, via, deadline, timeout, &mut idle_only)?
            }
            Grant::Connect => connect_new(route, via, deadline, timeout, &mut idle_only)?,
            Grant::Server(idle) => match (*idle).attach() {
                Ok(s) => Some(s),
                Err(_) => {
                    route.pool.closed();
                    None
                }
            },
        };
        let Some(mut server) = server else {
            continue;
        };
        if !hosts::still_fits(route, &mut server, &route.endpoints) {
            // Its host changed role (a promotion or demotion): closed, and the next one.
            backend::close(server);
            route.pool.closed();
            continue;
        }
        let mut checkout = Checkout {
            route: route.clone(),
            server: Some(server),
        };
        // `pool_attach_check`: an idle server that has something to say (PostgreSQL
        // restarted, the backend was terminated) is dead: dropping the checkout closes it;
        // take another. Without the check the client meets the dead server's last words.
        if rule.pool.attach_check && !matches!(checkout.server_mut().conn.try_fill(), Ok(false)) {
            od_info!(
                via.logger,
                "router",
                via.client,
                Some(checkout.id()),
                "idle server is gone, closing"
            );
            continue;
        }
        od_debug!(
            via.logger,
            "router",
            via.client,
            Some(checkout.id()),
            "attached"
        );
        if let Some(entry) = &checkout.server().info.entry {
            entry.set_active(true);
        }
        return Ok(checkout);
    }
}

/// Opens the connection the pool allowed: `None` when the storage refused it for too many
/// connections and an idle server is to be waited for instead (`idle_only` is then set).
fn connect_new(
    route: &Arc<Route>,
    via: &Connector<'_>,
    deadline: Deadline,
    timeout: Option<Duration>,
    idle_only: &mut bool,
) -> Result<Option<Server>, AttachError> {
    match opening(route, deadline).map(|_slot| connect(route, via)) {
        None => {
            route.pool.connect_failed();
            Err(AttachError::PoolTimeout {
                route: route.name(),
                pool_size: pool_size(route),
            })
        }
        Some(Ok(s)) => Ok(Some(s)),
        // Upstream: the server is full; with a pool_timeout, wait for an idle server.
        Some(Err(e)) if timeout.is_some() && e.is_too_many_connections() => {
            let retry = route.config().global.server_login_retry;
            if !retry.is_zero() && machinarium::sleep(retry).is_err() {
                return Err(AttachError::Cancelled);
            }
            *idle_only = true;
            Ok(None)
        }
        Some(Err(e)) => Err(AttachError::Connect(e)),
    }
}

/// One wait in the route's pool, told to the client when it passes the rule's notice delay.
fn acquire(
    route: &Arc<Route>,
    deadline: Deadline,
    idle_only: bool,
    tell: &mut dyn FnMut(Waiting),
) -> Result<Grant, AttachError> {
    let rule = route.rule();
    let size = pool_size(route);
    // The clock is read only when a NOTICE may be due (this runs for every transaction).
    let started = rule
        .pool
        .notice_after_waiting
        .map(|after| (Instant::now(), after));
    let mut told = false;
    let mut long = || {
        told = true;
        tell(Waiting::Long);
    };
    let notice = started.map(|(at, after)| (at + after, &mut long as &mut dyn FnMut()));
    let result = route.pool.acquire(
        size,
        Wait {
            deadline,
            idle_only,
            notice,
        },
    );
    if let (true, Some((at, _))) = (told, started) {
        tell(Waiting::Took {
            waited: at.elapsed(),
            timed_out: matches!(result, Err(AcquireError::TimedOut)),
        });
    }
    result.map_err(|e| match e {
        AcquireError::TimedOut => AttachError::PoolTimeout {
            route: route.name(),
            pool_size: size,
        },
        AcquireError::Cancelled => AttachError::Cancelled,
    })
}

/// The route's cap on servers: its `pool_size`, or for a rule in a `shared_pool` that
/// pool's size (counted across its routes by the pool).
pub fn pool_size(route: &Route) -> u32 {
    route
        .pool
        .shared()
        .map_or(route.rule().pool.size, |p| p.size)
}

/// Gives a server back to its pool (the caller has reset it). A server that cannot leave
/// this machine is closed, with the reason logged.
pub fn detach(mut checkout: Checkout, logger: &Logger, client: &ClientInfo) {
    let Some(mut server) = checkout.server.take() else {
        return;
    };
    server.info.publish_statements();
    if let Some(entry) = &server.info.entry {
        if entry.offline() {
            checkout.server = Some(server);
            return close(checkout, "dropped by the console", logger, client);
        }
        entry.set_active(false);
    }
    match server.detach() {
        Ok(idle) => {
            if let Some(other) = checkout.route.pool.release(idle) {
                close_for_other_route(other, logger, Some(client));
                checkout.route.pool.handed_over();
            }
        }
        Err((info, why)) => {
            od_info!(
                logger,
                "reset",
                Some(client),
                Some(info.id),
                "closing server: {why}"
            );
            checkout.route.pool.closed();
        }
    }
}

/// Closes an idle server whose place in the shared pool goes to another route (that route
/// took it, or its waiter was given the slot).
fn close_for_other_route(idle: DetachedServer, logger: &Logger, client: Option<&ClientInfo>) {
    od_debug!(
        logger,
        "router",
        client,
        Some(idle.info.id),
        "closing server: its place in the shared pool goes to another route"
    );
    if let Ok(server) = idle.attach() {
        backend::close_and_wait(server, Deadline::after(HANDOVER_WAIT));
    }
}

/// How long a server closed for another route of a shared pool is given to go (its backend
/// to exit and close the connection) before that route connects in its place.
const HANDOVER_WAIT: Duration = Duration::from_secs(1);

/// Closes a checked-out server, logging why.
pub fn close(
    checkout: Checkout,
    why: impl std::fmt::Display,
    logger: &Logger,
    client: &ClientInfo,
) {
    od_info!(
        logger,
        "reset",
        Some(client),
        Some(checkout.id()),
        "closing server: {why}"
    );
    drop(checkout);
}

/// Closes the idle servers of a route past its `pool_ttl` or `server_lifetime` (at most
/// `limit`); a waiter may connect in the place of each. Returns how many were closed.
pub fn expire(route: &Route, limit: usize) -> usize {
    let pool = &route.rule().pool;
    let ttl = pool.ttl.filter(|t| !t.is_zero());
    let lifetime = pool.server_lifetime.filter(|t| !t.is_zero());
    if ttl.is_none() && lifetime.is_none() {
        return 0;
    }
    let expired = route.pool.expire(ttl, lifetime, limit);
    let closed = expired.len();
    for idle in expired {
        route.pool.closed_idle();
        if let Ok(server) = idle.attach() {
            backend::close(server);
        }
    }
    closed
}

/// Opens one more server for the route while it has fewer than `min_pool_size` (and room
/// under its cap), and leaves it idle. `None` when none was needed.
pub fn prefill(route: &Arc<Route>, via: &Connector<'_>) -> Option<Result<(), BackendError>> {
    let min = route.rule().pool.min_size;
    if min == 0 || !route.pool.reserve_for_min(min, pool_size(route)) {
        return None;
    }
    // The cron does not wait for clients' logins to the storage: the next tick tries again.
    let Some(_slot) = opening(route, Deadline::after(Duration::ZERO)) else {
        route.pool.connect_failed();
        return None;
    };
    Some(connect(route, via).map(|server| match server.detach() {
        Ok(idle) => {
            if let Some(other) = route.pool.release(idle) {
                close_for_other_route(other, via.logger, via.client);
                route.pool.handed_over();
            }
        }
        Err(_) => route.pool.closed(),
    }))
}

/// A place among the servers being opened on the route's storage at once
/// (`server_max_routing`), waited for until `deadline`; `None` when it passed. A route whose
/// storage is gone takes none (its connect fails on its own).
fn opening(route: &Route, deadline: Deadline) -> Option<Option<Slot>> {
    let Some(storage) = route.storage() else {
        return Some(None);
    };
    let workers = route.config().global.worker_threads();
    let gate = route.endpoints.openings(storage, workers);
    gate.enter(deadline).map(Some)
}

/// Closes every idle server of a route (its rule is gone, or the pooler stops).
pub fn close_idle(route: &Route) {
    for idle in route.pool.drain_idle() {
        if let Ok(server) = idle.attach() {
            backend::close(server);
        }
    }
}

/// The earlier of two deadlines.
fn earliest(a: Deadline, b: Deadline) -> Deadline {
    match (a.instant(), b.instant()) {
        (Some(x), Some(y)) if y < x => b,
        (Some(_), _) => a,
        (None, _) => b,
    }
}

/// Opens a new server connection for the route (the pool counted it as connecting).
fn connect(route: &Route, via: &Connector<'_>) -> Result<Server, BackendError> {
    let config = route.config();
    let mut result = hosts::open(route, via);
    match &mut result {
        Ok(server) => {
            let (local, fd) = match server.conn.transport() {
                crate::conn::Transport::Plain(s) => (s.local_addr(), s.as_raw_fd()),
                crate::conn::Transport::Tls(t) => (None, t.as_raw_fd()),
            };
            let entry = Arc::new(ServerEntry::new(&server.info, local, fd));
            route
                .stats
                .connects
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            route.track(&entry);
            server.info.entry = Some(entry);
            route.pool.connected();
            route.cache_params(&server.info.status);
            if config.global.log.session {
                od_info!(
                    via.logger,
                    "router",
                    via.client,
                    Some(server.info.id),
                    "new server connection {}{}, auth {}",
                    server.info.address,
                    server.conn.tls().map_or(String::new(), |t| format!(
                        " over {}",
                        t.ssl().version_str()
                    )),
                    server.info.auth_method
                );
            }
        }
        Err(e) => {
            route.pool.connect_failed();
            od_error!(
                via.logger,
                "router",
                via.client,
                None,
                "server connection failed: {e}"
            );
        }
    }
    result
}
