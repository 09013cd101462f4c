//! Tests of `frontend::pstmt`: statement bookkeeping, the reply queue, stale copies.

use super::*;
use crate::server::statements::ServerStatements;

fn statements() -> Statements {
    Statements::new(Arc::default())
}

/// The id `s` gives `query` (no parameter types).
fn id(s: &Statements, query: &str) -> StatementId {
    s.registry.intern(query.as_bytes(), &[])
}

fn parse_body(name: &str, query: &str) -> Vec<u8> {
    let mut out = Vec::new();
    Parse {
        name: name.as_bytes(),
        query: query.as_bytes(),
        param_types: vec![],
    }
    .encode(&mut out);
    out[5..].to_vec()
}

fn bind_body(stmt: &str) -> Vec<u8> {
    let mut out = Vec::new();
    Bind {
        portal: b"",
        statement: stmt.as_bytes(),
        param_formats: vec![],
        params: vec![],
        result_formats: vec![],
    }
    .encode(&mut out);
    out[5..].to_vec()
}

#[test]
fn parse_once_per_server_and_inject_where_missing() {
    let mut s = statements();
    let mut out = Vec::new();
    let key = s
        .parse(&parse_body("s1", "select 1"), |_| false, &mut out)
        .unwrap()
        .unwrap()
        .key;
    assert!(out.windows(8).any(|w| w == b"odyssey_"), "renamed");
    assert_eq!(s.expect.pop_front(), Some(Expect::InjectedClose));
    assert_eq!(s.expect.pop_front(), Some(Expect::Parse(Some(key))));
    // Another server that lacks it: Bind injects the Parse first, a Close ahead of it.
    out.clear();
    let injected = s.bind(&bind_body("s1"), |_| false, &mut out).unwrap();
    assert_eq!(injected.map(|id| id.key), Some(key));
    assert_eq!(tags(&out), b"CPB");
    assert_eq!(
        s.expect.iter().copied().collect::<Vec<_>>(),
        [
            Expect::InjectedClose,
            Expect::Injected(key),
            Expect::Bind(Some(key))
        ]
    );
    // The CloseComplete and ParseComplete are swallowed, the BindComplete forwarded.
    assert_eq!(
        on_server_message(&mut s.expect, b'3', |_| {}),
        Verdict::Swallow
    );
    assert_eq!(
        on_server_message(&mut s.expect, b'1', |_| {}),
        Verdict::Swallow
    );
    assert_eq!(
        on_server_message(&mut s.expect, b'2', |_| {}),
        Verdict::Forward
    );
    // A server that has it: a second Parse is answered by us.
    out.clear();
    s.parse(&parse_body("s2", "select 1"), |_| true, &mut out)
        .unwrap();
    assert!(out.is_empty());
    let mut replies = Vec::new();
    take_synthetic(&mut s.expect, &mut replies);
    assert_eq!(replies, synthetic(b'1'));
}

#[test]
fn an_error_skips_owed_replies_up_to_sync_and_reports_lost_statements() {
    let mut s = statements();
    let mut out = Vec::new();
    let key = s
        .parse(&parse_body("bad", "selec 1"), |_| false, &mut out)
        .unwrap()
        .unwrap()
        .key;
    s.bind(&bind_body("bad"), |_| true, &mut out).unwrap();
    s.expect.push_back(Expect::Execute);
    s.expect.push_back(Expect::Sync);
    let mut lost = Vec::new();
    assert_eq!(
        on_server_message(&mut s.expect, b'E', |k| lost.push(k)),
        Verdict::Forward
    );
    assert_eq!(lost, [key]);
    assert_eq!(s.expect.iter().copied().collect::<Vec<_>>(), [Expect::Sync]);
    on_server_message(&mut s.expect, b'Z', |_| {});
    assert!(!s.owed());
}

#[test]
fn least_recently_used_statements_are_evicted_past_the_cap() {
    let c = statements();
    let (one, two, three) = (id(&c, "select 1"), id(&c, "select 2"), id(&c, "select 3"));
    let mut s = ServerStatements::default();
    s.insert(one.clone(), 2);
    s.insert(two.clone(), 2);
    assert!(s.contains(&one.key), "1 is used again: 2 is now the oldest");
    s.insert(three, 2);
    assert!(s.contains(&two.key), "still usable until deallocated");
    assert_eq!(s.take_evicted(), [two.key]);
    assert!(!s.contains(&two.key));
    assert_eq!(s.len(), 2);
}

