//! The relay, sans-io: the protocol state of one client and the server it holds, and the
//! answers to the two questions a session asks. Given the client's bytes: what goes to the
//! server (as it is, or rewritten), what the pooler answers itself, whether a server is needed
//! first. Given the server's bytes: what goes to the client, and whether the server can be
//! given back. It reads and writes nothing; `frontend::session` moves the bytes.
//!
//! The rules of transaction pooling live here: a server is given back only at ReadyForQuery
//! `I` with no request in flight, no extended-protocol sequence open, no reply owed and no
//! deferred BEGIN; a bare BEGIN is deferred (`virtual_transaction`); tracked SETs follow the
//! client once they take effect; named prepared statements are mapped to shared server-side
//! ones (`statements`).
//!
//! Files: `scan` (message boundaries in both streams), `client` and `server` (one direction
//! each), `statements` (prepared statements), `sets` (tracked SETs), `virtual_tsa` (SET and
//! SHOW of `odyssey.target_session_attrs` under `virtual_processing`).

mod client;
#[cfg(any(test, feature = "harness"))]
pub mod harness;
mod listen;
#[cfg(test)]
mod listen_tests;
pub mod scan;
mod server;
pub mod sets;
pub mod statements;
#[cfg(test)]
mod tests;
mod virtual_tsa;

use std::fmt;
use std::sync::Arc;

use kiwi::backend::TransactionStatus;
use kiwi::error::DecodeError;

use crate::config::PoolMode;
use crate::config::storage::TargetSessionAttrs;
use crate::id::ClientId;
use crate::server::registry::StatementRegistry;
use scan::{BadFrame, Scanner};
use sets::SetTracker;
use statements::{ParseCounts, Statements};

pub use client::Attached;

/// The largest message a client may send once logged in (kiwi's protocol maximum).
pub const MAX_MESSAGE: u32 = kiwi::header::DEFAULT_MAX_MESSAGE;

/// How a route's pool wants its clients relayed.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Session, transaction or statement pooling.
    pub mode: PoolMode,
    /// `virtual_transaction`: a bare BEGIN is answered by the pooler and deferred.
    pub virtual_transaction: bool,
    /// `pool_reserve_prepared_statement` outside session pooling: named statements are mapped.
    pub prepared_statements: bool,
    /// `pool_prepared_statements_max`: statements a server keeps (0: no limit).
    pub prepared_max: usize,
    /// The client's id, for the pooler's own error replies.
    pub client: ClientId,
    /// Where statement texts get their server-side names.
    pub registry: Arc<StatementRegistry>,
    /// `client_show_id`.
    pub show_id: bool,
    /// `query_parsing` is not `disabled`: simple queries are looked at (deferred BEGIN,
    /// tracked SETs, DEALLOCATE of mapped statements); when off they all pass as they are.
    pub parse_queries: bool,
    /// `pool_pin_on_listen`: after a LISTEN the server stays with the client until it leaves.
    pub pin_on_listen: bool,
    /// `server_drop_on_cached_plan_error`: with statements mapped, a server that answered
    /// "cached plan must not change result type" is closed rather than given back.
    pub drop_on_cached_plan_error: bool,
    /// `virtual_processing`: the client's target_session_attrs at login, which SET and SHOW
    /// of `odyssey.target_session_attrs` then change and tell (`None`: they go to the server).
    pub target_session_attrs: Option<TargetSessionAttrs>,
}

/// The protocol state of a client and the server it holds.
///
/// Invariants: `pending` counts requests (Query, Sync, FunctionCall) sent to the attached server
/// and not yet answered by ReadyForQuery; `unsynced` is true between the first message of an
/// extended-protocol sequence and its Sync; both are zero/false whenever no server is attached.
pub struct Relay {
    settings: Settings,
    client_scan: Scanner,
    server_scan: Scanner,
    pending: u32,
    unsynced: bool,
    /// The server waits for the client's COPY data (see `scan::copy_in_after`).
    copy_in: bool,
    deferred_begin: bool,
    dirty: bool,
    /// The statements relay (`pool_reserve_prepared_statement`, transaction and statement
    /// pooling: see `statements_on`): made when the client first needs it and let go while it
    /// holds nothing (`shed`), so that an idle client keeps none.
    statements: Option<Box<Statements>>,
    sets: SetTracker,
    /// Parse messages forwarded as they are (the statements relay counts its own).
    parses: u32,
    /// The client ran LISTEN under `pool_pin_on_listen`: the server is not given back.
    pinned: bool,
    /// The server answered a cached plan error under `server_drop_on_cached_plan_error`.
    plan_broken: bool,
    /// The client's target_session_attrs under `virtual_processing`.
    tsa: Option<TargetSessionAttrs>,
    /// SQL `PREPARE`s of ours (a client's, mapped) in flight on the server: their
    /// CommandCompletes leave no client state behind. Cleared at each ReadyForQuery, so a
    /// miscount can only take a PREPARE for a client's (and reset the server).
    sql_prepares: u32,
    /// How the client's last transaction ended, as a bare COMMIT or ROLLBACK said (a COMMIT
    /// of a failed transaction is a ROLLBACK): whether its LISTENs take effect.
    ended: Option<&'static str>,
    /// The unnamed statement the client last parsed is this LISTEN/UNLISTEN (asyncpg parses
    /// it, then binds and executes it in a second round trip).
    unnamed_listen: Option<crate::listen::ListenOp>,
    /// A LISTEN/UNLISTEN the server ran for the client, for the session to take over.
    listened: Option<crate::listen::ListenOp>,
}

