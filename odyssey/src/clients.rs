//! Every logged-in client, for `SHOW CLIENTS` and `KILL_CLIENT`: who it is, where it came from,
//! what it is doing now. A session updates its own entry (relaxed stores on a line no other
//! worker writes); the console reads them all.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use crate::id::ClientId;
use crate::route::Route;

/// What a client is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ClientState {
    /// Logged in, without a server (idle between transactions).
    Pending = 0,
    /// Holding a server.
    Active = 1,
    /// Waiting for a server.
    Queue = 2,
}

impl ClientState {
    /// The console's word for it.
    pub fn name(self) -> &'static str {
        match self {
            ClientState::Pending => "pending",
            ClientState::Active => "active",
            ClientState::Queue => "queue",
        }
    }
}

/// A logged-in client as the console sees it.
pub struct ClientEntry {
    /// Its id.
    pub id: ClientId,
    /// Startup user.
    pub user: Arc<str>,
    /// Startup database.
    pub database: Arc<str>,
    /// Its address (None: unix socket).
    pub addr: Option<SocketAddr>,
    /// Our address it connected to.
    pub local: Option<SocketAddr>,
    /// Whether it speaks TLS.
    pub tls: bool,
    /// When it connected.
    pub connected_at: SystemTime,
    /// Its route (None: a console client).
    pub route: Option<Arc<Route>>,
    state: AtomicU8,
    killed: AtomicBool,
}

impl ClientEntry {
    /// An entry for a client that has just logged in.
    pub fn new(
        id: ClientId,
        (user, database): (Arc<str>, Arc<str>),
        (addr, local): (Option<SocketAddr>, Option<SocketAddr>),
        tls: bool,
        route: Option<Arc<Route>>,
    ) -> ClientEntry {
        ClientEntry {
            id,
            user,
            database,
            addr,
            local,
            tls,
            connected_at: SystemTime::now(),
            route,
            state: AtomicU8::new(ClientState::Pending as u8),
            killed: AtomicBool::new(false),
        }
    }

    /// What it is doing.
    pub fn state(&self) -> ClientState {
        match self.state.load(Ordering::Relaxed) {
            1 => ClientState::Active,
            2 => ClientState::Queue,
            _ => ClientState::Pending,
        }
    }

    /// It started doing something else.
    pub fn set_state(&self, state: ClientState) {
        self.state.store(state as u8, Ordering::Relaxed);
    }

    /// Whether `KILL_CLIENT` named it.
    pub fn killed(&self) -> bool {
        self.killed.load(Ordering::Acquire)
    }
}

/// A route's clients by what they are doing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RouteClients {
    /// Holding a server.
    pub active: u64,
    /// Waiting for a server.
    pub waiting: u64,
    /// Neither.
    pub idle: u64,
}

/// The logged-in clients, by id.
#[derive(Default)]
pub struct ClientList {
    clients: Mutex<HashMap<ClientId, Arc<ClientEntry>>>,
}

impl ClientList {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ClientId, Arc<ClientEntry>>> {
        self.clients.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds a client.
    pub fn add(&self, entry: Arc<ClientEntry>) {
        self.lock().insert(entry.id, entry);
    }

    /// Removes a client.
    pub fn remove(&self, id: ClientId) {
        self.lock().remove(&id);
    }

    /// Every client now, oldest first.
    pub fn all(&self) -> Vec<Arc<ClientEntry>> {
        let mut all: Vec<_> = self.lock().values().cloned().collect();
        all.sort_by_key(|c| c.connected_at);
        all
    }

    /// The clients of each route (by the route's address) by state; console clients are not
    /// counted.
    pub fn count_by_route(&self) -> HashMap<usize, RouteClients> {
        let mut counts: HashMap<usize, RouteClients> = HashMap::new();
        for c in self.lock().values() {
            let Some(route) = &c.route else { continue };
            let e = counts.entry(Arc::as_ptr(route) as usize).or_default();
            match c.state() {
                ClientState::Active => e.active += 1,
                ClientState::Queue => e.waiting += 1,
                ClientState::Pending => e.idle += 1,
            }
        }
        counts
    }

    /// Marks the client with id text `id` (`c` and 12 hex digits) killed; false if there is
    /// none. Its session ends the next time it runs (the caller wakes parked sessions).
    pub fn kill(&self, id: &str) -> bool {
        let found = self
            .lock()
            .values()
            .find(|c| c.id.to_string() == id)
            .cloned();
        match found {
            Some(c) => {
                c.killed.store(true, Ordering::Release);
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kill_marks_only_the_named_client() {
        let list = ClientList::default();
        let entry = |id| {
            Arc::new(ClientEntry::new(
                id,
                ("u".into(), "d".into()),
                (None, None),
                false,
                None,
            ))
        };
        let (a, b) = (entry(ClientId::new()), entry(ClientId::new()));
        list.add(a.clone());
        list.add(b.clone());
        assert!(list.kill(&a.id.to_string()));
        assert!(a.killed() && !b.killed());
        assert!(!list.kill("c000000000000"));
        b.set_state(ClientState::Queue);
        assert_eq!(b.state().name(), "queue");
        list.remove(a.id);
        assert_eq!(list.all().len(), 1);
    }
}
