//! `log_async` and `log_queue_depth`: with `log_async yes` lines go through a queue of
//! `log_queue_depth` lines to a writer thread named `logger`, and a full queue drops lines —
//! counted, and said in the log (upstream drops them silently); with `log_async no` every line
//! is written by the worker that logs it, so even a queue depth of 1 loses none.

use std::time::Duration;

use odyssey_test::pooler::{config, open_rule};
use odyssey_test::{Cluster, ClusterOptions, Pooler, connect};

const QUERIES: usize = 300;
const MARK: &str = "log-queue-mark";

const GLOBALS: &str = "log_debug yes\nlog_query yes\nlog_queue_depth 1";

/// The names of the pooler's threads.
fn threads(pooler: &Pooler) -> Vec<String> {
    let dir = format!("/proc/{}/task", pooler.pid());
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .map(|c| c.trim().to_string())
        .collect()
}

/// Starts a pooler with `log_async` as given and sends `QUERIES` marked queries, each logged
/// by `log_query` among the debug lines of its transaction.
fn run(log_async: &str) -> (Cluster, Pooler) {
    let cluster = Cluster::start(ClusterOptions::default()).expect("cluster");
    let rest = format!(
        "log_async {log_async}\n{GLOBALS}\n{}",
        open_rule("transaction")
    );
    let pooler = Pooler::start(&config(cluster.port(), &rest)).expect("pooler");
    let mut client = connect(&pooler.params("postgres")).expect("client");
    for _ in 0..QUERIES {
        client
            .simple_query(&format!("SELECT '{MARK}'"))
            .expect("query");
    }
    (cluster, pooler)
}

fn marked_lines(pooler: &Pooler) -> usize {
    pooler.log().lines().filter(|l| l.contains(MARK)).count()
}

#[test]
fn a_full_log_queue_drops_lines_and_says_so() {
    let (_cluster, pooler) = run("yes");
    assert!(
        threads(&pooler).iter().any(|t| t == "logger"),
        "no logger thread: {:?}",
        threads(&pooler)
    );
    assert!(
        pooler.wait_log(
            "log lines dropped: the log queue (log_queue_depth 1) was full",
            Duration::from_secs(10)
        ),
        "no word of dropped lines:\n{}",
        pooler.log()
    );
}

#[test]
fn synchronous_logging_loses_no_line() {
    let (_cluster, pooler) = run("no");
    assert!(
        !threads(&pooler).iter().any(|t| t == "logger"),
        "a logger thread with log_async no: {:?}",
        threads(&pooler)
    );
    assert_eq!(marked_lines(&pooler), QUERIES, "{}", pooler.log());
    // Two cron ticks: nothing to report.
    std::thread::sleep(Duration::from_millis(2100));
    assert!(!pooler.log().contains("log lines dropped"));
}
