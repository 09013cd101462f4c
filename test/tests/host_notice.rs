//! Storage `balancing { show_notice_messages yes }`: with several hosts, a client is told
//! which one serves it (NOTICE `select host tcp://host:port`, upstream's words) each time it
//! gets a server for its queries; not with the directive off.

use std::time::Duration;

use odyssey_test::pooler::config;
use odyssey_test::{Cluster, ClusterOptions, Pooler, psql};

/// What psql prints on stderr for one query through a storage of two hosts (the same
/// PostgreSQL by two names), with `show_notice_messages` set to `show`.
fn notices(show: &str) -> (String, u16) {
    let cluster = Cluster::start(ClusterOptions::default()).expect("cluster");
    let port = cluster.port();
    let rest = format!(
        "storage \"two\" {{\n\ttype \"remote\"\n\thost \"127.0.0.1,localhost\"\n\tport {port}\n\
         \tbalancing {{\n\t\tshow_notice_messages {show}\n\t}}\n}}\n\
         database default {{\n\tuser default {{\n\t\tauthentication \"none\"\n\
         \t\tstorage \"two\"\n\t\tpool \"transaction\"\n\t}}\n}}\n"
    );
    let pooler = Pooler::start(&config(port, &rest)).expect("pooler");
    let out = psql(
        &pooler.params("postgres"),
        "SELECT 1",
        Duration::from_secs(10),
    )
    .unwrap();
    assert!(out.success(), "{}\n{}", out.combined(), pooler.log());
    (out.stderr, port)
}

#[test]
fn the_client_is_told_which_host_serves_it() {
    let (stderr, port) = notices("yes");
    let told = [
        format!("NOTICE:  select host tcp://127.0.0.1:{port}"),
        format!("NOTICE:  select host tcp://localhost:{port}"),
    ];
    assert!(
        told.iter().any(|t| stderr.lines().any(|l| l.trim() == t)),
        "{stderr}"
    );
}

#[test]
fn without_show_notice_messages_nothing_is_told() {
    let (stderr, _) = notices("no");
    assert!(!stderr.contains("select host"), "{stderr}");
}
