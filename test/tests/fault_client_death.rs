//! A client that vanishes (socket dropped, no Terminate) in the middle of COPY FROM STDIN, of a
//! large result it has stopped reading, or of an open transaction holding a lock, in session
//! and in transaction pooling: within a second its server is back clean — idle, outside any
//! transaction, holding no lock — or closed. Either way the next client can take the lock.
//!
//! Config: `pool_size 1`, `pool_rollback yes`, `pool_cancel yes`: the dead client's server is
//! the only one, so the next client would meet anything it left behind.

use std::time::{Duration, Instant};

use odyssey_test::raw::RawConn;
use odyssey_test::tx::{TxPoolConfig, TxSetup, first_values, send_query, simple_query};
use odyssey_test::wait_for;

/// How long the dead client's server may stay dirty.
const CLEAN_WITHIN: Duration = Duration::from_secs(1);

fn setup(mode: &'static str) -> TxSetup {
    TxSetup::start(
        &TxPoolConfig::new(mode, 1),
        "CREATE TABLE t (id int, v text); INSERT INTO t VALUES (1, 'a')",
    )
    .expect("setup")
}

/// What the dying client is doing when its socket goes.
#[derive(Debug, Clone, Copy)]
enum Midway {
    /// COPY FROM STDIN started, some rows sent, no CopyDone.
    CopyIn,
    /// A result of ~200 MB, of which it read one row.
    LargeResult,
    /// BEGIN and an exclusive lock on `t`.
    OpenTransaction,
}

/// Logs in, notes its backend's pid, and gets `midway`; returns the socket and the pid. In
/// transaction pooling the pid query runs in the transaction that stays open (COPY and the
/// large result open one with BEGIN), so it names the server the client then holds.
fn dying_client(setup: &TxSetup, midway: Midway) -> (RawConn, String) {
    let mut conn = setup.raw().unwrap();
    let got = simple_query(&mut conn, "BEGIN; SELECT pg_backend_pid()::text").unwrap();
    let pid = first_values(&got).pop().expect("pid");
    match midway {
        Midway::CopyIn => {
            send_query(&mut conn, "COPY t FROM STDIN").unwrap();
            let answer = conn.recv().unwrap().expect("CopyInResponse");
            assert_eq!(answer.tag, b'G', "no CopyInResponse");
            let mut data = Vec::new();
            for n in 0..100 {
                kiwi::frontend::CopyData {
                    data: format!("{n}\trow\n").as_bytes(),
                }
                .encode(&mut data);
            }
            conn.send(&data).unwrap();
        }
        Midway::LargeResult => {
            send_query(
                &mut conn,
                "SELECT repeat('x', 1000) FROM generate_series(1, 200000)",
            )
            .unwrap();
            while conn.recv().unwrap().expect("rows").tag != b'D' {}
        }
        Midway::OpenTransaction => {
            let got = simple_query(&mut conn, "LOCK TABLE t IN ACCESS EXCLUSIVE MODE").unwrap();
            assert_eq!(got.last().map(|m| m.tag), Some(b'Z'));
        }
    }
    (conn, pid)
}

/// The backend `pid` is gone, or idle outside a transaction with no lock.
fn clean_or_closed(setup: &TxSetup, pid: &str) -> bool {
    let sql = format!(
        "SELECT (SELECT count(*) FROM pg_stat_activity WHERE pid = {pid} AND state <> 'idle') + \
                (SELECT count(*) FROM pg_locks WHERE pid = {pid})"
    );
    setup.backend(&sql).is_ok_and(|n| n == "0")
}

fn client_dies(mode: &'static str, midway: Midway) {
    let setup = setup(mode);
    let (conn, pid) = dying_client(&setup, midway);
    assert!(
        !clean_or_closed(&setup, &pid),
        "{mode} {midway:?}: nothing to clean"
    );
    drop(conn);
    let died = Instant::now();
    let clean = wait_for(CLEAN_WITHIN, || clean_or_closed(&setup, &pid));
    let took = died.elapsed();
    assert!(
        clean && took < CLEAN_WITHIN,
        "{mode} {midway:?}: server {pid} not clean after {took:?}: {:?}\n{}",
        setup.backend(&format!(
            "SELECT state, query FROM pg_stat_activity WHERE pid = {pid}"
        )),
        setup.pooler.log()
    );
    // The next client takes the lock at once and sees none of the dead client's rows.
    let mut next = setup.raw().unwrap();
    let got = simple_query(
        &mut next,
        "SET lock_timeout = '1s'; BEGIN; LOCK TABLE t IN ACCESS EXCLUSIVE MODE NOWAIT; \
         SELECT count(*)::text FROM t",
    )
    .unwrap();
    assert_eq!(
        first_values(&got),
        ["1"],
        "{mode} {midway:?}\n{}",
        setup.pooler.log()
    );
    eprintln!("{mode} {midway:?}: server clean or closed {took:?} after the client died");
}

#[test]
fn session_client_dies_in_copy_in() {
    client_dies("session", Midway::CopyIn);
}

#[test]
fn session_client_dies_in_a_large_result() {
    client_dies("session", Midway::LargeResult);
}

#[test]
fn session_client_dies_in_an_open_transaction() {
    client_dies("session", Midway::OpenTransaction);
}

#[test]
fn transaction_client_dies_in_copy_in() {
    client_dies("transaction", Midway::CopyIn);
}

#[test]
fn transaction_client_dies_in_a_large_result() {
    client_dies("transaction", Midway::LargeResult);
}

#[test]
fn transaction_client_dies_in_an_open_transaction() {
    client_dies("transaction", Midway::OpenTransaction);
}
