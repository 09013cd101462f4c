//! May a server go back to the pool? A flat list of checks, each one saying why not; and the
//! steps that make it fit: cancel a query still running, roll back, discard session state.

use std::time::Duration;

use kiwi::backend::TransactionStatus;
use machinarium::Deadline;

use crate::backend;
use crate::cancel;
use crate::config::pool::PoolSettings;
use crate::relay::Relay;
use crate::server::Server;
use crate::server::statements::server_name;

/// Statements of the smart reset (`pool_smart_discard`): DISCARD ALL without dropping
/// prepared statements.
const SMART_DISCARD: &[u8] = b"SET SESSION AUTHORIZATION DEFAULT;RESET ALL;CLOSE ALL;UNLISTEN *;\
SELECT pg_advisory_unlock_all();DISCARD PLANS;DISCARD SEQUENCES;DISCARD TEMP;";

/// Why a server is closed instead of reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The client left in the middle of a message or an extended-protocol sequence.
    ClientUnfinished,
    /// A query is still running and `pool_cancel` is off.
    QueryRunning,
    /// The server is in a transaction and `pool_rollback` is off.
    InTransaction,
    /// The CancelRequest could not be delivered.
    CancelFailed,
    /// The CopyFail that ends a dead client's COPY could not be sent.
    CopyFailFailed,
    /// The server did not finish its answers after the cancel.
    NoAnswerAfterCancel,
    /// The server broke the protocol while being drained.
    ServerProtocol,
    /// ROLLBACK failed.
    RollbackFailed,
    /// DISCARD (or the rule's reset query) failed.
    DiscardFailed,
    /// The server is still in a transaction after the reset.
    StillInTransaction,
    /// The session's end reason leaves the server's state unknown.
    StateUnknown,
    /// The server answered "cached plan must not change result type" and the rule says
    /// `server_drop_on_cached_plan_error`.
    CachedPlanBroken,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Refusal::ClientUnfinished => "the client left in the middle of a message or sequence",
            Refusal::QueryRunning => "a query is still running and pool_cancel is off",
            Refusal::InTransaction => "left in a transaction and pool_rollback is off",
            Refusal::CancelFailed => "cancel request failed",
            Refusal::CopyFailFailed => "CopyFail for the client's COPY could not be sent",
            Refusal::NoAnswerAfterCancel => "no answer after cancel",
            Refusal::ServerProtocol => "protocol violation while draining",
            Refusal::RollbackFailed => "ROLLBACK failed",
            Refusal::DiscardFailed => "discard failed",
            Refusal::StillInTransaction => "still in a transaction after reset",
            Refusal::StateUnknown => "its state is unknown",
            Refusal::CachedPlanBroken => "it has a broken cached plan",
        })
    }
}

