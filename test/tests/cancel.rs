//! CancelRequest through the pooler in session mode.

use std::time::Duration;

use odyssey_test::pg::error::SqlState;
use odyssey_test::pooler::config;
use odyssey_test::{Cluster, ClusterOptions, Pooler, cancel_a_sleep, connect};

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
    let (err, took) = cancel_a_sleep(&mut client, Duration::from_millis(500));
    assert_eq!(err.code(), Some(&SqlState::QUERY_CANCELED), "{err:?}");
    assert!(took < Duration::from_secs(2), "cancel took {took:?}");
}
