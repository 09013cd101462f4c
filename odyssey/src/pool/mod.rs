//! The server pool of a route: idle servers (detached, so any worker can take one), counts of
//! active and connecting ones, and the clients waiting for a server.
//!
//! The lock is held only to move entries between lists, never across a switch. A server freed
//! while clients wait is handed straight to the first waiter; a waiter whose deadline fires at
//! the same moment takes the hand-off instead of losing it.
//!
//! A route in a `shared_pool` counts its servers against that pool's cap too (`shared`).
//!
//! Servers keep to a machine where fairness allows: a detached server stays registered with
//! the machine that used it last (its home), where taking it again costs no system call and
//! no cross-thread wake. So an idle server of the caller's machine is taken first, and a freed
//! server goes to the oldest waiter of its machine unless a waiter elsewhere has waited
//! [`AFFINITY_SLACK`] longer.

mod shared;

pub use shared::{SharedCounts, SharedPool};

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use machinarium::{Cond, Deadline, MachineId};

use crate::server::DetachedServer;

/// What a client gets from the pool.
pub enum Grant {
    /// An idle server to attach.
    Server(Box<DetachedServer>),
    /// Permission to open a new connection (counted as connecting already).
    Connect,
    /// Permission to open a new connection in the place of this idle server of another
    /// route of the shared pool, which the caller closes first.
    Replace(Box<DetachedServer>),
}

/// Why no server could be had.
#[derive(Debug, PartialEq, Eq)]
pub enum AcquireError {
    /// `pool_timeout` passed.
    TimedOut,
    /// The waiting coroutine was cancelled (shutdown).
    Cancelled,
}

/// How a client waits in [`ServerPool::acquire`].
pub struct Wait<'a> {
    /// Give up then (`pool_timeout`).
    pub deadline: Deadline,
    /// Only an idle server will do (the server refused a login with 53300); with no active
    /// server to wait for, fail at once.
    pub idle_only: bool,
    /// Called once if the wait is still on at this instant (`pool_notice_after_waiting_ms`).
    pub notice: Option<(Instant, &'a mut dyn FnMut())>,
}

struct Waiter {
    grant: Mutex<Option<Grant>>,
    cond: Cond,
    /// When it began to wait (a shared pool serves its routes' waiters oldest first).
    since: Instant,
    /// The machine it waits on.
    machine: Option<MachineId>,
}

/// How much longer than a waiter of the server's own machine the oldest waiter of another
/// machine may have waited and still come second: small next to a wait in a busy pool (tens of
/// milliseconds), large next to the gap between two releases, so that most hand-offs stay on
/// their machine and neither machine's waiters fall behind the other's by more than this.
const AFFINITY_SLACK: Duration = Duration::from_millis(2);
/// How many waiters, or idle servers, are looked through for one of the caller's machine.
const AFFINITY_SCAN: usize = 16;

#[derive(Default)]
struct State {
    idle: Vec<DetachedServer>,
    active: u32,
    connecting: u32,
    waiters: VecDeque<Arc<Waiter>>,
}

/// Counts for stats and the console.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolCounts {
    /// Idle servers.
    pub idle: u32,
    /// Servers in use by a client.
    pub active: u32,
    /// Connections being opened.
    pub connecting: u32,
    /// Clients waiting for a server.
    pub waiting: u32,
}

/// One route's servers.
#[derive(Default)]
pub struct ServerPool {
    state: Mutex<State>,
    /// The `shared_pool` whose cap it counts against too.
    shared: Option<Arc<SharedPool>>,
}

fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl ServerPool {
    /// A pool whose servers count against `shared`'s cap as well.
    pub fn member_of(shared: Arc<SharedPool>) -> Arc<ServerPool> {
        let pool = Arc::new(ServerPool {
            state: Mutex::default(),
            shared: Some(shared.clone()),
        });
        shared.join(&pool);
        pool
    }

    /// The shared pool it belongs to.
    pub fn shared(&self) -> Option<&Arc<SharedPool>> {
        self.shared.as_ref()
    }

    /// Takes an idle server, or permission to connect while under `size` (0 = unlimited),
    /// or waits for one as `wait` says.
    pub fn acquire(&self, size: u32, wait: Wait<'_>) -> Result<Grant, AcquireError> {
        let Wait {
            deadline,
            idle_only,
            mut notice,
        } = wait;
        let waiter = {
            let mut sh = self.shared.as_ref().map(|p| (p.size, p.lock()));
            let mut s = lock(&self.state);
            if s.waiters.is_empty() {
                if let Some(server) = take_idle(&mut s.idle) {
                    s.active += 1;
                    return Ok(Grant::Server(Box::new(server)));
                }
                if idle_only && s.active == 0 {
                    // Nobody will give a server back (upstream: fail at once).
                    return Err(AcquireError::TimedOut);
                }
                if !idle_only {
                    let grant = match &mut sh {
                        None => (size == 0 || s.idle.len() as u32 + s.active + s.connecting < size)
                            .then_some(Grant::Connect),
                        Some((cap, sh)) => match sh.reserve(*cap) {
                            true => Some(Grant::Connect),
                            false => sh.evict_idle(self).map(|v| Grant::Replace(Box::new(v))),
                        },
                    };
                    if let Some(grant) = grant {
                        s.connecting += 1;
                        return Ok(grant);
                    }
                }
            }
            let w = Arc::new(Waiter {
                grant: Mutex::new(None),
                cond: Cond::new(),
                since: Instant::now(),
                machine: machinarium::current_machine_id(),
            });
            s.waiters.push_back(w.clone());
            w
        };
        loop {
            let until = match &notice {
                Some((at, _)) => earlier(deadline, *at),
                None => deadline,
            };
            let r = waiter.cond.wait(until);
            if let Some(g) = take(&waiter) {
                return Ok(g);
            }
            if let Err(e) = r {
                if matches!(e, machinarium::Error::TimedOut) && until != deadline {
                    // The notice instant, not the deadline: tell, and wait on.
                    if let Some((_, tell)) = notice.take() {
                        tell();
                    }
                    continue;
                }
                let mut s = lock(&self.state);
                s.waiters.retain(|w| !Arc::ptr_eq(w, &waiter));
                drop(s);
                // A grant may have come between the wake and the removal: take it.
                if let Some(g) = take(&waiter) {
                    return Ok(g);
                }
                return Err(match e {
                    machinarium::Error::TimedOut => AcquireError::TimedOut,
                    _ => AcquireError::Cancelled,
                });
            }
        }
    }

    /// One more connection toward `min` servers (idle, active and connecting counted), while
    /// under `size` (0 = unlimited) and nobody waits: true when counted as connecting.
    /// A member of a shared pool keeps none (upstream: no `min_pool_size` for shared pools).
    pub fn reserve_for_min(&self, min: u32, size: u32) -> bool {
        if self.shared.is_some() {
            return false;
        }
        let mut s = lock(&self.state);
        let total = s.idle.len() as u32 + s.active + s.connecting;
        if total >= min || (size != 0 && total >= size) || !s.waiters.is_empty() {
            return false;
        }
        s.connecting += 1;
        true
    }

    /// A client is done with an active server and it is clean: to the first waiter, or idle.
    /// In a shared pool where another route's waiter has waited longer, the server is
    /// returned for the caller to close, and its slot, still counted, goes to that waiter
    /// once it is closed ([`ServerPool::handed_over`]): PostgreSQL never sees both at once.
    #[must_use = "a server returned is to be closed, then handed_over called"]
    pub fn release(&self, mut server: DetachedServer) -> Option<DetachedServer> {
        server.info.idle_since = Instant::now();
        let sh = self.shared.as_ref().map(|p| p.lock());
        let mut s = lock(&self.state);
        let own = s.waiters.front().map(|w| w.since);
        if sh
            .as_ref()
            .is_some_and(|sh| sh.other_waits_longer(self, own))
        {
            s.active -= 1;
            return Some(server);
        }
        if let Some(w) = next_waiter(&mut s.waiters, server.home()) {
            give(&w, Grant::Server(Box::new(server)));
            return None;
        }
        s.active -= 1;
        s.idle.push(server);
        None
    }

    /// An active server was closed: its slot goes to a waiter, who may connect.
    pub fn closed(&self) {
        self.slot_freed(|s| s.active -= 1);
    }

    /// The server [`ServerPool::release`] returned is closed: its slot goes to the other
    /// route's waiter (or, should that one have given up, to whoever waits; else it is free).
    pub fn handed_over(&self) {
        self.slot_freed(|_| {});
    }

    /// One of this pool's slots is free after `count` fixed the pool's own counts: to the
    /// oldest waiter of this route or (shared pool) of another member route, else it is gone.
    fn slot_freed(&self, count: impl FnOnce(&mut State)) {
        let mut sh = self.shared.as_ref().map(|p| p.lock());
        let mut s = lock(&self.state);
        count(&mut s);
        let own = s.waiters.front().map(|w| w.since);
        if sh.as_mut().is_some_and(|sh| sh.hand_to_other(self, own)) {
            return;
        }
        if let Some(w) = s.waiters.pop_front() {
            s.connecting += 1;
            give(&w, Grant::Connect);
            return;
        }
        drop(s);
        if let Some(sh) = &mut sh {
            sh.free();
        }
    }

    /// A connection this pool allowed is open and in use.
    pub fn connected(&self) {
        let mut s = lock(&self.state);
        s.connecting -= 1;
        s.active += 1;
    }

    /// A connection this pool allowed failed; a waiter may try in its place.
    pub fn connect_failed(&self) {
        self.slot_freed(|s| s.connecting -= 1);
    }

    /// Removes idle servers that have been idle for `ttl` or alive for `lifetime` (each when
    /// set), at most `limit` of them; returns them to be closed.
    pub fn expire(
        &self,
        ttl: Option<Duration>,
        lifetime: Option<Duration>,
        limit: usize,
    ) -> Vec<DetachedServer> {
        let now = Instant::now();
        let expired = |srv: &DetachedServer| {
            ttl.is_some_and(|t| now.duration_since(srv.info.idle_since) >= t)
                || lifetime.is_some_and(|l| now.duration_since(srv.info.created) >= l)
        };
        let mut s = lock(&self.state);
        let mut out = Vec::new();
        let mut i = 0;
        while i < s.idle.len() && out.len() < limit {
            if expired(&s.idle[i]) {
                out.push(s.idle.swap_remove(i));
            } else {
                i += 1;
            }
        }
        out
    }

    /// An idle server taken by `expire` was closed: a waiter may connect in its place.
    pub fn closed_idle(&self) {
        self.slot_freed(|_| {});
    }

    /// Takes every idle server (route dropped, shutdown); in a shared pool their slots are
    /// freed for the other routes.
    pub fn drain_idle(&self) -> Vec<DetachedServer> {
        let idle = std::mem::take(&mut lock(&self.state).idle);
        for _ in &idle {
            self.slot_freed(|_| {});
        }
        idle
    }

    /// Current counts.
    pub fn counts(&self) -> PoolCounts {
        let s = lock(&self.state);
        PoolCounts {
            idle: s.idle.len() as u32,
            active: s.active,
            connecting: s.connecting,
            waiting: s.waiters.len() as u32,
        }
    }
}

