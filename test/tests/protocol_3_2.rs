//! Protocol 3.2 towards clients (issue 18): a client that asks for 3.2 gets it without a
//! NegotiateProtocolVersion, even though the PostgreSQL behind speaks 3.0, and its
//! BackendKeyData carries a 32-byte secret; a CancelRequest with that long key cancels the
//! client's query, one with a wrong key cancels nothing. 3.0 clients keep 4-byte keys; 3.1
//! (never defined) and newer minors are negotiated down, and `_pq_` options are named back.

use std::time::{Duration, Instant};

use kiwi::backend::{BackendKeyData, BackendMessage, NegotiateProtocolVersion};
use kiwi::startup::{CancelRequest, ProtocolVersion, StartupPacket};
use odyssey_test::pooler::config;
use odyssey_test::raw::{Message, RawConn};
use odyssey_test::tx::{RAW_TIMEOUT, first_values, send_query, simple_query, tags};
use odyssey_test::{Cluster, ClusterOptions, Pooler};

const RULES: &str = r#"
database default {
	user default {
		authentication "none"
		storage "postgres_server"
		pool "transaction"
		pool_size 2
	}
}
"#;

const SUPERUSER: &str = "postgres";

/// What a login asking for `version` (with `extra` parameters) saw before its first
/// ReadyForQuery, and the connection.
fn login(port: u16, version: ProtocolVersion, extra: &[(&str, &str)]) -> (RawConn, Vec<Message>) {
    let mut conn = RawConn::connect(port, RAW_TIMEOUT).expect("connect");
    let mut params = vec![("user", SUPERUSER), ("database", "postgres")];
    params.extend_from_slice(extra);
    conn.startup_version(version, &params).expect("startup");
    let seen = conn.until_ready().expect("login");
    assert_eq!(seen.last().map(|m| m.tag), Some(b'Z'), "{}", tags(&seen));
    (conn, seen)
}

/// The (pid, secret) of the login's BackendKeyData.
fn key(seen: &[Message]) -> (i32, Vec<u8>) {
    let m = seen.iter().find(|m| m.tag == b'K').expect("BackendKeyData");
    let k = BackendKeyData::decode(&m.body).expect("decode BackendKeyData");
    (k.pid, k.key.to_vec())
}

/// The newest minor and the options of the login's NegotiateProtocolVersion, if it had one.
fn negotiated(seen: &[Message]) -> Option<(u32, Vec<String>)> {
    let m = seen.iter().find(|m| m.tag == b'v')?;
    let Ok(BackendMessage::NegotiateProtocolVersion(n)) = m.decode() else {
        panic!("undecodable NegotiateProtocolVersion");
    };
    let NegotiateProtocolVersion {
        newest_minor,
        unrecognized,
    } = n;
    let names = unrecognized
        .iter()
        .map(|o| String::from_utf8_lossy(o).into_owned())
        .collect();
    Some((newest_minor, names))
}

fn cancel(port: u16, pid: i32, secret: &[u8]) {
    let mut conn = RawConn::connect(port, RAW_TIMEOUT).expect("connect for cancel");
    let mut out = Vec::new();
    StartupPacket::Cancel(CancelRequest { pid, key: secret }).encode(&mut out);
    conn.send(&out).expect("send CancelRequest");
    // The pooler closes the connection once the cancel is handled.
    let _ = conn.recv();
}

/// Runs `pg_sleep(secs)` on `conn`, cancelling it with (`pid`, `secret`) after 300 ms;
/// the SQLSTATE it ended with (None: it completed) and how long it took.
fn sleep_cancelled(
    port: u16,
    conn: &mut RawConn,
    (pid, secret): (i32, &[u8]),
    secs: u32,
) -> (Option<String>, Duration) {
    let started = Instant::now();
    send_query(conn, &format!("SELECT pg_sleep({secs})")).expect("send");
    std::thread::sleep(Duration::from_millis(300));
    cancel(port, pid, secret);
    let reply = conn.until_ready().expect("reply");
    let code = reply.iter().find_map(|m| m.error()).map(|(code, _)| code);
    (code, started.elapsed())
}

#[test]
fn a_3_2_client_gets_3_2_and_a_long_key_that_cancels() {
    let cluster = Cluster::start(ClusterOptions::default()).expect("cluster");
    let pooler = Pooler::start(&config(cluster.port(), RULES)).expect("pooler");
    let port = pooler.port();

    let (mut conn, seen) = login(port, ProtocolVersion::V3_2, &[]);
    assert_eq!(negotiated(&seen), None, "3.2 needs no negotiation");
    let (pid, secret) = key(&seen);
    assert_eq!(
        secret.len(),
        32,
        "3.2 clients get PostgreSQL 18's 32-byte secret"
    );
    let rows = simple_query(&mut conn, "SELECT 41 + 1").expect("query");
    assert_eq!(first_values(&rows), ["42"]);

    // A wrong key (one bit off, or cut to 4 bytes) cancels nothing: the sleep completes.
    let mut wrong = secret.clone();
    wrong[31] ^= 1;
    let (code, took) = sleep_cancelled(port, &mut conn, (pid, &wrong), 1);
    assert_eq!(code, None, "a wrong long key cancelled the query");
    assert!(took >= Duration::from_secs(1), "{took:?}");
    let (code, _) = sleep_cancelled(port, &mut conn, (pid, &secret[..4]), 1);
    assert_eq!(
        code, None,
        "a 4-byte prefix of the long key cancelled the query"
    );

    // The right key cancels at once.
    let (code, took) = sleep_cancelled(port, &mut conn, (pid, &secret), 30);
    assert_eq!(
        code.as_deref(),
        Some("57014"),
        "the long key did not cancel"
    );
    assert!(took < Duration::from_secs(5), "cancel took {took:?}");
    let rows = simple_query(&mut conn, "SELECT 'still here'").expect("after the cancel");
    assert_eq!(first_values(&rows), ["still here"]);
}

#[test]
fn older_and_newer_minors_and_pq_options_are_negotiated() {
    let cluster = Cluster::start(ClusterOptions::default()).expect("cluster");
    let pooler = Pooler::start(&config(cluster.port(), RULES)).expect("pooler");
    let port = pooler.port();

    let (mut conn, seen) = login(port, ProtocolVersion::V3_0, &[]);
    assert_eq!(negotiated(&seen), None);
    let (pid, secret) = key(&seen);
    assert_eq!(secret.len(), 4, "3.0 clients keep 4-byte secrets");
    let (code, _) = sleep_cancelled(port, &mut conn, (pid, &secret), 30);
    assert_eq!(
        code.as_deref(),
        Some("57014"),
        "the short key did not cancel"
    );

    let reserved = ProtocolVersion { major: 3, minor: 1 };
    let (_, seen) = login(port, reserved, &[]);
    assert_eq!(negotiated(&seen), Some((0, vec![])), "3.1 → 3.0");
    assert_eq!(key(&seen).1.len(), 4);

    let future = ProtocolVersion { major: 3, minor: 7 };
    let (mut conn, seen) = login(port, future, &[("_pq_.test_option", "on")]);
    assert_eq!(
        negotiated(&seen),
        Some((2, vec!["_pq_.test_option".to_string()])),
        "3.7 → 3.2, the unknown option named back"
    );
    assert_eq!(key(&seen).1.len(), 32);
    let rows = simple_query(&mut conn, "SELECT current_user").expect("query");
    assert_eq!(first_values(&rows), [SUPERUSER]);
}
