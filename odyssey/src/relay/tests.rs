//! The rules of transaction pooling, one test each, on the relay alone: a client and a server
//! played as byte streams through `harness::Pair`.

use kiwi::backend::{CommandComplete, ParameterStatus, ReadyForQuery, TransactionStatus};
use kiwi::frontend::{Bind, Close, FrontendMessage, Parse, Query, Target};

use super::harness::Pair;
use super::*;

/// Server bytes in a test are well framed.
trait Serve {
    fn serve(&mut self, buf: &[u8]) -> usize;
}

impl Serve for Pair {
    fn serve(&mut self, buf: &[u8]) -> usize {
        self.server(buf).expect("server bytes frame")
    }
}

impl Pair {
    /// Serves the concatenation of `parts`.
    pub(super) fn serve_all(&mut self, parts: &[&[u8]]) -> usize {
        self.serve(&parts.concat())
    }
}

pub(super) fn query(sql: &str) -> Vec<u8> {
    let mut out = Vec::new();
    Query {
        sql: sql.as_bytes(),
    }
    .encode(&mut out);
    out
}

pub(super) fn message(m: FrontendMessage<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    m.encode(&mut out);
    out
}

pub(super) fn parse(name: &str, sql: &str) -> Vec<u8> {
    message(FrontendMessage::Parse(Parse {
        name: name.as_bytes(),
        query: sql.as_bytes(),
        param_types: vec![],
    }))
}

pub(super) fn bind(statement: &str) -> Vec<u8> {
    message(FrontendMessage::Bind(Bind {
        portal: b"",
        statement: statement.as_bytes(),
        param_formats: vec![],
        params: vec![],
        result_formats: vec![],
    }))
}

pub(super) fn ready(status: TransactionStatus) -> Vec<u8> {
    let mut out = Vec::new();
    ReadyForQuery { status }.encode(&mut out);
    out
}

pub(super) fn complete(tag: &str) -> Vec<u8> {
    let mut out = Vec::new();
    CommandComplete {
        tag: tag.as_bytes(),
    }
    .encode(&mut out);
    out
}

pub(super) fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

use TransactionStatus::{Idle, InTransaction};

#[test]
fn released_only_at_ready_for_query_idle_with_nothing_pending() {
    let mut p = Pair::new(PoolMode::Transaction, false);
    p.client(&query("BEGIN; SELECT 1")).unwrap();
    assert!(p.attached);
    p.serve(&cat(&[
        &complete("BEGIN"),
        &complete("SELECT 1"),
        &ready(InTransaction),
    ]));
    assert!(p.attached, "inside a transaction the server stays");
    p.client(&query("COMMIT")).unwrap();
    p.serve(&complete("COMMIT"));
    assert!(p.attached, "no ReadyForQuery yet");
    p.serve(&ready(Idle));
    assert_eq!((p.attached, p.releases), (false, 1));
}

#[test]
fn session_pooling_never_releases() {
    let mut p = Pair::new(PoolMode::Session, false);
    p.client(&query("SELECT 1")).unwrap();
    p.serve(&cat(&[&complete("SELECT 1"), &ready(Idle)]));
    assert!(p.attached);
    assert_eq!(p.releases, 0);
}

#[test]
fn a_pipeline_of_syncs_keeps_the_server_until_the_last_ready() {
    let mut p = Pair::new(PoolMode::Transaction, false);
    let batch = cat(&[
        &parse("", "SELECT 1"),
        &bind(""),
        &message(FrontendMessage::Sync),
        &parse("", "SELECT 2"),
        &bind(""),
        &message(FrontendMessage::Sync),
    ]);
    p.client(&batch).unwrap();
    assert_eq!(p.relay.pending(), 2);
    p.serve(&ready(Idle));
    assert!(p.attached, "one Sync is still unanswered");
    p.serve(&ready(Idle));
    assert!(!p.attached);
}

