//! Pool limits: `pool_timeout` when the pool is exhausted, a rule's `client_max`, and
//! `pool_ttl` closing idle servers.

use std::thread;
use std::time::{Duration, Instant};

use odyssey_test::pg::error::SqlState;
use odyssey_test::pooler::config;
use odyssey_test::{Cluster, ClusterOptions, Pooler, connect, wait_for};

fn start(rules: &str) -> (Cluster, Pooler) {
    let cluster = Cluster::start(ClusterOptions::default()).expect("cluster");
    cluster
        .psql("postgres", "postgres", "CREATE DATABASE limited")
        .unwrap();
    let pooler = Pooler::start(&config(cluster.port(), rules)).expect("pooler");
    (cluster, pooler)
}

fn db_message(e: &odyssey_test::pg::Error) -> String {
    e.as_db_error()
        .map_or_else(|| e.to_string(), |db| db.message().to_string())
}

#[test]
fn exhausted_pool_times_out_with_53300() {
    // A graceful close: with SO_LINGER 0 (the default) the reset may overtake the FATAL and
    // the client sees only "connection reset".
    let (_cluster, pooler) = start(
        r#"
disable_nolinger yes
database default {
	user default {
		authentication "none"
		storage "postgres_server"
		pool "session"
		pool_size 1
		pool_timeout 500
	}
}
"#,
    );
    let params = pooler.params("postgres").dbname("limited");
    // Session pooling: the first client keeps the only server while it is connected.
    let mut holder = connect(&params).expect("first client");
    holder.batch_execute("BEGIN; SELECT 1").unwrap();

    let mut waiter = connect(&params).expect("second client logs in without a server");
    let started = Instant::now();
    let err = waiter.simple_query("SELECT 1").unwrap_err();
    let waited = started.elapsed();
    assert_eq!(err.code(), Some(&SqlState::TOO_MANY_CONNECTIONS), "{err}");
    let msg = db_message(&err);
    assert!(
        msg.contains(
            "too many active clients for user (pool_size for user limited.postgres reached 1)"
        ),
        "{msg}"
    );
    assert!(
        waited >= Duration::from_millis(400) && waited < Duration::from_secs(5),
        "pool_timeout 500 ms took {waited:?}"
    );
    // The holder is unaffected.
    holder.batch_execute("COMMIT").unwrap();
}

#[test]
fn client_max_rejects_the_second_client() {
    let (_cluster, pooler) = start(
        r#"
database "limited" {
	user default {
		authentication "none"
		storage "postgres_server"
		pool "session"
		client_max 1
	}
}
database default {
	user default {
		authentication "none"
		storage "postgres_server"
		pool "session"
	}
}
"#,
    );
    let params = pooler.params("postgres").dbname("limited");
    let first = connect(&params).expect("first client");
    let err = connect(&params).err().expect("second client got in");
    assert_eq!(err.code(), Some(&SqlState::TOO_MANY_CONNECTIONS), "{err}");
    let msg = db_message(&err);
    assert!(
        msg.contains("client_max for user limited.postgres 1"),
        "{msg}"
    );
    // Other routes are not limited.
    let _a = connect(&pooler.params("postgres")).expect("other route");
    let _b = connect(&pooler.params("postgres")).expect("other route");
    // Once the first leaves, there is room again.
    drop(first);
    assert!(
        wait_for(Duration::from_secs(5), || connect(&params).is_ok()),
        "no room after the first client left\n{}",
        pooler.log()
    );
}

#[test]
fn pool_ttl_closes_idle_servers() {
    let (cluster, pooler) = start(
        r#"
database default {
	user default {
		authentication "none"
		storage "postgres_server"
		pool "session"
		pool_ttl 1
	}
}
"#,
    );
    let backends = || {
        cluster
            .psql(
                "postgres",
                "postgres",
                "SELECT count(*) FROM pg_stat_activity WHERE datname = 'limited'",
            )
            .unwrap()
    };
    let mut client = connect(&pooler.params("postgres").dbname("limited")).unwrap();
    client.batch_execute("SELECT 1").unwrap();
    assert_eq!(backends(), "1");
    drop(client);
    // The server goes back to the pool idle...
    thread::sleep(Duration::from_millis(200));
    assert_eq!(
        backends(),
        "1",
        "the idle server should be kept for a while"
    );
    // ...and is closed after pool_ttl (cron ticks every second).
    assert!(
        wait_for(Duration::from_secs(5), || backends() == "0"),
        "idle server still open after pool_ttl 1\n{}",
        pooler.log()
    );
}
