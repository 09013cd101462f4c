//! Real drivers over TLS through the pooler (issue 10): psycopg 3 on its bundled libpq (17 or
//! later) with `sslnegotiation=direct` (a ClientHello first, ALPN `postgresql`), with
//! `sslmode=verify-full` against the test CA, and with SCRAM `channel_binding=require`;
//! psycopg with a client certificate for a `cert` rule under `verify_ca`; asyncpg and pgjdbc
//! with `verify-full`; node-postgres verifying the pooler's certificate. Each program
//! (`test/drivers/`) prints what the query answered and, where the driver tells, whether its
//! connection was TLS (the listens demand TLS, so any login is one over TLS).

use std::process::Command;
use std::time::Duration;

use odyssey_test::certs::Certs;
use odyssey_test::command;
use odyssey_test::drivers::{node_modules, program, python, require};
use odyssey_test::temp_dir::TempDir;
use odyssey_test::tls::{certs, listen_tls, pooler, rule};
use odyssey_test::{Cluster, ClusterOptions, Pooler};

/// The harness's bound on one program.
const RUN_TIMEOUT: Duration = Duration::from_secs(60);

/// A pooler with `tls` `mode` in front of a plain cluster: `alice` logs in without a
/// password (or, under `verify_ca`, with her certificate), `carol` with SCRAM ("carol secret").
fn setup(mode: &str) -> (Cluster, Certs, Pooler) {
    let cluster = Cluster::start(ClusterOptions::default()).expect("cluster");
    let (ca, server) = certs();
    let alice_auth = if mode == "verify_ca" { "cert" } else { "none" };
    let carol = rule("carol", "", "scram-sha-256").replace(
        "\t\tauth_common_name default\n",
        "\t\tpassword \"carol secret\"\n",
    );
    let rules = format!("{}{carol}", rule("alice", "", alice_auth));
    let pooler = pooler(
        cluster.port(),
        &listen_tls(mode, &server, Some(&ca)),
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
    let (_cluster, ca, pooler) = setup("require");
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
fn asyncpg_pgjdbc_and_node_postgres_verify_the_pooler() {
    let (_cluster, ca, pooler) = setup("require");
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
    let (java, _classes) = pgjdbc(&pooler, &ca);
    let said = run(java, "pgjdbc", &pooler);
    assert_eq!(said, "answer=tls postgres");
}

/// Compiles `PgjdbcTls.java`; the command that runs it against the pooler, and the directory
/// of its classes (to keep while it runs).
fn pgjdbc(pooler: &Pooler, ca: &Certs) -> (Command, TempDir) {
    let jar = require(
        std::path::PathBuf::from("/usr/share/java/postgresql.jar"),
        "pgjdbc (libpostgresql-jdbc-java)",
    );
    let classes = TempDir::new("pgjdbc-tls").expect("temp dir");
    let mut javac = Command::new("javac");
    javac
        .arg("-d")
        .arg(classes.path())
        .arg(program("PgjdbcTls.java"));
    let out = command::run(javac, "javac", RUN_TIMEOUT).expect("javac (a JDK: make deps)");
    assert!(out.success(), "javac PgjdbcTls.java: {}", out.combined());
    let mut java = Command::new("java");
    java.arg("-cp")
        .arg(format!("{}:{}", jar.display(), classes.path().display()))
        .arg("PgjdbcTls")
        .args(["127.0.0.1", &pooler.port().to_string(), "alice", "postgres"])
        .arg(ca.ca());
    (java, classes)
}

#[test]
fn psycopg_logs_in_with_a_client_certificate() {
    let (_cluster, ca, pooler) = setup("verify_ca");
    let alice = ca
        .issue("alice", "alice", None, 2)
        .expect("alice's certificate");
    let dsn = format!(
        "host=127.0.0.1 port={} user=alice dbname=postgres sslmode=verify-full \
         sslrootcert={} sslcert={} sslkey={}",
        pooler.port(),
        ca.ca().display(),
        alice.cert.display(),
        alice.key.display()
    );
    let said = python_login("psycopg", &dsn, &pooler);
    assert_eq!(said, "ssl=True answer=tls postgres");
}
