//! A client connection after login: its connection, who it is, its session parameters and
//! the key it may send back in a CancelRequest.

use std::sync::Arc;
use std::time::Instant;

use kiwi::var::Vars;

use crate::cancel::{CancelSlot, ClientKey};
use crate::conn::Conn;
use crate::id::ClientId;
use crate::logger::ClientInfo;

/// A logged-in client.
pub struct Client {
    /// Our id for it.
    pub id: ClientId,
    /// Its connection.
    pub conn: Conn,
    /// User from the startup packet.
    pub user: String,
    /// Database from the startup packet (the user when absent).
    pub database: String,
    /// Tracked session parameters: from the startup packet, then its own SETs.
    pub vars: Vars,
    /// Our cancel key for it.
    pub key: ClientKey,
    /// Where a CancelRequest with that key goes.
    pub cancel: Arc<CancelSlot>,
    /// What log lines say about it.
    pub info: ClientInfo,
    /// Prefix errors with the id (`client_show_id`).
    pub show_id: bool,
    /// When it connected.
    pub connected_at: Instant,
}
