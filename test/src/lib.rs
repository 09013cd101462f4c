//! Integration-test harness: real PostgreSQL clusters, the `odyssey` binary and real clients,
//! each a fixture that stops every process it started when dropped (also on panic), with every
//! wait bounded in time and every socket on loopback.
//!
//! # Layout
//! - [`postgres`]: [`Cluster`], a throw-away PostgreSQL (initdb, pg_ctl, free port, pg_hba
//!   with trust/md5/scram users). As root, the server programs run as the `postgres` user.
//! - [`pooler`]: [`Pooler`], the `odyssey` binary on a config template with placeholders;
//!   [`pooler::run_odyssey`] for one-shot runs.
//! - [`clients`]: [`ConnParams`] and, against it, `psql`, `pgbench` (with
//!   [`PgbenchSummary`]) and the Rust [`postgres`](::postgres) client; [`free_port`].
//! - [`ldap`]: [`ldap::Slapd`], a throw-away OpenLDAP server loaded with `ldapadd`.
//! - [`looping`]: clients looping on transactions through a fault, each run timed.
//! - [`certs`]: a test CA and the certificates it signs, made with the `openssl` command.
//! - [`drivers`]: where the driver tests find `test/drivers/` and `make drivers`' installs.
//! - [`command`]: run a program to completion under a deadline ([`Output`]).
//! - [`process`]: processes found in `/proc`, signalled with `kill(1)` ([`Signal`]).
//! - [`tap`]: a TCP relay that records how each connection to a server opens.
//! - [`tls`]: the shared setups of the TLS tests (pooler with `tls` lines, certificates, a
//!   PostgreSQL with `ssl = on`).
//! - [`tx`]: [`tx::TxSetup`], a cluster behind an odyssey in a chosen pool mode, and raw
//!   protocol shortcuts for the pooling-mode tests.
//! - [`pstmt`]: a cluster behind an odyssey in session or transaction pooling for the
//!   prepared-statement tests.
//! - [`run_as`], [`temp_dir`], [`error`]: who runs PostgreSQL, scratch dirs, [`Error`].
//!
//! Tests live in `tests/<behavior>.rs`, one file per behavior, each with its config inline.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod certs;
pub mod clients;
pub mod command;
pub mod drivers;
pub mod error;
pub mod ldap;
pub mod looping;
pub mod pooler;
pub mod postgres;
pub mod process;
pub mod pstmt;
pub mod raw;
pub mod run_as;
pub mod tap;
pub mod temp_dir;
pub mod tls;
pub mod tx;

/// The Rust client crate, re-exported so tests use the version the harness connects with.
pub use ::postgres as pg;

pub use clients::{ConnParams, PgbenchSummary, cancel_a_sleep, connect, free_port, pgbench, psql};
pub use command::Output;
pub use error::{Error, Result};
pub use pooler::{Pooler, PoolerOptions};
pub use postgres::{AuthMethod, Cluster, ClusterOptions};
pub use process::Signal;

/// A fresh cluster with default options and a pooler in front of it on
/// [`pooler::config`]`(cluster port, rules)`: the setup most pooler tests share.
pub fn cluster_and_pooler(rules: &str) -> (Cluster, Pooler) {
    let cluster = Cluster::start(ClusterOptions::default()).expect("start cluster");
    let pooler = Pooler::start(&pooler::config(cluster.port(), rules)).expect("start odyssey");
    (cluster, pooler)
}

/// Polls `check` every 20 ms until it is true or `timeout` has passed; its last answer.
pub fn wait_for(timeout: std::time::Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if check() {
            return true;
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
