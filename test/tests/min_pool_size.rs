//! `min_pool_size`: the route of a rule naming its database and user gets that many servers
//! before any client comes, and the cron opens new ones after they die.

use std::time::Duration;

use odyssey_test::pooler::config;
use odyssey_test::{Cluster, ClusterOptions, Pooler, connect, wait_for};

fn backends(cluster: &Cluster) -> Vec<String> {
    let out = cluster
        .psql(
            "postgres",
            "postgres",
            "SELECT pid FROM pg_stat_activity WHERE datname = 'prefilled' ORDER BY pid",
        )
        .unwrap();
    out.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_digit()))
        .map(str::to_string)
        .collect()
}

#[test]
fn min_pool_size_servers_are_opened_and_refilled() {
    let cluster = Cluster::start(ClusterOptions::default()).expect("cluster");
    cluster
        .psql("postgres", "postgres", "CREATE DATABASE prefilled")
        .unwrap();
    let pooler = Pooler::start(&config(
        cluster.port(),
        r#"
database "prefilled" {
	user "postgres" {
		authentication "none"
		storage "postgres_server"
		pool "transaction"
		pool_size 5
		min_pool_size 3
	}
}
"#,
    ))
    .expect("pooler");
    assert!(
        wait_for(Duration::from_secs(15), || backends(&cluster).len() == 3),
        "3 servers before any client: {:?}\n{}",
        backends(&cluster),
        pooler.log()
    );
    let first = backends(&cluster);

    cluster
        .psql(
            "postgres",
            "postgres",
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = 'prefilled'",
        )
        .unwrap();
    assert!(wait_for(Duration::from_secs(5), || backends(&cluster).is_empty()));
    // A client finds the dead ones and closes them on its way.
    let mut client = connect(&pooler.params("postgres").dbname("prefilled")).expect("client");
    client.batch_execute("SELECT 1").unwrap();
    drop(client);
    assert!(
        wait_for(Duration::from_secs(15), || backends(&cluster).len() == 3),
        "refilled to 3: {:?}",
        backends(&cluster)
    );
    let now = backends(&cluster);
    assert!(
        now.iter().all(|p| !first.contains(p)),
        "new servers: {first:?} → {now:?}"
    );
}

#[test]
fn min_pool_size_servers_past_pool_ttl_are_replaced() {
    let cluster = Cluster::start(ClusterOptions::default()).expect("cluster");
    cluster
        .psql("postgres", "postgres", "CREATE DATABASE prefilled")
        .unwrap();
    let pooler = Pooler::start(&config(
        cluster.port(),
        r#"
database "prefilled" {
	user "postgres" {
		authentication "none"
		storage "postgres_server"
		pool "transaction"
		min_pool_size 2
		pool_ttl 2
	}
}
"#,
    ))
    .expect("pooler");
    assert!(
        wait_for(Duration::from_secs(15), || backends(&cluster).len() == 2),
        "2 servers: {:?}",
        backends(&cluster)
    );
    let first = backends(&cluster);
    // Expired by pool_ttl, then opened again by the cron.
    assert!(
        wait_for(Duration::from_secs(20), || {
            let now = backends(&cluster);
            now.len() == 2 && now.iter().all(|p| !first.contains(p))
        }),
        "not replaced: {first:?} → {:?}\n{}",
        backends(&cluster),
        pooler.log()
    );
}