#[test]
fn close_of_a_named_statement_is_answered_by_the_pooler() {
    let mut s = statements();
    let mut out = Vec::new();
    s.parse(&parse_body("s1", "select 1"), |_| false, &mut out)
        .unwrap();
    s.expect.clear();
    out.clear();
    let mut close = Vec::new();
    Close {
        target: Target::Statement,
        name: b"s1",
    }
    .encode(&mut close);
    s.close(&close[5..], &mut out).unwrap();
    assert!(out.is_empty(), "nothing sent to the server");
    assert_eq!(s.expect.front(), Some(&Expect::Synthetic(b'3')));
    out.clear();
    s.bind(&bind_body("s1"), |_| true, &mut out).unwrap();
    assert!(
        out.windows(2).any(|w| w == b"s1"),
        "an unknown name goes through as is"
    );
}

/// The tags of the messages in `buf`.
fn tags(buf: &[u8]) -> Vec<u8> {
    let mut tags = Vec::new();
    let mut pos = 0;
    while let Some(&[tag, a, b, c, d]) = buf.get(pos..pos + 5) {
        tags.push(tag);
        pos += 1 + u32::from_be_bytes([a, b, c, d]) as usize;
    }
    tags
}

/// Server bytes for `msgs` (tag, body), and where each message starts.
fn server_bytes(msgs: &[(u8, &[u8])]) -> (Vec<u8>, Vec<(u8, usize)>) {
    let mut buf = Vec::new();
    let mut starts = Vec::new();
    for &(tag, body) in msgs {
        starts.push((tag, buf.len()));
        buf.push(tag);
        buf.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
        buf.extend_from_slice(body);
    }
    (buf, starts)
}

const STALE_PLAN: &[u8] = b"SERROR\0C0A000\0Mcached plan must not change result type\0\0";
const OTHER_ERROR: &[u8] = b"SERROR\0C22012\0Mdivision by zero\0\0";

/// Regression: PostgreSQL flushes the ErrorResponse of a stale plan at once and the
/// ReadyForQuery only after the Sync, so a client prepares again while the server, still
/// attached, holds its stale copy. Our Parse must drop that copy first (Close ahead), or it
/// fails with "already exists".
#[test]
fn a_stale_copy_is_closed_ahead_of_the_next_parse() {
    let mut s = statements();
    let mut server = ServerStatements::default();
    let mut out = Vec::new();
    let sent = s
        .parse(&parse_body("s1", "select * from t"), |_| false, &mut out)
        .unwrap()
        .unwrap();
    let key = sent.key;
    server.insert(sent, 0);
    s.expect.clear();
    // The client's Bind meets the stale copy; only the ErrorResponse is in so far.
    out.clear();
    s.bind(&bind_body("s1"), |k| server.contains(&k), &mut out)
        .unwrap();
    assert_eq!(tags(&out), b"B", "the server has it: Bind alone");
    s.expect.push_back(Expect::Execute);
    s.expect.push_back(Expect::Sync);
    let (buf, starts) = server_bytes(&[(b'E', STALE_PLAN)]);
    let replies = filter_replies(&mut s, &buf, &starts, &mut server);
    assert_eq!(replies, buf, "the error goes to the client");
    assert!(!server.contains(&key), "the stale copy is not used again");
    // The client prepares again at once, the ReadyForQuery still owed.
    out.clear();
    let sent = s
        .parse(
            &parse_body("s2", "select * from t"),
            |k| server.contains(&k),
            &mut out,
        )
        .unwrap();
    let sent = sent.unwrap();
    assert_eq!(sent.key, key);
    assert_eq!(tags(&out), b"CP", "Close of the stale copy, then Parse");
    server.insert(sent, 0);
    assert_eq!(
        server.take_evicted(),
        [],
        "closed ahead: no DEALLOCATE of the new copy at the reset"
    );
    // ReadyForQuery, CloseComplete (swallowed), ParseComplete (forwarded).
    let (buf, starts) = server_bytes(&[(b'Z', b"I"), (b'3', b""), (b'1', b"")]);
    let replies = filter_replies(&mut s, &buf, &starts, &mut server);
    assert_eq!(tags(&replies), b"Z1");
    assert!(!s.owed());
}

