//! pgbench through the pooler in session mode: 20 clients, no failed transaction.

use std::time::Duration;

use odyssey_test::pooler::config;
use odyssey_test::{Cluster, ClusterOptions, ConnParams, PgbenchSummary, Pooler, pgbench};

const TIMEOUT: Duration = Duration::from_secs(60);

fn run(params: &ConnParams, what: &str) -> PgbenchSummary {
    let out = pgbench(params, &["-c", "20", "-j", "2", "-T", "10"], TIMEOUT).unwrap();
    assert!(out.success(), "{what}: {}", out.combined());
    let summary = PgbenchSummary::parse(&out.stdout).expect(&out.stdout);
    assert!(summary.processed > 0, "{what}: {summary:?}");
    assert_eq!(summary.failed, 0, "{what}: {}", out.stdout);
    summary
}

#[test]
fn twenty_clients_run_without_failures() {
    let cluster = Cluster::start(ClusterOptions::default()).expect("cluster");
    let init = pgbench(
        &cluster.params("postgres"),
        &["-i", "-q", "-s", "1"],
        TIMEOUT,
    )
    .unwrap();
    assert!(init.success(), "{}", init.combined());
    let pooler = Pooler::start(&config(
        cluster.port(),
        r#"
database default {
	user default {
		authentication "none"
		storage "postgres_server"
		pool "session"
		pool_size 20
	}
}
"#,
    ))
    .expect("pooler");

    let pooled = run(&pooler.params("postgres"), "through the pooler");
    let direct = run(&cluster.params("postgres"), "direct");
    println!(
        "pgbench -c 20 -j 2 -T 10, session pooling: {:.0} tps through odyssey, {:.0} tps direct",
        pooled.tps, direct.tps
    );
}
