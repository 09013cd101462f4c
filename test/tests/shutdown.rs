//! SIGTERM: idle clients get the graceful-shutdown FATAL, a running query finishes first, and
//! the process exits 0.

use std::thread;
use std::time::{Duration, Instant};

use odyssey_test::pooler::config;
use odyssey_test::raw::RawConn;
use odyssey_test::{Cluster, ClusterOptions, Pooler, Signal};

/// A raw client logged in through the pooler, at its first ReadyForQuery.
fn login(pooler: &Pooler) -> RawConn {
    let mut conn = RawConn::connect(pooler.port(), Duration::from_secs(5)).unwrap();
    conn.startup(&[("user", "postgres"), ("database", "postgres")])
        .unwrap();
    let login = conn.until_ready().unwrap();
    assert_eq!(login.last().map(|m| m.tag), Some(b'Z'));
    conn
}

#[test]
fn sigterm_drains_clients_and_exits_zero() {
    let cluster = Cluster::start(ClusterOptions::default()).expect("cluster");
    let mut pooler = Pooler::start(&config(
        cluster.port(),
        r#"
graceful_shutdown_timeout_ms 10000
database default {
	user default {
		authentication "none"
		storage "postgres_server"
		pool "session"
	}
}
"#,
    ))
    .expect("pooler");

    let mut idle = login(&pooler);

    // Raw, because the Rust client may report the FATAL that follows the result in the same
    // read instead of the result itself.
    let mut busy = login(&pooler);
    let mut query = vec![b'Q'];
    let sql = b"SELECT pg_sleep(2)::text\0";
    query.extend_from_slice(&(4 + sql.len() as u32).to_be_bytes());
    query.extend_from_slice(sql);
    busy.send(&query).unwrap();
    let sleeper = thread::spawn(move || {
        let reply = busy.until_ready().unwrap();
        let after = busy.recv().unwrap();
        (reply, after)
    });
    thread::sleep(Duration::from_millis(500));
    let term = Instant::now();
    pooler.signal(Signal::Term).unwrap();

    let fatal = idle.recv().unwrap().expect("a message before the close");
    let (code, msg) = fatal.error().expect("an ErrorResponse");
    assert_eq!(code, "08006");
    assert!(msg.contains("Odyssey is gracefully shutting down"), "{msg}");

    let (reply, after) = sleeper.join().unwrap();
    let tags: Vec<u8> = reply.iter().map(|m| m.tag).collect();
    assert_eq!(
        tags,
        b"TDCZ",
        "the running query was cut: {:?}\n{}",
        reply.iter().map(|m| m.error()).collect::<Vec<_>>(),
        pooler.log()
    );
    // Then it is drained like the idle one.
    let fatal = after.and_then(|m| m.error());
    assert_eq!(fatal.map(|(code, _)| code).as_deref(), Some("08006"));
    let status = pooler.wait_exit(Duration::from_secs(8));
    assert!(
        status.is_some_and(|s| s.success()),
        "exit status {status:?} {:?} after SIGTERM\n{}",
        term.elapsed(),
        pooler.log()
    );
}
