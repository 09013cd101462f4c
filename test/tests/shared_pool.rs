//! `shared_pool`: not implemented as a cap across routes. The config says so at load (and
//! in `--test`), and a rule in a shared pool is capped at the shared pool's size per route
//! instead of being unlimited.

use std::time::Duration;

use odyssey_test::pg::error::SqlState;
use odyssey_test::pooler::config;
use odyssey_test::{Cluster, ClusterOptions, Pooler, connect, wait_for};

const RULES: &str = r#"
shared_pool "sp" {
	pool_size 1
}
database default {
	user default {
		authentication "none"
		storage "postgres_server"
		pool "transaction"
		shared_pool "sp"
		pool_timeout 500
	}
}
"#;

#[test]
fn a_shared_pool_is_warned_about_and_caps_its_routes() {
    let cluster = Cluster::start(ClusterOptions::default()).expect("cluster");
    let pooler = Pooler::start(&config(cluster.port(), RULES)).expect("pooler");
    assert!(
        wait_for(Duration::from_secs(5), || pooler
            .log()
            .contains("shared_pool 'sp' is not implemented")),
        "no warning at load:\n{}",
        pooler.log()
    );
    let params = pooler.params("postgres");
    let mut holder = connect(&params).expect("holder");
    holder.batch_execute("BEGIN; SELECT 1").unwrap();
    let mut second = connect(&params).expect("second client");
    let err = second
        .simple_query("SELECT 1")
        .expect_err("a second server beyond the shared pool's size");
    assert_eq!(err.code(), Some(&SqlState::TOO_MANY_CONNECTIONS), "{err}");
    holder.batch_execute("COMMIT").unwrap();
}
