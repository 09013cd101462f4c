//! Real drivers over TLS through the pooler (issue 10): psycopg 3 on its bundled libpq (17 or
//! later) with `sslnegotiation=direct` (a ClientHello first, ALPN `postgresql`), with
//! `sslmode=verify-full` against the test CA, and with SCRAM `channel_binding=require`;
//! asyncpg with `verify-full`; node-postgres verifying the pooler's certificate. Each program
//! (`test/drivers/`) prints whether its connection was TLS and what the query answered.

use std::process::Command;
use std::time::Duration;

use odyssey_test::certs::Certs;
use odyssey_test::command;
use odyssey_test::drivers::{node_modules, program, python};
use odyssey_test::tls::{certs, listen_tls, pooler, rule};
use odyssey_test::{Cluster, ClusterOptions, Pooler};

/// The harness's bound on one program.
const RUN_TIMEOUT: Duration = Duration::from_secs(60);

/// A pooler with `tls require` in front of a plain cluster: `alice` logs in without a
/// password, `carol` with SCRAM ("carol secret").
fn setup() -> (Cluster, Certs, Pooler) {
    let cluster = Cluster::start(ClusterOptions::default()).expect("cluster");
    let (ca, server) = certs();
    let carol = rule("carol", "", "scram-sha-256").replace(
        "\t\tauth_common_name default\n",
        "\t\tpassword \"carol secret\"\n",
    );
    let rules = format!("{}{carol}", rule("alice", "", "none"));
    let pooler = pooler(
        cluster.port(),
        &listen_tls("require", &server, None),
        "",
        &rules,
    );
    (cluster, ca, pooler)
}

/// Runs `cmd` and returns its stdout, failing with everything it said (and the pooler's log).
fn run(mut cmd: Command, what: &str, pooler: &Pooler) -> String {
    cmd.env("DRIVER_TIMEOUT", "30");
    let out = command::run(cmd, what, RUN_TIMEOUT).unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.success(),
        "{what} failed: {}\n{}",
        out.combined(),
        pooler.log()
    );
    out.stdout.trim().to_string()
}

fn python_login(driver: &str, dsn: &str, pooler: &Pooler) -> String {
    let mut cmd = Command::new(python());
    cmd.arg(program("tls_login.py")).args([driver, dsn]);
    run(cmd, &format!("{driver} {dsn}"), pooler)
}

#[test]
fn psycopg_direct_tls_verify_full_and_channel_binding() {
    let (_cluster, ca, pooler) = setup();
    let base = format!(
        "host=127.0.0.1 port={} dbname=postgres sslrootcert={}",
        pooler.port(),
        ca.ca().display()
    );
    let cases = [
        ("user=alice sslmode=require sslnegotiation=direct", "direct"),
        ("user=alice sslmode=verify-full", "verify-full"),
        (
            "user=carol password='carol secret' sslmode=verify-full sslnegotiation=direct \
             channel_binding=require",
            "direct, SCRAM with channel binding",
        ),
    ];
    for (extra, what) in cases {
        let said = python_login("psycopg", &format!("{base} {extra}"), &pooler);
        assert_eq!(said, "ssl=True answer=tls postgres", "{what}");
    }
}

#[test]
fn asyncpg_and_node_postgres_verify_the_pooler() {
    let (_cluster, ca, pooler) = setup();
    let dsn = format!(
        "postgresql://alice@127.0.0.1:{}/postgres?sslmode=verify-full&sslrootcert={}",
        pooler.port(),
        ca.ca().display()
    );
    let said = python_login("asyncpg", &dsn, &pooler);
    assert_eq!(said, "ssl=True answer=tls postgres");
    let mut node = Command::new("node");
    node.env("NODE_PATH", node_modules())
        .arg(program("node_pg_tls.js"))
        .args(["127.0.0.1", &pooler.port().to_string(), "alice", "postgres"])
        .arg(ca.ca());
    let said = run(node, "node-postgres", &pooler);
    assert_eq!(said, "ssl=true answer=tls postgres");
}
