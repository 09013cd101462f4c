//! Oversized and malformed input before and after login, in transaction pooling: the offending
//! client gets an error or is closed, a client beside it is untouched, and the pooler's memory
//! does not follow the length a message claims.
//!
//! Before login: 10,000 startup parameters. After login: a length below 4, a length of almost
//! 1 GiB followed by a trickle, an unknown message type, and a storm of 20,000 Syncs (each
//! answered with ReadyForQuery, in order).

use std::io::ErrorKind;
use std::time::Instant;

use odyssey_test::Error;
use odyssey_test::raw::RawConn;
use odyssey_test::tx::{RAW_TIMEOUT, TxPoolConfig, TxSetup, bodiless, simple_query};

const SYNCS: usize = 20_000;

fn setup() -> TxSetup {
    TxSetup::start(&TxPoolConfig::new("transaction", 2), "").expect("setup")
}

/// Reads until the pooler closes the connection; the SQLSTATEs of the errors it sent first.
/// Fails when it stays open past the socket timeout.
fn errors_then_close(conn: &mut RawConn) -> Vec<String> {
    let mut codes = Vec::new();
    loop {
        match conn.recv() {
            Ok(Some(m)) => codes.extend(m.error().map(|(code, _)| code)),
            Ok(None) => return codes,
            Err(Error::Io { source, .. })
                if matches!(source.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) =>
            {
                panic!("still open after bad input")
            }
            Err(_) => return codes, // a reset is a close too
        }
    }
}

/// The pooler's resident memory, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// A client beside the offenders still gets answers.
fn bystander_answers(bystander: &mut RawConn) {
    let got = simple_query(bystander, "SELECT 1").unwrap();
    assert_eq!(got.last().map(|m| m.tag), Some(b'Z'));
    assert!(got.iter().all(|m| m.error().is_none()));
}

#[test]
fn ten_thousand_startup_parameters_are_refused() {
    let setup = setup();
    let mut bystander = setup.raw().unwrap();
    let names: Vec<String> = (0..10_000).map(|n| format!("p{n}")).collect();
    let mut params: Vec<(&str, &str)> = vec![("user", "postgres"), ("database", "postgres")];
    params.extend(names.iter().map(|n| (n.as_str(), "v")));
    let mut conn = RawConn::connect(setup.pooler.port(), RAW_TIMEOUT).unwrap();
    // The packet is far past the startup limit: refused from its length, maybe mid-write.
    let _ = conn.startup(&params);
    errors_then_close(&mut conn);
    bystander_answers(&mut bystander);
}

#[test]
fn bad_messages_after_login_end_only_their_client() {
    let setup = setup();
    let mut bystander = setup.raw().unwrap();
    let cases: [(&str, Vec<u8>); 3] = [
        ("length below 4", vec![b'Q', 0, 0, 0, 3]),
        ("unknown type", vec![b'z', 0, 0, 0, 4]),
        (
            "length past the limit",
            vec![b'Q', 0x7f, 0xff, 0xff, 0xff, b'S'],
        ),
    ];
    for (what, bytes) in cases {
        let mut conn = setup.raw().unwrap();
        conn.send(&bytes).unwrap();
        let codes = errors_then_close(&mut conn);
        assert!(codes.len() <= 1, "{what}: {codes:?}");
        bystander_answers(&mut bystander);
    }
}

#[test]
fn a_claimed_gigabyte_does_not_grow_memory() {
    let setup = setup();
    let pid = setup.pooler.pid();
    let mut bystander = setup.raw().unwrap();
    bystander_answers(&mut bystander);
    let before = rss_kib(pid);
    // Just under 1 GiB claimed (the protocol's maximum), then a trickle of the body.
    let mut conn = setup.raw().unwrap();
    conn.send(&[b'Q', 0x3f, 0xff, 0xff, 0xf0]).unwrap();
    for _ in 0..16 {
        if conn.send(&[b'x'; 4096]).is_err() {
            break; // already refused
        }
    }
    // Within the protocol's limit, so the pooler streams the body on (to a server) rather
    // than refusing it; what matters is that it does not allocate for the claim.
    let after = rss_kib(pid);
    assert!(
        after < before + 16 * 1024,
        "RSS grew from {before} KiB to {after} KiB after a 1 GiB claim"
    );
    bystander_answers(&mut bystander);
    drop(conn);
    eprintln!("1 GiB claim: RSS {before} -> {after} KiB");
}

#[test]
fn a_sync_storm_is_answered_in_order() {
    let setup = setup();
    let mut conn = setup.raw().unwrap();
    let mut storm = Vec::new();
    for _ in 0..SYNCS {
        bodiless(&mut storm, b'S');
    }
    let began = Instant::now();
    let mut writer = conn.try_clone().unwrap();
    let sender = std::thread::spawn(move || writer.send(&storm));
    let mut readies = 0;
    while readies < SYNCS {
        let m = conn.recv().unwrap().expect("answer");
        assert_eq!(m.tag, b'Z', "only ReadyForQuery, got {:?}", m.tag as char);
        readies += 1;
    }
    sender.join().unwrap().unwrap();
    let got = simple_query(&mut conn, "SELECT 1").unwrap();
    assert_eq!(got.last().map(|m| m.tag), Some(b'Z'));
    eprintln!("{SYNCS} Syncs answered in {:?}", began.elapsed());
}