#[test]
fn a_stale_copy_met_by_a_describe_is_not_used_again() {
    let mut s = statements();
    let mut server = ServerStatements::default();
    let mut out = Vec::new();
    let sent = s
        .parse(&parse_body("s1", "select * from t"), |_| true, &mut out)
        .unwrap();
    assert!(sent.is_none(), "the server has it: no Parse sent");
    let held = id(&s, "select * from t");
    let key = held.key;
    server.insert(held, 0);
    let mut describe = Vec::new();
    Describe {
        target: Target::Statement,
        name: b"s1",
    }
    .encode(&mut describe);
    s.describe(&describe[5..], |k| server.contains(&k), &mut out)
        .unwrap();
    s.expect.push_back(Expect::Sync);
    // ParseComplete (ours), ParameterDescription, then the error.
    let (buf, starts) = server_bytes(&[(b't', b"\0\0"), (b'E', STALE_PLAN), (b'Z', b"I")]);
    let replies = filter_replies(&mut s, &buf, &starts, &mut server);
    assert_eq!(tags(&replies), b"1tEZ");
    assert!(!server.contains(&key));
    assert_eq!(server.take_evicted(), [key], "deallocated at the reset");
}

#[test]
fn only_a_stale_plan_error_marks_a_copy_stale() {
    let mut s = statements();
    let mut server = ServerStatements::default();
    let mut out = Vec::new();
    s.parse(&parse_body("s1", "select 1/0"), |_| true, &mut out)
        .unwrap();
    let held = id(&s, "select 1/0");
    let key = held.key;
    server.insert(held, 0);
    s.expect.clear();
    s.bind(&bind_body("s1"), |k| server.contains(&k), &mut out)
        .unwrap();
    s.expect.push_back(Expect::Sync);
    let (buf, starts) = server_bytes(&[(b'E', OTHER_ERROR), (b'Z', b"I")]);
    filter_replies(&mut s, &buf, &starts, &mut server);
    assert!(server.contains(&key));
    assert_eq!(server.take_evicted(), []);
}

#[test]
fn a_statement_stale_twice_is_deallocated_once() {
    let c = statements();
    let (seven, eight) = (id(&c, "select 7"), id(&c, "select 8"));
    let mut server = ServerStatements::default();
    server.insert(seven.clone(), 1);
    server.insert(eight.clone(), 1);
    server.mark_stale(eight.key);
    server.mark_stale(eight.key);
    server.mark_stale(seven.key);
    let mut due = server.take_evicted();
    due.sort();
    let mut want = [seven.key, eight.key];
    want.sort();
    assert_eq!(due, want);
    assert!(server.is_empty());
}

/// Two texts whose hashes collide get different server-side names; the same text keeps its
/// name, whichever client prepares it.
#[test]
fn colliding_texts_get_different_server_names() {
    let registry = Arc::new(StatementRegistry::default());
    let (mut a, mut b) = (
        Statements::new(registry.clone()),
        Statements::new(registry.clone()),
    );
    let hash = registry.intern(b"select 1", &[]).key;
    // Another text with the same hash, prepared first (and still held).
    let other = registry.intern_at(hash, b"select 2", &[]);
    assert_eq!(other.key, hash);
    let mut out = Vec::new();
    let first = a
        .parse(&parse_body("s1", "select 1"), |_| false, &mut out)
        .unwrap()
        .unwrap();
    assert_ne!(first.key, other.key);
    assert_ne!(server_name(first.key), server_name(other.key));
    assert!(
        out.windows(24)
            .any(|w| w == server_name(first.key).as_bytes()),
        "the Parse sent uses the new name"
    );
    let again = b
        .parse(&parse_body("q", "select 1"), |_| false, &mut out)
        .unwrap()
        .unwrap();
    assert_eq!(again.key, first.key, "the same text, the same name");
}
