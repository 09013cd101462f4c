//! `backend_connect_timeout_ms`: a storage host that never completes the TCP handshake (a
//! loopback listener whose accept queue is full, so the kernel drops further SYNs) fails the
//! client's login after that long, not after the 30 s default.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use odyssey_test::pooler::config;
use odyssey_test::{Pooler, connect};

/// A listener that accepts nothing, with its queue filled: a connect to it hangs.
fn black_hole() -> (TcpListener, Vec<TcpStream>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr: SocketAddr = listener.local_addr().unwrap();
    let mut queued = Vec::new();
    // std listens with a backlog of 128; the queue holds one more. Stop at the first connect
    // that does not complete: the queue is full.
    for _ in 0..256 {
        match TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            Ok(s) => queued.push(s),
            Err(_) => break,
        }
    }
    (listener, queued)
}

#[test]
fn a_server_that_never_answers_the_connect_fails_the_login_in_time() {
    let (hole, _queued) = black_hole();
    let port = hole.local_addr().unwrap().port();
    let rest = "backend_connect_timeout_ms 500\n\ndatabase default {\n\tuser default {\n\
                \t\tauthentication \"none\"\n\t\tstorage \"postgres_server\"\n\
                \t\tpool \"session\"\n\t}\n}\n";
    let pooler = Pooler::start(&config(port, rest)).expect("pooler");
    let started = Instant::now();
    let mut client = connect(&pooler.params("postgres"));
    let failed = match &mut client {
        Ok(c) => c.simple_query("SELECT 1").is_err(),
        Err(_) => true,
    };
    let took = started.elapsed();
    assert!(failed, "a login through a black hole worked");
    assert!(
        took < Duration::from_secs(5),
        "failed after {took:?}, not after backend_connect_timeout_ms\n{}",
        pooler.log()
    );
    assert!(pooler.log().contains("timed out"), "{}", pooler.log());
}
