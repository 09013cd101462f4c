//! `server_login_retry`: when PostgreSQL refuses a new server with 53300 (here the role's
//! CONNECTION LIMIT) and the rule has a `pool_timeout`, the client is not failed: the pooler
//! waits `server_login_retry` ms, then for an idle server of the route (spec §7.3).

use std::thread;
use std::time::{Duration, Instant};

use odyssey_test::pooler::config;
use odyssey_test::{AuthMethod, Cluster, ClusterOptions, Pooler, connect};

#[test]
fn a_full_server_makes_the_client_wait_for_an_idle_one() {
    let mut cluster = Cluster::start(ClusterOptions::default()).expect("cluster");
    cluster
        .add_user("limited", "", AuthMethod::Trust)
        .expect("role");
    cluster
        .psql(
            "postgres",
            "postgres",
            "ALTER ROLE limited CONNECTION LIMIT 1",
        )
        .unwrap();
    let pooler = Pooler::start(&config(
        cluster.port(),
        r#"
database default {
	user default {
		authentication "none"
		storage "postgres_server"
		pool "transaction"
		pool_size 0
		pool_timeout 5000
	}
}
server_login_retry 50
"#,
    ))
    .expect("pooler");
    let params = pooler.params("limited").dbname("postgres");
    let mut holder = connect(&params).expect("holder");
    holder.batch_execute("BEGIN; SELECT 1").unwrap();
    let mut second = connect(&params).expect("second client logs in without a server");

    let release = thread::spawn(move || {
        thread::sleep(Duration::from_millis(600));
        holder.batch_execute("COMMIT").unwrap();
        holder
    });
    let started = Instant::now();
    let result = second.simple_query("SELECT 1");
    let waited = started.elapsed();
    let _holder = release.join().unwrap();
    result.expect("the second client gets the holder's server instead of the 53300");
    assert!(
        waited >= Duration::from_millis(400),
        "answered after {waited:?}, before the holder was done"
    );
    assert!(
        pooler.log().contains("too many connections for role"),
        "the refused login is logged"
    );
}