/// Makes the server fit for another client, or says why it cannot be (then it is closed).
/// `relay` is the state the client leaves; `session_end` says whether the client is leaving
/// (a full discard is due) or only its transaction ended.
pub fn reset(
    server: &mut Server,
    relay: &mut Relay,
    session_end: bool,
    pool: &PoolSettings,
    cancel_timeout: Duration,
) -> Result<(), Refusal> {
    let deadline = Deadline::after(
        pool.reset_timeout
            .filter(|t| !t.is_zero())
            .unwrap_or(Duration::from_secs(5)),
    );
    if relay.plan_broken() {
        return Err(Refusal::CachedPlanBroken);
    }
    if relay.client_unfinished(session_end) {
        return Err(Refusal::ClientUnfinished);
    }
    if relay.server_awaits_copy_data() {
        end_copy_and_drain(server, relay, deadline)?;
    } else if relay.pending() > 0 || !relay.server_at_boundary() {
        if !pool.cancel {
            return Err(Refusal::QueryRunning);
        }
        cancel_and_drain(server, relay, cancel_timeout, deadline)?;
    }
    if server.tx != TransactionStatus::Idle {
        if !pool.rollback {
            return Err(Refusal::InTransaction);
        }
        backend::query(server, b"ROLLBACK", deadline).map_err(|_| Refusal::RollbackFailed)?;
    }
    let mut sql = discard_sql(session_end, relay.dirty(), pool);
    let deallocate = server.info.prepared.take_evicted();
    // DISCARD ALL drops them all (and may not share a query string with anything else).
    if !sql.starts_with(b"DISCARD ALL") {
        for key in deallocate {
            sql.extend_from_slice(format!("DEALLOCATE {};", server_name(key)).as_bytes());
        }
    }
    if !sql.is_empty() {
        backend::query(server, &sql, deadline).map_err(|_| Refusal::DiscardFailed)?;
        if sql.starts_with(b"DISCARD ALL") || sql.windows(9).any(|w| w == b"RESET ALL") {
            // Every parameter is back to its startup value.
            server.info.vars = server.info.defaults.clone();
        }
        if sql.starts_with(b"DISCARD ALL") {
            server.info.prepared.clear();
        }
    }
    if server.tx != TransactionStatus::Idle {
        return Err(Refusal::StillInTransaction);
    }
    Ok(())
}

/// The reset statements due: at a session's end what the rule asks; at a transaction's end
/// only when the session left state behind (always something, so no state leaks).
fn discard_sql(session_end: bool, dirty: bool, pool: &PoolSettings) -> Vec<u8> {
    let mut sql = Vec::new();
    if !(session_end || dirty) {
        return sql;
    }
    if pool.discard {
        sql.extend_from_slice(b"DISCARD ALL;");
    } else if pool.smart_discard {
        sql.extend_from_slice(SMART_DISCARD);
    } else if dirty {
        // State the pooler does not track was left behind: discard it whatever the rule says.
        sql.extend_from_slice(b"DISCARD ALL;");
    }
    if let Some(q) = &pool.discard_query {
        sql.extend_from_slice(q.as_bytes());
    }
    sql
}

/// Cancels the query in flight and reads (and drops) everything up to the last
/// ReadyForQuery owed.
fn cancel_and_drain(
    server: &mut Server,
    relay: &mut Relay,
    timeout: Duration,
    deadline: Deadline,
) -> Result<(), Refusal> {
    cancel::forward(&server.info.cancel_target(), Some(timeout))
        .map_err(|_| Refusal::CancelFailed)?;
    drain(server, relay, deadline)
}

/// Ends a COPY FROM STDIN the client left in the middle with CopyFail, which PostgreSQL
/// answers at once with an error (a cancel would wait for data that never comes), and drains
/// the answers. In an extended-protocol sequence without its Sync the server would then wait
/// for one: the server is closed instead.
fn end_copy_and_drain(
    server: &mut Server,
    relay: &mut Relay,
    deadline: Deadline,
) -> Result<(), Refusal> {
    if relay.client_unfinished(false) {
        return Err(Refusal::ClientUnfinished);
    }
    let mut fail = Vec::new();
    kiwi::frontend::CopyFail {
        message: b"client disconnected",
    }
    .encode(&mut fail);
    server
        .conn
        .write_all(&fail, deadline)
        .map_err(|_| Refusal::CopyFailFailed)?;
    drain(server, relay, deadline)
}

/// Reads (and drops) everything up to the last ReadyForQuery owed.
fn drain(server: &mut Server, relay: &mut Relay, deadline: Deadline) -> Result<(), Refusal> {
    while relay.pending() > 0 || !relay.server_at_boundary() {
        let n = relay
            .drain(server.conn.buffered(), &mut server.tx)
            .map_err(|_| Refusal::ServerProtocol)?;
        if n == 0 {
            server
                .conn
                .fill(deadline)
                .map_err(|_| Refusal::NoAnswerAfterCancel)?;
            continue;
        }
        server.conn.consume(n);
    }
    Ok(())
}
