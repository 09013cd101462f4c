//! SIGHUP reload: a new route appears without dropping connected clients; a broken config is
//! reported and the old one keeps working.

use std::time::Duration;

use odyssey_test::pg::error::SqlState;
use odyssey_test::pooler::config;
use odyssey_test::{Cluster, ClusterOptions, Pooler, Signal, connect, wait_for};

/// Only database `postgres` has a route.
const BEFORE: &str = r#"
database "postgres" {
	user default {
		authentication "none"
		storage "postgres_server"
		pool "session"
	}
}
"#;

/// `BEFORE` plus a route for database `added`.
const AFTER: &str = r#"
database "postgres" {
	user default {
		authentication "none"
		storage "postgres_server"
		pool "session"
	}
}
database "added" {
	user default {
		authentication "none"
		storage "postgres_server"
		pool "session"
	}
}
"#;

fn start() -> (Cluster, Pooler) {
    let cluster = Cluster::start(ClusterOptions::default()).expect("cluster");
    cluster
        .psql("postgres", "postgres", "CREATE DATABASE added")
        .unwrap();
    let pooler = Pooler::start(&config(cluster.port(), BEFORE)).expect("pooler");
    (cluster, pooler)
}

#[test]
fn sighup_adds_a_route_and_keeps_connected_clients() {
    let (cluster, pooler) = start();
    let added = pooler.params("postgres").dbname("added");
    let err = connect(&added).err().expect("no route for 'added' yet");
    assert_eq!(err.code(), Some(&SqlState::INVALID_CATALOG_NAME), "{err}");

    let mut connected = connect(&pooler.params("postgres")).unwrap();
    connected.batch_execute("SELECT 1").unwrap();

    pooler
        .rewrite_config(&config(cluster.port(), AFTER))
        .unwrap();
    pooler.signal(Signal::Hup).unwrap();
    assert!(
        wait_for(Duration::from_secs(5), || connect(&added).is_ok()),
        "route 'added' not there after SIGHUP\n{}",
        pooler.log()
    );
    let mut client = connect(&added).unwrap();
    let db: String = client
        .query_one("SELECT current_database()::text", &[])
        .unwrap()
        .get(0);
    assert_eq!(db, "added");

    let n: i32 = connected
        .query_one("SELECT 5", &[])
        .unwrap_or_else(|e| panic!("client connected before the reload: {e}\n{}", pooler.log()))
        .get(0);
    assert_eq!(n, 5);
}

#[test]
fn broken_config_on_sighup_keeps_the_old_one() {
    let (cluster, pooler) = start();
    let mut connected = connect(&pooler.params("postgres")).unwrap();
    connected.batch_execute("SELECT 1").unwrap();
    let log_before = pooler.log().len();

    let broken = config(cluster.port(), &format!("{AFTER}\nthis is not a keyword\n"));
    pooler.rewrite_config(&broken).unwrap();
    pooler.signal(Signal::Hup).unwrap();
    let reported = wait_for(Duration::from_secs(5), || {
        let log = pooler.log();
        let new = log.get(log_before..).unwrap_or_default();
        // The failed reload ends with an error line naming the outcome.
        new.contains("reload failed")
    });
    let log = pooler.log();
    assert!(reported, "nothing logged about the broken config\n{log}");
    let new = log.get(log_before..).unwrap_or_default();
    assert!(
        new.lines()
            .any(|l| l.contains(" error ") || l.contains(" fatal ")),
        "the failed reload is not logged as an error:\n{new}"
    );

    // Still running, on the old config: `postgres` is served, `added` is not.
    let n: i32 = connected.query_one("SELECT 6", &[]).unwrap().get(0);
    assert_eq!(n, 6);
    let mut fresh = connect(&pooler.params("postgres")).unwrap();
    fresh.batch_execute("SELECT 1").unwrap();
    let err = connect(&pooler.params("postgres").dbname("added"))
        .err()
        .expect("the broken config's route was applied");
    assert_eq!(err.code(), Some(&SqlState::INVALID_CATALOG_NAME), "{err}");
}
