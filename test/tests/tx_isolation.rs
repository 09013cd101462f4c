//! What one client does in a transaction pool never shows through to another (§7.7, §7.12):
//! tracked SETs follow their client from server to server and never leak to the next owner,
//! temp tables are discarded with the session state, and an extended-protocol pipeline (with a
//! Flush in the middle and several Syncs) keeps its server until it is synchronized, coming
//! back complete and in order.
//!
//! Config: `pool "transaction"`, `pool_discard no` (the pooler discards only sessions that
//! left state), `pool_size` 2 for the SET test and 1 elsewhere, so a client surely gets a
//! server someone else used.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

use odyssey_test::raw::RawConn;
use odyssey_test::tx::{
    TxPoolConfig, TxSetup, bodiless, extended_query, first_values, join_errors, ready_status,
    simple_query, tags,
};
use odyssey_test::{Cluster, ClusterOptions, Pooler};

const CLIENTS: usize = 8;
const ROUNDS: usize = 25;
const SHOW: &str = "SELECT current_setting('search_path') || '|' || \
                    current_setting('application_name') || '|' || \
                    current_setting('statement_timeout')";

/// What client `i` sets, and what SHOW must then say; the bystanders set nothing.
fn settings(i: usize) -> Option<([String; 3], String)> {
    (i < CLIENTS - 2).then(|| {
        (
            [
                format!("SET search_path = sp_{i}"),
                format!("SET application_name TO 'app {i}'"),
                format!("SET statement_timeout = '{}s'", 10 + i),
            ],
            format!("sp_{i}|app {i}|{}s", 10 + i),
        )
    })
}

#[test]
fn sets_of_one_client_are_never_seen_by_another() {
    let setup = Arc::new(TxSetup::start(&TxPoolConfig::new("transaction", 2), "").expect("setup"));
    let defaults = {
        let mut c = setup.connect().unwrap();
        let row = c.simple_query(SHOW).unwrap();
        first_text(&row)
    };
    assert_eq!(defaults, "\"$user\", public||0");

    let workers: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let setup = setup.clone();
            let defaults = defaults.clone();
            thread::spawn(move || -> Result<(), String> {
                let mut c = setup.connect().map_err(|e| e.to_string())?;
                let want = match settings(i) {
                    Some((sets, want)) => {
                        for set in sets {
                            c.batch_execute(&set).map_err(|e| format!("{set}: {e}"))?;
                        }
                        want
                    }
                    None => defaults,
                };
                for round in 0..ROUNDS {
                    // Alternate bare queries and explicit transactions.
                    let rows = if round % 2 == 0 {
                        c.simple_query(SHOW)
                    } else {
                        c.simple_query(&format!("BEGIN; {SHOW}; COMMIT"))
                    }
                    .map_err(|e| e.to_string())?;
                    let got = first_text(&rows);
                    if got != want {
                        return Err(format!("client {i} round {round}: {got:?}, want {want:?}"));
                    }
                }
                Ok(())
            })
        })
        .collect();
    let errors = join_errors(workers);
    assert!(errors.is_empty(), "{errors:#?}\n{}", setup.pooler.log());

    // A fresh client gets the defaults whichever server it lands on.
    let mut fresh = setup.connect().unwrap();
    for _ in 0..4 {
        assert_eq!(first_text(&fresh.simple_query(SHOW).unwrap()), defaults);
    }
}

fn first_text(messages: &[odyssey_test::pg::SimpleQueryMessage]) -> String {
    messages
        .iter()
        .find_map(|m| match m {
            odyssey_test::pg::SimpleQueryMessage::Row(row) => row.get(0).map(str::to_string),
            _ => None,
        })
        .unwrap_or_default()
}

