//! `nodelay`, `keepalive` with `keepalive_usr_timeout`, and `bindwith_reuseport`, read off the
//! pooler's own sockets: `test/drivers/sockopts.py` copies each of them out of the running
//! pooler with pidfd_getfd(2) and reads the options back with getsockopt — the listener, a
//! client's socket and the server connection it uses.

use std::process::Command;
use std::time::Duration;

use odyssey_test::drivers::{program, python};
use odyssey_test::pooler::{config, open_rule};
use odyssey_test::{Cluster, ClusterOptions, Pooler, Signal, command, connect, wait_for};
use serde_json::Value;

/// Every socket of the pooler's, as the probe printed it.
fn probe(pooler: &Pooler, cluster: &Cluster) -> Vec<Value> {
    let mut probe = Command::new(python());
    probe
        .arg(program("sockopts.py"))
        .arg(pooler.pid().to_string())
        .arg(pooler.port().to_string())
        .arg(cluster.port().to_string());
    let out = command::run(probe, "sockopts.py", Duration::from_secs(20))
        .and_then(|o| o.check("sockopts.py"))
        .expect("probe");
    out.stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect()
}

/// The pooler's sockets: (listener, client, server), each as the probe printed it.
fn sockets(pooler: &Pooler, cluster: &Cluster) -> (Value, Value, Value) {
    let rows = probe(pooler, cluster);
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

/// The one client socket of the pooler's (a reload may leave two server connections).
fn client_socket(pooler: &Pooler, cluster: &Cluster) -> Value {
    let own = u64::from(pooler.port());
    let rows: Vec<Value> = probe(pooler, cluster)
        .into_iter()
        .filter(|r| r["listen"] == false && r["local"].as_u64() == Some(own))
        .collect();
    assert_eq!(rows.len(), 1, "one client socket expected: {rows:?}");
    rows[0].clone()
}

/// Client socket options are set once on the listener, and each accepted socket inherits
/// them: a reload that changes them must reach the next client all the same, every option
/// of them (keepalive_usr_timeout 0 too: the kernel's default again, not the value before).
#[test]
fn a_reload_changes_the_options_of_the_next_client() {
    let before = "nodelay yes\nkeepalive 17\nkeepalive_keep_interval 3\nkeepalive_probes 4\n\
                  keepalive_usr_timeout 4321";
    let after = "nodelay no\nkeepalive 23\nkeepalive_keep_interval 5\nkeepalive_probes 6\n\
                 keepalive_usr_timeout 0";
    let cluster = Cluster::start(ClusterOptions::default()).expect("cluster");
    let template = |globals: &str| {
        config(
            cluster.port(),
            &format!("{globals}\n{}", open_rule("session")),
        )
    };
    let pooler = Pooler::start(&template(before)).expect("pooler");
    let mut first = connect(&pooler.params("postgres")).expect("client");
    first.simple_query("SELECT 1").expect("query");
    let client = client_socket(&pooler, &cluster);
    assert_eq!(
        (
            &client["nodelay"],
            &client["keepidle"],
            &client["keepintvl"]
        ),
        (&Value::from(1), &Value::from(17), &Value::from(3)),
        "before the reload: {client}"
    );
    assert_eq!(
        client["user_timeout_ms"], 4321,
        "before the reload: {client}"
    );
    drop(first);
    let own = u64::from(pooler.port());
    let no_client = || {
        !probe(&pooler, &cluster)
            .iter()
            .any(|r| r["listen"] == false && r["local"].as_u64() == Some(own))
    };
    assert!(
        wait_for(Duration::from_secs(5), no_client),
        "the first client's socket stays"
    );

    pooler.rewrite_config(&template(after)).expect("rewrite");
    pooler.signal(Signal::Hup).expect("SIGHUP");
    assert!(
        wait_for(Duration::from_secs(5), || pooler
            .log()
            .contains("config reloaded")),
        "no reload\n{}",
        pooler.log()
    );
    let mut second = connect(&pooler.params("postgres")).expect("client");
    second.simple_query("SELECT 1").expect("query");
    let client = client_socket(&pooler, &cluster);
    assert_eq!(
        client["nodelay"], 0,
        "nodelay no after the reload: {client}"
    );
    assert_eq!(client["keepalive"], 1, "{client}");
    assert_eq!(client["keepidle"], 23, "{client}");
    assert_eq!(client["keepintvl"], 5, "{client}");
    assert_eq!(client["keepcnt"], 6, "{client}");
    assert_eq!(
        client["user_timeout_ms"], 0,
        "keepalive_usr_timeout 0: {client}"
    );
}
