//! A client connection after login: its connection, who it is, its session parameters and
//! the key it may send back in a CancelRequest.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use kiwi::startup::ProtocolVersion;
use kiwi::var::Vars;

use crate::conn::Conn;
use crate::id::ClientId;
use crate::logger::ClientInfo;
use crate::server::CancelTarget;

/// A logged-in client.
pub struct Client {
    /// Our id for it.
    pub id: ClientId,
    /// Its connection.
    pub conn: Conn,
    /// User from the startup packet.
    pub user: Arc<str>,
    /// Database from the startup packet (the user when absent).
    pub database: Arc<str>,
    /// Tracked session parameters: from the startup packet, then its own SETs.
    pub vars: Vars,
    /// What log lines say about it.
    pub info: ClientInfo,
    /// Prefix errors with the id (`client_show_id`).
    pub show_id: bool,
    /// When it connected.
    pub connected_at: Instant,
    /// The protocol version we speak with it (3.0 or 3.2).
    pub protocol: ProtocolVersion,
}

/// The slot a client updates on attach/detach and a cancel reads, with the key it was told.
pub struct CancelSlot {
    key: ClientKey,
    target: Mutex<Option<CancelTarget>>,
    /// Cancels forwarded for the client, not yet counted on its route.
    forwarded: AtomicU32,
}

impl CancelSlot {
    /// The slot of a client told `key`, holding no server.
    pub fn new(key: ClientKey) -> CancelSlot {
        CancelSlot {
            key,
            target: Mutex::new(None),
            forwarded: AtomicU32::new(0),
        }
    }

    /// The key the client was told.
    pub fn key(&self) -> ClientKey {
        self.key
    }

    /// The client got a server (or lost it: `None`).
    pub fn set(&self, target: Option<CancelTarget>) {
        *self.target.lock().unwrap_or_else(|p| p.into_inner()) = target;
    }

    /// A cancel for the client is being forwarded.
    pub fn forwarding(&self) {
        self.forwarded.fetch_add(1, Ordering::Relaxed);
    }

    /// Cancels forwarded since the last call.
    pub fn take_forwarded(&self) -> u32 {
        self.forwarded.swap(0, Ordering::Relaxed)
    }

    /// Where a cancel for the client goes now.
    pub fn get(&self) -> Option<CancelTarget> {
        self.target
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// Our key for a client: what it sends back in a CancelRequest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientKey {
    /// The "pid" we told the client.
    pub pid: i32,
    /// The secret we told the client: its first `len` bytes (the rest are zero).
    secret: [u8; ClientKey::LONG],
    len: u8,
}

impl ClientKey {
    /// Secret length for protocol 3.0 clients.
    pub const SHORT: usize = 4;
    /// Secret length for protocol 3.2 clients (as PostgreSQL 18 gives).
    pub const LONG: usize = 32;

    /// The key with this secret, if it has one of the two lengths we give out.
    pub fn new(pid: i32, secret: &[u8]) -> Option<ClientKey> {
        if secret.len() != Self::SHORT && secret.len() != Self::LONG {
            return None;
        }
        let mut key = ClientKey {
            pid,
            secret: [0; Self::LONG],
            len: secret.len() as u8,
        };
        key.secret[..secret.len()].copy_from_slice(secret);
        Some(key)
    }

    /// The secret we told the client.
    pub fn secret(&self) -> &[u8] {
        &self.secret[..usize::from(self.len)]
    }
}
