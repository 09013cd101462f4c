//! A rule's pool settings: mode, size, timeouts, and what is done to a server on its way back.

use std::time::Duration;

use super::convert::{Reader, put, put_some};
use super::model::Item;

/// When a server is given back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolMode {
    /// When the client leaves.
    Session,
    /// At the end of each transaction.
    Transaction,
    /// After each statement.
    Statement,
}

/// Which clients may be routed to a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PoolRouting {
    /// Ordinary clients.
    ClientVisible,
    /// Odyssey's own internal clients (auth_query, group checker, watchdog).
    Internal,
}

/// Pool settings of a rule. Defaults are upstream HEAD's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolSettings {
    /// The mode; `None` only while the config has an error for it.
    pub mode: Option<PoolMode>,
    /// Who may use the rule.
    pub routing: PoolRouting,
    /// Servers per endpoint; 0 is unlimited.
    pub size: u32,
    /// Idle servers kept connected.
    pub min_size: u32,
    /// Wait for a server; `None` waits forever.
    pub timeout: Option<Duration>,
    /// Close servers idle this long; `None` never.
    pub ttl: Option<Duration>,
    /// Close idle servers older than this; `None` never.
    pub server_lifetime: Option<Duration>,
    /// DISCARD ALL on return.
    pub discard: bool,
    /// Smart reset instead of DISCARD ALL (needs reserved prepared statements).
    pub smart_discard: bool,
    /// Custom reset query.
    pub discard_query: Option<String>,
    /// Cancel a busy server on return (else close it).
    pub cancel: bool,
    /// Roll back an open transaction on return (else close it).
    pub rollback: bool,
    /// Timeout of each reset step; `None` is infinite.
    pub reset_timeout: Option<Duration>,
    /// Prepared-statement virtualisation.
    pub reserve_prepared_statement: bool,
    /// Prepared statements kept on one server before the least recently used is deallocated
    /// (`pool_prepared_statements_max`, this pooler's own; 0 = no limit).
    pub prepared_statements_max: u32,
    /// Pin the server after LISTEN.
    pub pin_on_listen: bool,
    /// Check the server socket before attaching.
    pub attach_check: bool,
    /// Try every endpoint without waiting first.
    pub acquire_fail_fast: bool,
    /// NOTICE to waiting clients after this long; `None` never.
    pub notice_after_waiting: Option<Duration>,
    /// Drop idle session clients after this long; `None` never.
    pub client_idle_timeout: Option<Duration>,
    /// Drop clients idle in a transaction after this long; `None` never.
    pub idle_in_transaction_timeout: Option<Duration>,
    /// Named shared pool.
    pub shared_pool: Option<String>,
    /// Whether `pool_reserve_prepared_statement` was written (for compatibility fixes).
    pub reserve_prepared_statement_set: bool,
    /// Whether `pool_discard` was written.
    pub discard_set: bool,
    /// Whether `pool_size` was written (it cannot go with `shared_pool`).
    pub size_set: bool,
}

impl Default for PoolSettings {
    fn default() -> Self {
        PoolSettings {
            mode: None,
            routing: PoolRouting::ClientVisible,
            size: 0,
            min_size: 0,
            timeout: None,
            ttl: None,
            server_lifetime: Some(Duration::from_secs(3600)),
            discard: true,
            smart_discard: false,
            discard_query: None,
            cancel: true,
            rollback: true,
            reset_timeout: Some(Duration::from_millis(1000)),
            reserve_prepared_statement: true,
            prepared_statements_max: 1024,
            pin_on_listen: false,
            attach_check: true,
            acquire_fail_fast: false,
            notice_after_waiting: None,
            client_idle_timeout: None,
            idle_in_transaction_timeout: None,
            shared_pool: None,
            reserve_prepared_statement_set: false,
            discard_set: false,
            size_set: false,
        }
    }
}

/// Applies one pool directive; false when `item` is none of them.
pub fn read(r: &mut Reader, p: &mut PoolSettings, item: &Item, rule: &str) -> bool {
    match item.name() {
        "pool" => put_some(&mut p.mode, mode(r, item, rule)),
        "pool_routing" => put(&mut p.routing, routing(r, item, rule)),
        "pool_size" => {
            p.size_set = true;
            put(&mut p.size, r.count(item))
        }
        "min_pool_size" => put(&mut p.min_size, r.count(item)),
        "pool_timeout" => put(&mut p.timeout, nonzero(r.millis(item))),
        "pool_ttl" => put(&mut p.ttl, nonzero(r.secs(item))),
        "server_lifetime" => put(&mut p.server_lifetime, nonzero(r.secs(item))),
        "pool_discard" => {
            p.discard_set = true;
            put(&mut p.discard, r.bool(item))
        }
        "pool_smart_discard" => put(&mut p.smart_discard, r.bool(item)),
        "pool_discard_query" => put_some(&mut p.discard_query, r.string(item)),
        "pool_cancel" => put(&mut p.cancel, r.bool(item)),
        "pool_rollback" => put(&mut p.rollback, r.bool(item)),
        "pool_reset_timeout_ms" => put(&mut p.reset_timeout, nonzero(r.millis(item))),
        "pool_reserve_prepared_statement" => {
            p.reserve_prepared_statement_set = true;
            put(&mut p.reserve_prepared_statement, r.bool(item))
        }
        "pool_prepared_statements_max" => put(&mut p.prepared_statements_max, r.count(item)),
        "pool_pin_on_listen" => put(&mut p.pin_on_listen, r.bool(item)),
        "pool_attach_check" => put(&mut p.attach_check, r.bool(item)),
        "pool_acquire_fail_fast" => put(&mut p.acquire_fail_fast, r.bool(item)),
        "pool_notice_after_waiting_ms" => {
            let n = r.int(item);
            put(
                &mut p.notice_after_waiting,
                n.map(|n| u64::try_from(n).ok().map(Duration::from_millis)),
            )
        }
        "pool_client_idle_timeout" => put(&mut p.client_idle_timeout, nonzero(r.secs(item))),
        "pool_idle_in_transaction_timeout" => {
            put(&mut p.idle_in_transaction_timeout, nonzero(r.secs(item)))
        }
        "shared_pool" => put_some(&mut p.shared_pool, r.string(item)),
        _ => return false,
    }
    true
}

/// Zero means "off" for these durations.
fn nonzero(d: Option<Duration>) -> Option<Option<Duration>> {
    d.map(|d| (!d.is_zero()).then_some(d))
}

fn mode(r: &mut Reader, item: &Item, rule: &str) -> Option<PoolMode> {
    let s = r.string(item)?;
    Some(match s.as_str() {
        "session" => PoolMode::Session,
        "transaction" => PoolMode::Transaction,
        "statement" => PoolMode::Statement,
        _ => {
            let what = format!("{rule}: a pooling mode (session, transaction or statement)");
            r.expected(
                &item.args[0].pos,
                what,
                format!("unknown pooling mode \"{s}\""),
            );
            return None;
        }
    })
}

fn routing(r: &mut Reader, item: &Item, rule: &str) -> Option<PoolRouting> {
    let s = r.string(item)?;
    Some(match s.as_str() {
        "client_visible" => PoolRouting::ClientVisible,
        "internal" => PoolRouting::Internal,
        _ => {
            let what = format!("{rule}: a pool routing mode (client_visible or internal)");
            r.expected(
                &item.args[0].pos,
                what,
                format!("unknown pool routing mode \"{s}\""),
            );
            return None;
        }
    })
}
