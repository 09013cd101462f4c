//! `client_max_routing`: logins between accept and their route are bounded. The excess waits
//! for a slot up to its listen's `client_login_timeout`, then is closed without a message and
//! the log says `routing slot wait timed out` (upstream `sources/system.c`).

use std::time::{Duration, Instant};

use odyssey_test::pooler::{LOG_FILE, PID_FILE, PORT};
use odyssey_test::raw::RawConn;
use odyssey_test::{Cluster, ClusterOptions, Pooler, free_port, wait_for};

fn template(storage: u16, fast: u16) -> String {
    format!(
        r#"daemonize no
log_format "%p %t %l [%i %s] (%c) %m\n"
log_session yes
log_file "{LOG_FILE}"
log_to_stdout no
pid_file "{PID_FILE}"
workers 2
client_max_routing 1

listen {{
	host "127.0.0.1"
	port {PORT}
	client_login_timeout 5000
}}

listen {{
	host "127.0.0.1"
	port {fast}
	client_login_timeout 300
}}

storage "postgres_server" {{
	type "remote"
	host "127.0.0.1"
	port {storage}
}}

database default {{
	user default {{
		authentication "none"
		storage "postgres_server"
		pool "session"
	}}
}}
"#
    )
}

#[test]
fn a_login_beyond_client_max_routing_waits_then_is_closed() {
    let cluster = Cluster::start(ClusterOptions::default()).expect("cluster");
    let fast = free_port().unwrap();
    let pooler = Pooler::start(&template(cluster.port(), fast)).expect("pooler");
    // A client that says nothing holds the only routing slot (up to its 5 s login timeout).
    let mut silent = RawConn::connect(pooler.port(), Duration::from_secs(10)).unwrap();
    // The harness's readiness probe is the first connection, the silent client the second;
    // the probe's slot is freed as soon as its EOF is read.
    assert!(wait_for(Duration::from_secs(5), || pooler
        .log()
        .matches("new client connection")
        .count()
        >= 2));
    std::thread::sleep(Duration::from_millis(100));

    let mut excess = RawConn::connect(fast, Duration::from_secs(10)).unwrap();
    excess
        .startup(&[("user", "postgres"), ("database", "postgres")])
        .unwrap();
    let started = Instant::now();
    let answer = excess.recv();
    let waited = started.elapsed();
    // Closed without a message: EOF, or a reset (SO_LINGER 0 unless disable_nolinger).
    let closed = match &answer {
        Ok(None) => true,
        Err(odyssey_test::Error::Io { source, .. }) => {
            source.kind() == std::io::ErrorKind::ConnectionReset
        }
        _ => false,
    };
    assert!(closed, "closed without a message, got {answer:?}");
    assert!(
        waited >= Duration::from_millis(250) && waited < Duration::from_secs(4),
        "closed after {waited:?}"
    );
    assert!(
        pooler
            .log()
            .contains("routing slot wait timed out, connection rejected"),
        "{}",
        pooler.log()
    );
    // Once the slot is free, logins go on.
    silent
        .startup(&[("user", "postgres"), ("database", "postgres")])
        .unwrap();
    let login = silent.until_ready().expect("login after the wait");
    assert_eq!(login.last().map(|m| m.tag), Some(b'Z'));
}