/// The most recently idled server registered with the caller's machine (among the last few),
/// else the most recently idled one.
fn take_idle(idle: &mut Vec<DetachedServer>) -> Option<DetachedServer> {
    let here = machinarium::current_machine_id();
    let start = idle.len().saturating_sub(AFFINITY_SCAN);
    let local = here.and_then(|_| idle[start..].iter().rposition(|v| v.home() == here));
    match local {
        Some(i) => Some(idle.remove(start + i)),
        None => idle.pop(),
    }
}

/// Who gets a server registered with `home`: the oldest waiter, or the oldest waiter on
/// `home` if it began to wait no more than [`AFFINITY_SLACK`] after that one.
fn next_waiter(
    waiters: &mut VecDeque<Arc<Waiter>>,
    home: Option<MachineId>,
) -> Option<Arc<Waiter>> {
    let first = waiters.front()?;
    if home.is_none() || first.machine == home {
        return waiters.pop_front();
    }
    let limit = first.since + AFFINITY_SLACK;
    let local = waiters
        .iter()
        .take(AFFINITY_SCAN)
        .take_while(|w| w.since <= limit)
        .position(|w| w.machine == home);
    match local {
        Some(i) => waiters.remove(i),
        None => waiters.pop_front(),
    }
}

/// The grant handed to a waiter, if any.
fn take(w: &Waiter) -> Option<Grant> {
    w.grant.lock().unwrap_or_else(|p| p.into_inner()).take()
}

/// The earlier of a deadline and an instant.
fn earlier(deadline: Deadline, at: Instant) -> Deadline {
    match deadline {
        Deadline::At(d) if d <= at => deadline,
        _ => Deadline::At(at),
    }
}

/// Hands a grant to a waiter and wakes it (on whatever machine it waits).
fn give(w: &Waiter, grant: Grant) {
    *w.grant.lock().unwrap_or_else(|p| p.into_inner()) = Some(grant);
    w.cond.signal();
}
