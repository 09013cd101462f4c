//! What becomes of a server after a client used it, by rule directive: a cached plan error
//! closes it (`server_drop_on_cached_plan_error`), a dead idle one is replaced before a client
//! gets it (`pool_attach_check`), and a LISTEN keeps it with its client in transaction pooling
//! (`pool_pin_on_listen`). Each is checked with the directive on and off.

use std::time::Duration;

use odyssey_test::pg::Client;
use odyssey_test::pg::fallible_iterator::FallibleIterator;
use odyssey_test::pooler::config;
use odyssey_test::{Cluster, ClusterOptions, Pooler, connect, wait_for};

/// One transaction-pool rule for every client, one server, with `extra` lines.
fn one_server(cluster: &Cluster, extra: &str) -> Pooler {
    let rules = format!(
        "database default {{\n\tuser default {{\n\t\tauthentication \"none\"\n\
         \t\tstorage \"postgres_server\"\n\t\tpool \"transaction\"\n\t\tpool_size 1\n\
         {extra}\t}}\n}}\n"
    );
    Pooler::start(&config(cluster.port(), &rules)).expect("pooler")
}

fn backend_pid(client: &mut Client) -> i32 {
    client
        .query_one("SELECT pg_backend_pid()", &[])
        .expect("pid")
        .get(0)
}

/// The server of a client whose prepared statement met "cached plan must not change result
/// type" (0A000): closed when the rule says so (the default), kept otherwise.
fn server_after_cached_plan_error(drop_it: bool) -> (i32, i32) {
    let cluster = Cluster::start(ClusterOptions::default()).expect("cluster");
    cluster
        .psql(
            "postgres",
            "postgres",
            "CREATE TABLE t (a int); INSERT INTO t VALUES (1)",
        )
        .unwrap();
    let extra = if drop_it {
        String::new()
    } else {
        "\t\tserver_drop_on_cached_plan_error no\n".to_string()
    };
    let pooler = one_server(&cluster, &extra);
    let mut client = connect(&pooler.params("postgres")).expect("client");
    let before = backend_pid(&mut client);
    let stmt = client.prepare("SELECT * FROM t").expect("prepare");
    client.query(&stmt, &[]).expect("first run");
    cluster
        .psql("postgres", "postgres", "ALTER TABLE t ADD COLUMN b int")
        .unwrap();
    let err = client.query(&stmt, &[]).expect_err("stale plan");
    let code = err.as_db_error().map(|e| e.code().code().to_string());
    assert_eq!(code.as_deref(), Some("0A000"), "{err}");
    (before, backend_pid(&mut client))
}

#[test]
fn a_cached_plan_error_closes_the_server() {
    let (before, after) = server_after_cached_plan_error(true);
    assert_ne!(
        before, after,
        "the server with the broken plan must be closed"
    );
}

#[test]
fn a_cached_plan_error_keeps_the_server_when_told_not_to_drop() {
    let (before, after) = server_after_cached_plan_error(false);
    assert_eq!(
        before, after,
        "server_drop_on_cached_plan_error no keeps the server"
    );
}

/// An idle server whose backend was terminated, then the next query of its client: the answer,
/// or the error the client got.
fn query_after_server_death(attach_check: &str) -> Result<i32, String> {
    let cluster = Cluster::start(ClusterOptions::default()).expect("cluster");
    let pooler = one_server(&cluster, &format!("\t\tpool_attach_check {attach_check}\n"));
    let mut client = connect(&pooler.params("postgres")).expect("client");
    let pid = backend_pid(&mut client);
    cluster
        .psql(
            "postgres",
            "postgres",
            &format!("SELECT pg_terminate_backend({pid})"),
        )
        .unwrap();
    let gone = || {
        let out = cluster
            .psql(
                "postgres",
                "postgres",
                &format!("SELECT count(*) FROM pg_stat_activity WHERE pid = {pid}"),
            )
            .unwrap();
        out.trim() == "0"
    };
    assert!(
        wait_for(Duration::from_secs(5), gone),
        "backend {pid} lives"
    );
    client
        .query_one("SELECT 1", &[])
        .map(|row| row.get(0))
        .map_err(describe)
}

#[test]
fn attach_check_replaces_a_dead_idle_server() {
    assert_eq!(query_after_server_death("yes"), Ok(1));
}

#[test]
fn without_attach_check_the_client_meets_the_dead_server() {
    let answer = query_after_server_death("no");
    assert!(answer.is_err(), "the dead server answered: {answer:?}");
}

/// A client ran LISTEN on the only server of a transaction pool; can another client get a
/// server within the pool timeout?
fn second_client_after_listen(pin: &str) -> Result<(), String> {
    let cluster = Cluster::start(ClusterOptions::default()).expect("cluster");
    let extra = format!("\t\tpool_timeout 1000\n\t\tpool_pin_on_listen {pin}\n");
    let pooler = one_server(&cluster, &extra);
    let mut listener = connect(&pooler.params("postgres")).expect("listener");
    listener.batch_execute("LISTEN news").expect("listen");
    let mut other = connect(&pooler.params("postgres")).map_err(describe)?;
    other.batch_execute("NOTIFY news").map_err(describe)
}

/// The SQLSTATE and message of a server error, else what the client says.
fn describe(e: odyssey_test::pg::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} {}", db.code().code(), db.message()),
        None => e.to_string(),
    }
}

#[test]
fn listen_pins_the_server_to_its_client() {
    let second = second_client_after_listen("yes");
    let err = second.expect_err("the only server is pinned to the listener");
    assert!(err.contains("53300") || err.contains("pool_size"), "{err}");
}

#[test]
fn without_pin_a_listen_does_not_hold_the_server() {
    second_client_after_listen("no").expect("the server went back after LISTEN");
}

/// The point of pinning: notifications reach the client that listens.
#[test]
fn a_pinned_listener_hears_notifications() {
    let cluster = Cluster::start(ClusterOptions::default()).expect("cluster");
    let rules = "database default {\n\tuser default {\n\t\tauthentication \"none\"\n\
                 \t\tstorage \"postgres_server\"\n\t\tpool \"transaction\"\n\
                 \t\tpool_size 2\n\t\tpool_pin_on_listen yes\n\t}\n}\n";
    let pooler = Pooler::start(&config(cluster.port(), rules)).expect("pooler");
    let mut listener = connect(&pooler.params("postgres")).expect("listener");
    listener.batch_execute("LISTEN news").expect("listen");
    let mut other = connect(&pooler.params("postgres")).expect("notifier");
    other.batch_execute("NOTIFY news, 'hello'").expect("notify");
    listener.batch_execute("SELECT 1").expect("next query");
    let mut notifications = listener.notifications();
    let mut pending = notifications.iter();
    let mut heard = Vec::new();
    while let Some(n) = pending.next().expect("notifications") {
        heard.push(n.payload().to_string());
    }
    assert_eq!(heard, ["hello"], "{}", pooler.log());
}
