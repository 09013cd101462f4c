//! Process-wide settings that act on threads: `priority` (the nice value of every thread) and
//! `cpu_affinity` (worker threads pinned to CPUs, a worker's own rule winning over its role's),
//! read back from /proc.

use std::fs;

use odyssey_test::pooler::config;
use odyssey_test::{Cluster, ClusterOptions, Pooler};

/// Each thread of `pid`: its name and the text of one of its /proc files.
fn threads(pid: u32, file: &str) -> Vec<(String, String)> {
    let dir = format!("/proc/{pid}/task");
    let mut out = Vec::new();
    for entry in fs::read_dir(&dir).expect("task dir").flatten() {
        let path = entry.path();
        let name = fs::read_to_string(path.join("comm")).unwrap_or_default();
        let text = fs::read_to_string(path.join(file)).unwrap_or_default();
        out.push((name.trim().to_string(), text));
    }
    out
}

/// The nice value in a /proc `stat` line (field 19; the name in parentheses may hold spaces).
fn nice(stat: &str) -> i32 {
    let after_name = &stat[stat.rfind(')').expect("stat") + 1..];
    after_name
        .split_whitespace()
        .nth(16)
        .unwrap()
        .parse()
        .unwrap()
}

fn allowed_cpus(status: &str) -> String {
    let line = status
        .lines()
        .find(|l| l.starts_with("Cpus_allowed_list:"))
        .expect("Cpus_allowed_list");
    line.split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_string()
}

#[test]
fn priority_sets_the_nice_value_of_every_thread() {
    let cluster = Cluster::start(ClusterOptions::default()).expect("cluster");
    let rest = "priority 7\n\ndatabase default {\n\tuser default {\n\
                \t\tauthentication \"none\"\n\t\tstorage \"postgres_server\"\n\
                \t\tpool \"session\"\n\t}\n}\n";
    let pooler = Pooler::start(&config(cluster.port(), rest)).expect("pooler");
    let stats = threads(pooler.pid(), "stat");
    assert!(stats.len() > 2, "{stats:?}");
    for (name, stat) in &stats {
        assert_eq!(nice(stat), 7, "thread {name}");
    }
}

#[test]
fn cpu_affinity_pins_each_worker() {
    let cluster = Cluster::start(ClusterOptions::default()).expect("cluster");
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    // Worker 0 by its own rule, worker 1 by the role's; with one CPU both are on CPU 0.
    let own = if cpus > 1 { "1" } else { "0" };
    let rest = format!(
        "cpu_affinity \"worker:0 worker[0]:{own}\"\n\ndatabase default {{\n\tuser default {{\n\
         \t\tauthentication \"none\"\n\t\tstorage \"postgres_server\"\n\
         \t\tpool \"session\"\n\t}}\n}}\n"
    );
    let pooler = Pooler::start(&config(cluster.port(), &rest)).expect("pooler");
    let status = threads(pooler.pid(), "status");
    let of = |name: &str| {
        status
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, s)| allowed_cpus(s))
            .unwrap_or_else(|| panic!("no thread {name}: {status:?}"))
    };
    assert_eq!(of("worker: 0"), own);
    assert_eq!(of("worker: 1"), "0");
    if cpus > 1 {
        assert_ne!(of("system"), "0", "the system machine is not pinned");
    }
}
