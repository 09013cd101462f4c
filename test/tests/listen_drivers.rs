//! LISTEN/NOTIFY through transaction pools of size 1 and 2 with real drivers, while other
//! clients run transactions: psycopg 3's `notifies()` (its LISTEN goes over the extended
//! protocol), asyncpg's `add_listener` and node-postgres' `notification` event. Each program
//! (`test/drivers/listen_python.py`, `node_pg_listen.js`) checks payloads, order and the
//! sender pid, and exits 1 on any mismatch.

use std::process::Command;
use std::time::Duration;

use odyssey_test::command;
use odyssey_test::drivers::{node_modules, program, python};
use odyssey_test::pooler::config;
use odyssey_test::{Cluster, ClusterOptions, Pooler};

/// The harness's bound on one program.
const RUN_TIMEOUT: Duration = Duration::from_secs(90);

fn start(pool_size: u32) -> (Cluster, Pooler) {
    let cluster = Cluster::start(ClusterOptions::default()).expect("cluster");
    let rules = format!(
        r#"
database default {{
	user default {{
		authentication "none"
		storage "postgres_server"
		pool "transaction"
		pool_size {pool_size}
		pool_timeout 10000
	}}
}}
"#
    );
    let pooler = Pooler::start(&config(cluster.port(), &rules)).expect("pooler");
    (cluster, pooler)
}

/// Runs `cmd` against the pooler and returns its stdout, failing with everything it said.
fn run(mut cmd: Command, what: &str, pooler: &Pooler) -> String {
    cmd.args([
        "127.0.0.1",
        &pooler.port().to_string(),
        "postgres",
        "postgres",
    ])
    .env("DRIVER_TIMEOUT", "60");
    let out = command::run(cmd, what, RUN_TIMEOUT).unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.success(),
        "{what} failed: {}\n{}",
        out.combined(),
        pooler.log()
    );
    out.stdout.trim().to_string()
}

fn python_and_node(pool_size: u32) {
    let (_cluster, pooler) = start(pool_size);
    let mut py = Command::new(python());
    py.arg(program("listen_python.py"));
    let said = run(py, "listen_python.py", &pooler);
    assert!(said.contains("psycopg: 52 notifications"), "{said}");
    assert!(said.contains("asyncpg: 20 notifications"), "{said}");

    let mut node = Command::new("node");
    node.env("NODE_PATH", node_modules())
        .arg(program("node_pg_listen.js"));
    let said = run(node, "node_pg_listen.js", &pooler);
    assert!(said.contains("node-postgres: 31 notifications"), "{said}");
}

#[test]
fn drivers_listen_through_a_pool_of_one() {
    python_and_node(1);
}

#[test]
fn drivers_listen_through_a_pool_of_two() {
    python_and_node(2);
}
