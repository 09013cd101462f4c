//! CancelRequest through the pooler in session mode.

use std::thread;
use std::time::{Duration, Instant};

use odyssey_test::pg::NoTls;
use odyssey_test::pg::error::SqlState;
use odyssey_test::pooler::config;
use odyssey_test::{Cluster, ClusterOptions, Pooler, connect};

#[test]
fn cancel_request_stops_a_running_query() {
    let cluster = Cluster::start(ClusterOptions::default()).expect("cluster");
    let pooler = Pooler::start(&config(
        cluster.port(),
        r#"
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
    let mut client = connect(&pooler.params("postgres")).unwrap();
    client.batch_execute("SELECT 1").unwrap();
    let token = client.cancel_token();
    let canceller = thread::spawn(move || {
        thread::sleep(Duration::from_millis(500));
        let sent = Instant::now();
        token.cancel_query(NoTls).map(|()| sent)
    });
    let err = client
        .simple_query("SELECT pg_sleep(30)")
        .expect_err("pg_sleep(30) was not cancelled");
    let done = Instant::now();
    let sent = canceller.join().unwrap().expect("send CancelRequest");
    assert_eq!(err.code(), Some(&SqlState::QUERY_CANCELED), "{err:?}");
    assert!(
        done.duration_since(sent) < Duration::from_secs(2),
        "cancel took {:?}",
        done.duration_since(sent)
    );
}
