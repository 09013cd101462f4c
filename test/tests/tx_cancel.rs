//! CancelRequest through the pooler (§7.9): the client's own key (from the pooler's
//! BackendKeyData) reaches the server running its query, which stops with 57014 within 2 s;
//! another client's query on the same pool runs to its end.
//!
//! Config: `pool_size 2`, once with `pool "session"` and once with `pool "transaction"`.

use std::thread;
use std::time::{Duration, Instant};

use odyssey_test::pg::error::SqlState;
use odyssey_test::tx::{TxPoolConfig, TxSetup};

const CANCELLED_WITHIN: Duration = Duration::from_secs(2);

fn cancel_stops_only_the_target(mode: &'static str) {
    let setup = TxSetup::start(&TxPoolConfig::new(mode, 2), "").expect("setup");
    let mut target = setup.connect().unwrap();
    let mut bystander = setup.connect().unwrap();
    let token = target.cancel_token();

    let sleeper = thread::spawn(move || {
        let started = Instant::now();
        let result = target.simple_query("SELECT pg_sleep(30)");
        (result.map(drop), started.elapsed(), target)
    });
    // Cancel only once the query really runs on a server.
    let running = "SELECT count(*) FROM pg_stat_activity \
                   WHERE state = 'active' AND query = 'SELECT pg_sleep(30)'";
    assert_eq!(
        setup
            .backend_until(running, "1", Duration::from_secs(5))
            .unwrap(),
        "1"
    );
    let other = thread::spawn(move || {
        let started = Instant::now();
        let row = bystander.query_one("SELECT pg_sleep(1)::text, 7::int4", &[]);
        (row.map(|r| r.get::<_, i32>(1)), started.elapsed())
    });
    thread::sleep(Duration::from_millis(200));

    let cancelled_at = Instant::now();
    token
        .cancel_query(odyssey_test::pg::NoTls)
        .expect("send CancelRequest to the pooler");
    let (result, _, mut target) = sleeper.join().unwrap();
    let took = cancelled_at.elapsed();
    let err = result.expect_err("pg_sleep(30) was not cancelled");
    assert_eq!(err.code(), Some(&SqlState::QUERY_CANCELED), "{err}");
    assert!(took < CANCELLED_WITHIN, "cancel took {took:?}");

    let (other, other_took) = other.join().unwrap();
    assert_eq!(
        other.expect("the other client's query was touched by the cancel"),
        7
    );
    assert!(other_took >= Duration::from_secs(1), "{other_took:?}");

    // The cancelled client goes on.
    let row = target.query_one("SELECT 5::int4", &[]).unwrap();
    assert_eq!(row.get::<_, i32>(0), 5, "{}", setup.pooler.log());
}

#[test]
fn cancel_in_session_pool_stops_only_the_target_query() {
    cancel_stops_only_the_target("session");
}

#[test]
fn cancel_in_transaction_pool_stops_only_the_target_query() {
    cancel_stops_only_the_target("transaction");
}
