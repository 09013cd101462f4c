//! Cancel requests: every client gets a key of our own (never the server's); a CancelRequest
//! with that key is forwarded, with the server's own key, to the server running the client's
//! query at that moment — or does nothing when the client holds no server.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kiwi::startup::{CancelRequest, ProtocolVersion, StartupPacket};
use machinarium::Deadline;
use machinarium::net::Stream;

use crate::client::{CancelSlot, ClientKey};
use crate::conn::{Conn, ConnError, Transport};
use crate::gate::{Gate, Slot};
use crate::server::{Address, CancelTarget};
use crate::tls::{self, TlsError};

/// Every connected client's key, process-wide, and the gate outgoing cancels pass.
pub struct CancelRegistry {
    /// Keyed by the pid we told each client (unique among them); the slot holds the secret.
    map: Mutex<HashMap<i32, Arc<CancelSlot>>>,
    /// `cancel_max_inflight` slots (sized at start, as upstream's semaphore).
    inflight: Arc<Gate>,
}

impl CancelRegistry {
    /// A registry whose outgoing cancels are at most `max_inflight` at a time.
    pub fn new(max_inflight: u32) -> CancelRegistry {
        CancelRegistry {
            map: Mutex::default(),
            inflight: Gate::new(max_inflight),
        }
    }

    /// Waits for a cancel slot until `deadline` (`cancel_queue_timeout_ms`).
    pub fn enter(&self, deadline: Deadline) -> Option<Slot> {
        self.inflight.enter(deadline)
    }

    /// The slot of a new client speaking `protocol`, with a fresh random key (`slot.key()`): a
    /// 32-byte secret for protocol 3.2, 4 bytes for 3.0.
    pub fn register(&self, protocol: ProtocolVersion) -> Arc<CancelSlot> {
        let len = if protocol >= ProtocolVersion::V3_2 {
            ClientKey::LONG
        } else {
            ClientKey::SHORT
        };
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            let mut random = [0u8; 4 + ClientKey::LONG];
            fill_random(&mut random);
            // A positive pid, as PostgreSQL's are.
            let pid = (u32::from_be_bytes([random[0], random[1], random[2], random[3]])
                & 0x7fff_ffff) as i32;
            let Some(key) = ClientKey::new(pid, &random[4..4 + len]) else {
                continue;
            };
            if let std::collections::hash_map::Entry::Vacant(e) = map.entry(pid) {
                let slot = Arc::new(CancelSlot::new(key));
                e.insert(slot.clone());
                return slot;
            }
        }
    }

    /// The client told this pid left.
    pub fn unregister(&self, pid: i32) {
        self.map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&pid);
    }

    /// The server behind a client key, if that client holds one now.
    pub fn lookup(&self, pid: i32, secret: &[u8]) -> Option<CancelTarget> {
        let slot = self
            .map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&pid)?
            .clone();
        // Compared in constant time: the secret is what makes a cancel legitimate.
        let told = slot.key();
        if told.secret().len() != secret.len() || !openssl::memcmp::eq(told.secret(), secret) {
            return None;
        }
        let target = slot.get();
        if target.is_some() {
            slot.forwarding();
        }
        target
    }
}

/// Fills `buf` from openssl's CSPRNG (cancel secrets must not be guessable), or from the
/// system's random uuids should openssl fail.
fn fill_random(buf: &mut [u8]) {
    if openssl::rand::rand_bytes(buf).is_ok() {
        return;
    }
    for chunk in buf.chunks_mut(16) {
        let random = uuid::Uuid::new_v4().as_u128().to_be_bytes();
        chunk.copy_from_slice(&random[..chunk.len()]);
    }
}

/// Why a cancel could not be delivered.
#[derive(Debug)]
pub enum CancelError {
    /// Connecting failed.
    Connect(machinarium::Error),
    /// The server's connection is TLS and the cancel's could not be.
    Tls(TlsError),
    /// Sending the CancelRequest failed.
    Send(ConnError),
}

impl std::fmt::Display for CancelError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CancelError::Connect(e) => write!(f, "connect: {e}"),
            CancelError::Tls(e) => e.fmt(f),
            CancelError::Send(e) => write!(f, "send: {e}"),
        }
    }
}

/// Sends a CancelRequest for `target`'s key over a new connection (TLS when the server's
/// connection is TLS, after an SSLRequest, with the storage's context), waiting up to
/// `timeout` (`None`: no limit) for the server to close it.
pub fn forward(target: &CancelTarget, timeout: Option<Duration>) -> Result<(), CancelError> {
    let deadline = Deadline::from(timeout);
    let stream = match &target.address {
        Address::Tcp(a) => Stream::connect(*a, deadline),
        Address::Unix(p) => Stream::connect_unix(p, deadline),
    }
    .map_err(CancelError::Connect)?;
    let mut conn = Conn::new(Transport::Plain(stream));
    if let Some(t) = &target.tls {
        conn = tls::connect(conn, &t.server_tls(), deadline).map_err(CancelError::Tls)?;
    }
    let mut out = Vec::with_capacity(16);
    StartupPacket::Cancel(CancelRequest {
        pid: target.key.pid,
        key: &target.key.secret,
    })
    .encode(&mut out);
    conn.write_all(&out, deadline).map_err(CancelError::Send)?;
    // PostgreSQL closes the connection when done; wait for that so the cancel is delivered
    // before we report it.
    let _ = conn.fill(deadline);
    Ok(())
}
