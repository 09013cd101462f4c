//! `/metrics` on `promhttp_server_port` (issue 11): scraped during a pgbench run, the text
//! passes `promtool check metrics`, its counters grow between scrapes and by exactly the
//! queries a client runs, and `/healthz` answers.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::thread;
use std::time::Duration;

use odyssey_test::pooler::config;
use odyssey_test::{Cluster, ClusterOptions, ConnParams, Pooler, connect, free_port, pgbench};

/// The body of `GET path` on 127.0.0.1:port, with the status line.
fn get(port: u16, path: &str) -> (String, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to metrics");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).expect("read response");
    let (head, body) = text.split_once("\r\n\r\n").expect("head and body");
    (
        head.lines().next().unwrap_or("").to_string(),
        body.to_string(),
    )
}

/// The value of the sample `name{labels}` (labels as they appear in the text).
fn value(body: &str, sample: &str) -> f64 {
    body.lines()
        .find_map(|l| l.strip_prefix(sample)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no sample {sample}"))
        .parse()
        .expect("number")
}

fn promtool_check(body: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus; scripts/deps.sh installs it)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let out = child.wait_with_output().expect("promtool");
    assert!(
        out.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn metrics_parse_and_grow_during_pgbench() {
    let cluster = Cluster::start(ClusterOptions::default()).expect("cluster");
    let port = free_port().expect("port");
    let rules = format!(
        "promhttp_server_port {port}\n\
         database default {{\n\tuser default {{\n\t\tauthentication \"none\"\n\
         \t\tstorage \"postgres_server\"\n\t\tstorage_db \"postgres\"\n\
         \t\tstorage_user \"postgres\"\n\t\tpool \"transaction\"\n\t\tpool_size 4\n\t}}\n}}\n"
    );
    let pooler = Pooler::start(&config(cluster.port(), &rules)).expect("pooler");
    let (status, body) = get(port, "/healthz");
    assert!(status.contains("200"), "{status}");
    assert_eq!(body, "ok\n");
    assert!(get(port, "/nothing").0.contains("404"));

    let params = ConnParams::tcp(pooler.port(), "bench");
    let init = pgbench(&params, &["-i", "-s", "1", "-q"], Duration::from_secs(120)).expect("init");
    assert!(init.success(), "{}", init.combined());
    let run = {
        let params = params.clone();
        thread::spawn(move || {
            pgbench(
                &params,
                &["-c", "4", "-T", "4", "-S"],
                Duration::from_secs(60),
            )
            .expect("pgbench")
        })
    };
    thread::sleep(Duration::from_secs(1));
    let (_, first) = get(port, "/metrics");
    promtool_check(&first);
    thread::sleep(Duration::from_secs(1));
    let (_, second) = get(port, "/metrics");
    promtool_check(&second);
    let labels = "{database=\"postgres\",user=\"bench\"}";
    let tx = format!("odyssey_route_transactions_total{labels}");
    assert!(
        value(&second, &tx) > value(&first, &tx),
        "transactions must grow"
    );
    let count = format!("odyssey_route_query_duration_seconds_count{labels}");
    assert!(value(&second, &count) > value(&first, &count));
    assert!(value(&second, "odyssey_process_resident_memory_bytes") > 0.0);
    // The accept loops and the cron at least.
    assert!(value(&second, "odyssey_coroutines") >= 2.0);
    assert_eq!(value(&second, "odyssey_log_dropped_lines_total"), 0.0);
    let host = format!(
        "odyssey_storage_host_up{{storage=\"postgres_server\",host=\"127.0.0.1:{}\"}}",
        cluster.port()
    );
    assert_eq!(value(&second, &host), 1.0);
    let out = run.join().expect("pgbench thread");
    assert!(out.success(), "{}", out.combined());

    // Exactly the queries one client runs.
    let mut c = connect(&ConnParams::tcp(pooler.port(), "exact")).expect("client");
    c.simple_query("select 1").expect("warm up");
    let (_, before) = get(port, "/metrics");
    let labels = "{database=\"postgres\",user=\"exact\"}";
    let queries = format!("odyssey_route_queries_total{labels}");
    for i in 0..5 {
        c.simple_query(&format!("select {i}")).expect("query");
    }
    let (_, after) = get(port, "/metrics");
    assert_eq!(value(&after, &queries) - value(&before, &queries), 5.0);
    let idle = "odyssey_route_clients{database=\"postgres\",user=\"exact\",state=\"idle\"}";
    assert_eq!(value(&after, idle), 1.0);
    assert!(value(&after, "odyssey_logins_total{result=\"ok\"}") >= 2.0);
    dashboard_names_exist(&after);
}

/// Every metric the shipped Grafana dashboard queries is one the pooler exports.
fn dashboard_names_exist(scrape: &str) {
    let dashboard = include_str!("../../docs/grafana/odyssey.json");
    let mut checked = 0;
    for (i, _) in dashboard.match_indices("odyssey_") {
        let name: String = dashboard[i..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if name == "odyssey_" || name.starts_with("odyssey_rust") {
            continue;
        }
        let exported = scrape
            .lines()
            .any(|l| l.starts_with(&name) && l[name.len()..].starts_with([' ', '{']));
        assert!(
            exported,
            "the dashboard queries {name}, which /metrics lacks"
        );
        checked += 1;
    }
    assert!(
        checked >= 15,
        "the dashboard names too few metrics: {checked}"
    );
}
