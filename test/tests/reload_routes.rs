//! What a SIGHUP reload does to routes and their servers: a rule the reload leaves as it was
//! keeps its route — the same servers, and the same `pool_size` cap across the reload — while
//! a changed rule gets a new route, and the old one's servers close once its clients are gone.
//!
//! Config: `pool "transaction"`, `pool_size 1` (one server: every client of the route gets
//! that one, so which server a client got tells which route it is on), `pool_timeout` 500 ms,
//! so a client waiting for the server while another holds it fails quickly.

use std::time::Duration;

use odyssey_test::pg::Client;
use odyssey_test::pooler::config;
use odyssey_test::{Cluster, ClusterOptions, Pooler, Signal, connect, wait_for};

fn rules(pool_size: u32) -> String {
    format!(
        r#"
database default {{
	user default {{
		authentication "none"
		storage "postgres_server"
		pool "transaction"
		pool_size {pool_size}
		pool_timeout 500
	}}
}}
"#
    )
}

fn start() -> (Cluster, Pooler) {
    let cluster = Cluster::start(ClusterOptions::default()).expect("cluster");
    let pooler = Pooler::start(&config(cluster.port(), &rules(1))).expect("pooler");
    (cluster, pooler)
}

/// Rewrites the config from `rest` and waits for reload number `generation` in the log.
fn reload(cluster: &Cluster, pooler: &Pooler, rest: &str, generation: u32) {
    pooler
        .rewrite_config(&config(cluster.port(), rest))
        .unwrap();
    pooler.signal(Signal::Hup).unwrap();
    let line = format!("config reloaded (generation {generation})");
    assert!(
        pooler.wait_log(&line, Duration::from_secs(5)),
        "no reload\n{}",
        pooler.log()
    );
}

fn backend_pid(client: &mut Client) -> i32 {
    client
        .query_one("SELECT pg_backend_pid()", &[])
        .unwrap()
        .get(0)
}

/// Server processes of the pooler's user that PostgreSQL has now.
fn backends(cluster: &Cluster) -> Vec<i32> {
    let out = cluster
        .psql(
            "postgres",
            "postgres",
            "SELECT pid FROM pg_stat_activity WHERE backend_type = 'client backend' \
             AND pid <> pg_backend_pid() ORDER BY pid",
        )
        .unwrap();
    out.split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect()
}

#[test]
fn a_reload_that_leaves_a_rule_as_it_was_keeps_its_servers_and_its_cap() {
    let (cluster, pooler) = start();
    let params = pooler.params("postgres");
    let mut before = connect(&params).unwrap();
    let pid = backend_pid(&mut before);

    // The same rules, written elsewhere in the file: the rule is unchanged.
    let moved = format!("# moved down by this comment\n{}", rules(1));
    reload(&cluster, &pooler, &moved, 2);

    let mut after = connect(&params).unwrap();
    assert_eq!(
        backend_pid(&mut after),
        pid,
        "a client after the reload got a new server\n{}",
        pooler.log()
    );
    assert_eq!(backend_pid(&mut before), pid, "the client from before");

    // One client holds the pool's server; another waits and times out, the reload
    // notwithstanding (before the fix a second route opened a second server).
    // (A bare BEGIN would be deferred: `virtual_transaction` is on by default.)
    before.batch_execute("BEGIN; SELECT 1").unwrap();
    reload(&cluster, &pooler, &rules(1), 3);
    let waited = after.query_one("SELECT pg_backend_pid()", &[]);
    let err = waited.map(|r| r.get::<_, i32>(0)).expect_err(&format!(
        "a second server beyond pool_size 1: {:?}\n{}",
        backends(&cluster),
        pooler.log()
    ));
    assert_eq!(
        err.code().map(|c| c.code()),
        Some("53300"),
        "not a pool timeout: {err:?}"
    );
    before.batch_execute("COMMIT").unwrap();
    assert_eq!(backends(&cluster), [pid], "servers after two reloads");
}

#[test]
fn a_changed_rule_gets_a_new_route_and_the_old_servers_close_when_its_clients_leave() {
    let (cluster, pooler) = start();
    let params = pooler.params("postgres");
    let mut before = connect(&params).unwrap();
    let old = backend_pid(&mut before);

    reload(&cluster, &pooler, &rules(2), 2);
    let mut after = connect(&params).unwrap();
    assert_ne!(
        backend_pid(&mut after),
        old,
        "a changed rule kept the old route's server"
    );
    // The client from before stays on its route until it leaves; then the old route and
    // its idle server go.
    assert_eq!(backend_pid(&mut before), old);
    drop(before);
    assert!(
        wait_for(Duration::from_secs(5), || !backends(&cluster)
            .contains(&old)),
        "the old route's server is still open: {:?}\n{}",
        backends(&cluster),
        pooler.log()
    );
}
