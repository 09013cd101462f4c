//! May a server go back to the pool? A flat list of checks, each one saying why not; and the
//! steps that make it fit: cancel a query still running, roll back, discard session state.

use std::time::Duration;

use kiwi::backend::TransactionStatus;
use machinarium::Deadline;

use crate::backend;
use crate::cancel;
use crate::config::pool::PoolSettings;
use crate::conn::DEFAULT_MAX_MESSAGE;
use crate::relay::{self, Scanner, ServerEvent};
use crate::server::Server;

/// Statements of the smart reset (`pool_smart_discard`): DISCARD ALL without dropping
/// prepared statements.
const SMART_DISCARD: &[u8] = b"SET SESSION AUTHORIZATION DEFAULT;RESET ALL;CLOSE ALL;UNLISTEN *;\
SELECT pg_advisory_unlock_all();DISCARD PLANS;DISCARD SEQUENCES;DISCARD TEMP;";

/// What the relay knows about the server's protocol state when the client lets it go.
pub struct Protocol {
    /// Requests (Query, Sync, FunctionCall) not answered yet.
    pub pending: u32,
    /// Where the server's byte stream stands.
    pub server_scan: Scanner,
    /// The client stopped inside a message or an extended-protocol sequence.
    pub client_unfinished: bool,
    /// The session ran something that leaves state behind (SET, PREPARE, LISTEN, temp tables).
    pub dirty: bool,
    /// The client's session ends (a full discard is due), rather than one transaction.
    pub session_end: bool,
}

/// Why a server is closed instead of reused.
pub type Refusal = &'static str;

/// Makes the server fit for another client, or says why it cannot be (then it is closed).
pub fn reset(
    server: &mut Server,
    p: &mut Protocol,
    pool: &PoolSettings,
    cancel_timeout: Duration,
) -> Result<(), Refusal> {
    let deadline = Deadline::after(
        pool.reset_timeout
            .filter(|t| !t.is_zero())
            .unwrap_or(Duration::from_secs(5)),
    );
    if p.client_unfinished {
        return Err("the client left in the middle of a message or sequence");
    }
    if p.pending > 0 || !p.server_scan.at_boundary() {
        if !pool.cancel {
            return Err("a query is still running and pool_cancel is off");
        }
        cancel_and_drain(server, p, cancel_timeout, deadline)?;
    }
    if server.tx != TransactionStatus::Idle {
        if !pool.rollback {
            return Err("left in a transaction and pool_rollback is off");
        }
        backend::query(server, b"ROLLBACK", deadline).map_err(|_| "ROLLBACK failed")?;
    }
    let mut sql = discard_sql(p, pool);
    let evicted = server
        .info
        .prepared
        .take_evicted()
        .into_iter()
        .map(crate::frontend::pstmt::server_name);
    for name in std::mem::take(&mut server.info.stale)
        .into_iter()
        .chain(evicted)
    {
        sql.extend_from_slice(format!("DEALLOCATE {name};").as_bytes());
    }
    if !sql.is_empty() {
        backend::query(server, &sql, deadline).map_err(|_| "discard failed")?;
        if sql.starts_with(b"DISCARD ALL") || sql.windows(9).any(|w| w == b"RESET ALL") {
            // Every parameter is back to its startup value.
            server.info.vars = server.info.defaults.clone();
        }
        if sql.starts_with(b"DISCARD ALL") {
            server.info.prepared.clear();
        }
    }
    if server.tx != TransactionStatus::Idle {
        return Err("still in a transaction after reset");
    }
    Ok(())
}

/// The reset statements due: at a session's end what the rule asks; at a transaction's end
/// only when the session left state behind (always something, so no state leaks).
fn discard_sql(p: &Protocol, pool: &PoolSettings) -> Vec<u8> {
    let mut sql = Vec::new();
    if !(p.session_end || p.dirty) {
        return sql;
    }
    if pool.discard {
        sql.extend_from_slice(b"DISCARD ALL;");
    } else if pool.smart_discard {
        sql.extend_from_slice(SMART_DISCARD);
    } else if p.dirty {
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
    p: &mut Protocol,
    timeout: Duration,
    deadline: Deadline,
) -> Result<(), Refusal> {
    cancel::forward(&server.info.address, &server.info.key, timeout)
        .map_err(|_| "cancel request failed")?;
    while p.pending > 0 || !p.server_scan.at_boundary() {
        if server.conn.buffered().is_empty() {
            server
                .conn
                .fill(deadline)
                .map_err(|_| "no answer after cancel")?;
        }
        let (pending, tx) = (&mut p.pending, &mut server.tx);
        let n = relay::scan_server(&mut p.server_scan, server.conn.buffered(), |ev| {
            if let ServerEvent::Ready(status) = ev {
                *pending = pending.saturating_sub(1);
                *tx = status;
            }
        });
        if n == 0 && server.conn.buffered().len() >= DEFAULT_MAX_MESSAGE as usize {
            return Err("server message too large");
        }
        if n == 0 {
            server
                .conn
                .fill(deadline)
                .map_err(|_| "no answer after cancel")?;
            continue;
        }
        server.conn.consume(n);
    }
    Ok(())
}

/// Whether a command tag means the session now holds state another client must not see.
pub fn leaves_state(tag: &[u8]) -> bool {
    const TAGS: &[&[u8]] = &[
        b"SET",
        b"RESET",
        b"PREPARE",
        b"LISTEN",
        b"DECLARE CURSOR",
        b"CREATE TABLE",
        b"SELECT INTO",
        b"LOAD",
        b"CREATE SEQUENCE",
        b"CREATE VIEW",
    ];
    let tag = tag.strip_suffix(b"\0").unwrap_or(tag);
    TAGS.iter()
        .any(|t| tag == *t || (tag.starts_with(t) && tag.get(t.len()) == Some(&b' ')))
}

#[cfg(test)]
mod tests {
    use super::leaves_state;

    #[test]
    fn tags_that_leave_state() {
        assert!(leaves_state(b"SET\0"));
        assert!(leaves_state(b"CREATE TABLE\0"));
        assert!(leaves_state(b"LISTEN\0"));
        assert!(!leaves_state(b"SELECT 1\0"));
        assert!(!leaves_state(b"SETTINGS\0"));
        assert!(!leaves_state(b"INSERT 0 1\0"));
    }
}
