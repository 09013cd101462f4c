//! Outgoing cancels are bounded: `cancel_max_inflight` at a time; a CancelRequest that waits
//! longer than `cancel_queue_timeout_ms` for a slot is dropped with upstream's log line; and
//! `cancel_timeout_ms 0` waits for the server without a limit (it used to give up at 5 s).
//!
//! The storage is reached through a proxy here that relays sessions but swallows
//! CancelRequests and keeps their connections open, as a server that never answers would.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use odyssey_test::pg::NoTls;
use odyssey_test::pooler::config;
use odyssey_test::{Cluster, ClusterOptions, Pooler, connect, wait_for};

/// Cancel connections the proxy holds: when each came, and when the pooler closed it.
type Held = Arc<Mutex<Vec<(Instant, Option<Instant>)>>>;

fn proxy(to: u16) -> (u16, Held) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let held: Held = Arc::default();
    let h = held.clone();
    thread::spawn(move || {
        for sock in listener.incoming().flatten() {
            let h = h.clone();
            thread::spawn(move || serve(sock, to, &h));
        }
    });
    (port, held)
}

fn serve(mut client: TcpStream, to: u16, held: &Held) {
    let mut head = [0u8; 8];
    if client.read_exact(&mut head).is_err() {
        return;
    }
    if head == [0, 0, 0, 16, 0x04, 0xd2, 0x16, 0x2e] {
        // CancelRequest: swallowed; note when the pooler gives up on it.
        let index = {
            let mut h = held.lock().unwrap();
            h.push((Instant::now(), None));
            h.len() - 1
        };
        let _ = client.set_read_timeout(Some(Duration::from_secs(30)));
        let mut rest = [0u8; 64];
        while matches!(client.read(&mut rest), Ok(n) if n > 0) {}
        held.lock().unwrap()[index].1 = Some(Instant::now());
        return;
    }
    let Ok(mut server) = TcpStream::connect(("127.0.0.1", to)) else {
        return;
    };
    if server.write_all(&head).is_err() {
        return;
    }
    let (mut c2, mut s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
    thread::spawn(move || {
        let _ = std::io::copy(&mut s2, &mut c2);
    });
    let _ = std::io::copy(&mut client, &mut server);
}

#[test]
fn cancels_wait_for_a_slot_and_are_dropped_after_the_queue_timeout() {
    let cluster = Cluster::start(ClusterOptions::default()).expect("cluster");
    let (port, held) = proxy(cluster.port());
    let pooler = Pooler::start(&config(
        port,
        r#"
cancel_max_inflight 1
cancel_queue_timeout_ms 300
cancel_timeout_ms 0
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
    let params = pooler.params("postgres");
    let mut tokens = Vec::new();
    for _ in 0..2 {
        let mut c = connect(&params).expect("client");
        c.batch_execute("SELECT 1").unwrap();
        tokens.push(c.cancel_token());
        thread::spawn(move || {
            let _ = c.simple_query("SELECT pg_sleep(20)");
        });
    }
    thread::sleep(Duration::from_millis(200));
    let second = tokens.pop().unwrap();
    let first = tokens.pop().unwrap();
    // The first cancel takes the only slot and hangs at the "server".
    thread::spawn(move || first.cancel_query(NoTls));
    assert!(
        wait_for(Duration::from_secs(5), || held.lock().unwrap().len() == 1),
        "the first cancel reached the proxy"
    );
    let started = Instant::now();
    let dropped = thread::spawn(move || second.cancel_query(NoTls));
    assert!(
        wait_for(Duration::from_secs(5), || pooler
            .log()
            .contains("dropping cancel request due to queue timeout 300 ms")),
        "the second cancel was not dropped:\n{}",
        pooler.log()
    );
    let _ = dropped.join();
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(250),
        "dropped after {waited:?}, without waiting for a slot"
    );
    assert_eq!(
        held.lock().unwrap().len(),
        1,
        "the second cancel got through"
    );
    // cancel_timeout_ms 0: the pooler still waits for the first past the old 5 s.
    thread::sleep(Duration::from_millis(5600).saturating_sub(held.lock().unwrap()[0].0.elapsed()));
    assert_eq!(
        held.lock().unwrap()[0].1,
        None,
        "the pooler gave up on a cancel with cancel_timeout_ms 0"
    );
}