/// What the session does with the client's buffered bytes.
#[derive(Debug, PartialEq, Eq)]
pub enum ClientStep {
    /// Nothing can be done with them yet: read more (or wait for the server's replies).
    Wait,
    /// They need a server: attach one and ask again.
    NeedServer,
    /// Send the first `n` bytes to the server as they are, then drop them.
    Forward(usize),
    /// Drop the first `used` bytes; send `server` to the server, then `client` to the client.
    Rewrite {
        /// Client bytes handled.
        used: usize,
        /// Bytes for the server (may be empty).
        server: Vec<u8>,
        /// Bytes for the client, answered by the pooler (may be empty).
        client: Vec<u8>,
    },
    /// The client sent Terminate, and nothing before it is left to forward.
    Terminate,
    /// LISTEN/UNLISTEN for the session to carry out with the route's listener (transaction
    /// and statement pooling): drop the first `used` bytes, answer `prefix`, the command's
    /// outcome and ReadyForQuery with `status`.
    Listen {
        /// Client bytes handled.
        used: usize,
        /// What the client asked.
        op: crate::listen::ListenOp,
        /// The client's transaction status (in a transaction, the op waits for its end).
        status: TransactionStatus,
        /// Replies that come first (an extended sequence's ParseComplete, ...).
        prefix: Vec<u8>,
    },
}

/// What the session does with the server's buffered bytes.
#[derive(Debug, PartialEq, Eq)]
pub struct ServerStep {
    /// Server bytes handled (0: read more).
    pub used: usize,
    /// What the client gets for them.
    pub reply: Reply,
    /// ReadyForQuery messages among them (queries done).
    pub queries: u32,
    /// Transactions they completed.
    pub transactions: u32,
}

/// The client's share of the server's bytes.
#[derive(Debug, PartialEq, Eq)]
pub enum Reply {
    /// The handled bytes, unchanged.
    Same,
    /// These bytes instead (replies of the pooler put in, injected ones taken out).
    Rewritten(Vec<u8>),
}

/// A client broke the protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Violation {
    /// A message header that is no message.
    Frame(BadFrame),
    /// A message the pooler must read could not be decoded.
    Message {
        /// Its tag.
        tag: u8,
        /// What was wrong.
        error: DecodeError,
    },
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Violation::Frame(b) => write!(f, "{b}"),
            Violation::Message { tag, error } => {
                write!(f, "message '{}': {error}", tag.escape_ascii())
            }
        }
    }
}

impl From<BadFrame> for Violation {
    fn from(b: BadFrame) -> Self {
        Violation::Frame(b)
    }
}

impl Relay {
    /// The state of a client that has just logged in.
    pub fn new(settings: Settings) -> Relay {
        let tsa = settings.target_session_attrs;
        Relay {
            settings,
            client_scan: Scanner::default(),
            server_scan: Scanner::default(),
            pending: 0,
            unsynced: false,
            copy_in: false,
            deferred_begin: false,
            dirty: false,
            statements: None,
            sets: SetTracker::default(),
            parses: 0,
            pinned: false,
            plan_broken: false,
            tsa,
            sql_prepares: 0,
            ended: None,
            unnamed_listen: None,
            listened: None,
        }
    }

    /// The pool mode.
    pub fn mode(&self) -> PoolMode {
        self.settings.mode
    }

    /// A BEGIN was answered by the pooler and waits for the transaction's first statement.
    pub fn deferred_begin(&self) -> bool {
        self.deferred_begin
    }