#[test]
fn a_flush_does_not_end_an_extended_sequence() {
    let mut p = Pair::new(PoolMode::Transaction, false);
    p.client(&cat(&[
        &parse("", "SELECT 1"),
        &message(FrontendMessage::Flush),
    ]))
    .unwrap();
    p.serve(&[b'1', 0, 0, 0, 4]);
    assert!(p.attached, "the sequence is open until Sync");
    assert!(!p.relay.between_transactions(Some(Idle)));
}

#[test]
fn copy_in_by_simple_query_releases_at_its_ready_for_query() {
    let mut p = Pair::new(PoolMode::Transaction, false);
    p.client(&query("COPY t FROM STDIN")).unwrap();
    assert!(!p.relay.server_awaits_copy_data());
    p.serve(&[b'G', 0, 0, 0, 7, 0, 0, 0]);
    assert!(p.relay.server_awaits_copy_data());
    let data = message(FrontendMessage::CopyData(kiwi::frontend::CopyData {
        data: b"1\n",
    }));
    p.client(&cat(&[&data, &message(FrontendMessage::CopyDone)]))
        .unwrap();
    assert!(p.attached);
    p.serve(&cat(&[&complete("COPY 1"), &ready(Idle)]));
    assert!(
        !p.attached,
        "COPY data is part of its Query, not an open sequence"
    );
    assert!(!p.relay.server_awaits_copy_data());
}

/// A message type no logged-in client sends is refused before it reaches a server (forwarded,
/// its FATAL would come from a server already back in the pool, and the client would hang).
#[test]
fn an_unknown_message_type_is_a_violation() {
    let mut p = Pair::new(PoolMode::Transaction, false);
    assert!(p.client(&[b'z', 0, 0, 0, 4]).is_err());
    assert!(p.to_server.is_empty());
    let mut p = Pair::new(PoolMode::Session, false);
    assert!(
        p.client(&cat(&[&query("SELECT 1"), &[b'p', 0, 0, 0, 4]]))
            .is_err()
    );
}

/// A client that dies in COPY FROM STDIN leaves a server only CopyFail can free (reset.rs):
/// the relay knows when the server waits for copy data, and that an error ends the wait.
#[test]
fn copy_in_wait_ends_with_the_server_error() {
    let mut p = Pair::new(PoolMode::Session, false);
    p.client(&query("COPY t FROM STDIN")).unwrap();
    p.serve(&[b'G', 0, 0, 0, 7, 0, 0, 0]);
    assert!(p.relay.server_awaits_copy_data());
    let mut error = Vec::new();
    kiwi::backend::ErrorFields {
        fields: vec![(kiwi::backend::field::CODE, b"57014".as_slice())],
    }
    .encode_error(&mut error);
    p.serve(&error);
    assert!(!p.relay.server_awaits_copy_data());
    p.serve(&ready(Idle));
    assert!(!p.relay.server_awaits_copy_data());
}

#[test]
fn copy_out_streams_and_releases_at_the_end() {
    let mut p = Pair::new(PoolMode::Transaction, false);
    p.client(&query("COPY t TO STDOUT")).unwrap();
    let rows: Vec<u8> = (0..100)
        .flat_map(|_| vec![b'd', 0, 0, 0, 6, b'1', b'\n'])
        .collect();
    let reply = cat(&[
        &[b'H', 0, 0, 0, 7, 0, 0, 0],
        &rows,
        &[b'c', 0, 0, 0, 4],
        &complete("COPY 100"),
        &ready(Idle),
    ]);
    // Split anywhere: the relay forwards what it can and keeps the rest.
    let left = p.serve(&reply[..333]);
    assert!(p.attached);
    p.serve(&reply[333 - left..]);
    assert_eq!(p.to_client, reply);
    assert!(!p.attached);
}

#[test]
fn a_bare_begin_is_deferred_and_an_empty_transaction_needs_no_server() {
    let mut p = Pair::new(PoolMode::Transaction, false);
    p.client(&query("BEGIN")).unwrap();
    assert!(!p.attached);
    assert!(p.relay.deferred_begin());
    let mut expected = complete("BEGIN");
    expected.extend(ready(InTransaction));
    assert_eq!(p.to_client, expected);
    p.client(&query("COMMIT")).unwrap();
    assert!(!p.attached && !p.relay.deferred_begin());
    assert!(p.to_server.is_empty(), "nothing reached a server");
}

