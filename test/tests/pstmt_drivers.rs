//! Real drivers' prepared statements through the pooler: asyncpg (its default statement
//! cache and `conn.prepare`), psycopg 3 (`prepare_threshold=0`), pgjdbc (`prepareThreshold=1`,
//! PreparedStatements reused, explicit and autocommit transactions) and node-postgres (named
//! queries). Each program (`test/drivers/`) runs 20 clients x 200 transactions, checks every
//! value that comes back and the totals, and exits non-zero on any mismatch or error.
//!
//! Config (`odyssey_test::pstmt`): `pool "transaction"`, `pool_size 4`,
//! `pool_reserve_prepared_statement yes`, so 20 clients share 4 servers and a statement
//! prepared in one transaction is used in a later one that may land on another server. The session-mode variants (`pool_size` 24: a server
//! per client) prove the programs themselves right, and there each client also checks that
//! its server holds its prepared statements (`CHECK_SERVER_PREPARED=1`), so a driver that
//! prepared nothing cannot pass.
//!
//! The drivers come from `make drivers` (scripts/drivers.sh: `build/venv`, `build/node`) and
//! Debian (`libpostgresql-jdbc-java`, a JDK: scripts/deps.sh). A missing one fails the test
//! with that hint; nothing is skipped.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use odyssey_test::command;
use odyssey_test::drivers::{node_modules, program, python, require};
use odyssey_test::pstmt::{self, Mode};
use odyssey_test::temp_dir::TempDir;

const CLIENTS: u32 = 20;
const TXS: u32 = 200;
/// The programs' own bound on their run (DRIVER_TIMEOUT).
const DRIVER_TIMEOUT: Duration = Duration::from_secs(60);
/// The harness's bound: the program is killed after this.
const RUN_TIMEOUT: Duration = Duration::from_secs(90);

#[derive(Debug, Clone, Copy)]
enum Driver {
    Asyncpg,
    Psycopg,
    Pgjdbc,
    NodePg,
}

/// pgjdbc: `$PGJDBC_JAR`, else Debian's.
fn pgjdbc_jar() -> PathBuf {
    let jar = std::env::var_os("PGJDBC_JAR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/share/java/postgresql.jar"));
    require(jar, "pgjdbc (libpostgresql-jdbc-java)")
}

/// The command that runs `driver`; `scratch` holds compiled classes.
fn driver_command(driver: Driver, scratch: &Path) -> Command {
    match driver {
        Driver::Asyncpg | Driver::Psycopg => {
            let script = match driver {
                Driver::Asyncpg => "asyncpg_tx.py",
                _ => "psycopg_tx.py",
            };
            let mut cmd = Command::new(python());
            cmd.arg(program(script));
            cmd
        }
        Driver::NodePg => {
            let mut cmd = Command::new("node");
            cmd.env("NODE_PATH", node_modules())
                .arg(program("node_pg_tx.js"));
            cmd
        }
        Driver::Pgjdbc => {
            let jar = pgjdbc_jar();
            let mut javac = Command::new("javac");
            javac
                .arg("-d")
                .arg(scratch)
                .arg("-cp")
                .arg(&jar)
                .arg(program("PgjdbcTx.java"));
            let out = command::run(javac, "javac", Duration::from_secs(60))
                .expect("javac (a JDK: run `make drivers` as root)");
            assert!(out.success(), "javac PgjdbcTx.java: {}", out.combined());
            let mut cmd = Command::new("java");
            cmd.arg("-cp")
                .arg(format!("{}:{}", jar.display(), scratch.display()))
                .arg("PgjdbcTx");
            cmd
        }
    }
}

/// Runs `driver` through a pooler in `mode` and asserts it succeeded.
fn run(driver: Driver, mode: Mode) {
    let scratch = TempDir::new("pstmt-driver").expect("temp dir");
    let mut cmd = driver_command(driver, scratch.path());
    let (cluster, pooler) = pstmt::start(mode, CLIENTS, "");
    cmd.args([
        "127.0.0.1",
        &pooler.port().to_string(),
        "postgres",
        "postgres",
        &CLIENTS.to_string(),
        &TXS.to_string(),
    ])
    .env("DRIVER_TIMEOUT", DRIVER_TIMEOUT.as_secs().to_string())
    .env_remove("CHECK_SERVER_PREPARED");
    if mode == Mode::Session {
        cmd.env("CHECK_SERVER_PREPARED", "1");
    }
    let what = format!("{driver:?} in {mode:?} pooling");
    let out = command::run(cmd, &what, RUN_TIMEOUT).unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        out.combined(),
        pstmt::log_tail(&pooler)
    );
    assert!(out.stdout.contains(": ok: "), "{what}: {}", out.combined());
    println!("{what}: {}", out.stdout.trim());

    pstmt::assert_pool_bounded(mode, &cluster);
}

#[test]
fn asyncpg_statement_cache_session_pool() {
    run(Driver::Asyncpg, Mode::Session);
}

#[test]
fn asyncpg_statement_cache_transaction_pool() {
    run(Driver::Asyncpg, Mode::Transaction);
}

#[test]
fn psycopg_prepare_threshold_0_session_pool() {
    run(Driver::Psycopg, Mode::Session);
}

#[test]
fn psycopg_prepare_threshold_0_transaction_pool() {
    run(Driver::Psycopg, Mode::Transaction);
}

#[test]
fn pgjdbc_prepare_threshold_1_session_pool() {
    run(Driver::Pgjdbc, Mode::Session);
}

#[test]
fn pgjdbc_prepare_threshold_1_transaction_pool() {
    run(Driver::Pgjdbc, Mode::Transaction);
}

#[test]
fn node_pg_named_queries_session_pool() {
    run(Driver::NodePg, Mode::Session);
}

#[test]
fn node_pg_named_queries_transaction_pool() {
    run(Driver::NodePg, Mode::Transaction);
}
