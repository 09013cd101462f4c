//! Storage `server_max_routing`: how many servers are being opened (connect and login) on a
//! storage at once; other clients needing a new server wait their turn. Each server's login is
//! made to take a second (PostgreSQL's `post_auth_delay`, sent by `backend_startup_options`),
//! so three session clients logging in together take about three seconds in single file and
//! about one side by side.

use std::thread;
use std::time::{Duration, Instant};

use odyssey_test::pooler::config;
use odyssey_test::{Cluster, ClusterOptions, Pooler, connect};

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
