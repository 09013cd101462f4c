//! The first login of a route needs a server (to learn the parameters clients are told). When
//! none can be had, the client must get an error, and the instance must count it out exactly
//! once. Regression: the counter was decremented twice per failed setup and wrapped, after
//! which the global `client_max` refused every client and SIGTERM never saw zero clients
//! (a log said `clients 4294967288` after a driver's test suite).

use std::time::Duration;

use odyssey_test::clients::free_port;
use odyssey_test::pooler::config;
use odyssey_test::raw::RawConn;
use odyssey_test::{Cluster, ClusterOptions, Pooler, Signal};

/// A raw login to `database`; the messages up to the first ReadyForQuery or error.
fn login(pooler: &Pooler, database: &str) -> Vec<odyssey_test::raw::Message> {
    let mut conn = RawConn::connect(pooler.port(), Duration::from_secs(5)).expect("connect");
    conn.startup(&[("user", "postgres"), ("database", database)])
        .expect("startup");
    let mut seen = Vec::new();
    while let Ok(Some(m)) = conn.recv() {
        let last = m.tag == b'Z' || m.tag == b'E';
        seen.push(m);
        if last {
            break;
        }
    }
    seen
}

#[test]
fn a_failed_setup_tells_the_client_and_counts_it_out_once() {
    let cluster = Cluster::start(ClusterOptions::default()).expect("cluster");
    let dead = free_port().expect("a free port");
    let mut pooler = Pooler::start(&config(
        cluster.port(),
        &format!(
            r#"
client_max 3
graceful_shutdown_timeout_ms 20000
storage "nowhere" {{
	type "remote"
	host "127.0.0.1"
	port {dead}
}}
database "dead" {{
	user default {{
		authentication "none"
		storage "nowhere"
		pool "transaction"
		pool_timeout 2000
	}}
}}
database default {{
	user default {{
		authentication "none"
		storage "postgres_server"
		pool "transaction"
	}}
}}
"#
        ),
    ))
    .expect("pooler");

    // More failed setups than client_max: a leak of even one count per failure shows.
    for round in 0..5 {
        let seen = login(&pooler, "dead");
        let error = seen.iter().find_map(|m| m.error());
        let (code, message) = error.unwrap_or_else(|| {
            panic!(
                "round {round}: no error for a setup without a server: {:?}\n{}",
                seen.iter().map(|m| m.tag as char).collect::<String>(),
                pooler.log()
            )
        });
        assert_eq!(code, "08006", "{message}");
        assert!(message.contains("remote server"), "{message}");
    }

    // The healthy route still admits clients: nothing is counted that is not there.
    let seen = login(&pooler, "postgres");
    assert_eq!(
        seen.last().map(|m| m.tag),
        Some(b'Z'),
        "refused after failed setups: {:?}\n{}",
        seen.iter().map(|m| m.error()).collect::<Vec<_>>(),
        pooler.log()
    );
    drop(seen);

    // And with no client left, a graceful shutdown finishes at once.
    pooler.signal(Signal::Term).expect("SIGTERM");
    let status = pooler.wait_exit(Duration::from_secs(10));
    assert!(
        status.is_some_and(|s| s.success()),
        "exit status {status:?} after SIGTERM\n{}",
        pooler.log()
    );
}