#[test]
fn temp_tables_of_one_client_are_never_visible_to_another() {
    let setup = TxSetup::start(&TxPoolConfig::new("transaction", 1), "").expect("setup");
    let mut owner = setup.raw().unwrap();
    let made = simple_query(
        &mut owner,
        "CREATE TEMP TABLE tmp_auto (x int); INSERT INTO tmp_auto VALUES (1); \
         SELECT pg_backend_pid()::text",
    )
    .unwrap();
    let pid = first_values(&made).pop().expect("a pid");
    for sql in ["BEGIN", "CREATE TEMP TABLE tmp_tx (x int)", "COMMIT"] {
        let done = simple_query(&mut owner, sql).unwrap();
        assert!(!tags(&done).contains('E'), "{sql}: {done:?}");
    }

    let mut other = setup.raw().unwrap();
    let seen = simple_query(
        &mut other,
        "SELECT pg_backend_pid() || ' ' || \
         (to_regclass('tmp_auto') IS NULL AND to_regclass('tmp_tx') IS NULL) || ' ' || \
         (SELECT count(*) FROM pg_class WHERE relname IN ('tmp_auto', 'tmp_tx'))",
    )
    .unwrap();
    // The same backend (pool_size 1), yet the temp tables are gone, not just hidden.
    assert_eq!(
        first_values(&seen),
        [format!("{pid} true 0")],
        "{}",
        setup.pooler.log()
    );
}

/// Reads exactly `n` messages.
fn recv_n(conn: &mut RawConn, n: usize) -> Vec<odyssey_test::raw::Message> {
    (0..n)
        .map(|_| conn.recv().unwrap().expect("connection closed"))
        .collect()
}

#[test]
fn pipelined_extended_queries_come_back_complete_and_in_order() {
    let setup = TxSetup::start(&TxPoolConfig::new("transaction", 1), "").expect("setup");
    // Another client keeps asking for the only server: releasing it mid-pipeline would show.
    let stop = Arc::new(AtomicBool::new(false));
    let contender = {
        let (stop, port) = (stop.clone(), setup.pooler.port());
        thread::spawn(move || {
            let mut c = odyssey_test::tx::raw_login(port).unwrap();
            let mut rounds = 0u32;
            while !stop.load(Ordering::Relaxed) {
                let got = simple_query(&mut c, "SELECT 'contender'").unwrap();
                assert_eq!(first_values(&got), ["contender"]);
                rounds += 1;
            }
            rounds
        })
    };
    let mut c = setup.raw().unwrap();
    for round in 0..20 {
        // Parse/Bind/Execute/Flush: the results must arrive with no Sync sent.
        let mut out = Vec::new();
        extended_query(&mut out, "SELECT 1", &[]);
        bodiless(&mut out, b'H');
        c.send(&out).unwrap();
        let flushed = recv_n(&mut c, 4);
        assert_eq!(tags(&flushed), "12DC", "round {round}");
        assert_eq!(first_values(&flushed), ["1"]);

        // Then Sync, and two more batches in one write.
        let mut out = Vec::new();
        bodiless(&mut out, b'S');
        extended_query(&mut out, "SELECT $1::int + 1", &["41"]);
        bodiless(&mut out, b'S');
        extended_query(&mut out, "SELECT 'three'", &[]);
        bodiless(&mut out, b'H');
        bodiless(&mut out, b'S');
        c.send(&out).unwrap();
        let rest = recv_n(&mut c, 11);
        assert_eq!(tags(&rest), "Z12DCZ12DCZ", "round {round}: {rest:?}");
        assert_eq!(first_values(&rest), ["42", "three"]);
        assert!(
            rest.iter()
                .filter(|m| m.tag == b'Z')
                .all(|m| m.body == b"I")
        );

        // A deferred BEGIN goes ahead of an extended batch.
        let begin = simple_query(&mut c, "BEGIN").unwrap();
        assert_eq!(ready_status(&begin), Some(b'T'));
        let mut out = Vec::new();
        extended_query(&mut out, "SELECT now() = statement_timestamp()", &[]);
        bodiless(&mut out, b'S');
        c.send(&out).unwrap();
        let inside = recv_n(&mut c, 5);
        assert_eq!(tags(&inside), "12DCZ");
        assert_eq!(ready_status(&inside), Some(b'T'), "BEGIN ran on the server");
        let commit = simple_query(&mut c, "COMMIT").unwrap();
        assert_eq!(
            (tags(&commit), ready_status(&commit)),
            ("CZ".into(), Some(b'I'))
        );
    }
    stop.store(true, Ordering::Relaxed);
    let rounds = contender.join().expect("contender saw a wrong answer");
    assert!(rounds > 0, "the contender never got the server");
}

