//! Fixtures for the prepared-statement tests (`tests/pstmt*.rs`): a cluster behind an odyssey
//! in session pooling (a server per client: proves a workload right) or transaction pooling
//! (`pool_size` [`POOL_SIZE`], `pool_reserve_prepared_statement yes`: clients share servers,
//! so a statement prepared on one is used on others).

use crate::pooler::{Pooler, config};
use crate::postgres::{Cluster, ClusterOptions, SUPERUSER};

/// Servers in the transaction pool.
pub const POOL_SIZE: u32 = 4;

/// Which pooling the pooler does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A server for each client for its whole session.
    Session,
    /// [`POOL_SIZE`] servers shared transaction by transaction.
    Transaction,
}

/// The rules for `mode`; in session mode a server for each of `clients` and a few spare (a
/// setup connection that is not back yet).
pub fn rules(mode: Mode, clients: u32) -> String {
    let pool = match mode {
        Mode::Transaction => format!(
            "pool \"transaction\"\n\t\tpool_size {POOL_SIZE}\n\
             \t\tpool_reserve_prepared_statement yes"
        ),
        Mode::Session => format!("pool \"session\"\n\t\tpool_size {}", clients + 4),
    };
    format!(
        "database default {{\n\tuser default {{\n\
         \t\tauthentication \"none\"\n\
         \t\tstorage \"postgres_server\"\n\
         \t\t{pool}\n\
         \t\tpool_timeout 10000\n\
         \t}}\n}}\n"
    )
}

/// A pooler in `mode` for `clients` in front of `cluster`.
pub fn start_pooler(mode: Mode, clients: u32, cluster: &Cluster) -> Pooler {
    Pooler::start(&config(cluster.port(), &rules(mode, clients))).expect("start odyssey")
}

/// A fresh cluster, `schema` run on it as superuser (when not empty), and a pooler in `mode`.
pub fn start(mode: Mode, clients: u32, schema: &str) -> (Cluster, Pooler) {
    let cluster = Cluster::start(ClusterOptions::default()).expect("start cluster");
    if !schema.is_empty() {
        cluster.psql("postgres", SUPERUSER, schema).expect("schema");
    }
    let pooler = start_pooler(mode, clients, &cluster);
    (cluster, pooler)
}

/// In transaction mode: the pooler holds at most [`POOL_SIZE`] servers.
pub fn assert_pool_bounded(mode: Mode, cluster: &Cluster) {
    if mode != Mode::Transaction {
        return;
    }
    let servers: u32 = cluster
        .psql(
            "postgres",
            SUPERUSER,
            "SELECT count(*) FROM pg_stat_activity \
             WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()",
        )
        .expect("count servers")
        .parse()
        .expect("a count");
    assert!(
        servers <= POOL_SIZE,
        "{servers} servers for pool_size {POOL_SIZE}"
    );
}

/// The end of the pooler's log, for failure messages.
pub fn log_tail(pooler: &Pooler) -> String {
    let log = pooler.log();
    let mut start = log.len().saturating_sub(4000);
    while !log.is_char_boundary(start) {
        start += 1;
    }
    format!("--- odyssey log (last 4000 bytes) ---\n{}", &log[start..])
}