    /// How the client's last transaction ended (`COMMIT` or `ROLLBACK`), once.
    pub fn take_ended(&mut self) -> Option<&'static str> {
        self.ended.take()
    }

    /// The deferred BEGIN went to the server (with the deploy of a newly attached server).
    pub fn begin_sent(&mut self) {
        self.deferred_begin = false;
    }

    /// Whether the statements relay maps the client's prepared statements (made or not yet).
    pub(super) fn statements_on(&self) -> bool {
        self.settings.mode != PoolMode::Session && self.settings.prepared_statements
    }

    /// The statements relay, made now if it is on and not made yet.
    pub(super) fn statements_mut(&mut self) -> Option<&mut Statements> {
        if !self.statements_on() {
            return None;
        }
        let registry = &self.settings.registry;
        Some(
            self.statements
                .get_or_insert_with(|| Box::new(Statements::new(registry.clone()))),
        )
    }

    /// Lets go of the statements relay while it holds nothing (no names, nothing owed, no
    /// counts untaken): the client is idle, and it is made again when needed.
    pub fn shed(&mut self) {
        if self.statements.as_deref().is_some_and(Statements::is_empty) {
            self.statements = None;
        }
    }

    /// Parse messages the client sent since the last call (for the route's statistics).
    pub fn take_parses(&mut self) -> ParseCounts {
        let mut counts = ParseCounts {
            total: std::mem::take(&mut self.parses),
            reused: 0,
        };
        if let Some(s) = self.statements.as_mut() {
            let own = std::mem::take(&mut s.parses);
            counts.total += own.total;
            counts.reused += own.reused;
        }
        counts
    }

    /// A request is in flight, a reply owed or a message half relayed: the server will speak
    /// soon, so the session waits rather than parks.
    pub fn busy(&self) -> bool {
        self.pending > 0
            || self.statements.as_deref().is_some_and(Statements::owed)
            || !self.server_scan.at_boundary()
            || !self.client_scan.at_boundary()
    }

    /// No request in flight and no transaction or sequence open, given the attached server's
    /// transaction status (`None`: no server): the client can leave, or the server go back,
    /// without anyone noticing.
    pub fn between_transactions(&self, server_tx: Option<TransactionStatus>) -> bool {
        self.client_scan.at_boundary()
            && !self.unsynced
            && !self.deferred_begin
            && !self.statements.as_deref().is_some_and(Statements::owed)
            && match server_tx {
                None => true,
                Some(tx) => {
                    self.pending == 0
                        && tx == TransactionStatus::Idle
                        && self.server_scan.at_boundary()
                }
            }
    }

    /// Whether the pool mode gives the server back now (transaction and statement pooling,
    /// between transactions, unless a LISTEN pinned it).
    pub fn may_release(&self, server_tx: TransactionStatus) -> bool {
        self.settings.mode != PoolMode::Session
            && !self.pinned
            && self.between_transactions(Some(server_tx))
    }

    /// The server answered "cached plan must not change result type" and the rule wants such
    /// a server closed (`server_drop_on_cached_plan_error`).
    pub fn plan_broken(&self) -> bool {
        self.plan_broken
    }

    /// Requests sent to the server and not answered yet.
    pub fn pending(&self) -> u32 {
        self.pending
    }

    /// The server is in COPY FROM STDIN (or COPY BOTH) and waits for the client's data: a
    /// cancel does not reach it there, only the client's CopyDone or CopyFail ends it.
    pub fn server_awaits_copy_data(&self) -> bool {
        self.copy_in
    }

    /// Whether the client's stream is between messages.
    pub fn client_at_boundary(&self) -> bool {
        self.client_scan.at_boundary()
    }

    /// Whether the server's stream is between messages.
    pub fn server_at_boundary(&self) -> bool {
        self.server_scan.at_boundary()
    }

    /// The client stopped inside a message, or (unless its session is over, when the open
    /// sequence dies with it) inside an extended-protocol sequence.
    pub fn client_unfinished(&self, session_end: bool) -> bool {
        !self.client_scan.at_boundary() || (self.unsynced && !session_end)
    }

    /// The session ran something that leaves state on the server the pooler does not track
    /// (an untracked SET, a temp table, LISTEN, ...): the server needs a discard.
    pub fn dirty(&self) -> bool {
        self.dirty
    }

    /// Reads server bytes while the pooler drains a server (after a cancel): moves past whole
    /// messages, counting ReadyForQuery into `tx`. Returns the bytes handled.
    pub fn drain(&mut self, buf: &[u8], tx: &mut TransactionStatus) -> Result<usize, BadFrame> {
        let (pending, copy_in) = (&mut self.pending, &mut self.copy_in);
        scan::scan_server(&mut self.server_scan, buf, |ev| {
            *copy_in = scan::copy_in_after(*copy_in, &ev);
            if let scan::ServerEvent::Ready(status) = ev {
                *pending = pending.saturating_sub(1);
                *tx = status;
            }
        })
    }

    /// A server was just attached: its stream starts at a message boundary.
    pub fn server_attached(&mut self) {
        self.server_scan = Scanner::default();
    }

    /// The server was given back or closed: what was in flight on it is gone.
    pub fn server_gone(&mut self) {
        self.pending = 0;
        self.unsynced = false;
        self.dirty = false;
        self.pinned = false;
        self.plan_broken = false;
        self.sql_prepares = 0;
        self.sets = SetTracker::default();
        self.server_scan = Scanner::default();
        if let Some(statements) = self.statements.as_mut() {
            statements.forget_owed();
        }
    }
}
