//! A failover under load (issue 13): read-write clients loop on writing transactions through
//! the pooler to a two-host storage while the primary stops and the standby is promoted.
//!
//! Only the transactions in flight from the stop until the pooler knows the new primary (the
//! promotion plus one `endpoints_status_poll_interval`) may fail; every transaction before the
//! stop worked, and every one begun after that works, on the promoted host — with no pooler
//! restart and no server of the old primary handed out. Read-only clients on the standby go on
//! through the primary's stop.

use std::thread;
use std::time::{Duration, Instant};

use odyssey_test::looping::{Trace, start_clients};
use odyssey_test::pg::Client;
use odyssey_test::pooler::config;
use odyssey_test::{Cluster, ClusterOptions, ConnParams, Pooler, connect};

const WRITERS: usize = 6;
const READERS: usize = 3;
/// `endpoints_status_poll_interval`, ms: how long what is known of a host is trusted.
const POLL_MS: u64 = 200;
/// After the promotion: the poll interval, and a transaction's worth of slack.
const SETTLE: Duration = Duration::from_millis(POLL_MS + 800);
const AFTER: Duration = Duration::from_millis(1500);

fn rules(primary: u16, standby: u16) -> String {
    let rule = |db: &str, tsa: &str| {
        format!(
            "database \"{db}\" {{\n\tuser \"app\" {{\n\t\tauthentication \"none\"\n\
             \t\tstorage \"both\"\n\t\tstorage_db \"postgres\"\n\t\tstorage_user \"postgres\"\n\
             \t\tpool \"transaction\"\n\t\tpool_size 4\n\t\tpool_timeout 10000\n\
             \t\ttarget_session_attrs \"{tsa}\"\n\t}}\n}}\n"
        )
    };
    format!(
        "backend_connect_timeout_ms 2000\n\
         storage \"both\" {{\n\ttype \"remote\"\n\thost \"127.0.0.1:{primary},127.0.0.1:{standby}\"\n\
         \tendpoints_status_poll_interval {POLL_MS}\n}}\n{}{}",
        rule("rw", "read-write"),
        rule("ro", "read-only"),
    )
}

/// A write, on a primary.
fn write(client: &mut Client) -> Result<(), String> {
    let row = client
        .query_one(
            "INSERT INTO failover_log VALUES (now()) RETURNING pg_is_in_recovery()",
            &[],
        )
        .map_err(|e| format!("{e:?}"))?;
    match row.get::<_, bool>(0) {
        false => Ok(()),
        true => Err("a write answered by a standby".into()),
    }
}

/// A read, on a standby.
fn read(client: &mut Client) -> Result<(), String> {
    let row = client
        .query_one("SELECT pg_is_in_recovery()", &[])
        .map_err(|e| format!("{e:?}"))?;
    match row.get::<_, bool>(0) {
        true => Ok(()),
        false => Err("a read-only client got the primary".into()),
    }
}

fn check_trace(who: &str, trace: &Trace, fault: Instant, back: Instant, pooler: &Pooler) {
    assert!(
        trace.worked_before(fault),
        "{who} failed before the fault; its last runs: {:?}\n{}",
        trace.last_runs(fault),
        pooler.log()
    );
    let after = trace.begun_after(back);
    assert!(
        !after.is_empty() && after.iter().all(|run| run.result.is_ok()),
        "{who}: transactions after the failover failed: {:?}\n{}",
        after
            .iter()
            .filter_map(|run| run.result.as_ref().err())
            .take(3)
            .collect::<Vec<_>>(),
        pooler.log()
    );
}

#[test]
fn a_failover_under_load_fails_only_what_was_in_flight() {
    let mut primary = Cluster::start(ClusterOptions::default()).expect("primary");
    primary
        .psql(
            "postgres",
            "postgres",
            "CREATE TABLE failover_log (at timestamptz)",
        )
        .unwrap();
    let standby = Cluster::standby_of(&primary).expect("standby");
    let (pp, sp) = (primary.port(), standby.port());
    let pooler = Pooler::start(&config(pp, &rules(pp, sp))).expect("pooler");
    let rw = ConnParams::tcp(pooler.port(), "app").dbname("rw");
    let ro = ConnParams::tcp(pooler.port(), "app").dbname("ro");
    let within = Duration::from_secs(10);
    let (writers_ran, stop_writers, writers) = start_clients(WRITERS, &rw, write, within);
    let (readers_ran, stop_readers, readers) = start_clients(READERS, &ro, read, within);
    assert!(
        writers_ran && readers_ran,
        "not every client ran\n{}",
        pooler.log()
    );
    thread::sleep(Duration::from_millis(300));

    let stopped = Instant::now();
    primary.stop().expect("stop the primary");
    // Read-only clients go on on the standby while there is no primary.
    thread::sleep(Duration::from_millis(500));
    let promoting = Instant::now();
    stop_readers.store(true, std::sync::atomic::Ordering::Relaxed);
    standby.promote().expect("promote");
    let back = Instant::now() + SETTLE;
    thread::sleep(SETTLE + AFTER);
    stop_writers.store(true, std::sync::atomic::Ordering::Relaxed);

    for (n, reader) in readers.into_iter().enumerate() {
        let trace = reader.join().unwrap();
        // Every read until the promotion worked, the primary's stop included.
        assert!(
            trace.worked_before(promoting),
            "reader {n} failed; its last runs: {:?}\n{}",
            trace.last_runs(stopped),
            pooler.log()
        );
        assert!(
            trace
                .begun_after(stopped)
                .iter()
                .any(|run| run.result.is_ok()),
            "reader {n} ran nothing while the primary was down"
        );
    }
    let mut failed = 0;
    for (n, writer) in writers.into_iter().enumerate() {
        let trace = writer.join().unwrap();
        check_trace(&format!("writer {n}"), &trace, stopped, back, &pooler);
        failed += trace.failed_between(stopped, back);
    }
    // Every write after the failover went to the promoted standby.
    let mut promoted = connect(&standby.superuser_params()).expect("promoted standby");
    let after: i64 = promoted
        .query_one(
            "SELECT count(*) FROM failover_log WHERE at > now() - interval '1 second'",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(after > 0, "no write reached the promoted host");
    eprintln!("failover: {failed} writes failed between the stop and {SETTLE:?} after promotion");
}
