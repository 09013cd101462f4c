//! Idle timeouts (§7.13): a client idle inside a transaction past
//! `pool_idle_in_transaction_timeout`, or idle with its server in a session pool past
//! `pool_client_idle_timeout`, gets `FATAL 08006 Odyssey has dropped the connection` with the
//! DETAIL naming the timeout, is disconnected, and its server comes back clean.
//!
//! Both timeouts are in seconds (`config/pool.rs`: `r.secs`).

use std::time::{Duration, Instant};

use odyssey_test::tx::{
    ErrorText, TxPoolConfig, TxSetup, first_values, read_to_end, ready_status, simple_query, tags,
};

/// The timeout is 1 s; the drop must come well before this.
const DROP_WITHIN: Duration = Duration::from_secs(3);

const IN_TX_DETAIL: &str = "Connection was dropped by Odyssey due to idle in transaction timeout";
const IDLE_DETAIL: &str = "Connection was dropped by Odyssey due to idle timeout";

/// Waits for the pooler to drop `conn`: the one FATAL it sends, then end of stream.
fn expect_dropped(conn: &mut odyssey_test::raw::RawConn, detail: &str) -> Duration {
    let started = Instant::now();
    let (got, failed) = read_to_end(conn);
    let waited = started.elapsed();
    assert!(
        failed.is_none(),
        "no clean end after {waited:?}: {failed:?} {got:?}"
    );
    assert_eq!(got.len(), 1, "one FATAL then EOF, got {}", tags(&got));
    let err = ErrorText::of(&got[0]).expect("an ErrorResponse");
    assert_eq!(
        (
            err.severity.as_str(),
            err.code.as_str(),
            err.detail.as_str()
        ),
        ("FATAL", "08006", detail),
        "{err:?}"
    );
    assert!(
        err.message.ends_with("Odyssey has dropped the connection"),
        "{err:?}"
    );
    assert!(waited < DROP_WITHIN, "dropped only after {waited:?}");
    waited
}

#[test]
fn idle_in_transaction_client_is_dropped_and_its_server_rolled_back() {
    let config = TxPoolConfig::new("transaction", 1).rule("pool_idle_in_transaction_timeout 1");
    let setup = TxSetup::start(&config, "CREATE TABLE t (v int)").expect("setup");

    let mut client = setup.raw().unwrap();
    let open = simple_query(&mut client, "BEGIN; INSERT INTO t VALUES (1)").unwrap();
    assert_eq!(ready_status(&open), Some(b'T'), "{}", tags(&open));
    let waited = expect_dropped(&mut client, IN_TX_DETAIL);
    assert!(
        waited >= Duration::from_millis(800),
        "dropped after {waited:?}, before the 1 s timeout"
    );

    // The insert was rolled back and no backend is left inside a transaction.
    assert_eq!(setup.backend("SELECT count(*) FROM t").unwrap(), "0");
    let stuck = "SELECT count(*) FROM pg_stat_activity WHERE state LIKE 'idle in transaction%'";
    assert_eq!(setup.backend_until(stuck, "0", DROP_WITHIN).unwrap(), "0");
    // The only server went back to the pool, usable.
    let mut next = setup.raw().unwrap();
    let row = simple_query(
        &mut next,
        "INSERT INTO t VALUES (2); SELECT count(*) FROM t",
    )
    .unwrap();
    assert_eq!(first_values(&row), ["1"], "{}", setup.pooler.log());
}

#[test]
fn deferred_begin_counts_as_idle_in_transaction() {
    let config = TxPoolConfig::new("transaction", 1).rule("pool_idle_in_transaction_timeout 1");
    let setup = TxSetup::start(&config, "").expect("setup");

    let mut client = setup.raw().unwrap();
    let begin = simple_query(&mut client, "BEGIN").unwrap();
    assert_eq!(ready_status(&begin), Some(b'T'));
    expect_dropped(&mut client, IN_TX_DETAIL);

    // A client idle outside a transaction stays: the timeout is only for transactions.
    let mut idle = setup.raw().unwrap();
    simple_query(&mut idle, "SELECT 1").unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let still = simple_query(&mut idle, "SELECT 2").unwrap();
    assert_eq!(first_values(&still), ["2"], "{}", setup.pooler.log());
}

#[test]
fn idle_session_client_is_dropped_after_client_idle_timeout() {
    let config = TxPoolConfig::new("session", 1).rule("pool_client_idle_timeout 1");
    let setup = TxSetup::start(&config, "").expect("setup");

    let mut client = setup.raw().unwrap();
    let first = simple_query(&mut client, "SELECT 1").unwrap();
    assert_eq!(first_values(&first), ["1"]);
    let waited = expect_dropped(&mut client, IDLE_DETAIL);
    assert!(
        waited >= Duration::from_millis(800),
        "dropped after {waited:?}"
    );

    // Its server is free again for the next session (pool_size 1).
    let mut next = setup.raw().unwrap();
    let row = simple_query(&mut next, "SELECT 3").unwrap();
    assert_eq!(first_values(&row), ["3"], "{}", setup.pooler.log());
}
