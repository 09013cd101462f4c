//! `enable_host_watcher`: with it, `SHOW HOST_UTILIZATION` reports the host's CPU and memory in
//! use as sampled every second; without it, zeros (upstream's answer).

use std::time::Duration;

use odyssey_test::pg::SimpleQueryMessage;
use odyssey_test::pooler::config;
use odyssey_test::{Cluster, ClusterOptions, ConnParams, Pooler, connect, wait_for};

/// A pooler with a console, `watcher` set as `enable_host_watcher`.
fn pooler(cluster: &Cluster, watcher: &str) -> Pooler {
    let rest = format!(
        "enable_host_watcher {watcher}\n\nstorage \"local\" {{\n\ttype \"local\"\n}}\n\
         database \"console\" {{\n\tuser \"admin\" {{\n\t\tauthentication \"none\"\n\
         \t\trole \"admin\"\n\t\tstorage \"local\"\n\t\tpool \"session\"\n\t}}\n}}\n"
    );
    Pooler::start(&config(cluster.port(), &rest)).expect("pooler")
}

/// `SHOW HOST_UTILIZATION`: (cpu, mem).
fn utilization(pooler: &Pooler) -> (f64, f64) {
    let mut c = connect(&ConnParams::tcp(pooler.port(), "admin").dbname("console")).unwrap();
    let row = c
        .simple_query("SHOW HOST_UTILIZATION")
        .unwrap()
        .into_iter()
        .find_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some((
                r.get(0).unwrap().parse().unwrap(),
                r.get(1).unwrap().parse().unwrap(),
            )),
            _ => None,
        });
    row.expect("one row")
}

#[test]
fn the_host_watcher_samples_cpu_and_memory() {
    let cluster = Cluster::start(ClusterOptions::default()).expect("cluster");
    let pooler = pooler(&cluster, "yes");
    let mut last = (0.0, 0.0);
    let sampled = wait_for(Duration::from_secs(5), || {
        last = utilization(&pooler);
        last.1 > 0.0
    });
    assert!(sampled, "no sample: {last:?}");
    assert!(
        (0.0..=100.0).contains(&last.0) && last.1 <= 100.0,
        "{last:?}"
    );
}

#[test]
fn without_the_host_watcher_the_console_reports_zeros() {
    let cluster = Cluster::start(ClusterOptions::default()).expect("cluster");
    let pooler = pooler(&cluster, "no");
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(utilization(&pooler), (0.0, 0.0));
}
