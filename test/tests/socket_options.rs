//! `nodelay`, `keepalive` with `keepalive_usr_timeout`, and `bindwith_reuseport`, read off the
//! pooler's own sockets: `test/drivers/sockopts.py` copies each of them out of the running
//! pooler with pidfd_getfd(2) and reads the options back with getsockopt — the listener, a
//! client's socket and the server connection it uses.

use std::process::Command;
use std::time::Duration;

use odyssey_test::drivers::{program, python};
use odyssey_test::pooler::{config, open_rule};
use odyssey_test::{Cluster, ClusterOptions, Pooler, command, connect};
use serde_json::Value;

/// The pooler's sockets: (listener, client, server), each as the probe printed it.
fn sockets(pooler: &Pooler, cluster: &Cluster) -> (Value, Value, Value) {
    let mut probe = Command::new(python());
    probe
        .arg(program("sockopts.py"))
        .arg(pooler.pid().to_string())
        .arg(pooler.port().to_string())
        .arg(cluster.port().to_string());
    let out = command::run(probe, "sockopts.py", Duration::from_secs(20))
        .and_then(|o| o.check("sockopts.py"))
        .expect("probe");
    let rows: Vec<Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    let port = |v: &Value, k: &str| v[k].as_u64().unwrap_or(0);
    let find = |what: &str, f: &dyn Fn(&Value) -> bool| {
        let found: Vec<&Value> = rows.iter().filter(|r| f(r)).collect();
        assert_eq!(found.len(), 1, "one {what} socket expected: {rows:?}");
        found[0].clone()
    };
    let own = u64::from(pooler.port());
    let pg = u64::from(cluster.port());
    (
        find("listening", &|r| {
            r["listen"] == true && port(r, "local") == own
        }),
        find("client", &|r| {
            r["listen"] == false && port(r, "local") == own
        }),
        find("server", &|r| port(r, "remote") == pg),
    )
}

/// Starts a pooler with `globals`, connects one client and holds its server (session pool).
fn with_client(globals: &str, check: impl FnOnce(Value, Value, Value)) {
    let cluster = Cluster::start(ClusterOptions::default()).expect("cluster");
    let pooler = Pooler::start(&config(
        cluster.port(),
        &format!("{globals}\n{}", open_rule("session")),
    ))
    .expect("pooler");
    let mut client = connect(&pooler.params("postgres")).expect("client");
    client.simple_query("SELECT 1").expect("query");
    let (listener, client_socket, server) = sockets(&pooler, &cluster);
    check(listener, client_socket, server);
    drop(client);
}

#[test]
fn nodelay_off_and_keepalive_with_user_timeout_on_both_sides() {
    let globals = "nodelay no\nkeepalive 17\nkeepalive_keep_interval 3\nkeepalive_probes 4\n\
                   keepalive_usr_timeout 4321\nbindwith_reuseport no";
    with_client(globals, |listener, client, server| {
        assert_eq!(
            listener["reuseport"], 0,
            "bindwith_reuseport no: {listener}"
        );
        for (side, s) in [("client", &client), ("server", &server)] {
            assert_eq!(s["nodelay"], 0, "{side}: nodelay no: {s}");
            assert_eq!(s["keepalive"], 1, "{side}: {s}");
            assert_eq!(s["keepidle"], 17, "{side}: {s}");
            assert_eq!(s["keepintvl"], 3, "{side}: {s}");
            assert_eq!(s["keepcnt"], 4, "{side}: {s}");
            assert_eq!(s["user_timeout_ms"], 4321, "{side}: {s}");
        }
    });
}

#[test]
fn nodelay_on_reuseport_and_a_computed_user_timeout() {
    // A negative keepalive_usr_timeout: as long as keepalive takes to give up, less 500 ms
    // (17 s + 3 s × 4 − 0.5 s).
    let globals = "nodelay yes\nkeepalive 17\nkeepalive_keep_interval 3\nkeepalive_probes 4\n\
                   keepalive_usr_timeout -1\nbindwith_reuseport yes";
    with_client(globals, |listener, client, server| {
        assert_eq!(
            listener["reuseport"], 1,
            "bindwith_reuseport yes: {listener}"
        );
        for (side, s) in [("client", &client), ("server", &server)] {
            assert_eq!(s["nodelay"], 1, "{side}: nodelay yes: {s}");
            assert_eq!(s["user_timeout_ms"], 28_500, "{side}: {s}");
        }
    });
}