/// Regression: the pooler tracked `SET` when the client sent it, not when it took effect.
#[test]
fn a_set_rolled_back_with_its_transaction_stays_rolled_back() {
    let setup = TxSetup::start(&TxPoolConfig::new("transaction", 1), "").expect("setup");
    let mut c = setup.raw().unwrap();
    for sql in ["BEGIN", "SET statement_timeout = '7s'", "ROLLBACK"] {
        let done = simple_query(&mut c, sql).unwrap();
        assert!(!tags(&done).contains('E'), "{sql}: {done:?}");
    }
    let show = "SHOW statement_timeout";
    assert_eq!(first_values(&simple_query(&mut c, show).unwrap()), ["0"]);
    // Another client takes the only server in between; PostgreSQL forgot the SET, so must
    // the pooler.
    let mut other = setup.raw().unwrap();
    assert_eq!(
        first_values(&simple_query(&mut other, show).unwrap()),
        ["0"]
    );
    assert_eq!(
        first_values(&simple_query(&mut c, show).unwrap()),
        ["0"],
        "the rolled-back SET came back on the next server"
    );
}

/// Regression: an invalid value was recorded before the server refused it, and then killed
/// the session when deployed.
#[test]
fn a_failed_set_is_not_replayed_on_the_next_server() {
    let setup = TxSetup::start(&TxPoolConfig::new("transaction", 1), "").expect("setup");
    let mut c = setup.raw().unwrap();
    let bad = simple_query(&mut c, "SET statement_timeout = 'soon'")
        .unwrap_or_else(|e| panic!("{e}\n{}", setup.pooler.log()));
    assert_eq!(tags(&bad), "EZ", "{bad:?}");
    let mut other = setup.raw().unwrap();
    let one = simple_query(&mut other, "SELECT 1");
    assert_eq!(
        first_values(&one.unwrap_or_else(|e| panic!("{e}\n{}", setup.pooler.log()))),
        ["1"]
    );
    let after = simple_query(&mut c, "SHOW statement_timeout").unwrap();
    assert_eq!(
        (tags(&after), first_values(&after)),
        ("TDCZ".to_string(), vec!["0".to_string()]),
        "{after:?}\n{}",
        setup.pooler.log()
    );
}

/// Regression: kiwi kept values of at most 128 bytes, so a tracked SET with a longer value was
/// recorded neither for its client nor for the server: the next client on that server saw it,
/// and its own client lost it on the next server. `smart_search_path_enquoting` deploys the
/// list as a list (without it, upstream's quoting makes it one schema name).
#[test]
fn a_long_search_path_follows_its_client_and_does_not_leak() {
    let cluster = Cluster::start(ClusterOptions::default()).expect("cluster");
    let template = TxPoolConfig::new("transaction", 1).template(cluster.port());
    let pooler =
        Pooler::start(&format!("smart_search_path_enquoting yes\n{template}")).expect("pooler");
    let setup = TxSetup { pooler, cluster };
    let schemas: Vec<String> = (0..30).map(|i| format!("tenant_schema_{i:04}")).collect();
    let long = schemas.join(", ");
    assert!(long.len() > 300);
    let show = "SELECT current_setting('search_path')";
    let mut owner = setup.connect().unwrap();
    let mut other = setup.connect().unwrap();
    let defaults = first_text(&other.simple_query(show).unwrap());
    owner
        .batch_execute(&format!("SET search_path = {long}"))
        .unwrap();
    for round in 0..3 {
        let seen = first_text(&other.simple_query(show).unwrap());
        assert_eq!(
            seen, defaults,
            "round {round}: another client's search_path leaked"
        );
        let own = first_text(&owner.simple_query(show).unwrap());
        assert_eq!(own, long, "round {round}: the client lost its search_path");
    }
}