#[test]
fn a_deferred_begin_goes_ahead_of_the_first_statement() {
    let mut p = Pair::new(PoolMode::Transaction, false);
    p.client(&query("BEGIN")).unwrap();
    p.client(&query("SELECT 1")).unwrap();
    assert!(p.attached);
    assert_eq!(p.tx, InTransaction, "the session opened it on attach");
    assert!(!p.relay.deferred_begin());
    p.serve(&cat(&[&complete("SELECT 1"), &ready(InTransaction)]));
    assert!(p.attached);
}

#[test]
fn statement_pooling_refuses_a_transaction_block() {
    let mut p = Pair::new(PoolMode::Statement, false);
    p.client(&query("BEGIN")).unwrap();
    assert!(!p.attached);
    assert!(p.to_client.windows(5).any(|w| w == b"0A000"));
    assert!(p.to_client.ends_with(&ready(Idle)));
}

#[test]
fn a_tracked_set_follows_the_client_once_committed() {
    let mut p = Pair::new(PoolMode::Transaction, false);
    p.client(&query("BEGIN")).unwrap();
    p.client(&query("SET statement_timeout = '7s'")).unwrap();
    p.serve(&cat(&[&complete("SET"), &ready(InTransaction)]));
    assert_eq!(p.vars.get("statement_timeout"), None, "not before COMMIT");
    p.client(&query("COMMIT")).unwrap();
    p.serve(&cat(&[&complete("COMMIT"), &ready(Idle)]));
    assert_eq!(p.vars.get("statement_timeout"), Some(&b"7s"[..]));
}

#[test]
fn a_rolled_back_set_is_void() {
    let mut p = Pair::new(PoolMode::Transaction, false);
    p.client(&query("BEGIN")).unwrap();
    p.client(&query("SET statement_timeout = '7s'")).unwrap();
    p.serve(&cat(&[&complete("SET"), &ready(InTransaction)]));
    p.client(&query("ROLLBACK")).unwrap();
    p.serve(&cat(&[&complete("ROLLBACK"), &ready(Idle)]));
    assert_eq!(p.vars.get("statement_timeout"), None);
    assert!(!p.attached);
}

#[test]
fn an_autocommit_set_applies_at_once_and_reported_values_follow() {
    let mut p = Pair::new(PoolMode::Transaction, false);
    p.client(&query("SET application_name = 'x'")).unwrap();
    let mut status = Vec::new();
    ParameterStatus {
        name: b"application_name",
        value: b"x",
    }
    .encode(&mut status);
    p.serve(&cat(&[&status, &complete("SET"), &ready(Idle)]));
    assert_eq!(p.vars.get("application_name"), Some(&b"x"[..]));
    assert!(!p.relay.dirty(), "a tracked SET leaves nothing to discard");
}

#[test]
fn a_set_value_too_long_to_keep_marks_the_server_for_reset() {
    let mut p = Pair::new(PoolMode::Transaction, false);
    let long = "a".repeat(kiwi::var::MAX_VALUE_LEN + 1);
    p.client(&query(&format!("SET search_path = '{long}'")))
        .unwrap();
    p.serve(&complete("SET"));
    assert!(p.relay.dirty(), "the next client must not inherit it");
}

#[test]
fn an_untracked_set_marks_the_server_for_reset() {
    let mut p = Pair::new(PoolMode::Transaction, false);
    p.client(&query("SET enable_seqscan = off")).unwrap();
    p.serve(&complete("SET"));
    assert!(p.relay.dirty());
}

