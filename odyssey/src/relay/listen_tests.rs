//! LISTEN/UNLISTEN in the relay: which forms are handed to the session, answered with no
//! server, and which go to a server (and are then taken over after the server ran them).

use kiwi::backend::TransactionStatus::{Idle, InTransaction};
use kiwi::frontend::{Describe, Execute, FrontendMessage, Target};

use super::harness::Pair;
use super::tests::{bind, complete, message, parse, query, ready};
use super::*;
use crate::listen::ListenOp;

fn describe(target: Target) -> Vec<u8> {
    message(FrontendMessage::Describe(Describe { target, name: b"" }))
}

fn execute() -> Vec<u8> {
    message(FrontendMessage::Execute(Execute {
        portal: b"",
        max_rows: 0,
    }))
}

fn step(p: &mut Pair, buf: &[u8]) -> ClientStep {
    let attached = p.attached.then_some(Attached {
        info: &mut p.info,
        tx: p.tx,
    });
    p.relay.client(buf, attached).expect("client bytes")
}

#[test]
fn a_simple_listen_is_answered_without_a_server() {
    let mut p = Pair::new(PoolMode::Transaction, false);
    let q = query("LISTEN \"Jobs\"");
    let got = step(&mut p, &q);
    assert_eq!(
        got,
        ClientStep::Listen {
            used: q.len(),
            op: ListenOp::Listen("Jobs".into()),
            status: Idle,
            prefix: Vec::new(),
        }
    );
    let got = step(&mut p, &query("UNLISTEN *"));
    assert!(matches!(
        got,
        ClientStep::Listen {
            op: ListenOp::UnlistenAll,
            ..
        }
    ));
}

#[test]
fn session_pooling_and_pin_on_listen_send_listen_to_the_server() {
    let mut p = Pair::new(PoolMode::Session, false);
    assert_eq!(step(&mut p, &query("LISTEN a")), ClientStep::NeedServer);
    let mut settings = super::harness::settings(PoolMode::Transaction, false);
    settings.pin_on_listen = true;
    let mut relay = Relay::new(settings);
    assert_eq!(
        relay.client(&query("LISTEN a"), None),
        Ok(ClientStep::NeedServer)
    );
}

#[test]
fn a_listen_inside_a_transaction_carries_its_status() {
    let mut p = Pair::new(PoolMode::Transaction, false);
    p.client(&query("BEGIN; SELECT 1")).unwrap();
    p.serve_all(&[
        &complete("BEGIN"),
        &complete("SELECT 1"),
        &ready(InTransaction),
    ]);
    let got = step(&mut p, &query("LISTEN a"));
    assert!(
        matches!(
            got,
            ClientStep::Listen {
                status: InTransaction,
                ..
            }
        ),
        "{got:?}"
    );
}

#[test]
fn psycopg_unnamed_parse_bind_describe_execute_sync_is_answered_whole() {
    let mut p = Pair::new(PoolMode::Transaction, false);
    let seq = [
        parse("", "LISTEN psy"),
        bind(""),
        describe(Target::Portal),
        execute(),
        message(FrontendMessage::Sync),
    ]
    .concat();
    match step(&mut p, &seq) {
        ClientStep::Listen {
            used, op, prefix, ..
        } => {
            assert_eq!(used, seq.len());
            assert_eq!(op, ListenOp::Listen("psy".into()));
            assert_eq!(prefix, b"1\0\0\0\x042\0\0\0\x04n\0\0\0\x04");
        }
        other => panic!("{other:?}"),
    }
    // Without its Sync the sequence is not whole: it is not taken.
    let cut = &seq[..seq.len() - 5];
    assert_eq!(step(&mut p, cut), ClientStep::NeedServer);
}

#[test]
fn asyncpg_listen_run_by_a_server_is_taken_over_after_it() {
    // Through the plain relay, and through the statements relay (named statements mapped).
    for prepared in [false, true] {
        asyncpg_listen(Pair::new(PoolMode::Transaction, prepared));
    }
}

fn asyncpg_listen(mut p: Pair) {
    // Parse + Describe statement + Flush, then Parse again + Bind + Execute + Sync.
    let first = [
        parse("", "LISTEN \"apg\""),
        describe(Target::Statement),
        message(FrontendMessage::Flush),
    ]
    .concat();
    p.client(&first).unwrap();
    assert!(p.attached);
    p.serve_all(&[b"1\0\0\0\x04", b"t\0\0\0\x06\0\0", b"n\0\0\0\x04"]);
    let second = [
        parse("", "LISTEN \"apg\""),
        bind(""),
        execute(),
        message(FrontendMessage::Sync),
    ]
    .concat();
    p.client(&second).unwrap();
    assert_eq!(
        p.relay.take_listened(),
        None,
        "not before the server ran it"
    );
    p.serve_all(&[
        b"1\0\0\0\x04",
        b"2\0\0\0\x04",
        &complete("LISTEN"),
        &ready(Idle),
    ]);
    assert_eq!(
        p.relay.take_listened(),
        Some(ListenOp::Listen("apg".into()))
    );
}
