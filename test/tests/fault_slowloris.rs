//! Slowloris: 200 connections each sending its startup packet a byte a second. A normal login
//! meanwhile is not delayed by more than 100 ms, and every slow connection is cut by
//! `client_login_timeout` (2 s here), not later than a second after it.
//!
//! `client_max_routing` is raised above the slow connections: as upstream, a login takes its
//! routing slot at accept, before its startup packet, so silent connections beyond the slots
//! (64 per worker by default) do hold logins back, up to their `client_login_timeout` (see
//! client_max_routing.rs). This test is about the rest of the login path.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use odyssey_test::pooler::{LOG_FILE, PID_FILE, PORT};
use odyssey_test::{Cluster, ClusterOptions, Pooler, connect};

const SLOW: usize = 200;
const LOGIN_TIMEOUT: Duration = Duration::from_millis(2000);
const LOGINS: usize = 10;

fn template(storage_port: u16) -> String {
    format!(
        r#"daemonize no
log_format "%p %t %l [%i %s] (%c) %m\n"
log_file "{LOG_FILE}"
log_to_stdout no
pid_file "{PID_FILE}"
workers 2
client_max_routing 1000
listen {{
	host "127.0.0.1"
	port {PORT}
	client_login_timeout {login}
}}
storage "postgres_server" {{
	type "remote"
	host "127.0.0.1"
	port {storage_port}
}}
database default {{
	user default {{
		authentication "none"
		storage "postgres_server"
		pool "session"
	}}
}}
"#,
        login = LOGIN_TIMEOUT.as_millis()
    )
}

/// The slowest of `LOGINS` logins (connect, log in, one query, close).
fn slowest_login(pooler: &Pooler) -> Duration {
    (0..LOGINS)
        .map(|_| {
            let began = Instant::now();
            let mut c = connect(&pooler.params("postgres")).expect("login");
            c.simple_query("SELECT 1").unwrap();
            began.elapsed()
        })
        .max()
        .unwrap()
}

/// Whether the pooler has closed `sock` (end of stream or reset); never blocks.
fn closed(sock: &mut TcpStream) -> bool {
    let mut byte = [0u8; 1];
    match sock.read(&mut byte) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() != ErrorKind::WouldBlock,
    }
}

/// A startup packet, to be dribbled.
fn startup_bytes() -> Vec<u8> {
    let mut out = Vec::new();
    kiwi::startup::Startup {
        version: kiwi::startup::ProtocolVersion::V3_0,
        params: vec![(b"user".as_slice(), b"postgres".as_slice())],
    }
    .encode(&mut out);
    out
}

/// Sends one more byte a second on every open slow connection; returns when each was closed
/// (measured from its own connect), or `None` for those still open after `give_up` (measured
/// from `opened`, when the last connect returned).
fn dribble(
    mut socks: Vec<(TcpStream, Instant)>,
    opened: Instant,
    give_up: Duration,
) -> Vec<Option<Duration>> {
    let packet = startup_bytes();
    let mut cut: Vec<Option<Duration>> = vec![None; socks.len()];
    let mut sent = 0;
    while opened.elapsed() < give_up && cut.iter().any(Option::is_none) {
        for (sock, cut) in socks.iter_mut().zip(cut.iter_mut()) {
            let (sock, connected) = (&mut sock.0, sock.1);
            if cut.is_none() && (closed(sock) || sock.write_all(&packet[sent..=sent]).is_err()) {
                *cut = Some(connected.elapsed());
            }
        }
        sent = (sent + 1).min(packet.len() - 2);
        // Poll closes every 50 ms, write a byte every second.
        let next = Instant::now() + Duration::from_secs(1);
        while Instant::now() < next && opened.elapsed() < give_up {
            for (sock, cut) in socks.iter_mut().zip(cut.iter_mut()) {
                if cut.is_none() && closed(&mut sock.0) {
                    *cut = Some(sock.1.elapsed());
                }
            }
            thread::sleep(Duration::from_millis(50));
        }
    }
    cut
}

#[test]
fn slow_logins_neither_delay_others_nor_outlive_client_login_timeout() {
    let cluster = Cluster::start(ClusterOptions::default()).expect("start cluster");
    let pooler = Pooler::start(&template(cluster.port())).expect("start odyssey");
    let baseline = slowest_login(&pooler);

    // Each connection's clock starts at its own connect: beyond the listen backlog (128) the
    // kernel drops SYNs, and those connects return only after a retransmit a second later.
    let socks: Vec<(TcpStream, Instant)> = (0..SLOW)
        .map(|_| {
            let s = TcpStream::connect(("127.0.0.1", pooler.port())).unwrap();
            s.set_nonblocking(true).unwrap();
            (s, Instant::now())
        })
        .collect();
    let opened = Instant::now();
    let give_up = LOGIN_TIMEOUT + Duration::from_secs(3);
    let slow = thread::spawn(move || dribble(socks, opened, give_up));
    thread::sleep(Duration::from_millis(300)); // every slow connection has sent a byte
    let attacked = slowest_login(&pooler);
    let cut = slow.join().unwrap();

    assert!(
        attacked < baseline + Duration::from_millis(100),
        "slowest login {attacked:?} under slowloris, {baseline:?} without"
    );
    let open = cut.iter().filter(|c| c.is_none()).count();
    assert_eq!(open, 0, "{open} slow connections outlived {give_up:?}");
    let last = cut.iter().flatten().max().copied().unwrap();
    let first = cut.iter().flatten().min().copied().unwrap();
    assert!(
        first >= LOGIN_TIMEOUT - Duration::from_millis(100),
        "cut early, after {first:?}"
    );
    assert!(
        last < LOGIN_TIMEOUT + Duration::from_secs(1),
        "cut late, after {last:?}\n{}",
        pooler.log()
    );
    eprintln!(
        "{SLOW} slow logins cut after {first:?}..{last:?}; slowest normal login {attacked:?} \
         (without them {baseline:?})"
    );
}