#[test]
fn named_statements_are_renamed_and_injected_where_missing() {
    let mut p = Pair::new(PoolMode::Transaction, true);
    // Parse + Sync with no server: answered by the pooler.
    p.client(&cat(&[
        &parse("s1", "SELECT 1"),
        &message(FrontendMessage::Sync),
    ]))
    .unwrap();
    assert!(!p.attached);
    assert_eq!(p.to_client, cat(&[&[b'1', 0, 0, 0, 4], &ready(Idle)]));
    p.to_client.clear();
    // Bind on a server that lacks it: our Close and Parse go first (the Close drops a stale
    // copy the server may still hold), their replies are swallowed.
    p.client(&cat(&[&bind("s1"), &message(FrontendMessage::Sync)]))
        .unwrap();
    assert!(p.attached);
    let tags: Vec<u8> = kiwi::header::Frames::new(&p.to_server, MAX_MESSAGE)
        .map(|f| f.unwrap().tag())
        .collect();
    assert_eq!(tags, b"CPBS");
    assert!(p.to_server.windows(8).any(|w| w == b"odyssey_"));
    assert!(
        !p.to_server.windows(3).any(|w| w == b"s1\0"),
        "the client's name never reaches a server"
    );
    p.serve(&cat(&[
        &[b'3', 0, 0, 0, 4],
        &[b'1', 0, 0, 0, 4],
        &[b'2', 0, 0, 0, 4],
        &ready(Idle),
    ]));
    assert_eq!(p.to_client, cat(&[&[b'2', 0, 0, 0, 4], &ready(Idle)]));
    assert!(!p.attached);
    assert_eq!(p.info.prepared.len(), 1, "the server has it now");
}

#[test]
fn close_and_deallocate_forget_only_the_clients_name() {
    let mut p = Pair::new(PoolMode::Transaction, true);
    p.client(&cat(&[
        &parse("s1", "SELECT 1"),
        &message(FrontendMessage::Sync),
    ]))
    .unwrap();
    p.to_client.clear();
    let close = message(FrontendMessage::Close(Close {
        target: Target::Statement,
        name: b"s1",
    }));
    p.client(&cat(&[&close, &message(FrontendMessage::Sync)]))
        .unwrap();
    assert_eq!(p.to_client, cat(&[&[b'3', 0, 0, 0, 4], &ready(Idle)]));
    assert!(p.to_server.is_empty());
    p.to_client.clear();
    p.client(&parse("s2", "SELECT 2")).unwrap();
    p.client(&message(FrontendMessage::Sync)).unwrap();
    p.serve(&cat(&[
        &[b'3', 0, 0, 0, 4],
        &[b'1', 0, 0, 0, 4],
        &ready(Idle),
    ]));
    assert!(!p.attached);
    p.to_client.clear();
    p.client(&query("DEALLOCATE s2")).unwrap();
    assert!(p.to_client.starts_with(&complete("DEALLOCATE")));
}

#[test]
fn the_statements_relay_is_made_when_needed_and_let_go_when_it_holds_nothing() {
    let mut p = Pair::new(PoolMode::Transaction, true);
    p.client(&query("SELECT 1")).unwrap();
    p.serve_all(&[&complete("SELECT 1"), &ready(Idle)]);
    p.relay.shed();
    assert!(p.relay.statements.is_none(), "simple queries need none");
    p.client(&cat(&[
        &parse("s1", "SELECT 1"),
        &message(FrontendMessage::Sync),
    ]))
    .unwrap();
    p.relay.shed();
    assert!(
        p.relay.statements.is_some(),
        "Parse counts not taken yet: kept"
    );
    assert_eq!(p.relay.take_parses().total, 1);
    p.relay.shed();
    assert!(p.relay.statements.is_some(), "it holds the name s1: kept");
    let close = message(FrontendMessage::Close(Close {
        target: Target::Statement,
        name: b"s1",
    }));
    p.client(&cat(&[&close, &message(FrontendMessage::Sync)]))
        .unwrap();
    p.relay.shed();
    assert!(p.relay.statements.is_none(), "nothing held: let go");
    // Made again, the same as before: s1 is unknown, s2 is mapped.
    p.to_client.clear();
    p.client(&cat(&[
        &parse("s2", "SELECT 2"),
        &message(FrontendMessage::Sync),
    ]))
    .unwrap();
    assert_eq!(p.to_client, cat(&[&[b'1', 0, 0, 0, 4], &ready(Idle)]));
    assert!(p.relay.statements.as_deref().is_some_and(|s| s.has_names()));
}

