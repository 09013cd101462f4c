//! Storage `server_max_routing`: how many servers are being opened (connect and login) on a
//! storage at once; other clients needing a new server wait their turn. Each server's login is
//! made to take a second (PostgreSQL's `post_auth_delay`, sent by `backend_startup_options`),
//! so three session clients logging in together take about three seconds in single file and
//! about one side by side. It also bounds the idle servers of a route the cron closes per tick
//! (`server_max_routing` + 1), so that a pool is not emptied at once.

use std::thread;
use std::time::{Duration, Instant};

use odyssey_test::pooler::config;
use odyssey_test::{Cluster, ClusterOptions, Pooler, connect, wait_for};

/// Clients that each need a server of their own, at once.
const CLIENTS: usize = 3;

/// How long `CLIENTS` session clients take to each run a query when the storage lets
/// `max_routing` servers be opened at once.
fn time_to_serve_all(cluster: &Cluster, max_routing: u32) -> Duration {
    let rest = format!(
        "storage \"slow\" {{\n\ttype \"remote\"\n\thost \"127.0.0.1\"\n\tport {}\n\
         \tserver_max_routing {max_routing}\n}}\n\
         database default {{\n\tuser default {{\n\t\tauthentication \"none\"\n\
         \t\tstorage \"slow\"\n\t\tpool \"session\"\n\
         \t\tbackend_startup_options {{\n\t\t\t\"post_auth_delay\" \"1\"\n\t\t}}\n\t}}\n}}\n",
        cluster.port()
    );
    let pooler = Pooler::start(&config(cluster.port(), &rest)).expect("pooler");
    // The route's first login opens a server to learn the parameters; it is kept by that
    // first client, so the clients timed below each open one.
    let mut first = connect(&pooler.params("postgres")).expect("first client");
    first.batch_execute("SELECT 1").unwrap();
    let params = pooler.params("postgres");
    let started = Instant::now();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let params = params.clone();
            thread::spawn(move || {
                let mut c = connect(&params).expect("client");
                c.batch_execute("SELECT 1").expect("query");
                c
            })
        })
        .collect();
    let _held: Vec<_> = clients.into_iter().map(|t| t.join().unwrap()).collect();
    started.elapsed()
}

#[test]
fn server_max_routing_opens_servers_in_single_file() {
    let cluster = Cluster::start(ClusterOptions::default()).expect("cluster");
    let one = time_to_serve_all(&cluster, 1);
    assert!(
        one >= Duration::from_millis(2800),
        "one at a time, three 1 s logins take 3 s: {one:?}"
    );
    let all = time_to_serve_all(&cluster, CLIENTS as u32);
    assert!(
        all < Duration::from_millis(2500),
        "side by side, three 1 s logins take about 1 s: {all:?}"
    );
}

fn backends(cluster: &Cluster) -> usize {
    let out = cluster
        .psql(
            "postgres",
            "postgres",
            "SELECT count(*) FROM pg_stat_activity WHERE datname = 'expiring'",
        )
        .unwrap();
    out.trim().parse().unwrap_or(usize::MAX)
}

#[test]
fn server_max_routing_bounds_the_servers_expired_per_tick() {
    let cluster = Cluster::start(ClusterOptions::default()).expect("cluster");
    cluster
        .psql("postgres", "postgres", "CREATE DATABASE expiring")
        .unwrap();
    let rest = format!(
        "storage \"one\" {{\n\ttype \"remote\"\n\thost \"127.0.0.1\"\n\tport {}\n\
         \tserver_max_routing 1\n}}\n\
         database default {{\n\tuser default {{\n\t\tauthentication \"none\"\n\
         \t\tstorage \"one\"\n\t\tpool \"session\"\n\t\tpool_ttl 1\n\t}}\n}}\n",
        cluster.port()
    );
    let pooler = Pooler::start(&config(cluster.port(), &rest)).expect("pooler");
    // Six servers at once, then all idle: they pass pool_ttl in the same tick.
    let mut clients: Vec<_> = (0..6)
        .map(|_| connect(&pooler.params("postgres").dbname("expiring")).expect("client"))
        .collect();
    for c in &mut clients {
        c.batch_execute("SELECT 1").unwrap();
    }
    drop(clients);
    assert!(
        wait_for(Duration::from_secs(5), || backends(&cluster) == 6),
        "six servers: {}",
        backends(&cluster)
    );
    // Two per tick: some count between none and six lasts about a second.
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let n = backends(&cluster);
        seen.push((Instant::now(), n));
        if n == 0 {
            break;
        }
        thread::sleep(Duration::from_millis(50));
    }
    let lasting = (1..6).any(|n| {
        let at: Vec<Instant> = seen
            .iter()
            .filter(|(_, c)| *c == n)
            .map(|(t, _)| *t)
            .collect();
        at.len() > 1 && *at.last().unwrap() - at[0] >= Duration::from_millis(500)
    });
    let counts: Vec<usize> = seen.iter().map(|(_, n)| *n).collect();
    assert!(lasting, "no intermediate count lasted: {counts:?}");
    assert_eq!(counts.last(), Some(&0), "all expire in the end: {counts:?}");
}
