//! A client that vanishes (socket dropped, no Terminate) in transaction pooling (§7.12,
//! `reset.rs`): inside a transaction its server is rolled back, so its row locks go at once;
//! during a query the query is cancelled (`pool_cancel yes`), drained, and the server goes
//! back to the pool (reset, not closed).
//!
//! Config: `pool "transaction"`, `pool_size 1`, `pool_rollback yes`, `pool_cancel yes`: the
//! next client gets the very server the dead one had.

use std::time::{Duration, Instant};

use odyssey_test::tx::{
    TxPoolConfig, TxSetup, first_values, ready_status, send_query, simple_query, tags,
};

/// How long the dead client's leftovers may linger.
const CLEAN_WITHIN: Duration = Duration::from_secs(2);

fn setup() -> TxSetup {
    TxSetup::start(
        &TxPoolConfig::new("transaction", 1),
        "CREATE TABLE acct (id int PRIMARY KEY, bal int); INSERT INTO acct VALUES (1, 100)",
    )
    .expect("setup")
}

#[test]
fn client_dropped_inside_transaction_releases_its_row_lock() {
    let setup = setup();
    let mut dying = setup.raw().unwrap();
    let locked = simple_query(
        &mut dying,
        "BEGIN; UPDATE acct SET bal = 0 WHERE id = 1; \
         SELECT bal || ' ' || pg_backend_pid() FROM acct WHERE id = 1 FOR UPDATE",
    )
    .unwrap();
    let pid = first_values(&locked)[0]
        .strip_prefix("0 ")
        .expect("the locked row, updated")
        .to_string();
    assert_eq!(ready_status(&locked), Some(b'T'));
    drop(dying);

    let started = Instant::now();
    let mut next = setup.raw().unwrap();
    let got = simple_query(
        &mut next,
        "SET lock_timeout = '2s'; SET statement_timeout = '2s'; \
         BEGIN; SELECT bal || ' ' || pg_backend_pid() FROM acct WHERE id = 1 FOR UPDATE",
    )
    .unwrap();
    assert!(started.elapsed() < CLEAN_WITHIN, "{:?}", started.elapsed());
    // Same backend: the pooler rolled it back and reused it rather than closing it.
    assert_eq!(
        first_values(&got),
        [format!("100 {pid}")],
        "lock taken and the dead client's update rolled back: {} {}",
        tags(&got),
        setup.pooler.log()
    );
    simple_query(&mut next, "COMMIT").unwrap();

    let stuck = "SELECT count(*) FROM pg_stat_activity WHERE state LIKE 'idle in transaction%'";
    assert_eq!(setup.backend_until(stuck, "0", CLEAN_WITHIN).unwrap(), "0");
    let log = setup.pooler.log();
    assert!(!log.contains("closing server"), "{log}");
}

#[test]
fn client_dropped_during_a_query_gets_it_cancelled_and_the_server_reused() {
    let setup = setup();
    let mut dying = setup.raw().unwrap();
    send_query(&mut dying, "SELECT pg_sleep(60)").unwrap();
    let running = "SELECT pid FROM pg_stat_activity \
                   WHERE state = 'active' AND query = 'SELECT pg_sleep(60)'";
    let deadline = Instant::now() + Duration::from_secs(5);
    let pid = loop {
        let pid = setup.backend(running).unwrap();
        if !pid.is_empty() || Instant::now() >= deadline {
            break pid;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(!pid.is_empty(), "pg_sleep never started");
    drop(dying);

    let sleeping = "SELECT count(*) FROM pg_stat_activity \
                    WHERE state = 'active' AND query = 'SELECT pg_sleep(60)'";
    assert_eq!(
        setup.backend_until(sleeping, "0", CLEAN_WITHIN).unwrap(),
        "0",
        "pg_sleep still running: {}",
        setup.pooler.log()
    );

    // reset.rs cancels and drains, then gives the server back: the next client gets the same
    // backend, idle and outside any transaction.
    let mut next = setup.raw().unwrap();
    let got = simple_query(&mut next, "SELECT pg_backend_pid()::text").unwrap();
    assert_eq!(first_values(&got), [pid], "{}", setup.pooler.log());
    assert_eq!(ready_status(&got), Some(b'I'));
    let log = setup.pooler.log();
    assert!(!log.contains("closing server"), "{log}");
}
