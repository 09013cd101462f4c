//! A `shared_pool`: one cap on the servers of every route whose rule names it.
//!
//! Each member route keeps its own idle list and waiters (a server logged in as one user
//! cannot serve another); the shared pool counts their servers together. A member that finds
//! the cap reached takes the place of another member's idle server (the caller closes it and
//! connects anew), and a slot freed on one member goes to the oldest waiter of all members,
//! so no route starves while another keeps the servers busy or idle.
//!
//! Lock order: the shared state first, then member pools; a member's own lock alone never
//! reaches for the shared one.

use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Instant;

use super::{Grant, ServerPool, give, lock};
use crate::server::DetachedServer;

/// The servers of a shared pool's member routes, counted together.
pub struct SharedPool {
    /// Its name in the config.
    pub name: String,
    /// The most servers its members may have at once (idle, active and connecting).
    pub size: u32,
    state: Mutex<SharedState>,
}

#[derive(Default)]
pub(super) struct SharedState {
    /// Servers of the members now (idle, active and connecting).
    servers: u32,
    /// The member pools (gone routes are pruned when a new one joins).
    members: Vec<Weak<ServerPool>>,
}

/// Counts for the console and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SharedCounts {
    /// Servers of the members now.
    pub servers: u32,
    /// Member routes alive.
    pub members: usize,
}

impl SharedPool {
    /// A shared pool of `size` servers.
    pub fn new(name: &str, size: u32) -> Arc<SharedPool> {
        Arc::new(SharedPool {
            name: name.to_string(),
            size,
            state: Mutex::default(),
        })
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, SharedState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds a member pool.
    pub(super) fn join(&self, pool: &Arc<ServerPool>) {
        let mut sh = self.lock();
        sh.members.retain(|m| m.strong_count() > 0);
        sh.members.push(Arc::downgrade(pool));
    }

    /// Current counts.
    pub fn counts(&self) -> SharedCounts {
        let sh = self.lock();
        SharedCounts {
            servers: sh.servers,
            members: sh.members.iter().filter(|m| m.strong_count() > 0).count(),
        }
    }
}

impl SharedState {
    /// A new connection for `me` while under the cap: counted, and true.
    pub(super) fn reserve(&mut self, size: u32) -> bool {
        if self.servers >= size {
            return false;
        }
        self.servers += 1;
        true
    }

    /// An idle server of another member, taken out of its pool so that `me` may connect in
    /// its place (the count is unchanged: one server goes, one comes).
    pub(super) fn evict_idle(&mut self, me: &ServerPool) -> Option<DetachedServer> {
        self.members
            .iter()
            .filter_map(Weak::upgrade)
            .filter(|m| !std::ptr::eq(m.as_ref(), me))
            .find_map(|m| lock(&m.state).idle.pop())
    }

    /// A slot of the shared pool is free and nobody waits for it: the count goes down.
    pub(super) fn free(&mut self) {
        self.servers = self.servers.saturating_sub(1);
    }

    /// Whether another member has a waiter that has waited since before `own` (the oldest of
    /// `me`'s, if any): then a server of `me` given back is closed and its slot goes there.
    pub(super) fn other_waits_longer(&self, me: &ServerPool, own: Option<Instant>) -> bool {
        self.oldest_other(me, own).is_some()
    }

    /// Gives a slot of `me` to the oldest waiter of another member — one that has waited
    /// since before `own` (the oldest of `me`'s, if any) — who may connect: true when one
    /// took it. Oldest first, so that a busy route does not keep the shared servers while
    /// another route's clients time out.
    pub(super) fn hand_to_other(&mut self, me: &ServerPool, own: Option<Instant>) -> bool {
        let Some(m) = self.oldest_other(me, own) else {
            return false;
        };
        let mut s = lock(&m.state);
        // It may have given up since: then nobody else is served here.
        let Some(w) = s.waiters.pop_front() else {
            return false;
        };
        s.connecting += 1;
        give(&w, Grant::Connect);
        true
    }

    /// The other member whose first waiter has waited longest, and since before `own`.
    fn oldest_other(&self, me: &ServerPool, own: Option<Instant>) -> Option<Arc<ServerPool>> {
        self.members
            .iter()
            .filter_map(Weak::upgrade)
            .filter(|m| !std::ptr::eq(m.as_ref(), me))
            .filter_map(|m| {
                let since = lock(&m.state).waiters.front()?.since;
                Some((since, m))
            })
            .filter(|(since, _)| own.is_none_or(|own| *since < own))
            .min_by_key(|(since, _)| *since)
            .map(|(_, m)| m)
    }
}
