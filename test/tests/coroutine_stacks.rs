//! `coroutine_stack_size` and `cache_coroutine`, seen in the pooler's address space: every
//! client in a query runs on a coroutine stack of `coroutine_stack_size` pages, mapped while
//! it runs; when the coroutine ends its stack is unmapped (`cache_coroutine 0`) or kept for
//! the next one (a cache of that many stacks per worker).
//!
//! Stacks of 512 pages (2 MiB) make 20 of them stand out from everything else the pooler maps.

use std::thread;
use std::time::Duration;

use odyssey_test::pooler::{config, open_rule};
use odyssey_test::{Cluster, ClusterOptions, Pooler, connect, wait_for};

const CLIENTS: usize = 20;
const MIB: u64 = 1024 * 1024;
/// 512 pages.
const STACK: u64 = 2 * MIB;

/// The pooler's mapped address space (VmSize), in bytes.
fn mapped(pooler: &Pooler) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", pooler.pid())).unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmSize:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmSize");
    kib * 1024
}

/// Clients in `pg_sleep` through the pooler now.
fn sleeping(cluster: &Cluster) -> usize {
    let sql = "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep%' \
               AND state = 'active' AND pid <> pg_backend_pid()";
    cluster
        .psql("postgres", "postgres", sql)
        .map_or(0, |v| v.trim().parse().unwrap_or(0))
}

/// Runs `CLIENTS` clients in a 1 s query at once; returns the mapped size while they all run.
fn round(pooler: &Pooler, cluster: &Cluster) -> u64 {
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let params = pooler.params("postgres");
            thread::spawn(move || {
                let mut c = connect(&params).expect("client");
                c.simple_query("SELECT pg_sleep(1)").expect("query");
            })
        })
        .collect();
    assert!(
        wait_for(Duration::from_secs(10), || sleeping(cluster) == CLIENTS),
        "the clients did not all reach their query"
    );
    let during = mapped(pooler);
    for c in clients {
        c.join().unwrap();
    }
    // The clients' coroutines end after their Terminate; the count of the console would
    // lag the same way, so wait for the address space to settle.
    thread::sleep(Duration::from_millis(500));
    during
}

fn start(globals: &str) -> (Cluster, Pooler) {
    let cluster = Cluster::start(ClusterOptions::default()).expect("cluster");
    let rest = format!(
        "coroutine_stack_size 512\n{globals}\n{}",
        open_rule("session")
    );
    let pooler = Pooler::start(&config(cluster.port(), &rest)).expect("pooler");
    (cluster, pooler)
}

#[test]
fn without_a_cache_each_client_maps_a_stack_of_the_configured_size_and_gives_it_back() {
    let (cluster, pooler) = start("cache_coroutine 0");
    // A first round makes whatever the pooler makes once (threads' arenas, buffers).
    round(&pooler, &cluster);
    let before = mapped(&pooler);
    let during = round(&pooler, &cluster);
    let after = mapped(&pooler);
    let grew = during.saturating_sub(before);
    assert!(
        grew >= CLIENTS as u64 * STACK * 8 / 10,
        "{CLIENTS} clients mapped {} MiB, not a 2 MiB stack each",
        grew / MIB
    );
    assert!(
        after <= before + 4 * MIB,
        "stacks kept after the clients left: {} MiB more than before",
        after.saturating_sub(before) / MIB
    );
}

#[test]
fn a_coroutine_cache_keeps_the_stacks_for_the_next_clients() {
    let (cluster, pooler) = start("cache_coroutine 64");
    let empty = mapped(&pooler);
    round(&pooler, &cluster);
    let cached = mapped(&pooler);
    assert!(
        cached >= empty + CLIENTS as u64 * STACK * 8 / 10,
        "no stacks kept: {} MiB more than before the clients came",
        cached.saturating_sub(empty) / MIB
    );
    // The next clients run on the cached stacks: nothing new is mapped.
    let during = round(&pooler, &cluster);
    assert!(
        during <= cached + 4 * MIB,
        "new stacks for the second round: {} MiB more",
        during.saturating_sub(cached) / MIB
    );
}