#[test]
fn a_bad_length_is_a_violation_and_terminate_ends() {
    let mut p = Pair::new(PoolMode::Transaction, false);
    assert!(p.client(&[b'Q', 0, 0, 0, 2]).is_err());
    let mut p = Pair::new(PoolMode::Transaction, false);
    p.client(&message(FrontendMessage::Terminate)).unwrap();
    assert!(p.terminated && !p.attached);
}

#[test]
fn a_long_message_streams_across_reads() {
    let mut p = Pair::new(PoolMode::Transaction, false);
    let long = query(&"x".repeat(10_000));
    let left = p.client(&long[..100]).unwrap();
    assert_eq!(left, 0, "the header is known: the body may stream");
    assert!(p.relay.busy());
    p.client(&long[100..]).unwrap();
    assert_eq!(p.to_server, long);
}

#[test]
fn a_function_call_that_streams_is_still_a_request() {
    // Found by the fuzz target: a FunctionCall split across reads, in the statements relay,
    // was forwarded without being counted, and the server went back before its answer.
    let mut p = Pair::new(PoolMode::Statement, true);
    p.client(&cat(&[
        &parse("s1", "SELECT 0"),
        &message(FrontendMessage::Sync),
    ]))
    .unwrap();
    let call = [b'F', 0, 0, 0, 14, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    p.client(&call[..10]).unwrap();
    p.client(&call[10..]).unwrap();
    assert!(p.attached, "the call is not answered yet");
    assert_eq!(p.relay.pending(), 1);
    p.serve(&cat(&[
        &[b'V', 0, 0, 0, 8, 0xff, 0xff, 0xff, 0xff],
        &ready(Idle),
    ]));
    assert!(!p.attached);
}

fn sent_text(p: &Pair) -> String {
    String::from_utf8_lossy(&p.to_server).into_owned()
}

fn error_of(code: &str) -> Vec<u8> {
    let mut error = Vec::new();
    kiwi::backend::ErrorFields {
        fields: vec![(kiwi::backend::field::CODE, code.as_bytes())],
    }
    .encode_error(&mut error);
    error
}

/// SQL PREPARE in transaction pooling: the client's name never reaches a server, the
/// statement follows the client to a server that lacks it (prepared in the same Query as the
/// EXECUTE), and neither leaves the server dirty.
#[test]
fn sql_prepare_and_execute_map_the_clients_name() {
    let mut p = Pair::new(PoolMode::Transaction, true);
    p.client(&query("PREPARE q1 (int) AS select $1")).unwrap();
    let sent = sent_text(&p);
    assert!(sent.contains("PREPARE odyssey_"), "{sent}");
    assert!(sent.contains(" (int) AS select $1"), "{sent}");
    assert!(!sent.contains("q1"), "{sent}");
    p.serve(&cat(&[&complete("PREPARE"), &ready(Idle)]));
    assert_eq!(p.to_client, cat(&[&complete("PREPARE"), &ready(Idle)]));
    assert!(
        !p.attached,
        "our PREPARE leaves no state: the server goes back"
    );
    assert_eq!(p.releases, 1);
    assert!(!p.relay.dirty());
    assert_eq!(p.info.prepared.len(), 1);

    // The same server: only the name changes.
    p.to_server.clear();
    p.to_client.clear();
    p.client(&query("EXECUTE q1(5)")).unwrap();
    let sent = sent_text(&p);
    assert!(sent.contains("EXECUTE odyssey_"), "{sent}");
    assert!(!sent.contains("PREPARE"), "{sent}");
    assert!(sent.ends_with("(5)\0"), "{sent}");
    p.serve(&cat(&[&complete("SELECT 1"), &ready(Idle)]));
    assert_eq!(p.to_client, cat(&[&complete("SELECT 1"), &ready(Idle)]));

    // A server without it: prepared in the same Query, its CommandComplete swallowed.
    p.info.prepared.clear();
    p.to_server.clear();
    p.to_client.clear();
    p.client(&query("execute Q1 (6)")).unwrap();
    let sent = sent_text(&p);
    assert!(sent.contains("PREPARE odyssey_"), "{sent}");
    assert!(sent.contains("; EXECUTE odyssey_"), "{sent}");
    p.serve(&cat(&[
        &complete("PREPARE"),
        &complete("SELECT 1"),
        &ready(Idle),
    ]));
    assert_eq!(p.to_client, cat(&[&complete("SELECT 1"), &ready(Idle)]));
    assert!(!p.attached);
    assert_eq!(p.releases, 3);
    assert_eq!(p.info.prepared.len(), 1);
}

/// A name the client has is refused as PostgreSQL refuses it; a PREPARE the server refused
/// leaves no name behind; DEALLOCATE frees the name.
#[test]
fn sql_prepare_names_live_and_die_as_in_postgresql() {
    let mut p = Pair::new(PoolMode::Transaction, true);
    p.client(&query("PREPARE bad AS selec 1")).unwrap();
    p.serve(&cat(&[&error_of("42601"), &ready(Idle)]));
    assert!(p.to_client.starts_with(&error_of("42601")));
    assert_eq!(p.info.prepared.len(), 0, "the server lacks it");
    p.to_server.clear();
    p.to_client.clear();
    p.client(&query("PREPARE bad AS select 1")).unwrap();
    assert!(
        sent_text(&p).contains("PREPARE odyssey_"),
        "sent again, no 42P05"
    );
    p.serve(&cat(&[&complete("PREPARE"), &ready(Idle)]));
    p.to_server.clear();
    p.to_client.clear();
    p.client(&query("PREPARE bad AS select 2")).unwrap();
    assert!(p.to_server.is_empty());
    let text = String::from_utf8_lossy(&p.to_client).into_owned();
    assert!(text.contains("42P05"), "{text}");
    assert!(
        text.contains("prepared statement \"bad\" already exists"),
        "{text}"
    );
    assert!(p.to_client.ends_with(&ready(Idle)));
    p.to_client.clear();
    p.client(&query("DEALLOCATE bad")).unwrap();
    assert!(p.to_client.starts_with(&complete("DEALLOCATE")));
    p.to_client.clear();
    p.client(&query("PREPARE bad AS select 1")).unwrap();
    assert_eq!(
        p.to_client,
        cat(&[&complete("PREPARE"), &ready(Idle)]),
        "the server has that statement: answered here"
    );
    assert!(p.to_server.is_empty());
}

/// A server terminated right after its answer (`pg_terminate_backend`, a shutdown) may send
/// its FATAL in the same read as the ReadyForQuery that ends the client's transaction: the
/// FATAL is not the client's, who is idle now (asyncpg, for one, then fails its next query
/// with "another operation is in progress"). The relay stops at that ReadyForQuery; the
/// unread rest makes the session close the server instead of pooling it.
#[test]
fn bytes_after_the_releasing_ready_for_query_do_not_reach_the_client() {
    let fatal = {
        let mut out = vec![b'E'];
        let body = b"SFATAL\0C57P01\0Mterminating connection due to administrator command\0\0";
        out.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
        out.extend_from_slice(body);
        out
    };
    let mut p = Pair::new(PoolMode::Transaction, false);
    p.client(&query("SELECT 1")).unwrap();
    let answer = cat(&[&complete("SELECT 1"), &ready(Idle)]);
    let left = p.serve_all(&[&answer, &fatal]);
    assert_eq!(left, fatal.len(), "the FATAL is left unread");
    assert_eq!(p.to_client, answer, "the client gets its answer only");
    assert_eq!((p.attached, p.releases), (false, 1));

    // In session pooling the client owns the server: it hears what the server says.
    let mut p = Pair::new(PoolMode::Session, false);
    p.client(&query("SELECT 1")).unwrap();
    assert_eq!(p.serve_all(&[&answer, &fatal]), 0);
    assert_eq!(p.to_client, cat(&[&answer, &fatal]));
}
