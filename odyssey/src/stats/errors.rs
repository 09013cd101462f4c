//! How client sessions ended badly, counted by upstream's names (`SHOW ERRORS`, `/metrics`).

use std::sync::atomic::{AtomicU64, Ordering};

/// Declares the kinds, their list in order and their upstream names in one place.
macro_rules! error_kinds {
    ($($(#[$doc:meta])* $kind:ident => $name:literal,)*) => {
        /// A kind of failure, named as upstream's console names it.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        #[repr(usize)]
        pub enum ErrorKind {
            $($(#[$doc])* $kind,)*
        }

        /// Every kind in upstream's order: router errors, then frontend errors.
        pub const ALL: &[ErrorKind] = &[$(ErrorKind::$kind,)*];

        impl ErrorKind {
            /// Upstream's name.
            pub fn name(self) -> &'static str {
                match self {
                    $(ErrorKind::$kind => $name,)*
                }
            }
        }
    };
}

error_kinds! {
    /// Routing failed for another reason.
    RouterError => "OD_ROUTER_ERROR",
    /// No rule for the database and user.
    RouterNotFound => "OD_ROUTER_ERROR_NOT_FOUND",
    /// The global `client_max`.
    RouterLimit => "OD_ROUTER_ERROR_LIMIT",
    /// The rule's `client_max`.
    RouterLimitRoute => "OD_ROUTER_ERROR_LIMIT_ROUTE",
    /// No server within `pool_timeout`.
    RouterTimedOut => "OD_ROUTER_ERROR_TIMEDOUT",
    /// Replication lag too high.
    RouterReplication => "OD_ROUTER_ERROR_REPLICATION",
    /// The client went away while routed.
    RouterClientDisconnected => "OD_ROUTER_CLIENT_DISCONNECTED",
    /// Out of memory.
    OutOfMemory => "OD_EOOM",
    /// Attaching a server failed.
    Attach => "OD_EATTACH",
    /// Too many server connections.
    AttachTooMany => "OD_EATTACH_TOO_MANY_CONNECTIONS",
    /// No host fit `target_session_attrs`.
    AttachTargetSessionAttrs => "OD_EATTACH_TARGET_SESSION_ATTRS_MISMATCH",
    /// A server connection could not be made.
    ServerConnect => "OD_ESERVER_CONNECT",
    /// Reading from a server failed.
    ServerRead => "OD_ESERVER_READ",
    /// Writing to a server failed.
    ServerWrite => "OD_ESERVER_WRITE",
    /// A server's read-ahead buffer overflowed.
    ServerReadaheadFull => "OD_ESERVER_READAHEAD_FULL",
    /// Writing to a client failed.
    ClientWrite => "OD_ECLIENT_WRITE",
    /// A client's read-ahead buffer overflowed.
    ClientReadaheadFull => "OD_ECLIENT_READAHEAD_FULL",
    /// Killed by the console or a reload.
    ClientKilled => "OD_ECLIENT_KILLED",
    /// A client timed out.
    ClientTimeout => "OD_ECLIENT_TIMEOUT",
    /// Reading from a client failed.
    ClientRead => "OD_ECLIENT_READ",
    /// A client broke the protocol.
    ClientProtocol => "OD_ECLIENT_PROTOCOL_ERROR",
    /// COPY IN in the extended protocol.
    ClientCopyInExtended => "OD_ECLIENT_COPY_IN_XPROTO",
    /// Sync lost between client and server.
    SyncBroken => "OD_ESYNC_BROKEN",
    /// Replica did not catch up in time.
    CatchupTimeout => "OD_ECATCHUP_TIMEOUT",
    /// Ended by a graceful shutdown.
    GracefulShutdown => "OD_EGRACEFUL_SHUTDOWN",
    /// `pool_client_idle_timeout`.
    IdleTimeout => "OD_EIDLE_TIMEOUT",
    /// `pool_idle_in_transaction_timeout`.
    IdleInTransactionTimeout => "OD_EIDLE_IN_TRANSACTION_TIMEOUT",
}

impl ErrorKind {
    /// A router error (shown once globally), not a session's.
    pub fn is_router(self) -> bool {
        (self as usize) <= ErrorKind::RouterClientDisconnected as usize
    }
}

/// How many kinds there are.
const KINDS: usize = ErrorKind::IdleInTransactionTimeout as usize + 1;

/// A count per kind.
#[derive(Debug, Default)]
pub struct ErrorCounts {
    counts: [AtomicU64; KINDS],
}

impl ErrorCounts {
    /// Counts one.
    pub fn add(&self, kind: ErrorKind) {
        self.counts[kind as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// The count of a kind.
    pub fn get(&self, kind: ErrorKind) -> u64 {
        self.counts[kind as usize].load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_is_in_enum_order() {
        assert_eq!(ALL.len(), KINDS);
        for (i, k) in ALL.iter().enumerate() {
            assert_eq!(*k as usize, i, "{}", k.name());
        }
        assert!(ErrorKind::RouterClientDisconnected.is_router());
        assert!(!ErrorKind::OutOfMemory.is_router());
        let c = ErrorCounts::default();
        c.add(ErrorKind::ClientKilled);
        assert_eq!(c.get(ErrorKind::ClientKilled), 1);
        assert_eq!(c.get(ErrorKind::ServerRead), 0);
    }
}
