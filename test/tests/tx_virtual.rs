//! Deferred BEGIN in transaction pooling (§7.10): a bare `BEGIN` is answered by the pooler
//! without a server, the real BEGIN goes ahead of the first query that needs one, and an empty
//! `BEGIN; COMMIT` never needs a server at all.
//!
//! Config: `pool "transaction"`, `pool_size 1`, `virtual_transaction` at its default (yes).
//! The only server is held by another client inside a transaction, so anything that needed a
//! server would wait (up to `pool_timeout` 10 s) instead of answering at once.

use std::time::{Duration, Instant};

use odyssey_test::tx::{
    self, ErrorText, TxPoolConfig, TxSetup, first_values, ready_status, simple_query, tags,
};

/// Well under what waiting for the held server would take.
const QUICK: Duration = Duration::from_secs(1);

fn setup() -> TxSetup {
    TxSetup::start(&TxPoolConfig::new("transaction", 1), "").expect("cluster and pooler")
}

#[test]
fn bare_begin_is_answered_without_a_server_and_runs_once_one_is_free() {
    let setup = setup();
    let mut holder = setup.raw().unwrap();
    let held = simple_query(&mut holder, "BEGIN; SELECT 1").unwrap();
    assert_eq!(ready_status(&held), Some(b'T'), "{}", tags(&held));

    let mut client = setup.raw().unwrap();
    let started = Instant::now();
    let begin = simple_query(&mut client, "BEGIN").unwrap();
    assert!(
        started.elapsed() < QUICK,
        "BEGIN waited {:?} for the held server",
        started.elapsed()
    );
    assert_eq!(
        tags(&begin),
        "CZ",
        "BEGIN answered with CommandComplete and RFQ"
    );
    assert_eq!(begin[0].body, b"BEGIN\0");
    assert_eq!(
        ready_status(&begin),
        Some(b'T'),
        "the client is told it is in a transaction"
    );

    // The first real query needs the server: it waits until the holder is done.
    tx::send_query(&mut client, "SELECT 1").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let done = simple_query(&mut holder, "COMMIT").unwrap();
    assert_eq!(ready_status(&done), Some(b'I'));

    let select = client.until_ready().unwrap();
    assert_eq!(tags(&select), "TDCZ", "{select:?}");
    assert_eq!(first_values(&select), ["1"]);
    // 'T' comes from PostgreSQL: the deferred BEGIN really ran ahead of the SELECT.
    assert_eq!(ready_status(&select), Some(b'T'));
    let xact = simple_query(&mut client, "SELECT (now() < statement_timestamp())::text").unwrap();
    assert_eq!(first_values(&xact), ["true"], "one transaction since BEGIN");
    let commit = simple_query(&mut client, "COMMIT").unwrap();
    assert_eq!(tags(&commit), "CZ");
    assert_eq!(ready_status(&commit), Some(b'I'));
}

#[test]
fn empty_begin_commit_and_rollback_never_touch_a_server() {
    let setup = setup();
    let mut holder = setup.raw().unwrap();
    let held = simple_query(&mut holder, "BEGIN; SELECT 1").unwrap();
    assert_eq!(ready_status(&held), Some(b'T'));

    let mut client = setup.raw().unwrap();
    for (end, tag) in [
        ("COMMIT", "COMMIT"),
        ("ROLLBACK", "ROLLBACK"),
        ("end", "COMMIT"),
    ] {
        let started = Instant::now();
        let begin = simple_query(&mut client, "BEGIN").unwrap();
        let finish = simple_query(&mut client, end).unwrap();
        assert!(
            started.elapsed() < QUICK,
            "BEGIN; {end} waited {:?}: it went to a server",
            started.elapsed()
        );
        assert_eq!(
            (tags(&begin), ready_status(&begin)),
            ("CZ".into(), Some(b'T'))
        );
        assert_eq!(tags(&finish), "CZ", "{end}: {finish:?}");
        assert_eq!(finish[0].body, format!("{tag}\0").as_bytes(), "{end}");
        assert_eq!(ready_status(&finish), Some(b'I'), "{end}");
        assert!(finish.iter().all(|m| ErrorText::of(m).is_none()));
    }

    // The holder's transaction was never disturbed, and the server still works for others.
    let held = simple_query(&mut holder, "SELECT 2").unwrap();
    assert_eq!(first_values(&held), ["2"]);
    assert_eq!(ready_status(&held), Some(b'T'));
    simple_query(&mut holder, "COMMIT").unwrap();
    let after = simple_query(&mut client, "SELECT 3").unwrap();
    assert_eq!(first_values(&after), ["3"]);
    assert_eq!(ready_status(&after), Some(b'I'));
}

/// Statement pooling gives the server back after every statement: a bare BEGIN is refused
/// with 0A000 and the session goes on (as upstream).
#[test]
fn statement_pooling_refuses_a_transaction_block() {
    let setup = TxSetup::start(&TxPoolConfig::new("statement", 1), "").expect("cluster and pooler");
    let mut client = setup.raw().unwrap();
    let begin = simple_query(&mut client, "BEGIN").unwrap();
    assert_eq!(tags(&begin), "EZ", "{begin:?}");
    let (code, message) = begin[0].error().expect("an ErrorResponse");
    assert_eq!(code, "0A000");
    assert!(message.contains("statement pooling"), "{message}");
    assert_eq!(ready_status(&begin), Some(b'I'));
    let select = simple_query(&mut client, "SELECT 2").unwrap();
    assert_eq!(first_values(&select), ["2"]);
}
