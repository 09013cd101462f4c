//! 200 concurrent clients over 5 servers in transaction pooling: every transaction commits
//! whole or not at all, none fails, and the totals add up exactly.
//!
//! Config: `pool "transaction"`, `pool_size 5`, `pool_timeout 10000`, two workers; the cluster
//! has max_connections 50 and the pooler may use only 5 of them.

use std::sync::Arc;
use std::thread;
use std::time::Duration;

use odyssey_test::tx::{TxPoolConfig, TxSetup, join_errors};
use odyssey_test::{PgbenchSummary, pgbench};

const CLIENTS: usize = 200;
const POOL_SIZE: u32 = 5;
const ACCOUNTS: i64 = 100;
const START_BALANCE: i64 = 1000;

/// Moves money from a low id to a high id: locks are always taken in id order, so no deadlock.
const TRANSFER: &str = "\\set id random(1, 50)\n\
                        \\set id2 random(51, 100)\n\
                        \\set delta random(1, 10)\n\
                        BEGIN;\n\
                        UPDATE acct SET bal = bal + :delta WHERE id = :id;\n\
                        UPDATE acct SET bal = bal - :delta WHERE id = :id2;\n\
                        COMMIT;\n";

fn setup() -> TxSetup {
    let schema = format!(
        "CREATE TABLE acct (id int PRIMARY KEY, bal bigint NOT NULL); \
         INSERT INTO acct SELECT g, {START_BALANCE} FROM generate_series(1, {ACCOUNTS}) g; \
         CREATE TABLE ledger (client int NOT NULL, n int NOT NULL, v bigint NOT NULL)"
    );
    TxSetup::start(&TxPoolConfig::new("transaction", POOL_SIZE), &schema).expect("setup")
}

/// The pooler never opened more than `pool_size` servers.
fn assert_pool_bounded(setup: &TxSetup) {
    let servers = setup
        .backend(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()",
        )
        .unwrap();
    let servers: u32 = servers.parse().unwrap();
    assert!(
        servers <= POOL_SIZE,
        "{servers} servers for pool_size {POOL_SIZE}"
    );
}

#[test]
fn pgbench_transfers_keep_the_total_in_simple_and_extended_protocol() {
    let setup = setup();
    let script = setup.pooler.dir().join("transfer.sql");
    std::fs::write(&script, TRANSFER).unwrap();
    let script = script.display().to_string();
    let total = "SELECT sum(bal) FROM acct";
    let before = setup.backend(total).unwrap();
    assert_eq!(before, (ACCOUNTS * START_BALANCE).to_string());
    let clients = CLIENTS.to_string();

    for mode in ["simple", "extended"] {
        let args = [
            "-n", "-f", &script, "-M", mode, "-c", &clients, "-j", "2", "-T", "5",
        ];
        let run = pgbench(&setup.params(), &args, Duration::from_secs(60)).unwrap();
        assert!(
            run.success(),
            "-M {mode}: {}\n{}",
            run.combined(),
            setup.pooler.log()
        );
        let summary = PgbenchSummary::parse(&run.stdout).expect(&run.stdout);
        assert_eq!(summary.failed, 0, "-M {mode}: {}", run.stdout);
        assert!(summary.processed > 0, "-M {mode}: {}", run.stdout);
        assert_eq!(
            setup.backend(total).unwrap(),
            before,
            "-M {mode}: money appeared or vanished"
        );
        let moved = setup
            .backend(&format!(
                "SELECT count(*) FROM acct WHERE bal <> {START_BALANCE}"
            ))
            .unwrap();
        assert_ne!(moved, "0", "-M {mode}: no transfer landed");
        assert_pool_bounded(&setup);
    }
}

const THREADS: usize = 50;
const CONNS_PER_THREAD: usize = CLIENTS / THREADS;
const TXS_PER_THREAD: usize = 12;

/// The value client `client` writes in its transaction `n`, row `k`.
fn value(client: usize, n: usize, k: usize) -> i64 {
    (client * 1_000 + n * 10 + k) as i64
}

#[test]
fn rust_clients_insert_exactly_what_they_commit() {
    let setup = Arc::new(setup());
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let setup = setup.clone();
            thread::spawn(move || -> Result<(), String> {
                let mut conns = (0..CONNS_PER_THREAD)
                    .map(|_| setup.connect().map_err(|e| e.to_string()))
                    .collect::<Result<Vec<_>, _>>()?;
                // One transaction at a time per thread, round robin over its connections.
                for n in 0..TXS_PER_THREAD {
                    let slot = n % CONNS_PER_THREAD;
                    let client = t * CONNS_PER_THREAD + slot;
                    let mut tx = conns[slot].transaction().map_err(|e| e.to_string())?;
                    for k in 0..2 {
                        tx.execute(
                            "INSERT INTO ledger (client, n, v) VALUES ($1, $2, $3)",
                            &[&(client as i32), &(n as i32), &value(client, n, k)],
                        )
                        .map_err(|e| format!("client {client} tx {n}: {e}"))?;
                    }
                    // Every third transaction is rolled back: it must leave nothing.
                    if n % 3 == 2 {
                        tx.rollback()
                    } else {
                        tx.commit()
                    }
                    .map_err(|e| format!("client {client} tx {n} end: {e}"))?;
                }
                Ok(())
            })
        })
        .collect();
    let errors = join_errors(threads);
    assert!(errors.is_empty(), "{errors:#?}\n{}", setup.pooler.log());

    let (mut rows, mut sum) = (0i64, 0i64);
    for t in 0..THREADS {
        for n in (0..TXS_PER_THREAD).filter(|n| n % 3 != 2) {
            let client = t * CONNS_PER_THREAD + n % CONNS_PER_THREAD;
            rows += 2;
            sum += value(client, n, 0) + value(client, n, 1);
        }
    }
    let got = setup
        .backend("SELECT count(*) || ' ' || sum(v) FROM ledger")
        .unwrap();
    assert_eq!(got, format!("{rows} {sum}"));
    let dup = setup
        .backend("SELECT count(*) FROM (SELECT 1 FROM ledger GROUP BY v HAVING count(*) > 1) d")
        .unwrap();
    assert_eq!(dup, "0", "a row was inserted twice");
    assert_pool_bounded(&setup);
}
